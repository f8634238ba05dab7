r"""Sequences for Mamba on graphs: degree-ordered node sequences (Graph-Mamba) and random-walk neighbourhood
tokens (GMN). Everything is vectorised over all nodes and graphs of a batch at once (no Python loop over nodes or
graphs; the only loops run over walk steps).

**Node sequences** (Wang et al. 2024, "Graph-Mamba", ``gps_layer.py`` of bowang-lab/Graph-Mamba): the nodes of each
graph become one sequence, sorted by ascending degree with a random tie-break,

.. math:: \pi = \mathrm{lexsort}\big(\mathrm{graph}(v),\ \deg(v) + \varepsilon_v\big), \qquad
          \varepsilon_v \sim U(0, 1),

so the highest-degree nodes come last and see the most context. With ``num_buckets > 1`` every node is first put in
one of ``num_buckets`` sequences of its graph uniformly at random (the official ``..._Bucket`` variants, for large
graphs); each bucket is then degree-sorted.

**Neighbourhood tokens** (Behrouz & Hashemi 2024, "Graph Mamba: Towards Learning on Graphs with State Space
Models", KDD): for node :math:`v`, walk length :math:`\hat m = 0..m` and repeat :math:`r = 1..s`, sample :math:`M`
random walks of length :math:`\hat m` from :math:`v`; the token :math:`T_{\hat m, r}(v)` is the set of visited
nodes (the node set of the induced subgraph). The :math:`K = (m+1)s` tokens of :math:`v` are ordered by
*decreasing* :math:`\hat m`, so position :math:`k` has :math:`\hat m_k = m - \lfloor k / s \rfloor` and the last
:math:`s` tokens are :math:`\{v\}` itself: the scan reads the widest neighbourhoods first and the node last.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor

from graphlab.ops import to_csr
from graphlab.ops.csr import check_edge_index

__all__ = ["NeighbourhoodTokens", "NodeSequences", "TokenSubgraphs", "degree_sequences", "neighbourhood_tokens",
           "out_degree", "random_walks", "token_subgraphs"]


class NodeSequences(NamedTuple):
    """Nodes laid out as sequences: position ``i`` holds node ``perm[i]`` of sequence ``sequence[i]``.

    ``sequence`` is non-decreasing (a valid ``batch`` vector for ``to_dense_batch``); sequence ``g * num_buckets +
    b`` is bucket ``b`` of graph ``g``, and some may be empty.
    """

    perm: Tensor
    sequence: Tensor
    num_sequences: int


class NeighbourhoodTokens(NamedTuple):
    """The :math:`K` tokens of every node as a CSR: token ``k`` of node ``v`` is row ``v * K + k``, its distinct
    nodes ``col[rowptr[row]:rowptr[row + 1]]`` (sorted). ``hops[k]`` is the walk length :math:`\\hat m_k`."""

    rowptr: Tensor
    col: Tensor
    hops: Tensor
    num_tokens: int


class TokenSubgraphs(NamedTuple):
    """The induced subgraphs of all tokens as one disjoint union. Its nodes are the token memberships: node ``i``
    is ``tokens.col[i]`` inside the token whose CSR row holds position ``i``. ``edge_index`` ``[2, P]`` links
    memberships ``(a, b)`` of the same token whose graph nodes are joined by edge ``edge_id[p]`` of the original
    ``edge_index`` (``edge_index[:, edge_id[p]] == (tokens.col[a], tokens.col[b])``)."""

    edge_index: Tensor
    edge_id: Tensor


def out_degree(edge_index: Tensor, num_nodes: int) -> Tensor:
    """``[N]`` float out-degree ``|{(v, u) in E}|``, the key Graph-Mamba sorts by (``degree(edge_index[0])``)."""
    return torch.bincount(edge_index[0], minlength=num_nodes).to(torch.float)


def _check_batch(batch: Optional[Tensor], num_nodes: int, device: torch.device) -> Tensor:
    if batch is None:
        return torch.zeros(num_nodes, dtype=torch.long, device=device)
    if batch.dim() != 1 or batch.numel() != num_nodes:
        raise ValueError(f"batch must be [num_nodes] = [{num_nodes}], got shape {tuple(batch.shape)}")
    if num_nodes and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("batch must be sorted (PyG's Batch layout: the nodes of each graph consecutive)")
    return batch


def degree_sequences(
    degree: Tensor,
    batch: Optional[Tensor] = None,
    *,
    num_buckets: int = 1,
    tie_break: str = "random",
    generator: Optional[torch.Generator] = None,
) -> NodeSequences:
    r"""Sort the nodes of each graph (or of each random bucket of it) by ascending ``degree``.

    Args:
        degree: ``[N]`` sort key (e.g. :func:`out_degree`); any real key works (eigenvector centrality...).
        batch: ``[N]`` sorted graph index (``None``: one graph).
        num_buckets: sequences per graph; nodes are assigned to them uniformly at random.
        tie_break: ``"random"`` (add :math:`U(0,1)` noise, Graph-Mamba's training ordering; meaningful for integer
            degrees) or ``"index"`` (ties keep node order: deterministic, and equivariant when no two nodes of a
            sequence share a key).
        generator: random source (``None``: torch's global one).

    Returns:
        :class:`NodeSequences`; ``perm`` is a permutation of ``0..N-1`` that keeps each graph's nodes together.
    """
    if degree.dim() != 1:
        raise ValueError(f"degree must be [num_nodes], got shape {tuple(degree.shape)}")
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be >= 1, got {num_buckets}")
    if tie_break not in ("random", "index"):
        raise ValueError(f"tie_break must be 'random' or 'index', got {tie_break!r}")
    n, device = degree.numel(), degree.device
    batch = _check_batch(batch, n, device)
    num_graphs = int(batch[-1]) + 1 if n else 0
    key = degree.to(torch.float64)
    if tie_break == "random":
        key = key + torch.rand(n, generator=generator, dtype=torch.float64, device=device)
    sequence = batch
    if num_buckets > 1:
        bucket = torch.randint(num_buckets, (n,), generator=generator, device=device)
        sequence = batch * num_buckets + bucket
    order = torch.sort(key, stable=True).indices  # lexsort: by key, then (stable) by sequence
    order = order[torch.sort(sequence[order], stable=True).indices]
    return NodeSequences(order, sequence[order], num_graphs * num_buckets)


def random_walks(rowptr: Tensor, col: Tensor, start: Tensor, length: int,
                 generator: Optional[torch.Generator] = None) -> Tensor:
    """``[W, length + 1]`` uniform random walks over a CSR (row = current node, ``col`` = its successors), all
    walks at once; a node without successors stays where it is.

    Each step draws :math:`U \\sim U(0,1)` and moves to successor :math:`\\lfloor U \\deg \\rfloor` of the current
    node."""
    walk = [start]
    deg = rowptr[1:] - rowptr[:-1]
    for _ in range(length):
        cur = walk[-1]
        if col.numel() == 0:
            walk.append(cur)
            continue
        d = deg[cur]
        offset = (torch.rand(cur.numel(), generator=generator, device=cur.device) * d).long()
        offset = torch.minimum(offset, (d - 1).clamp(min=0))  # float rounding may give U * d == d
        nxt = col[(rowptr[cur] + offset).clamp(max=col.numel() - 1)]  # the clamp only touches d == 0 rows
        walk.append(torch.where(d > 0, nxt, cur))
    return torch.stack(walk, dim=1)


def neighbourhood_tokens(
    edge_index: Tensor,
    num_nodes: int,
    walk_length: int,
    num_walks: int,
    repeats: int = 1,
    generator: Optional[torch.Generator] = None,
) -> NeighbourhoodTokens:
    r"""GMN's random-walk neighbourhood tokens of every node, ordered by decreasing walk length (module docstring).

    All :math:`N K M` walks are drawn at once (each of length :math:`m`; token :math:`k` keeps the first
    :math:`\hat m_k + 1` nodes of its own :math:`M` walks, so tokens of different lengths are independent samples);
    each token's visited nodes are deduplicated by one sort.

    Args:
        edge_index: ``[2, E]``; walks follow edges from ``edge_index[0]`` to ``edge_index[1]``.
        num_nodes: :math:`N`.
        walk_length: :math:`m \ge 0` (``0``: every token is the node itself).
        num_walks: :math:`M \ge 1` walks per token.
        repeats: :math:`s \ge 1` tokens per walk length.
        generator: random source (``None``: torch's global one).

    Returns:
        :class:`NeighbourhoodTokens` with :math:`K = (m+1)s` tokens per node.
    """
    for name, value, low in (("walk_length", walk_length, 0), ("num_walks", num_walks, 1), ("repeats", repeats, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    device = edge_index.device
    rowptr, col, _ = to_csr(edge_index.flip(0), num_nodes)  # rows = walk sources, col = successors
    k_tokens = (walk_length + 1) * repeats
    hops = walk_length - torch.arange(k_tokens, device=device) // repeats  # decreasing; the last s are 0
    start = torch.arange(num_nodes, device=device).repeat_interleave(k_tokens * num_walks)
    walks = random_walks(rowptr, col, start, walk_length, generator)
    walks = walks.view(num_nodes, k_tokens, num_walks, walk_length + 1)
    step = torch.arange(walk_length + 1, device=device)
    used = (step[None, :] <= hops[:, None])[None, :, None, :]  # [1, K, 1, m+1]
    visited = torch.where(used, walks, torch.full_like(walks, num_nodes)).reshape(num_nodes, k_tokens, -1)
    visited = visited.sort(dim=-1).values
    first = torch.ones_like(visited, dtype=torch.bool)
    first[..., 1:] = visited[..., 1:] != visited[..., :-1]
    keep = first & (visited < num_nodes)  # distinct, real nodes
    counts = keep.sum(-1).view(-1)
    token_rowptr = torch.zeros(counts.numel() + 1, dtype=torch.long, device=device)
    torch.cumsum(counts, 0, out=token_rowptr[1:])
    return NeighbourhoodTokens(token_rowptr, visited[keep], hops, k_tokens)


def token_subgraphs(tokens: NeighbourhoodTokens, edge_index: Tensor, num_nodes: int) -> TokenSubgraphs:
    r"""The induced subgraph :math:`G[T]` of every token :math:`T`, batched as one graph over token memberships.

    GMN encodes each token by a local MPNN on its induced subgraph (Behrouz & Hashemi 2024, Sec. 4.1). All
    :math:`\sum_T |T|^2` ordered member pairs of all tokens are formed at once and looked up among the graph's
    edges by one binary search over sorted edge keys; every parallel edge and self-loop of :math:`G` between two
    members is kept. Cost :math:`O(\sum_T |T|^2 \log E)` time and memory, with :math:`|T| \le M \hat m + 1`.

    Args:
        tokens: from :func:`neighbourhood_tokens` (members of a token are distinct).
        edge_index: ``[2, E]`` the graph the tokens were sampled on.
        num_nodes: :math:`N`.

    Returns:
        :class:`TokenSubgraphs`; its edges are sorted by source membership.
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must be [2, E], got shape {tuple(edge_index.shape)}")
    device, col = tokens.col.device, tokens.col
    if col.numel() and int(col.max()) >= num_nodes:
        raise ValueError(f"tokens hold node {int(col.max())} but the graph has {num_nodes} nodes: the tokens were "
                         "sampled on another graph")
    check_edge_index(edge_index, num_nodes)  # an id >= N would alias another pair's key src * N + dst
    sizes = tokens.rowptr[1:] - tokens.rowptr[:-1]
    member_token = torch.repeat_interleave(torch.arange(sizes.numel(), device=device), sizes)
    partners = sizes[member_token]  # each member pairs with every member of its token (itself included)
    a = torch.repeat_interleave(torch.arange(col.numel(), device=device), partners)
    first = torch.zeros_like(partners)
    if partners.numel() > 1:
        torch.cumsum(partners[:-1], 0, out=first[1:])
    b = tokens.rowptr[member_token[a]] + torch.arange(a.numel(), device=device) - first[a]
    key = edge_index[0].to(torch.long) * num_nodes + edge_index[1].to(torch.long)
    sorted_key, order = torch.sort(key, stable=True)
    query = col[a] * num_nodes + col[b]
    lo = torch.searchsorted(sorted_key, query, right=False)
    hi = torch.searchsorted(sorted_key, query, right=True)
    hits = hi - lo  # parallel edges give several hits
    pair = torch.repeat_interleave(torch.arange(query.numel(), device=device), hits)
    start = torch.zeros_like(hits)
    if hits.numel() > 1:
        torch.cumsum(hits[:-1], 0, out=start[1:])
    rank = lo[pair] + torch.arange(pair.numel(), device=device) - start[pair]
    return TokenSubgraphs(torch.stack([a[pair], b[pair]]), order[rank])
