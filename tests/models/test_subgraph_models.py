"""DS-GNN, DSS-GNN and the SWL-family models against a dense per-graph reference written from their equations.

The reference runs each graph on its own with dense ``[n, n, F]`` pair states, the adjacency ``A[v, w] = 1`` for
an edge ``w -> v`` and the policy mask ``m[u, v]``; it uses the models' parameters but none of graphlab's pair ops.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data

from graphlab.models import DSGNN, DSSGNN, PSWL, SSWL, SWLSV, SWLVS, GNNSSWLPlus, SubgraphWL
from graphlab.transforms import SubgraphPairs

IN, EDGE, HID = 3, 2, 4


def random_graph(n: int, p: float, seed: int) -> Data:
    gen = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(n, n, generator=gen) < p, diagonal=1)
    src, dst = upper.nonzero().t()
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    attr = torch.randn(src.numel(), EDGE, generator=gen, dtype=torch.float64)
    return Data(x=torch.randn(n, IN, generator=gen, dtype=torch.float64), edge_index=edge_index,
                edge_attr=torch.cat([attr, attr]), num_nodes=n)


def graphs() -> list[Data]:
    """Different sizes, a disconnected graph with an isolated node, a single node."""
    return [random_graph(5, 0.5, 0), random_graph(7, 0.3, 1), random_graph(4, 0.6, 2), random_graph(1, 0.5, 3)]


def prepare(graph_list: list[Data], policy: str) -> list[Data]:
    t = SubgraphPairs(max_dis=3, policy=policy, num_hops=2)
    return [t(g.clone()) for g in graph_list]


def randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random parameters and BN statistics, float64, eval mode (so eval-mode BN and ε are not identities)."""
    gen = torch.Generator().manual_seed(seed)
    model = model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
        for name, b in model.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=gen, dtype=b.dtype) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=gen, dtype=b.dtype))
    return model


def run(model: torch.nn.Module, data_list: list[Data]) -> Tensor:
    b = Batch.from_data_list(data_list)
    kw = {k: b[k] for k in ("pair_dis", "pair_mask", "pair_label", "deleted_edge_index") if k in b}
    if isinstance(model, SubgraphWL):
        kw.pop("deleted_edge_index", None)
    return model(b.x, b.edge_index, edge_attr=b.edge_attr, batch=b.batch, ptr=b.ptr, **kw)


# ------------------------------------------------------------------------------------------- dense reference
def dense_graph(d: Data) -> tuple[Tensor, Tensor, Tensor]:
    n = d.num_nodes
    adj = torch.zeros(n, n, dtype=torch.float64)
    adj[d.edge_index[1], d.edge_index[0]] = 1.0
    e = torch.zeros(n, n, EDGE, dtype=torch.float64)
    e[d.edge_index[1], d.edge_index[0]] = d.edge_attr
    m = d.pair_mask.view(n, n).double() if "pair_mask" in d else torch.ones(n, n, dtype=torch.float64)
    return adj, e, m


def dense_atom(atom: str, h: Tensor, adj: Tensor, m: Tensor, e: Tensor | None, gine: bool) -> Tensor:
    """AGG_a(h)[u, v] from the definitions of Zhang et al. (2023), the mask restricting the local atoms."""
    n = h.size(0)
    if atom == "vv":
        return h[torch.arange(n), torch.arange(n)][None].expand(n, n, -1)
    if atom == "uG":
        return h.sum(1, keepdim=True).expand(n, n, -1)
    if atom == "vG":
        return h.sum(0, keepdim=True).expand(n, n, -1)
    e = torch.zeros(n, n, h.size(-1), dtype=h.dtype) if e is None else e
    if atom == "uL":  # (u, v) <- (u, w) for w -> v, with e[v, w]
        gate = adj[None, :, :] * m[:, :, None] * m[:, None, :]  # [u, v, w]
        msg = h[:, None, :, :] + e[None, :, :, :]
    else:  # vL: (u, v) <- (w, v) for w -> u, with e[u, w]
        gate = adj[:, None, :] * m.t()[None, :, :] * m[:, :, None]
        msg = h.permute(1, 0, 2)[None, :, :, :] + e[:, None, :, :]
    msg = torch.relu(msg) if gine else msg
    return (gate[..., None] * msg).sum(2)


def flat(t: Tensor) -> Tensor:
    return t.reshape(-1, t.size(-1))


def dense_sswl_layer(conv, h: Tensor, adj: Tensor, m: Tensor, e: Tensor | None) -> Tensor:
    n = h.size(0)
    total = 0
    for i, a in enumerate(conv.atoms):
        ea = conv.edge_lins[a](e) if e is not None and a in conv.edge_lins else None
        y = dense_atom(a, h, adj, m, ea, conv.edge_mode == "gine")
        if conv.gin:
            y = y + (1 + conv.eps[i]) * h
        total = total + conv.mlps[a](flat(y))
    return torch.relu(conv.norm(total)).view(n, n, -1)


def dense_dss_layer(conv, h: Tensor, adj: Tensor, m: Tensor, e: Tensor | None) -> Tensor:
    n = h.size(0)
    e_sub = None if e is None else conv.edge_sub(e)
    sub = conv.mlp_sub(flat((1 + conv.eps[0]) * h + dense_atom("uL", h, adj, m, e_sub, False)))
    mean = h.mean(0)  # [n, F]: mean over the subgraphs u of h(u, v)
    agg = adj @ mean + (0 if e is None else (adj[:, :, None] * conv.edge_graph(e)).sum(1))
    graph = conv.mlp_graph((1 + conv.eps[1]) * mean + agg)
    return torch.relu(conv.norm_sub(sub).view(n, n, -1) + conv.norm_graph(graph)[None])


def dense_model(model, data_list: list[Data]) -> Tensor:
    outs = []
    for d in data_list:
        n = d.num_nodes
        adj, e_raw, m = dense_graph(d)
        x = model.encoder(d.x)
        h = x[None, :, :].expand(n, n, -1)
        use_dis = getattr(model, "use_distances", True)
        if use_dis:
            h = h + model.embed.dist(d.pair_dis.view(n, n))
        if "pair_label" in d:
            h = h + model.embed.label(d.pair_label.view(n, n))
        for i, conv in enumerate(model.convs):
            e = None if model.edge_encoders is None else model.edge_encoders[i](e_raw)
            h = (dense_dss_layer if isinstance(model, DSSGNN) else dense_sswl_layer)(conv, h, adj, m, e)
        if isinstance(model, SubgraphWL):
            h = dense_sswl_layer(model.pool_conv, h, adj, m, None)
            outs.append(model.head(h.mean((0, 1))))
        else:
            per_subgraph = h.mean(1)  # [u, F]
            phi = torch.relu(model.phi(per_subgraph)) if isinstance(model, DSGNN) else per_subgraph
            outs.append(model.head(phi.mean(0)))
    return torch.stack(outs)


MODELS = {
    "swl-vs": lambda **kw: SWLVS(IN, 2, HID, 2, max_dis=3, **kw),
    "swl-sv": lambda **kw: SWLSV(IN, 2, HID, 2, max_dis=3, **kw),
    "pswl": lambda **kw: PSWL(IN, 2, HID, 2, max_dis=3, **kw),
    "pswl-sv": lambda **kw: PSWL(IN, 2, HID, 2, max_dis=3, pool="vG", **kw),
    "sswl": lambda **kw: SSWL(IN, 2, HID, 2, max_dis=3, **kw),
    "gnn-sswl+": lambda **kw: GNNSSWLPlus(IN, 2, HID, 2, max_dis=3, **kw),
    "gnn-sswl+gine": lambda **kw: GNNSSWLPlus(IN, 2, HID, 2, max_dis=3, edge_mode="gine", **kw),
    "ds": lambda **kw: DSGNN(IN, 2, HID, 2, max_dis=3, use_distances=True, **kw),
    "dss": lambda **kw: DSSGNN(IN, 2, HID, 2, max_dis=3, use_distances=True, **kw),
}


@pytest.mark.parametrize("edges", [False, True])
@pytest.mark.parametrize("policy", ["node_marking", "ego"])
@pytest.mark.parametrize("name", list(MODELS))
def test_model_matches_dense_reference(name: str, policy: str, edges: bool) -> None:
    kw = {"edge_encoder": "linear", "edge_dim": EDGE} if edges else {}
    model = randomise(MODELS[name](**kw), 0)
    data = prepare(graphs(), policy)
    out, want = run(model, data), dense_model(model, data)
    torch.testing.assert_close(out, want, rtol=1e-9, atol=1e-9)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    params = [p for p in model.parameters() if p.requires_grad]
    got = torch.autograd.grad((out * g).sum(), params, allow_unused=True)
    ref = torch.autograd.grad((want * g).sum(), params, allow_unused=True)
    for p, a, b in zip(params, got, ref):
        a = torch.zeros_like(p) if a is None else a
        b = torch.zeros_like(p) if b is None else b
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("name", ["gnn-sswl+", "ds", "dss"])
def test_gradcheck_through_the_model(name: str) -> None:
    model = randomise(MODELS[name](), 1)
    data = prepare(graphs()[:2], "ego")
    b = Batch.from_data_list(data)
    x = b.x.clone().requires_grad_(True)
    kw = {k: b[k] for k in ("pair_dis", "pair_mask", "pair_label") if k in b}
    assert torch.autograd.gradcheck(lambda x: model(x, b.edge_index, batch=b.batch, ptr=b.ptr, **kw), (x,))


def relabel(d: Data, seed: int) -> Data:
    perm = torch.randperm(d.num_nodes, generator=torch.Generator().manual_seed(seed))
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    return Data(x=d.x[perm], edge_index=inv[d.edge_index], edge_attr=d.edge_attr, num_nodes=d.num_nodes)


# edge deletion has no root node: only DS/DSS-GNN use it
INVARIANCE_CASES = [(m, p) for m in MODELS for p in ("ego", "node_deletion", "edge_deletion")
                    if p != "edge_deletion" or m in ("ds", "dss")]


@pytest.mark.parametrize("name,policy", INVARIANCE_CASES)
def test_graph_output_is_invariant_under_node_relabelling(name: str, policy: str) -> None:
    kw = {"use_distances": False} if policy == "edge_deletion" else {}
    build = {"ds": lambda: DSGNN(IN, 2, HID, 2, max_dis=3, edge_encoder="linear", edge_dim=EDGE, **kw),
             "dss": lambda: DSSGNN(IN, 2, HID, 2, max_dis=3, edge_encoder="linear", edge_dim=EDGE, **kw)}
    model = randomise(build[name]() if name in build else MODELS[name](edge_encoder="linear", edge_dim=EDGE), 2)
    base = graphs()
    out = run(model, prepare(base, policy))
    moved = run(model, prepare([relabel(d, 10 + i) for i, d in enumerate(base)], policy))
    torch.testing.assert_close(out, moved, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", list(MODELS))
def test_batch_equals_per_graph_runs(name: str) -> None:
    model = randomise(MODELS[name](edge_encoder="linear", edge_dim=EDGE), 3)
    data = prepare(graphs(), "ego")
    together = run(model, data)
    alone = torch.cat([run(model, [d]) for d in data])
    torch.testing.assert_close(together, alone, rtol=1e-9, atol=1e-9)


def test_training_mode_runs_and_learns_a_step() -> None:
    model = GNNSSWLPlus(IN, 1, 8, 2, max_dis=3).double()
    data = prepare(graphs(), "node_marking")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    target = torch.randn(len(data), 1, dtype=torch.float64)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(run(model, data), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_bad_input() -> None:
    d = prepare(graphs(), "node_marking")
    b = Batch.from_data_list(d)
    model = GNNSSWLPlus(IN, 1, 8, 2).double()
    with pytest.raises(ValueError, match="SubgraphPairs"):
        model(b.x, b.edge_index, batch=b.batch)
    with pytest.raises(ValueError, match="pool must be"):
        SubgraphWL(IN, 1, pool="uL")
    with pytest.raises(ValueError, match="no edge_attr"):
        GNNSSWLPlus(IN, 1, 8, 2, edge_encoder="linear", edge_dim=EDGE).double()(
            b.x, b.edge_index, ptr=b.ptr, pair_dis=b.pair_dis)
    with pytest.raises(ValueError, match="num_layers"):
        DSGNN(IN, 1, num_layers=0)
    with pytest.raises(ValueError, match="edge_dim"):
        DSSGNN(IN, 1, edge_encoder="linear")
    with pytest.raises(ValueError, match="pair_dis has value"):
        GNNSSWLPlus(IN, 1, 8, 2, max_dis=1).double()(b.x, b.edge_index, ptr=b.ptr, pair_dis=b.pair_dis)


@pytest.mark.parametrize("name", ["ds-plain", "dss-plain", *MODELS])
def test_a_batch_without_subgraph_pairs_is_refused(name: str) -> None:
    """A plain Batch (no SubgraphPairs fields) used to run DS-/DSS-GNN silently with every subgraph the whole
    graph (n copies of GIN)."""
    build = {"ds-plain": lambda: DSGNN(IN, 2, HID, 2), "dss-plain": lambda: DSSGNN(IN, 2, HID, 2)}
    model = (build[name]() if name in build else MODELS[name]()).double()
    b = Batch.from_data_list(graphs())
    with pytest.raises(ValueError, match="needs pair_dis and the other pair fields of graphlab.transforms."
                                         "SubgraphPairs.*subgraph:"):
        model(b.x, b.edge_index, batch=b.batch, ptr=b.ptr)


@pytest.mark.parametrize("name", [m for m in MODELS if m not in ("ds", "dss")])
def test_the_swl_family_refuses_edge_deleted_subgraphs(name: str) -> None:
    """The SWL models need a root per subgraph; they used to drop ``deleted_edge_index`` (not a forward argument,
    so the task never passed it) and run an edge-deletion batch as if no policy were set."""
    b = Batch.from_data_list(prepare(graphs(), "edge_deletion"))
    with pytest.raises(ValueError, match="needs one subgraph per node.*edge_deletion"):
        MODELS[name]().double()(b.x, b.edge_index, batch=b.batch, ptr=b.ptr, pair_dis=b.pair_dis,
                                deleted_edge_index=b.deleted_edge_index)


def test_molecule_encoders() -> None:
    """OGB categorical atoms and bonds go through AtomEncoder / BondEncoder."""
    n = 4
    data = Data(x=torch.zeros(n, 9, dtype=torch.long), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
                edge_attr=torch.zeros(4, 3, dtype=torch.long), num_nodes=n)
    data = SubgraphPairs(max_dis=5, policy="ego", num_hops=3)(data)
    for model in (GNNSSWLPlus(9, 1, 8, 2, node_encoder="atom", edge_encoder="bond"),
                  DSSGNN(9, 1, 8, 2, node_encoder="atom", edge_encoder="bond")):
        out = run(model.eval(), [data])
        assert out.shape == (1, 1) and torch.isfinite(out).all()
