"""``ToCSR``: a PyG transform that stores a graph's CSR and its transpose on the ``Data`` object.

After ``data = ToCSR()(data)`` every edge store with an ``edge_index`` carries

* ``csr_rowptr``, ``csr_col``, ``csr_perm``: :func:`graphlab.ops.to_csr` of ``edge_index`` (rows = targets);
* ``csr_t_colptr``, ``csr_t_row``, ``csr_t_perm``: its transpose (rows = sources), used by the backward pass;

and the per-tensor caches (:func:`graphlab.ops.cached_csr`, :func:`graphlab.ops.cached_transpose`) are primed, so a
graphlab layer called with ``data.edge_index`` never sorts. ``data.to(device)`` moves the stored tensors but
creates a new ``edge_index`` tensor; call :func:`register_csr` (or the transform again, which reuses the stored
tensors) after moving.

Use it for full-graph (transductive) training. Mini-batches collated from several graphs do not shift
``csr_*`` indices, so do not batch graphs that carry them; graphlab layers build the CSR of a batch on the fly
(cached per batch tensor).
"""

from __future__ import annotations

from typing import Any

from torch_geometric.data import Data, HeteroData
from torch_geometric.transforms import BaseTransform

from graphlab.ops import CSR, csr_transpose, to_csr
# Priming the identity caches with tensors built elsewhere has no public entry point in graphlab.ops yet.
from graphlab.ops.csr import CSR_CACHE, TRANSPOSE_CACHE, _normalise_size

_CSR_KEYS = ("csr_rowptr", "csr_col", "csr_perm")
_TRANSPOSE_KEYS = ("csr_t_colptr", "csr_t_row", "csr_t_perm")


def _store_size(store: Any) -> tuple[int, int]:
    size = store.size()
    if size[0] is None or size[1] is None:
        raise ValueError("ToCSR needs the number of nodes; set data.num_nodes before applying the transform")
    return int(size[0]), int(size[1])


def register_csr(data: Data | HeteroData) -> Data | HeteroData:
    """Prime the per-tensor caches from the ``csr_*`` attributes that :class:`ToCSR` stored (no sorting)."""
    for store in data.edge_stores:
        if "edge_index" not in store or "csr_rowptr" not in store:
            continue
        size = _normalise_size(_store_size(store))
        csr = CSR(*(store[k] for k in _CSR_KEYS))
        CSR_CACHE.put([store.edge_index], ("csr", size), csr)
        TRANSPOSE_CACHE.put([csr.rowptr, csr.col], ("transpose", size[0]), CSR(*(store[k] for k in _TRANSPOSE_KEYS)))
    return data


class ToCSR(BaseTransform):
    """Store the CSR (rows = targets) of every ``edge_index`` and its transpose on the data object.

    Args:
        validate: check ``edge_index`` against the number of nodes (ValueError) when building.
    """

    def __init__(self, validate: bool = True) -> None:
        self.validate = validate

    def forward(self, data: Data | HeteroData) -> Data | HeteroData:
        for store in data.edge_stores:
            if "edge_index" not in store or "csr_rowptr" in store:
                continue
            num_src, num_dst = _store_size(store)
            csr = to_csr(store.edge_index, (num_src, num_dst), validate=self.validate)
            transpose = csr_transpose(csr.rowptr, csr.col, num_src)
            for key, value in zip(_CSR_KEYS + _TRANSPOSE_KEYS, (*csr, *transpose)):
                store[key] = value
        return register_csr(data)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(validate={self.validate})"
