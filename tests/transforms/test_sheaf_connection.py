"""SheafConnection: the stored transports are the orthogonal Procrustes solutions of local-PCA tangent bases."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from graphlab.models import ConnectionNSD
from graphlab.transforms import SheafConnection


def point_cloud_graph(num_nodes: int = 20, dim: int = 5, seed: int = 0) -> Data:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, dim, generator=gen, dtype=torch.float64)
    edge_index = to_undirected(torch.randint(0, num_nodes, (2, 50), generator=gen), num_nodes=num_nodes)
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    return Data(x=x, edge_index=edge_index, num_nodes=num_nodes)


def loop_bases(x: torch.Tensor, edge_index: torch.Tensor, d: int, k: int) -> torch.Tensor:
    """Local PCA written out per node: the k nearest of u and its neighbours (topped up by the nearest others)."""
    n = x.size(0)
    bases = []
    for u in range(n):
        nbrs = set(edge_index[1, edge_index[0] == u].tolist()) | {u}
        dist = ((x - x[u]) ** 2).sum(1)
        order = sorted(range(n), key=lambda v: (v not in nbrs, float(dist[v])))
        diffs = x[order[:k]] - x[u]
        bases.append(torch.linalg.svd(diffs, full_matrices=False).Vh[:d].t())
    return torch.stack(bases)


def test_transports_are_procrustes_of_local_pca_bases():
    data = point_cloud_graph()
    d, k = 2, 5
    out = SheafConnection(d=d, num_neighbours=k)(data.clone())
    ei, transports = out.sheaf_edge_index, out.sheaf_transports
    assert transports.shape == (ei.size(1), d, d)
    bases = loop_bases(data.x, ei, d, k)
    for e in range(ei.size(1)):
        u, v = ei[:, e].tolist()
        # argmin_{O in O(d)} ||O_u^T O_v - O||_F: the orthogonal matrix closest to O_u^T O_v
        product = bases[u].t() @ bases[v]
        ours = transports[e]
        torch.testing.assert_close(ours.t() @ ours, torch.eye(d, dtype=ours.dtype), atol=1e-8, rtol=0)
        # any orthogonal O gives <O, product> <= nuclear norm, with equality only at the Procrustes solution
        torch.testing.assert_close((ours * product).sum(), torch.linalg.matrix_norm(product, "nuc"),
                                   atol=1e-8, rtol=1e-8)
        rev = ((ei[0] == v) & (ei[1] == u)).nonzero().item()
        torch.testing.assert_close(transports[rev], ours.t())


def test_matches_the_maps_connection_nsd_computes():
    data = point_cloud_graph(seed=3)
    data.x = data.x.float()
    out = SheafConnection(d=2, num_neighbours=4)(data.clone())
    model = ConnectionNSD(5, 3, d=2, num_neighbours=4)
    graph = model.graph(data.edge_index, data.num_nodes)
    laplacian = model.connection_laplacian(data.x, graph)
    assert torch.equal(graph.edge_index, out.sheaf_edge_index)
    scale = (graph.deg(torch.float) + 1).rsqrt()
    expected_off = -out.sheaf_transports * (scale[graph.row] * scale[graph.col]).view(-1, 1, 1)
    torch.testing.assert_close(laplacian.off, expected_off)


def test_checks_arguments():
    with pytest.raises(ValueError, match="num_neighbours must be at least d \\+ 1"):
        SheafConnection(d=3, num_neighbours=3)
    with pytest.raises(ValueError, match="needs node features"):
        SheafConnection()(Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=2))
    with pytest.raises(ValueError, match="float features"):
        SheafConnection(d=1, num_neighbours=2)(Data(x=torch.ones(3, 2, dtype=torch.long),
                                                    edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=3))
