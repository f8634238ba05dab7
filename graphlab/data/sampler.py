r"""Neighbour sampling for mini-batch GNN training, vectorised on CPU with torch alone.

PyG's :class:`~torch_geometric.loader.NeighborLoader` samples through pyg-lib or torch-sparse and raises
``ImportError`` on its first batch when neither is installed (pyg-lib ships no PyPI wheels, torch-sparse is a source
build). This module is graphlab's sampler with no compiled extras, in three layers:

* :class:`SamplingGraph` / :func:`sample_neighbors`: the sampler itself, on a compressed neighbour list
  (``rowptr`` ``[N + 1]``, ``col`` ``[E]``: the neighbours of node :math:`v` are ``col[rowptr[v]:rowptr[v + 1]]``).
  Every step is a tensor operation over all frontier nodes at once; the only Python loop runs over hops (and, for
  uniform sampling without replacement, over the :math:`k` draws of Floyd's algorithm).
* :class:`GraphlabNeighborSampler`: a :class:`torch_geometric.sampler.BaseSampler` over a ``Data`` or a
  ``(FeatureStore, GraphStore)`` pair, so PyG's ``NodeLoader`` / ``LinkLoader`` yield exactly the batches
  ``NeighborLoader`` yields (``n_id``, ``e_id``, ``batch_size``, ``num_sampled_nodes``, ``num_sampled_edges``).
* :func:`neighbor_loader`: a ``NeighborLoader`` that uses PyG's own sampler when pyg-lib / torch-sparse can be
  imported and graphlab's otherwise (``backend="auto"``).

Sampling rule of one hop. Let :math:`F` be the frontier (the seeds at hop 1, the nodes first reached at hop
:math:`h - 1` afterwards) and :math:`k_h` the fan-out. For every :math:`v \in F` with neighbours
:math:`\mathcal N(v)` (restricted, in temporal mode, to :math:`\{u : t_u \le t_{seed(v)}\}`), the sampler draws

* uniform without replacement: a uniformly random subset :math:`S_v \subseteq \mathcal N(v)`,
  :math:`|S_v| = \min(k_h, |\mathcal N(v)|)` (Floyd's algorithm, vectorised over :math:`F`);
* uniform with replacement: :math:`k_h` independent draws, :math:`P(u) = 1 / |\mathcal N(v)|`;
* weighted with replacement: :math:`k_h` independent draws, :math:`P(u) = w_{vu} / \sum_{u'} w_{vu'}` (inverse
  CDF over the segment's cumulative weights);
* weighted without replacement: the :math:`k_h` largest keys :math:`\kappa_u = u_u^{1 / w_{vu}}`,
  :math:`u_u \sim U(0, 1)` (Efraimidis & Spirakis, *Weighted random sampling with a reservoir*, IPL 2006),
  computed as :math:`\log u_u / w_{vu}`; edges of weight 0 are never drawn;
* temporal ``"last"``: the :math:`k_h` neighbours with the largest time :math:`t_u \le t_{seed(v)}`.

:math:`k_h = -1` takes every (eligible) neighbour. Each sampled pair gives the edge :math:`u \to v`; in the output
``row`` holds the local id of the neighbour :math:`u` (message source) and ``col`` the local id of :math:`v`
(message target), PyG's ``SamplerOutput`` layout, so ``edge_index = [row, col]`` feeds a convolution directly.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal, Optional, Sequence, Union

import torch
import torch_geometric.typing as pyg_typing
from torch import Tensor
from torch_geometric.data import Data, FeatureStore, GraphStore
from torch_geometric.loader import NeighborLoader
from torch_geometric.sampler import BaseSampler, SamplerOutput
from torch_geometric.sampler.neighbor_sampler import edge_sample, node_sample
from torch_geometric.sampler.utils import to_csc

TemporalStrategy = Literal["uniform", "last"]
SubgraphType = Literal["directional", "bidirectional", "induced"]
Backend = Literal["auto", "graphlab", "pyg"]

__all__ = [
    "GraphlabNeighborSampler",
    "SampledSubgraph",
    "SamplingGraph",
    "neighbor_loader",
    "pyg_sampler_available",
    "resolve_backend",
    "sample_neighbors",
]


# --------------------------------------------------------------------------- output
@dataclass
class SampledSubgraph:
    """The subgraph sampled around a batch of seeds.

    Attributes:
        node: ``[n]`` global node ids: the seeds first (exactly as given, duplicates included), then each hop's new
            nodes in the order they were first drawn.
        row: ``[m]`` local id (index into ``node``) of each edge's sampled neighbour (the message source).
        col: ``[m]`` local id of the node that sampled it (the message target).
        edge: ``[m]`` global edge ids: positions in the sampler's ``col`` array (CSR order).
        batch: ``[n]`` index of the seed each node was sampled for (disjoint mode), else ``None``.
        num_sampled_nodes: nodes added per hop, starting with the seeds (length ``hops + 1``).
        num_sampled_edges: edges added per hop (length ``hops``); ``None`` for the induced subgraph.
    """

    node: Tensor
    row: Tensor
    col: Tensor
    edge: Tensor
    batch: Optional[Tensor]
    num_sampled_nodes: list[int]
    num_sampled_edges: Optional[list[int]]

    @property
    def edge_index(self) -> Tensor:
        """``[2, m]`` local ``[row, col]``: neighbour to target."""
        return torch.stack([self.row, self.col])


# --------------------------------------------------------------------------- validation helpers
def _index_tensor(value: Any, name: str) -> Tensor:
    """``value`` as a 1-D int64 CPU tensor, or a ``TypeError`` / ``ValueError`` naming ``name``."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of integer ids, got {type(value).__name__}")
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer ids (int32 or int64), got dtype {value.dtype}")
    if value.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(value.shape)}")
    return value.to(device="cpu", dtype=torch.long)


def _check_num_neighbors(num_neighbors: Sequence[int]) -> list[int]:
    if isinstance(num_neighbors, (str, bytes)) or not isinstance(num_neighbors, Sequence):
        raise TypeError(f"num_neighbors must be a list of fan-outs, one per hop (e.g. [15, 10]), got "
                        f"{type(num_neighbors).__name__}")
    fanouts = list(num_neighbors)
    if not fanouts:
        raise ValueError("num_neighbors is empty: give one fan-out per hop, e.g. [15, 10] (-1 takes all neighbours)")
    for hop, k in enumerate(fanouts):
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"num_neighbors[{hop}] must be an int, got {k!r}")
        if k < -1:
            raise ValueError(f"num_neighbors[{hop}] = {k}: a fan-out must be >= 0, or -1 for all neighbours")
    return fanouts


# --------------------------------------------------------------------------- segment helpers
def _exclusive_cumsum(counts: Tensor) -> Tensor:
    return torch.cumsum(counts, 0) - counts


def _expand(start: Tensor, count: Tensor) -> tuple[Tensor, Tensor]:
    """Every ``(segment, start[segment] + j)`` for ``j < count[segment]``, segment-major."""
    seg = torch.repeat_interleave(torch.arange(count.numel()), count)
    offset = _exclusive_cumsum(count)
    return seg, start[seg] + torch.arange(seg.numel()) - offset[seg]


def _rank_in_segment(seg_sorted: Tensor, num_segments: int) -> Tensor:
    """Position of each entry inside its (consecutive) segment."""
    counts = torch.bincount(seg_sorted, minlength=num_segments)
    return torch.arange(seg_sorted.numel()) - _exclusive_cumsum(counts)[seg_sorted]


def _unique_first(x: Tensor) -> Tensor:
    """The distinct values of ``x`` in the order of their first occurrence."""
    if x.numel() == 0:
        return x
    uniq, inverse = torch.unique(x, return_inverse=True)
    first = torch.full((uniq.numel(),), x.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(x.numel()), reduce="amin")
    return x[first.sort().values]


def _rand(shape: tuple[int, ...], generator: Optional[torch.Generator]) -> Tensor:
    """``U[0, 1)`` in float64 (float32 would bias ``floor(u * d)`` once a degree passes :math:`2^{24}`)."""
    return torch.rand(shape, dtype=torch.float64, generator=generator)


def _floyd(count: Tensor, k: int, generator: Optional[torch.Generator]) -> Tensor:
    r"""``[S, k]`` distinct offsets in ``[0, count_s)`` per row, a uniform ``k``-subset (Floyd's algorithm).

    Step :math:`i` draws :math:`t \sim U\{0..J\}` with :math:`J = d - k + i` and keeps :math:`t`, or :math:`J` when
    :math:`t` was already kept; every :math:`k`-subset comes out with probability :math:`1 / \binom{d}{k}`.
    Needs ``count >= k`` on every row; the cost is :math:`O(S k^2)`, independent of the degrees.
    """
    picks = torch.empty(count.numel(), k, dtype=torch.long)
    for i in range(k):
        bound = count - k + i  # J: draw in [0, J]
        t = (_rand((count.numel(),), generator) * (bound + 1).to(torch.float64)).floor().to(torch.long)
        t = torch.minimum(t, bound)
        taken = (picks[:, :i] == t.unsqueeze(1)).any(dim=1)
        picks[:, i] = torch.where(taken, bound, t)
    return picks


def _uniform_offsets(count: Tensor, k: int, replace: bool,
                     generator: Optional[torch.Generator]) -> tuple[Tensor, Tensor]:
    """Uniform draws per segment of size ``count``: ``(segment, offset in segment)``, segment-major."""
    num = count.numel()
    if k == -1:
        return _expand(torch.zeros(num, dtype=torch.long), count)
    if replace:
        segs = torch.nonzero(count > 0).view(-1)
        offsets = (_rand((segs.numel(), k), generator) * count[segs].unsqueeze(1).to(torch.float64)).floor()
        offsets = torch.minimum(offsets.to(torch.long), (count[segs] - 1).unsqueeze(1))
        return segs.repeat_interleave(k), offsets.reshape(-1)
    taken = torch.clamp(count, max=k)
    out_seg = torch.repeat_interleave(torch.arange(num), taken)
    out_offset = torch.empty(out_seg.numel(), dtype=torch.long)
    start = _exclusive_cumsum(taken)
    small = count <= k  # take the whole segment
    seg_small, off_small = _expand(torch.zeros(num, dtype=torch.long), torch.where(small, count, 0))
    out_offset[start[seg_small] + off_small] = off_small
    big = torch.nonzero(~small).view(-1)
    if big.numel():
        picks = _floyd(count[big], k, generator)
        out_offset[(start[big].unsqueeze(1) + torch.arange(k)).reshape(-1)] = picks.reshape(-1)
    return out_seg, out_offset


def _top_k_per_segment(seg: Tensor, key: Tensor, k: int, num_segments: int) -> Tensor:
    """Indices (into ``seg``/``key``) of the ``k`` largest finite keys of each segment, segment-major
    (``k = -1``: every finite key)."""
    order = torch.argsort(key, descending=True, stable=True)
    order = order[torch.argsort(seg[order], stable=True)]
    keep = torch.isfinite(key[order])
    if k != -1:
        keep &= _rank_in_segment(seg[order], num_segments) < k
    return order[keep]


# --------------------------------------------------------------------------- the sampler
class SamplingGraph:
    r"""A validated neighbour list ready for repeated sampling.

    Args:
        rowptr: ``[N + 1]`` integer pointer (int32 or int64), non-decreasing from 0 to ``E``.
        col: ``[E]`` neighbour ids in ``[0, N)``: the neighbours of ``v`` are ``col[rowptr[v]:rowptr[v + 1]]``. For
            message passing towards ``v`` (PyG's flow ``source_to_target``) this is the CSC of ``edge_index``
            (``colptr``, ``row``): the sources of the edges into ``v``.
        weight: optional ``[E]`` non-negative finite edge weights, aligned with ``col`` (weighted sampling).
        time: optional ``[N]`` node timestamps (temporal sampling: a neighbour ``u`` of a node sampled for seed ``s``
            is eligible only if ``time[u] <= seed_time[s]``).

    The checks run once, here (``O(N + E)``); :meth:`sample` trusts them.
    """

    def __init__(self, rowptr: Tensor, col: Tensor, *, weight: Optional[Tensor] = None,
                 time: Optional[Tensor] = None) -> None:
        self.rowptr = _index_tensor(rowptr, "rowptr")
        self.col = _index_tensor(col, "col")
        if self.rowptr.numel() == 0:
            raise ValueError("rowptr is empty: a graph with N nodes needs rowptr of length N + 1 (at least [0])")
        self.num_nodes = self.rowptr.numel() - 1
        self.num_edges = self.col.numel()
        self._check_structure()
        self.weight = self._check_weight(weight)
        self.time = self._check_time(time)
        self._local: Optional[Tensor] = None  # global -> local scratch, reset after every call

    def _check_structure(self) -> None:
        if int(self.rowptr[0]) != 0 or int(self.rowptr[-1]) != self.num_edges:
            raise ValueError(f"rowptr must start at 0 and end at len(col) = {self.num_edges}, got "
                             f"{int(self.rowptr[0])} .. {int(self.rowptr[-1])}")
        if self.num_nodes and bool((self.rowptr[1:] < self.rowptr[:-1]).any()):
            raise ValueError("rowptr must be non-decreasing (a CSR pointer); build it as "
                             "[0] + cumsum(bincount(target, minlength=N)) over edges sorted by target")
        if self.num_edges and (int(self.col.min()) < 0 or int(self.col.max()) >= self.num_nodes):
            raise ValueError(f"col holds ids in [{int(self.col.min())}, {int(self.col.max())}] but the graph has "
                             f"{self.num_nodes} nodes (len(rowptr) - 1): every neighbour id must be in [0, N)")

    def _check_weight(self, weight: Optional[Tensor]) -> Optional[Tensor]:
        if weight is None:
            return None
        if not isinstance(weight, Tensor) or not weight.is_floating_point():
            raise TypeError("weight must be a floating-point torch.Tensor of edge weights, one per entry of col")
        if weight.shape != (self.num_edges,):
            raise ValueError(f"weight has shape {tuple(weight.shape)} but col has {self.num_edges} entries: give one "
                             "weight per edge, in the order of col")
        weight = weight.detach().to(device="cpu", dtype=torch.float64)
        if not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()):
            raise ValueError("weight must be finite and non-negative (a sampling weight); found a negative, NaN or "
                             "infinite value")
        return weight

    def _check_time(self, time: Optional[Tensor]) -> Optional[Tensor]:
        if time is None:
            return None
        if not isinstance(time, Tensor) or time.shape != (self.num_nodes,):
            shape = tuple(time.shape) if isinstance(time, Tensor) else type(time).__name__
            raise ValueError(f"time must be a tensor of node timestamps of shape ({self.num_nodes},), got {shape}")
        return time.detach().cpu()

    # ------------------------------------------------------------------ public entry
    def sample(
        self,
        seeds: Tensor,
        num_neighbors: Sequence[int],
        *,
        replace: bool = False,
        directed: bool = True,
        disjoint: bool = False,
        seed_time: Optional[Tensor] = None,
        temporal_strategy: TemporalStrategy = "uniform",
        generator: Optional[torch.Generator] = None,
    ) -> SampledSubgraph:
        """Sample the multi-hop neighbourhood of ``seeds`` (see :func:`sample_neighbors`)."""
        fanouts = _check_num_neighbors(num_neighbors)
        seeds = _index_tensor(seeds, "seeds")
        if seeds.numel() and (int(seeds.min()) < 0 or int(seeds.max()) >= self.num_nodes):
            raise ValueError(f"seeds hold ids in [{int(seeds.min())}, {int(seeds.max())}] but the graph has "
                             f"{self.num_nodes} nodes: every seed must be in [0, {self.num_nodes})")
        if temporal_strategy not in ("uniform", "last"):
            raise ValueError(f"temporal_strategy must be 'uniform' or 'last', got {temporal_strategy!r}")
        bound = self._seed_bound(seeds, seed_time)
        disjoint = disjoint or bound is not None  # temporal subgraphs are per seed, as in PyG
        if not directed and disjoint:
            raise ValueError("directed=False (the induced subgraph) cannot be combined with disjoint or temporal "
                             "sampling: keep directed=True there")
        options = _HopOptions(replace, temporal_strategy, generator)
        if disjoint:
            return self._sample_disjoint(seeds, fanouts, bound, options)
        return self._sample_shared(seeds, fanouts, directed, options)

    def _seed_bound(self, seeds: Tensor, seed_time: Optional[Tensor]) -> Optional[Tensor]:
        if seed_time is None:
            return None if self.time is None else self.time[seeds]
        if self.time is None:
            raise ValueError("seed_time was given but the graph has no node time: pass time= (node timestamps)")
        if not isinstance(seed_time, Tensor) or seed_time.shape != seeds.shape:
            shape = tuple(seed_time.shape) if isinstance(seed_time, Tensor) else type(seed_time).__name__
            raise ValueError(f"seed_time must have one entry per seed, shape {tuple(seeds.shape)}, got {shape}")
        return seed_time.detach().cpu()

    # ------------------------------------------------------------------ one hop
    def _hop(self, frontier: Tensor, k: int, bound: Optional[Tensor], options: "_HopOptions") -> tuple[Tensor, Tensor]:
        """``(segment, edge position)`` of every sampled edge of one hop, grouped by frontier node in order."""
        start = self.rowptr[frontier]
        count = self.rowptr[frontier + 1] - start
        if self.weight is None and bound is None:  # fast path: no per-edge work beyond the draws
            seg, offset = _uniform_offsets(count, k, options.replace, options.generator)
            return seg, start[seg] + offset
        seg, pos = _expand(start, count)  # every candidate edge: O(sum of degrees)
        eligible = torch.ones(pos.numel(), dtype=torch.bool)
        if bound is not None:
            eligible &= self.time[self.col[pos]] <= bound[seg]
        if self.weight is not None:
            eligible &= self.weight[pos] > 0
        seg, pos = seg[eligible], pos[eligible]
        num = frontier.numel()
        if bound is not None and options.temporal_strategy == "last":
            take = _top_k_per_segment(seg, self.time[self.col[pos]].to(torch.float64), k, num)
            return seg[take], pos[take]
        if self.weight is None:  # temporal uniform: uniform draws over the eligible, compacted edges
            count = torch.bincount(seg, minlength=num)
            seg_out, offset = _uniform_offsets(count, k, options.replace, options.generator)
            return seg_out, pos[_exclusive_cumsum(count)[seg_out] + offset]
        if options.replace and k != -1:
            return self._weighted_with_replacement(seg, pos, k, num, options.generator)
        key = torch.log1p(-_rand((pos.numel(),), options.generator)) / self.weight[pos]  # log u^(1/w), u in (0, 1]
        take = _top_k_per_segment(seg, key, k, num)
        return seg[take], pos[take]

    def _weighted_with_replacement(self, seg: Tensor, pos: Tensor, k: int, num: int,
                                   generator: Optional[torch.Generator]) -> tuple[Tensor, Tensor]:
        r"""``k`` draws per segment with :math:`P(u) = w_u / \sum w`: inverse CDF on the running sum."""
        cum = torch.cumsum(self.weight[pos], 0)  # monotone over the concatenated segments
        count = torch.bincount(seg, minlength=num)
        end = torch.cumsum(count, 0)
        first = end - count
        segs = torch.nonzero(count > 0).view(-1)
        below = torch.where(first[segs] > 0, cum[(first[segs] - 1).clamp(min=0)], torch.zeros(()))
        total = cum[end[segs] - 1] - below
        target = below.unsqueeze(1) + _rand((segs.numel(), k), generator) * total.unsqueeze(1)
        index = torch.searchsorted(cum, target.reshape(-1), right=True)
        index = torch.minimum(index, (end[segs] - 1).repeat_interleave(k))  # rounding at the segment's top
        return segs.repeat_interleave(k), pos[index]

    # ------------------------------------------------------------------ shared (one node set for all seeds)
    def _scratch(self) -> Tensor:
        """``[2, N]`` scratch: row 0 maps global to local ids (-1: not sampled), row 1 (``NO_POSITION`` when idle)
        finds first occurrences. Both are reset to their idle values after each call, so each call costs the size
        of its sample, not ``O(N)``."""
        if self._local is None or self._local.size(1) != self.num_nodes:
            self._local = torch.stack([torch.full((self.num_nodes,), -1, dtype=torch.long),
                                       torch.full((self.num_nodes,), _NO_POSITION, dtype=torch.long)])
        return self._local

    @staticmethod
    def _new_in_order(candidates: Tensor, first: Tensor) -> Tensor:
        """The distinct ``candidates`` in order of first occurrence, via the scratch row ``first`` (no sort):
        ``first[v] = min{i : candidates[i] = v}``, and position ``i`` is a first occurrence iff ``first[v] = i``."""
        position = torch.arange(candidates.numel())
        first.scatter_reduce_(0, candidates, position, reduce="amin")
        new = candidates[first.index_select(0, candidates) == position]
        first.index_fill_(0, candidates, _NO_POSITION)
        return new

    def _sample_shared(self, seeds: Tensor, fanouts: list[int], directed: bool,
                       options: "_HopOptions") -> SampledSubgraph:
        local, first_seen = self._scratch()  # global -> local id (-1 = not sampled yet); first occurrences
        nodes = [seeds]
        try:
            distinct = self._new_in_order(seeds, first_seen)
            local[distinct] = _first_positions(seeds, distinct)
            rows, cols, edges, num_nodes, num_edges = [], [], [], [seeds.numel()], []
            frontier, frontier_start, total = seeds, 0, seeds.numel()  # frontier's local ids: frontier_start + i
            for k in fanouts:
                seg, pos = self._hop(frontier, k, None, options)
                neighbour = self.col.index_select(0, pos)
                new = self._new_in_order(neighbour[local.index_select(0, neighbour) < 0], first_seen)
                local.index_copy_(0, new, torch.arange(total, total + new.numel()))
                nodes.append(new)
                rows.append(local.index_select(0, neighbour))
                cols.append(seg + frontier_start)
                edges.append(pos)
                num_nodes.append(new.numel())
                num_edges.append(pos.numel())
                frontier, frontier_start, total = new, total, total + new.numel()
            node = torch.cat(nodes)
            if not directed:
                row, col, edge = self._induced(node, local)
                return SampledSubgraph(node, row, col, edge, None, num_nodes, None)
            return SampledSubgraph(node, torch.cat(rows), torch.cat(cols), torch.cat(edges), None, num_nodes,
                                   num_edges)
        finally:
            local.index_fill_(0, torch.cat(nodes), -1)

    def _induced(self, node: Tensor, local: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Every edge of the graph between sampled nodes (target = each position of ``node``)."""
        start = self.rowptr[node]
        seg, pos = _expand(start, self.rowptr[node + 1] - start)
        source = local[self.col[pos]]
        keep = source >= 0
        return source[keep], seg[keep], pos[keep]

    # ------------------------------------------------------------------ disjoint (one tree per seed)
    def _sample_disjoint(self, seeds: Tensor, fanouts: list[int], bound: Optional[Tensor],
                         options: "_HopOptions") -> SampledSubgraph:
        """Each seed position grows its own tree: a node is identified by ``(seed index, global id)``."""
        n = max(self.num_nodes, 1)
        batch = torch.arange(seeds.numel())
        keys = batch * n + seeds  # distinct: one tree per seed position
        known_keys, order = keys.sort()
        known_local = order
        node, tree = [seeds], [batch]
        rows, cols, edges, num_nodes, num_edges = [], [], [], [seeds.numel()], []
        frontier_global, frontier_tree, frontier_local = seeds, batch, torch.arange(seeds.numel())
        total = seeds.numel()
        for k in fanouts:
            hop_bound = None if bound is None else bound[frontier_tree]
            seg, pos = self._hop(frontier_global, k, hop_bound, options)
            neighbour, owner = self.col[pos], frontier_tree[seg]
            key = owner * n + neighbour
            found = _lookup(known_keys, key)
            new_keys = _unique_first(key[found < 0])
            new_local = torch.arange(total, total + new_keys.numel())
            known_keys, merge = torch.cat([known_keys, new_keys]).sort()
            known_local = torch.cat([known_local, new_local])[merge]
            rows.append(known_local[torch.searchsorted(known_keys, key)])
            cols.append(frontier_local[seg])
            edges.append(pos)
            frontier_tree, frontier_global = new_keys // n, new_keys % n
            frontier_local = new_local
            node.append(frontier_global)
            tree.append(frontier_tree)
            num_nodes.append(new_keys.numel())
            num_edges.append(pos.numel())
            total += new_keys.numel()
        return SampledSubgraph(torch.cat(node), torch.cat(rows), torch.cat(cols), torch.cat(edges), torch.cat(tree),
                               num_nodes, num_edges)


_NO_POSITION = torch.iinfo(torch.long).max


@dataclass(frozen=True)
class _HopOptions:
    replace: bool
    temporal_strategy: str
    generator: Optional[torch.Generator]


def _first_positions(x: Tensor, values: Tensor) -> Tensor:
    """For each of the distinct ``values`` (all present in ``x``), the position of its first occurrence in ``x``."""
    order = torch.argsort(x, stable=True)
    sorted_x = x[order]
    return order[torch.searchsorted(sorted_x, values)]


def _lookup(sorted_keys: Tensor, keys: Tensor) -> Tensor:
    """Index of each of ``keys`` in ``sorted_keys``, ``-1`` where absent."""
    if sorted_keys.numel() == 0:
        return torch.full_like(keys, -1)
    index = torch.searchsorted(sorted_keys, keys).clamp(max=sorted_keys.numel() - 1)
    return torch.where(sorted_keys[index] == keys, index, -1)


def sample_neighbors(
    rowptr: Tensor,
    col: Tensor,
    seeds: Tensor,
    num_neighbors: Sequence[int],
    *,
    replace: bool = False,
    weight: Optional[Tensor] = None,
    time: Optional[Tensor] = None,
    seed_time: Optional[Tensor] = None,
    temporal_strategy: TemporalStrategy = "uniform",
    directed: bool = True,
    disjoint: bool = False,
    generator: Optional[torch.Generator] = None,
) -> SampledSubgraph:
    r"""Sample ``len(num_neighbors)`` hops of neighbours around ``seeds`` (see the module docstring for the rules).

    Args:
        rowptr: ``[N + 1]`` pointer of the neighbour lists (int32 or int64).
        col: ``[E]`` neighbour ids; the neighbours of ``v`` are ``col[rowptr[v]:rowptr[v + 1]]``. For PyG's message
            flow (neighbour to target) pass the CSC of ``edge_index``: ``colptr, row, perm =
            torch_geometric.sampler.utils.to_csc(data)``.
        seeds: ``[B]`` node ids to sample around (duplicates keep their positions).
        num_neighbors: fan-out per hop; ``-1`` takes every neighbour.
        replace: draw with replacement.
        weight: ``[E]`` non-negative edge weights aligned with ``col`` (weighted sampling), or ``None`` (uniform).
        time: ``[N]`` node timestamps; only neighbours with ``time[u] <= seed_time`` of their seed are drawn, and
            sampling becomes disjoint (one tree per seed, as PyG does).
        seed_time: ``[B]`` time of each seed (default ``time[seeds]``).
        temporal_strategy: ``"uniform"`` among eligible neighbours or ``"last"`` (the most recent ones).
        directed: ``False`` returns the induced subgraph: every edge of the graph among the sampled nodes.
        disjoint: one tree per seed position (``batch`` tells which); nodes repeat across trees.
        generator: the random source (default: torch's global generator, so ``seed_everything`` fixes it).

    Returns:
        :class:`SampledSubgraph`: ``node`` (global, seeds first), ``row``/``col`` local, ``edge`` (positions in
        ``col``), ``num_sampled_nodes``/``num_sampled_edges`` per hop.

    Raises:
        ValueError / TypeError: an empty or negative (< -1) fan-out list, a seed out of range, a malformed
            ``rowptr``/``col``, a weight of the wrong length or with negative values, times of the wrong shape.
    """
    graph = SamplingGraph(rowptr, col, weight=weight, time=time)
    return graph.sample(seeds, num_neighbors, replace=replace, directed=directed, disjoint=disjoint,
                        seed_time=seed_time, temporal_strategy=temporal_strategy, generator=generator)


# --------------------------------------------------------------------------- PyG adapter
def pyg_sampler_available() -> bool:
    """Whether PyG's own ``NeighborSampler`` can run here (pyg-lib or torch-sparse importable)."""
    return bool(pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE)


class GraphlabNeighborSampler(BaseSampler):
    r"""graphlab's :class:`SamplingGraph` as a PyG sampler for ``NodeLoader`` / ``LinkLoader``.

    Gives the batches of PyG's ``NeighborSampler`` (same ``SamplerOutput`` layout: ``node`` seeds first, ``row``
    neighbour, ``col`` target, ``edge`` in CSC order mapped back through :attr:`edge_permutation`) without
    pyg-lib or torch-sparse::

        loader = NodeLoader(data, node_sampler=GraphlabNeighborSampler(data, [15, 10]),
                            input_nodes=data.train_mask, batch_size=512)

    Args:
        data: a homogeneous ``Data``, or a ``(FeatureStore, GraphStore)`` pair (its CSC is read once with
            ``graph_store.csc()``).
        num_neighbors: fan-out per hop, ``-1`` for all.
        replace: sample with replacement.
        subgraph_type: ``directional`` (the sampled edges), ``bidirectional`` (plus their reverses) or
            ``induced`` (every edge among the sampled nodes).
        disjoint: one subgraph per seed (``batch`` in the output).
        temporal_strategy: ``uniform`` or ``last`` (temporal sampling).
        time_attr: name of a node-level time attribute (temporal sampling; seeds' times come from the loader's
            ``input_time``, else from this attribute).
        weight_attr: name of an edge-level weight attribute (weighted sampling; ``Data`` only).
        is_sorted: ``edge_index`` is already sorted by target (skips the sort, as in PyG).
        generator: random source (default: torch's global one).
    """

    def __init__(
        self,
        data: Any,
        num_neighbors: Sequence[int],
        replace: bool = False,
        subgraph_type: SubgraphType = "directional",
        disjoint: bool = False,
        temporal_strategy: TemporalStrategy = "uniform",
        time_attr: Optional[str] = None,
        weight_attr: Optional[str] = None,
        is_sorted: bool = False,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        self.num_neighbors = _check_num_neighbors(num_neighbors)
        if subgraph_type not in ("directional", "bidirectional", "induced"):
            raise ValueError(f"subgraph_type must be 'directional', 'bidirectional' or 'induced', got "
                             f"{subgraph_type!r}")
        self.replace, self.subgraph_type, self._disjoint = replace, subgraph_type, disjoint
        self.temporal_strategy, self.generator = temporal_strategy, generator
        rowptr, col, self.perm, weight, self.node_time = _read_csc(data, time_attr, weight_attr, is_sorted)
        self.graph = SamplingGraph(rowptr, col, weight=weight, time=self.node_time)
        self.num_nodes = self.graph.num_nodes

    def with_num_neighbors(self, num_neighbors: Sequence[int]) -> "GraphlabNeighborSampler":
        """A copy with other fan-outs that shares this sampler's graph (no second CSC conversion)."""
        other = copy.copy(self)
        other.num_neighbors = _check_num_neighbors(num_neighbors)
        other.graph = copy.copy(self.graph)  # its own relabel scratch: the two may run in different workers
        other.graph._local = None
        return other

    @property
    def is_temporal(self) -> bool:
        return self.node_time is not None

    @property
    def disjoint(self) -> bool:
        return self._disjoint or self.is_temporal

    @property
    def edge_permutation(self) -> Optional[Tensor]:
        """Maps the sampler's edge positions (CSC order) to the original edge ids (``e_id``)."""
        return self.perm

    def _sample(self, seed: Union[Tensor, dict], seed_time: Optional[Tensor] = None, **kwargs: Any) -> Any:
        if isinstance(seed, dict):
            raise ValueError("GraphlabNeighborSampler samples homogeneous graphs only; use PyG's NeighborSampler "
                             "(with pyg-lib) for HeteroData")
        out = self.graph.sample(seed, self.num_neighbors, replace=self.replace,
                                directed=self.subgraph_type != "induced", disjoint=self._disjoint,
                                seed_time=seed_time, temporal_strategy=self.temporal_strategy,
                                generator=self.generator)
        return SamplerOutput(node=out.node, row=out.row, col=out.col, edge=out.edge, batch=out.batch,
                             num_sampled_nodes=out.num_sampled_nodes, num_sampled_edges=out.num_sampled_edges)

    def sample_from_nodes(self, index: Any, **kwargs: Any) -> Any:
        out = node_sample(index, self._sample)
        return out.to_bidirectional() if self.subgraph_type == "bidirectional" else out

    def sample_from_edges(self, index: Any, neg_sampling: Any = None) -> Any:
        out = edge_sample(index, self._sample, self.num_nodes, self.disjoint, self.node_time, neg_sampling)
        return out.to_bidirectional() if self.subgraph_type == "bidirectional" else out


def _read_csc(data: Any, time_attr: Optional[str], weight_attr: Optional[str],
              is_sorted: bool) -> tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor], Optional[Tensor]]:
    """``(colptr, row, perm, weight, node_time)`` of a ``Data`` or ``(FeatureStore, GraphStore)``."""
    if isinstance(data, Data):
        if data.edge_index is None:
            raise ValueError("the Data object has no edge_index: the neighbour sampler needs the graph's edges")
        colptr, row, perm = to_csc(data, device="cpu", is_sorted=is_sorted)
        weight = None
        if weight_attr is not None:
            if weight_attr not in data or not data.is_edge_attr(weight_attr):
                raise ValueError(f"weight_attr={weight_attr!r} is not an edge attribute of the Data object")
            weight = data[weight_attr] if perm is None else data[weight_attr][perm]
        time = None
        if time_attr is not None:
            if time_attr not in data or not data.is_node_attr(time_attr):
                raise ValueError(f"time_attr={time_attr!r} must name a node-level attribute (edge-level time is "
                                 "not supported by graphlab's sampler)")
            time = data[time_attr]
        return colptr, row, perm, weight, time
    if (isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], FeatureStore)
            and isinstance(data[1], GraphStore)):
        feature_store, graph_store = data
        if weight_attr is not None:
            raise ValueError("weight_attr is not supported for (FeatureStore, GraphStore) inputs (as in PyG)")
        edge_attrs = graph_store.get_all_edge_attrs()
        if not edge_attrs or any(attr.edge_type is not None for attr in edge_attrs):
            raise ValueError("the GraphStore must hold one homogeneous edge_index (edge_type=None)")
        row, colptr, perm = graph_store.csc()
        time = None
        if time_attr is not None:
            attrs = [a for a in feature_store.get_all_tensor_attrs() if a.attr_name == time_attr]
            if len(attrs) != 1:
                raise ValueError(f"time_attr={time_attr!r}: found {len(attrs)} tensors of that name in the "
                                 "FeatureStore, need exactly one")
            attrs[0].index = None
            time = feature_store.get_tensor(attrs[0])
        return colptr, row, perm, None, time
    raise TypeError(f"GraphlabNeighborSampler takes a homogeneous torch_geometric Data or a (FeatureStore, "
                    f"GraphStore) pair, got {type(data).__name__}")


def resolve_backend(backend: Backend, needs_pyg_lib: bool = False) -> Literal["graphlab", "pyg"]:
    """The sampler a loader uses: ``"auto"`` takes PyG's when pyg-lib is importable (or torch-sparse, unless the
    options need pyg-lib: weights, time, disjoint trees), graphlab's otherwise.

    Raises:
        ImportError: ``backend="pyg"`` without pyg-lib or torch-sparse.
        ValueError: an unknown ``backend``.
    """
    if backend not in ("auto", "graphlab", "pyg"):
        raise ValueError(f"backend must be 'auto', 'graphlab' or 'pyg', got {backend!r}")
    if backend == "pyg" and not pyg_sampler_available():
        raise ImportError("backend='pyg' needs pyg-lib or torch-sparse, and neither can be imported. Install "
                          "pyg-lib from https://data.pyg.org/whl/ (no PyPI wheels) or use backend='graphlab' "
                          "(or 'auto')")
    if backend == "auto":
        usable = pyg_typing.WITH_PYG_LIB or (pyg_typing.WITH_TORCH_SPARSE and not needs_pyg_lib)
        return "pyg" if usable else "graphlab"
    return backend


def neighbor_loader(
    data: Any,
    num_neighbors: Sequence[int],
    *,
    backend: Backend = "auto",
    replace: bool = False,
    subgraph_type: SubgraphType = "directional",
    disjoint: bool = False,
    temporal_strategy: TemporalStrategy = "uniform",
    time_attr: Optional[str] = None,
    weight_attr: Optional[str] = None,
    is_sorted: bool = False,
    neighbor_sampler: Optional[BaseSampler] = None,
    **loader_kwargs: Any,
) -> NeighborLoader:
    """A PyG ``NeighborLoader`` whose sampler is PyG's (pyg-lib / torch-sparse) or graphlab's.

    Args:
        data, num_neighbors, replace, subgraph_type, disjoint, temporal_strategy, time_attr, weight_attr,
            is_sorted: as in PyG's ``NeighborLoader``.
        backend: ``"auto"`` (PyG's sampler when pyg-lib or torch-sparse is importable and supports the options,
            else graphlab's), ``"graphlab"`` or ``"pyg"`` (error when neither extra is installed).
        neighbor_sampler: a ready sampler to reuse (skips building one; ``backend`` is then ignored).
        **loader_kwargs: ``input_nodes``, ``input_time``, ``batch_size``, ``shuffle``, ``num_workers``, ... of
            ``NeighborLoader`` / ``torch.utils.data.DataLoader``.

    Raises:
        ImportError: ``backend="pyg"`` without pyg-lib or torch-sparse.
        ValueError: an unknown ``backend``.
    """
    if neighbor_sampler is None:
        needs_pyg_lib = weight_attr is not None or time_attr is not None or disjoint
        if resolve_backend(backend, needs_pyg_lib) == "graphlab":
            neighbor_sampler = GraphlabNeighborSampler(
                data, num_neighbors, replace=replace, subgraph_type=subgraph_type, disjoint=disjoint,
                temporal_strategy=temporal_strategy, time_attr=time_attr, weight_attr=weight_attr,
                is_sorted=is_sorted)
    return NeighborLoader(data, list(num_neighbors), replace=replace, subgraph_type=subgraph_type,
                          disjoint=disjoint, temporal_strategy=temporal_strategy, time_attr=time_attr,
                          weight_attr=weight_attr, is_sorted=is_sorted, neighbor_sampler=neighbor_sampler,
                          **loader_kwargs)
