r"""Triton kernel for the neighbour sets of target pairs (:func:`graphlab.ops.neighbor_sets` on CUDA).

For pair :math:`b` with :math:`(i, j) = (\mathrm{src}_b, \mathrm{dst}_b)` and sorted, duplicate-free CSR rows:

.. math::
    \mathrm{cn}_b = N(i) \cap N(j), \qquad \mathrm{src\_only}_b = N(i) \setminus N(j), \qquad
    \mathrm{dst\_only}_b = N(j) \setminus N(i).

1. kernel: :func:`_neighbor_set_kernel`, one program per pair. It walks one row ("iterated") in blocks of
   ``BLOCK`` members and binary-searches every member in the other row ("searched"), ``SEARCH_STEPS`` vectorised
   halvings; a member is kept when it is found (``cn``) or not found (the set differences). For ``cn`` the
   shorter row is iterated. ``FILL=False`` writes the per-pair count; ``FILL=True`` writes the kept members at
   ``ptr[b]`` onwards (a block-local ``cumsum`` gives each its slot), so they come out ascending.
2. launcher: :func:`launch_neighbor_sets` (count pass, ``cumsum``, fill pass per set). The dispatch and
   validation live in :mod:`graphlab.ops.common_neighbors` (this module imports only torch and triton).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

BLOCK = 64  # members of the iterated row per step


@triton.jit
def _neighbor_set_kernel(
    rowptr_ptr, col_ptr, iter_ptr, search_ptr, ptr_ptr, count_ptr, out_ptr,
    KEEP_FOUND: tl.constexpr, SHORTER: tl.constexpr, FILL: tl.constexpr,
    SEARCH_STEPS: tl.constexpr, BLOCK: tl.constexpr,
):
    b = tl.program_id(0)
    u = tl.load(iter_ptr + b).to(tl.int64)
    v = tl.load(search_ptr + b).to(tl.int64)
    it_start = tl.load(rowptr_ptr + u).to(tl.int64)
    it_end = tl.load(rowptr_ptr + u + 1).to(tl.int64)
    s_start = tl.load(rowptr_ptr + v).to(tl.int64)
    s_end = tl.load(rowptr_ptr + v + 1).to(tl.int64)
    if SHORTER:  # intersection is symmetric: iterate the shorter row, search the longer one
        swap = (it_end - it_start) > (s_end - s_start)
        a0, a1, c0, c1 = it_start, it_end, s_start, s_end
        it_start = tl.where(swap, c0, a0)
        it_end = tl.where(swap, c1, a1)
        s_start = tl.where(swap, a0, c0)
        s_end = tl.where(swap, a1, c1)
    offset = 0
    if FILL:
        offset = tl.load(ptr_ptr + b)
    count = tl.zeros([], dtype=tl.int64)
    lanes = tl.arange(0, BLOCK)
    for k0 in range(it_start, it_end, BLOCK):
        k = k0 + lanes
        mask = k < it_end
        target = tl.load(col_ptr + k, mask=mask, other=0)
        lo = tl.zeros([BLOCK], dtype=tl.int64) + s_start
        hi = tl.zeros([BLOCK], dtype=tl.int64) + s_end
        for _ in tl.static_range(SEARCH_STEPS):  # first position in [s_start, s_end) with col >= target
            active = lo < hi
            mid = (lo + hi) // 2
            val = tl.load(col_ptr + mid, mask=mask & active, other=0)
            right = active & (val < target)
            lo = tl.where(right, mid + 1, lo)
            hi = tl.where(active & (val >= target), mid, hi)
        in_range = mask & (lo < s_end)
        found = in_range & (tl.load(col_ptr + lo, mask=in_range, other=0) == target)
        if KEEP_FOUND:
            keep = found
        else:
            keep = mask & (found == 0)
        keep64 = keep.to(tl.int64)
        if FILL:
            slot = offset + count + tl.cumsum(keep64, 0) - 1
            tl.store(out_ptr + slot, target, mask=keep)
        count += tl.sum(keep64, 0)
    if not FILL:
        tl.store(count_ptr + b, count)


# (iterated row, searched row, keep found members, iterate the shorter row) per set
_SET_PLAN = {"cn": ("src", "dst", True, True), "src_only": ("src", "dst", False, False),
             "dst_only": ("dst", "src", False, False)}


def launch_neighbor_sets(
    rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor, sets: tuple[str, ...]
) -> dict[str, tuple[Tensor, Tensor]]:
    """``{name: (ptr [B+1] int64, index [M] col's dtype)}`` for the requested sets; contiguous 1-D inputs on one
    device, ``col`` sorted and unique within rows (the caller validates)."""
    num_pairs = src.numel()
    rows = {"src": src, "dst": dst}
    degree = rowptr[1:] - rowptr[:-1]
    max_degree = int(degree.max()) if degree.numel() else 0
    steps = max(max_degree, 1).bit_length() + 1  # halvings to narrow max_degree + 1 candidates to one
    out = {}
    for name in sets:
        iterated, searched, keep_found, shorter = _SET_PLAN[name]
        ptr = torch.zeros(num_pairs + 1, dtype=torch.long, device=col.device)
        if num_pairs == 0:
            out[name] = (ptr, col.new_empty(0))
            continue
        counts = torch.empty(num_pairs, dtype=torch.long, device=col.device)
        args = (rowptr, col, rows[iterated], rows[searched])
        meta = dict(KEEP_FOUND=keep_found, SHORTER=shorter, SEARCH_STEPS=steps, BLOCK=BLOCK)
        _neighbor_set_kernel[(num_pairs,)](*args, ptr, counts, col, FILL=False, **meta)
        torch.cumsum(counts, 0, out=ptr[1:])
        index = col.new_empty(int(ptr[-1]))
        if index.numel():
            _neighbor_set_kernel[(num_pairs,)](*args, ptr, counts, index, FILL=True, **meta)
        out[name] = (ptr, index)
    return out
