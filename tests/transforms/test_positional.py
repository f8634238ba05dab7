"""Positional-encoding transforms against dense computations written from their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from graphlab.transforms import AddLaplacianPE, AddRandomWalkPE


def random_graph(num_nodes: int = 12, num_edges: int = 30, seed: int = 0) -> Data:
    gen = torch.Generator().manual_seed(seed)
    edge_index = to_undirected(torch.randint(0, num_nodes - 1, (2, num_edges), generator=gen), num_nodes=num_nodes)
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    return Data(edge_index=edge_index, num_nodes=num_nodes)  # node num_nodes - 1 is isolated


def dense_adjacency(data: Data) -> np.ndarray:
    n = int(data.num_nodes)
    adj = np.zeros((n, n))
    for u, v in data.edge_index.t().tolist():
        adj[u, v] = 1.0
    return adj


def test_random_walk_pe_is_return_probability_of_matrix_powers():
    data = random_graph()
    adj = dense_adjacency(data)
    transition = adj / np.maximum(adj.sum(1, keepdims=True), 1)
    expected = np.stack([np.diag(np.linalg.matrix_power(transition, k)) for k in range(1, 6)], axis=1)
    pe = AddRandomWalkPE(5, attr_name="pe")(data).pe
    np.testing.assert_allclose(pe.numpy(), expected, atol=1e-6)


def test_laplacian_pe_solves_the_eigenproblem_with_fixed_signs():
    data = random_graph(seed=1)
    adj = dense_adjacency(data)
    deg = adj.sum(1)
    inv_sqrt = np.where(deg > 0, 1 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    laplacian = np.eye(len(adj)) - inv_sqrt[:, None] * adj * inv_sqrt[None, :]
    evals = np.linalg.eigvalsh(laplacian)
    pe = AddLaplacianPE(4)(data).laplacian_pe.double().numpy()
    assert pe.shape == (12, 4)
    np.testing.assert_allclose(pe.T @ pe, np.eye(4), atol=1e-5)
    # L v = lambda v for eigenvalues 2..5, compared column by column (repeated eigenvalues: residual only)
    np.testing.assert_allclose(laplacian @ pe, pe * evals[1:5], atol=1e-5)
    peaks = np.abs(pe).argmax(0)
    assert (pe[peaks, np.arange(4)] > 0).all()


def test_laplacian_pe_matches_pyg_up_to_sign():
    from torch_geometric.transforms import AddLaplacianEigenvectorPE

    data = random_graph(seed=2)
    ours = AddLaplacianPE(3)(data.clone()).laplacian_pe
    theirs = AddLaplacianEigenvectorPE(3, attr_name="pe", is_undirected=True)(data.clone()).pe
    # PyG flips every column at random; distinct eigenvalues (checked) make the columns unique up to sign
    for j in range(3):
        assert min((ours[:, j] - theirs[:, j]).abs().max(), (ours[:, j] + theirs[:, j]).abs().max()) < 1e-4


def test_laplacian_pe_concatenates_to_x_and_checks_k():
    data = random_graph()
    data.x = torch.ones(12, 2)
    out = AddLaplacianPE(3, attr_name=None)(data)
    assert out.x.shape == (12, 5) and bool((out.x[:, :2] == 1).all())
    with pytest.raises(ValueError, match="need 1 <= k < num_nodes"):
        AddLaplacianPE(12)(random_graph())
    with pytest.raises(ValueError, match="k must be a positive"):
        AddLaplacianPE(0)
