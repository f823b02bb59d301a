"""The committed gRPC code matches proto/ (regenerate with ``python -m serve.gen_proto``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve import gen_proto


def _contracts(paths: list[Path]) -> dict[str, object]:
    return {p.name: gen_proto.contract(p) for p in paths if p.suffix in (".py", ".pyi")}


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    fresh = _contracts(gen_proto.generate(tmp_path))
    committed = _contracts([p for p in gen_proto.OUT.iterdir() if p.is_file()])
    assert fresh.keys() <= committed.keys()
    stale = [name for name, defined in fresh.items() if committed[name] != defined]
    assert not stale, f"{stale} out of date: run `python -m serve.gen_proto`"


def test_contract_ignores_the_generators_versions(tmp_path: Path) -> None:
    """A grpcio-tools patch release (1.85.1 -> 1.85.4) is not a change of the contract."""
    committed = gen_proto.OUT / "inference_pb2_grpc.py"
    bumped = tmp_path / committed.name
    text = committed.read_text()
    assert "GRPC_GENERATED_VERSION = '" in text
    bumped.write_text(text.replace("GRPC_GENERATED_VERSION = '", "GRPC_GENERATED_VERSION = '9"))
    assert gen_proto.contract(bumped) == gen_proto.contract(committed)


def test_contract_sees_a_changed_message_or_method(tmp_path: Path) -> None:
    """What matters does count: a renamed field, a renamed method."""
    pb2 = gen_proto.OUT / "inference_pb2.py"
    renamed_field = tmp_path / pb2.name
    renamed_field.write_text(pb2.read_text().replace("\\x07\\x63ontent", "\\x07\\x63ontenu", 1))
    assert gen_proto.contract(renamed_field) != gen_proto.contract(pb2)

    grpc_py = gen_proto.OUT / "inference_pb2_grpc.py"
    renamed_method = tmp_path / grpc_py.name
    renamed_method.write_text(grpc_py.read_text().replace("/Generate'", "/Produce'"))
    assert gen_proto.contract(renamed_method) != gen_proto.contract(grpc_py)


def test_service_shape() -> None:
    from serve.grpc_gen import inference_pb2

    service = inference_pb2.DESCRIPTOR.services_by_name["Inference"]
    assert service.full_name == "quanta.v1.Inference"
    methods = {m.name: m for m in service.methods}
    assert {"Generate", "GenerateStream", "ListModels", "LoadAdapter", "UnloadAdapter"} <= set(
        methods)
    assert methods["GenerateStream"].server_streaming
