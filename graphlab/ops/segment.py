r"""Segment reductions and the segment softmax (attention-style aggregation over sorted groups).

.. math::
    \mathrm{segment\_reduce}(s, \mathrm{ptr})_i = \bigoplus_{e=\mathrm{ptr}_i}^{\mathrm{ptr}_{i+1}-1} s_e,
    \qquad
    \mathrm{segment\_softmax}(s, \mathrm{ptr})_e = \frac{\exp(s_e)}{\sum_{e' \in \mathrm{seg}(e)} \exp(s_{e'})}

Both dispatch like every op (:mod:`graphlab.ops._backend`) and share the conventions of
:mod:`graphlab.ops.reference` (empty segments reduce to 0, mean divides by ``max(count, 1)``, max/min send the
gradient to the first arg entry). A segment reduction is a gather-reduce whose gather is the identity, so the CPU
and Triton paths reuse the gather-reduce forward kernels with ``col = None``; the backward passes are dense
``E x F`` scatters/gathers done with torch ops (``src`` itself is ``E x F``, so nothing larger is created).
Each op has one ``autograd.Function`` (:class:`SegmentReduce`, :class:`SegmentSoftmax`) over the kernel tables
of :mod:`graphlab.ops._kernel_table`. ``src`` may be any floating dtype (float32/float64 on the native CPU
kernels, bfloat16/float16 on torch ops), non-contiguous or expanded; ``ptr`` int32 or int64.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from graphlab.ops import _cpu, _library, reference
from graphlab.ops._backend import record_path, resolve_backend, validation_enabled
from graphlab.ops.csr import _check_index_tensor
from graphlab.ops.gather_reduce import check_reduce
from graphlab.ops.reference import Reduce, csr_row_index


# ----------------------------------------------------------------------------------------------- validation


def check_segments(src: Any, ptr: Any, name: str = "src") -> None:
    """``src`` floating ``[E]``/``[E, F]``, ``ptr`` an index ``[N + 1]`` from 0 to ``E``, non-decreasing."""
    check_segment_types(src, ptr, name)
    _check_segment_values(src, ptr, name)


def check_segment_types(src: Any, ptr: Any, name: str = "src") -> None:
    """The O(1) part of :func:`check_segments` (types, dtypes, dimensions, devices), run on every call."""
    if not isinstance(src, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(src).__name__}")
    if not src.is_floating_point():
        raise ValueError(f"{name} has dtype {src.dtype}; it must be floating point")
    if src.dim() not in (1, 2):
        raise ValueError(f"{name} must be [E] or [E, F], got shape {tuple(src.shape)}")
    _check_index_tensor("ptr", ptr, 1)
    if ptr.numel() == 0:
        raise ValueError("ptr must have num_segments + 1 >= 1 entries, got an empty tensor")
    if ptr.device != src.device:
        raise ValueError(f"ptr is on {ptr.device} but {name} is on {src.device}; move both to one device")


def _check_segment_values(src: Tensor, ptr: Tensor, name: str) -> None:
    if int(ptr[0]) != 0:
        raise ValueError(f"ptr[0] is {int(ptr[0])} but must be 0")
    if int(ptr[-1]) != src.size(0):
        raise ValueError(
            f"ptr[-1] is {int(ptr[-1])} but {name} has {src.size(0)} entries; ptr and {name} lengths mismatch"
        )
    if ptr.numel() > 1 and bool((ptr[1:] < ptr[:-1]).any()):
        raise ValueError("ptr is not non-decreasing; segments must be consecutive and sorted")


# ----------------------------------------------------------------------------------------------- autograd


class SegmentReduce(torch.autograd.Function):
    r"""The one autograd definition of the segment reduction: forward through the ``kernel`` table's
    gather-reduce forward with ``col = None``; backward :math:`\partial s_e = g_{\mathrm{seg}(e)} / c` for
    sum/mean (``c`` = 1 or the segment size) and :math:`\partial s_{a,f} = g_{i,f}` at the arg entry for
    max/min (plain torch ops: ``src`` is ``E x F`` already)."""

    @staticmethod
    def forward(ctx: Any, src: Tensor, ptr: Tensor, reduce: str, kernel: str) -> Tensor:
        want_arg = reduce in ("max", "min") and ctx.needs_input_grad[0]
        out, arg = _library.gather_reduce_fwd(src, ptr, None, None, reduce, want_arg, kernel)
        ctx.reduce = reduce
        ctx.num_entries = src.size(0)
        ctx.save_for_backward(ptr, arg)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None]:
        ptr, arg = ctx.saved_tensors
        if ctx.reduce in ("sum", "mean"):
            if ctx.reduce == "mean":
                grad = grad / (ptr[1:] - ptr[:-1]).clamp(min=1).to(grad.dtype).unsqueeze(1)
            return grad.index_select(0, csr_row_index(ptr)), None, None, None
        padded = grad.new_zeros((ctx.num_entries + 1, grad.size(1)))  # row E collects the empty-segment sentinel
        padded.scatter_(0, arg.long(), grad)
        return padded[:-1], None, None, None


class SegmentSoftmax(torch.autograd.Function):
    r"""The one autograd definition of the segment softmax over the ``kernel`` table: forward :math:`y`, backward
    :math:`y \odot (g - \mathrm{segsum}(g \odot y))`."""

    @staticmethod
    def forward(ctx: Any, src: Tensor, ptr: Tensor, kernel: str) -> Tensor:
        out = _library.segment_softmax_fwd(src, ptr, kernel)
        ctx.kernel = kernel
        ctx.save_for_backward(out, ptr)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        out, ptr = ctx.saved_tensors
        return _library.segment_softmax_bwd(out, grad.contiguous(), ptr, ctx.kernel), None, None


def _kernel_for(path: str, src: Tensor, ptr: Tensor, reduce: str) -> str:
    """The kernel table for ``path``: ``"triton"``, or the native / torch CPU kernels by dtype."""
    if path == "triton":
        return "triton"
    if src.device.type != "cpu":
        raise RuntimeError(f"the 'cpu' path needs CPU tensors but src is on {src.device}; use set_backend('auto')")
    return _cpu.gather_reduce_kernel_name(src, ptr, src.size(0), reduce)


def segment_reduce(src: Tensor, ptr: Tensor, reduce: Reduce = "sum", *, validate: bool | None = None) -> Tensor:
    r"""Reduce consecutive segments: :math:`\mathrm{out}_i = \bigoplus_{e=\mathrm{ptr}_i}^{\mathrm{ptr}_{i+1}-1}
    \mathrm{src}_e`.

    Args:
        src: ``[E, F]`` or ``[E]`` floating values, segment after segment.
        ptr: ``[N + 1]`` int64/int32 boundaries, ``ptr[0] = 0``, ``ptr[N] = E``, non-decreasing.
        reduce: ``"sum" | "mean" | "max" | "min"``; empty segments give 0.
        validate: check the values of ``ptr`` (ValueError); ``None`` follows
            :class:`graphlab.ops.set_validation`. Types, dtypes, shapes and devices are checked on every call.

    Returns:
        ``[N, F]`` (or ``[N]``) tensor, differentiable w.r.t. ``src``.
    """
    check_reduce(reduce)
    if validation_enabled() if validate is None else validate:
        check_segments(src, ptr)
    else:
        check_segment_types(src, ptr)
    path = resolve_backend(src, ptr)
    record_path("segment_reduce", path)
    if path == "reference":
        return reference.segment_reduce(src, ptr, reduce)
    squeeze = src.dim() == 1
    values = (src.unsqueeze(1) if squeeze else src).contiguous()
    out = SegmentReduce.apply(values, ptr, reduce, _kernel_for(path, values, ptr, reduce))
    return out.squeeze(1) if squeeze else out


def segment_softmax(src: Tensor, ptr: Tensor, *, validate: bool | None = None) -> Tensor:
    r"""Softmax within each segment, per column:
    :math:`y_e = \exp(s_e - m_i) / \sum_{e' \in \mathrm{seg}(i)} \exp(s_{e'} - m_i)` with the segment max
    :math:`m_i` (for stability).

    Args:
        src: ``[E]`` or ``[E, H]`` floating logits (e.g. one attention score per edge and head, edges sorted by
            target so that ``ptr`` is the target CSR ``rowptr``).
        ptr: ``[N + 1]`` segment boundaries.
        validate: check the values of ``ptr`` (ValueError); ``None`` follows
            :class:`graphlab.ops.set_validation`. Types, dtypes, shapes and devices are checked on every call.

    Returns:
        a tensor shaped like ``src``, differentiable w.r.t. ``src``.
    """
    if validation_enabled() if validate is None else validate:
        check_segments(src, ptr)
    else:
        check_segment_types(src, ptr)
    path = resolve_backend(src, ptr)
    record_path("segment_softmax", path)
    if path == "reference":
        return reference.segment_softmax(src, ptr)
    squeeze = src.dim() == 1
    logits = (src.unsqueeze(1) if squeeze else src).contiguous()
    out = SegmentSoftmax.apply(logits, ptr, _kernel_for(path, logits, ptr, "max"))
    return out.squeeze(1) if squeeze else out
