"""The ``quanta`` command: exit codes and messages a user sees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from quanta.config import Settings
from quanta.registry import Registry


def quanta(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QUANTA_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "quanta.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_verify_exits_1_on_a_bit_flip(tmp_path: Path) -> None:
    home = tmp_path / "home"
    registry = Registry.open(Settings(home=home))
    data = tmp_path / "t.jsonl"
    data.write_text('{"messages": []}\n')
    row = registry.add_file("local", "t.jsonl", "fine-tune", data)
    ok = quanta(home, "registry", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout
    blob = registry.store.path(row.sha256)  # type: ignore[attr-defined]
    blob.chmod(0o644)
    blob.write_bytes(b'{"messages": [1]}\n')
    bad = quanta(home, "registry", "verify")
    assert bad.returncode == 1
    assert "corrupt" in bad.stderr and row.sha256 in bad.stderr


def test_user_errors_exit_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cases = [
        ("registry", "show", "file", "file-nope"),
        ("registry", "ls", "widgets"),
        ("models", "import", str(tmp_path / "nope.gguf")),
        ("tenants", "create", "../evil"),
        ("keys", "create", "no-such-tenant"),
        ("adapters", "show", "ft:nope"),
        ("adapters", "pin", "ft:nope"),
    ]
    for args in cases:
        result = quanta(home, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "error" in result.stderr, args
        assert "Traceback" not in result.stderr, args


def test_keys_are_printed_once_and_listed_by_prefix(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert quanta(home, "tenants", "create", "acme").returncode == 0
    created = quanta(home, "keys", "create", "acme", "--name", "ci")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("qk-")
    listed = quanta(home, "keys", "ls")
    assert key[:10] in listed.stdout and key not in listed.stdout


def test_adapters_pin_and_unpin(tmp_path: Path) -> None:
    from tests.support.fixtures import fake_adapter_dir, fake_base_models

    home = tmp_path / "home"
    registry = Registry.open(Settings(home=home))
    fake_base_models(registry, tmp_path / "model", "tiny")
    row = registry.add_adapter("local", "tiny", fake_adapter_dir(tmp_path / "a"), suffix="p",
                               alias="hot")
    pinned = quanta(home, "adapters", "pin", "hot")
    assert pinned.returncode == 0, pinned.stderr
    assert f"{row.name}: pinned" in pinned.stdout
    assert registry.pinned_adapter_names("tiny") == {row.name}
    assert "yes" in quanta(home, "adapters", "ls").stdout
    assert quanta(home, "adapters", "unpin", row.name).returncode == 0
    assert registry.pinned_adapter_names("tiny") == set()


FIXTURES = Path(__file__).parent.parent / "fixtures" / "data"


def test_data_validate_accepts_the_bundled_set(tmp_path: Path) -> None:
    from quanta_physics import bundled_physics_path

    result = quanta(tmp_path / "home", "data", "validate", str(bundled_physics_path()))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_data_validate_names_the_broken_line(tmp_path: Path) -> None:
    result = quanta(tmp_path / "home", "data", "validate", str(FIXTURES / "bad_json.jsonl"))
    assert result.returncode == 2
    assert "bad_json.jsonl:3" in result.stderr
    missing = quanta(tmp_path / "home", "data", "validate", str(tmp_path / "missing.jsonl"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_data_stats_reports_topics(tmp_path: Path) -> None:
    import json

    from quanta_physics import bundled_physics_path

    result = quanta(tmp_path / "home", "data", "stats", str(bundled_physics_path()))
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["records"] >= 500
    assert len(stats["topics"]) == 8
    assert stats["with_calculations"] >= 500  # the worked answers write calculation traces
