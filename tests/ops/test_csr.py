"""to_csr / csr_transpose / the identity caches (the ToCSR transform: tests/transforms/test_csr_transform.py)."""

from __future__ import annotations

import gc

import pytest
import torch

import graphlab.ops as ops
from graphlab.ops import csr as csr_module


def edges_of(rowptr: torch.Tensor, col: torch.Tensor) -> list[tuple[int, int]]:
    """Sorted (source, target) pairs listed by a CSR whose rows are targets."""
    pairs = []
    for i in range(rowptr.numel() - 1):
        pairs += [(int(c), i) for c in col[rowptr[i]:rowptr[i + 1]]]
    return sorted(pairs)


@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_to_csr_lists_every_edge_under_its_target(make_graph, index_dtype):
    edge_index = make_graph(9, 30, seed=1, index_dtype=index_dtype)
    rowptr, col, perm = ops.to_csr(edge_index, 9)
    assert rowptr.dtype == col.dtype == index_dtype and perm.dtype == torch.int64
    assert rowptr.shape == (10,) and int(rowptr[-1]) == 30
    assert edges_of(rowptr, col) == sorted(map(tuple, edge_index.t().tolist()))
    assert torch.equal(col, edge_index[0][perm]) and torch.equal(edge_index[1][perm].diff() >= 0, torch.ones(29, dtype=torch.bool))
    assert int(rowptr[8] - rowptr[7]) == 0 and int(rowptr[9] - rowptr[8]) == 0  # node 7 only sends, 8 isolated


def test_to_csr_hand_example_and_weights():
    edge_index = torch.tensor([[2, 0, 1, 0], [1, 1, 0, 2]])  # 2->1, 0->1, 1->0, 0->2
    weight = torch.tensor([10.0, 20.0, 30.0, 40.0])
    out = ops.to_csr(edge_index, 3, weight)
    assert out.rowptr.tolist() == [0, 1, 3, 4]
    assert out.col.tolist() == [1, 0, 2, 0]  # row 1 lists sources in increasing order
    assert out.perm.tolist() == [2, 1, 0, 3]
    assert out.weight.tolist() == [30.0, 20.0, 10.0, 40.0]


def test_to_csr_bipartite_sizes():
    edge_index = torch.tensor([[0, 4, 4], [1, 0, 1]])
    rowptr, col, _ = ops.to_csr(edge_index, (5, 2))
    assert rowptr.tolist() == [0, 1, 3] and col.tolist() == [4, 0, 4]
    with pytest.raises(ValueError, match="targets"):
        ops.to_csr(edge_index, (5, 1))


@pytest.mark.parametrize(
    "edge_index, num_nodes, match",
    [
        (torch.tensor([[0, 1], [1, 3]]), 3, r"edge_index\[1\] \(targets\) has max 3 but the graph has 3"),
        (torch.tensor([[0, -1], [1, 2]]), 3, "negative"),
        (torch.tensor([[0.0, 1.0], [1.0, 2.0]]), 3, "dtype torch.float32"),
        (torch.tensor([[0, 1, 2]]), 3, r"shape \[2, E\]"),
        (torch.tensor([0, 1]), 3, "2-dimensional"),
        (torch.tensor([[0], [1]]), "three", "num_nodes"),
    ],
)
def test_to_csr_rejects_bad_input(edge_index, num_nodes, match):
    with pytest.raises(ValueError, match=match):
        ops.to_csr(edge_index, num_nodes)


def test_to_csr_rejects_bad_weights():
    edge_index = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="one weight per edge"):
        ops.to_csr(edge_index, 2, torch.ones(3))
    with pytest.raises(ValueError, match="floating point"):
        ops.to_csr(edge_index, 2, torch.ones(2, dtype=torch.long))


def test_transpose_lists_every_edge_under_its_source(make_graph):
    edge_index = make_graph(8, 25, seed=2)
    rowptr, col, _ = ops.to_csr(edge_index, 8)
    colptr, row, perm_t = ops.csr_transpose(rowptr, col, 8)
    swapped = sorted((t, s) for s, t in edges_of(colptr, row))
    assert swapped == edges_of(rowptr, col)
    assert torch.equal(col[perm_t], torch.repeat_interleave(torch.arange(8), colptr.diff()))
    back = ops.csr_transpose(colptr, row, 8)
    assert torch.equal(back.rowptr, rowptr) and torch.equal(back.col, col)


def test_cached_csr_builds_once_per_tensor_and_notices_in_place_edits(monkeypatch):
    calls = []
    real = csr_module.to_csr
    monkeypatch.setattr(csr_module, "to_csr", lambda *a, **k: calls.append(1) or real(*a, **k))
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
    first = ops.cached_csr(edge_index, 3)
    assert ops.cached_csr(edge_index, 3) is first and len(calls) == 1
    assert ops.cached_csr(edge_index.clone(), 3) is not first and len(calls) == 2  # another tensor
    ops.cached_csr(edge_index, (3, 4))
    assert len(calls) == 3  # another size
    edge_index[0, 0] = 2
    rebuilt = ops.cached_csr(edge_index, 3)
    assert rebuilt is not first and edges_of(rebuilt.rowptr, rebuilt.col) == [(1, 2), (2, 0), (2, 1)]


def test_cache_entry_dies_with_its_tensor():
    cache = csr_module.IdentityCache()
    key = torch.arange(4)
    cache.put([key], "k", "value")
    assert cache.get([key], "k") == "value" and len(cache) == 1
    del key
    gc.collect()
    assert len(cache) == 0


def test_cache_is_bounded():
    cache = csr_module.IdentityCache(max_entries=3)
    keys = [torch.arange(i + 1) for i in range(5)]
    for i, key in enumerate(keys):
        cache.put([key], None, i)
    assert len(cache) == 3 and cache.get([keys[0]]) is None and cache.get([keys[4]]) == 4
