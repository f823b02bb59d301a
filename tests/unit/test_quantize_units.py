"""Fast checks of the exporters' pure parts: formats, group sizes, GGUF checks, quality
records, llama.cpp tool extraction, Modelfile text, calibration files."""

from __future__ import annotations

import io
import json
import math
import tarfile
from pathlib import Path

import pytest

from quantize.errors import (
    CorruptGGUFError,
    ExportError,
    QualityError,
    ToolMissingError,
    UnsupportedFormatError,
)


def test_errors_are_value_errors_so_the_cli_exits_2() -> None:
    for error in (ExportError, UnsupportedFormatError, CorruptGGUFError, QualityError,
                  ToolMissingError):
        assert issubclass(error, ValueError)


def test_check_format() -> None:
    from quantize.exporters import FORMATS, check_format

    assert FORMATS == ("merged", "gguf-f16", "gguf-q8_0", "gguf-q4_k_m", "gguf-lora", "gptq")
    for fmt in FORMATS:
        assert check_format(fmt) == fmt
    with pytest.raises(UnsupportedFormatError, match="one of merged, gguf-f16"):
        check_format("awq")


@pytest.mark.parametrize(("hidden", "group"), [(576, 64), (4096, 128), (2048, 128),
                                                (960, 64), (1120, 32)])
def test_gptq_group_size(hidden: int, group: int) -> None:
    from quantize.gptq import group_size_for

    assert group_size_for(hidden) == group


def test_gptq_group_size_divides_every_projection() -> None:
    from quantize.gptq import group_size_for

    assert group_size_for(640, 1024, 2048) == 128  # Gemma 3 270M: hidden, heads*head_dim, MLP
    assert group_size_for(576, 1536) == 64


def test_gptq_group_size_refuses_odd_hidden_sizes() -> None:
    from quantize.errors import ConversionError
    from quantize.gptq import group_size_for

    with pytest.raises(ConversionError):
        group_size_for(100)


def test_gptq_missing_venv_says_how_to_build_it(tmp_path: Path, quanta_env) -> None:  # type: ignore[no-untyped-def]
    from quantize.gptq import gptq_python

    quanta_env(QUANTA_GPTQ_VENV=str(tmp_path / "nope"))
    with pytest.raises(ToolMissingError, match=r"scripts/setup_gptq\.sh"):
        gptq_python()


def test_write_calibration(tmp_path: Path) -> None:
    from quantize.gptq import write_calibration

    examples = [{"messages": [{"role": "user", "content": "q"},
                              {"role": "assistant", "content": "a"}]},
                {"prompt": [{"role": "user", "content": "p"}],
                 "chosen": [{"role": "assistant", "content": "c"}],
                 "rejected": [{"role": "assistant", "content": "r"}]}]
    lines = write_calibration(examples, tmp_path / "c.jsonl").read_text().splitlines()
    assert [len(json.loads(line)["messages"]) for line in lines] == [2, 2]


@pytest.mark.parametrize("content", [b"", b"GGU", b"PK\x03\x04 zip", b"GGUF\x09\x00\x00\x00"])
def test_check_gguf_rejects_garbage(tmp_path: Path, content: bytes) -> None:
    from quantize.quality import check_gguf

    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(CorruptGGUFError):
        check_gguf(path)
    with pytest.raises(CorruptGGUFError, match="no such GGUF"):
        check_gguf(tmp_path / "missing.gguf")


def test_quality_record_and_non_finite_refusal() -> None:
    from quantize.quality import Quality

    good = Quality(5.5, 5.0, 123, "llama.cpp", "f16").check()
    metrics = good.as_metrics()
    assert metrics["perplexity_ratio"] == pytest.approx(1.1)
    assert {"perplexity", "reference_perplexity", "perplexity_ratio", "bytes"} <= set(metrics)
    for bad in (math.nan, math.inf, -1.0):
        with pytest.raises(QualityError, match="not registered"):
            Quality(bad, 5.0, 1, "x", "y").check()


def test_held_out_text_is_fixed() -> None:
    from quantize.quality import held_out_text

    text = held_out_text()
    assert text == held_out_text() and "Final answer:" in text and len(text) > 2000


def _fake_sdist(path: Path, version: str = "0.3.36") -> Path:
    prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
    files = {"convert_hf_to_gguf.py": "print('hf')", "convert_lora_to_gguf.py": "print('lora')",
             "conversion/__init__.py": "", "gguf-py/gguf/__init__.py": "",
             "README.md": "not extracted", "src/llama.cpp": "not extracted"}
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_llama_cpp_tools_extracted_once_from_the_sdist(tmp_path: Path, quanta_env) -> None:  # type: ignore[no-untyped-def]
    from quantize import llama_cpp_tools as tools

    quanta_env(QUANTA_LLAMA_CPP_SDIST=str(_fake_sdist(tmp_path / "sdist.tar.gz")),
               QUANTA_LLAMA_CPP_TOOLS=str(tmp_path / "tools"))
    directory = tools.ensure_tools()
    assert directory == tmp_path / "tools"
    assert (directory / "convert_lora_to_gguf.py").read_text() == "print('lora')"
    assert (directory / "gguf-py" / "gguf" / "__init__.py").is_file()
    assert not (directory / "README.md").exists() and not (directory / "src").exists()
    (tmp_path / "sdist.tar.gz").unlink()  # second call: already extracted, sdist not needed
    assert tools.ensure_tools() == directory


def test_llama_cpp_tools_missing_sdist_says_how_to_get_it(tmp_path: Path, quanta_env) -> None:  # type: ignore[no-untyped-def]
    from quantize import llama_cpp_tools as tools

    quanta_env(QUANTA_LLAMA_CPP_SDIST=str(tmp_path / "missing.tar.gz"),
               QUANTA_LLAMA_CPP_TOOLS=str(tmp_path / "tools"))
    with pytest.raises(ToolMissingError, match="pip download --no-deps --no-binary"):
        tools.ensure_tools()


def test_omp_wait_policy_is_set_before_llama_cpp_loads() -> None:
    import os

    import quantize.llama_cpp_tools  # noqa: F401

    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_export_refuses_unknown_names_and_formats(registry) -> None:  # type: ignore[no-untyped-def]
    from quanta.registry import NotFoundError
    from quantize import export

    with pytest.raises(UnsupportedFormatError):
        export(registry, "ft:whatever", "gguf-q2_k")
    with pytest.raises(NotFoundError, match="no adapter or base model named"):
        export(registry, "ft:whatever", "gguf-f16")
    assert registry.list_rows("export") == []


def test_gptq_worker_path_holds_only_quantas_packages(tmp_path: Path) -> None:
    """The GPTQ environment imports Quanta from wherever it is installed (checkout or
    wheel), never the main environment's site-packages."""
    import quanta
    from quantize.gptq import worker_path

    root = worker_path(tmp_path)
    assert sorted(p.name for p in root.iterdir()) == ["quanta", "quantize"]
    assert (root / "quanta").resolve() == Path(quanta.__file__).resolve().parent
    assert (root / "quantize" / "gptq_worker.py").is_file()
    assert worker_path(tmp_path) == root  # reused
