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
