"""NCN/NCNC models: the parameter-free encoders against dense matrices, jumping knowledge, the optimiser groups,
the decode contract and argument errors."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from graphlab.models import NCN, NCNC, NCNEncoder
from graphlab.models.ncn import LinearAggrConv, PureConv


def _graph(n: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    upper = (torch.rand(n, n, generator=g) < 0.4).triu(1)
    dense = (upper | upper.T).float()
    return dense, dense.nonzero().T.contiguous()


def test_puregcn_is_symmetric_normalised_adjacency_with_self_loops():
    dense, edge_index = _graph()
    x = torch.randn(10, 4)
    a_hat = dense + torch.eye(10)
    d = a_hat.sum(1).rsqrt()
    torch.testing.assert_close(PureConv("gcn")(x, edge_index), d[:, None] * a_hat * d[None, :] @ x)
    w = torch.rand(edge_index.size(1)) + 0.5
    weighted = torch.zeros(10, 10)
    weighted[edge_index[1], edge_index[0]] = w
    a_hat = weighted + torch.eye(10)
    d = a_hat.sum(1).rsqrt()
    torch.testing.assert_close(PureConv("gcn")(x, edge_index, w), d[:, None] * a_hat * d[None, :] @ x)
    torch.testing.assert_close(PureConv("sum")(x, edge_index), dense @ x)


@pytest.mark.parametrize("aggr", ["mean", "sum"])
def test_official_sage_gin_layers(aggr):
    dense, edge_index = _graph(seed=1)
    conv = LinearAggrConv(4, 3, aggr)
    torch.nn.init.normal_(conv.bias)
    x = torch.randn(10, 4)
    agg = dense @ conv.lin(x)
    if aggr == "mean":
        agg = agg / dense.sum(1, keepdim=True).clamp(min=1)
    torch.testing.assert_close(conv(x, edge_index), agg + conv.bias)


def test_encoder_jumping_knowledge_and_tail():
    dense, edge_index = _graph(seed=2)
    enc = NCNEncoder(5, 6, num_layers=2, conv="puregcn", jk=True).eval()
    x = torch.randn(10, 5)
    a_hat = dense + torch.eye(10)
    d = a_hat.sum(1).rsqrt()
    prop = d[:, None] * a_hat * d[None, :]
    h0 = enc.xemb(x)
    expected = enc.jk_weights[0] * (prop @ h0) + enc.jk_weights[1] * (prop @ prop @ h0)
    torch.testing.assert_close(enc(x, edge_index), expected)


def test_embedding_encoder_and_errors():
    enc = NCNEncoder(1, 8, conv="puresum", use_embedding=True, num_nodes=10, residual=True).eval()
    dense, edge_index = _graph()
    emb = enc.embedding.weight
    torch.testing.assert_close(enc(torch.ones(10, 1), edge_index), dense @ emb + emb)
    with pytest.raises(ValueError, match="embedding table has 10"):
        enc(torch.ones(11, 1), edge_index)
    with pytest.raises(ValueError, match="give num_nodes"):
        NCNEncoder(1, 8, use_embedding=True)
    with pytest.raises(ValueError, match="conv must be one of"):
        NCNEncoder(1, 8, conv="gat")


@pytest.mark.parametrize("cls", [NCN, NCNC])
def test_param_groups_and_decode_contract(cls):
    model = cls(5, 8, use_xlin=True, gnn_lr=0.1, predictor_lr=0.2).eval()
    groups = model.optimizer_param_groups(0.0)
    assert [g["lr"] for g in groups] == [0.1, 0.2]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    dense, edge_index = _graph()
    x = torch.randn(10, 5)
    z = model.encode(x, edge_index)
    pairs = torch.tensor([[0, 1, 2], [3, 4, 2]])
    out = model.decode(z, pairs, graph=Data(edge_index=edge_index, num_nodes=10))
    assert out.shape == (3,)
    torch.testing.assert_close(out, model(x, edge_index, pairs))
    with pytest.raises(ValueError, match="pass graph="):
        model.decode(z, pairs)


def test_encoder_input_map_is_dropout_then_linear_in_distribution():
    """The input map Drop(xdp) -> Linear runs on the non-zeros of sparse features (DropoutLinear); its outputs must
    have the mean and variance of the dense formula  b + (x * m / (1 - p)) W^T,  m ~ Bernoulli(1 - p)."""
    from graphlab.nn.sparse_input import DropoutLinear

    torch.manual_seed(0)
    p, draws = 0.7, 4000
    x = torch.rand(6, 40, dtype=torch.float64) * (torch.rand(6, 40, dtype=torch.float64) < 0.08)
    x[:, 0] = 1.0  # every row has a non-zero
    enc = NCNEncoder(40, 4, num_layers=1, conv="puregcn", xdropout=p, dropout=0.0).double()
    lin = enc.xemb[1]
    assert isinstance(lin, DropoutLinear) and "xemb.1.weight" in enc.state_dict()  # checkpoint keys unchanged
    torch.testing.assert_close(enc.eval().xemb(x), x @ lin.weight.t() + lin.bias)
    enc.train()
    with torch.no_grad():
        samples = torch.stack([enc.xemb(x) for _ in range(draws)])
    mean = x @ lin.weight.t() + lin.bias
    var = (x ** 2) @ (lin.weight.t() ** 2) * p / (1 - p)
    standard_error = (var / draws).sqrt()
    assert bool(((samples.mean(0) - mean).abs() <= 5 * standard_error).all())
    torch.testing.assert_close(samples.var(0), var, rtol=0.15, atol=1e-9)
