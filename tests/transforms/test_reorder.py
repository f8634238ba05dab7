"""Locality orderings (node_order), ReorderNodes / restore_order, the DataModules' ``reorder`` option, and a model
trained on a reordered graph predicting exactly what it predicts on the graph as given."""

from __future__ import annotations

import sys
from collections import deque
from pathlib import Path

import pytest
import torch
import yaml
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_undirected

from graphlab.data import CSBMData, OGBNodeData, PyGData
from graphlab.models import GCN, GraphSAGE
from graphlab.transforms import ReorderNodes, ToCSR, node_order, restore_order
from graphlab.transforms.reorder import METHODS, bandwidth, permute_nodes

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------------------ graphs
def grid_edges(rows: int, cols: int) -> torch.Tensor:
    """The undirected ``rows x cols`` grid, both directions, node ``r * cols + c``."""
    edges = [(r * cols + c, r * cols + c + 1) for r in range(rows) for c in range(cols - 1)]
    edges += [(r * cols + c, (r + 1) * cols + c) for r in range(rows - 1) for c in range(cols)]
    return to_undirected(torch.tensor(edges).t())


def shuffled(edge_index: torch.Tensor, num_nodes: int, seed: int) -> torch.Tensor:
    relabel = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(seed))
    return relabel[edge_index]


def random_edges(num_nodes: int, num_edges: int, seed: int) -> torch.Tensor:
    return torch.randint(0, num_nodes, (2, num_edges), generator=torch.Generator().manual_seed(seed))


def neighbours(edge_index: torch.Tensor, num_nodes: int) -> list[set[int]]:
    """Undirected neighbour sets, self-loops dropped, by a plain loop."""
    out: list[set[int]] = [set() for _ in range(num_nodes)]
    for u, v in edge_index.t().tolist():
        if u != v:
            out[u].add(v)
            out[v].add(u)
    return out


def plain_bandwidth(edge_index: torch.Tensor, perm: list[int]) -> int:
    position = {old: new for new, old in enumerate(perm)}
    return max(abs(position[u] - position[v]) for u, v in edge_index.t().tolist())


def reference_degree_bfs(edge_index: torch.Tensor, num_nodes: int) -> list[int]:
    """Queue BFS written from the definition: start at the highest-degree unvisited node (ties: smallest id),
    enqueue each popped node's unvisited neighbours by decreasing degree (ties: smallest id); isolated nodes last."""
    nbrs = neighbours(edge_index, num_nodes)
    deg = [len(n) for n in nbrs]
    visited, order = [False] * num_nodes, []
    for seed in sorted((v for v in range(num_nodes) if deg[v] > 0), key=lambda v: (-deg[v], v)):
        if visited[seed]:
            continue
        visited[seed] = True
        queue = deque([seed])
        while queue:
            v = queue.popleft()
            order.append(v)
            for u in sorted(nbrs[v], key=lambda u: (-deg[u], u)):
                if not visited[u]:
                    visited[u] = True
                    queue.append(u)
    return order + [v for v in range(num_nodes) if deg[v] == 0]


# ------------------------------------------------------------------------------------------------ node_order
@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_a_permutation_on_awkward_graphs(method):
    cases = {
        "disconnected + isolated + self-loop + duplicates": (
            torch.tensor([[0, 1, 1, 3, 4, 4, 7], [1, 2, 2, 4, 5, 4, 8]]), 11),
        "directed one way only": (torch.tensor([[0, 0, 0, 2], [1, 2, 3, 4]]), 5),
        "no edges": (torch.empty(2, 0, dtype=torch.long), 4),
        "no nodes": (torch.empty(2, 0, dtype=torch.long), 0),
    }
    for name, (edge_index, n) in cases.items():
        perm = node_order(edge_index, n, method)
        assert perm.dtype == torch.long, name
        assert sorted(perm.tolist()) == list(range(n)), name


@pytest.mark.parametrize("method", METHODS)
def test_a_directed_graph_is_ordered_as_its_symmetrisation(method):
    edge_index = random_edges(60, 150, seed=1)
    assert torch.equal(node_order(edge_index, 60, method), node_order(to_undirected(edge_index), 60, method))


def test_degree_bfs_matches_a_queue_bfs_written_from_the_definition():
    for seed in range(4):
        edge_index = torch.cat([random_edges(50, 70, seed), random_edges(30, 30, seed + 10) + 60], dim=1)
        assert node_order(edge_index, 95, "degree_bfs").tolist() == reference_degree_bfs(edge_index, 95)


@pytest.mark.parametrize("method", ["rcm", "degree_bfs"])
def test_bfs_orders_shrink_the_bandwidth_of_a_shuffled_grid(method):
    rows, cols = 12, 30
    edge_index = shuffled(grid_edges(rows, cols), rows * cols, seed=0)
    perm = node_order(edge_index, rows * cols, method).tolist()
    ordered = plain_bandwidth(edge_index, perm)
    as_given = plain_bandwidth(edge_index, list(range(rows * cols)))
    assert as_given > 200  # a random numbering spreads neighbours over the whole range
    assert ordered <= 2 * rows + 1  # a BFS of the grid from a corner-ish node: about one row (short side) per level
    assert bandwidth(edge_index, torch.tensor(perm)) == ordered  # the helper agrees with the plain loop


def test_rcm_beats_random_orders_on_a_random_sparse_graph():
    edge_index = random_edges(400, 600, seed=5)
    rcm = plain_bandwidth(edge_index, node_order(edge_index, 400, "rcm").tolist())
    randoms = [plain_bandwidth(edge_index, torch.randperm(400, generator=torch.Generator().manual_seed(s)).tolist())
               for s in range(5)]
    assert rcm < min(randoms)


def test_community_order_keeps_each_clique_consecutive():
    sizes = [7, 5, 9, 6, 8]
    edges, start = [], 0
    for size in sizes:
        nodes = torch.arange(start, start + size)
        edges.append(torch.combinations(nodes).t())
        start += size
    bridges = torch.tensor([[6, 11, 20, 26], [7, 12, 21, 27]])  # one edge between consecutive cliques
    edge_index = to_undirected(torch.cat(edges + [bridges], dim=1))
    relabel = torch.randperm(start, generator=torch.Generator().manual_seed(3))
    perm = node_order(relabel[edge_index], start, "community")
    clique_of_old = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    clique_of_new = clique_of_old[torch.argsort(relabel)][perm]  # the clique of each new position
    runs = torch.unique_consecutive(clique_of_new)
    assert runs.numel() == len(sizes), clique_of_new.tolist()


def test_node_order_rejects_bad_input():
    edge_index = torch.tensor([[0, 1], [1, 5]])
    with pytest.raises(ValueError, match="unknown reordering method 'metis'; choose one of rcm, degree_bfs, community"):
        node_order(edge_index, 6, "metis")
    with pytest.raises(ValueError, match=r"ids in \[0, 5\] but the graph has 5 nodes"):
        node_order(edge_index, 5)
    with pytest.raises(ValueError, match=r"ids in \[-1, 1\]"):
        node_order(torch.tensor([[0, -1], [1, 1]]), 5)
    with pytest.raises(TypeError, match="integer node ids"):
        node_order(edge_index.float(), 6)
    with pytest.raises(ValueError, match=r"\[2, E\] tensor"):
        node_order(edge_index.t().reshape(1, 4), 6)


# ------------------------------------------------------------------------------------------------ the transform
def rich_graph(num_nodes: int = 40, num_edges: int = 160, seed: int = 0) -> Data:
    gen = torch.Generator().manual_seed(seed)
    edge_index = random_edges(num_nodes, num_edges, seed)
    return Data(
        x=torch.randn(num_nodes, 5, generator=gen), y=torch.randint(0, 3, (num_nodes,), generator=gen),
        pos=torch.randn(num_nodes, 2, generator=gen), laplacian_pe=torch.randn(num_nodes, 4, generator=gen),
        train_mask=torch.rand(num_nodes, generator=gen) < 0.5,
        split_masks=torch.rand(num_nodes, 10, generator=gen) < 0.3,
        names=[f"node{i}" for i in range(num_nodes)],
        edge_index=edge_index, edge_attr=torch.randn(num_edges, 3, generator=gen),
        edge_weight=torch.rand(num_edges, generator=gen),
        edge_label_index=random_edges(num_nodes, 12, seed + 1), edge_label=torch.arange(12.0),
        num_graph_features=torch.tensor([7.0]),
    )


NODE_KEYS = ("x", "y", "pos", "laplacian_pe", "train_mask", "split_masks")


@pytest.mark.parametrize("method", METHODS)
def test_reorder_then_restore_is_the_identity_on_every_node_attribute(method):
    data = rich_graph()
    out = ReorderNodes(method)(data)
    perm = out.node_perm
    assert not torch.equal(perm, torch.arange(data.num_nodes))  # it did reorder
    for key in NODE_KEYS:
        assert torch.equal(out[key], data[key][perm]), key
        assert torch.equal(restore_order(out[key], out), data[key]), key
    assert out.names == [data.names[i] for i in perm.tolist()]
    assert torch.equal(out.num_graph_features, data.num_graph_features)  # graph-level: untouched
    assert torch.equal(out.edge_label, data.edge_label)
    assert torch.equal(perm[out.edge_label_index], data.edge_label_index)  # pairs relabelled, order kept


@pytest.mark.parametrize("method", METHODS)
def test_edges_are_the_same_set_with_their_attributes_and_sorted_by_target(method):
    data = rich_graph()
    out = ReorderNodes(method)(data)
    perm = out.node_perm

    def triples(g: Data, relabel: torch.Tensor) -> list:
        src, dst = relabel[g.edge_index]
        return sorted(zip(src.tolist(), dst.tolist(), g.edge_attr.tolist(), g.edge_weight.tolist()))

    assert triples(out, perm) == triples(data, torch.arange(data.num_nodes))
    src, dst = out.edge_index
    key = dst * data.num_nodes + src
    assert bool((key[1:] >= key[:-1]).all())


def test_applying_twice_composes_and_restores_the_original():
    data = rich_graph()
    once = ReorderNodes("community")(data)
    twice = ReorderNodes("rcm")(once)
    for key in NODE_KEYS:
        assert torch.equal(restore_order(twice[key], twice), data[key]), key
    second = node_order(once.edge_index, once.num_nodes, "rcm")
    assert torch.equal(twice.node_perm, once.node_perm[second])


def test_the_input_is_left_unchanged_and_csr_caches_are_rebuilt():
    data = ToCSR()(rich_graph())
    before = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in data.items()}
    out = ReorderNodes("rcm")(data)
    for key, value in before.items():
        assert (torch.equal(data[key], value) if isinstance(value, torch.Tensor) else data[key] == value), key
    fresh = ToCSR()(Data(edge_index=out.edge_index.clone(), num_nodes=out.num_nodes))
    for key in ("csr_rowptr", "csr_col", "csr_perm", "csr_t_colptr", "csr_t_row", "csr_t_perm"):
        assert torch.equal(out[key], fresh[key]), key


def test_transform_errors_name_the_problem():
    with pytest.raises(ValueError, match="choose one of rcm, degree_bfs, community"):
        ReorderNodes("random")
    bad = Data(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1], [1, 3]]))
    with pytest.raises(ValueError, match="ids in \\[0, 3\\] but the graph has 3 nodes"):
        ReorderNodes()(bad)
    graph = rich_graph(8, 10)
    with pytest.raises(TypeError, match="reorder each graph before batching"):
        ReorderNodes()(Batch.from_data_list([graph, graph]))
    with pytest.raises(ValueError, match="no node_perm"):
        restore_order(graph.x, graph)
    with pytest.raises(ValueError, match="out has 7 entries along dim 0 but the graph has 8 nodes"):
        restore_order(torch.zeros(7), torch.arange(8))
    with_adj = graph.clone()
    with_adj.adj_t = torch.sparse_coo_tensor(graph.edge_index, torch.ones(10), (8, 8), check_invariants=True)
    with pytest.raises(ValueError, match=r"sparse matrices \['adj_t'\]: drop them and build them after reordering"):
        ReorderNodes()(with_adj)
    with pytest.raises(ValueError, match="perm must be a permutation of 0..7"):
        permute_nodes(graph, torch.tensor([0, 0, 1, 2, 3, 4, 5, 6]))


# ------------------------------------------------------------------------------------------------ equivariance
@pytest.mark.parametrize("model_cls", [GCN, GraphSAGE])
@pytest.mark.parametrize("method", METHODS)
def test_graphlab_models_on_the_reordered_graph_restore_to_the_original_output(model_cls, method):
    torch.manual_seed(0)
    data = rich_graph(60, 300, seed=2)
    data.x = data.x.double()
    model = model_cls(5, 3, hidden_channels=16, num_layers=3, dropout=0.0).double().eval()
    out = ReorderNodes(method)(data)
    with torch.no_grad():
        expected = model(data.x, data.edge_index)
        got = restore_order(model(out.x, out.edge_index), out)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    if model_cls is GCN:  # edge weights travel with their edges
        with torch.no_grad():
            expected = model(data.x, data.edge_index, edge_weight=data.edge_weight.double())
            got = restore_order(model(out.x, out.edge_index, edge_weight=out.edge_weight.double()), out)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------ DataModules
def test_csbm_reorder_permutes_masks_labels_and_features_consistently():
    plain = CSBMData(num_nodes=150, num_classes=3, seed=4).graph
    reordered = CSBMData(num_nodes=150, num_classes=3, seed=4, reorder="rcm").graph
    assert not torch.equal(reordered.node_perm, torch.arange(150))
    for key in ("x", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(restore_order(reordered[key], reordered), plain[key]), key
    perm = reordered.node_perm
    relabelled = {tuple(e) for e in perm[reordered.edge_index].t().tolist()}
    assert relabelled == {tuple(e) for e in plain.edge_index.t().tolist()}


def test_ogb_node_reorder(ogb_fixture):
    fx = ogb_fixture.node_arxiv()
    plain = OGBNodeData("ogbn-arxiv", root=str(fx.root), download=False).graph
    reordered = OGBNodeData("ogbn-arxiv", root=str(fx.root), download=False, reorder="degree_bfs").graph
    for key in ("x", "y", "node_year", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(restore_order(reordered[key], reordered), plain[key]), key


def test_pyg_reorder_on_a_real_dataset_with_ten_split_columns(copy_shared):
    root = copy_shared("texas")
    plain = PyGData("texas", root=str(root), split=3)
    reordered = PyGData("texas", root=str(root), split=3, reorder="community")
    for key in ("x", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(restore_order(reordered.graph[key], reordered.graph), plain.graph[key]), key


def test_datamodules_reject_bad_reorder_values(tmp_path):
    with pytest.raises(ValueError, match="choose one of rcm, degree_bfs, community"):
        CSBMData(num_nodes=50, reorder="metis")
    with pytest.raises(ValueError, match="reorder applies to node datasets only"):
        PyGData("MUTAG", root=str(tmp_path), reorder="rcm")


# ------------------------------------------------------------------------------------------------ training
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def _fit_and_predict(tmp_path: Path, model: dict, reorder: str | None) -> dict:
    from graphlab.cli import build_cli

    data = {"class_path": "graphlab.data.CSBMData",
            "init_args": {"num_nodes": 300, "num_classes": 3, "avg_degree": 6.0, "reorder": reorder}}
    config = {"seed_everything": 0,
              "trainer": {"max_epochs": 8, "deterministic": True, "num_sanity_val_steps": 0},
              "model": {"class_path": "graphlab.tasks.NodeClassification",
                        "init_args": {"model": model, "lr": 0.05}},
              "data": data}
    run = tmp_path / str(reorder)
    run.mkdir()
    path = run / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    runs = f"--trainer.logger.init_args.save_dir={run / 'runs'}"
    build_cli(["fit", "--config", str(path), runs, *QUIET])
    out = run / "predictions.pt"
    build_cli(["predict", "--config", str(path), runs, "--ckpt_path", "last", "--predict_out", str(out), *QUIET])
    return torch.load(out, weights_only=True)


@pytest.mark.parametrize("model", [
    {"class_path": "graphlab.models.GCN", "init_args": {"hidden_channels": 16, "dropout": 0.0}},
    {"class_path": "graphlab.models.GraphSAGE", "init_args": {"hidden_channels": 16, "dropout": 0.0}},
], ids=["gcn", "sage"])
def test_training_on_the_reordered_graph_predicts_the_same_in_the_original_order(tmp_path, monkeypatch, model):
    """``graphlab fit`` then ``graphlab predict`` with ``reorder: rcm`` and without: same seed, full batch, no
    dropout (a dropout mask is drawn in node order, so it would differ), parameters initialised before any node is
    seen. The prediction files agree row for row (same node ids, probabilities equal up to float32 summation order)."""
    monkeypatch.setattr(sys, "argv", ["graphlab"])
    plain = _fit_and_predict(tmp_path, model, None)
    reordered = _fit_and_predict(tmp_path, model, "rcm")
    assert torch.equal(reordered["node_id"], plain["node_id"])
    assert torch.equal(reordered["label"], plain["label"])
    torch.testing.assert_close(reordered["prob"], plain["prob"], rtol=1e-4, atol=1e-5)
    assert (plain["prob"].max(dim=1).values > 0.5).float().mean() > 0.5  # it did learn something: not all uniform
