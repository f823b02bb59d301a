"""Deployment files: the k8s overlays render (kubectl kustomize), validate, resolve their
references and pass checkov; compose is coherent; the Dockerfile has its targets and
passes hadolint and checkov.

Offline and without Docker or a cluster (see tests/deploy/deploy_checks.py). Needs
deploy/requirements-check.txt in the test venv; the checkov/hadolint tests run
scripts/check_deploy.sh --lint-only, which keeps those tools in their own venv.
"""

from __future__ import annotations

import copy
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
    assert deployments == {"quanta-serve", "quanta-tune-api", "quanta-tune-worker",
                           "quanta-export-worker", "quanta-epp"}
    # in-cluster datastores only where the component is used
    assert {o["metadata"]["name"] for o in rendered["cpu"] if o["kind"] == "StatefulSet"} == {
        "postgres",
        "minio",
    }
    assert not [o for o in rendered["gpu"] if o["kind"] == "StatefulSet"]


def test_overlays_pick_their_serve_image(rendered):
    cpu = _container(_by_name(rendered["cpu"], "Deployment", "quanta-serve"), "serve")["image"]
    gpu = _container(_by_name(rendered["gpu"], "Deployment", "quanta-serve"), "serve")["image"]
    assert cpu.endswith("/quanta-serve-cpu:0.1.0")
    assert gpu.endswith("/quanta-serve-gpu:0.1.0")


def test_gpu_overlay_requests_a_gpu_and_tolerates_gpu_nodes(rendered):
    serve = _by_name(rendered["gpu"], "Deployment", "quanta-serve")
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


def test_cpu_overlay_has_no_gpu_and_sizes_the_kv_cache(rendered):
    serve = _by_name(rendered["cpu"], "Deployment", "quanta-serve")
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
    pool = _by_name(objs, "InferencePool", "quanta-serve")
    pool["spec"]["targetPortNumber"] = 8000  # the pre-v1 field name
    serve = _by_name(objs, "Deployment", "quanta-serve")
    serve["spec"]["replicas"] = "two"
    findings = checks.validate_schemas([pool, serve])
    assert any("targetPortNumber" in f for f in findings)
    assert any("replicas" in f for f in findings)


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
    _container(_by_name(objs, "Deployment", "quanta-serve"), "serve")["securityContext"][
        "seccompProfile"] = checks.GRADER_SECCOMP_PROFILE
    findings = checks.seccomp_findings(objs)
    assert any("quanta-tune-api: pod seccompProfile" in f for f in findings), findings
    assert any("quanta-serve[serve]" in f for f in findings), findings


def test_reference_check_catches_a_dangling_selector_and_a_missing_secret(rendered):
    objs = copy.deepcopy(rendered["gpu"])
    _by_name(objs, "Service", "quanta-tune-api")["spec"]["selector"] = {"app": "nope"}
    api = _container(_by_name(objs, "Deployment", "quanta-tune-api"), "api")
    api["envFrom"].append({"secretRef": {"name": "no-such-secret"}})
    findings = checks.reference_findings(objs)
    assert any("selector matches no pod template" in f for f in findings)
    assert any("missing Secret no-such-secret" in f for f in findings)


def test_serve_probes_hit_the_real_health_endpoints(rendered):
    ctr = _container(_by_name(rendered["gpu"], "Deployment", "quanta-serve"), "serve")
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


def test_inference_pool_routes_to_serve_through_the_epp(rendered):
    objs = rendered["gpu"]
    pool = _by_name(objs, "InferencePool", "quanta-serve")
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    assert pool["spec"]["endpointPickerRef"]["name"] == "quanta-epp"
    route = _by_name(objs, "HTTPRoute", "quanta-serve")
    backend = route["spec"]["rules"][0]["backendRefs"][0]
    assert (backend["group"], backend["kind"], backend["name"]) == (
        "inference.networking.k8s.io",
        "InferencePool",
        "quanta-serve",
    )
    epp = _by_name(objs, "Deployment", "quanta-epp")
    image = _container(epp, "epp")["image"]
    assert image.startswith("registry.k8s.io/gateway-api-inference-extension/epp:v")
    config = _by_name(objs, "ConfigMap", "quanta-epp")["data"]["quanta-epp.yaml"]
    for needle in (
        "vllm:lora_requests_info",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "lora-affinity-scorer",
    ):
        assert needle in config
    objectives = [o for o in objs if o["kind"] == "InferenceObjective"]
    assert objectives and all(
        o["apiVersion"] == "inference.networking.x-k8s.io/v1alpha2" for o in objectives
    )


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
    gpu = checks.load_compose(checks.COMPOSE_GPU)["services"]["serve"]
    assert gpu["build"]["target"] == "serve-gpu"


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


def test_reference_check_wants_the_endpoint_pickers_token(rendered):
    objs = copy.deepcopy(rendered["gpu"])
    epp = _by_name(objs, "Deployment", "quanta-epp")["spec"]["template"]["spec"]
    epp["automountServiceAccountToken"] = False
    assert any("automountServiceAccountToken" in f for f in checks.reference_findings(objs))


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
