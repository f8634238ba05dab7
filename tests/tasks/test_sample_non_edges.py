"""sample_non_edges: uniform over the ordered non-edge pairs u != v of a graph (PyG negative_sampling's law)."""

from __future__ import annotations

import pytest
import torch

from graphlab.tasks.link import sample_non_edges


def test_never_an_edge_or_a_self_loop_and_uniform():
    torch.manual_seed(0)
    n = 6
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 3, 0], [1, 0, 2, 1, 4, 4, 5]])  # a duplicate, one direction only
    edges = set(map(tuple, edge_index.t().tolist()))
    allowed = [(u, v) for u in range(n) for v in range(n) if u != v and (u, v) not in edges]
    out = sample_non_edges(edge_index, n, 60_000)
    assert out.shape == (2, 60_000)
    counts = {p: 0 for p in allowed}
    for u, v in out.t().tolist():
        assert (u, v) in counts, (u, v)
        counts[(u, v)] += 1
    expected = 60_000 / len(allowed)
    assert min(counts.values()) > 0.85 * expected and max(counts.values()) < 1.15 * expected


def test_complete_graph_and_empty_graph():
    full = torch.tensor([(u, v) for u in range(3) for v in range(3) if u != v]).t()
    with pytest.raises(ValueError, match="every pair as an edge"):
        sample_non_edges(full, 3, 1)
    assert sample_non_edges(full, 3, 0).shape == (2, 0)
    out = sample_non_edges(torch.zeros(2, 0, dtype=torch.long), 4, 10)
    assert out.shape == (2, 10) and bool((out[0] != out[1]).all())
