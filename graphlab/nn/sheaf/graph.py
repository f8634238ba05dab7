r"""Graphs prepared for sheaf Laplacians: sorted edges, reverse-edge index, degrees, block index, and a cache.

Conventions: graphs are undirected, stored with both directions of every edge (no self-loops). The map of the
directed edge ``e = (u, v)`` (``edge_index[:, e]``) is :math:`\mathcal{F}_{u \trianglelefteq e}`; the map of the
other end is the one of the reverse edge ``rev[e] = (v, u)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from graphlab.ops import BlockIndex

__all__ = ["SheafGraph", "SheafGraphCache", "canonical_edge_index"]


@dataclass(eq=False)
class SheafGraph:
    """An undirected graph prepared for sheaf Laplacians: edges sorted by (row, col), reverse-edge index,
    degrees and the :class:`~graphlab.ops.sheaf.BlockIndex` of :func:`~graphlab.ops.sheaf.block_spmm`.

    Attributes:
        edge_index: ``[2, E]`` sorted, coalesced, both directions.
        rev: ``[E]``, ``edge_index[:, rev[e]]`` is edge ``e`` reversed.
        degree: ``[N]`` node degrees (float, dtype of the caller's choice via :meth:`deg`).
        perm: ``[E]`` sorted edge ``k`` is input edge ``perm[k]`` (to reorder user-supplied per-edge data).
        index: block index for :func:`block_spmm`.
        num_nodes: ``N``.
    """

    edge_index: Tensor
    rev: Tensor
    degree: Tensor
    perm: Tensor
    index: BlockIndex
    num_nodes: int

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_nodes: Optional[int] = None) -> "SheafGraph":
        """Sort ``edge_index`` and index its reverse edges.

        Raises:
            ValueError: if ``edge_index`` is not int64 ``[2, E]``, has an index outside ``[0, num_nodes)``,
                self-loops, duplicate edges, or an edge without its reverse.
        """
        if edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_index.dtype != torch.long:
            raise ValueError(f"edge_index must be int64 [2, E], got {edge_index.dtype} {tuple(edge_index.shape)}")
        n = int(num_nodes if num_nodes is not None else (int(edge_index.max()) + 1 if edge_index.numel() else 0))
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
            raise ValueError(f"edge_index has indices in [{int(edge_index.min())}, {int(edge_index.max())}] but the "
                             f"graph has num_nodes={n}; pass the right num_nodes or drop the out-of-range edges")
        row, col = edge_index
        if bool((row == col).any()):
            raise ValueError("edge_index has self-loops, which a sheaf Laplacian has no place for; "
                             "apply torch_geometric.utils.remove_self_loops first")
        key = row * n + col
        perm = torch.argsort(key)
        key = key[perm]
        if key.numel() > 1 and not bool((key[1:] > key[:-1]).all()):
            raise ValueError("edge_index has duplicate edges; apply torch_geometric.utils.coalesce first")
        sorted_edges = edge_index[:, perm]
        rev_key = sorted_edges[1] * n + sorted_edges[0]
        rev = torch.searchsorted(key, rev_key).clamp_max(max(key.numel() - 1, 0))
        if key.numel() and not bool((key[rev] == rev_key).all()):
            raise ValueError("edge_index is not symmetric: some edge (u, v) has no reverse (v, u); "
                             "apply torch_geometric.utils.to_undirected first")
        degree = torch.bincount(sorted_edges[0], minlength=n)
        index = BlockIndex.from_edge_index(sorted_edges, n)
        return cls(sorted_edges, rev, degree, perm, index, n)

    @property
    def row(self) -> Tensor:
        return self.edge_index[0]

    @property
    def col(self) -> Tensor:
        return self.edge_index[1]

    def deg(self, dtype: torch.dtype) -> Tensor:
        """Degrees as a ``[N]`` float tensor of ``dtype``."""
        return self.degree.to(dtype)


class SheafGraphCache:
    """Keeps the :class:`SheafGraph` of the last ``edge_index`` seen, so a model sorts and indexes its graph
    once instead of in every layer and every call (a full-batch model sees the same graph every epoch).

    Args:
        canonicalise: drop self-loops and add missing reverse edges before building (the official NSD
            preprocessing: ``remove_self_loops`` + ``to_undirected``); otherwise the graph must already be
            undirected and loop-free (:meth:`SheafGraph.from_edge_index` raises).
    """

    def __init__(self, canonicalise: bool = True) -> None:
        self.canonicalise = canonicalise
        self._key: Optional[Tensor] = None
        self._graph: Optional[SheafGraph] = None

    def __call__(self, edge_index: Tensor, num_nodes: int) -> SheafGraph:
        graph, key = self._graph, self._key
        if (graph is None or key is None or graph.num_nodes != num_nodes or key.shape != edge_index.shape
                or key.device != edge_index.device or not torch.equal(key, edge_index)):
            # built outside inference mode even under `trainer.validate`, so training may reuse it afterwards
            with torch.inference_mode(False):
                edge_index = edge_index.clone()
                self._graph = graph = SheafGraph.from_edge_index(
                    canonical_edge_index(edge_index, num_nodes) if self.canonicalise else edge_index, num_nodes)
                self._key = edge_index
        return graph


def canonical_edge_index(edge_index: Tensor, num_nodes: int) -> Tensor:
    """``edge_index`` without self-loops and duplicates, with every reverse edge (sorted by (row, col))."""
    from torch_geometric.utils import remove_self_loops, to_undirected

    edge_index, _ = remove_self_loops(edge_index)
    return to_undirected(edge_index, num_nodes=num_nodes)


def _take(values: Tensor, index: Tensor) -> Tensor:
    """``values[index]`` along the first axis, as ``index_select`` (several times faster on CPU than advanced
    indexing, and its backward is an ``index_add`` rather than an accumulating ``index_put``)."""
    return values.index_select(0, index)


def _gather_sum(values: Tensor, index: Tensor, size: int) -> Tensor:
    """``out[i] = sum_{k: index[k] = i} values[k]``."""
    return values.new_zeros((size,) + values.shape[1:]).index_add_(0, index, values)
