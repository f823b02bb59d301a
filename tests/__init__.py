"""Quanta's tests. A package so that its helpers import as ``tests.support`` from tests
and benchmarks alike (pyproject.toml puts the repository root on pytest's ``sys.path``)."""
