"""The committed gRPC code matches proto/ (regenerate with ``python -m serve.gen_proto``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve import gen_proto


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    fresh = {p.name: p.read_text() for p in gen_proto.generate(tmp_path)}
    committed = {p.name: p.read_text() for p in gen_proto.OUT.iterdir() if p.is_file()}
    assert fresh.keys() <= committed.keys()
    stale = [name for name, text in fresh.items() if committed[name] != text]
    assert not stale, f"{stale} out of date: run `python -m serve.gen_proto`"


def test_service_shape() -> None:
    from serve.grpc_gen import inference_pb2

    service = inference_pb2.DESCRIPTOR.services_by_name["Inference"]
    assert service.full_name == "quanta.v1.Inference"
    methods = {m.name: m for m in service.methods}
    assert {"Generate", "GenerateStream", "ListModels", "LoadAdapter", "UnloadAdapter"} <= set(
        methods)
    assert methods["GenerateStream"].server_streaming
