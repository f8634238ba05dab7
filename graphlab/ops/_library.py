"""``torch.library`` custom ops around the kernel calls, so ``torch.compile`` traces *around* them.

Each op's ``autograd.Function`` (in :mod:`graphlab.ops.gather_reduce` / :mod:`graphlab.ops.segment`) calls the
kernels only through these ops. To the compiler each is one opaque node with a fake (meta) implementation that
gives the output shapes and dtypes, so Dynamo neither graph-breaks on ctypes calls, sparse tensors or Triton
launches inside them nor tries to trace them; the autograd logic around them stays plain torch and is traced.

The kernel backend is a string argument (``"cpu-native"``, ``"cpu-torch"``, ``"triton"``, see
:mod:`graphlab.ops._kernel_table`); outputs that a call does not produce (no arg edges, a gradient nobody needs)
are returned as empty tensors, since custom ops return tensors only.

Eager calls skip the custom-op dispatcher (about 25 us per call on the 2-core development machine at E = 500): each public name here calls the op while
``torch.compiler.is_compiling()`` and its Python implementation directly otherwise, so the eager CPU path costs
what it did before the ops were registered.
"""

from __future__ import annotations

import torch
from torch import Tensor

from collections.abc import Callable
from typing import Any, TypeVar

from graphlab.ops._kernel_table import GatherReduceKernels, SegmentSoftmaxKernels, kernels

_Impl = TypeVar("_Impl", bound=Callable[..., Any])

def _gather_reduce_table(name: str) -> GatherReduceKernels:
    return kernels("gather_reduce", name)  # type: ignore[return-value]


def _softmax_table(name: str) -> SegmentSoftmaxKernels:
    return kernels("segment_softmax", name)  # type: ignore[return-value]


def _register(name: str, fake: Callable[..., Any]) -> Callable[[_Impl], _Impl]:
    """Register the decorated function as the custom op ``name`` with ``fake`` as its fake implementation, and
    return a function that calls the op while compiling and the plain function in eager mode."""

    def wrap(impl: _Impl) -> _Impl:
        op = torch.library.custom_op(name, impl, mutates_args=())
        op.register_fake(fake)

        def call(*args: Any) -> Any:
            return op(*args) if torch.compiler.is_compiling() else impl(*args)

        call.__doc__, call.__name__, call.op = impl.__doc__, impl.__name__, op  # type: ignore[attr-defined]
        return call  # type: ignore[return-value]

    return wrap


def _none_as_empty(t: Tensor | None, like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    return like.new_empty(0, dtype=dtype or like.dtype) if t is None else t


# --------------------------------------------------------------------------------------------- gather-reduce


def _gather_reduce_fwd_fake(x, rowptr, col, weight, reduce, want_arg, kernel):  # noqa: ANN001, ANN202
    out = x.new_empty((rowptr.size(0) - 1, x.size(1)))
    has_arg = want_arg and reduce in ("max", "min")
    arg = x.new_empty(out.shape if has_arg else (0,), dtype=_gather_reduce_table(kernel).arg_dtype)
    return out, arg


@_register("graphlab::gather_reduce_fwd", _gather_reduce_fwd_fake)
def gather_reduce_fwd(
    x: Tensor, rowptr: Tensor, col: Tensor | None, weight: Tensor | None, reduce: str, want_arg: bool, kernel: str
) -> tuple[Tensor, Tensor]:
    """``(out [N, F], arg [N, F] or empty)``; ``col=None`` reduces consecutive rows of ``x`` (segments)."""
    table = _gather_reduce_table(kernel)
    out, arg = table.forward(x, rowptr, col, weight, reduce, want_arg)
    return out, _none_as_empty(arg, out, table.arg_dtype)

def _gather_reduce_bwd_x_fake(rowptr, col, weight, grad, num_src, mean, kernel):  # noqa: ANN001, ANN202
    return grad.new_empty((num_src, grad.size(1)))


@_register("graphlab::gather_reduce_bwd_x", _gather_reduce_bwd_x_fake)
def gather_reduce_bwd_x(
    rowptr: Tensor, col: Tensor, weight: Tensor | None, grad: Tensor, num_src: int, mean: bool, kernel: str
) -> Tensor:
    """``A^T (grad / c)`` ``[num_src, F]`` (sum/mean backward w.r.t. ``x``)."""
    return _gather_reduce_table(kernel).backward_x(rowptr, col, weight, grad, num_src, mean)

def _gather_reduce_sddmm_fake(rowptr, col, grad, x, mean, kernel):  # noqa: ANN001, ANN202
    return x.new_empty(col.shape)


@_register("graphlab::gather_reduce_sddmm", _gather_reduce_sddmm_fake)
def gather_reduce_sddmm(rowptr: Tensor, col: Tensor, grad: Tensor, x: Tensor, mean: bool, kernel: str) -> Tensor:
    """``s_e = <grad_i, x_{col_e}> / c_i`` ``[E]`` (sum/mean backward w.r.t. the edge weights)."""
    return _gather_reduce_table(kernel).sddmm(rowptr, col, grad, x, mean)

def _gather_reduce_arg_bwd_fake(rowptr, col, weight, arg, grad, x, need_x, need_w, kernel):  # noqa: ANN001, ANN202
    return x.new_empty(x.shape if need_x else (0,)), x.new_empty(col.shape if need_w else (0,))


@_register("graphlab::gather_reduce_arg_bwd", _gather_reduce_arg_bwd_fake)
def gather_reduce_arg_bwd(
    rowptr: Tensor, col: Tensor, weight: Tensor | None, arg: Tensor, grad: Tensor, x: Tensor,
    need_x: bool, need_w: bool, kernel: str,
) -> tuple[Tensor, Tensor]:
    """``(grad_x or empty, grad_w or empty)`` through the arg edges (max/min backward)."""
    grad_x, grad_w = _gather_reduce_table(kernel).arg_backward(rowptr, col, weight, arg, grad, x, need_x, need_w)
    return _none_as_empty(grad_x, x), _none_as_empty(grad_w, x)


# --------------------------------------------------------------------------------------------- segment softmax


def _segment_softmax_fwd_fake(src, ptr, kernel):  # noqa: ANN001, ANN202
    return torch.empty_like(src)


@_register("graphlab::segment_softmax_fwd", _segment_softmax_fwd_fake)
def segment_softmax_fwd(src: Tensor, ptr: Tensor, kernel: str) -> Tensor:
    """The softmax of ``src`` ``[E, H]`` within each segment of ``ptr``."""
    return _softmax_table(kernel).forward(src, ptr)

def _segment_softmax_bwd_fake(y, grad, ptr, kernel):  # noqa: ANN001, ANN202
    return torch.empty_like(y)


@_register("graphlab::segment_softmax_bwd", _segment_softmax_bwd_fake)
def segment_softmax_bwd(y: Tensor, grad: Tensor, ptr: Tensor, kernel: str) -> Tensor:
    """``y * (grad - segsum(grad * y))``."""
    return _softmax_table(kernel).backward(y, grad, ptr)
