r"""Reference definitions of the graph primitives: plain PyTorch, written from the equations.

These functions are the spec: every fast path (CPU, Triton) is tested against them, and benchmarks import them.
They never call a fused kernel. They materialise one row per edge (``E x F``), so they are slow and memory
hungry on purpose: clarity over speed.

Conventions shared by all paths (the same as ``torch_scatter`` / PyG):

* A CSR graph is ``(rowptr, col)``: row ``i`` owns the edges ``rowptr[i] <= e < rowptr[i+1]`` and edge ``e`` reads
  the input row ``col[e]``. Rows are message *targets*, ``col`` holds the *sources*.
* An empty row (or segment) reduces to 0 for every reduction.
* ``mean`` divides by ``max(count, 1)``.
* ``max`` / ``min`` pick, per (row, feature), the first edge in CSR order that attains the extremum (the *arg
  edge*); the gradient flows only through that edge (to ``x[col[arg]]`` and to ``edge_weight[arg]``).
* NaN inputs: the result of ``max``/``min`` over a row that contains NaN is unspecified (paths may differ).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

Reduce = Literal["sum", "mean", "max", "min"]
REDUCES: tuple[str, ...] = ("sum", "mean", "max", "min")


def csr_row_index(rowptr: Tensor) -> Tensor:
    """Expand ``rowptr`` [N+1] into the row of every edge, ``row[e] = i`` for ``rowptr[i] <= e < rowptr[i+1]``."""
    num_rows = rowptr.numel() - 1
    counts = rowptr[1:] - rowptr[:-1]
    num_edges = int(rowptr[-1]) if num_rows >= 0 and rowptr.numel() > 0 else 0
    rows = torch.arange(num_rows, device=rowptr.device, dtype=torch.long)
    return torch.repeat_interleave(rows, counts.long(), output_size=num_edges)


def _segment_from_messages(msg: Tensor, row: Tensor, num_rows: int, reduce: str) -> Tensor:
    """Reduce per-edge messages ``msg`` [E, F] into ``num_rows`` rows by ``row`` [E] (the core of the spec)."""
    feat = msg.shape[1:]
    index = row.view(-1, *([1] * len(feat))).expand_as(msg)
    if reduce in ("sum", "mean"):
        out = msg.new_zeros((num_rows, *feat)).scatter_reduce(0, index, msg, "sum", include_self=True)
        if reduce == "mean":
            count = torch.bincount(row, minlength=num_rows).clamp_(min=1).to(msg.dtype)
            out = out / count.view(-1, *([1] * len(feat)))
        return out
    return _arg_select(msg, row, index, num_rows, reduce)


def _arg_select(msg: Tensor, row: Tensor, index: Tensor, num_rows: int, reduce: str) -> Tensor:
    """``max``/``min``: pick the first arg edge per (row, feature) and gather through it (routes the gradient)."""
    num_edges = msg.shape[0]
    feat = msg.shape[1:]
    with torch.no_grad():
        extremum = msg.new_zeros((num_rows, *feat)).scatter_reduce(
            0, index, msg, "amax" if reduce == "max" else "amin", include_self=False
        )
        edge_id = torch.arange(num_edges, device=msg.device).view(-1, *([1] * len(feat))).expand_as(msg)
        candidate = torch.where(msg == extremum[row], edge_id, num_edges)
        arg = torch.full((num_rows, *feat), num_edges, device=msg.device, dtype=torch.long)
        arg = arg.scatter_reduce(0, index, candidate, "amin", include_self=True)
    padded = torch.cat([msg, msg.new_zeros((1, *feat))], dim=0)  # row E is the "empty row" sentinel -> 0
    return padded.gather(0, arg)


def gather_reduce(
    x: Tensor,
    rowptr: Tensor,
    col: Tensor,
    reduce: Reduce = "sum",
    edge_weight: Tensor | None = None,
) -> Tensor:
    r"""Fused gather-reduce over a CSR graph, reference version.

    .. math::
        \mathrm{out}_i = \bigoplus_{e=\mathrm{rowptr}_i}^{\mathrm{rowptr}_{i+1}-1} w_e \, x_{\mathrm{col}_e},
        \qquad \bigoplus \in \{\textstyle\sum, \mathrm{mean}, \max, \min\}

    with :math:`w_e = 1` when ``edge_weight`` is ``None``; an empty row gives 0.

    Args:
        x: source features ``[N_src, F]``.
        rowptr: ``[N + 1]`` row pointers (rows are targets).
        col: ``[E]`` source index of every edge, in CSR order.
        reduce: ``"sum" | "mean" | "max" | "min"``.
        edge_weight: optional ``[E]`` weights in CSR order.

    Returns:
        ``[N, F]`` tensor.
    """
    row = csr_row_index(rowptr)
    msg = x.index_select(0, col.long())  # E x F: the reference materialises per-edge rows on purpose
    if edge_weight is not None:
        msg = msg * edge_weight.view(-1, *([1] * (x.dim() - 1)))
    return _segment_from_messages(msg, row, rowptr.numel() - 1, reduce)


def segment_reduce(src: Tensor, ptr: Tensor, reduce: Reduce = "sum") -> Tensor:
    r"""Reduce consecutive segments of ``src`` (reference).

    .. math:: \mathrm{out}_i = \bigoplus_{e=\mathrm{ptr}_i}^{\mathrm{ptr}_{i+1}-1} \mathrm{src}_e

    Args:
        src: ``[E, F]`` (or ``[E]``) values, segment after segment.
        ptr: ``[N + 1]`` segment boundaries, ``ptr[0] = 0`` and ``ptr[N] = E``.
        reduce: ``"sum" | "mean" | "max" | "min"``; empty segments give 0.

    Returns:
        ``[N, F]`` (or ``[N]``) tensor.
    """
    row = csr_row_index(ptr)
    squeeze = src.dim() == 1
    msg = src.unsqueeze(-1) if squeeze else src
    out = _segment_from_messages(msg, row, ptr.numel() - 1, reduce)
    return out.squeeze(-1) if squeeze else out


def segment_softmax(src: Tensor, ptr: Tensor) -> Tensor:
    r"""Softmax within every segment of ``src`` (reference), e.g. attention logits grouped by target node.

    .. math::
        \mathrm{out}_e = \frac{\exp(\mathrm{src}_e - m_i)}{\sum_{e'=\mathrm{ptr}_i}^{\mathrm{ptr}_{i+1}-1}
        \exp(\mathrm{src}_{e'} - m_i)}, \qquad m_i = \max_{e' \in \text{segment } i} \mathrm{src}_{e'},

    independently for every trailing column (head). Empty segments own no entries.

    Args:
        src: ``[E]`` or ``[E, H]`` logits, segment after segment.
        ptr: ``[N + 1]`` segment boundaries.

    Returns:
        a tensor shaped like ``src``.
    """
    row = csr_row_index(ptr)
    squeeze = src.dim() == 1
    logits = src.unsqueeze(-1) if squeeze else src
    num_rows = ptr.numel() - 1
    index = row.view(-1, 1).expand_as(logits)
    with torch.no_grad():
        seg_max = logits.new_zeros((num_rows, logits.shape[1])).scatter_reduce(
            0, index, logits, "amax", include_self=False
        )
    shifted = (logits - seg_max[row]).exp()
    denom = shifted.new_zeros((num_rows, logits.shape[1])).scatter_reduce(
        0, index, shifted, "sum", include_self=True
    )
    out = shifted / denom[row]
    return out.squeeze(-1) if squeeze else out


# ======================================================================================= tree reduction (LCM, #14)
# The balanced pairwise reduction of every CSR segment, and its integer schedule, from the definition: plain
# Python loops over segments and levels, one ``combine`` call per pair. The fast paths live in
# :mod:`graphlab.ops.tree_reduce`; this section is what they are tested against.


def tree_reduce_level_reference(starts: list[int], counts: list[int]) -> dict[str, list[int]]:
    r"""One pairing level, from the definition, for the active segments ``(starts[s], counts[s])`` of the
    current rows (each ``counts[s] >= 2``).

    Inside segment ``s`` the rows ``starts[s] + 2k`` and ``starts[s] + 2k + 1`` are paired
    (:math:`0 \le k < \lfloor c_s/2 \rfloor`); an odd last row ``starts[s] + c_s - 1`` is carried. The next
    level lists, segment after segment, the ``k``-th pair result (position ``k``) and then the carried row, so it
    holds :math:`\lceil c_s/2 \rceil` rows per segment.

    Returns:
        ``left``, ``right`` (pair ``p`` combines rows ``left[p]`` and ``right[p]``), ``carry`` (rows passed up),
        ``gather`` (next-level row ``r`` is entry ``gather[r]`` of ``cat([pair results, carried rows])``) and
        ``next_counts``.
    """
    left: list[int] = []
    right: list[int] = []
    carry: list[int] = []
    layout: list[tuple[str, int]] = []
    for start, count in zip(starts, counts):
        for k in range(count // 2):
            layout.append(("pair", len(left)))
            left.append(start + 2 * k)
            right.append(start + 2 * k + 1)
        if count % 2 == 1:
            layout.append(("carry", len(carry)))
            carry.append(start + count - 1)
    gather = [i if kind == "pair" else len(left) + i for kind, i in layout]
    next_counts = [(c + 1) // 2 for c in counts]
    return {"left": left, "right": right, "carry": carry, "gather": gather, "next_counts": next_counts}


def tree_reduce_schedule(ptr: Tensor) -> list[dict[str, list[int]]]:
    """The whole schedule of :func:`tree_reduce` for segments ``ptr`` ``[S + 1]``, level by level (reference).

    Level ``l`` works on that level's rows (level 0: the input rows). A segment whose row count has reached 1 is
    *done*: its row is emitted (``done``, in segment order, with the segment ids in ``done_segments``) and it
    leaves the rows of later levels. The active segments (count >= 2) are paired as in
    :func:`tree_reduce_level_reference`. The last level has only ``done`` rows.

    Returns:
        a list of dicts with keys ``done``, ``done_segments``, ``left``, ``right``, ``carry``, ``gather``.
    """
    bounds = [int(v) for v in ptr.tolist()]
    segments = list(range(len(bounds) - 1))
    starts = bounds[:-1]
    counts = [bounds[s + 1] - bounds[s] for s in segments]
    levels = []
    while True:
        done = [(st, s) for st, c, s in zip(starts, counts, segments) if c == 1]
        active = [(st, c, s) for st, c, s in zip(starts, counts, segments) if c >= 2]
        level = tree_reduce_level_reference([a[0] for a in active], [a[1] for a in active])
        levels.append({"done": [d[0] for d in done], "done_segments": [d[1] for d in done],
                       **{k: level[k] for k in ("left", "right", "carry", "gather")}})
        if not active:
            return levels
        counts = level["next_counts"]
        starts = [sum(counts[:i]) for i in range(len(counts))]
        segments = [a[2] for a in active]


def tree_reduce(
    x: Tensor, ptr: Tensor, combine: Callable[[Tensor, Tensor], Tensor], empty: Tensor | None = None
) -> Tensor:
    r"""Balanced binary-tree reduction of every segment with a binary operator ``combine`` (reference).

    For segment :math:`i` with rows :math:`r_0, \dots, r_{c-1}`:

    .. math::
        T(r_0) = r_0, \qquad
        T(r_0, \dots, r_{c-1}) = T\big(r_0 \oplus r_1,\; r_2 \oplus r_3,\; \dots,\;
        [r_{c-1} \text{ if } c \text{ odd}]\big),

    i.e. one level pairs neighbours ``(2k, 2k+1)`` and passes an odd last row up unchanged; there are
    :math:`\lceil \log_2 c \rceil` levels. An empty segment gives ``empty`` (zeros when ``None``). With an
    associative ``combine`` this is the plain segment reduction.

    This version loops over segments and calls ``combine`` on the pairs of one segment at a time.

    Args:
        x: ``[E, F]`` rows, segment after segment.
        ptr: ``[S + 1]`` segment boundaries.
        combine: ``(a [P, F], b [P, F]) -> [P, F]``, the binary operator :math:`\oplus` applied row-wise.
        empty: optional ``[F]`` value of an empty segment.

    Returns:
        ``[S, F]``.
    """
    bounds = [int(v) for v in ptr.tolist()]
    outs = []
    for s in range(len(bounds) - 1):
        rows = x[bounds[s]:bounds[s + 1]]
        if rows.size(0) == 0:
            outs.append(x.new_zeros(x.shape[1:]) if empty is None else empty.to(x.dtype))
            continue
        while rows.size(0) > 1:
            half = rows.size(0) // 2
            pairs = combine(rows[0:2 * half:2], rows[1:2 * half:2])
            rows = torch.cat([pairs, rows[2 * half:]], dim=0)
        outs.append(rows[0])
    return torch.stack(outs) if outs else x.new_zeros((0, *x.shape[1:]))
# ============================================================================================== common neighbours
# Reference of graphlab.ops.common_neighbors / neighbor_sets (issue 13): dense B x N boolean masks, on purpose.

NEIGHBOR_SET_NAMES: tuple[str, ...] = ("cn", "src_only", "dst_only")


def dense_adjacency(rowptr: Tensor, col: Tensor) -> Tensor:
    """The ``[N, N]`` boolean adjacency of a CSR graph, ``A[i, w] = True`` iff ``w`` is in row ``i``."""
    num_nodes = rowptr.numel() - 1
    adj = torch.zeros((num_nodes, num_nodes), dtype=torch.bool, device=rowptr.device)
    adj[csr_row_index(rowptr), col.long()] = True
    return adj


def neighbor_set_masks(rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor) -> dict[str, Tensor]:
    r"""Dense ``[B, N]`` membership masks of the neighbour sets of the target pairs ``(i, j) = (src_b, dst_b)``.

    .. math::
        \mathrm{cn}_b = N(i) \cap N(j), \qquad \mathrm{src\_only}_b = N(i) \setminus N(j), \qquad
        \mathrm{dst\_only}_b = N(j) \setminus N(i),

    with :math:`N(i) = \{\mathrm{col}_e : \mathrm{rowptr}_i \le e < \mathrm{rowptr}_{i+1}\}` (duplicates in a row
    count once).
    """
    adj = dense_adjacency(rowptr, col)
    a, b = adj[src.long()], adj[dst.long()]
    return {"cn": a & b, "src_only": a & ~b, "dst_only": b & ~a}


def neighbor_sets(
    rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor, sets: tuple[str, ...] = ("cn",)
) -> dict[str, tuple[Tensor, Tensor]]:
    """Reference of :func:`graphlab.ops.neighbor_sets` without sampling: ``{name: (ptr [B+1] int64, index [M])}``,
    the members of pair ``b`` being ``index[ptr[b]:ptr[b+1]]`` in ascending node id (``index`` in ``col``'s
    dtype)."""
    masks = neighbor_set_masks(rowptr, col, src, dst)
    out = {}
    for name in sets:
        mask = masks[name]
        pair, node = mask.nonzero(as_tuple=True)  # row-major: pairs in order, node ids ascending within a pair
        ptr = torch.zeros(mask.shape[0] + 1, dtype=torch.long, device=mask.device)
        torch.cumsum(mask.sum(1), 0, out=ptr[1:])
        out[name] = (ptr, node.to(col.dtype))
    return out


def common_neighbors(rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor, x: Tensor | None = None) -> Tensor:
    r"""Reference of :func:`graphlab.ops.common_neighbors` without sampling, a dense mask product:

    .. math:: \mathrm{out}_b = \sum_{w \in N(i) \cap N(j)} x_w = (M_{\mathrm{cn}}\, x)_b,

    or the counts :math:`|N(i) \cap N(j)|` (float) when ``x`` is ``None``.
    """
    mask = neighbor_set_masks(rowptr, col, src, dst)["cn"]
    if x is None:
        return mask.sum(1).to(torch.get_default_dtype())
    return mask.to(x.dtype) @ x
# ================================================================================ selective scan (Mamba, #15)
# Reference of graphlab.ops.selective_scan: the recurrence, one Python step per position, nothing fused.


def _scan_channels(param: Tensor, num_channels: int, t: int) -> Tensor:
    """``B``/``C`` at position ``t`` per channel: ``[D, N]`` (constant), ``[batch, N, L]`` (shared by all
    channels) or ``[batch, G, N, L]`` (channel ``d`` reads group ``d // (D / G)``); returns ``[batch | 1, D, N]``."""
    if param.dim() == 2:
        return param.unsqueeze(0)
    if param.dim() == 3:
        return param[:, None, :, t]
    per_group = num_channels // param.shape[1]
    return param[:, :, :, t].repeat_interleave(per_group, dim=1)


def zero_invalid(t: Tensor, mask: Tensor) -> Tensor:
    """``t`` (``[batch, ..., L]``; a constant ``[D, N]`` passes through) with 0 where ``mask [batch, L]`` is False.
    A ``where``, not a product: ``0 * nan`` is ``nan``, and its gradient at those positions is exactly 0."""
    if t.dim() == 2:
        return t
    return torch.where(mask.view(mask.shape[0], *([1] * (t.dim() - 2)), mask.shape[1]), t, t.new_zeros(()))


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    *,
    lengths: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""Selective state-space scan (Mamba's S6), reference version: a Python loop over positions.

    With :math:`\Delta = \mathrm{softplus}(\delta + b_\Delta)` (or :math:`\delta + b_\Delta` without softplus),
    per batch element and channel :math:`d` (state :math:`h \in \mathbb{R}^N`, :math:`h_{-1} = 0`):

    .. math::
        h_t = \exp(\Delta_t A_d) \odot h_{t-1} + \Delta_t\, u_t\, B_t, \qquad
        y_t = \langle C_t, h_t \rangle + D_d\, u_t, \qquad
        \mathrm{out}_t = y_t \cdot \mathrm{silu}(z_t).

    A position that is not valid (``t >= lengths[b]``, or ``mask[b, t]`` False) leaves the state unchanged and
    outputs 0. Computed in float32 for half-precision inputs (float64 stays float64); the output has ``u``'s
    dtype, the last state (the state after the last valid position, ``[batch, D, N]``) the compute dtype.
    Shapes as in :func:`graphlab.ops.selective_scan`.
    """
    dtype_in = u.dtype
    compute = torch.float64 if dtype_in == torch.float64 else torch.float32
    u, delta, A = u.to(compute), delta.to(compute), A.to(compute)
    B, C = B.to(compute), C.to(compute)
    batch, channels, length = u.shape
    if mask is None and lengths is not None:
        mask = torch.arange(length, device=u.device)[None, :] < lengths.to(u.device)[:, None]
    if mask is not None:  # the inputs of invalid positions are never read: a NaN there must not reach the gradients
        u, delta = zero_invalid(u, mask), zero_invalid(delta, mask)
        B, C = zero_invalid(B, mask), zero_invalid(C, mask)
        z = None if z is None else zero_invalid(z, mask)
    if delta_bias is not None:
        delta = delta + delta_bias.to(compute)[:, None]
    if delta_softplus:
        delta = torch.nn.functional.softplus(delta)
    h = u.new_zeros((batch, channels, A.shape[1]))
    ys = []
    for t in range(length):
        decay = torch.exp(delta[:, :, t, None] * A)  # [batch, D, N]
        drive = (delta[:, :, t] * u[:, :, t])[:, :, None] * _scan_channels(B, channels, t)
        h_next = decay * h + drive
        y = (h_next * _scan_channels(C, channels, t)).sum(-1)
        if mask is not None:
            valid = mask[:, t, None]
            h_next = torch.where(valid[:, :, None], h_next, h)
            y = torch.where(valid, y, torch.zeros_like(y))
        h = h_next
        ys.append(y)
    y = torch.stack(ys, dim=2) if ys else u.new_zeros((batch, channels, 0))
    out = y if D is None else y + u * D.to(compute)[:, None]
    if z is not None:
        out = out * torch.nn.functional.silu(z.to(compute))
    if mask is not None:
        out = zero_invalid(out, mask)  # the D u term at invalid positions
    out = out.to(dtype_in)
    return (out, h) if return_last_state else out


# ============================================================================================== subgraph pair atoms
# Reference of graphlab.ops.pairs (issue 12): one graph, dense [n, n, F] states and einsums over the adjacency.

PAIR_ATOMS: tuple[str, ...] = ("uv", "vu", "uu", "vv", "uL", "vL", "uG", "vG")


def pair_atom_dense(
    h: Tensor, adj: Tensor, atom: str, mask: Tensor | None = None, edge_dense: Tensor | None = None
) -> Tensor:
    r"""The aggregation atoms of Zhang et al. (2023) on one graph, from the equations.

    Args:
        h: ``[n, n, F]`` states, ``h[u, v]`` = :math:`h(u, v)`.
        adj: ``[n, n]`` adjacency with ``adj[v, w] = 1`` iff there is an edge :math:`w \to v`.
        atom: ``uv, vu, uu, vv, uL, vL, uG, vG``.
        mask: ``[n, n]`` bool, node :math:`v` in subgraph :math:`u`; a local message is kept iff its source and
            target pairs are both in the mask, :math:`A_u[v, w] = A[v, w] m[u, v] m[u, w]`.
        edge_dense: ``[n, n, F]``, ``edge_dense[v, w]`` the vector of the edge :math:`w \to v`, added to each
            local message.
    """
    n = h.size(0)
    m = torch.ones((n, n), dtype=h.dtype) if mask is None else mask.to(h.dtype)
    a = adj.to(h.dtype)
    e = torch.zeros_like(h) if edge_dense is None else edge_dense.to(h.dtype)
    if atom == "uv":
        return h
    if atom == "vu":
        return h.transpose(0, 1)
    if atom == "uu":
        return torch.diagonal(h, dim1=0, dim2=1).T[:, None, :].expand(n, n, -1)
    if atom == "vv":
        return torch.diagonal(h, dim1=0, dim2=1).T[None, :, :].expand(n, n, -1)
    if atom == "uG":
        return h.sum(1, keepdim=True).expand(n, n, -1)
    if atom == "vG":
        return h.sum(0, keepdim=True).expand(n, n, -1)
    if atom == "uL":  # sum_w A[v, w] m[u, v] m[u, w] (h[u, w] + e[v, w])
        gate = a[None, :, :] * m[:, :, None] * m[:, None, :]  # [u, v, w]
        return torch.einsum("uvw,uwf->uvf", gate, h) + torch.einsum("uvw,vwf->uvf", gate, e)
    if atom == "vL":  # sum_w A[u, w] m[w, v] m[u, v] (h[w, v] + e[u, w])
        gate = a[:, None, :] * m.T[None, :, :] * m[:, :, None]  # [u, v, w]: A[u,w] m[w,v] m[u,v]
        return torch.einsum("uvw,wvf->uvf", gate, h) + torch.einsum("uvw,uwf->uvf", gate, e)
    raise ValueError(f"unknown atom {atom!r}; valid atoms are {', '.join(PAIR_ATOMS)}")


# ---------------------------------------------------------------------------------------------------- dropout
# Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011): ten rounds
#   (x0, x1, x2, x3) <- (hi(M1 x2) ^ x1 ^ k0, lo(M1 x2), hi(M0 x0) ^ x3 ^ k1, lo(M0 x0)),  then  (k0, k1) += (W0, W1),
# on 32-bit words held in int64 tensors. Every product below stays under 2**63, so the arithmetic is exact.
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85
_MASK32 = 0xFFFFFFFF


def _mulhilo32(a: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """``(hi, lo)`` 32-bit halves of the 64-bit product ``a * m`` (``a`` int64 in [0, 2**32), ``m`` < 2**32), from
    16-bit halves of ``a`` so that no int64 product overflows: ``a m = (a_hi m) 2^16 + a_lo m``."""
    p_hi, p_lo = (a >> 16) * m, (a & 0xFFFF) * m  # each < 2**48
    lo = (p_lo + ((p_hi & 0xFFFF) << 16)) & _MASK32
    hi = (p_hi + (p_lo >> 16)) >> 16
    return hi, lo


def philox4x32_10(counter: Tensor, key: tuple[int, int]) -> Tensor:
    """Philox4x32-10 of every counter ``[..., 4]`` (int64 words in [0, 2**32)) under ``key = (k0, k1)``:
    the four output words ``[..., 4]``."""
    x0, x1, x2, x3 = counter.unbind(-1)
    k0, k1 = key
    for _ in range(10):
        hi0, lo0 = _mulhilo32(x0, PHILOX_M0)
        hi1, lo1 = _mulhilo32(x2, PHILOX_M1)
        x0, x1, x2, x3 = hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0
        k0, k1 = (k0 + PHILOX_W0) & _MASK32, (k1 + PHILOX_W1) & _MASK32
    return torch.stack([x0, x1, x2, x3], dim=-1)


def dropout_threshold(p: float) -> int:
    r"""The integer :math:`t = \mathrm{round}(p\, 2^{32})`: a 32-bit word :math:`r` is dropped iff :math:`r < t`,
    so :math:`P(\text{drop}) = t / 2^{32}` (within :math:`2^{-33}` of ``p``; exactly 0 and 1 at ``p = 0, 1``)."""
    return min(round(p * 2**32), 2**32)


def dropout_mask(numel: int, p: float, seed: int, offset: int = 0, device: torch.device | None = None) -> Tensor:
    r"""The keep mask ``[numel]`` (bool) of :func:`dropout`: element :math:`i` is kept iff

    .. math:: r_i = \mathrm{Philox4x32\text{-}10}\big((\lfloor i/4 \rfloor \bmod 2^{32},\ \lfloor i/4 \rfloor
        \operatorname{div} 2^{32},\ o \bmod 2^{32},\ o \operatorname{div} 2^{32}),\ (s \bmod 2^{32},\
        s \operatorname{div} 2^{32})\big)_{i \bmod 4} \ \ge\ \mathrm{round}(p\, 2^{32})

    for seed :math:`s` and offset :math:`o` (both in :math:`[0, 2^{64})`): a pure function of (seed, offset, i)."""
    blocks = torch.arange((numel + 3) // 4, dtype=torch.int64, device=device)
    counter = torch.stack([blocks & _MASK32, blocks >> 32,
                           torch.full_like(blocks, offset & _MASK32), torch.full_like(blocks, offset >> 32)], dim=-1)
    words = philox4x32_10(counter, (seed & _MASK32, seed >> 32)).reshape(-1)[:numel]
    return words >= dropout_threshold(p)


def dropout(x: Tensor, p: float, training: bool = True, seed: int = 0, offset: int = 0) -> Tensor:
    r"""Inverted dropout with the counter-based mask :math:`m` of :func:`dropout_mask` over ``x``'s flattened
    (row-major) entries:

    .. math:: y = \frac{x \odot m}{1 - p} \quad (\text{training}), \qquad y = x \quad (\text{evaluation or } p = 0),

    with :math:`y = 0` where dropped (also for non-finite :math:`x`) and :math:`y = 0` everywhere at :math:`p = 1`."""
    if not training or p == 0.0:
        return x
    keep = dropout_mask(x.numel(), p, seed, offset, x.device).reshape(x.shape)
    scale = 1.0 / (1.0 - p) if p < 1.0 else 0.0
    return torch.where(keep, x * scale, torch.zeros((), dtype=x.dtype, device=x.device))
