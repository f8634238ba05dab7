"""The per-backend kernel tables behind the one ``torch.autograd.Function`` of each op.

Every differentiable op in :mod:`graphlab.ops` is written once as an ``autograd.Function`` whose forward and
backward call kernels looked up here by backend name:

* ``"cpu-native"``: the compiled C kernels (:mod:`graphlab.ops._native`), wrapped in :mod:`graphlab.ops._cpu`;
* ``"cpu-torch"``: torch-only CPU implementations (:mod:`graphlab.ops._cpu`);
* ``"triton"``: the host launchers of :mod:`graphlab.kernels` (CUDA, or CPU under ``TRITON_INTERPRET=1``),
  adapted in :mod:`graphlab.ops._triton`.

A table is a frozen dataclass of callables, so adding a backend is adding one entry, and the autograd logic
(which gradient needs which kernel, what is saved for backward) is never duplicated. The modules that define
the entries are imported lazily (the Triton one imports ``triton``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

KernelName = str  # "cpu-native" | "cpu-torch" | "triton"
KERNEL_NAMES: tuple[str, ...] = ("cpu-native", "cpu-torch", "triton")
_MODULES = {"cpu-native": "graphlab.ops._cpu", "cpu-torch": "graphlab.ops._cpu", "triton": "graphlab.ops._triton"}
_TABLE_ATTR = {"cpu-native": "NATIVE", "cpu-torch": "TORCH", "triton": "TRITON"}


@dataclass(frozen=True)
class GatherReduceKernels:
    r"""Kernels of :func:`graphlab.ops.gather_reduce` (and of :func:`graphlab.ops.segment_reduce`, ``col=None``).

    Attributes:
        forward: ``(x, rowptr, col | None, weight | None, reduce, want_arg) -> (out [N, F], arg [N, F] | None)``;
            ``arg`` holds the first arg edge per (row, feature) for max/min (``E`` for empty rows) when
            ``want_arg``.
        backward_x: ``(rowptr, col, weight | None, grad, num_src, mean) -> A^T (grad / c)`` with
            :math:`c_i = \max(\deg_i, 1)` for mean, 1 otherwise.
        sddmm: ``(rowptr, col, grad, x, mean) -> s [E]``, :math:`s_e = \langle grad_i, x_{col_e}\rangle / c_i`.
        arg_backward: ``(rowptr, col, weight | None, arg, grad, x, need_x, need_w) -> (grad_x | None,
            grad_w | None)`` through the arg edges (max/min).
        arg_dtype: the dtype of ``arg`` (int32 for the native kernels, int64 otherwise).
    """

    forward: Callable[[Tensor, Tensor, Tensor | None, Tensor | None, str, bool], tuple[Tensor, Tensor | None]]
    backward_x: Callable[[Tensor, Tensor, Tensor | None, Tensor, int, bool], Tensor]
    sddmm: Callable[[Tensor, Tensor, Tensor, Tensor, bool], Tensor]
    arg_backward: Callable[
        [Tensor, Tensor, Tensor | None, Tensor, Tensor, Tensor, bool, bool], tuple[Tensor | None, Tensor | None]
    ]
    arg_dtype: torch.dtype


@dataclass(frozen=True)
class SegmentSoftmaxKernels:
    r"""Kernels of :func:`graphlab.ops.segment_softmax` on ``[E, H]`` logits.

    Attributes:
        forward: ``(src, ptr) -> y``, the softmax within each segment.
        backward: ``(y, grad, ptr) -> y * (grad - segsum(grad * y))``.
    """

    forward: Callable[[Tensor, Tensor], Tensor]
    backward: Callable[[Tensor, Tensor, Tensor], Tensor]


@functools.cache
def kernels(op: str, name: KernelName) -> object:
    """The kernel table of ``op`` (``"gather_reduce"`` or ``"segment_softmax"``) for backend ``name``.

    Raises:
        ValueError: for an unknown backend name.
    """
    if name not in _MODULES:
        raise ValueError(f"unknown kernel backend {name!r}; choose one of {KERNEL_NAMES}")
    module = importlib.import_module(_MODULES[name])
    return getattr(module, f"{op.upper()}_{_TABLE_ATTR[name]}")
