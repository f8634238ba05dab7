"""Backend selection: set_backend as call and context manager, resolve_backend rules, the path log."""

from __future__ import annotations

import pytest
import torch

import graphlab.ops as ops
from graphlab.ops import _backend


@pytest.fixture(autouse=True)
def restore_backend():
    previous = ops.get_backend()
    yield
    ops.set_backend(previous)


def test_default_is_auto_and_cpu_tensors_resolve_to_cpu():
    assert ops.get_backend() == "auto"
    assert ops.resolve_backend(torch.zeros(2), None) == "cpu"


class FakeCuda:
    """Stands in for a CUDA tensor: resolve_backend only asks ``is_cuda``."""

    is_cuda = True


def test_auto_on_cuda_prefers_triton_and_falls_back_to_the_reference(monkeypatch):
    monkeypatch.setattr(_backend, "triton_available", lambda: True)
    assert ops.resolve_backend(torch.zeros(1), FakeCuda()) == "triton"
    monkeypatch.setattr(_backend, "triton_available", lambda: False)
    assert ops.resolve_backend(FakeCuda()) == "reference"


def test_set_backend_as_call_persists():
    ops.set_backend("reference")
    assert ops.get_backend() == "reference"
    assert ops.resolve_backend(torch.zeros(1)) == "reference"


def test_set_backend_as_context_manager_restores_previous():
    ops.set_backend("cpu")
    with ops.set_backend("reference"):
        assert ops.get_backend() == "reference"
        with ops.set_backend("auto"):
            assert ops.get_backend() == "auto"
        assert ops.get_backend() == "reference"
    assert ops.get_backend() == "cpu"


def test_context_manager_restores_after_exception():
    with pytest.raises(KeyError):
        with ops.set_backend("reference"):
            raise KeyError("boom")
    assert ops.get_backend() == "auto"


@pytest.mark.parametrize("name", ["gpu", "Triton", "", None])
def test_unknown_backend_is_a_value_error(name):
    with pytest.raises(ValueError, match="unknown backend"):
        ops.set_backend(name)
    assert ops.get_backend() == "auto"


def test_forced_triton_on_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.setattr(_backend, "triton_available", lambda: True)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with ops.set_backend("triton"):
        with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
            ops.resolve_backend(torch.zeros(1))
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with ops.set_backend("triton"):
        assert ops.resolve_backend(torch.zeros(1)) == "triton"


def test_forced_triton_without_triton_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_backend, "triton_available", lambda: False)
    with ops.set_backend("triton"), pytest.raises(RuntimeError, match="triton is not installed"):
        ops.resolve_backend(torch.zeros(1))


def test_path_log_records_each_op_separately():
    _backend.record_path("op_a", "cpu")
    _backend.record_path("op_a", "reference")
    _backend.record_path("op_b", "triton")
    assert ops.last_path("op_a") == "reference"
    assert ops.last_path("op_b") == "triton"
    assert ops.path_count("op_a", "cpu") == 1
    assert ops.path_count("op_a", "reference") == 1
    assert ops.last_path("never_ran") is None
    ops.reset_path_log()
    assert ops.last_path("op_a") is None and ops.path_count("op_a", "cpu") == 0


def test_set_validation_call_and_context():
    assert ops.validation_enabled()
    with ops.set_validation(False):
        assert not ops.validation_enabled()
    assert ops.validation_enabled()
    with pytest.raises(ValueError, match="True or False"):
        ops.set_validation("no")
