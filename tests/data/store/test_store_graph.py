"""DiskGraphStore: PyG's GraphStore contract on memory-mapped CSR/CSC/COO with edge ids."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data, EdgeAttr

from graphlab.data import DiskFeatureStore, DiskGraphStore, open_store, write_store


def _graph(num_nodes: int = 40, num_edges: int = 150, seed: int = 0) -> Data:
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    return Data(x=torch.randn(num_nodes, 5, generator=g), y=torch.randint(0, 3, (num_nodes,), generator=g),
                train_mask=torch.rand(num_nodes, generator=g) < 0.5, edge_index=edge_index,
                edge_weight=torch.rand(num_edges, generator=g), num_nodes=num_nodes)


def _neighbours(ptr: torch.Tensor, idx: torch.Tensor, perm: torch.Tensor, v: int) -> list[tuple[int, int]]:
    return sorted(zip(idx[ptr[v]:ptr[v + 1]].tolist(), perm[ptr[v]:ptr[v + 1]].tolist()))


def test_write_store_csr_and_csc_match_the_edge_list(tmp_path: Path) -> None:
    data = _graph()
    features, graph = write_store(tmp_path / "s", data)
    rowptr, col, perm = graph.csr()
    row, colptr, perm_c = graph.csc()
    src, dst = data.edge_index
    for v in range(data.num_nodes):  # reference: per-node scan of the edge list
        out_edges = sorted((int(dst[e]), e) for e in range(src.numel()) if src[e] == v)
        in_edges = sorted((int(src[e]), e) for e in range(src.numel()) if dst[e] == v)
        assert _neighbours(rowptr, col, perm, v) == out_edges
        assert _neighbours(colptr, row, perm_c, v) == in_edges
    weight = graph.edge_data("weight", layout="csr")
    assert torch.equal(weight, data.edge_weight[perm])
    assert torch.equal(features.get_tensor(None, "x", index=None), data.x)
    assert torch.equal(features.get_tensor(None, "train_mask", index=None), data.train_mask)
    assert {a.attr_name for a in features.get_all_tensor_attrs()} == {"x", "y", "train_mask"}  # no edge tensors
    assert graph.num_nodes() == 40
    attrs = graph.get_all_edge_attrs()
    assert {a.layout.value for a in attrs} == {"csr", "csc"} and all(a.size == (40, 40) for a in attrs)


def test_stored_layout_is_zero_copy_over_the_map(tmp_path: Path) -> None:
    _, graph = write_store(tmp_path / "s", _graph())
    rowptr, col, _ = graph.csr()
    again, _, _ = graph.csr()
    assert rowptr.data_ptr() == again.data_ptr()  # the same map, not a copy per call


def test_put_get_remove_coo_round_trip_and_conversion(tmp_path: Path) -> None:
    store = DiskGraphStore(tmp_path / "s", mode="w")
    edge_index = torch.tensor([[2, 0, 1, 2], [0, 1, 2, 1]])
    assert store.put_edge_index((edge_index[0], edge_index[1]), edge_type=None, layout="coo", size=(3, 3))
    reopened = DiskGraphStore(tmp_path / "s")
    row, col = reopened.get_edge_index(edge_type=None, layout="coo")
    assert torch.equal(row, edge_index[0]) and torch.equal(col, edge_index[1])
    rowptr, col_sorted, perm = reopened.csr()  # PyG's conversion from the stored COO
    assert rowptr.tolist() == [0, 1, 2, 4] and torch.equal(col_sorted, edge_index[1][perm])
    store.remove_edge_index(edge_type=None, layout="coo")
    assert DiskGraphStore(tmp_path / "s").get_all_edge_attrs() == []
    with pytest.raises(KeyError, match="not found"):
        DiskGraphStore(tmp_path / "s").get_edge_index(edge_type=None, layout="coo")


def test_bad_edges_are_rejected(tmp_path: Path) -> None:
    store = DiskGraphStore(tmp_path / "s", mode="w")
    with pytest.raises(ValueError, match="needs EdgeAttr.size"):
        store.put_edge_index((torch.tensor([0, 1]), torch.tensor([1])), edge_type=None, layout="csr")
    with pytest.raises(ValueError, match="rowptr must be non-decreasing, of length size\\[0\\] \\+ 1 = 3"):
        store.put_edge_index((torch.tensor([0, 1]), torch.tensor([1])), edge_type=None, layout="csr", size=(2, 2))
    with pytest.raises(ValueError, match=r"col has ids outside \[0, 2\)"):
        store.put_edge_index((torch.tensor([0, 1, 1]), torch.tensor([5])), edge_type=None, layout="csr",
                             size=(2, 2))
    with pytest.raises(TypeError, match="1-D int32/int64"):
        store.put_edge_index((torch.tensor([0.0]), torch.tensor([1])), edge_type=None, layout="coo")
    with pytest.raises(ValueError, match="weight has 1 rows, the graph has 2 edges"):
        store.put_edges((torch.tensor([0, 1]), torch.tensor([1, 0])), EdgeAttr(None, "coo", size=(2, 2)),
                        weight=torch.ones(1))
    assert store.get_all_edge_attrs() == [] and not list((tmp_path / "s").glob("*.bin"))


@pytest.mark.filterwarnings("ignore:Using 'NeighborSampler' without a 'pyg-lib' installation:UserWarning")
def test_pyg_neighbor_sampler_reads_the_stores(tmp_path: Path) -> None:
    """PyG's NeighborSampler builds from (feature_store, graph_store) (its metadata and CSC path); sampling itself
    needs pyg-lib / torch-sparse, or graphlab's sampler."""
    from torch_geometric.sampler import NeighborSampler

    data = _graph()
    write_store(tmp_path / "s", data)
    sampler = NeighborSampler(open_store(tmp_path / "s"), num_neighbors=[3, 2])
    assert sampler.num_nodes == 40
    assert sampler.colptr.tolist() == DiskGraphStore(tmp_path / "s").csc()[1].tolist()


def test_pyg_node_loader_with_graphlab_sampler_on_disk_stores(tmp_path: Path) -> None:
    """PyG's NodeLoader, unchanged, over (DiskFeatureStore, DiskGraphStore): each batch's features and labels are
    the rows of its global n_id, and every sampled edge is an edge of the graph."""
    from torch_geometric.loader import NodeLoader

    from graphlab.data import GraphlabNeighborSampler

    data = _graph(num_nodes=60, num_edges=300)
    write_store(tmp_path / "s", data)
    stores = open_store(tmp_path / "s")
    loader = NodeLoader(stores, node_sampler=GraphlabNeighborSampler(stores, [3, 2]), input_nodes=torch.arange(20),
                        batch_size=7)
    edges = set(map(tuple, data.edge_index.t().tolist()))
    batches = list(loader)
    assert len(batches) == 3
    for batch in batches:
        assert torch.equal(batch.x, data.x[batch.n_id]) and torch.equal(batch.y, data.y[batch.n_id])
        src, dst = batch.n_id[batch.edge_index[0]], batch.n_id[batch.edge_index[1]]
        assert set(zip(src.tolist(), dst.tolist())) <= edges  # neighbour -> target, as in PyG
