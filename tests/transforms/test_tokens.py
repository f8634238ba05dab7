"""Graph-Mamba's degree sequences and GMN's random-walk neighbourhood tokens."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.utils import erdos_renyi_graph

from graphlab.transforms import (
    NeighbourhoodTokens,
    degree_sequences,
    neighbourhood_tokens,
    out_degree,
    random_walks,
    token_subgraphs,
)
from graphlab.ops import to_csr


def _batch_graph(sizes=(7, 1, 12, 5), p=0.3, seed=0):
    torch.manual_seed(seed)
    edges, batch, offset = [], [], 0
    for g, n in enumerate(sizes):
        edges.append(erdos_renyi_graph(n, p) + offset)
        batch += [g] * n
        offset += n
    return torch.cat(edges, 1), torch.tensor(batch), offset


def test_out_degree_counts_sources():
    ei = torch.tensor([[0, 0, 2], [1, 2, 0]])
    assert out_degree(ei, 4).tolist() == [2.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("num_buckets", [1, 3])
def test_degree_sequences_permute_within_each_graph_and_sort_by_degree(num_buckets):
    ei, batch, n = _batch_graph()
    deg = out_degree(ei, n)
    seq = degree_sequences(deg, batch, num_buckets=num_buckets, generator=torch.Generator().manual_seed(1))
    assert sorted(seq.perm.tolist()) == list(range(n))  # a permutation
    assert (seq.sequence[1:] >= seq.sequence[:-1]).all()
    assert torch.equal(batch[seq.perm], seq.sequence // num_buckets)  # each sequence inside one graph
    assert seq.num_sequences == 4 * num_buckets
    same = seq.sequence[1:] == seq.sequence[:-1]
    d = deg[seq.perm]
    assert (d[1:][same] >= d[:-1][same]).all()  # ascending degree within a sequence


def test_random_tie_break_varies_only_among_equal_degrees():
    deg = torch.tensor([2.0, 1.0, 2.0, 2.0, 0.0])
    orders = {tuple(degree_sequences(deg, generator=torch.Generator().manual_seed(s)).perm.tolist())
              for s in range(40)}
    assert len(orders) > 1
    for order in orders:
        assert order[:2] == (4, 1) and set(order[2:]) == {0, 2, 3}


def test_index_tie_break_is_deterministic_and_stable():
    deg = torch.tensor([2.0, 1.0, 2.0, 2.0, 0.0])
    assert degree_sequences(deg, tie_break="index").perm.tolist() == [4, 1, 0, 2, 3]


def test_degree_sequences_bad_input():
    with pytest.raises(ValueError, match="batch must be sorted"):
        degree_sequences(torch.ones(3), torch.tensor([1, 0, 1]))
    with pytest.raises(ValueError, match="num_buckets must be >= 1"):
        degree_sequences(torch.ones(3), num_buckets=0)
    with pytest.raises(ValueError, match="tie_break must be"):
        degree_sequences(torch.ones(3), tie_break="hash")


def test_random_walks_follow_edges_and_stay_on_sinks():
    ei = torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 3, 1]])  # node 4 has no out-edge
    rowptr, col, _ = to_csr(ei.flip(0), 5)
    walks = random_walks(rowptr, col, torch.arange(5).repeat(50), 6, torch.Generator().manual_seed(0))
    edges = set(map(tuple, ei.t().tolist()))
    steps = torch.stack([walks[:, :-1], walks[:, 1:]], -1).view(-1, 2).tolist()
    assert all(tuple(s) in edges or s[0] == s[1] == 4 for s in steps)
    assert (walks[walks[:, 0] == 4] == 4).all()


def test_tokens_order_own_token_last_and_follow_edges():
    ei, batch, n = _batch_graph()
    m, M, s = 3, 4, 2
    tok = neighbourhood_tokens(ei, n, m, M, s, torch.Generator().manual_seed(3))
    k_tokens = (m + 1) * s
    assert tok.num_tokens == k_tokens and tok.hops.tolist() == [3, 3, 2, 2, 1, 1, 0, 0]
    assert tok.rowptr.numel() == n * k_tokens + 1
    # shortest-path distances from every node (BFS by dense matrix powers)
    adj = torch.zeros(n, n, dtype=torch.bool)
    adj[ei[0], ei[1]] = True
    reach = [torch.eye(n, dtype=torch.bool)]
    for _ in range(m):
        reach.append(reach[-1] | ((reach[-1].float() @ adj.float()) > 0))
    for v in range(n):
        for k in range(k_tokens):
            nodes = tok.col[tok.rowptr[v * k_tokens + k]:tok.rowptr[v * k_tokens + k + 1]]
            hop = int(tok.hops[k])
            assert int(v) in nodes.tolist()  # every walk starts at v
            assert len(set(nodes.tolist())) == nodes.numel() == len(nodes.unique())  # a set
            assert reach[hop][v, nodes].all()  # only nodes reachable in hop steps along edges
            assert (batch[nodes] == batch[v]).all()  # never leaves the graph
            if hop == 0:
                assert nodes.tolist() == [v]  # the node's own token, at the end of its sequence
    assert set(range(k_tokens - s, k_tokens)) == {k for k in range(k_tokens) if tok.hops[k] == 0}


def test_tokens_deterministic_given_generator_and_bad_input():
    ei, _, n = _batch_graph()
    a = neighbourhood_tokens(ei, n, 2, 3, 1, torch.Generator().manual_seed(5))
    b = neighbourhood_tokens(ei, n, 2, 3, 1, torch.Generator().manual_seed(5))
    assert torch.equal(a.col, b.col) and torch.equal(a.rowptr, b.rowptr)
    with pytest.raises(ValueError, match="num_walks must be an int >= 1"):
        neighbourhood_tokens(ei, n, 2, 0)
    with pytest.raises(ValueError, match="walk_length must be an int >= 0"):
        neighbourhood_tokens(ei, n, -1, 2)


def _induced_reference(tokens, edge_index):
    """(a, b, edge id) for every edge of every token's induced subgraph, by a loop over tokens, members and edges."""
    triples = set()
    src, dst = edge_index.tolist()
    for row in range(tokens.rowptr.numel() - 1):
        lo, hi = int(tokens.rowptr[row]), int(tokens.rowptr[row + 1])
        for a in range(lo, hi):
            for b in range(lo, hi):
                for e, (u, v) in enumerate(zip(src, dst)):
                    if u == int(tokens.col[a]) and v == int(tokens.col[b]):
                        triples.add((a, b, e))
    return triples


@pytest.mark.parametrize("seed", [0, 1])
def test_token_subgraphs_match_a_loop_reference(seed):
    """Directed edges, parallel edges and self-loops are all kept exactly once per occurrence."""
    g = torch.Generator().manual_seed(seed)
    n = 9
    ei = torch.randint(0, n, (2, 30), generator=g)
    ei = torch.cat([ei, ei[:, :4], torch.tensor([[2, 5], [2, 5]])], 1)  # parallel edges and self-loops
    tokens = neighbourhood_tokens(ei, n, 3, 3, 2, g)
    sub = token_subgraphs(tokens, ei, n)
    ours = set(zip(sub.edge_index[0].tolist(), sub.edge_index[1].tolist(), sub.edge_id.tolist()))
    assert len(ours) == sub.edge_id.numel()  # no duplicates
    assert ours == _induced_reference(tokens, ei)
    assert bool((sub.edge_index[0][1:] >= sub.edge_index[0][:-1]).all())  # sorted by source membership


def test_token_subgraphs_of_hand_made_tokens_and_errors():
    ei = torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]])  # a triangle
    tokens = NeighbourhoodTokens(torch.tensor([0, 3, 5, 6]), torch.tensor([0, 1, 2, 0, 2, 1]), torch.tensor([1]), 1)
    sub = token_subgraphs(tokens, ei, 3)
    pairs = sorted(zip(sub.edge_index[0].tolist(), sub.edge_index[1].tolist()))
    assert pairs == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (3, 4), (4, 3)]  # row 3-4 = nodes {0, 2}
    empty = token_subgraphs(tokens, torch.empty(2, 0, dtype=torch.long), 3)
    assert empty.edge_index.shape == (2, 0) and empty.edge_id.numel() == 0
    with pytest.raises(ValueError, match="sampled on another graph"):
        token_subgraphs(tokens, ei, 2)
    with pytest.raises(ValueError, match="edge_index must be"):
        token_subgraphs(tokens, ei[0], 3)


def test_token_subgraphs_reject_out_of_range_edges():
    """An edge (0, 9) on 5 nodes has key 0 * 5 + 9 = 1 * 5 + 4: unchecked, it became an edge 1 -> 4 of the token."""
    tokens = NeighbourhoodTokens(torch.tensor([0, 5]), torch.tensor([0, 1, 2, 3, 4]), torch.tensor([1]), 1)
    with pytest.raises(ValueError, match=r"edge_index\[1\] \(targets\) has max 9"):
        token_subgraphs(tokens, torch.tensor([[0], [9]]), 5)
    with pytest.raises(ValueError, match=r"edge_index\[0\] \(sources\) has a negative entry"):
        token_subgraphs(tokens, torch.tensor([[-1], [2]]), 5)
