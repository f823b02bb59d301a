"""``quanta serve`` wiring: the command is mounted and options reach vLLM's arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from quanta.config import Settings
from quanta.registry import Registry
from quanta.types import ComputeDtype
from serve import cli
from serve.engines import ServeOptions, get_engine
from serve.engines.vllm import engine_env, vllm_argv


def test_serve_command_is_registered() -> None:
    app = typer.Typer()
    app.command("noop")(lambda: None)
    cli.register(app)
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--engine", "--grpc-port", "--max-loras", "--max-cpu-loras",
                   "--max-lora-rank", "--gguf-format", "--dtype", "--public-url",
                   "--public-grpc"):
        assert option in result.output


def test_vllm_arguments_and_environment(tmp_path: Path) -> None:
    options = ServeOptions(port=8123, max_loras=4, max_cpu_loras=6, max_lora_rank=8,
                           extra_args=["--enforce-eager"])
    argv = vllm_argv(options, "/models/base", ComputeDtype.FLOAT32)
    assert argv[:4] == ["--model", "/models/base", "--served-model-name", options.model]
    assert argv[argv.index("--dtype") + 1] == "float32"  # resolved by quanta.precision
    assert {"--enable-lora", "--enforce-eager"} <= set(argv)
    assert argv[argv.index("--max-cpu-loras") + 1] == "6"
    assert argv[argv.index("--max-loras") + 1] == "4"
    assert options.max_pins == 2
    default = vllm_argv(ServeOptions(max_loras=3), "/m", ComputeDtype.FLOAT32)
    assert default[default.index("--max-cpu-loras") + 1] == "6"  # room for 3 pins
    env = engine_env(options, Registry.open(Settings(home=tmp_path)), "base-id",
                     tmp_path / "engine.sock")
    assert env["QUANTA_RESIDENCY_SOCKET"] == str(tmp_path / "engine.sock")
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert env["VLLM_CACHE_ROOT"].startswith(str(tmp_path))
    assert env["QUANTA_LORA_RESOLVER"] == "registry"
    assert env["QUANTA_SERVE_BASE_MODEL"] == "base-id"
    assert int(env["VLLM_CPU_KVCACHE_SPACE"]) >= 1


def test_unknown_engine() -> None:
    with pytest.raises(ValueError, match="vllm"):
        get_engine("tgi")


def test_llama_cpp_engine_refuses_a_dtype() -> None:
    """llama.cpp computes in the GGUF's own types: a --dtype there is a clear error."""
    with pytest.raises(ValueError, match="GGUF"):
        get_engine("llama-cpp").run(ServeOptions(dtype=ComputeDtype.BFLOAT16))
