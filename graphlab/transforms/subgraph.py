r"""``SubgraphPairs``: the once-per-graph preprocessing of node-based subgraph GNNs.

For a graph with :math:`n` nodes it stores flat, row-major pair attributes of length :math:`n^2` (pair
:math:`(u, v)` at position :math:`u n + v`, the row order of :func:`graphlab.ops.pairs.pair_index`):

* ``pair_dis`` (long): the shortest-path distance :math:`d(u, v)` capped at ``max_dis``, and ``max_dis + 1`` for
  unreachable pairs (disconnected graphs get a dedicated embedding index instead of an invalid one);
* the policy's pairs: ``pair_mask`` (bool, node :math:`v` is in the subgraph of root :math:`u`) for
  ``ego`` (:math:`d(u, v) \le k`), ``ego_plus`` and ``node_deletion`` (:math:`v \ne u`); ``pair_label`` (long, 1 at
  :math:`(u, u)`, else 0) for ``node_marking`` and ``ego_plus`` (the root mark of ESAN's EGO+).

``edge_deletion`` (ESAN's ED) has one subgraph per undirected edge instead of per node: it stores
``deleted_edge_index`` [2, m] (each undirected edge once, ``src <= dst``; PyG increments it like ``edge_index``),
and a graph without edges gets the single subgraph "the graph itself", written ``[[0], [0]]`` (a self-loop that is
not an edge, so nothing is deleted). Its states have :math:`m n` rows (:func:`graphlab.ops.edge_deleted_index`);
``pair_dis`` is still stored for distance features.

No per-subgraph edge list is stored: the subgraph's edges are those of the graph whose two ends are in the mask
(ESAN keeps every node in every subgraph), and :mod:`graphlab.ops.pairs` restricts the local atoms with the mask.

Distances come from :func:`scipy.sparse.csgraph.shortest_path` on the unweighted graph (BFS per root, in C), edges
treated as given (symmetrise ``edge_index`` first for an undirected graph: PyG's molecules already are).
Row :math:`u` holds the distances *from* :math:`u`.

Batching: the attribute names contain neither ``index`` nor ``face``, so PyG concatenates them along dim 0 without
an increment: a ``Batch`` of graphs of sizes :math:`n_g` holds :math:`\sum_g n_g^2` entries in graph order, the
row order of the pair engine.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse
import torch
from scipy.sparse.csgraph import shortest_path
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

Policy = Literal["node_marking", "node_deletion", "edge_deletion", "ego", "ego_plus"]
POLICIES: tuple[str, ...] = ("node_marking", "node_deletion", "edge_deletion", "ego", "ego_plus")
PAIR_KEYS: tuple[str, ...] = ("pair_dis", "pair_mask", "pair_label", "deleted_edge_index")


def _bfs_distances(edge_index: torch.Tensor, num_nodes: int) -> np.ndarray:
    """``[n, n]`` float: the exact BFS distance from row ``u`` to column ``v`` over the edges ``src -> dst``,
    ``inf`` where ``v`` is unreachable from ``u``."""
    src, dst = edge_index.cpu().numpy()
    adj = scipy.sparse.csr_matrix((np.ones(src.size), (src, dst)), shape=(num_nodes, num_nodes))
    return shortest_path(adj, method="D", unweighted=True, directed=True)


def _cap(dist: np.ndarray, max_dis: int) -> torch.Tensor:
    out = np.where(np.isinf(dist), max_dis + 1, np.minimum(dist, max_dis))
    return torch.from_numpy(out.astype(np.int64))


def shortest_path_distances(edge_index: torch.Tensor, num_nodes: int, max_dis: int) -> torch.Tensor:
    """``[n, n]`` long: BFS distance from row ``u`` to column ``v`` over the edges ``src -> dst``, capped at
    ``max_dis``, ``max_dis + 1`` where ``v`` is unreachable from ``u``."""
    return _cap(_bfs_distances(edge_index, num_nodes), max_dis)


def _undirected_edges(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """``[2, m]``: each undirected edge once as ``(min, max)``, sorted; ``[[0], [0]]`` for a graph without edges."""
    lo, hi = edge_index.min(0).values, edge_index.max(0).values
    pairs = torch.unique(lo * max(num_nodes, 1) + hi, sorted=True)
    if pairs.numel() == 0:
        return torch.zeros(2, 1 if num_nodes else 0, dtype=torch.long)
    return torch.stack([pairs // max(num_nodes, 1), pairs % max(num_nodes, 1)])


class SubgraphPairs(BaseTransform):
    r"""Shortest-path distances and a subgraph policy over all node pairs, run once as a ``pre_transform``.

    Args:
        max_dis: cap of the stored distance (SWL uses 5 on ZINC); ``max_dis + 1`` marks unreachable pairs, so a
            distance embedding needs ``max_dis + 2`` entries.
        policy: ``"node_marking"`` | ``"node_deletion"`` | ``"edge_deletion"`` | ``"ego"`` | ``"ego_plus"``.
        num_hops: radius :math:`k` of the ego nets (``ego``, ``ego_plus``).

    Stores ``pair_dis`` [n²] and, by policy, ``pair_mask`` [n²] / ``pair_label`` [n²] / ``deleted_edge_index``
    [2, m] (module docstring).
    """

    def __init__(self, max_dis: int = 5, policy: Policy = "node_marking", num_hops: int = 3) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown subgraph policy {policy!r}; valid policies are {', '.join(POLICIES)}")
        if isinstance(max_dis, bool) or not isinstance(max_dis, int) or max_dis < 1:
            raise ValueError(f"max_dis must be an int >= 1 (distances are capped at it), got {max_dis!r}")
        if isinstance(num_hops, bool) or not isinstance(num_hops, int) or num_hops < 1:
            raise ValueError(f"num_hops must be an int >= 1 (the ego-net radius), got {num_hops!r}")
        if policy in ("ego", "ego_plus") and num_hops > max_dis:
            raise ValueError(f"num_hops={num_hops} exceeds max_dis={max_dis}: the ego mask is read from the capped "
                             f"distances; raise max_dis to at least num_hops")
        self.max_dis, self.policy, self.num_hops = max_dis, policy, num_hops

    def forward(self, data: Data) -> Data:
        n = data.num_nodes
        if n is None:
            raise ValueError("SubgraphPairs needs the number of nodes; set data.num_nodes (or data.x)")
        edge_index = data.edge_index
        if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2 \
                or edge_index.is_floating_point() or edge_index.is_complex() or edge_index.dtype == torch.bool:
            raise ValueError(f"SubgraphPairs needs data.edge_index as an integer tensor [2, E] (sources, targets; "
                             f"an empty [2, 0] long tensor for a graph without edges), got "
                             f"{type(edge_index).__name__} {getattr(edge_index, 'dtype', '')} "
                             f"{tuple(getattr(edge_index, 'shape', ()))}")
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
            raise ValueError(f"edge_index has values in [{int(edge_index.min())}, {int(edge_index.max())}] but the "
                             f"graph has {n} nodes; fix edge_index or set data.num_nodes")
        exact = _bfs_distances(edge_index, n)
        data.pair_dis = _cap(exact, self.max_dis).reshape(-1)
        root = torch.eye(n, dtype=torch.bool).reshape(-1)
        if self.policy in ("ego", "ego_plus"):
            # from the exact distances: with num_hops == max_dis the capped ones would put every reachable node in
            data.pair_mask = torch.from_numpy(exact <= self.num_hops).reshape(-1)
        elif self.policy == "node_deletion":
            data.pair_mask = ~root
        if self.policy in ("node_marking", "ego_plus"):
            data.pair_label = root.long()
        if self.policy == "edge_deletion":
            data.deleted_edge_index = _undirected_edges(edge_index, n)
        return data

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(max_dis={self.max_dis}, policy={self.policy!r}, "
                f"num_hops={self.num_hops})")
