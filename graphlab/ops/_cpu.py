r"""CPU path of :func:`graphlab.ops.gather_reduce`, built from native torch ops.

Forward: ``torch.sparse.mm(A, x, reduce)`` on a CSR tensor (row-parallel, no per-edge rows).

Backward, with :math:`g = \partial L / \partial \mathrm{out}` and :math:`\tilde g_i = g_i / \max(\deg_i, 1)`
for ``mean`` (:math:`\tilde g = g` for ``sum``):

* :math:`\partial L/\partial x = A^\top \tilde g`, one SpMM with the transposed CSR, which is built once per graph
  and cached (:func:`graphlab.ops.csr.cached_transpose`); ``torch.sparse.mm``'s own backward rebuilds it every
  call.
* :math:`\partial L/\partial w_e = \langle \tilde g_{\mathrm{row}_e}, x_{\mathrm{col}_e} \rangle` (an SDDMM),
  computed in edge chunks so memory stays ``O(chunk \cdot F)``, and only when ``edge_weight`` needs a gradient.
* ``max``/``min``: the arg edge of every (row, feature) is recovered chunk by chunk (first edge in CSR order whose
  message equals the output), then :math:`\partial L/\partial x_{\mathrm{col}_a, f} \mathrel{+}= w_a g_{i,f}` is
  one ``index_add_`` over ``N x F`` entries and :math:`\partial L/\partial w_a \mathrel{+}= g_{i,f}
  x_{\mathrm{col}_a, f}`.

When the native kernels (:mod:`graphlab.ops._native`) are available (float32/float64) they replace these pieces:
they fuse the forward of ``max``/``min`` with the arg computation and run their own row-parallel SpMM; other
dtypes (bfloat16, float16) use the torch ops here.

``torch_scatter`` is not used on this path even when installed: its CPU kernels are serial (its maintainer
recommends the PyTorch ops on CPU, pytorch_scatter#404) and materialise ``x[src]``; ``benchmarks/aggregate.py``
times it as a baseline when it is installed.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from graphlab.ops import _native
from graphlab.ops._backend import record_path
from graphlab.ops.csr import IdentityCache, cached_transpose
from graphlab.ops.reference import csr_row_index

IMPL_LOG = "gather_reduce.cpu_impl"  # last_path(IMPL_LOG) says "native" or "torch"
_TORCH_REDUCE = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin"}

_CONVERTED = IdentityCache()  # per-rowptr derived tensors (dtype conversion, 1 / degree), see _rowptr_like

# Edges per chunk in the SDDMM / arg passes: chunk x F values live at once (64 K x 64 x 4 B = 16 MiB at F = 64).
EDGE_CHUNK = 1 << 16


def sparse_csr(rowptr: Tensor, col: Tensor, values: Tensor, num_cols: int) -> Tensor:
    """A ``torch.sparse_csr_tensor`` view of ``(rowptr, col, values)`` without invariant checks."""
    if rowptr.dtype != col.dtype:
        rowptr = rowptr.to(col.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta": known, harmless
        return torch.sparse_csr_tensor(
            rowptr, col, values, (rowptr.numel() - 1, num_cols), check_invariants=False
        )


def spmm(rowptr: Tensor, col: Tensor, weight: Tensor | None, x: Tensor, reduce: str) -> Tensor:
    """``out = A x`` with the given reduction, ``A`` the CSR ``(rowptr, col, weight or 1)``."""
    values = weight if weight is not None else x.new_ones(col.numel())
    adj = sparse_csr(rowptr, col, values.detach(), x.size(0))
    return torch.sparse.mm(adj, x.detach(), _TORCH_REDUCE[reduce])


def row_count(rowptr: Tensor, dtype: torch.dtype) -> Tensor:
    """``max(deg_i, 1)`` as a column ``[N, 1]`` (the ``mean`` divisor)."""
    return (rowptr[1:] - rowptr[:-1]).clamp(min=1).to(dtype).unsqueeze(1)


def transpose_spmm(rowptr: Tensor, col: Tensor, weight: Tensor | None, grad: Tensor, num_cols: int) -> Tensor:
    """``A^T grad`` through the cached transpose of ``(rowptr, col)``."""
    colptr, row_t, perm_t = cached_transpose(rowptr, col, num_cols)
    weight_t = None if weight is None else weight.index_select(0, perm_t)
    return spmm(colptr, row_t, weight_t, grad, "sum")


def sddmm(rowptr: Tensor, col: Tensor, grad: Tensor, x: Tensor) -> Tensor:
    r"""``s_e = <grad[row_e], x[col_e]>`` for every edge, in chunks of :data:`EDGE_CHUNK` edges."""
    row = csr_row_index(rowptr)
    out = x.new_empty(col.numel())
    for start in range(0, col.numel(), EDGE_CHUNK):
        stop = min(start + EDGE_CHUNK, col.numel())
        g = grad.index_select(0, row[start:stop])
        out[start:stop] = (g * x.index_select(0, col[start:stop])).sum(-1)
    return out


def arg_edges(x: Tensor, rowptr: Tensor, col: Tensor, weight: Tensor | None, out: Tensor) -> Tensor:
    """First edge (CSR order) whose message equals ``out`` per (row, feature); ``E`` for empty rows. ``[N, F]``."""
    num_edges = col.numel()
    row = csr_row_index(rowptr)
    arg = torch.full(out.shape, num_edges, dtype=torch.long)
    for start in range(0, num_edges, EDGE_CHUNK):
        stop = min(start + EDGE_CHUNK, num_edges)
        msg = x.index_select(0, col[start:stop])
        if weight is not None:
            msg = msg * weight[start:stop].unsqueeze(1)
        rows = row[start:stop]
        edge_id = torch.arange(start, stop).unsqueeze(1).expand_as(msg)
        candidate = torch.where(msg == out.index_select(0, rows), edge_id, num_edges)
        arg.scatter_reduce_(0, rows.unsqueeze(1).expand_as(msg), candidate, "amin", include_self=True)
    return arg


def route_arg_grad(
    grad: Tensor, arg: Tensor, x: Tensor, col: Tensor, weight: Tensor | None, need_x: bool, need_w: bool
) -> tuple[Tensor | None, Tensor | None]:
    """Send ``grad`` [N, F] through the arg edges ``arg`` [N, F] (``E`` = none) to ``x`` and ``edge_weight``."""
    num_edges, feat = col.numel(), grad.size(1)
    if num_edges == 0:
        return (torch.zeros_like(x) if need_x else None), (grad.new_zeros(0) if need_w else None)
    valid = arg < num_edges
    safe_arg = torch.where(valid, arg, 0)
    g = torch.where(valid, grad, 0)
    grad_x = grad_w = None
    if need_x:
        src = col.long().index_select(0, safe_arg.view(-1)).view_as(arg)
        contrib = g if weight is None else g * weight.index_select(0, safe_arg.view(-1)).view_as(arg)
        flat = src * feat + torch.arange(feat).unsqueeze(0)
        grad_x = torch.zeros_like(x).view(-1).index_add_(0, flat.view(-1), contrib.reshape(-1)).view_as(x)
    if need_w:
        xv = x.gather(0, col.long().index_select(0, safe_arg.view(-1)).view_as(arg))
        grad_w = grad.new_zeros(num_edges).index_add_(0, safe_arg.view(-1), (g * xv).view(-1))
    return grad_x, grad_w


class TorchGatherReduce(torch.autograd.Function):
    """Forward with ``torch.sparse.mm``; backward through the cached transpose / arg routing (see module doc)."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, rowptr: Tensor, col: Tensor, weight: Tensor | None, reduce: str
    ) -> Tensor:
        out = spmm(rowptr, col, weight, x, reduce)
        ctx.reduce = reduce
        ctx.save_for_backward(x, rowptr, col, weight, out if reduce in ("max", "min") else None)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, rowptr, col, weight, out = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[3]
        grad = grad.contiguous()
        if ctx.reduce in ("max", "min"):
            arg = arg_edges(x, rowptr, col, weight, out)
            grad_x, grad_w = route_arg_grad(grad, arg, x, col, weight, need_x, need_w)
            return grad_x, None, None, grad_w, None
        if ctx.reduce == "mean":
            grad = grad / row_count(rowptr, grad.dtype)
        grad_x = transpose_spmm(rowptr, col, weight, grad, x.size(0)) if need_x else None
        grad_w = sddmm(rowptr, col, grad, x) if need_w else None
        return grad_x, None, None, grad_w, None


class NativeGatherReduce(torch.autograd.Function):
    """Forward and backward with the native kernels of :mod:`graphlab.ops._native` (same math as above).

    ``max``/``min`` compute the arg edge in the forward pass (only when a gradient is needed), so the backward
    is two passes over ``N x F`` entries; ``sum``/``mean`` multiply by the cached transpose, with the ``mean``
    divisor folded into the transposed edge weights.
    """

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, rowptr: Tensor, col: Tensor, weight: Tensor | None, reduce: str
    ) -> Tensor:
        want_arg = ctx.needs_input_grad[0] or ctx.needs_input_grad[3]
        out, arg = _native.spmm(rowptr, col, weight, x, reduce, want_arg)
        ctx.reduce = reduce
        ctx.save_for_backward(x, rowptr, col, weight, arg)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, rowptr, col, weight, arg = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[3]
        grad = grad.contiguous()
        grad_x = grad_w = None
        if ctx.reduce in ("max", "min"):
            if need_x:
                grad_x = _native.arg_backward_x(rowptr, col, weight, arg, grad, x.size(0), col.numel())
            if need_w:
                grad_w = _native.arg_backward_w(rowptr, col, arg, grad, x)
            return grad_x, None, None, grad_w, None
        if need_x:
            grad_x = _native_transpose_spmm(rowptr, col, weight, grad, x.size(0), ctx.reduce == "mean")
        if need_w:
            grad_w = _native.sddmm(rowptr, col, grad, x, ctx.reduce == "mean")
        return grad_x, None, None, grad_w, None


def _native_transpose_spmm(
    rowptr: Tensor, col: Tensor, weight: Tensor | None, grad: Tensor, num_cols: int, mean: bool
) -> Tensor:
    r"""``A^T (grad / cnt)``: a sum-SpMM over the cached transpose; the kernel scales each gathered ``grad`` row
    ``i`` by ``1 / max(deg_i, 1)`` for mean (no per-edge temporaries)."""
    colptr, row_t, perm_t = cached_transpose(rowptr, col, num_cols)
    weight_t = None if weight is None else weight.index_select(0, perm_t).contiguous()
    inv_count = _inverse_count(rowptr, grad.dtype) if mean else None
    return _native.spmm(colptr, row_t, weight_t, grad, "sum", False, src_scale=inv_count)[0]


def _inverse_count(rowptr: Tensor, dtype: torch.dtype) -> Tensor:
    """``1 / max(deg_i, 1)`` ``[N]``, once per ``rowptr`` tensor: a few tiny torch ops cost little work but, on a
    busy machine, each parallel op can wait for a core, so a hot backward avoids them."""
    return _CONVERTED.get_or_build(
        [rowptr], ("inverse_count", dtype), lambda: 1.0 / (rowptr[1:] - rowptr[:-1]).clamp(min=1).to(dtype)
    )


def _rowptr_like(rowptr: Tensor, dtype: torch.dtype) -> Tensor:
    """``rowptr`` in the index dtype of ``col`` (the kernels take one index type), converted once per tensor so
    that the transpose cache, keyed on tensor identity, keeps hitting."""
    if rowptr.dtype == dtype and rowptr.is_contiguous():
        return rowptr
    return _CONVERTED.get_or_build([rowptr], dtype, lambda: rowptr.to(dtype).contiguous())


def gather_reduce(
    x: Tensor, rowptr: Tensor, col: Tensor, reduce: str, edge_weight: Tensor | None
) -> Tensor:
    """CPU gather-reduce (inputs already validated); see the module docstring for the math.

    Uses the native kernels when they are available for these dtypes, else the torch-only implementation.
    """
    x = x.contiguous()
    if _native.supports(x, col, col.numel(), reduce) and _native.available():
        record_path(IMPL_LOG, "native")
        rowptr = _rowptr_like(rowptr, col.dtype)
        weight = None if edge_weight is None else edge_weight.contiguous()
        return NativeGatherReduce.apply(x, rowptr, col.contiguous(), weight, reduce)
    record_path(IMPL_LOG, "torch")
    return TorchGatherReduce.apply(x, rowptr, col, edge_weight, reduce)
