"""2nd-minimum models: equal to their equations, set-permutation invariant with sum/max, work with every
aggregation (PyG's and graphlab's), clear errors; GIN with a pluggable aggregation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn.aggr import GRUAggregation, MaxAggregation, SumAggregation
from torch_geometric.utils import to_undirected

from graphlab.data.multiset import int_to_bits
from graphlab.models import GIN, MultisetModel, NeighbourhoodModel
from graphlab.models.multiset import BitEmbedding
from graphlab.nn.aggr import LCMAggregation, RecurrentAggregation

pytestmark = pytest.mark.usefixtures("one_thread")

D = 16


def _aggregations() -> dict[str, object]:
    return {
        "sum": lambda: SumAggregation(),
        "max": lambda: MaxAggregation(),
        "pyg-gru": lambda: GRUAggregation(D, D),
        "lcm": lambda: LCMAggregation(D, D, project=False),
        "recurrent": lambda: RecurrentAggregation(D, D),
    }


def _sets(sizes=(3, 1, 5, 2), seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    values = torch.randint(0, 256, (sum(sizes),), generator=g)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return int_to_bits(values, 8), batch


def test_bit_embedding_is_a_sum_of_per_position_embeddings():
    emb = BitEmbedding(8, 4)
    bits = int_to_bits(torch.tensor([0, 5, 255]), 8)
    expected = torch.stack([sum(emb.table.weight[2 * k + int(b[k])] for k in range(8)) for b in bits])
    torch.testing.assert_close(emb(bits), expected)


def test_multiset_model_equals_its_equation_with_sum():
    model = MultisetModel(8, 8, SumAggregation(), hidden_channels=D).eval()
    x, batch = _sets()
    h = F.gelu(model.encoder(model.embed(x)))
    z = torch.zeros(4, D).index_add_(0, batch, h)
    expected = model.decoder[3](F.gelu(model.decoder[0](z)))
    torch.testing.assert_close(model(x, None, batch=batch), expected)


@pytest.mark.parametrize("name", ["sum", "max"])
def test_multiset_model_is_invariant_to_order_within_sets(name):
    model = MultisetModel(8, 8, _aggregations()[name](), hidden_channels=D).eval()
    x, batch = _sets()
    # shuffle inside every set (the batch vector stays sorted)
    g = torch.Generator().manual_seed(3)
    perm = torch.cat([torch.nonzero(batch == s).view(-1)[torch.randperm(int((batch == s).sum()), generator=g)]
                      for s in range(4)])
    torch.testing.assert_close(model(x[perm], None, batch=batch), model(x, None, batch=batch))


@pytest.mark.parametrize("name", list(_aggregations()))
def test_multiset_model_runs_and_trains_with_each_aggregation(name):
    model = MultisetModel(8, 8, _aggregations()[name](), hidden_channels=D)
    x, batch = _sets()
    out = model(x, None, batch=batch)
    assert out.shape == (4, 8)
    out.sum().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith("embed"))
    model.eval()
    single = model(x[batch == 2], None)  # one set, no batch vector
    torch.testing.assert_close(single, model(x, None, batch=batch)[2:3], rtol=1e-5, atol=1e-5)


def test_neighbourhood_model_aggregates_in_neighbours_only():
    model = NeighbourhoodModel(8, 8, SumAggregation(), hidden_channels=D).eval()
    g = torch.Generator().manual_seed(0)
    x = int_to_bits(torch.randint(0, 256, (10,), generator=g), 8)
    edge_index = torch.randint(0, 10, (2, 30), generator=g)  # unsorted on purpose
    h = F.gelu(model.encoder(model.embed(x)))
    z = torch.zeros(10, D).index_add_(0, edge_index[1], h[edge_index[0]])
    expected = model.decoder[3](F.gelu(model.decoder[0](z)))
    torch.testing.assert_close(model(x, edge_index), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["max", "lcm", "recurrent"])
def test_neighbourhood_model_sorts_unsorted_edges(name):
    """Shuffling the edge list gives the same output as the target-sorted list (sort is stable, so the order
    within a neighbourhood is kept when the sorted list is shuffled only across neighbourhoods)."""
    model = NeighbourhoodModel(8, 8, _aggregations()[name](), hidden_channels=D).eval()
    g = torch.Generator().manual_seed(0)
    x = int_to_bits(torch.randint(0, 256, (12,), generator=g), 8)
    edge_index = torch.randint(0, 12, (2, 40), generator=g)
    edge_index = edge_index[:, torch.sort(edge_index[1], stable=True).indices]
    # move whole neighbourhoods around: sort by a random key per target, keeping the order inside each
    key = torch.randperm(12, generator=g)[edge_index[1]]
    shuffled = edge_index[:, torch.sort(key, stable=True).indices]
    torch.testing.assert_close(model(x, shuffled), model(x, edge_index), rtol=1e-5, atol=1e-5)


def test_aggregation_width_mismatch_is_named():
    model = MultisetModel(8, 8, LCMAggregation(D, 8), hidden_channels=D)
    x, batch = _sets()
    with pytest.raises(ValueError, match="out_channels.*16"):
        model(x, None, batch=batch)


def test_bad_arguments():
    with pytest.raises(TypeError, match="Aggregation"):
        MultisetModel(8, 8, torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"bits of shape \[N, 8\]"):
        MultisetModel(8, 8, SumAggregation(), hidden_channels=D)(torch.zeros(3, 5, dtype=torch.long), None)
    with pytest.raises(ValueError, match="dropout"):
        NeighbourhoodModel(8, 8, SumAggregation(), dropout=1.5)


# --------------------------------------------------------------------------- GIN with a pluggable aggregation
def _graph(num_nodes: int = 20, num_edges: int = 50, features: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    edge_index = to_undirected(torch.randint(0, num_nodes, (2, num_edges), generator=g), num_nodes=num_nodes)
    return torch.randn(num_nodes, features, generator=g), edge_index


def test_gin_with_sum_aggregation_module_equals_default():
    x, edge_index = _graph()
    torch.manual_seed(0)
    default = GIN(5, 2, hidden_channels=8, num_layers=2, dropout=0.0).eval()
    torch.manual_seed(0)
    custom = GIN(5, 2, hidden_channels=8, num_layers=2, dropout=0.0, aggr=SumAggregation()).eval()
    custom.load_state_dict(default.state_dict())
    perm = torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(custom(x, edge_index[:, perm]), default(x, edge_index), rtol=1e-5, atol=1e-5)


def test_gin_lcm_layers_are_independent_copies_and_report_aux_losses():
    x, edge_index = _graph()
    model = GIN(5, 2, hidden_channels=8, num_layers=3, dropout=0.0, aggr=LCMAggregation(8, 8, project=False))
    aggrs = [conv.aggr_module for conv in model.convs]
    assert len({id(a) for a in aggrs}) == 3
    assert not torch.equal(aggrs[0].g.weight_ih, aggrs[1].g.weight_ih)
    model(x, edge_index[:, torch.randperm(edge_index.size(1))]).sum().backward()  # unsorted edges are sorted
    assert all(set(a.auxiliary_losses()) == {"associativity"} for a in aggrs)


def test_gine_with_aggregation_permutes_edge_features_with_edges():
    g = torch.Generator().manual_seed(0)
    x, edge_index = _graph()
    edge_attr = torch.randn(edge_index.size(1), 3, generator=g)
    model = GIN(5, 2, hidden_channels=8, num_layers=2, dropout=0.0, edge_encoder="linear", edge_dim=3,
                aggr=MaxAggregation()).eval()
    perm = torch.randperm(edge_index.size(1), generator=g)
    torch.testing.assert_close(model(x, edge_index[:, perm], edge_attr=edge_attr[perm]),
                               model(x, edge_index, edge_attr=edge_attr), rtol=1e-5, atol=1e-5)


def test_gin_rejects_a_non_aggregation():
    with pytest.raises(TypeError, match="Aggregation"):
        GIN(5, 2, aggr=torch.nn.Linear(2, 2))
