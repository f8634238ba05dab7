r"""Triton kernels for CSR gather-reduce (:func:`graphlab.ops.gather_reduce` on CUDA).

.. math::
    \mathrm{out}_i = \bigoplus_{e=\mathrm{rowptr}_i}^{\mathrm{rowptr}_{i+1}-1} w_e \, x_{\mathrm{col}_e}

Layout (kernels, then host launchers):

1. ``@triton.jit`` kernels:

   * :func:`_gather_reduce_fwd_kernel`: grid ``(rows, feature tiles)``; each program owns one row and
     ``BLOCK_F`` contiguous features, walks its edges ``BLOCK_E`` at a time, loads ``col``/``w`` for the block and
     gathers the ``[BLOCK_E, BLOCK_F]`` tile of ``x`` (coalesced along features), and keeps the accumulator in
     registers (fp32, fp64 for fp64 inputs). One store per output tile, no atomics. For ``max``/``min`` it also
     writes the arg edge (first edge in CSR order that attains the extremum, ``E`` for empty rows).
     ``HAS_COL=False`` reads ``x[e]`` (segment reduction). Rows are not split, so a hub row of very high degree
     runs on one program (as in CxGNN's Triton SpMM); a split-row variant is the next step for skewed graphs.
   * :func:`_sddmm_kernel`: ``dL/dw_e = c_i <g_i, x_{col_e}>``, one program per row, no atomics.
   * :func:`_arg_backward_kernel`: routes ``g`` through the saved arg edges to ``x`` and ``w``. Different rows can
     pick the same source, so these additions use ``tl.atomic_add`` over ``N x F`` entries (the only atomics;
     a CSR formulation would cost ``O(E F)``).

2. host launchers (``launch_*``) choose tiles and grids;
   :func:`launch_transpose_spmm` is the ``sum``/``mean`` backward w.r.t. ``x``: the forward kernel run on the
   transposed CSR (handed in by the caller, which caches it per graph) with weights ``w_e / max(deg_{row_e}, 1)``
   for mean.

The autograd wrapper and the dispatch live in :mod:`graphlab.ops.gather_reduce` (one ``autograd.Function`` over
the CPU and Triton kernel tables, see :mod:`graphlab.ops._triton`); this module imports only torch and triton.

Importing this module imports triton; :mod:`graphlab.ops` imports it lazily, only when the Triton path runs. Set
``TRITON_INTERPRET=1`` *before* this module is imported to run the kernels on CPU tensors.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor

Transpose = tuple[Tensor, Tensor, Tensor]  # (colptr, row, perm_t): the CSR of A^T and CSR position per entry

_REDUCE_CODE = {"sum": 0, "mean": 1, "max": 2, "min": 3}
MAX_BLOCK_F = 128  # features per program: 128 fp32 lanes = 4 warps x 32 threads x 1 element, coalesced
BLOCK_E = 16  # edges gathered per step: a [16, BLOCK_F] tile keeps registers below the spill limit


# --------------------------------------------------------------------------------------------- 1. kernels


@triton.jit
def _gather_reduce_fwd_kernel(
    x_ptr, rowptr_ptr, col_ptr, w_ptr, out_ptr, arg_ptr,
    num_edges, F,
    REDUCE: tl.constexpr, HAS_COL: tl.constexpr, HAS_W: tl.constexpr, WRITE_ARG: tl.constexpr,
    ACC_DTYPE: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_F: tl.constexpr,
):
    row = tl.program_id(0)
    offs_f = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
    mask_f = offs_f < F
    start = tl.load(rowptr_ptr + row).to(tl.int64)
    end = tl.load(rowptr_ptr + row + 1).to(tl.int64)
    offs_e = tl.arange(0, BLOCK_E)
    if REDUCE <= 1:
        acc = tl.zeros([BLOCK_F], dtype=ACC_DTYPE)
    else:
        acc = tl.full([BLOCK_F], float("-inf"), dtype=ACC_DTYPE)
        arg = tl.zeros([BLOCK_F], dtype=tl.int64) + start
    sign = 1.0 if REDUCE != 3 else -1.0
    for e0 in range(start, end, BLOCK_E):
        e = e0 + offs_e
        mask_e = e < end
        if HAS_COL:
            src = tl.load(col_ptr + e, mask=mask_e, other=0).to(tl.int64)
        else:
            src = e
        mask = mask_e[:, None] & mask_f[None, :]
        vals = tl.load(x_ptr + src[:, None] * F + offs_f[None, :], mask=mask, other=0.0).to(ACC_DTYPE)
        if HAS_W:
            vals = vals * tl.load(w_ptr + e, mask=mask_e, other=0.0).to(ACC_DTYPE)[:, None]
        if REDUCE <= 1:
            acc += tl.sum(vals, axis=0)
        else:
            signed = tl.where(mask, vals * sign, float("-inf"))
            block_best, block_arg = tl.max(signed, axis=0, return_indices=True, return_indices_tie_break_left=True)
            better = block_best > acc
            acc = tl.where(better, block_best, acc)
            arg = tl.where(better, e0 + block_arg.to(tl.int64), arg)
    count = end - start
    if REDUCE == 1:
        acc = acc / tl.maximum(count, 1).to(ACC_DTYPE)
    if REDUCE >= 2:
        acc = tl.where(count > 0, acc * sign, 0.0)
        if WRITE_ARG:
            arg = tl.where(count > 0, arg, num_edges)
            tl.store(arg_ptr + row.to(tl.int64) * F + offs_f, arg, mask=mask_f)
    tl.store(out_ptr + row.to(tl.int64) * F + offs_f, acc.to(out_ptr.dtype.element_ty), mask=mask_f)


@triton.jit
def _sddmm_kernel(
    g_ptr, x_ptr, rowptr_ptr, col_ptr, out_ptr, F,
    MEAN: tl.constexpr, ACC_DTYPE: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_F: tl.constexpr,
):
    row = tl.program_id(0)
    start = tl.load(rowptr_ptr + row).to(tl.int64)
    end = tl.load(rowptr_ptr + row + 1).to(tl.int64)
    scale = 1.0
    if MEAN:
        scale = 1.0 / tl.maximum(end - start, 1).to(ACC_DTYPE)
    offs_e = tl.arange(0, BLOCK_E)
    for e0 in range(start, end, BLOCK_E):
        e = e0 + offs_e
        mask_e = e < end
        src = tl.load(col_ptr + e, mask=mask_e, other=0).to(tl.int64)
        dot = tl.zeros([BLOCK_E], dtype=ACC_DTYPE)
        for f0 in range(0, F, BLOCK_F):
            offs_f = f0 + tl.arange(0, BLOCK_F)
            mask_f = offs_f < F
            g = tl.load(g_ptr + row.to(tl.int64) * F + offs_f, mask=mask_f, other=0.0).to(ACC_DTYPE)
            mask = mask_e[:, None] & mask_f[None, :]
            xv = tl.load(x_ptr + src[:, None] * F + offs_f[None, :], mask=mask, other=0.0).to(ACC_DTYPE)
            dot += tl.sum(xv * g[None, :], axis=1)
        tl.store(out_ptr + e, (dot * scale).to(out_ptr.dtype.element_ty), mask=mask_e)


@triton.jit
def _arg_backward_kernel(
    g_ptr, x_ptr, col_ptr, w_ptr, arg_ptr, grad_x_ptr, grad_w_ptr, num_edges, F,
    HAS_COL: tl.constexpr, HAS_W: tl.constexpr, NEED_X: tl.constexpr, NEED_W: tl.constexpr,
    BLOCK_F: tl.constexpr,
):
    row = tl.program_id(0)
    offs_f = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
    mask_f = offs_f < F
    base = row.to(tl.int64) * F + offs_f
    arg = tl.load(arg_ptr + base, mask=mask_f, other=0).to(tl.int64)
    valid = mask_f & (arg < num_edges)
    g = tl.load(g_ptr + base, mask=valid, other=0.0)
    if HAS_COL:
        src = tl.load(col_ptr + arg, mask=valid, other=0).to(tl.int64)
    else:
        src = arg
    if NEED_X:
        contrib = g
        if HAS_W:
            contrib = g * tl.load(w_ptr + arg, mask=valid, other=0.0)
        tl.atomic_add(grad_x_ptr + src * F + offs_f, contrib, mask=valid)
    if NEED_W:
        xv = tl.load(x_ptr + src * F + offs_f, mask=valid, other=0.0)
        tl.atomic_add(grad_w_ptr + arg, g * xv, mask=valid)


# --------------------------------------------------------------------------------------------- 2. launchers


def _acc_dtype(dtype: torch.dtype) -> Any:
    return tl.float64 if dtype == torch.float64 else tl.float32


def _block_f(feat: int) -> int:
    return min(triton.next_power_of_2(max(feat, 1)), MAX_BLOCK_F)


def _num_warps(block_f: int) -> int:
    """One warp per 32 feature lanes, 1 to 4 warps: narrow tiles do not leave most threads idle."""
    return max(1, min(4, block_f // 32))


def launch_gather_reduce_fwd(
    x: Tensor, rowptr: Tensor, col: Tensor | None, weight: Tensor | None, reduce: str, want_arg: bool
) -> tuple[Tensor, Tensor | None]:
    """Run the forward kernel; ``col=None`` reduces consecutive rows of ``x`` (segments). Returns ``(out, arg)``."""
    num_rows, feat = rowptr.numel() - 1, x.size(1)
    out = x.new_empty((num_rows, feat))
    write_arg = want_arg and reduce in ("max", "min")
    arg = torch.empty((num_rows, feat), dtype=torch.int64, device=x.device) if write_arg else None
    if num_rows == 0 or feat == 0:
        return out, arg
    block_f = _block_f(feat)
    num_edges = col.numel() if col is not None else x.size(0)
    grid = (num_rows, triton.cdiv(feat, block_f))
    _gather_reduce_fwd_kernel[grid](
        x, rowptr, col if col is not None else rowptr, weight if weight is not None else x,
        out, arg if arg is not None else out, num_edges, feat,
        REDUCE=_REDUCE_CODE[reduce], HAS_COL=col is not None, HAS_W=weight is not None, WRITE_ARG=write_arg,
        ACC_DTYPE=_acc_dtype(x.dtype), BLOCK_E=BLOCK_E, BLOCK_F=block_f, num_warps=_num_warps(block_f),
    )
    return out, arg


def launch_sddmm(rowptr: Tensor, col: Tensor, grad: Tensor, x: Tensor, mean: bool) -> Tensor:
    """``s_e = c_i <grad_i, x_{col_e}>`` with ``c_i = 1/max(deg_i, 1)`` for mean, else 1."""
    out = x.new_empty(col.numel())
    num_rows, feat = rowptr.numel() - 1, x.size(1)
    if num_rows == 0 or col.numel() == 0:
        return out.zero_()
    _sddmm_kernel[(num_rows,)](
        grad, x, rowptr, col, out, feat,
        MEAN=mean, ACC_DTYPE=_acc_dtype(x.dtype), BLOCK_E=BLOCK_E, BLOCK_F=_block_f(feat),
    )
    return out


def launch_arg_backward(
    grad: Tensor, x: Tensor, col: Tensor | None, weight: Tensor | None, arg: Tensor,
    num_edges: int, need_x: bool, need_w: bool,
) -> tuple[Tensor | None, Tensor | None]:
    """Route ``grad`` through the arg edges: ``(dL/dx, dL/dw)`` (each ``None`` when not needed)."""
    grad_x = torch.zeros_like(x) if need_x else None
    grad_w = grad.new_zeros(num_edges) if need_w else None
    num_rows, feat = arg.shape
    if num_rows == 0 or feat == 0 or num_edges == 0:
        return grad_x, grad_w
    block_f = _block_f(feat)
    _arg_backward_kernel[(num_rows, triton.cdiv(feat, block_f))](
        grad, x, col if col is not None else arg, weight if weight is not None else grad, arg,
        grad_x if grad_x is not None else grad, grad_w if grad_w is not None else grad, num_edges, feat,
        HAS_COL=col is not None, HAS_W=weight is not None, NEED_X=need_x, NEED_W=need_w, BLOCK_F=block_f,
        num_warps=_num_warps(block_f),
    )
    return grad_x, grad_w


def launch_transpose_spmm(
    transpose: Transpose, rowptr: Tensor, weight: Tensor | None, grad: Tensor, mean: bool
) -> Tensor:
    r"""``A^T (grad / cnt)``: the forward kernel over the transpose, weights ``w_e / max(deg_{row_e}, 1)``."""
    colptr, row_t, perm_t = transpose
    weight_t = None if weight is None else weight.index_select(0, perm_t)
    if mean:
        inv_count = 1.0 / (rowptr[1:] - rowptr[:-1]).clamp(min=1).to(grad.dtype)
        scale = inv_count.index_select(0, row_t.long())
        weight_t = scale if weight_t is None else weight_t * scale
    return launch_gather_reduce_fwd(grad, colptr, row_t, weight_t, "sum", False)[0]
