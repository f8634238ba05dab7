"""ToCSR / register_csr: the stored CSR lists exactly the graph's edges, and the caches are primed with it."""

from __future__ import annotations

import torch
from torch_geometric.data import Data, HeteroData

import graphlab.ops as ops
from graphlab.transforms import ToCSR, register_csr


def random_graph(num_nodes: int, num_edges: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_nodes, (2, num_edges), generator=gen)


def csr_pairs(rowptr: torch.Tensor, col: torch.Tensor, perm: torch.Tensor) -> list[tuple[int, int, int]]:
    """(row, col, original edge id) for every CSR position, read with a plain loop."""
    return [(i, int(col[k]), int(perm[k])) for i in range(rowptr.numel() - 1) for k in range(rowptr[i], rowptr[i + 1])]


def test_to_csr_stores_every_edge_once_with_its_original_position():
    edge_index = random_graph(7, 20, seed=3)
    data = ToCSR()(Data(edge_index=edge_index, num_nodes=7))
    rows = csr_pairs(data.csr_rowptr, data.csr_col, data.csr_perm)
    # rows are targets, col the sources; perm points back to the original edge
    assert sorted((int(edge_index[1, e]), int(edge_index[0, e]), e) for e in range(20)) == sorted(rows)
    assert [r for r, _, _ in rows] == sorted(r for r, _, _ in rows)  # CSR order: grouped by target
    transposed = csr_pairs(data.csr_t_colptr, data.csr_t_row, data.csr_t_perm)
    assert sorted((s, t) for s, t, _ in transposed) == sorted((c, r) for r, c, _ in rows)


def test_to_csr_primes_the_caches():
    edge_index = random_graph(7, 20, seed=3)
    data = ToCSR()(Data(edge_index=edge_index, num_nodes=7))
    cached = ops.cached_csr(data.edge_index, 7)
    assert cached.rowptr is data.csr_rowptr and cached.col is data.csr_col
    assert ops.cached_transpose(cached.rowptr, cached.col, 7).rowptr is data.csr_t_colptr


def test_register_csr_after_moving_reuses_stored_tensors():
    data = ToCSR()(Data(edge_index=random_graph(6, 15, seed=4), num_nodes=6))
    moved = data.clone()  # like data.to(device): new tensors
    register_csr(moved)
    assert ops.cached_csr(moved.edge_index, 6).rowptr is moved.csr_rowptr


def test_hetero_edge_types_get_their_own_csr():
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes = 3, 5
    edge_index = torch.tensor([[0, 2, 1, 0], [4, 0, 4, 1]])  # user -> item
    data["user", "rates", "item"].edge_index = edge_index
    store = ToCSR()(data)["user", "rates", "item"]
    assert store.csr_rowptr.numel() == 5 + 1  # rows are the 5 items (targets)
    assert sorted((r, c) for r, c, _ in csr_pairs(store.csr_rowptr, store.csr_col, store.csr_perm)) == \
        sorted(zip(edge_index[1].tolist(), edge_index[0].tolist()))
