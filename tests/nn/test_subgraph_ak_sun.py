"""GNN-AK(+) and SUN layers on pair tensors against dense per-graph [n, n, F] references written from the papers'
equations (einsum over the adjacency and the ego mask, no pair index), in float64, values and gradients, batch
norm in training mode over exactly the row sets the official codes normalise; gradcheck; permutation equivariance;
a batch of different sizes equals per-graph runs; disconnected, single-node and isolated-node graphs; bad input."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_undirected

from graphlab.nn.subgraph import GNNAKConv, SUNConv, pair_index_from_batch
from graphlab.transforms import SubgraphPairs

F_IN, E_DIM, MAX_DIS = 5, 3, 4
TOL = dict(atol=1e-9, rtol=1e-7)


def random_graph(n: int, p: float, seed: int) -> Data:
    g = nx.gnp_random_graph(n, p, seed=seed)
    ei = torch.tensor(list(g.edges), dtype=torch.long).reshape(-1, 2).T
    return Data(edge_index=to_undirected(ei, num_nodes=n), num_nodes=n)


def graph_list() -> list[Data]:
    """Different sizes: connected-ish, sparse and disconnected, one node, isolated nodes, a path."""
    return [random_graph(6, 0.5, 0), random_graph(7, 0.25, 1),
            Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=1),
            Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=4),
            Data(edge_index=torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]]), num_nodes=4)]


def make_batch(policy: str = "ego", num_hops: int = 1, graphs: list[Data] | None = None, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    t = SubgraphPairs(max_dis=MAX_DIS, policy=policy, num_hops=num_hops)
    out = []
    for g in graphs or graph_list():
        g = t(g.clone())
        g.x = torch.randn(g.num_nodes, F_IN, generator=gen, dtype=torch.float64)
        g.edge_attr = torch.randn(g.edge_index.size(1), E_DIM, generator=gen, dtype=torch.float64)
        out.append(g)
    return Batch.from_data_list(out)


def index_of(batch: Batch):
    return pair_index_from_batch(batch.edge_index, batch.ptr, getattr(batch, "pair_mask", None))


# ----------------------------------------------------------------------------------------------- dense helpers
def dense_graphs(batch: Batch, with_edges: bool) -> list[dict]:
    """Per graph: ``x`` [n, F], ``adj`` [n, n] (adj[v, w] = 1 iff w -> v), ``mask`` [n, n] bool (v in S_u),
    ``dis`` [n, n], ``edge`` [n, n, E_DIM] (edge[v, w] = features of w -> v) or None."""
    out = []
    for g in range(batch.num_graphs):
        d = batch.get_example(g)
        n = d.num_nodes
        adj = torch.zeros(n, n, dtype=torch.float64)
        adj[d.edge_index[1], d.edge_index[0]] = 1.0
        edge = None
        if with_edges:
            edge = torch.zeros(n, n, E_DIM, dtype=torch.float64)
            edge[d.edge_index[1], d.edge_index[0]] = d.edge_attr
        mask = d.pair_mask.view(n, n) if "pair_mask" in d else torch.ones(n, n, dtype=torch.bool)
        out.append(dict(n=n, adj=adj, mask=mask, dis=d.pair_dis.view(n, n), edge=edge))
    return out


def split_nodes(x: Tensor, graphs: list[dict]) -> list[Tensor]:
    return list(torch.split(x, [g["n"] for g in graphs]))


def apply_rows(module: nn.Module, parts: list[Tensor]) -> list[Tensor]:
    """Apply ``module`` (BN inside: batch statistics) to the concatenation of ``parts``, split back."""
    if sum(p.size(0) for p in parts) == 0:
        return parts
    out = module(torch.cat(parts))
    return list(torch.split(out, [p.size(0) for p in parts]))


def local_sum(h: Tensor, g: dict, edge: Tensor | None) -> Tensor:
    r"""[n, n, F]: :math:`\sum_w A[v,w] m[u,v] m[u,w] \, \mathrm{msg}(h[u,w], e[v,w])`, msg = ReLU(h + e) with
    edges (GINE), h without (GIN)."""
    m = g["mask"].to(h.dtype)
    gate = g["adj"][None, :, :] * m[:, :, None] * m[:, None, :]  # [u, v, w]
    if edge is None:
        return torch.einsum("uvw,uwf->uvf", gate, h)
    msg = torch.relu(h[:, None, :, :] + edge[None, :, :, :])  # [u, v, w, F]
    return torch.einsum("uvw,uvwf->uvf", gate, msg)


# ---------------------------------------------------------------------------------------------- GNN-AK reference
def ak_reference(layer: GNNAKConv, x: Tensor, graphs: list[dict], edge_attr_dense: bool) -> Tensor:
    xs = split_nodes(x, graphs)
    hs = []  # dense [n, n, d] per graph, zero outside the mask
    hops = []
    for g, xg in zip(graphs, xs):
        n = g["n"]
        h = xg[None, :, :].expand(n, n, -1)
        if layer.hop_dim:
            hop = layer.hop_embedding(torch.where(g["mask"], g["dis"] + 1, torch.zeros_like(g["dis"])))
            hops.append(hop)
            h = torch.cat([h, hop], dim=-1)
        hs.append(h * g["mask"][:, :, None])
    for l in range(layer.mini_layers):
        inputs = []
        for g, h in zip(graphs, hs):
            edge = layer.edge_lins[l](g["edge"]) if edge_attr_dense else None
            inputs.append(((1 + layer.eps[l]) * h + local_sum(h, g, edge))[g["mask"]])
        rows = apply_rows(nn.Sequential(layer.inner_mlps[l], layer.inner_norms[l], nn.ReLU()), inputs)
        new = []
        for g, h, r in zip(graphs, hs, rows):
            hn = torch.zeros_like(h)
            hn[g["mask"]] = h[g["mask"]] + r
            new.append(hn)
        hs = new
    zs = apply_rows(layer.inner_out, [h[g["mask"]] for g, h in zip(graphs, hs)])
    out_parts = []
    trans = {name: apply_rows(layer.transforms[name], zs) for name in layer.transforms}
    for gi, (g, z) in enumerate(zip(graphs, zs)):
        n, mask = g["n"], g["mask"]
        zd = torch.zeros(n, n, z.size(1), dtype=z.dtype)
        zd[mask] = z
        count_root = mask.sum(1).clamp(min=1).to(z.dtype)[:, None]
        count_node = mask.sum(0).clamp(min=1).to(z.dtype)[:, None]
        parts = []
        for name in layer.encodings:
            if name == "centroid":
                part = torch.diagonal(zd, dim1=0, dim2=1).T
                if layer.gates is not None:
                    part = part * torch.sigmoid(layer.gates[name](layer.hop_embedding(torch.ones(n, dtype=torch.long))))
            else:
                td = torch.zeros_like(zd)
                td[mask] = trans[name][gi]
                if layer.gates is not None:
                    td = td * torch.sigmoid(layer.gates[name](hops[gi]))
                td = td * mask[:, :, None]
                if name == "subgraph":  # pool over w in S_v: row v of the root-v subgraph
                    part = td.sum(1)
                    part = part / count_root if layer.pool == "mean" else part
                else:  # pool over u with v in S_u
                    part = td.sum(0)
                    part = part / count_node if layer.pool == "mean" else part
            parts.append(part)
        out_parts.append(torch.cat(parts, -1) if layer.combine == "concat" else sum(parts))
    return layer.out(torch.cat(out_parts))


# ------------------------------------------------------------------------------------------------- SUN reference
def sun_reference(layer: SUNConv, h: Tensor, graphs: list[dict], with_edges: bool) -> Tensor:
    sizes = [g["n"] ** 2 for g in graphs]
    hs = [hp.view(g["n"], g["n"], -1) for hp, g in zip(torch.split(h, sizes), graphs)]
    diag = [torch.diagonal(hg, dim1=0, dim2=1).T for hg in hs]  # x^v_v, [n, F]
    mean = [hg.mean(0) for hg in hs]  # \bar x_v
    ro = [(hg.sum(1) if layer.readout_pool == "sum" else hg.mean(1)) for hg in hs]  # per root k

    def edges(gin: str, g: dict) -> Tensor | None:
        return layer.edge_lins[gin](g["edge"]) if with_edges else None

    def gin_graph(gin: str) -> list[Tensor]:
        inp = []
        for g, xb in zip(graphs, mean):
            e = edges(gin, g)
            msg = xb[None, :, :].expand(g["n"], -1, -1) if e is None else torch.relu(xb[None, :, :] + e)
            inp.append((1 + layer.eps[layer._gin_names.index(gin)]) * xb + torch.einsum("vw,vwf->vf", g["adj"], msg))
        return apply_rows(nn.Sequential(layer.gin_mlps[gin], layer.norms[gin]), inp)

    def gin_sub_input(gin: str) -> list[Tensor]:
        return [(1 + layer.eps[layer._gin_names.index(gin)]) * hg + local_sum(hg, g, edges(gin, g))
                for g, hg in zip(graphs, hs)]

    u_vv, u_kk = apply_rows(layer.u["vv"], diag), apply_rows(layer.u["kk"], diag)
    u_kv = apply_rows(layer.u["kv"], [hg.reshape(-1, hg.size(-1)) for hg in hs])
    sub = apply_rows(layer.gin_mlps["sub"], [x.reshape(-1, x.size(-1)) for x in gin_sub_input("sub")])
    off_diag = [~torch.eye(g["n"], dtype=torch.bool).reshape(-1) for g in graphs]
    sub_bn = apply_rows(layer.norms["sub"], [s[o] for s, o in zip(sub, off_diag)])
    h_sum = gin_graph("sum")
    u_ro = apply_rows(layer.u["ro"], ro) if layer.use_readout else None
    u_vk = apply_rows(layer.u["vk"], [hg.transpose(0, 1).reshape(-1, hg.size(-1)) for hg in hs]) \
        if layer.use_transpose else None
    # Root terms.
    r_vv = apply_rows(layer.u["vv_root"], diag)
    r_sub = apply_rows(nn.Sequential(layer.gin_mlps["sub_root"], layer.norms["sub_root"]),
                       [torch.diagonal(x, dim1=0, dim2=1).T for x in gin_sub_input("sub_root")])
    r_sum = gin_graph("sum_root")
    r_ro = apply_rows(layer.u["ro_root"], ro) if layer.use_readout else None
    outs = []
    for i, g in enumerate(graphs):
        n = g["n"]
        out = (u_vv[i][None, :, :].expand(n, n, -1) + u_kk[i][:, None, :].expand(n, n, -1)
               + u_kv[i].view(n, n, -1) + h_sum[i][None, :, :])
        s = torch.zeros_like(sub[i])
        s[off_diag[i]] = sub_bn[i]
        out = out + s.view(n, n, -1)
        if u_ro is not None:
            out = out + u_ro[i][:, None, :]
        if u_vk is not None:
            out = out + u_vk[i].view(n, n, -1)
        root = r_vv[i] + r_sub[i] + r_sum[i] + (r_ro[i] if r_ro is not None else 0)
        eye = torch.eye(n, dtype=torch.bool)
        out = torch.where(eye[:, :, None], torch.diag_embed(root.T).permute(1, 2, 0), out)
        outs.append(torch.relu(out).reshape(n * n, -1))
    return torch.cat(outs)


# ------------------------------------------------------------------------------------------------------- tests
def randomise_norms(module: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN affine parameters and running statistics (eval-mode tests must see them)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.3 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(1 + torch.rand(m.running_var.shape, generator=gen))
        for name, p in module.named_parameters():
            if name.endswith("eps"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def grads(module: nn.Module, *inputs: Tensor) -> list[Tensor]:
    return [t.grad.clone() for t in inputs] + [p.grad.clone() for p in module.parameters() if p.grad is not None]


def zero_grads(module: nn.Module, *inputs: Tensor) -> None:
    module.zero_grad()
    for t in inputs:
        t.grad = None


AK_CASES = [  # (hop_dim, with_edges, pool, combine, encodings, mini_layers)
    (0, False, "mean", "concat", ("centroid", "subgraph"), 1),
    (0, True, "sum", "concat", ("centroid", "subgraph", "context"), 2),
    (4, True, "mean", "concat", ("centroid", "subgraph", "context"), 1),
    (4, False, "sum", "add", ("centroid", "subgraph", "context"), 2),
]


@pytest.mark.parametrize("policy,num_hops", [("ego", 1), ("ego", 2), ("node_marking", 1)])
@pytest.mark.parametrize("case", AK_CASES, ids=lambda c: f"hop{c[0]}-edges{c[1]}-{c[2]}-{c[3]}-L{c[5]}")
def test_gnnak_matches_dense_reference(case, policy: str, num_hops: int) -> None:
    hop_dim, with_edges, pool, combine, encodings, mini = case
    torch.manual_seed(0)
    batch = make_batch(policy, num_hops)
    index = index_of(batch)
    layer = GNNAKConv(F_IN, 6, mini, E_DIM if with_edges else None, hop_dim, MAX_DIS, encodings, pool,
                      combine).double()
    randomise_norms(layer)
    layer.train()
    x = batch.x.clone().requires_grad_()
    e = batch.edge_attr.clone().requires_grad_() if with_edges else None
    ins = (x, e) if with_edges else (x,)
    out = layer(x, index, batch.pair_dis, e)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    got = grads(layer, *ins)
    zero_grads(layer, *ins)
    graphs = dense_graphs(batch, with_edges)
    if with_edges:  # the reference reads the dense edge tensor built from the same leaf
        for g_i, g in enumerate(graphs):
            d = batch.get_example(g_i)
            sel = (batch.edge_index[1] >= batch.ptr[g_i]) & (batch.edge_index[1] < batch.ptr[g_i + 1])
            edge = torch.zeros(g["n"], g["n"], E_DIM, dtype=torch.float64)
            edge = edge.index_put((d.edge_index[1], d.edge_index[0]), e[sel])
            g["edge"] = edge
    ref = ak_reference(layer, x, graphs, with_edges)
    (ref * torch.linspace(-1, 1, ref.numel(), dtype=ref.dtype).view_as(ref)).sum().backward()
    expected = grads(layer, *ins)
    torch.testing.assert_close(out, ref, **TOL)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, **TOL)


SUN_CASES = [  # (with_edges, use_readout, use_transpose, use_mlp, readout_pool)
    (False, True, False, True, "sum"),
    (True, True, True, True, "mean"),
    (True, False, False, False, "sum"),
]


@pytest.mark.parametrize("policy,num_hops", [("ego", 1), ("ego_plus", 2), ("node_marking", 1)])
@pytest.mark.parametrize("case", SUN_CASES, ids=lambda c: f"edges{c[0]}-ro{c[1]}-tr{c[2]}-mlp{c[3]}-{c[4]}")
def test_sun_matches_dense_reference(case, policy: str, num_hops: int) -> None:
    with_edges, use_readout, use_transpose, use_mlp, readout_pool = case
    torch.manual_seed(0)
    batch = make_batch(policy, num_hops)
    index = index_of(batch)
    layer = SUNConv(F_IN, 6, E_DIM if with_edges else None, use_readout, use_transpose, use_mlp,
                    readout_pool).double()
    randomise_norms(layer)
    h = torch.randn(index.num_pairs, F_IN, dtype=torch.float64, requires_grad=True)
    e = batch.edge_attr if with_edges else None
    out = layer(h, index, e)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    (out * weights).sum().backward()
    got = grads(layer, h)
    zero_grads(layer, h)
    ref = sun_reference(layer, h, dense_graphs(batch, with_edges), with_edges)
    (ref * weights).sum().backward()
    torch.testing.assert_close(out, ref, **TOL)
    for a, b in zip(got, grads(layer, h)):
        torch.testing.assert_close(a, b, **TOL)


def test_references_can_fail() -> None:
    """The comparisons are not vacuous: the ego mask and the transpose term change the output."""
    batch = make_batch("ego", 1)
    torch.manual_seed(0)
    layer = GNNAKConv(F_IN, 6, encodings=("centroid", "subgraph", "context")).double()
    ref = ak_reference(layer, batch.x, dense_graphs(batch, False), False)
    unmasked = pair_index_from_batch(batch.edge_index, batch.ptr)  # the ego mask dropped
    assert not torch.allclose(layer(batch.x, unmasked), ref)
    torch.testing.assert_close(layer(batch.x, index_of(batch)), ref, **TOL)
    sun = SUNConv(F_IN, 6, use_transpose=True).double()
    h = torch.randn(unmasked.num_pairs, F_IN, dtype=torch.float64)
    ref = sun_reference(sun, h, dense_graphs(batch, False), False)
    sun.use_transpose = False
    assert not torch.allclose(sun(h, index_of(batch)), ref)


def test_gradcheck_float64() -> None:
    batch = make_batch("ego", 1, [random_graph(4, 0.6, 3), Data(edge_index=torch.tensor([[0], [1]]), num_nodes=3)])
    index = index_of(batch)
    torch.manual_seed(0)
    ak = GNNAKConv(F_IN, 3, 1, E_DIM, 2, MAX_DIS).double()
    x = batch.x.clone().requires_grad_()
    e = batch.edge_attr.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda x, e: ak(x, index, batch.pair_dis, e), (x, e))
    sun = SUNConv(F_IN, 3, E_DIM, use_transpose=True).double()
    h = torch.randn(index.num_pairs, F_IN, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h, e: sun(h, index, e), (h, e))


def relabel(g: Data, perm: Tensor) -> Data:
    """Node ``i`` becomes node ``perm[i]``."""
    return Data(edge_index=perm[g.edge_index], num_nodes=g.num_nodes)


@pytest.mark.parametrize("train", [False, True])
def test_permutation_equivariance(train: bool) -> None:
    graphs = graph_list()
    gen = torch.Generator().manual_seed(5)
    perms = [torch.randperm(g.num_nodes, generator=gen) for g in graphs]
    batch = make_batch("ego", 2, graphs)
    pbatch = make_batch("ego", 2, [relabel(g, p) for g, p in zip(graphs, perms)])
    node_perm = torch.cat([p + int(batch.ptr[i]) for i, p in enumerate(perms)])  # old node -> new node
    pbatch.x = torch.empty_like(batch.x).index_copy(0, node_perm, batch.x)
    # Edge features follow their edges: the relabelled graph lists the same edges in the same order.
    pbatch.edge_attr = batch.edge_attr
    idx, pidx = index_of(batch), index_of(pbatch)
    torch.manual_seed(1)
    ak = GNNAKConv(F_IN, 4, 1, E_DIM, 3, MAX_DIS).double().train(train)
    randomise_norms(ak)
    out = ak(batch.x, idx, batch.pair_dis, batch.edge_attr)
    pout = ak(pbatch.x, pidx, pbatch.pair_dis, pbatch.edge_attr)
    torch.testing.assert_close(pout.index_select(0, node_perm), out, **TOL)
    # SUN: h'(pi u, pi v) = h(u, v).
    pair_perm = []
    for i, p in enumerate(perms):
        n = p.numel()
        off = int((batch.ptr[:i + 1][1:] - batch.ptr[:i + 1][:-1]).pow(2).sum()) if i else 0
        pair_perm.append((p[:, None] * n + p[None, :]).reshape(-1) + off)
    pair_perm = torch.cat(pair_perm)
    sun = SUNConv(F_IN, 4, E_DIM, use_transpose=True).double().train(train)
    randomise_norms(sun)
    h = torch.randn(idx.num_pairs, F_IN, dtype=torch.float64)
    ph = torch.empty_like(h).index_copy(0, pair_perm, h)
    torch.testing.assert_close(sun(ph, pidx, pbatch.edge_attr).index_select(0, pair_perm),
                               sun(h, idx, batch.edge_attr), **TOL)


def test_batch_equals_per_graph_runs() -> None:
    """Eval mode (BN with its running statistics): each graph alone gives its rows of the batched run."""
    graphs = graph_list()
    batch = make_batch("ego", 2, graphs)
    torch.manual_seed(2)
    ak = GNNAKConv(F_IN, 4, 2, E_DIM, 3, MAX_DIS).double().eval()
    sun = SUNConv(F_IN, 4, E_DIM, use_transpose=True).double().eval()
    randomise_norms(ak), randomise_norms(sun)
    idx = index_of(batch)
    h = torch.randn(idx.num_pairs, F_IN, dtype=torch.float64)
    out_ak = ak(batch.x, idx, batch.pair_dis, batch.edge_attr)
    out_sun = sun(h, idx, batch.edge_attr)
    pair_off = 0
    for i in range(batch.num_graphs):
        single = Batch.from_data_list([batch.get_example(i)])
        n = single.num_nodes
        sidx = index_of(single)
        torch.testing.assert_close(ak(single.x, sidx, single.pair_dis, single.edge_attr),
                                   out_ak[int(batch.ptr[i]):int(batch.ptr[i + 1])], **TOL)
        torch.testing.assert_close(sun(h[pair_off:pair_off + n * n], sidx, single.edge_attr),
                                   out_sun[pair_off:pair_off + n * n], **TOL)
        pair_off += n * n


def test_single_node_graphs_only() -> None:
    one = Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=1)
    batch = make_batch("ego", 1, [one, one.clone()])
    idx = index_of(batch)
    ak = GNNAKConv(F_IN, 4, 1, E_DIM, 3, MAX_DIS).double()
    sun = SUNConv(F_IN, 4, E_DIM).double()
    out = ak(batch.x, idx, batch.pair_dis, batch.edge_attr)
    assert out.shape == (2, 4) and torch.isfinite(out).all()
    h = torch.randn(2, F_IN, dtype=torch.float64)
    out = sun(h, idx, batch.edge_attr)
    assert out.shape == (2, 4) and torch.isfinite(out).all()


def test_bad_input() -> None:
    batch = make_batch("ego", 1)
    idx = index_of(batch)
    with pytest.raises(ValueError, match="encodings must be"):
        GNNAKConv(F_IN, 4, encodings=("centroid", "ctx"))
    with pytest.raises(ValueError, match="pool must be"):
        GNNAKConv(F_IN, 4, pool="max")
    with pytest.raises(ValueError, match="mini_layers"):
        GNNAKConv(F_IN, 4, mini_layers=0)
    ak = GNNAKConv(F_IN, 4, hop_dim=2, max_dis=MAX_DIS).double()
    with pytest.raises(ValueError, match="needs pair_dis"):
        ak(batch.x, idx)
    with pytest.raises(ValueError, match=r"shape \[N, 5\]"):
        ak(batch.x[:, :2], idx, batch.pair_dis)
    with pytest.raises(ValueError, match="edge_attr is given"):
        ak(batch.x, idx, batch.pair_dis, batch.edge_attr)
    with pytest.raises(ValueError, match="max_dis"):
        GNNAKConv(F_IN, 4, hop_dim=2, max_dis=1).double()(batch.x, idx, batch.pair_dis)
    sun = SUNConv(F_IN, 4, E_DIM).double()
    with pytest.raises(ValueError, match="edge_attr is missing"):
        sun(torch.randn(idx.num_pairs, F_IN, dtype=torch.float64), idx)
    with pytest.raises(ValueError, match="pairs"):
        sun(torch.randn(idx.num_pairs + 1, F_IN, dtype=torch.float64), idx, batch.edge_attr)
    with pytest.raises(ValueError, match="readout_pool"):
        SUNConv(F_IN, 4, readout_pool="max")


@pytest.mark.parametrize("rows", [1, -1])  # too few (was read past its end), too many (was silently misaligned)
def test_edge_attr_with_another_number_of_rows_than_edges_is_refused(rows: int) -> None:
    batch = make_batch("ego", 1)
    idx = index_of(batch)
    num_edges = batch.edge_index.size(1)
    e = torch.randn(rows if rows > 0 else num_edges + 1, E_DIM, dtype=torch.float64)
    match = f"edge_attr has {e.size(0)} rows but the batch has E = {num_edges}"
    with pytest.raises(ValueError, match=match):
        GNNAKConv(F_IN, 4, edge_dim=E_DIM).double()(batch.x, idx, batch.pair_dis, e)
    with pytest.raises(ValueError, match=match):
        SUNConv(F_IN, 4, E_DIM).double()(torch.randn(idx.num_pairs, F_IN, dtype=torch.float64), idx, e)
