r"""Triton kernels for the segment softmax (:func:`graphlab.ops.segment_softmax` on CUDA).

.. math::
    y_e = \frac{\exp(s_e - m_i)}{\sum_{e' \in \mathrm{seg}(i)} \exp(s_{e'} - m_i)}, \qquad
    \frac{\partial L}{\partial s_e} = y_e \Big(g_e - \sum_{e' \in \mathrm{seg}(i)} g_{e'} y_{e'}\Big)

independently per column (head) ``h`` of ``src [E, H]``.

1. kernels: one program per (segment, head tile). :func:`_segment_softmax_fwd_kernel` makes one pass with an
   online max / rescaled sum (as in flash attention) and a second pass that writes ``y``;
   :func:`_segment_softmax_bwd_kernel` computes the segment dot ``<g, y>`` then writes the gradient. Loads are
   ``[BLOCK_E, BLOCK_H]`` tiles, contiguous along heads; no atomics.
2. launchers. The autograd wrapper lives in :mod:`graphlab.ops.segment` (this module imports only torch and triton).
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl
from torch import Tensor

MAX_BLOCK_H = 64  # heads per program
BLOCK_E = 32  # entries per step


@triton.jit
def _segment_softmax_fwd_kernel(
    src_ptr, ptr_ptr, out_ptr, H,
    ACC_DTYPE: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_H: tl.constexpr,
):
    seg = tl.program_id(0)
    offs_h = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    mask_h = offs_h < H
    start = tl.load(ptr_ptr + seg).to(tl.int64)
    end = tl.load(ptr_ptr + seg + 1).to(tl.int64)
    offs_e = tl.arange(0, BLOCK_E)
    run_max = tl.full([BLOCK_H], float("-inf"), dtype=ACC_DTYPE)
    run_sum = tl.zeros([BLOCK_H], dtype=ACC_DTYPE)
    for e0 in range(start, end, BLOCK_E):
        e = e0 + offs_e
        mask = (e < end)[:, None] & mask_h[None, :]
        s = tl.load(src_ptr + e[:, None] * H + offs_h[None, :], mask=mask, other=float("-inf")).to(ACC_DTYPE)
        new_max = tl.maximum(run_max, tl.max(s, axis=0))
        safe_max = tl.where(new_max == float("-inf"), 0.0, new_max)  # all -inf so far: avoid inf - inf
        run_sum = run_sum * tl.exp(run_max - safe_max) + tl.sum(tl.exp(s - safe_max[None, :]), axis=0)
        run_max = new_max
    safe_max = tl.where(run_max == float("-inf"), 0.0, run_max)
    safe_sum = tl.where(run_sum > 0, run_sum, 1.0)  # masked head lanes have an empty sum
    for e0 in range(start, end, BLOCK_E):
        e = e0 + offs_e
        mask = (e < end)[:, None] & mask_h[None, :]
        offs = e[:, None] * H + offs_h[None, :]
        s = tl.load(src_ptr + offs, mask=mask, other=float("-inf")).to(ACC_DTYPE)
        y = tl.exp(s - safe_max[None, :]) / safe_sum[None, :]
        tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _segment_softmax_bwd_kernel(
    y_ptr, g_ptr, ptr_ptr, grad_ptr, H,
    ACC_DTYPE: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_H: tl.constexpr,
):
    seg = tl.program_id(0)
    offs_h = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    mask_h = offs_h < H
    start = tl.load(ptr_ptr + seg).to(tl.int64)
    end = tl.load(ptr_ptr + seg + 1).to(tl.int64)
    offs_e = tl.arange(0, BLOCK_E)
    dot = tl.zeros([BLOCK_H], dtype=ACC_DTYPE)
    for e0 in range(start, end, BLOCK_E):
        e = e0 + offs_e
        mask = (e < end)[:, None] & mask_h[None, :]
        offs = e[:, None] * H + offs_h[None, :]
        y = tl.load(y_ptr + offs, mask=mask, other=0.0).to(ACC_DTYPE)
        g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(ACC_DTYPE)
        dot += tl.sum(y * g, axis=0)
    for e0 in range(start, end, BLOCK_E):
        e = e0 + offs_e
        mask = (e < end)[:, None] & mask_h[None, :]
        offs = e[:, None] * H + offs_h[None, :]
        y = tl.load(y_ptr + offs, mask=mask, other=0.0).to(ACC_DTYPE)
        g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(ACC_DTYPE)
        tl.store(grad_ptr + offs, (y * (g - dot[None, :])).to(grad_ptr.dtype.element_ty), mask=mask)


def _launch(kernel: Any, tensors: tuple[Tensor, ...], ptr: Tensor, out: Tensor) -> Tensor:
    num_segments, heads = ptr.numel() - 1, out.size(1)
    if num_segments == 0 or heads == 0 or out.size(0) == 0:
        return out
    block_h = min(triton.next_power_of_2(heads), MAX_BLOCK_H)
    acc = tl.float64 if out.dtype == torch.float64 else tl.float32
    kernel[(num_segments, triton.cdiv(heads, block_h))](
        *tensors, ptr, out, heads, ACC_DTYPE=acc, BLOCK_E=BLOCK_E, BLOCK_H=block_h
    )
    return out


def launch_segment_softmax_fwd(src: Tensor, ptr: Tensor) -> Tensor:
    """``y`` for ``src`` ``[E, H]`` (contiguous) and segment pointers ``ptr`` ``[N + 1]``."""
    return _launch(_segment_softmax_fwd_kernel, (src,), ptr, torch.empty_like(src))


def launch_segment_softmax_bwd(y: Tensor, grad: Tensor, ptr: Tensor) -> Tensor:
    """``dL/dsrc`` from the saved output ``y`` and the incoming gradient ``grad`` (both ``[E, H]``)."""
    return _launch(_segment_softmax_bwd_kernel, (y, grad), ptr, torch.empty_like(y))
