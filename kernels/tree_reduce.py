r"""Triton kernel for the pairing step of the balanced tree reduction (:func:`graphlab.ops.tree_reduce_schedule`).

For active segment :math:`s` with first row :math:`a_s` and count :math:`c_s \ge 2` at the current level, with
:math:`h_s = \lfloor c_s / 2 \rfloor` pairs and exclusive prefix sums :math:`P_s = \sum_{t<s} h_t` (pairs),
:math:`C_s = \sum_{t<s} (c_t \bmod 2)` (carried rows) and :math:`N_s = \sum_{t<s} \lceil c_t/2 \rceil`
(next-level rows), the kernel writes, for :math:`0 \le k < h_s`,

.. math::
    \mathrm{left}_{P_s + k} = a_s + 2k, \quad \mathrm{right}_{P_s + k} = a_s + 2k + 1, \quad
    \mathrm{gather}_{N_s + k} = P_s + k,

and, when :math:`c_s` is odd, :math:`\mathrm{carry}_{C_s} = a_s + c_s - 1` and
:math:`\mathrm{gather}_{N_s + h_s} = P + C_s` (:math:`P` = all pairs of the level).

1. kernel: one program per segment, a loop over its pairs in blocks of ``BLOCK`` (a hub is one long program);
2. host launcher :func:`launch_pair_level` (prefix sums with torch). This module imports only torch and triton.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

BLOCK = 128  # pairs per step of a program


@triton.jit
def _pair_level_kernel(
    starts_ptr, counts_ptr, pair_off_ptr, carry_off_ptr, next_off_ptr,
    left_ptr, right_ptr, carry_ptr, gather_ptr, num_pairs,
    BLOCK: tl.constexpr,
):
    seg = tl.program_id(0)
    start = tl.load(starts_ptr + seg)
    count = tl.load(counts_ptr + seg)
    pair_off = tl.load(pair_off_ptr + seg)
    next_off = tl.load(next_off_ptr + seg)
    half = count // 2
    offs = tl.arange(0, BLOCK)
    for k0 in range(0, half, BLOCK):
        k = k0 + offs
        mask = k < half
        left = start + 2 * k
        tl.store(left_ptr + pair_off + k, left, mask=mask)
        tl.store(right_ptr + pair_off + k, left + 1, mask=mask)
        tl.store(gather_ptr + next_off + k, pair_off + k, mask=mask)
    if count % 2 == 1:
        carry_off = tl.load(carry_off_ptr + seg)
        tl.store(carry_ptr + carry_off, start + count - 1)
        tl.store(gather_ptr + next_off + half, num_pairs + carry_off)


def launch_pair_level(starts: Tensor, counts: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(left, right, carry, gather)`` int64 for the active segments ``starts``/``counts`` (int64, counts >= 2)."""
    starts, counts = starts.long().contiguous(), counts.long().contiguous()
    half, odd = counts // 2, counts % 2
    pair_off = torch.cumsum(half, 0) - half
    carry_off = torch.cumsum(odd, 0) - odd
    next_off = pair_off + carry_off
    num_pairs, num_carry = int(half.sum()), int(odd.sum())
    left = torch.empty(num_pairs, dtype=torch.long, device=counts.device)
    right = torch.empty_like(left)
    carry = torch.empty(num_carry, dtype=torch.long, device=counts.device)
    gather = torch.empty(num_pairs + num_carry, dtype=torch.long, device=counts.device)
    if counts.numel() > 0:
        _pair_level_kernel[(counts.numel(),)](
            starts, counts, pair_off, carry_off, next_off, left, right, carry, gather, num_pairs, BLOCK=BLOCK
        )
    return left, right, carry, gather
