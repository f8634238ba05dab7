"""SubstructureCountData: exact counts against a brute force over node subsets, split, cache, normalised MAE."""

from __future__ import annotations

import itertools
import statistics

import networkx as nx
import pytest
import torch

from graphlab.data import SubstructureCountData
from graphlab.data.counting import TARGETS, count_substructures, counting_split, random_count_graphs
from graphlab.eval.metrics import evaluate


# --------------------------------------------------------------------------- brute force (independent of the code)
def _degree_signature(edges: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    deg: dict[int, int] = {}
    for a, b in edges:
        deg[a] = deg.get(a, 0) + 1
        deg[b] = deg.get(b, 0) + 1
    return tuple(sorted(deg.values()))


def _count_edge_patterns(graph: nx.Graph, k: int, num_edges: int, signature: tuple[int, ...]) -> int:
    """Subgraphs on exactly ``k`` nodes with ``num_edges`` edges and the degree multiset ``signature`` (on 4 nodes
    this pins the pattern: tailed triangle = (1, 2, 2, 3) with 4 edges, 3-star = (1, 1, 1, 3) with 3 edges)."""
    total = 0
    for nodes in itertools.combinations(graph.nodes, k):
        inside = tuple(graph.subgraph(nodes).edges)
        for chosen in itertools.combinations(inside, num_edges):
            if _degree_signature(chosen) == signature:
                total += 1
    return total


def _count_cycles(graph: nx.Graph, k: int) -> int:
    """k-cycles: Hamiltonian cycles of every k-node subset, each cycle once (fixed start, one direction)."""
    total = 0
    for nodes in itertools.combinations(sorted(graph.nodes), k):
        first, rest = nodes[0], nodes[1:]
        for order in itertools.permutations(rest):
            if order[0] > order[-1]:  # each cycle has two directions; keep one
                continue
            ring = (first, *order)
            if all(graph.has_edge(ring[i], ring[(i + 1) % k]) for i in range(k)):
                total += 1
    return total


def _count_cliques(graph: nx.Graph, k: int) -> int:
    return sum(1 for nodes in itertools.combinations(graph.nodes, k)
               if all(graph.has_edge(a, b) for a, b in itertools.combinations(nodes, 2)))


def brute_force_counts(graph: nx.Graph) -> dict[str, int]:
    return {
        "triangle": _count_cliques(graph, 3),
        "tailed_triangle": _count_edge_patterns(graph, 4, 4, (1, 2, 2, 3)),
        "star": _count_edge_patterns(graph, 4, 3, (1, 1, 1, 3)),
        "cycle4": _count_cycles(graph, 4),
        "cycle5": _count_cycles(graph, 5),
        "clique4": _count_cliques(graph, 4),
    }


SMALL_GRAPHS = [
    nx.complete_graph(5),  # K5: 10 triangles, 15 4-cycles, 12 5-cycles, 5 4-cliques
    nx.petersen_graph(),  # girth 5: no triangle or 4-cycle, 12 5-cycles
    nx.cycle_graph(5),
    nx.path_graph(4),
    nx.empty_graph(3),
    *[nx.gnp_random_graph(8, p, seed=s) for s, p in enumerate((0.3, 0.5, 0.7, 0.9))],
    nx.random_regular_graph(3, 8, seed=1),
]


def test_known_counts_of_k5():
    assert count_substructures(nx.complete_graph(5)) == {
        "triangle": 10, "tailed_triangle": 60, "star": 20, "cycle4": 15, "cycle5": 12, "clique4": 5}


@pytest.mark.parametrize("graph", SMALL_GRAPHS, ids=lambda g: f"n{g.number_of_nodes()}m{g.number_of_edges()}")
def test_counts_match_brute_force(graph):
    assert count_substructures(graph) == brute_force_counts(graph)


def test_generated_graphs_match_brute_force():
    for graph in random_count_graphs(4, min_nodes=6, max_nodes=8, seed=3):
        assert count_substructures(graph) == brute_force_counts(graph)


def test_count_rejects_non_simple_graph():
    graph = nx.Graph([(0, 1), (1, 1)])
    with pytest.raises(ValueError, match="simple undirected graph"):
        count_substructures(graph)


# --------------------------------------------------------------------------- datamodule
@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("counting")


def _module(root, **kwargs) -> SubstructureCountData:
    args = {"num_graphs": 40, "min_nodes": 6, "max_nodes": 12, "seed": 5, "batch_size": 8, **kwargs}
    return SubstructureCountData(root=str(root), **args)


def test_split_sizes_disjoint_and_seeded():
    split = counting_split(101, seed=2)
    sizes = [len(split.train), len(split.val), len(split.test)]
    assert sizes == [61, 20, 20]
    assert sorted(torch.cat([split.train, split.val, split.test]).tolist()) == list(range(101))
    again = counting_split(101, seed=2)
    assert torch.equal(again.test, split.test)
    assert not torch.equal(counting_split(101, seed=3).test, split.test)


def test_graphs_are_deterministic_and_counted(root, tmp_path):
    dm = _module(root, target="cycle4")
    fresh = _module(tmp_path, target="cycle4")  # generated again elsewhere: same graphs
    for a, b in zip(dm.graphs, fresh.graphs):
        assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.count, b.count)
    graphs = random_count_graphs(40, 6, 12, 5)
    for data, graph in zip(dm.graphs[:6], graphs):
        assert int(data.count) == brute_force_counts(graph)["cycle4"]
        assert data.num_nodes == graph.number_of_nodes() and data.edge_index.size(1) == 2 * graph.number_of_edges()
    other = _module(tmp_path, target="cycle4", seed=6)
    assert any(not torch.equal(a.edge_index, b.edge_index) for a, b in zip(dm.graphs, other.graphs))


def test_cache_is_reused_and_keyed_by_settings(root):
    dm = _module(root, target="triangle")
    _ = dm.graphs
    assert dm.cache_path.exists()
    assert _module(root, target="clique4").cache_path == dm.cache_path  # one file holds every target
    assert _module(root, num_graphs=41).cache_path != dm.cache_path
    stamp = dm.cache_path.stat().st_mtime_ns
    _ = _module(root, target="star").graphs
    assert dm.cache_path.stat().st_mtime_ns == stamp


def test_targets_are_normalised_by_dataset_std(root):
    dm = _module(root, target="tailed_triangle")
    counts = [int(g.count) for g in dm.graphs]
    std = statistics.stdev(counts)
    assert dm.target_std == pytest.approx(std)
    for g in dm.graphs:
        assert float(g.y) == pytest.approx(int(g.count) / std)
    batch = next(iter(dm.train_dataloader()))
    assert batch.y.shape == (8, 1) and batch.x.shape == (batch.num_nodes, 1)
    assert dm.info.metric == "mae" and dm.info.task_type == "regression"


def test_normalised_mae_against_hand_computation(root):
    dm = _module(root, target="triangle")
    test = [dm.graphs[i] for i in dm.split_index.test.tolist()]
    counts = [int(g.count) for g in test]
    predicted = [c + (0.5 if i % 2 else -1.5) for i, c in enumerate(counts)]  # count-unit predictions
    std = statistics.stdev(int(g.count) for g in dm.graphs)
    expected = sum(abs(p - c) for p, c in zip(predicted, counts)) / len(counts) / std
    y_true = torch.cat([g.y for g in test])
    y_pred = torch.tensor(predicted, dtype=torch.float32).view(-1, 1) / dm.target_std
    assert evaluate(dm.info, y_true, y_pred) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"target": "hexagon"}, "unknown counting target 'hexagon'"),
    ({"num_graphs": 3}, "num_graphs must be >= 5"),
    ({"min_nodes": 3}, "min_nodes"),
    ({"min_nodes": 12, "max_nodes": 10}, "max_nodes"),
    ({"batch_size": 0}, "batch_size >= 1"),
])
def test_bad_arguments(root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _module(root, **kwargs)


def test_constant_target_is_refused(tmp_path):
    dm = _module(tmp_path, target="clique4")
    data = dm.raw_set()
    data["counts"][:, TARGETS.index("clique4")] = 2  # same settings, every graph with the same count
    torch.save(data, dm.cache_path)
    with pytest.raises(ValueError, match="same clique4 count"):
        _ = _module(tmp_path, target="clique4").graphs


def test_stale_cache_is_refused(root):
    dm = _module(root, target="triangle", seed=11)
    data = dm.raw_set()
    data["settings"] = "something else"
    torch.save(data, dm.cache_path)
    with pytest.raises(ValueError, match="delete the file"):
        _module(root, target="triangle", seed=11).raw_set()


def test_subgraph_option_adds_the_pair_fields(root):
    """``subgraph:`` runs SubgraphPairs on every graph (same fields as applying the transform by hand); bad keys fail."""
    from graphlab.transforms import SubgraphPairs

    plain = _module(root, num_graphs=20)
    paired = _module(root, num_graphs=20, subgraph={"policy": "node_marking", "max_dis": 3})
    for g, h in zip(plain.graphs, paired.graphs):
        expected = SubgraphPairs(max_dis=3, policy="node_marking")(g.clone())
        assert torch.equal(h.pair_dis, expected.pair_dis) and torch.equal(h.y, g.y)
    assert not hasattr(plain.graphs[0], "pair_dis") or plain.graphs[0].pair_dis is None
    with pytest.raises(ValueError, match="unknown subgraph option"):
        _module(root, num_graphs=20, subgraph={"hops": 2})
