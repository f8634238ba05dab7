"""graphlab's neighbour sampler against a per-node loop reference, chi-square tests of its distributions, its
structural guarantees, the PyG adapter in PyG's loaders, and every bad-input error."""

from __future__ import annotations

import itertools
import math
import warnings
from collections import Counter

import pytest
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import LinkNeighborLoader, NodeLoader
from torch_geometric.sampler.utils import to_csc
from torch_geometric.testing import MyFeatureStore, MyGraphStore

from graphlab.data.sampler import (
    GraphlabNeighborSampler,
    SamplingGraph,
    neighbor_loader,
    pyg_sampler_available,
    sample_neighbors,
)
from graphlab.data.sampler_reference import reference_sample_neighbors
from graphlab.models import GIN, GCN, GraphSAGE

stats = pytest.importorskip("scipy.stats")
P_MIN = 1e-4  # a correct sampler fails one chi-square test in 10,000 (seeds are fixed, so it never flakes)


# --------------------------------------------------------------------------- graphs and the loop reference
# (graphlab/data/sampler_reference.py: one Python iteration per node, randperm / randint / multinomial)
def _csr(neighbours: list[list[int]]) -> tuple[Tensor, Tensor]:
    """``rowptr, col`` of a neighbour list written out by hand (nodes without a list have no neighbours)."""
    largest = max((u for n in neighbours for u in n), default=-1)
    neighbours = neighbours + [[] for _ in range(largest + 1 - len(neighbours))]
    rowptr = torch.tensor([0] + list(itertools.accumulate(len(n) for n in neighbours)))
    col = torch.tensor([u for n in neighbours for u in n], dtype=torch.long)
    return rowptr, col


def _random_graph(num_nodes: int, num_edges: int, seed: int = 0) -> Data:
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    return Data(edge_index=edge_index, num_nodes=num_nodes, x=torch.randn(num_nodes, 5, generator=g),
                y=torch.randint(0, 3, (num_nodes,), generator=g))


def reference_sample(rowptr, col, seeds, num_neighbors, replace=False, weight=None, generator=None):
    """The loop reference as plain lists ``(node, row, col, edge)``."""
    out = reference_sample_neighbors(rowptr, col, seeds, num_neighbors, replace=replace, weight=weight,
                                     generator=generator)
    return out.node.tolist(), out.row.tolist(), out.col.tolist(), out.edge.tolist()


def _targets(rowptr: Tensor) -> Tensor:
    """The node each position of ``col`` belongs to."""
    return torch.repeat_interleave(torch.arange(rowptr.numel() - 1), rowptr[1:] - rowptr[:-1])


def _assert_real_edges(rowptr: Tensor, col: Tensor, out) -> None:
    """Every returned edge exists: ``col[edge]`` is the neighbour and ``edge`` lies in the target's segment."""
    assert torch.equal(col[out.edge], out.node[out.row])
    assert torch.equal(_targets(rowptr)[out.edge], out.node[out.col])


# --------------------------------------------------------------------------- exactness against the reference
@pytest.mark.parametrize("directed_seeds", [[0, 1, 2], [5, 5, 0, 9], [3]])
def test_full_fanout_matches_the_loop_reference_exactly(directed_seeds) -> None:
    data = _random_graph(40, 160)
    colptr, row, _ = to_csc(data, device="cpu")
    seeds = torch.tensor(directed_seeds)
    out = sample_neighbors(colptr, row, seeds, [-1, -1])
    node, rows, cols, edges = reference_sample(colptr, row, seeds, [-1, -1])
    assert out.node.tolist() == node
    assert (out.row.tolist(), out.col.tolist(), out.edge.tolist()) == (rows, cols, edges)
    assert sum(out.num_sampled_nodes) == len(node) and sum(out.num_sampled_edges) == len(edges)


def test_fanout_above_degree_takes_every_neighbour_and_minus_one_takes_all() -> None:
    rowptr, col = _csr([[1, 2, 3], [0], [], [0, 1, 2, 4, 4]])
    for fanout in ([10], [-1], [3]):
        out = sample_neighbors(rowptr, col, torch.tensor([0]), fanout)
        assert sorted(out.edge.tolist()) == [0, 1, 2]
    out = sample_neighbors(rowptr, col, torch.tensor([3]), [-1])
    assert sorted(out.edge.tolist()) == [4, 5, 6, 7, 8]  # the parallel edges to 4 are both kept
    assert out.node.tolist() == [3, 0, 1, 2, 4]


def test_hops_expand_only_new_nodes_and_count_per_hop() -> None:
    data = _random_graph(200, 1500, seed=3)
    colptr, row, _ = to_csc(data, device="cpu")
    torch.manual_seed(0)
    out = sample_neighbors(colptr, row, torch.arange(7), [4, 3, 2])
    _assert_real_edges(colptr, row, out)
    assert out.node.unique().numel() == out.node.numel()  # distinct seeds: no node twice
    bounds = torch.tensor([0] + list(itertools.accumulate(out.num_sampled_nodes)))
    edge_bounds = [0] + list(itertools.accumulate(out.num_sampled_edges))
    for hop, k in enumerate([4, 3, 2]):
        cols = out.col[edge_bounds[hop]:edge_bounds[hop + 1]]
        assert bool(((cols >= bounds[hop]) & (cols < bounds[hop + 1])).all())  # hop h expands hop h-1's new nodes
        assert int(torch.bincount(cols - bounds[hop]).max()) <= k
        assert bool((torch.diff(cols) >= 0).all())  # grouped by target, in frontier order


# --------------------------------------------------------------------------- distributions (chi-square)
def _subset_counts(rowptr, col, seed_node: int, k: int, draws: int, **kwargs) -> Counter:
    """How often each k-subset of ``seed_node``'s neighbour positions is drawn in ``draws`` one-hop samples."""
    out = sample_neighbors(rowptr, col, torch.full((draws,), seed_node), [k], **kwargs)
    order = torch.argsort(out.col, stable=True)
    picks = out.edge[order].view(draws, k).sort(dim=1).values
    return Counter(tuple(p) for p in picks.tolist())


def _chi_square_p(observed: Counter, expected: dict, draws: int) -> float:
    assert set(observed) <= set(expected), "drew something outside the support"
    keys = sorted(expected)
    obs = [observed.get(key, 0) for key in keys]
    total = sum(expected.values())
    exp = [expected[key] / total * sum(obs) for key in keys]
    return float(stats.chisquare(obs, exp).pvalue)


def test_uniform_without_replacement_draws_every_subset_equally() -> None:
    rowptr, col = _csr([[1, 2, 3, 4, 5, 6]])
    torch.manual_seed(1)
    counts = _subset_counts(rowptr, col, 0, 3, 20_000)
    subsets = {s: 1 / math.comb(6, 3) for s in itertools.combinations(range(6), 3)}
    assert _chi_square_p(counts, subsets, 20_000) > P_MIN


def test_uniform_with_replacement_is_uniform_per_draw() -> None:
    rowptr, col = _csr([[1, 2, 3, 4, 5]])
    torch.manual_seed(2)
    out = sample_neighbors(rowptr, col, torch.zeros(4000, dtype=torch.long), [5], replace=True)
    counts = Counter(out.edge.tolist())
    assert _chi_square_p(counts, {p: 1 / 5 for p in range(5)}, 20_000) > P_MIN
    repeated = out.edge.view(4000, 5)
    assert bool((repeated.sort(1).values.diff(dim=1) == 0).any())  # with replacement repeats do happen


WEIGHTS = torch.tensor([1.0, 2.0, 3.0, 0.0, 4.0])


def test_weighted_with_replacement_follows_the_weights() -> None:
    rowptr, col = _csr([[1, 2, 3, 4, 5]])
    torch.manual_seed(3)
    out = sample_neighbors(rowptr, col, torch.zeros(5000, dtype=torch.long), [4], replace=True, weight=WEIGHTS)
    counts = Counter(out.edge.tolist())
    assert 3 not in counts  # weight 0: never drawn
    expected = {p: float(WEIGHTS[p]) for p in range(5) if WEIGHTS[p] > 0}
    assert _chi_square_p(counts, expected, 20_000) > P_MIN


def _successive_sampling_probability(weights: list[float], subset: tuple[int, ...]) -> float:
    """P(subset) when drawing without replacement, each draw proportional to the remaining weights."""
    total = 0.0
    for order in itertools.permutations(subset):
        p, left = 1.0, sum(weights)
        for i in order:
            p *= weights[i] / left
            left -= weights[i]
        total += p
    return total


def test_weighted_without_replacement_is_successive_sampling() -> None:
    rowptr, col = _csr([[1, 2, 3, 4, 5]])
    torch.manual_seed(4)
    counts = _subset_counts(rowptr, col, 0, 2, 20_000, weight=WEIGHTS)
    w = WEIGHTS.tolist()
    positive = [i for i in range(5) if w[i] > 0]
    expected = {s: _successive_sampling_probability(w, s) for s in itertools.combinations(positive, 2)}
    assert abs(sum(expected.values()) - 1) < 1e-12
    assert _chi_square_p(counts, expected, 20_000) > P_MIN


def test_the_loop_reference_passes_the_same_test() -> None:
    """The chi-square harness itself: the independent loop reference gives the same verdicts."""
    rowptr, col = _csr([[1, 2, 3, 4, 5]])
    g = torch.Generator().manual_seed(5)
    counts = Counter()
    for _ in range(4000):
        _, _, _, edges = reference_sample(rowptr, col, torch.tensor([0]), [2], weight=WEIGHTS, generator=g)
        counts[tuple(sorted(edges))] += 1
    w = WEIGHTS.tolist()
    expected = {s: _successive_sampling_probability(w, s) for s in itertools.combinations([0, 1, 2, 4], 2)}
    assert _chi_square_p(counts, expected, 4000) > P_MIN
    uniform = {s: 1 / 6 for s in itertools.combinations([0, 1, 2, 4], 2)}
    assert _chi_square_p(counts, uniform, 4000) < P_MIN  # and the test can fail: weights are not uniform


def test_without_replacement_never_repeats_an_edge_per_target() -> None:
    data = _random_graph(300, 6000, seed=6)
    colptr, row, _ = to_csc(data, device="cpu")
    weight = torch.rand(row.numel(), generator=torch.Generator().manual_seed(0))
    for kwargs in ({}, {"weight": weight}):
        out = sample_neighbors(colptr, row, torch.arange(0, 300, 3), [5, 4], **kwargs)
        _assert_real_edges(colptr, row, out)
        pairs = out.col * row.numel() + out.edge
        assert pairs.unique().numel() == pairs.numel()


# --------------------------------------------------------------------------- temporal, disjoint, induced
def test_temporal_never_returns_a_later_neighbour() -> None:
    data = _random_graph(120, 2000, seed=7)
    colptr, row, _ = to_csc(data, device="cpu")
    time = torch.randint(0, 50, (120,))
    seeds = torch.arange(0, 120, 4)
    seed_time = torch.randint(10, 40, (seeds.numel(),))
    for strategy in ("uniform", "last"):
        out = sample_neighbors(colptr, row, seeds, [3, 3], time=time, seed_time=seed_time,
                               temporal_strategy=strategy)
        _assert_real_edges(colptr, row, out)
        assert out.batch is not None and torch.equal(out.node[:seeds.numel()], seeds)
        assert bool((time[out.node[out.row]] <= seed_time[out.batch[out.row]]).all())
        assert torch.equal(out.batch[out.row], out.batch[out.col])  # edges stay inside their seed's tree


def test_temporal_last_takes_the_most_recent_eligible_neighbours() -> None:
    rowptr, col = _csr([[1, 2, 3, 4, 5], [], [], [], [], []])
    time = torch.tensor([9, 1, 5, 8, 3, 7])
    out = sample_neighbors(rowptr, col, torch.tensor([0]), [2], time=time, seed_time=torch.tensor([7]),
                           temporal_strategy="last")
    assert sorted(out.node[1:].tolist()) == [2, 5]  # times 5 and 7; 8 is later than the seed


def test_temporal_uniform_is_uniform_over_eligible_neighbours() -> None:
    rowptr, col = _csr([[1, 2, 3, 4, 5], [], [], [], [], []])
    time = torch.tensor([0, 1, 9, 2, 3, 9])
    torch.manual_seed(8)
    counts = _subset_counts(rowptr, col, 0, 2, 12_000, time=time, seed_time=torch.full((12_000,), 5))
    expected = {s: 1 / math.comb(3, 2) for s in itertools.combinations([0, 2, 3], 2)}
    assert _chi_square_p(counts, expected, 12_000) > P_MIN


def test_induced_subgraph_holds_every_edge_among_sampled_nodes() -> None:
    data = _random_graph(60, 400, seed=9)
    colptr, row, _ = to_csc(data, device="cpu")
    torch.manual_seed(0)
    out = sample_neighbors(colptr, row, torch.tensor([1, 2]), [2, 2], directed=False)
    _assert_real_edges(colptr, row, out)
    inside = torch.isin(data.edge_index, out.node).all(dim=0)
    assert out.edge.numel() == int(inside.sum()) and out.num_sampled_edges is None


def test_disjoint_gives_each_seed_its_own_tree() -> None:
    rowptr, col = _csr([[1], [0], [0, 1]])
    out = sample_neighbors(rowptr, col, torch.tensor([0, 2]), [-1, -1], disjoint=True)
    assert out.node.tolist() == [0, 2, 1, 0, 1]
    assert out.batch.tolist() == [0, 1, 0, 1, 1]
    assert torch.equal(out.batch[out.row], out.batch[out.col])


# --------------------------------------------------------------------------- odd inputs
def test_isolated_duplicate_and_empty_seeds_and_int32() -> None:
    rowptr, col = _csr([[1, 2], [0], [0], []])
    out = sample_neighbors(rowptr, col, torch.tensor([3]), [5, 5])
    assert out.node.tolist() == [3] and out.edge.numel() == 0 and out.num_sampled_nodes == [1, 0, 0]
    out = sample_neighbors(rowptr, col, torch.tensor([0, 0, 3]), [-1])
    assert out.node.tolist() == [0, 0, 3, 1, 2]
    assert out.col.tolist() == [0, 0, 1, 1]  # each copy of seed 0 samples its own neighbours
    assert out.row.tolist() == [3, 4, 3, 4]
    out = sample_neighbors(rowptr, col, torch.empty(0, dtype=torch.long), [2, 2])
    assert out.node.numel() == 0 and out.num_sampled_nodes == [0, 0, 0] and out.num_sampled_edges == [0, 0]
    out32 = sample_neighbors(rowptr.int(), col.int(), torch.tensor([0, 1], dtype=torch.int32), [-1])
    assert out32.node.dtype == torch.long and out32.node.tolist() == [0, 1, 2]


def test_sampling_graph_can_be_reused_and_is_reproducible_with_a_generator() -> None:
    data = _random_graph(100, 900, seed=10)
    colptr, row, _ = to_csc(data, device="cpu")
    graph = SamplingGraph(colptr, row)
    a = graph.sample(torch.arange(10), [3, 3], generator=torch.Generator().manual_seed(0))
    b = graph.sample(torch.arange(10), [3, 3], generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.node, b.node) and torch.equal(a.edge, b.edge)
    local, first_seen = graph._scratch()
    assert bool((local == -1).all()) and bool((first_seen == torch.iinfo(torch.long).max).all())  # clean scratch


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_neighbors": []}, ValueError, "num_neighbors is empty"),
        ({"num_neighbors": [3, -2]}, ValueError, r"num_neighbors\[1\] = -2"),
        ({"num_neighbors": 3}, TypeError, "list of fan-outs"),
        ({"seeds": torch.tensor([0, 4])}, ValueError, "every seed must be in"),
        ({"seeds": torch.tensor([-1])}, ValueError, "every seed must be in"),
        ({"seeds": torch.tensor([0.5])}, TypeError, "integer ids"),
        ({"weight": torch.ones(2)}, ValueError, "one weight per edge"),
        ({"weight": torch.tensor([1.0, -1.0, 1.0])}, ValueError, "non-negative"),
        ({"weight": torch.tensor([1.0, float("nan"), 1.0])}, ValueError, "non-negative"),
        ({"time": torch.zeros(2)}, ValueError, "node timestamps"),
        ({"seed_time": torch.zeros(1)}, ValueError, "no node time"),
        ({"temporal_strategy": "recent"}, ValueError, "temporal_strategy"),
        ({"col": torch.tensor([0, 1, 9])}, ValueError, r"every neighbour id must be in \[0, N\)"),
        ({"rowptr": torch.tensor([0, 2, 1, 3, 3])}, ValueError, "non-decreasing"),
        ({"rowptr": torch.tensor([0, 1, 2])}, ValueError, "end at len"),
        ({"directed": False, "disjoint": True}, ValueError, "induced subgraph"),
    ],
)
def test_bad_input_is_named(kwargs, error, match) -> None:
    args = {"rowptr": torch.tensor([0, 1, 2, 3, 3]), "col": torch.tensor([1, 2, 0]), "seeds": torch.tensor([0]),
            "num_neighbors": [2]}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        sample_neighbors(args.pop("rowptr"), args.pop("col"), args.pop("seeds"), args.pop("num_neighbors"), **args)


# --------------------------------------------------------------------------- PyG adapter and loaders
def _check_batch(data: Data, batch, seeds: Tensor) -> None:
    """A batch as NeighborLoader documents it: seeds first, features gathered by n_id, e_id the original edges."""
    assert batch.batch_size == seeds.numel() and torch.equal(batch.n_id[:batch.batch_size], seeds)
    assert torch.equal(batch.x, data.x[batch.n_id]) and torch.equal(batch.y, data.y[batch.n_id])
    assert torch.equal(data.edge_index[:, batch.e_id], batch.n_id[batch.edge_index])
    assert sum(batch.num_sampled_nodes) == batch.num_nodes
    assert sum(batch.num_sampled_edges) == batch.edge_index.size(1)


def test_node_loader_with_graphlab_sampler_yields_neighbor_loader_batches() -> None:
    data = _random_graph(80, 500, seed=11)
    loader = NodeLoader(data, node_sampler=GraphlabNeighborSampler(data, [4, 3]), input_nodes=torch.arange(30),
                        batch_size=8)
    batches = list(loader)
    assert len(batches) == 4
    for i, batch in enumerate(batches):
        _check_batch(data, batch, torch.arange(30)[8 * i:8 * (i + 1)])


def test_feature_store_graph_store_pair() -> None:
    data = _random_graph(50, 300, seed=12)
    feature_store, graph_store = MyFeatureStore(), MyGraphStore()
    feature_store.put_tensor(data.x, group_name=None, attr_name="x", index=None)
    feature_store.put_tensor(data.y, group_name=None, attr_name="y", index=None)
    graph_store.put_edge_index(data.edge_index, edge_type=None, layout="coo", size=(50, 50))
    sampler = GraphlabNeighborSampler((feature_store, graph_store), [-1])
    loader = NodeLoader((feature_store, graph_store), node_sampler=sampler, input_nodes=torch.arange(10),
                        batch_size=5)
    for i, batch in enumerate(loader):
        seeds = torch.arange(5 * i, 5 * (i + 1))
        assert torch.equal(batch.n_id[:5], seeds) and torch.equal(batch.x, data.x[batch.n_id])
        edges = set(map(tuple, batch.n_id[batch.edge_index].t().tolist()))
        expected = {tuple(e) for e in data.edge_index.t().tolist() if e[1] in seeds.tolist()}
        assert edges == expected  # fan-out -1: every in-edge of the seeds


def test_link_loader_samples_around_both_endpoints() -> None:
    data = _random_graph(60, 400, seed=13)
    sampler = GraphlabNeighborSampler(data, [3])
    loader = LinkNeighborLoader(data, [3], edge_label_index=data.edge_index[:, :20], batch_size=10,
                                neighbor_sampler=sampler)
    for batch in loader:
        assert torch.equal(data.edge_index[:, batch.e_id], batch.n_id[batch.edge_index])
        assert batch.edge_label_index.size(1) == 10


def test_bidirectional_adds_reverse_edges() -> None:
    data = _random_graph(40, 200, seed=14)
    out = GraphlabNeighborSampler(data, [3, 2], subgraph_type="bidirectional").sample_from_nodes(
        _node_input(torch.arange(4)))
    pairs = set(zip(out.row.tolist(), out.col.tolist()))
    assert all((c, r) in pairs for r, c in pairs)


def _node_input(seeds: Tensor):
    from torch_geometric.sampler import NodeSamplerInput

    return NodeSamplerInput(input_id=torch.arange(seeds.numel()), node=seeds)


@pytest.mark.parametrize("model_cls, hops", [(GraphSAGE, 2), (GIN, 2), (GCN, 3)])
def test_full_fanout_batches_reproduce_full_graph_inference(model_cls, hops) -> None:
    """Fan-out -1 with as many hops as layers gives the seeds their full-graph output (GCN needs one more hop:
    its normalisation reads the degree of the outermost sources too)."""
    data = _random_graph(70, 400, seed=15)
    torch.manual_seed(0)
    model = model_cls(5, 3, hidden_channels=8, num_layers=2, pool=None).eval()
    with torch.no_grad():
        full = model(data.x, data.edge_index)
        loader = NodeLoader(data, node_sampler=GraphlabNeighborSampler(data, [-1] * hops),
                            input_nodes=torch.arange(70), batch_size=16)
        for batch in loader:
            out = model(batch.x, batch.edge_index)[:batch.batch_size]
            torch.testing.assert_close(out, full[batch.n_id[:batch.batch_size]], atol=1e-5, rtol=1e-5)


def test_neighbor_loader_backends(monkeypatch) -> None:
    data = _random_graph(30, 100, seed=16)
    if not pyg_sampler_available():
        loader = neighbor_loader(data, [2, 2], input_nodes=torch.arange(6), batch_size=3)
        assert isinstance(loader.node_sampler, GraphlabNeighborSampler)
        _check_batch(data, next(iter(loader)), torch.arange(3))
        with pytest.raises(ImportError, match="backend='pyg' needs pyg-lib or torch-sparse"):
            neighbor_loader(data, [2], backend="pyg")
    import torch_geometric.typing as pyg_typing

    monkeypatch.setattr(pyg_typing, "WITH_PYG_LIB", True)  # "auto" prefers PyG's sampler when pyg-lib is there
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader = neighbor_loader(data, [2], batch_size=3)
    assert type(loader.node_sampler).__name__ == "NeighborSampler"
    loader = neighbor_loader(data, [2], batch_size=3, backend="graphlab")
    assert isinstance(loader.node_sampler, GraphlabNeighborSampler)
    with pytest.raises(ValueError, match="backend must be"):
        neighbor_loader(data, [2], backend="fast")


def test_adapter_rejects_what_it_cannot_sample() -> None:
    data = _random_graph(10, 20)
    with pytest.raises(ValueError, match="subgraph_type"):
        GraphlabNeighborSampler(data, [2], subgraph_type="full")
    with pytest.raises(ValueError, match="weight_attr='w' is not an edge attribute"):
        GraphlabNeighborSampler(data, [2], weight_attr="w")
    with pytest.raises(TypeError, match="homogeneous torch_geometric Data"):
        GraphlabNeighborSampler({"x": 1}, [2])
