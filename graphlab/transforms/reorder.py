r"""Locality orderings of a graph's nodes, and :class:`ReorderNodes`, the transform that applies one to a ``Data``.

A message-passing layer gathers the rows :math:`x_u` of every neighbour :math:`u \in N(v)` of each target
:math:`v`. When the feature matrix is larger than the cache, the gather's speed depends on how close the ids of
neighbours are: a permutation :math:`\pi` that numbers adjacent nodes close together turns random row reads into
nearly sequential ones. Relabelling is an isomorphism, so every equivariant model computes the same function,
:math:`f(P X, P A P^\top) = P f(X, A)` with :math:`P` the permutation matrix of :math:`\pi`, and
:func:`restore_order` undoes :math:`P` on the outputs.

Convention used throughout: ``perm[new] = old``. Row ``new`` of the reordered graph is row ``perm[new]`` of the
original (``x_new = x[perm]``); the inverse ``inv`` (``inv[old] = new``) relabels indices
(``edge_index_new = inv[edge_index]``).

Orderings (:func:`node_order`; every one symmetrises the graph first, ignores self-loops and duplicate edges,
numbers every connected component in turn and isolated nodes last):

* ``rcm``: reverse Cuthill-McKee (Cuthill & McKee 1969; George 1971), scipy's
  ``scipy.sparse.csgraph.reverse_cuthill_mckee``. It minimises, heuristically, the bandwidth
  :math:`\max_{(u, v) \in E} |\pi^{-1}(u) - \pi^{-1}(v)|`.
* ``degree_bfs``: breadth-first search from the highest-degree unvisited node, each node's unvisited neighbours
  numbered in order of decreasing degree (ties by id); hubs and their neighbourhoods come first and close together
  (the hub-first BFS of graph-reordering studies, e.g. Balaji & Lucia, IISWC 2018).
* ``community``: a Rabbit-order-like community order (Arai et al., IPDPS 2016, without its modularity
  merging): communities from semi-synchronous label propagation (Raghavan, Albert & Kumara 2007), each
  community's nodes consecutive, communities and the nodes inside them in ``degree_bfs`` order. Neighbours in one
  community then share one contiguous block of rows.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union, get_args

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import reverse_cuthill_mckee
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.transforms import BaseTransform

from graphlab.transforms.csr import ToCSR

__all__ = ["METHODS", "ReorderMethod", "ReorderNodes", "bandwidth", "inverse_permutation", "node_order",
           "permute_nodes", "restore_order"]

ReorderMethod = Literal["rcm", "degree_bfs", "community"]
METHODS: tuple[str, ...] = get_args(ReorderMethod)

LABEL_PROPAGATION_ROUNDS = 10
"""Rounds of label propagation of the ``community`` order: Raghavan et al. report that 95% of the nodes hold their
final label after 5 rounds; 10 leaves a margin and keeps the cost at about 10 sorts of the edge list."""

_CSR_KEYS = ("csr_rowptr", "csr_col", "csr_perm", "csr_t_colptr", "csr_t_row", "csr_t_perm")


# ------------------------------------------------------------------------------------------------ validation
def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown reordering method {method!r}; choose one of {', '.join(METHODS)}")


def _check_edge_index(edge_index: Tensor, num_nodes: int) -> None:
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        shape = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise ValueError(f"edge_index must be a [2, E] tensor, got {shape}")
    if edge_index.dtype.is_floating_point or edge_index.dtype == torch.bool or edge_index.is_complex():
        raise TypeError(f"edge_index must hold integer node ids, got dtype {edge_index.dtype}; cast it with .long()")
    if num_nodes < 0:
        raise ValueError(f"num_nodes must be >= 0, got {num_nodes}")
    if edge_index.numel() == 0:
        return
    low, high = int(edge_index.min()), int(edge_index.max())
    if low < 0 or high >= num_nodes:
        raise ValueError(f"edge_index has ids in [{low}, {high}] but the graph has {num_nodes} nodes; ids must lie "
                         f"in [0, {num_nodes - 1}]: pass the right num_nodes or drop the out-of-range edges")


# ------------------------------------------------------------------------------------------------ orderings
def _symmetric_adjacency(edge_index: Tensor, num_nodes: int) -> sp.csr_matrix:
    """:math:`A + A^\top` without self-loops, unit weights, sorted column indices (scipy CSR)."""
    row, col = edge_index.detach().cpu().numpy().astype(np.int64, copy=False)
    keep = row != col
    row, col = np.concatenate([row[keep], col[keep]]), np.concatenate([col[keep], row[keep]])
    adj = sp.csr_matrix((np.ones(row.size, dtype=np.int8), (row, col)), shape=(num_nodes, num_nodes))
    adj.sum_duplicates()
    adj.data[:] = 1
    return adj


def _rcm(adj: sp.csr_matrix) -> np.ndarray:
    return reverse_cuthill_mckee(adj, symmetric_mode=True).astype(np.int64)


def _degree_bfs(adj: sp.csr_matrix) -> np.ndarray:
    """Level-synchronous BFS: a level is the concatenation, in frontier order, of each frontier node's neighbours
    sorted by decreasing degree, keeping the first occurrence of each unvisited node."""
    n = adj.shape[0]
    indptr, indices = adj.indptr.astype(np.int64), adj.indices.astype(np.int64)
    deg = np.diff(indptr)
    rows = np.repeat(np.arange(n), deg)
    indices = indices[np.lexsort((indices, -deg[indices], rows))]  # each row: neighbours by degree desc, then id
    seeds = np.lexsort((np.arange(n), -deg))  # start candidates: degree desc, then id
    seeds = seeds[deg[seeds] > 0]
    visited = np.zeros(n, dtype=bool)
    order: list[np.ndarray] = []
    for seed in seeds:
        if visited[seed]:
            continue
        frontier = np.array([seed])
        visited[seed] = True
        while frontier.size:
            order.append(frontier)
            starts, counts = indptr[frontier], deg[frontier]
            offsets = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
            candidates = indices[offsets]
            candidates = candidates[~visited[candidates]]
            _, first = np.unique(candidates, return_index=True)
            frontier = candidates[np.sort(first)]
            visited[frontier] = True
    order.append(np.flatnonzero(deg == 0))  # isolated nodes last, by id
    return np.concatenate(order)


def _label_propagation(adj: sp.csr_matrix, rounds: int, seed: int = 0) -> np.ndarray:
    r"""Community labels: each round, a random half of the nodes takes the label most frequent among its neighbours
    and itself, :math:`c_v \leftarrow \arg\max_c |\{u \in N(v) \cup \{v\} : c_u = c\}|` (ties to the label of
    smallest hash). Updating half the nodes at a time (semi-synchronous) avoids the two-colour oscillation of
    synchronous propagation on bipartite parts."""
    n = adj.shape[0]
    rng = np.random.default_rng(seed)
    target = np.concatenate([np.repeat(np.arange(n), np.diff(adj.indptr)), np.arange(n)])
    source = np.concatenate([adj.indices.astype(np.int64), np.arange(n)])
    tie_hash = rng.permutation(n)
    labels = np.arange(n)
    for _ in range(rounds):
        key = target * n + labels[source]
        pairs, counts = np.unique(key, return_counts=True)
        node, label = pairs // n, pairs % n
        best = np.lexsort((tie_hash[label], -counts, node))
        first = np.ones(best.size, dtype=bool)
        first[1:] = node[best[1:]] != node[best[:-1]]
        winner = np.empty(n, dtype=np.int64)
        winner[node[best[first]]] = label[best[first]]
        if np.array_equal(winner, labels):
            break
        update = rng.random(n) < 0.5
        labels = np.where(update, winner, labels)
    return labels


def _community(adj: sp.csr_matrix) -> np.ndarray:
    bfs = _degree_bfs(adj)
    position = np.empty_like(bfs)
    position[bfs] = np.arange(bfs.size)
    labels = _label_propagation(adj, LABEL_PROPAGATION_ROUNDS)
    first_position = np.full(adj.shape[0], bfs.size, dtype=np.int64)
    np.minimum.at(first_position, labels, position)
    return np.lexsort((position, first_position[labels]))


_ORDERS = {"rcm": _rcm, "degree_bfs": _degree_bfs, "community": _community}


def node_order(edge_index: Tensor, num_nodes: int, method: ReorderMethod = "rcm") -> Tensor:
    r"""A locality ordering of the nodes of the graph ``edge_index``: ``perm`` with ``perm[new] = old``.

    The graph is treated as undirected (:math:`A + A^\top`); self-loops and repeated edges do not matter;
    disconnected graphs are ordered component by component, isolated nodes (``rcm``: wherever scipy puts them;
    the other methods: last).

    Args:
        edge_index: ``[2, E]`` integer node ids in ``[0, num_nodes)``.
        num_nodes: :math:`N`.
        method: ``"rcm"``, ``"degree_bfs"`` or ``"community"`` (see the module docstring).

    Returns:
        ``[N]`` int64 on ``edge_index``'s device, a permutation of ``0..N-1``.

    Raises:
        ValueError: unknown ``method``, a malformed ``edge_index`` or ids outside ``[0, num_nodes)``.
        TypeError: a non-integer ``edge_index``.
    """
    _check_method(method)
    _check_edge_index(edge_index, num_nodes)
    adj = _symmetric_adjacency(edge_index, num_nodes)
    perm = _ORDERS[method](adj) if adj.nnz else np.arange(num_nodes)  # no edges: every order is as good
    return torch.from_numpy(np.ascontiguousarray(perm)).to(edge_index.device)


def inverse_permutation(perm: Tensor) -> Tensor:
    """``inv`` with ``inv[perm[i]] = i``."""
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel(), device=perm.device)
    return inv


def bandwidth(edge_index: Tensor, perm: Optional[Tensor] = None) -> int:
    r"""The bandwidth :math:`\max_{(u, v) \in E} |\pi^{-1}(u) - \pi^{-1}(v)|` of the graph numbered by ``perm``
    (``perm[new] = old``; ``None``: as given). 0 for an edgeless graph."""
    if edge_index.numel() == 0:
        return 0
    if perm is not None:
        edge_index = inverse_permutation(perm)[edge_index]
    return int((edge_index[0] - edge_index[1]).abs().max())


# ------------------------------------------------------------------------------------------------ the transform
def _is_node_index(key: str, value: Any) -> bool:
    """Attributes holding node ids, those PyG's ``Data.__inc__`` shifts by ``num_nodes`` when batching (keys
    containing ``index``, and ``face``): ``edge_index``, ``edge_label_index``, ``pos_edge_index``, ..."""
    return isinstance(value, Tensor) and value.dim() > 0 and not value.is_floating_point() \
        and ("index" in key or key == "face")


def _permute_along(data: Data, key: str, value: Any, index: Tensor) -> Any:
    """``value`` reindexed along its concatenation dimension (lists indexed entry by entry)."""
    if isinstance(value, (list, tuple)):
        return type(value)(value[int(i)] for i in index)
    dim = data.__cat_dim__(key, value)
    if isinstance(value, np.ndarray):
        return np.take(value, index.cpu().numpy(), axis=dim)
    return value.index_select(dim, index.to(value.device))


class ReorderNodes(BaseTransform):
    r"""Renumber a graph's nodes by a locality ordering (:func:`node_order`), consistently everywhere.

    With ``perm`` (``perm[new] = old``) and its inverse ``inv``:

    * every node-indexed attribute (``data.is_node_attr(key)``: ``x``, ``y``, ``pos``, the masks, 2-D split masks
      ``[N, S]``, positional encodings, per-node lists...) becomes ``value[perm]``;
    * every attribute holding node ids (``edge_index`` and other ``*index`` keys that PyG shifts by ``num_nodes``,
      e.g. ``edge_label_index``) becomes ``inv[value]``;
    * the edges are then sorted by (new target, new source), and every edge attribute (``edge_attr``,
      ``edge_weight``...) follows its edge, so the CSR rows of consecutive targets read nearby sources;
    * ``data.node_perm`` holds ``perm`` relative to the user's original numbering (applying the transform twice
      composes: the stored permutation is permuted like any node attribute); :func:`restore_order` uses it;
    * CSR caches stored by :class:`~graphlab.transforms.ToCSR` are rebuilt for the new edges.

    Args:
        method: ``"rcm"``, ``"degree_bfs"`` or ``"community"``.

    Raises:
        ValueError: an unknown ``method``; at call time, an ``edge_index`` with ids outside ``[0, num_nodes)`` or a
            sparse adjacency attribute (``adj_t``: build it after reordering).
        TypeError: a ``Batch`` (reorder each graph before batching) or a non-``Data`` input.
    """

    def __init__(self, method: ReorderMethod = "rcm") -> None:
        _check_method(method)
        self.method = method

    def forward(self, data: Data) -> Data:
        if isinstance(data, Batch) or not isinstance(data, Data):
            raise TypeError(f"ReorderNodes takes one homogeneous torch_geometric.data.Data, got "
                            f"{type(data).__name__}; reorder each graph before batching (e.g. as pre_transform)")
        if data.edge_index is None or data.num_nodes is None:
            raise ValueError("ReorderNodes needs data.edge_index and data.num_nodes")
        num_nodes = int(data.num_nodes)
        perm = node_order(data.edge_index, num_nodes, self.method)
        return permute_nodes(data, perm)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.method!r})"


def permute_nodes(data: Data, perm: Tensor) -> Data:
    """:class:`ReorderNodes` with a given permutation ``perm`` (``perm[new] = old``); returns a new ``Data``.

    Raises:
        ValueError: ``perm`` is not a permutation of ``0..N-1``; a sparse adjacency attribute (``adj_t``...), which
            would be left in the old numbering.
    """
    num_nodes = int(data.num_nodes)
    if perm.dim() != 1 or perm.numel() != num_nodes or not torch.equal(
            torch.sort(perm.cpu()).values, torch.arange(num_nodes)):
        raise ValueError(f"perm must be a permutation of 0..{num_nodes - 1} (perm[new] = old), got shape "
                         f"{tuple(perm.shape)}")
    _check_edge_index(data.edge_index, num_nodes)
    adjacency = [k for k, v in data.items() if (isinstance(v, Tensor) and v.layout != torch.strided)
                 or type(v).__name__ == "SparseTensor"]
    if adjacency:
        raise ValueError(f"ReorderNodes cannot renumber the sparse matrices {adjacency}: drop them and build them "
                         "after reordering (e.g. apply ToSparseTensor after ReorderNodes)")
    out = data.clone()
    if "node_perm" not in out:
        out.node_perm = torch.arange(num_nodes, device=perm.device)
    had_csr = any(key in out for key in _CSR_KEYS)
    for key in _CSR_KEYS:  # built for the old numbering; rebuilt below
        if key in out:
            del out[key]
    inv = inverse_permutation(perm)
    index_keys = [k for k, v in out.items() if _is_node_index(k, v)]
    node_keys = [k for k in out.keys() if k not in index_keys and out.is_node_attr(k)]
    edge_keys = [k for k in out.keys() if k not in index_keys and out.is_edge_attr(k)]
    for key in node_keys:
        out[key] = _permute_along(out, key, out[key], perm)
    for key in index_keys:
        out[key] = inv.to(out[key].device)[out[key]]
    src, dst = out.edge_index
    edge_order = torch.from_numpy(np.lexsort((src.cpu().numpy(), dst.cpu().numpy()))).to(src.device)
    for key in edge_keys:
        out[key] = _permute_along(out, key, out[key], edge_order)
    out.edge_index = out.edge_index[:, edge_order]
    out.num_nodes = num_nodes
    return ToCSR()(out) if had_csr else out


def restore_order(out: Tensor, data_or_perm: Union[Data, Tensor], dim: int = 0) -> Tensor:
    """Rows of ``out`` (computed on the reordered graph, one per new node along ``dim``) back in the user's original
    node order: ``restored[perm[new]] = out[new]``.

    Args:
        out: ``[N, ...]`` (or ``N`` along ``dim``).
        data_or_perm: the reordered ``Data`` (its ``node_perm``) or the permutation itself (``perm[new] = old``).

    Raises:
        ValueError: no ``node_perm`` on the data, or ``out`` has not ``N`` entries along ``dim``.
    """
    perm = getattr(data_or_perm, "node_perm", None) if isinstance(data_or_perm, Data) else data_or_perm
    if perm is None:
        raise ValueError("the Data has no node_perm: it was not reordered by ReorderNodes (nothing to restore)")
    if out.size(dim) != perm.numel():
        raise ValueError(f"out has {out.size(dim)} entries along dim {dim} but the graph has {perm.numel()} nodes")
    return out.index_select(dim, inverse_permutation(perm).to(out.device))
