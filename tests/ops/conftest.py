"""Fixtures for the graphlab.ops tests: awkward random graphs, path selection, the Triton interpreter."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import pytest
import torch

from graphlab.ops import _backend, _native


def awkward_graph(num_nodes: int, num_edges: int, seed: int, index_dtype: torch.dtype = torch.long) -> torch.Tensor:
    """A random ``edge_index`` with self loops, duplicate edges, a node with no incoming edge (empty CSR row)
    and an isolated node. ``num_nodes >= 4``. Node ``N-1`` is isolated, node ``N-2`` only sends."""
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_nodes - 1, (num_edges,), generator=gen)
    dst = torch.randint(0, num_nodes - 2, (num_edges,), generator=gen)
    src[:2] = dst[:2] = torch.tensor([0, 1])  # self loops
    src[2:4], dst[2:4] = src[4:6], dst[4:6]  # duplicate edges
    src[6] = num_nodes - 2  # the node without incoming edges still sends
    return torch.stack([src, dst]).to(index_dtype)


@pytest.fixture(scope="session")
def make_graph() -> Callable[..., torch.Tensor]:
    return awkward_graph


@contextlib.contextmanager
def use_path(path: str) -> Iterator[str]:
    """Force ``path`` ("reference", "cpu-native", "cpu-torch" or "triton"); yields what ``last_path`` reports.

    "cpu-native" and "cpu-torch" are the two implementations of the "cpu" path (native kernels or torch ops).
    """
    if path in ("cpu-native", "cpu-torch"):
        if path == "cpu-native" and not _native.available():
            pytest.skip(f"native kernels unavailable: {_native.unavailable_reason()}")
        with _backend.set_backend("cpu"), _native.use_native(path == "cpu-native"):
            yield "cpu"
    else:
        with _backend.set_backend(path):
            yield path


# ``@triton.jit`` (in triton's own standard library too) reads TRITON_INTERPRET when triton is first imported, and
# PyG imports triton, so the interpreter must be on from process start. The Triton tests are marked ``triton`` and
# run in-process only then; test_triton_interpreter.py runs them in a subprocess that sets the variable.
IN_INTERPRETER = os.environ.get("TRITON_INTERPRET") == "1"
TRITON_PATH = pytest.param("triton", marks=pytest.mark.triton)


def require_triton_interpreter() -> None:
    pytest.importorskip("triton")
    if not IN_INTERPRETER:
        pytest.skip("needs TRITON_INTERPRET=1 at start-up; test_triton_interpreter.py runs these in a subprocess")


@pytest.fixture
def path_env() -> Callable[[str], contextlib.AbstractContextManager[str]]:
    """``with path_env(path) as expected:`` forces a path (``expected`` is what ``last_path`` must report)."""

    def enter(path: str) -> contextlib.AbstractContextManager[str]:
        if path == "triton":
            require_triton_interpreter()
        return use_path(path)

    return enter


@pytest.fixture(autouse=True)
def clean_path_log() -> Iterator[None]:
    _backend.reset_path_log()
    yield
    _backend.reset_path_log()
