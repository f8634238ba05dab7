"""The neighbour sampler written node by node: the specification :mod:`graphlab.data.sampler` is tested and
benchmarked against.

One Python iteration per frontier node, ``torch.randperm`` (uniform without replacement), ``torch.randint`` (with
replacement) or ``torch.multinomial`` (weighted) for its draws, and a dict as the global-to-local map. It never calls
the vectorised sampler. The output follows the same layout (:class:`~graphlab.data.sampler.SampledSubgraph`): seeds
first, then each hop's new nodes in order of first appearance; edges grouped by target in frontier order.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from graphlab.data.sampler import SampledSubgraph


def reference_sample_neighbors(rowptr: Tensor, col: Tensor, seeds: Tensor, num_neighbors: Sequence[int],
                               replace: bool = False, weight: Optional[Tensor] = None,
                               generator: Optional[torch.Generator] = None) -> SampledSubgraph:
    """Shared (non-disjoint), directed sampling around ``seeds``; same arguments as
    :func:`graphlab.data.sampler.sample_neighbors` (no time, no induced subgraph)."""
    ptr = rowptr.tolist()
    node = [int(s) for s in seeds]
    local: dict[int, int] = {}
    for i, s in enumerate(node):
        local.setdefault(s, i)
    frontier = list(range(len(node)))
    rows: list[int] = []
    cols: list[int] = []
    edges: list[int] = []
    num_nodes, num_edges = [len(node)], []
    for k in num_neighbors:
        new_frontier, before = [], len(edges)
        for target in frontier:
            v = node[target]
            for p in _draw(list(range(ptr[v], ptr[v + 1])), k, replace, weight, generator):
                u = int(col[p])
                if u not in local:
                    local[u] = len(node)
                    node.append(u)
                    new_frontier.append(local[u])
                rows.append(local[u])
                cols.append(target)
                edges.append(p)
        num_nodes.append(len(new_frontier))
        num_edges.append(len(edges) - before)
        frontier = new_frontier
    as_long = lambda values: torch.tensor(values, dtype=torch.long)  # noqa: E731
    return SampledSubgraph(as_long(node), as_long(rows), as_long(cols), as_long(edges), None, num_nodes, num_edges)


def _draw(positions: list[int], k: int, replace: bool, weight: Optional[Tensor],
          generator: Optional[torch.Generator]) -> list[int]:
    """The edge positions one node samples among its ``positions``."""
    if k == -1 or not positions:
        return positions if weight is None else [p for p in positions if float(weight[p]) > 0]
    if weight is None:
        if replace:
            return [positions[i] for i in torch.randint(len(positions), (k,), generator=generator).tolist()]
        if len(positions) <= k:
            return positions
        return [positions[i] for i in torch.randperm(len(positions), generator=generator)[:k].tolist()]
    w = weight[positions].to(torch.float64)
    positive = int((w > 0).sum())
    if positive == 0:
        return []
    n = k if replace else min(k, positive)
    return [positions[i] for i in torch.multinomial(w, n, replacement=replace, generator=generator).tolist()]
