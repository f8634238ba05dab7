r"""Common-neighbour sets and their reductions for target pairs, by sorted-list intersection on a CSR graph.

For target pairs :math:`(i, j) = (\mathrm{src}_b, \mathrm{dst}_b)`, :math:`b < B`, with
:math:`N(i) = \{\mathrm{col}_e : \mathrm{rowptr}_i \le e < \mathrm{rowptr}_{i+1}\}`:

.. math::
    \mathrm{cn}_b = N(i) \cap N(j), \qquad \mathrm{src\_only}_b = N(i) \setminus N(j), \qquad
    \mathrm{dst\_only}_b = N(j) \setminus N(i),

    z_b = \sum_{w \in N(i) \cap N(j)} \omega_{b,w}\, x_w

(Neural Common Neighbor, Wang, Yang, Zhang, ICLR 2024; :math:`\omega = 1` unless the set was subsampled).

The sets come back as a CSR over pairs (:class:`PairSets`: ``ptr [B+1]``, ``index [M]`` ascending within a pair),
so any reduction over them is one :func:`graphlab.ops.gather_reduce` call, differentiable in ``x`` and in
per-entry weights (NCNC's completion probabilities). No ``B x N`` matrix is built.

**Input.** ``col`` must be sorted and free of duplicates within each row: :func:`sorted_csr` builds such a CSR from
an ``edge_index`` once and caches it per tensor (like :func:`graphlab.ops.cached_csr`). The requirement is
checked while :func:`graphlab.ops.validation_enabled` (once per ``(rowptr, col)`` pair). Index tensors are int32
or int64 (not necessarily the same width); the node ids in ``index`` have ``col``'s dtype, ``ptr`` is int64.
``i = j`` is allowed (:math:`N(i) \cap N(i) = N(i)`); an empty batch (``B = 0``) is legal and gives ``ptr = [0]``
and empty results.

**Subsampling** (``max_neighbors=k``, the official ``sparsesample_reweight``): a pair whose set has
:math:`n > k` members keeps :math:`k` of them drawn uniformly without replacement, each weighted :math:`n / k`,
so the weighted sum is an unbiased estimate of the full sum. It runs after the exact sets are found, vectorised
in torch (one random key per member, a sort, the first ``k`` per pair), identically on every path: a seeded
``generator`` gives the same draw on every path.

**Paths** (:mod:`graphlab.ops._backend`; ``last_path("neighbor_sets")`` / ``last_path("common_neighbors")``):
``"reference"`` (dense ``B x N`` masks, :mod:`graphlab.ops.reference`), ``"cpu"`` (the native C kernel
``kernels/csrc/common_neighbors.c``: a galloping merge per pair, count pass then fill pass, multithreaded; or, when
the native kernels are unavailable, a vectorised torch ``searchsorted`` path; ``last_path(CPU_IMPL_LOG)`` says
``"native"`` or ``"torch"``), and ``"triton"`` (``kernels/common_neighbors.py``, binary search of one list's
elements in the other, one program per pair).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from graphlab.ops import _native, reference
from graphlab.ops._backend import last_path, record_path, resolve_backend, validation_enabled
from graphlab.ops.csr import (
    CSR,
    IdentityCache,
    _check_index_tensor,
    _check_range,
    _normalise_size,
    check_csr,
    rowptr_from_sorted,
    to_csr,
)
from graphlab.ops.gather_reduce import check_features, gather_reduce
from graphlab.ops.reference import NEIGHBOR_SET_NAMES
from graphlab.ops.segment import segment_reduce

OP_SETS = "neighbor_sets"
OP_REDUCE = "common_neighbors"
CPU_IMPL_LOG = "neighbor_sets.cpu_impl"  # last_path(CPU_IMPL_LOG) says "native" or "torch"

_SORTED_CSR_CACHE = IdentityCache()
_SORTED_ROWS_CACHE = IdentityCache(max_entries=256)  # (rowptr, col) pairs that passed check_csr and the sortedness check


class PairSets(NamedTuple):
    """One neighbour set per target pair, as a CSR over pairs.

    Attributes:
        ptr: ``[B + 1]`` int64; the members of pair ``b`` are ``index[ptr[b]:ptr[b+1]]``.
        index: ``[M]`` node ids (``col``'s dtype), ascending within each pair.
        weight: ``[M]`` floating weights (``|set| / k`` for a subsampled pair, 1 otherwise), or ``None`` when no
            pair was subsampled.
    """

    ptr: Tensor
    index: Tensor
    weight: Tensor | None


# ----------------------------------------------------------------------------------------------- sorted CSR


def _sorted_unique_csr(edge_index: Tensor, size: tuple[int, int]) -> CSR:
    rowptr, col, perm = to_csr(edge_index, size)  # sorted by (target, source), ties in input order
    if col.numel() > 1:
        row = reference.csr_row_index(rowptr)
        first = torch.ones(col.numel(), dtype=torch.bool, device=col.device)
        first[1:] = (row[1:] != row[:-1]) | (col[1:] != col[:-1])
        if not bool(first.all()):
            col, perm = col[first], perm[first]
            rowptr = rowptr_from_sorted(row[first].to(rowptr.dtype), size[1])
    return CSR(rowptr, col, perm)


def sorted_csr(edge_index: Tensor, num_nodes: int | Sequence[int]) -> CSR:
    """The CSR of ``edge_index`` (rows = targets, as :func:`graphlab.ops.to_csr`) with the columns of every row
    sorted and duplicate edges removed: what :func:`neighbor_sets` / :func:`common_neighbors` need.

    Cached per ``edge_index`` identity, in-place version and size (like :func:`graphlab.ops.cached_csr`), so a
    training loop over one graph sorts once.

    Returns:
        :class:`graphlab.ops.CSR` ``(rowptr, col, perm)``: ``perm[k]`` is the first edge of ``edge_index`` that
        CSR position ``k`` stands for.
    """
    size = _normalise_size(num_nodes)
    return _SORTED_CSR_CACHE.get_or_build([edge_index], ("sorted", size), lambda: _sorted_unique_csr(edge_index, size))


# ----------------------------------------------------------------------------------------------- validation


def _check_graph(rowptr: Any, col: Any, src: Any, dst: Any, validate: bool) -> int:
    """Validate the public arguments; returns ``N`` (the number of nodes, ``rowptr.numel() - 1``)."""
    for name, t in (("rowptr", rowptr), ("col", col), ("src", src), ("dst", dst)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in (torch.int32, torch.int64):
            raise TypeError(
                f"{name} has dtype {t.dtype} but an index must be torch.int64 or torch.int32; convert it with "
                f"{name}.long()"
            )
    for name, t in (("rowptr", rowptr), ("col", col), ("src", src), ("dst", dst)):
        _check_index_tensor(name, t, 1)
        if t.device != col.device:
            raise ValueError(f"{name} is on {t.device} but col is on {col.device}; move them to one device")
    if src.numel() != dst.numel():
        raise ValueError(
            f"src has {src.numel()} target pairs but dst has {dst.numel()}; pass one src and one dst per pair"
        )
    if rowptr.numel() == 0:
        raise ValueError("rowptr must have N + 1 >= 1 entries, got an empty tensor; use tensor([0]) for no nodes")
    num_nodes = rowptr.numel() - 1
    if validate:
        _check_graph_values(rowptr, col, num_nodes)
        _check_range("src", src, num_nodes, "the graph has")
        _check_range("dst", dst, num_nodes, "the graph has")
    return num_nodes


def _check_graph_values(rowptr: Tensor, col: Tensor, num_nodes: int) -> None:
    """:func:`graphlab.ops.check_csr` plus ``col`` strictly increasing within every row (sorted, no duplicates),
    both once per ``(rowptr, col)`` pair: a pair that passed is remembered by identity and in-place version."""
    if _SORTED_ROWS_CACHE.get([rowptr, col]) is not None:
        return
    check_csr(rowptr, col, num_nodes)
    if col.numel() >= 2:
        _check_sorted_rows(rowptr, col)
    _SORTED_ROWS_CACHE.put([rowptr, col], None, True)


def _check_sorted_rows(rowptr: Tensor, col: Tensor) -> None:
    starts = torch.zeros(col.numel(), dtype=torch.bool, device=col.device)
    row_starts = rowptr[:-1].long()
    starts[row_starts[row_starts < col.numel()]] = True
    bad = (col[1:] <= col[:-1]) & ~starts[1:]
    if bool(bad.any()):
        pos = int(torch.nonzero(bad)[0, 0]) + 1
        raise ValueError(
            f"col is not sorted and duplicate-free within its rows (col[{pos}] = {int(col[pos])} follows "
            f"{int(col[pos - 1])} in the same row); build the CSR with graphlab.ops.sorted_csr(edge_index, num_nodes)"
        )


def _normalise_sets(sets: Any) -> tuple[str, ...]:
    if isinstance(sets, str):
        sets = (sets,)
    if not isinstance(sets, Sequence) or len(sets) == 0:
        raise ValueError(f"sets must be a non-empty tuple of names from {NEIGHBOR_SET_NAMES}, got {sets!r}")
    for name in sets:
        if name not in NEIGHBOR_SET_NAMES:
            raise ValueError(f"unknown neighbour set {name!r} in sets; choose from {NEIGHBOR_SET_NAMES}")
    if len(set(sets)) != len(sets):
        raise ValueError(f"sets names a set twice: {tuple(sets)!r}")
    return tuple(sets)


def _check_k(name: str, k: Any) -> int | None:
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{name} must be a positive int or None (no subsampling), got {k!r}")
    return k


def _normalise_max_neighbors(max_neighbors: Any, sets: tuple[str, ...]) -> dict[str, int | None]:
    if isinstance(max_neighbors, Mapping):
        unknown = [key for key in max_neighbors if key not in sets]
        if unknown:
            raise ValueError(
                f"max_neighbors has keys {unknown} that are not among the requested sets {sets}; "
                "give a limit only for requested sets"
            )
        return {name: _check_k(f"max_neighbors[{name!r}]", max_neighbors.get(name)) for name in sets}
    k = _check_k("max_neighbors", max_neighbors)
    return {name: k for name in sets}


# ----------------------------------------------------------------------------------------------- exact sets


def _expand_rows(rowptr: Tensor, col: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor]:
    """``(pair, member)`` of every entry of the rows ``nodes`` (pair-major, members in row order)."""
    start = rowptr.long()[nodes.long()]
    count = rowptr.long()[nodes.long() + 1] - start
    total = int(count.sum())
    pair = torch.repeat_interleave(torch.arange(nodes.numel(), device=col.device), count, output_size=total)
    offset = torch.cumsum(count, 0) - count
    pos = torch.arange(total, device=col.device) - offset[pair] + start[pair]
    return pair, col[pos]


def _torch_sets(
    rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor, sets: tuple[str, ...]
) -> dict[str, tuple[Tensor, Tensor]]:
    """Vectorised torch path: expand both rows of every pair, encode ``pair * N + node`` keys (sorted, since rows
    are), and test membership with ``searchsorted``."""
    num_nodes, num_pairs = rowptr.numel() - 1, src.numel()
    pair_a, node_a = _expand_rows(rowptr, col, src)
    pair_b, node_b = _expand_rows(rowptr, col, dst)
    key_a = pair_a * num_nodes + node_a.long()
    key_b = pair_b * num_nodes + node_b.long()

    def member(keys: Tensor, of: Tensor) -> Tensor:
        if of.numel() == 0:
            return torch.zeros_like(keys, dtype=torch.bool)
        pos = torch.searchsorted(of, keys).clamp_(max=of.numel() - 1)
        return of[pos] == keys

    out = {}
    a_in_b = member(key_a, key_b) if ("cn" in sets or "src_only" in sets) else None
    for name in sets:
        if name == "dst_only":
            keep = ~member(key_b, key_a)
            pair, node = pair_b[keep], node_b[keep]
        else:
            keep = a_in_b if name == "cn" else ~a_in_b
            pair, node = pair_a[keep], node_a[keep]
        out[name] = (rowptr_from_sorted(pair, num_pairs), node)
    return out


def _native_sets(
    rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor, sets: tuple[str, ...], fill: bool = True
) -> dict[str, tuple[Tensor, Tensor | None]]:
    index_dtype = col.dtype
    rowptr, src, dst = (t.to(index_dtype) for t in (rowptr, src, dst))  # no copy when the widths already match
    return _native.neighbor_sets(rowptr, col, src, dst, sets, fill)


def _triton_sets(
    rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor, sets: tuple[str, ...]
) -> dict[str, tuple[Tensor, Tensor]]:
    from graphlab.ops import _triton

    return _triton.neighbor_sets(rowptr, col, src, dst, sets)


def _exact_sets(
    rowptr: Tensor, col: Tensor, src: Tensor, dst: Tensor, sets: tuple[str, ...], fill: bool = True
) -> dict[str, tuple[Tensor, Tensor | None]]:
    """``{name: (ptr, index)}``; with ``fill=False`` only ``ptr`` is needed and a path may return ``index=None``
    (the native kernel then skips its fill pass)."""
    path = resolve_backend(rowptr, col, src, dst)
    record_path(OP_SETS, path)
    if path == "reference":
        return reference.neighbor_sets(rowptr, col, src, dst, sets)
    if path == "triton":
        return _triton_sets(rowptr, col, src, dst, sets)
    if _native.available() and col.device.type == "cpu":
        record_path(CPU_IMPL_LOG, "native")
        return _native_sets(rowptr, col, src, dst, sets, fill)
    record_path(CPU_IMPL_LOG, "torch")
    return _torch_sets(rowptr, col, src, dst, sets)


# ----------------------------------------------------------------------------------------------- sampling


def subsample(
    ptr: Tensor, index: Tensor, k: int, generator: torch.Generator | None = None, dtype: torch.dtype | None = None
) -> PairSets:
    r"""Keep at most ``k`` members per pair, drawn uniformly without replacement, weighted
    :math:`n_b / k` (:math:`n_b` the pair's set size; weight 1 for pairs with :math:`n_b \le k`).

    Vectorised: every member gets a uniform random key, members are ordered by (pair, key), the first ``k`` of
    each pair are kept and put back in ascending node order. ``weight`` is ``None`` when no pair exceeded ``k``
    (then nothing random is drawn).
    """
    counts = ptr[1:] - ptr[:-1]
    if counts.numel() == 0 or int(counts.max()) <= k:
        return PairSets(ptr, index, None)
    num_pairs, total = counts.numel(), index.numel()
    pair = torch.repeat_interleave(torch.arange(num_pairs, device=ptr.device), counts, output_size=total)
    keys = torch.rand(total, generator=generator, device=index.device)
    order = torch.argsort(keys)
    order = order[torch.argsort(pair[order], stable=True)]  # pair-major, random order within a pair
    rank = torch.arange(total, device=ptr.device) - ptr[pair]  # pair[order] == pair (both pair-major)
    kept = torch.sort(order[rank < k]).values  # back to ascending node order within each pair
    kept_counts = counts.clamp(max=k)
    new_ptr = torch.zeros_like(ptr)
    torch.cumsum(kept_counts, 0, out=new_ptr[1:])
    scale = (counts.to(torch.float64) / kept_counts.clamp(min=1)).to(dtype or torch.get_default_dtype())
    return PairSets(new_ptr, index[kept], scale[pair[kept]])


# ----------------------------------------------------------------------------------------------- public ops


def neighbor_sets(
    rowptr: Tensor,
    col: Tensor,
    src: Tensor,
    dst: Tensor,
    *,
    sets: Sequence[str] = ("cn",),
    max_neighbors: int | Mapping[str, int | None] | None = None,
    generator: torch.Generator | None = None,
    validate: bool | None = None,
) -> dict[str, PairSets]:
    r"""The neighbour sets of the target pairs :math:`(\mathrm{src}_b, \mathrm{dst}_b)` as CSRs over pairs.

    .. math::
        \mathrm{cn}_b = N(i) \cap N(j), \quad \mathrm{src\_only}_b = N(i) \setminus N(j), \quad
        \mathrm{dst\_only}_b = N(j) \setminus N(i)

    Args:
        rowptr: ``[N + 1]`` int32/int64 row pointers of the graph (from :func:`sorted_csr`).
        col: ``[E]`` int32/int64 neighbours, sorted and unique within each row (:func:`sorted_csr`).
        src: ``[B]`` int32/int64 first node :math:`i` of every target pair.
        dst: ``[B]`` int32/int64 second node :math:`j` (``src[b] == dst[b]`` is allowed).
        sets: names among ``"cn"``, ``"src_only"``, ``"dst_only"``.
        max_neighbors: ``None`` (exact sets), an int ``k`` for every set, or a dict ``{set name: k or None}``;
            a pair with more than ``k`` members keeps ``k`` uniformly drawn ones weighted ``|set| / k``.
        generator: random source of the subsampling (``None``: torch's global generator).
        validate: check index values (ranges, sorted unique rows); ``None`` follows
            :func:`graphlab.ops.validation_enabled`. Types, shapes and devices are always checked.

    Returns:
        ``{name: PairSets(ptr [B+1] int64, index [M] col's dtype, weight [M] or None)}``, no gradient.

    Raises:
        TypeError: an index tensor that is not int32/int64.
        ValueError: naming the argument (shape, device, ``src``/``dst`` lengths or range, unsorted ``col``,
            unknown set name, bad ``max_neighbors``).
    """
    sets = _normalise_sets(sets)
    limits = _normalise_max_neighbors(max_neighbors, sets)
    _check_graph(rowptr, col, src, dst, validation_enabled() if validate is None else validate)
    with torch.no_grad():
        exact = _exact_sets(rowptr, col, src, dst, sets)
        out = {}
        for name in sets:
            ptr, index = exact[name]
            k = limits[name]
            out[name] = PairSets(ptr, index, None) if k is None else subsample(ptr, index, k, generator)
    return out


def common_neighbors(
    rowptr: Tensor,
    col: Tensor,
    src: Tensor,
    dst: Tensor,
    x: Tensor | None = None,
    *,
    max_neighbors: int | None = None,
    generator: torch.Generator | None = None,
    validate: bool | None = None,
) -> Tensor:
    r"""Sum of the features of the common neighbours of every target pair (NCN's :math:`z_{ij}`).

    .. math:: z_b = \sum_{w \in N(i) \cap N(j)} \omega_{b,w}\, x_w, \qquad (i, j) = (\mathrm{src}_b, \mathrm{dst}_b)

    with :math:`\omega = 1`, or :math:`|N(i) \cap N(j)| / k` on the ``k`` members kept by subsampling.

    Args:
        rowptr, col, src, dst, generator, validate: as in :func:`neighbor_sets`.
        x: ``[N, F]`` floating node features, or ``None`` for the (weighted) counts.
        max_neighbors: ``None`` or a positive int ``k`` (subsampling of the common neighbours).

    Returns:
        ``[B, F]`` in ``x``'s dtype (differentiable in ``x``), or ``[B]`` float counts (default dtype) when ``x``
        is ``None``. ``B = 0`` gives an empty tensor.
    """
    if x is not None:
        check_features("x", x)
        if x.size(0) != rowptr.numel() - 1:
            raise ValueError(
                f"x has {x.size(0)} rows but the graph has {rowptr.numel() - 1} nodes (rowptr has "
                f"{rowptr.numel()} entries); pass one feature row per node"
            )
        if x.device != col.device:
            raise ValueError(f"x is on {x.device} but col is on {col.device}; move them to one device")
    if x is None and max_neighbors is None:  # exact counts: the sizes of the sets, no members needed
        _check_graph(rowptr, col, src, dst, validation_enabled() if validate is None else validate)
        with torch.no_grad():
            ptr = _exact_sets(rowptr, col, src, dst, ("cn",), fill=False)["cn"][0]
        record_path(OP_REDUCE, str(last_path(OP_SETS)))
        return (ptr[1:] - ptr[:-1]).to(torch.get_default_dtype())
    cn = neighbor_sets(
        rowptr, col, src, dst, sets=("cn",), max_neighbors=max_neighbors, generator=generator, validate=validate
    )["cn"]
    record_path(OP_REDUCE, str(last_path(OP_SETS)))
    if x is None:
        dtype = torch.get_default_dtype()
        if cn.weight is None:
            return (cn.ptr[1:] - cn.ptr[:-1]).to(dtype)
        return segment_reduce(cn.weight.to(dtype), cn.ptr, "sum")
    return gather_reduce(x, cn.ptr, cn.index, "sum", edge_weight=cn.weight, validate=False)
