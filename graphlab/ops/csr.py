r"""CSR construction, validation, transposition and per-graph caching.

A graph given as PyG's ``edge_index`` ``[2, E]`` (row 0 = sources ``j``, row 1 = targets ``i``, messages flow
``j -> i``) becomes a CSR whose rows are the *targets*:

* ``rowptr`` ``[N_dst + 1]``: edges of target ``i`` are the CSR positions ``rowptr[i] .. rowptr[i+1]-1``;
* ``col`` ``[E]``: the source of each CSR position;
* ``perm`` ``[E]`` (int64): CSR position ``k`` holds the original edge ``perm[k]``, so per-edge data in
  ``edge_index`` order is brought into CSR order by ``edge_attr[perm]``.

Within a row, edges are sorted by source (ties keep their input order), which gives the gathers of ``x[col]``
some locality. The transpose (rows = sources) is what the backward pass of ``sum``/``mean`` multiplies with;
:func:`cached_transpose` builds it once per ``(rowptr, col)`` pair.

Caching. Building a CSR costs a sort of ``E`` keys. :func:`cached_csr` and :func:`cached_transpose` keep the
result keyed on the *identity* of the index tensors (plus their in-place version counter and the sizes), with weak
references, so the entry lives exactly as long as the tensor and an in-place edit of the tensor invalidates it.
A full-batch training loop that passes the same ``edge_index`` every step therefore sorts once; a mini-batch
loader produces new tensors and pays once per batch. The :class:`graphlab.transforms.ToCSR` transform precomputes both and stores them
on a ``Data`` object.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import torch
from torch import Tensor

INDEX_DTYPES = (torch.int32, torch.int64)


class CSR(tuple):
    """``(rowptr, col, perm)`` returned by :func:`to_csr`; ``.weight`` holds ``edge_weight[perm]`` (or ``None``)."""

    weight: Tensor | None

    def __new__(cls, rowptr: Tensor, col: Tensor, perm: Tensor, weight: Tensor | None = None) -> "CSR":
        obj = super().__new__(cls, (rowptr, col, perm))
        obj.weight = weight
        return obj

    @property
    def rowptr(self) -> Tensor:
        return self[0]

    @property
    def col(self) -> Tensor:
        return self[1]

    @property
    def perm(self) -> Tensor:
        return self[2]

    @property
    def num_rows(self) -> int:
        return self[0].numel() - 1


# ----------------------------------------------------------------------------------------------- validation


def _check_index_tensor(name: str, t: Any, dim: int) -> None:
    if not isinstance(t, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in INDEX_DTYPES:
        raise ValueError(
            f"{name} has dtype {t.dtype} but an index must be torch.int64 or torch.int32; "
            f"convert it with {name}.long()"
        )
    if t.dim() != dim:
        raise ValueError(f"{name} must be {dim}-dimensional, got shape {tuple(t.shape)}")


def check_csr(rowptr: Tensor, col: Tensor, num_cols: int, edge_weight: Tensor | None = None) -> None:
    """Validate a CSR graph whose ``col`` indexes ``num_cols`` source rows.

    The passes over ``rowptr``/``col`` run once per ``(rowptr, col)`` pair: a pair that passed is remembered by
    identity and in-place version (:data:`VALIDATED_CACHE`), so a layer that aggregates over the same graph every
    step pays for them once. Cheap checks (dtypes, shapes, ``edge_weight``) run every call.

    Raises:
        ValueError: naming the problem (dtype, shape, ``rowptr`` not starting at 0 / not non-decreasing / not
            ending at ``len(col)``, ``col`` out of range, ``edge_weight`` length or dtype).
    """
    _check_index_tensor("rowptr", rowptr, 1)
    _check_index_tensor("col", col, 1)
    if edge_weight is not None:
        _check_edge_weight(edge_weight, col.numel(), "col", col.device)
    if VALIDATED_CACHE.get([rowptr, col], num_cols) is None:
        _check_csr_values(rowptr, col, num_cols)
        VALIDATED_CACHE.put([rowptr, col], num_cols, True)


def _check_csr_values(rowptr: Tensor, col: Tensor, num_cols: int) -> None:
    if rowptr.numel() == 0:
        raise ValueError("rowptr must have num_rows + 1 >= 1 entries, got an empty tensor; use tensor([0]) "
                         "for a graph with no rows")
    if rowptr.device != col.device:
        raise ValueError(f"rowptr is on {rowptr.device} but col is on {col.device}; move both to one device")
    first, last = int(rowptr[0]), int(rowptr[-1])
    if first != 0:
        raise ValueError(f"rowptr[0] is {first} but must be 0")
    if last != col.numel():
        raise ValueError(
            f"rowptr[-1] is {last} but col has {col.numel()} entries; rowptr and col lengths mismatch"
        )
    if rowptr.numel() > 1 and bool((rowptr[1:] < rowptr[:-1]).any()):
        bad = int(torch.nonzero(rowptr[1:] < rowptr[:-1])[0, 0])
        raise ValueError(
            f"rowptr is not non-decreasing (rowptr[{bad + 1}] < rowptr[{bad}]); build it with "
            f"graphlab.ops.to_csr"
        )
    _check_range("col", col, num_cols, "the input has")


def _check_range(name: str, index: Tensor, bound: int, what: str) -> None:
    if index.numel() == 0:
        return
    lo, hi = (int(v) for v in torch.aminmax(index))
    if lo < 0:
        raise ValueError(f"{name} has a negative entry ({lo}); indices must be in [0, {bound})")
    if hi >= bound:
        raise ValueError(
            f"{name} has max {hi} but {what} {bound} rows; indices must be in [0, {bound}) "
            f"(pass the right number of nodes or fix the index)"
        )


def _check_edge_weight(edge_weight: Any, num_edges: int, index_name: str, device: torch.device) -> None:
    if not isinstance(edge_weight, Tensor):
        raise ValueError(f"edge_weight must be a torch.Tensor, got {type(edge_weight).__name__}")
    if not edge_weight.is_floating_point():
        raise ValueError(f"edge_weight has dtype {edge_weight.dtype}; it must be floating point")
    if edge_weight.dim() != 1 or edge_weight.numel() != num_edges:
        raise ValueError(
            f"edge_weight has shape {tuple(edge_weight.shape)} but {index_name} has {num_edges} edges; "
            f"pass one weight per edge, shape [{num_edges}]"
        )
    if edge_weight.device != device:
        raise ValueError(f"edge_weight is on {edge_weight.device} but the index is on {device}")


def _normalise_size(num_nodes: int | Sequence[int]) -> tuple[int, int]:
    """``num_nodes`` as ``(num_src, num_dst)``; an int means a square graph."""
    if isinstance(num_nodes, int) and not isinstance(num_nodes, bool):
        sizes = (num_nodes, num_nodes)
    elif isinstance(num_nodes, Sequence) and len(num_nodes) == 2:
        sizes = (int(num_nodes[0]), int(num_nodes[1]))
    else:
        raise ValueError(f"num_nodes must be an int or a pair (num_src, num_dst), got {num_nodes!r}")
    if min(sizes) < 0:
        raise ValueError(f"num_nodes must be non-negative, got {num_nodes!r}")
    return sizes


def check_edge_index(edge_index: Tensor, num_nodes: int | Sequence[int]) -> tuple[int, int]:
    """Validate a PyG ``edge_index`` ``[2, E]`` against ``num_nodes``; returns ``(num_src, num_dst)``."""
    num_src, num_dst = _normalise_size(num_nodes)
    _check_index_tensor("edge_index", edge_index, 2)
    if edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
    _check_range("edge_index[0] (sources)", edge_index[0], num_src, "the graph has")
    _check_range("edge_index[1] (targets)", edge_index[1], num_dst, "the graph has")
    return num_src, num_dst


# ----------------------------------------------------------------------------------------------- building


def to_csr(
    edge_index: Tensor,
    num_nodes: int | Sequence[int],
    edge_weight: Tensor | None = None,
    *,
    validate: bool = True,
) -> CSR:
    """Convert ``edge_index`` ``[2, E]`` (sources, targets) into a CSR whose rows are the targets.

    Args:
        edge_index: int64 or int32 ``[2, E]``; the CSR keeps its dtype.
        num_nodes: number of nodes, or ``(num_src, num_dst)`` for a bipartite graph (PyG's ``size``).
        edge_weight: optional ``[E]``; returned in CSR order as ``.weight``.
        validate: check dtypes, shapes and ranges (raises ValueError); switch off only for trusted input.

    Returns:
        :class:`CSR` ``(rowptr [N_dst+1], col [E], perm [E] int64)`` with ``col == edge_index[0][perm]``.
    """
    if validate:
        num_src, num_dst = check_edge_index(edge_index, num_nodes)
        if edge_weight is not None:
            _check_edge_weight(edge_weight, edge_index.shape[1], "edge_index", edge_index.device)
    else:
        num_src, num_dst = _normalise_size(num_nodes)
    src, dst = edge_index[0], edge_index[1]
    key = dst.long() * max(num_src, 1) + src.long()
    perm = torch.sort(key, stable=True).indices
    col = src.index_select(0, perm)
    rowptr = rowptr_from_sorted(dst.index_select(0, perm), num_dst)
    weight = None if edge_weight is None else edge_weight.index_select(0, perm)
    return CSR(rowptr, col, perm, weight)


def rowptr_from_sorted(sorted_row: Tensor, num_rows: int) -> Tensor:
    """Row pointers ``[num_rows + 1]`` from a sorted row index, in the index's dtype."""
    counts = torch.bincount(sorted_row, minlength=num_rows)
    rowptr = torch.zeros(num_rows + 1, dtype=sorted_row.dtype, device=sorted_row.device)
    torch.cumsum(counts, 0, out=rowptr[1:])
    return rowptr


def csr_transpose(rowptr: Tensor, col: Tensor, num_cols: int) -> CSR:
    """Transpose a CSR: rows become the ``num_cols`` sources.

    Returns:
        :class:`CSR` ``(colptr [num_cols+1], row [E], perm_t [E])``: transposed position ``k`` is CSR position
        ``perm_t[k]``, so CSR-ordered weights move to transposed order by ``weight[perm_t]``. Rows of the
        transpose list their entries in increasing original row.
    """
    from graphlab.ops.reference import csr_row_index

    row = csr_row_index(rowptr).to(col.dtype)
    perm_t = torch.sort(col, stable=True).indices
    colptr = rowptr_from_sorted(col.index_select(0, perm_t), num_cols)
    return CSR(colptr, row.index_select(0, perm_t), perm_t)


# ----------------------------------------------------------------------------------------------- caching


def _version(t: Tensor) -> int | None:
    try:
        return t._version
    except RuntimeError:  # inference tensors have no version counter: never cache them
        return None


class IdentityCache:
    """A small LRU map keyed on the identity (and in-place version) of tensors, holding them weakly.

    An entry is dropped when any key tensor is garbage-collected, and ignored when any key tensor was modified
    in place since it was stored. Values must not reference the key tensors (that would keep them alive).
    """

    def __init__(self, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, tuple[list[weakref.ref], tuple, Any]] = OrderedDict()

    def _key(self, tensors: Sequence[Tensor], extra: Hashable) -> tuple:
        return (tuple(id(t) for t in tensors), extra)

    def get(self, tensors: Sequence[Tensor], extra: Hashable = None) -> Any:
        entry = self._entries.get(self._key(tensors, extra))
        if entry is None:
            return None
        refs, versions, value = entry
        alive = all(r() is t for r, t in zip(refs, tensors))
        if not alive or versions != tuple(_version(t) for t in tensors):
            return None
        self._entries.move_to_end(self._key(tensors, extra))
        return value

    def put(self, tensors: Sequence[Tensor], extra: Hashable, value: Any) -> None:
        versions = tuple(_version(t) for t in tensors)
        if any(v is None for v in versions):
            return
        key = self._key(tensors, extra)
        entries = self._entries

        def drop(_ref: weakref.ref, key: tuple = key) -> None:
            entries.pop(key, None)

        entries[key] = ([weakref.ref(t, drop) for t in tensors], versions, value)
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)

    def get_or_build(self, tensors: Sequence[Tensor], extra: Hashable, build: Callable[[], Any]) -> Any:
        value = self.get(tensors, extra)
        if value is None:
            value = build()
            self.put(tensors, extra, value)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


CSR_CACHE = IdentityCache()
TRANSPOSE_CACHE = IdentityCache()
VALIDATED_CACHE = IdentityCache(max_entries=256)  # (rowptr, col) pairs that passed check_csr, per num_cols


def cached_csr(edge_index: Tensor, num_nodes: int | Sequence[int], *, validate: bool = True) -> CSR:
    """:func:`to_csr` of ``edge_index`` (no weights), built once per tensor identity/version and size."""
    size = _normalise_size(num_nodes)
    return CSR_CACHE.get_or_build(
        [edge_index], ("csr", size), lambda: to_csr(edge_index, size, validate=validate)
    )


def cached_transpose(rowptr: Tensor, col: Tensor, num_cols: int) -> CSR:
    """:func:`csr_transpose`, built once per ``(rowptr, col)`` identity/version and ``num_cols``."""
    return TRANSPOSE_CACHE.get_or_build(
        [rowptr, col], ("transpose", num_cols), lambda: csr_transpose(rowptr, col, num_cols)
    )
