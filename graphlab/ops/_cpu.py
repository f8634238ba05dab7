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

This module holds the two CPU kernel tables (:data:`GATHER_REDUCE_NATIVE`, :data:`GATHER_REDUCE_TORCH`, and
the segment-softmax ones built on them); the one ``autograd.Function`` per op that calls them lives in
:mod:`graphlab.ops.gather_reduce` / :mod:`graphlab.ops.segment` (see :mod:`graphlab.ops._kernel_table`).

``torch_scatter`` is not used on this path even when installed: its CPU kernels are serial (its maintainer
recommends the PyTorch ops on CPU, pytorch_scatter#404) and materialise ``x[src]``; ``benchmarks/aggregate.py``
times it as a baseline when it is installed.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from graphlab.ops import _native
from graphlab.ops._kernel_table import GatherReduceKernels, SegmentSoftmaxKernels
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


# ----------------------------------------------------------------------------------------------- torch table


def torch_forward(
    x: Tensor, rowptr: Tensor, col: Tensor | None, weight: Tensor | None, reduce: str, want_arg: bool
) -> tuple[Tensor, Tensor | None]:
    """Forward with ``torch.sparse.mm`` (``col=None``: a ``scatter_reduce`` over segments of ``x``); the arg
    edges (int64) for max/min when ``want_arg``."""
    if col is None:
        return _torch_segment_forward(x, rowptr, reduce, want_arg)
    out = spmm(rowptr, col, weight, x, reduce)
    arg = arg_edges(x, rowptr, col, weight, out) if want_arg and reduce in ("max", "min") else None
    return out, arg


def _torch_segment_forward(src: Tensor, ptr: Tensor, reduce: str, want_arg: bool) -> tuple[Tensor, Tensor | None]:
    """``scatter_reduce`` into segments; arg as in the reference (first extremum)."""
    row = csr_row_index(ptr)
    num_rows = ptr.numel() - 1
    index = row.unsqueeze(1).expand_as(src)
    if reduce in ("sum", "mean"):
        out = src.new_zeros((num_rows, src.size(1))).scatter_reduce(0, index, src, "sum", include_self=True)
        if reduce == "mean":
            out = out / row_count(ptr, src.dtype)
        return out, None
    out = src.new_zeros((num_rows, src.size(1))).scatter_reduce(
        0, index, src, _TORCH_REDUCE[reduce], include_self=False
    )
    if not want_arg:
        return out, None
    edge_id = torch.arange(src.size(0)).unsqueeze(1).expand_as(src)
    candidate = torch.where(src == out.index_select(0, row), edge_id, src.size(0))
    arg = torch.full(out.shape, src.size(0), dtype=torch.long)
    return out, arg.scatter_reduce(0, index, candidate, "amin", include_self=True)


def torch_backward_x(
    rowptr: Tensor, col: Tensor, weight: Tensor | None, grad: Tensor, num_src: int, mean: bool
) -> Tensor:
    """``A^T (grad / c)`` through the cached transpose."""
    if mean:
        grad = grad / row_count(rowptr, grad.dtype)
    return transpose_spmm(rowptr, col, weight, grad, num_src)


def torch_sddmm(rowptr: Tensor, col: Tensor, grad: Tensor, x: Tensor, mean: bool) -> Tensor:
    """``s_e = <grad_i, x_{col_e}> / c_i`` in edge chunks."""
    if mean:
        grad = grad / row_count(rowptr, grad.dtype)
    return sddmm(rowptr, col, grad, x)


def torch_arg_backward(
    rowptr: Tensor, col: Tensor, weight: Tensor | None, arg: Tensor, grad: Tensor, x: Tensor,
    need_x: bool, need_w: bool,
) -> tuple[Tensor | None, Tensor | None]:
    """Send ``grad`` [N, F] through the arg edges ``arg`` [N, F] (``E`` = none) to ``x`` and ``edge_weight``
    with ``index_add_`` (see the module docstring)."""
    num_edges, feat = col.numel(), grad.size(1)
    if num_edges == 0:
        return (torch.zeros_like(x) if need_x else None), (grad.new_zeros(0) if need_w else None)
    valid = arg < num_edges
    safe_arg = torch.where(valid, arg, 0).view(-1)
    g = torch.where(valid, grad, 0)
    src = col.long().index_select(0, safe_arg).view_as(arg)  # source node of each arg edge, shared by both grads
    grad_x = grad_w = None
    if need_x:
        contrib = g if weight is None else g * weight.index_select(0, safe_arg).view_as(arg)
        flat = src * feat + torch.arange(feat).unsqueeze(0)
        grad_x = x.new_zeros(x.numel()).index_add_(0, flat.view(-1), contrib.reshape(-1)).view(x.shape)
    if need_w:
        grad_w = grad.new_zeros(num_edges).index_add_(0, safe_arg, (g * x.gather(0, src)).view(-1))
    return grad_x, grad_w


GATHER_REDUCE_TORCH = GatherReduceKernels(
    forward=torch_forward, backward_x=torch_backward_x, sddmm=torch_sddmm, arg_backward=torch_arg_backward,
    arg_dtype=torch.int64,
)


# ----------------------------------------------------------------------------------------------- native table


def native_forward(
    x: Tensor, rowptr: Tensor, col: Tensor | None, weight: Tensor | None, reduce: str, want_arg: bool
) -> tuple[Tensor, Tensor | None]:
    """The native forward; max/min write the arg edges (int32) in the same pass when ``want_arg``."""
    if col is not None:
        rowptr = _rowptr_like(rowptr, col.dtype)
    return _native.spmm(rowptr, col, weight, x, reduce, want_arg)


def native_backward_x(
    rowptr: Tensor, col: Tensor, weight: Tensor | None, grad: Tensor, num_src: int, mean: bool
) -> Tensor:
    r"""``A^T (grad / c)``: a sum-SpMM over the cached transpose; the kernel scales each gathered ``grad`` row
    ``i`` by ``1 / max(deg_i, 1)`` for mean (no per-edge temporaries)."""
    colptr, row_t, perm_t = cached_transpose(rowptr, col, num_src)
    weight_t = None if weight is None else weight.index_select(0, perm_t)
    inv_count = _inverse_count(rowptr, grad.dtype) if mean else None
    return _native.spmm(_rowptr_like(colptr, row_t.dtype), row_t, weight_t, grad, "sum", False, src_scale=inv_count)[0]


def native_sddmm(rowptr: Tensor, col: Tensor, grad: Tensor, x: Tensor, mean: bool) -> Tensor:
    return _native.sddmm(_rowptr_like(rowptr, col.dtype), col, grad, x, mean)


def native_arg_backward(
    rowptr: Tensor, col: Tensor, weight: Tensor | None, arg: Tensor, grad: Tensor, x: Tensor,
    need_x: bool, need_w: bool,
) -> tuple[Tensor | None, Tensor | None]:
    """Two passes over the ``N x F`` arg entries (no atomics)."""
    rowptr = _rowptr_like(rowptr, col.dtype)
    grad_x = _native.arg_backward_x(rowptr, col, weight, arg, grad, x.size(0), col.numel()) if need_x else None
    grad_w = _native.arg_backward_w(rowptr, col, arg, grad, x) if need_w else None
    return grad_x, grad_w


GATHER_REDUCE_NATIVE = GatherReduceKernels(
    forward=native_forward, backward_x=native_backward_x, sddmm=native_sddmm, arg_backward=native_arg_backward,
    arg_dtype=torch.int32,
)


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


def gather_reduce_kernel_name(x: Tensor, index: Tensor, num_edges: int, reduce: str) -> str:
    """``"cpu-native"`` when the native kernels are available and handle these dtypes, else ``"cpu-torch"``."""
    if _native.supports(x, index, num_edges, reduce) and _native.available():
        return "cpu-native"
    return "cpu-torch"


# ----------------------------------------------------------------------------------------------- segment softmax


def _softmax_tables(table: GatherReduceKernels) -> SegmentSoftmaxKernels:
    """Segment softmax from two segment reductions of ``table`` (max, then the sum of exponentials)."""

    def forward(src: Tensor, ptr: Tensor) -> Tensor:
        row = csr_row_index(ptr)
        seg_max = table.forward(src, ptr, None, None, "max", False)[0]
        shifted = (src - seg_max.index_select(0, row)).exp_()
        denom = table.forward(shifted, ptr, None, None, "sum", False)[0]
        return shifted.div_(denom.index_select(0, row))

    def backward(y: Tensor, grad: Tensor, ptr: Tensor) -> Tensor:
        weighted = grad * y
        dot = table.forward(weighted, ptr, None, None, "sum", False)[0]
        return weighted - y * dot.index_select(0, csr_row_index(ptr))

    return SegmentSoftmaxKernels(forward=forward, backward=backward)


SEGMENT_SOFTMAX_NATIVE = _softmax_tables(GATHER_REDUCE_NATIVE)
SEGMENT_SOFTMAX_TORCH = _softmax_tables(GATHER_REDUCE_TORCH)
