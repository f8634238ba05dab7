"""Baseline models: equal to the same stack of PyG layers, permutation equivariant/invariant, clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv as PyGGCNConv
from torch_geometric.nn import SAGEConv as PyGSAGEConv
from torch_geometric.nn import global_add_pool
from torch_geometric.utils import to_undirected

from graphlab.models import GCN, GIN, GraphSAGE, LinkGNN


def _graph(num_nodes: int = 30, num_edges: int = 90, features: int = 7, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    edge_index = to_undirected(torch.randint(0, num_nodes, (2, num_edges), generator=g), num_nodes=num_nodes)
    return torch.randn(num_nodes, features, generator=g), edge_index


def _permute(x, edge_index, batch=None, seed: int = 1):
    perm = torch.randperm(x.size(0), generator=torch.Generator().manual_seed(seed))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    out = (x[perm], inverse[edge_index])
    return (*out, batch[perm]) if batch is not None else out + (None,), perm


def test_gcn_equals_stack_of_pyg_gcnconv():
    x, edge_index = _graph()
    model = GCN(7, 3, hidden_channels=16, num_layers=3, dropout=0.0).eval()
    ref = [PyGGCNConv(a, b) for a, b in [(7, 16), (16, 16), (16, 3)]]
    for ours, theirs in zip(model.convs, ref):
        theirs.load_state_dict(ours.state_dict())
    h = x
    for i, conv in enumerate(ref):
        h = conv(h, edge_index)
        h = F.relu(h) if i < 2 else h
    torch.testing.assert_close(model(x, edge_index), h, rtol=1e-5, atol=1e-5)


def test_sage_equals_stack_of_pyg_sageconv():
    x, edge_index = _graph()
    model = GraphSAGE(7, 4, hidden_channels=8, num_layers=2, dropout=0.0).eval()
    ref = [PyGSAGEConv(7, 8), PyGSAGEConv(8, 4)]
    for ours, theirs in zip(model.convs, ref):
        theirs.load_state_dict(ours.state_dict())
    expected = ref[1](F.relu(ref[0](x, edge_index)), edge_index)
    torch.testing.assert_close(model(x, edge_index), expected, rtol=1e-5, atol=1e-5)


def test_gin_equals_its_equation():
    """h' = MLP((1 + eps) h + sum_{u in N(v)} h_u), then BN, ReLU; sum readout and a linear head."""
    x, edge_index = _graph()
    model = GIN(7, 2, hidden_channels=8, num_layers=2, dropout=0.0, pool="sum").eval()
    h = model.encoder(x)
    for conv, norm in zip(model.convs, model.norms):
        neighbour_sum = torch.zeros_like(h).index_add_(0, edge_index[1], h[edge_index[0]])
        h = F.relu(norm(conv.nn((1 + conv.eps) * h + neighbour_sum)))
    expected = model.readout.head(global_add_pool(h, torch.zeros(x.size(0), dtype=torch.long)))
    torch.testing.assert_close(model(x, edge_index), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [GCN, GraphSAGE])
def test_node_models_are_permutation_equivariant(cls):
    x, edge_index = _graph()
    model = cls(7, 3, hidden_channels=8, dropout=0.0).eval()
    (xp, eip, _), perm = _permute(x, edge_index)
    torch.testing.assert_close(model(xp, eip), model(x, edge_index)[perm], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pool", ["sum", "mean", "max"])
def test_graph_models_are_permutation_invariant(pool):
    x, edge_index = _graph()
    batch = (torch.arange(30) >= 17).long()  # two graphs in one batch
    keep = batch[edge_index[0]] == batch[edge_index[1]]
    edge_index = edge_index[:, keep]
    model = GIN(7, 2, hidden_channels=8, num_layers=3, dropout=0.0, pool=pool).eval()
    (xp, eip, bp), _ = _permute(x, edge_index, batch)
    torch.testing.assert_close(model(xp, eip, batch=bp), model(x, edge_index, batch=batch), rtol=1e-5, atol=1e-5)


def test_gin_on_ogb_molecules_uses_atom_and_bond_encoders():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (12, 9), generator=g)  # within every atom vocabulary
    edge_index = to_undirected(torch.randint(0, 12, (2, 20), generator=g))
    edge_attr = torch.randint(0, 2, (edge_index.size(1), 3), generator=g)
    model = GIN(9, 1, hidden_channels=16, num_layers=2, node_encoder="atom", edge_encoder="bond")
    out = model(x, edge_index, edge_attr=edge_attr, batch=torch.zeros(12, dtype=torch.long))
    assert out.shape == (1, 1)
    out.sum().backward()
    assert model.edge_encoders[0].bond_embedding_list[0].weight.grad is not None
    with pytest.raises(ValueError, match="edge_attr"):
        model(x, edge_index)


def _pyg_gcn_embeddings(model: LinkGNN, x, edge_index):
    """The encoder's node embeddings recomputed with PyG's GCNConv and the model's weights."""
    h = x
    convs = model.encoder.convs
    for i, ours in enumerate(convs):
        theirs = PyGGCNConv(ours.in_channels, ours.out_channels)
        theirs.load_state_dict(ours.state_dict())
        h = theirs(h, edge_index)
        h = F.relu(h) if i < len(convs) - 1 else h
    return h.detach()


def test_link_gnn_dot_decoder_scores_each_pair_by_an_inner_product():
    x, edge_index = _graph()
    pairs = torch.tensor([[0, 1, 2, 7], [3, 4, 5, 7]])
    model = LinkGNN(7, hidden_channels=8, decoder="dot").eval()
    z = _pyg_gcn_embeddings(model, x, edge_index)
    expected = torch.tensor([sum(float(z[u, k] * z[v, k]) for k in range(8)) for u, v in pairs.t().tolist()])
    scores = model(x, edge_index, pairs)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model(x, edge_index, pairs.flip(0)), scores)


def test_link_gnn_mlp_decoder_scores_the_hadamard_product():
    """s(u, v) = w2 . relu(W1 (z_u * z_v) + b1) + b2, written out per pair."""
    x, edge_index = _graph()
    pairs = torch.tensor([[0, 6, 9], [2, 4, 1]])
    model = LinkGNN(7, hidden_channels=4, decoder="mlp").eval()
    z = _pyg_gcn_embeddings(model, x, edge_index)
    first, last = (layer.requires_grad_(False) for layer in (model.decoder[0], model.decoder[3]))
    expected = []
    for u, v in pairs.t().tolist():
        h = [float(z[u, k] * z[v, k]) for k in range(4)]
        hidden = [max(0.0, sum(float(first.weight[j, k]) * h[k] for k in range(4)) + float(first.bias[j]))
                  for j in range(4)]
        expected.append(sum(float(last.weight[0, j]) * hidden[j] for j in range(4)) + float(last.bias[0]))
    torch.testing.assert_close(model(x, edge_index, pairs), torch.tensor(expected), rtol=1e-5, atol=1e-5)


def test_keyword_only_graph_arguments():
    x, edge_index = _graph()
    weight = torch.rand(edge_index.size(1))
    with pytest.raises(TypeError, match="positional"):
        GCN(7, 3)(x, edge_index, weight)
    with pytest.raises(TypeError, match="positional"):
        GIN(7, 3)(x, edge_index, None, torch.zeros(30, dtype=torch.long))


def test_gcn_model_casts_edge_weights_to_the_feature_dtype():
    x, edge_index = _graph()
    weight = torch.rand(edge_index.size(1), dtype=torch.float64)
    model = GCN(7, 3, hidden_channels=8, dropout=0.0).eval()
    out = model(x, edge_index, edge_weight=weight)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, model(x, edge_index, edge_weight=weight.float()))


@pytest.mark.parametrize("build, match", [
    (lambda: GCN(3, 2, num_layers=0), "num_layers"),
    (lambda: GIN(3, 2, edge_encoder="linear"), "edge_dim"),
    (lambda: LinkGNN(3, out_channels=2), "out_channels must be 1"),
    (lambda: GCN(3, 2, pool="median"), "pool"),
])
def test_bad_arguments_fail_clearly(build, match):
    with pytest.raises(ValueError, match=match):
        build()
