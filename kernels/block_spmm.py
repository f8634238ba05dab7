"""Triton kernels for the block-sparse product of sheaf Laplacians (``graphlab.ops.block_spmm``).

Layers, as in every graphlab kernel module: the ``@triton.jit`` kernels, then the host launchers. The
autograd wrapper and the dispatch live in :mod:`graphlab.ops.sheaf`; this module imports only torch and
triton.

The product (forward, and the input gradient with ``transpose=True``) is

.. math::
    \\mathrm{out}_u = D_u X_u + \\sum_{k \\in \\mathrm{rowptr}[u]:\\mathrm{rowptr}[u+1]} B_{\\pi(k)} X_{\\mathrm{col}[k]}

with one program per (row ``u``, feature tile). ``D`` and ``B`` are either full ``d x d`` blocks or
diagonal blocks stored as ``d``-vectors; ``pi`` is an optional edge permutation (the transposed CSR of the
backward pass reads the blocks through it, transposed, without a copy). The block gradient is a sampled
dense-dense product, one program per edge: ``grad_B[e] = G[row_e] X[col_e]^T`` (or its diagonal).

Shapes: ``X``/``out``/``G`` ``[N, d, F]`` contiguous, blocks ``[E, d, d]`` or ``[E, d]``, ``D``
``[N, d, d]`` or ``[N, d]``, index tensors int64.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl


@triton.jit
def _load_block(ptr, offs_i, offs_j, mask_ij, D, FULL: tl.constexpr, TRANSPOSE: tl.constexpr):
    """Load one ``[BLOCK_D, BLOCK_D]`` block (full or diagonal-vector storage) starting at ``ptr``."""
    if FULL:
        if TRANSPOSE:
            blk = tl.load(ptr + offs_j[None, :] * D + offs_i[:, None], mask=mask_ij, other=0.0)
        else:
            blk = tl.load(ptr + offs_i[:, None] * D + offs_j[None, :], mask=mask_ij, other=0.0)
    else:
        blk = tl.load(ptr + offs_i, mask=offs_i < D, other=0.0)
    return blk


@triton.jit
def _apply_block(acc, blk, xv, FULL: tl.constexpr):
    """``acc += blk @ xv`` for a full block, ``acc += blk[:, None] * xv`` for a diagonal one."""
    if FULL:
        acc += tl.sum(blk[:, :, None] * xv[None, :, :], axis=1)
    else:
        acc += blk[:, None] * xv
    return acc


@triton.jit
def _block_spmm_kernel(
    rowptr_ptr, col_ptr, eperm_ptr, blocks_ptr, diag_ptr, x_ptr, out_ptr,
    D, F,
    HAS_DIAG: tl.constexpr, DIAG_FULL: tl.constexpr, BLOCKS_FULL: tl.constexpr,
    HAS_PERM: tl.constexpr, TRANSPOSE: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_F: tl.constexpr, ACC_DTYPE: tl.constexpr,
):
    u = tl.program_id(0).to(tl.int64)
    offs_i = tl.arange(0, BLOCK_D)
    offs_f = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)
    mask_i = offs_i < D
    mask_x = mask_i[:, None] & (offs_f < F)[None, :]
    mask_ij = mask_i[:, None] & mask_i[None, :]
    x_tile = offs_i[:, None] * F + offs_f[None, :]
    acc = tl.zeros((BLOCK_D, BLOCK_F), dtype=ACC_DTYPE)
    if HAS_DIAG:
        xu = tl.load(x_ptr + u * D * F + x_tile, mask=mask_x, other=0.0).to(ACC_DTYPE)
        stride = D * D if DIAG_FULL else D
        blk = _load_block(diag_ptr + u * stride, offs_i, offs_i, mask_ij, D, DIAG_FULL, TRANSPOSE)
        acc = _apply_block(acc, blk.to(ACC_DTYPE), xu, DIAG_FULL)
    start = tl.load(rowptr_ptr + u)
    end = tl.load(rowptr_ptr + u + 1)
    block_stride = D * D if BLOCKS_FULL else D
    for k in range(start, end):
        v = tl.load(col_ptr + k)
        if HAS_PERM:
            e = tl.load(eperm_ptr + k)
        else:
            e = k
        xv = tl.load(x_ptr + v * D * F + x_tile, mask=mask_x, other=0.0).to(ACC_DTYPE)
        blk = _load_block(blocks_ptr + e * block_stride, offs_i, offs_i, mask_ij, D, BLOCKS_FULL, TRANSPOSE)
        acc = _apply_block(acc, blk.to(ACC_DTYPE), xv, BLOCKS_FULL)
    tl.store(out_ptr + u * D * F + x_tile, acc.to(out_ptr.dtype.element_ty), mask=mask_x)


@triton.jit
def _block_sddmm_kernel(
    row_ptr, col_ptr, g_ptr, x_ptr, out_ptr,
    D, F,
    IDENTITY: tl.constexpr, FULL: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_F: tl.constexpr, ACC_DTYPE: tl.constexpr,
):
    e = tl.program_id(0).to(tl.int64)
    if IDENTITY:
        r = e
        c = e
    else:
        r = tl.load(row_ptr + e)
        c = tl.load(col_ptr + e)
    offs_i = tl.arange(0, BLOCK_D)
    mask_i = offs_i < D
    if FULL:
        acc = tl.zeros((BLOCK_D, BLOCK_D), dtype=ACC_DTYPE)
    else:
        acc = tl.zeros((BLOCK_D,), dtype=ACC_DTYPE)
    for f0 in range(0, F, BLOCK_F):
        offs_f = f0 + tl.arange(0, BLOCK_F)
        mask = mask_i[:, None] & (offs_f < F)[None, :]
        tile = offs_i[:, None] * F + offs_f[None, :]
        gr = tl.load(g_ptr + r * D * F + tile, mask=mask, other=0.0).to(ACC_DTYPE)
        xc = tl.load(x_ptr + c * D * F + tile, mask=mask, other=0.0).to(ACC_DTYPE)
        if FULL:
            acc += tl.sum(gr[:, None, :] * xc[None, :, :], axis=2)
        else:
            acc += tl.sum(gr * xc, axis=1)
    if FULL:
        offs = offs_i[:, None] * D + offs_i[None, :]
        tl.store(out_ptr + e * D * D + offs, acc.to(out_ptr.dtype.element_ty),
                 mask=mask_i[:, None] & mask_i[None, :])
    else:
        tl.store(out_ptr + e * D + offs_i, acc.to(out_ptr.dtype.element_ty), mask=mask_i)


def _acc_dtype(dtype: torch.dtype) -> "tl.dtype":
    """Accumulate in float64 for float64 inputs, float32 otherwise (half/bfloat16 included)."""
    return tl.float64 if dtype == torch.float64 else tl.float32


def _tiles(d: int, num_features: int) -> tuple[int, int]:
    """``BLOCK_D`` covers the stalk; ``BLOCK_F`` keeps the ``[BLOCK_D, BLOCK_D, BLOCK_F]`` product small."""
    block_d = max(triton.next_power_of_2(d), 2)
    block_f = max(min(triton.next_power_of_2(num_features), 4096 // (block_d * block_d)), 2)
    return block_d, block_f


def block_spmm_csr(
    rowptr: torch.Tensor,
    col: torch.Tensor,
    blocks: torch.Tensor,
    diag: Optional[torch.Tensor],
    x: torch.Tensor,
    eperm: Optional[torch.Tensor] = None,
    transpose: bool = False,
) -> torch.Tensor:
    """Launch :func:`_block_spmm_kernel`: ``out[u] = D_u x[u] + sum_k B_{eperm[k]} x[col[k]]`` (CSR rows).

    With ``transpose=True`` every block (diagonal ones included) is read transposed.
    """
    num_nodes, d, num_features = x.shape
    x = x.contiguous()
    out = torch.empty_like(x)
    if num_nodes == 0 or num_features == 0:
        return out.zero_()
    block_d, block_f = _tiles(d, num_features)
    grid = (num_nodes, triton.cdiv(num_features, block_f))
    _block_spmm_kernel[grid](
        rowptr, col, eperm if eperm is not None else col, blocks.contiguous(),
        diag.contiguous() if diag is not None else x, x, out,
        d, num_features,
        HAS_DIAG=diag is not None, DIAG_FULL=diag is not None and diag.dim() == 3,
        BLOCKS_FULL=blocks.dim() == 3, HAS_PERM=eperm is not None, TRANSPOSE=transpose,
        BLOCK_D=block_d, BLOCK_F=block_f, ACC_DTYPE=_acc_dtype(x.dtype),
    )
    return out


def block_sddmm(
    row: Optional[torch.Tensor],
    col: Optional[torch.Tensor],
    g: torch.Tensor,
    x: torch.Tensor,
    full: bool,
) -> torch.Tensor:
    """Launch :func:`_block_sddmm_kernel`: ``out[e] = g[row_e] x[col_e]^T`` (``[E, d, d]``), or its diagonal
    ``sum_f g[row_e] * x[col_e]`` (``[E, d]``) when ``full`` is false. ``row = col = None`` means the
    identity pairing ``e -> (e, e)`` (the gradient of the diagonal blocks)."""
    num_nodes, d, num_features = x.shape
    identity = row is None
    num_out = num_nodes if identity else row.numel()
    shape = (num_out, d, d) if full else (num_out, d)
    out = torch.empty(shape, dtype=x.dtype, device=x.device)
    if num_out == 0:
        return out
    if num_features == 0:
        return out.zero_()
    block_d, block_f = _tiles(d, num_features)
    _block_sddmm_kernel[(num_out,)](
        row if row is not None else x, col if col is not None else x, g.contiguous(), x.contiguous(), out,
        d, num_features,
        IDENTITY=identity, FULL=full,
        BLOCK_D=block_d, BLOCK_F=block_f, ACC_DTYPE=_acc_dtype(x.dtype),
    )
    return out
