"""GatedGCN, Graph-Mamba and GMN: references, node-order bookkeeping, symmetries, batching, gradients, errors."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.utils import erdos_renyi_graph

from graphlab.models import GMN, GraphMamba
from graphlab.nn import GatedGCNConv, GMNLayer, GraphMambaLayer, Mamba
from graphlab.nn.mamba_graph import gated_gcn_reference, sequence_mixing
from graphlab.transforms import (
    NeighbourhoodTokens,
    degree_sequences,
    neighbourhood_tokens,
    out_degree,
    token_subgraphs,
)


def _graphs(sizes=(6, 9, 4), p=0.35, seed=0):
    torch.manual_seed(seed)
    edges, batch, offset = [], [], 0
    for g, n in enumerate(sizes):
        edges.append(erdos_renyi_graph(n, p) + offset)
        batch += [g] * n
        offset += n
    return torch.cat(edges, 1), torch.tensor(batch), offset


def _distinct_out_degree_graph(n=7):
    """Directed graph where node i points to nodes 0..i-1: out-degree i, all distinct."""
    src = [i for i in range(1, n) for _ in range(i)]
    dst = [j for i in range(1, n) for j in range(i)]
    return torch.tensor([src, dst])


def _permute(perm, x, edge_index, *rest):
    """Relabel node perm[i] as i: x[perm], edges mapped through the inverse."""
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    return (x[perm], inv[edge_index], *rest)


# --------------------------------------------------------------------------- GatedGCN
@pytest.mark.parametrize("with_edges", [False, True])
def test_gated_gcn_matches_edgewise_reference_values_and_grads(with_edges):
    ei, _, n = _graphs()
    conv = GatedGCNConv(5).double()
    h = torch.randn(n, 5, dtype=torch.float64, requires_grad=True)
    e = torch.randn(ei.size(1), 5, dtype=torch.float64, requires_grad=True) if with_edges else None
    out, e_hat = conv.aggregate(h, ei, e)
    ref, e_ref = gated_gcn_reference(h, ei, conv.A, conv.B, conv.C, conv.D, conv.E, e)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(e_hat, e_ref)
    w = torch.randn_like(out)
    grads = torch.autograd.grad((out * w).sum() + e_hat.sum(), [h, conv.B.weight, conv.D.weight])
    grads_ref = torch.autograd.grad((ref * w).sum() + e_ref.sum(), [h, conv.B.weight, conv.D.weight])
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b)


def test_gated_gcn_gradcheck_and_edge_shape_error():
    ei = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])
    conv = GatedGCNConv(3, batch_norm=False).double()
    h = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: conv.aggregate(t, ei)[0], (h,))
    with pytest.raises(ValueError, match="edge_attr must be"):
        conv(h, ei, torch.randn(4, 2, dtype=torch.float64))


# --------------------------------------------------------------------------- node sequences
def test_sequence_mixing_equals_per_sequence_runs_in_node_order():
    ei, batch, n = _graphs()
    block = Mamba(4, d_state=4, expand=1).double()
    h = torch.randn(n, 4, dtype=torch.float64)
    ordering = degree_sequences(out_degree(ei, n), batch, num_buckets=2, generator=torch.Generator().manual_seed(0))
    out = sequence_mixing(block, h, tuple(ordering))
    expected = torch.zeros_like(h)
    for s in range(ordering.num_sequences):  # the reference: one unpadded run per sequence, by hand
        nodes = ordering.perm[ordering.sequence == s]
        if nodes.numel():
            expected[nodes] = block(h[nodes][None])[0]
    torch.testing.assert_close(out, expected)


def test_eval_averaging_restores_node_order_against_a_manual_permutation():
    ei, batch, n = _graphs()
    layer = GraphMambaLayer(4, d_state=4).double().eval()
    h = torch.randn(n, 4, dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    orderings = [tuple(degree_sequences(out_degree(ei, n), batch, generator=gen)) for _ in range(3)]
    averaged = layer.global_mixing(h, orderings)
    singles = [layer.global_mixing(h, [o]) for o in orderings]
    torch.testing.assert_close(averaged, torch.stack(singles).mean(0))
    # relabel the nodes so that ordering 0 is the identity: the Mamba then runs on the plain node order
    perm, seq, count = orderings[0]
    dense = torch.zeros(count, n, 4, dtype=torch.float64)
    lengths = torch.bincount(seq, minlength=count)
    pos = torch.arange(n) - torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])[seq]
    dense[seq, pos] = h[perm]
    manual = layer.mamba(dense, lengths)[seq, pos]  # outputs at sorted positions
    torch.testing.assert_close(singles[0][perm], manual)


# --------------------------------------------------------------------------- symmetries and batching
def test_graph_mamba_is_equivariant_with_degree_order_and_no_ties():
    ei = _distinct_out_degree_graph(7)
    assert out_degree(ei, 7).unique().numel() == 7
    torch.manual_seed(0)
    model = GraphMamba(3, 2, hidden_channels=8, num_layers=2, d_state=4).double().eval()
    x = torch.randn(7, 3, dtype=torch.float64)
    perm = torch.randperm(7)
    xp, eip = _permute(perm, x, ei)
    torch.testing.assert_close(model(xp, eip), model(x, ei)[perm])


def test_graph_mamba_random_order_is_not_equivariant():
    """The test above can fail: a model whose order ignores degree changes under relabelling."""
    ei = _distinct_out_degree_graph(7)
    torch.manual_seed(0)
    model = GraphMamba(3, 2, hidden_channels=8, num_layers=2, d_state=4, ordering="random",
                       eval_orderings=1).double().eval()
    x = torch.randn(7, 3, dtype=torch.float64)
    perm = torch.randperm(7)
    xp, eip = _permute(perm, x, ei)
    assert not torch.allclose(model(xp, eip), model(x, ei)[perm])


def test_graph_mamba_batch_equals_per_graph_runs():
    ei, batch, n = _graphs()
    torch.manual_seed(1)
    model = GraphMamba(3, 2, hidden_channels=8, num_layers=2, d_state=4, tie_break="index", pool="mean").double()
    model.eval()
    x = torch.randn(n, 3, dtype=torch.float64)
    together = model(x, ei, batch=batch)
    for g in range(3):
        nodes = (batch == g).nonzero().view(-1)
        keep = (batch[ei[0]] == g)
        alone = model(x[nodes], ei[:, keep] - nodes[0], batch=torch.zeros(nodes.numel(), dtype=torch.long))
        torch.testing.assert_close(together[g:g + 1], alone)


def test_graph_mamba_eval_is_deterministic_and_training_orderings_vary():
    ei, batch, n = _graphs()
    model = GraphMamba(3, 2, hidden_channels=8, num_layers=1, d_state=4).double()
    x = torch.randn(n, 3, dtype=torch.float64)
    model.eval()
    torch.testing.assert_close(model(x, ei, batch=batch), model(x, ei, batch=batch))
    model.train()
    torch.manual_seed(0)
    a = model(x, ei, batch=batch)
    b = model(x, ei, batch=batch)
    assert not torch.allclose(a, b)  # one fresh random tie-break per training step


def _relabel_tokens(tokens: NeighbourhoodTokens, perm: torch.Tensor) -> NeighbourhoodTokens:
    """Tokens of the relabelled graph (new node i = old node perm[i]), built row by row as a plain reference."""
    n, k = perm.numel(), tokens.num_tokens
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    rows = []
    for new in range(n):
        for j in range(k):
            row = int(perm[new]) * k + j
            rows.append(sorted(inv[tokens.col[tokens.rowptr[row]:tokens.rowptr[row + 1]]].tolist()))
    rowptr = torch.tensor([0] + [len(r) for r in rows]).cumsum(0)
    return NeighbourhoodTokens(rowptr, torch.tensor([c for r in rows for c in r]), tokens.hops, k)


@pytest.mark.parametrize("local_encoder, readout, token_encoder", [
    ("gatedgcn", "last", "graph"), ("gin", "mean", "graph"), ("none", "last", "graph"),
    ("gatedgcn", "mean", "subgraph"), ("gin", "last", "subgraph")])
def test_gmn_with_fixed_tokens_is_equivariant(local_encoder, readout, token_encoder):
    ei, _, n = _graphs()
    torch.manual_seed(0)
    model = GMN(3, 2, hidden_channels=8, num_layers=2, walk_length=2, num_walks=3, repeats=2, d_state=4,
                local_encoder=local_encoder, readout=readout, token_encoder=token_encoder).double().eval()
    x = torch.randn(n, 3, dtype=torch.float64)
    tokens = neighbourhood_tokens(ei, n, 2, 3, 2, torch.Generator().manual_seed(4))
    perm = torch.randperm(n)
    xp, eip = _permute(perm, x, ei)
    out = model(xp, eip, tokens=_relabel_tokens(tokens, perm))
    torch.testing.assert_close(out, model(x, ei, tokens=tokens)[perm])


@pytest.mark.parametrize("token_encoder", ["graph", "subgraph"])
def test_gmn_batch_equals_per_graph_runs_with_the_same_tokens(token_encoder):
    ei, batch, n = _graphs()
    torch.manual_seed(0)
    model = GMN(3, 2, hidden_channels=8, num_layers=2, d_state=4, pool="sum",
                token_encoder=token_encoder).double().eval()
    x = torch.randn(n, 3, dtype=torch.float64)
    tokens = neighbourhood_tokens(ei, n, 2, 4, 2, torch.Generator().manual_seed(4))
    together = model(x, ei, batch=batch, tokens=tokens)
    k = tokens.num_tokens
    for g in range(3):
        nodes = (batch == g).nonzero().view(-1)
        lo, hi = int(nodes[0]), int(nodes[-1]) + 1
        keep = batch[ei[0]] == g
        sub = NeighbourhoodTokens(tokens.rowptr[lo * k:hi * k + 1] - tokens.rowptr[lo * k],
                                  tokens.col[tokens.rowptr[lo * k]:tokens.rowptr[hi * k]] - lo, tokens.hops, k)
        alone = model(x[nodes], ei[:, keep] - lo, batch=torch.zeros(hi - lo, dtype=torch.long), tokens=sub)
        torch.testing.assert_close(together[g:g + 1], alone)


def test_gmn_node_token_is_what_the_last_readout_reads():
    """With m = 0 every token is the node itself: GMN then ignores the graph outside its local encoder."""
    ei, _, n = _graphs()
    torch.manual_seed(0)
    model = GMN(3, 2, hidden_channels=8, num_layers=1, walk_length=0, local_encoder="none", d_state=4).double()
    model.eval()
    x = torch.randn(n, 3, dtype=torch.float64)
    empty = torch.empty(2, 0, dtype=torch.long)
    torch.testing.assert_close(model(x, ei), model(x, empty))
    model2 = GMN(3, 2, hidden_channels=8, num_layers=1, walk_length=2, local_encoder="none", d_state=4).double()
    model2.load_state_dict({k: v for k, v in model.state_dict().items() if "hop_embedding" not in k}, strict=False)
    model2.eval()
    assert not torch.allclose(model2(x, ei), model2(x, empty))  # with m = 2 the walks bring in neighbours


def _per_token_reference(layer, x, ei, tokens, edge_attr=None):
    """Token vectors by a loop: cut each token's induced subgraph out explicitly, run the layer's local encoder on
    it alone, pool its members."""
    out = []
    for row in range(tokens.rowptr.numel() - 1):
        members = tokens.col[tokens.rowptr[row]:tokens.rowptr[row + 1]].tolist()
        local = {v: i for i, v in enumerate(members)}
        keep = [e for e in range(ei.size(1)) if int(ei[0, e]) in local and int(ei[1, e]) in local]
        sub_ei = torch.tensor([[local[int(ei[0, e])] for e in keep], [local[int(ei[1, e])] for e in keep]],
                              dtype=torch.long).view(2, -1)
        states, _ = layer.encode(x[members], sub_ei, None if edge_attr is None else edge_attr[keep])
        out.append(states.sum(0) if layer.token_pool == "sum" else states.mean(0))
    k = tokens.num_tokens
    return torch.stack(out).view(x.size(0), k, -1) + layer.hop_embedding(tokens.hops)[None]


@pytest.mark.parametrize("local_encoder, token_pool, edges", [("gin", "sum", False), ("gatedgcn", "mean", False),
                                                              ("gatedgcn", "sum", True)])
def test_gmn_subgraph_tokens_equal_per_token_induced_subgraph_runs(local_encoder, token_pool, edges):
    ei, _, n = _graphs()
    torch.manual_seed(1)
    layer = GMNLayer(6, num_hops=3, d_state=4, local_encoder=local_encoder, token_pool=token_pool,
                     token_encoder="subgraph", edge_states=edges).double().eval()  # eval: BN acts row by row
    x = torch.randn(n, 6, dtype=torch.float64)
    e = torch.randn(ei.size(1), 6, dtype=torch.float64) if edges else None
    tokens = neighbourhood_tokens(ei, n, 2, 3, 1, torch.Generator().manual_seed(2))
    sub = token_subgraphs(tokens, ei, n)
    ours = layer.subgraph_token_sequences(x, tokens.rowptr, tokens.col, tokens.hops, *sub, e)
    torch.testing.assert_close(ours, _per_token_reference(layer, x, ei, tokens, e))


def test_gmn_subgraph_tokens_gradcheck():
    ei, _, n = _graphs(sizes=(5, 4))
    torch.manual_seed(0)
    layer = GMNLayer(3, num_hops=3, d_state=2, local_encoder="gin", token_encoder="subgraph").double()
    tokens = neighbourhood_tokens(ei, n, 2, 2, 1, torch.Generator().manual_seed(0))
    sub = token_subgraphs(tokens, ei, n)
    x = torch.randn(n, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda v: layer(v, ei, tokens.rowptr, tokens.col, tokens.hops, None, *sub)[0], (x,))


def _triangles_and_hexagon():
    """Two triangles and one 6-cycle: both 2-regular, so with equal features every MPNN state is equal, and each
    node's 2-step token {v, v+1, v+2} has 3 nodes in both; it is a triangle in one graph, a path in the other."""
    def cycle(nodes):
        return [(u, v) for i, u in enumerate(nodes) for v in (nodes[(i + 1) % len(nodes)], nodes[i - 1])]
    two_triangles = torch.tensor(cycle([0, 1, 2]) + cycle([3, 4, 5])).t()
    hexagon = torch.tensor(cycle(list(range(6)))).t()
    nxt = {0: [0, 1, 2], 1: [1, 2, 0], 2: [2, 0, 1], 3: [3, 4, 5], 4: [4, 5, 3], 5: [5, 3, 4]}
    rows_t = [sorted(nxt[v]) for v in range(6) for _ in (0,)]
    rows_h = [sorted([v, (v + 1) % 6, (v + 2) % 6]) for v in range(6)]

    def tokens(rows):
        full = [r for v in range(6) for r in (rows[v], [v])]  # K = 2: the 2-step token, then the node itself
        rowptr = torch.tensor([0] + [len(r) for r in full]).cumsum(0)
        return NeighbourhoodTokens(rowptr, torch.tensor([c for r in full for c in r]), torch.tensor([2, 0]), 2)
    return (two_triangles, tokens(rows_t)), (hexagon, tokens(rows_h))


@pytest.mark.parametrize("local_encoder", ["gin"])  # GatedGCN's gated sum is normalised: a mean, blind to degree
def test_subgraph_tokens_tell_a_triangle_from_a_path_graph_tokens_cannot(local_encoder):
    (ei_t, tok_t), (ei_h, tok_h) = _triangles_and_hexagon()
    x = torch.ones(6, 3, dtype=torch.float64)
    batch = torch.zeros(6, dtype=torch.long)
    outputs = {}
    for token_encoder in ("graph", "subgraph"):
        torch.manual_seed(0)
        model = GMN(3, 4, hidden_channels=8, num_layers=2, walk_length=2, repeats=1, d_state=4, pool="sum",
                    local_encoder=local_encoder, token_encoder=token_encoder).double().eval()
        outputs[token_encoder] = (model(x, ei_t, batch=batch, tokens=tok_t), model(x, ei_h, batch=batch, tokens=tok_h))
    torch.testing.assert_close(*outputs["graph"])  # pooled whole-graph states only count the token's nodes
    assert (outputs["subgraph"][0] - outputs["subgraph"][1]).abs().max() > 1e-3


# --------------------------------------------------------------------------- training signals and errors
@pytest.mark.parametrize("make", [
    lambda: GraphMamba(3, 2, hidden_channels=8, num_layers=2, d_state=4, pool="mean", num_buckets=2),
    lambda: GMN(3, 2, hidden_channels=8, num_layers=2, d_state=4, pool="mean", parallel_mpnn=True),
    lambda: GMN(3, 2, hidden_channels=8, num_layers=2, d_state=4, pool="mean", token_encoder="subgraph"),
    lambda: GraphMamba(3, 2, hidden_channels=8, num_layers=2, d_state=4, edge_encoder="linear", edge_dim=2),
])
def test_gradients_reach_every_parameter(make):
    ei, batch, n = _graphs()
    model = make()
    x = torch.randn(n, 3)
    kwargs = {"batch": batch} if model.pool is not None else {"edge_attr": torch.randn(ei.size(1), 2)}
    model(x, ei, **kwargs).square().sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    last = f"layers.{len(model.layers) - 1}.local.bn_edge."  # the last layer's edge-state update feeds nothing
    assert [name for name in missing if not name.startswith(last)] == []


def test_bad_input_errors():
    ei, _, n = _graphs()
    x = torch.randn(n, 3)
    with pytest.raises(ValueError, match="edge_index holds node ids outside"):
        GraphMamba(3, 2, hidden_channels=8, d_state=4)(x[:5], ei)
    with pytest.raises(ValueError, match="x must be"):
        GMN(3, 2, hidden_channels=8, d_state=4)(x[0], ei)
    with pytest.raises(ValueError, match="ordering must be"):
        GraphMamba(3, 2, ordering="eigen")
    with pytest.raises(ValueError, match="but the batch has no `edge_attr`"):
        GraphMamba(3, 2, hidden_channels=8, d_state=4, edge_encoder="linear", edge_dim=2)(x, ei)
    with pytest.raises(ValueError, match="walk_length must be >= 0"):
        GMN(3, 2, walk_length=-1)
    with pytest.raises(ValueError, match="parallel_mpnn needs a local encoder"):
        GMN(3, 2, local_encoder="none", parallel_mpnn=True)
    with pytest.raises(ValueError, match="token_encoder='subgraph' runs the local encoder"):
        GMN(3, 2, local_encoder="none", token_encoder="subgraph")
    with pytest.raises(ValueError, match="token_encoder must be one of"):
        GMN(3, 2, token_encoder="induced")
    with pytest.raises(ValueError, match="needs the tokens' induced subgraphs"):
        sub_layer = GMNLayer(8, num_hops=3, d_state=4, token_encoder="subgraph")
        tok = neighbourhood_tokens(ei, n, 2, 2)
        sub_layer(torch.randn(n, 8), ei, tok.rowptr, tok.col, tok.hops)
    layer = GMNLayer(8, num_hops=2, d_state=4)
    tokens = neighbourhood_tokens(ei, n, 2, 2)
    with pytest.raises(ValueError, match="num_hops = walk_length \\+ 1"):
        layer(torch.randn(n, 8), ei, tokens.rowptr, tokens.col, tokens.hops)
    with pytest.raises(ValueError, match="token_rowptr has"):
        layer(torch.randn(n - 1, 8), ei, tokens.rowptr, tokens.col, tokens.hops)
    with pytest.raises(ValueError, match="orderings is empty"):
        GraphMambaLayer(8, d_state=4).global_mixing(torch.randn(n, 8), [])


def test_bad_input_errors_audit():
    ei, _, n = _graphs()
    x = torch.randn(n, 3)
    for model in (GraphMamba(3, 2, hidden_channels=8, d_state=4), GMN(3, 2, hidden_channels=8, d_state=4)):
        with pytest.raises(ValueError, match=r"edge_index has dtype torch.float32 .* edge_index.long\(\)"):
            model(x, ei.float())
    for name, value in (("walk_length", 1.5), ("num_walks", True), ("repeats", 2.0)):
        with pytest.raises(ValueError, match=rf"{name} must be >= \d and an int, got {value}"):
            GMN(3, 2, **{name: value})
    with pytest.raises(ValueError, match="eval_orderings and num_buckets must be >= 1 and ints"):
        GraphMamba(3, 2, eval_orderings=2.5)
    for model in (GraphMamba, GMN):
        with pytest.raises(ValueError, match="d_state must be an int >= 1, got 0"):
            model(3, 2, d_state=0)
        with pytest.raises(ValueError, match="expand must be an int >= 1, got 0"):
            model(3, 2, expand=0)


@pytest.mark.parametrize("make", [lambda: GMN(3, 2, hidden_channels=8, d_state=4, pool="sum"),
                                  lambda: GraphMamba(3, 2, hidden_channels=8, d_state=4)])
def test_an_input_without_nodes_is_named(make):
    with pytest.raises(ValueError, match="the input has no nodes"):
        make()(torch.zeros(0, 3), torch.zeros(2, 0, dtype=torch.long), batch=torch.zeros(0, dtype=torch.long))


def test_gmn_eval_averages_eval_samples_token_samples_and_training_draws_one():
    ei, batch, n = _graphs()
    torch.manual_seed(0)
    model = GMN(3, 2, hidden_channels=8, num_layers=2, d_state=4, pool="sum", eval_seed=7,
                eval_samples=3).double().eval()
    x = torch.randn(n, 3, dtype=torch.float64)
    by_hand = [model(x, ei, batch=batch, tokens=neighbourhood_tokens(ei, n, 2, 4, 2,
                                                                    torch.Generator().manual_seed(7 + i)))
               for i in range(3)]
    assert not torch.allclose(by_hand[0], by_hand[1])  # the samples differ, so the average is not one of them
    torch.testing.assert_close(model(x, ei, batch=batch), torch.stack(by_hand).mean(0))
    single = GMN(3, 2, hidden_channels=8, num_layers=2, d_state=4, pool="sum", eval_seed=7).double().eval()
    single.load_state_dict(model.state_dict())
    torch.testing.assert_close(single(x, ei, batch=batch), by_hand[0])
    model.train()
    torch.manual_seed(3)
    trained = model(x, ei, batch=batch)
    torch.manual_seed(3)
    tokens = neighbourhood_tokens(ei, n, 2, 4, 2)
    torch.testing.assert_close(trained, model(x, ei, batch=batch, tokens=tokens))  # one fresh sample per step
    with pytest.raises(ValueError, match="eval_samples must be >= 1"):
        GMN(3, 2, eval_samples=0)
