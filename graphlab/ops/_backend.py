"""Backend dispatch shared by every op in :mod:`graphlab.ops`.

Each op has up to three paths:

* ``"reference"``: plain PyTorch, written from the op's equation; the spec the other paths are tested against.
* ``"cpu"``: the fastest correct path for CPU tensors (plain torch ops, no per-edge rows where avoidable).
* ``"triton"``: Triton kernels from :mod:`graphlab.kernels`; chosen automatically for CUDA tensors (the reference
  when Triton is missing). With
  ``TRITON_INTERPRET=1`` it can be forced on CPU tensors, which is how the kernels are tested without a GPU.

The backend is a process-wide setting. :func:`set_backend` works both as a call and as a context manager::

    graphlab.ops.set_backend("reference")          # from now on
    with graphlab.ops.set_backend("triton"):       # only inside the block, then the previous one is restored
        ...

Every op reports the path it actually ran through :func:`record_path`; tests read it back with
:func:`last_path` so they can assert which path ran. The module is op-agnostic: a new op calls
``path = resolve_backend(*tensors)``, runs that path and calls ``record_path("my_op", path)``.
"""

from __future__ import annotations

import importlib.util
import os
from types import TracebackType
from typing import Literal, TypeVar, get_args

import torch

BackendName = Literal["auto", "reference", "cpu", "triton"]
PathName = Literal["reference", "cpu", "triton"]

_BACKENDS: tuple[str, ...] = get_args(BackendName)

_state: dict[str, object] = {"backend": "auto", "validate": True}
_last_paths: dict[str, str] = {}
_path_counts: dict[tuple[str, str], int] = {}

_Setter = TypeVar("_Setter", bound="_RestoreOnExit")


class _RestoreOnExit:
    """Shared context-manager half of :class:`set_backend` / :class:`set_validation`: the setter stores the
    previous value of ``_state[self._key]`` in ``self.previous`` and leaving the block restores it."""

    _key: str
    previous: object

    def __enter__(self: _Setter) -> _Setter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _state[self._key] = self.previous


class set_backend(_RestoreOnExit):  # noqa: N801 - lower-case on purpose: it reads as a function call
    """Force the path every op takes; also a context manager that restores the previous backend.

    Args:
        name: ``"auto"`` (Triton for CUDA tensors, the CPU path otherwise), ``"reference"``, ``"cpu"`` or
            ``"triton"``.

    Raises:
        ValueError: if ``name`` is not one of the four names.
    """

    _key = "backend"

    def __init__(self, name: str) -> None:
        if name not in _BACKENDS:
            raise ValueError(
                f"unknown backend {name!r}; choose one of {', '.join(repr(b) for b in _BACKENDS)}"
            )
        self.previous: str = str(_state["backend"])
        self.name: str = name
        _state["backend"] = name

    def __repr__(self) -> str:
        return f"set_backend({self.name!r})"


def get_backend() -> str:
    """Return the backend currently set (``"auto"`` unless :func:`set_backend` changed it)."""
    return str(_state["backend"])


class set_validation(_RestoreOnExit):  # noqa: N801 - same call-or-context-manager shape as set_backend
    """Switch the input checks at the public boundary of every op on (default) or off.

    The checks cost a few passes over the index tensors (and a host sync on CUDA); switch them off in a hot
    loop once the graph is known to be valid. Works as a call or as a context manager that restores the
    previous setting.
    """

    _key = "validate"

    def __init__(self, enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise ValueError(f"set_validation expects True or False, got {enabled!r}")
        self.previous: bool = bool(_state["validate"])
        _state["validate"] = enabled


def validation_enabled() -> bool:
    """Whether ops validate their inputs (see :class:`set_validation`)."""
    return bool(_state["validate"])


def triton_available() -> bool:
    """Whether the ``triton`` package can be imported (checked without importing it)."""
    return importlib.util.find_spec("triton") is not None


def triton_interpret() -> bool:
    """Whether ``TRITON_INTERPRET=1`` is set, so Triton kernels may run on CPU tensors."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def resolve_backend(*tensors: torch.Tensor | None) -> PathName:
    """Pick the path for an op whose inputs are ``tensors`` (``None`` entries are ignored).

    ``"auto"`` gives ``"triton"`` when the tensors are on CUDA and Triton is importable, ``"reference"`` on CUDA
    without Triton (plain torch ops run on any device), and ``"cpu"`` for CPU tensors. A forced ``"triton"`` on
    CPU tensors needs ``TRITON_INTERPRET=1`` (the Triton interpreter).

    Raises:
        RuntimeError: if ``"triton"`` is forced but Triton is missing, or the tensors are on the CPU without
            ``TRITON_INTERPRET=1``.
    """
    backend = get_backend()
    on_cuda = any(t is not None and t.is_cuda for t in tensors)
    if backend == "auto":
        if on_cuda:
            return "triton" if triton_available() else "reference"
        return "cpu"
    if backend == "triton":
        if not triton_available():
            raise RuntimeError(
                "backend 'triton' was forced but triton is not installed; "
                "`pip install triton` or use set_backend('auto')"
            )
        if not on_cuda and not triton_interpret():
            raise RuntimeError(
                "backend 'triton' was forced on CPU tensors; set TRITON_INTERPRET=1 before importing triton "
                "to run the kernels in the interpreter, move the tensors to CUDA, or use set_backend('auto')"
            )
        return "triton"
    return backend  # type: ignore[return-value]


def record_path(op: str, path: str) -> None:
    """Note that ``op`` just ran through ``path`` (read back by :func:`last_path` / :func:`path_count`)."""
    _last_paths[op] = path
    _path_counts[(op, path)] = _path_counts.get((op, path), 0) + 1


def last_path(op: str) -> str | None:
    """The path the most recent call of ``op`` ran (``"reference"``, ``"cpu"``, ``"triton"``), or ``None``.

    Backward passes record themselves as ``op + ".backward"``.
    """
    return _last_paths.get(op)


def path_count(op: str, path: str) -> int:
    """How many times ``op`` ran through ``path`` since start-up or the last :func:`reset_path_log`."""
    return _path_counts.get((op, path), 0)


def reset_path_log() -> None:
    """Forget the recorded paths (tests call this to start from a clean slate)."""
    _last_paths.clear()
    _path_counts.clear()
