"""The pair-tensor engine of subgraph GNNs: every atom against the dense einsum reference, batching, permutation
equivariance, policies, gradients, bad input; the layers built on it."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_undirected

import graphlab.ops as ops
from graphlab.nn.subgraph import (
    DSConv,
    DSSConv,
    PairEmbedding,
    SSWLPlusConv,
    batch_pair_index,
    pair_index_from_batch,
    subgraph_readout,
)
from graphlab.ops.pairs import ATOMS, PairIndex, pair_atom
from graphlab.ops.reference import pair_atom_dense
from graphlab.transforms import SubgraphPairs

TOL = {torch.float64: dict(atol=1e-10, rtol=1e-9), torch.float32: dict(atol=1e-5, rtol=1e-4)}


def random_graph(n: int, p: float, seed: int) -> Data:
    g = nx.gnp_random_graph(n, p, seed=seed)
    ei = torch.tensor(list(g.edges), dtype=torch.long).reshape(-1, 2).T
    return Data(edge_index=to_undirected(ei, num_nodes=n), num_nodes=n)


def graphs() -> list[Data]:
    """Different sizes: connected, disconnected, a single node, isolated nodes, a directed path."""
    return [random_graph(7, 0.4, 0), random_graph(9, 0.2, 1),
            Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=1),
            Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=4),
            Data(edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]), num_nodes=5)]


def make_batch(policy: str = "ego", num_hops: int = 1, graph_list: list[Data] | None = None) -> Batch:
    t = SubgraphPairs(max_dis=3, policy=policy, num_hops=num_hops)
    return Batch.from_data_list([t(g.clone()) for g in (graph_list or graphs())])


def dense_atom_per_graph(h: Tensor, batch: Batch, atom: str, edge_attr: Tensor | None,
                         masked: bool) -> Tensor:
    """The reference: each graph on its own, dense [n, n, F] and its adjacency, concatenated."""
    outs, off = [], 0
    for g in range(batch.num_graphs):
        data = batch.get_example(g)
        n = data.num_nodes
        hg = h[off:off + n * n].view(n, n, -1)
        adj = torch.zeros(n, n)
        adj[data.edge_index[1], data.edge_index[0]] = 1.0
        e_dense = None
        if edge_attr is not None:
            first = int(batch.ptr[g])  # edges of graph g in batch order
            sel = (batch.edge_index[1] >= first) & (batch.edge_index[1] < first + n)
            e_dense = h.new_zeros(n, n, h.size(1))
            e_dense[data.edge_index[1], data.edge_index[0]] = edge_attr[sel]
        mask = data.pair_mask.view(n, n) if masked and "pair_mask" in data else None
        outs.append(pair_atom_dense(hg, adj, atom, mask, e_dense).reshape(n * n, -1))
        off += n * n
    return torch.cat(outs)


def index_of(batch: Batch, masked: bool) -> PairIndex:
    return pair_index_from_batch(batch.edge_index, batch.ptr, batch.pair_mask if masked else None)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("with_edges", [False, True])
@pytest.mark.parametrize("policy,masked", [("ego", False), ("ego", True), ("node_deletion", True)])
@pytest.mark.parametrize("atom", ATOMS)
def test_atom_matches_dense_reference(atom: str, policy: str, masked: bool, with_edges: bool, backend: str) -> None:
    batch = make_batch(policy)
    index = index_of(batch, masked)
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(index.num_pairs, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    e = (torch.randn(batch.edge_index.size(1), 3, generator=gen, dtype=torch.float64, requires_grad=True)
         if with_edges else None)
    with ops.set_backend(backend):
        out = pair_atom(h, index, atom, e)
    want = dense_atom_per_graph(h, batch, atom, e, masked)
    torch.testing.assert_close(out, want, **TOL[torch.float64])
    g = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    inputs = [h] + ([e] if e is not None and atom in ("uL", "vL") else [])
    got = torch.autograd.grad((out * g).sum(), inputs)
    ref = torch.autograd.grad((want * g).sum(), inputs)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, **TOL[torch.float64])


@pytest.mark.parametrize("atom", ATOMS)
def test_atom_gradcheck(atom: str) -> None:
    batch = make_batch("ego", graph_list=[random_graph(4, 0.6, 3), random_graph(3, 0.9, 4)])
    index = index_of(batch, True)
    gen = torch.Generator().manual_seed(1)
    h = torch.randn(index.num_pairs, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    e = torch.randn(batch.edge_index.size(1), 2, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h, e: pair_atom(h, index, atom, e), (h, e))


def test_batch_equals_per_graph_runs() -> None:
    data_list = graphs()
    batch = make_batch("ego", graph_list=data_list)
    index = index_of(batch, True)
    h = torch.randn(index.num_pairs, 4, dtype=torch.float64)
    for atom in ATOMS:
        out = pair_atom(h, index, atom)
        for g, data in enumerate(data_list):
            single = make_batch("ego", graph_list=[data])
            lo, hi = int(index.pair_ptr[g]), int(index.pair_ptr[g + 1])
            torch.testing.assert_close(out[lo:hi], pair_atom(h[lo:hi], index_of(single, True), atom))


def permute_pairs(x: Tensor, perm: Tensor) -> Tensor:
    """Rows of one graph's pair tensor after relabelling node i as perm[i]: new (perm u, perm v) = old (u, v)."""
    n = perm.numel()
    out = torch.empty_like(x).view(n, n, -1)
    out[perm[:, None], perm[None, :]] = x.view(n, n, -1)
    return out.reshape(n * n, -1)


@pytest.mark.parametrize("atom", ATOMS)
def test_atoms_are_permutation_equivariant(atom: str) -> None:
    data = random_graph(8, 0.35, 5)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(2))
    relabelled = Data(edge_index=perm[data.edge_index], num_nodes=8)
    index = index_of(make_batch("ego", 2, [data]), True)
    index_p = index_of(make_batch("ego", 2, [relabelled]), True)
    h = torch.randn(64, 3, dtype=torch.float64)
    e = torch.randn(data.edge_index.size(1), 3, dtype=torch.float64)
    out = pair_atom(h, index, atom, e)
    out_p = pair_atom(permute_pairs(h, perm), index_p, atom, e)  # same edge order, relabelled ends
    torch.testing.assert_close(out_p, permute_pairs(out, perm))


def test_pair_mask_restricts_local_atoms_to_the_ego_net() -> None:
    """uL inside an ego net equals message passing on networkx's ego graph of the root."""
    data = random_graph(10, 0.3, 6)
    batch = make_batch("ego", 2, [data])
    index = index_of(batch, True)
    h = torch.randn(100, 2, dtype=torch.float64)
    out = pair_atom(h, index, "uL").view(10, 10, 2)
    g = nx.Graph()
    g.add_nodes_from(range(10))
    g.add_edges_from(data.edge_index.T.tolist())
    hv = h.view(10, 10, 2)
    for u in range(10):
        ego = nx.ego_graph(g, u, radius=2)
        for v in range(10):
            want = sum((hv[u, w] for w in ego.neighbors(v)), torch.zeros(2, dtype=torch.float64)) if v in ego \
                else torch.zeros(2, dtype=torch.float64)
            torch.testing.assert_close(out[u, v], want)


def test_bad_input() -> None:
    batch = make_batch("ego")
    index = index_of(batch, True)
    with pytest.raises(ValueError, match="unknown atom 'uw'.*uv, vu, uu, vv, uL, vL, uG, vG"):
        pair_atom(torch.zeros(index.num_pairs, 2), index, "uw")
    with pytest.raises(ValueError, match="h has 5 rows but the batch has R"):
        pair_atom(torch.zeros(5, 2), index, "uv")
    with pytest.raises(ValueError, match="edge_attr must be \\[E, F\\] with F = 2"):
        pair_atom(torch.zeros(index.num_pairs, 2), index, "uL", torch.zeros(batch.edge_index.size(1), 3))
    with pytest.raises(ValueError, match="pair_mask must be a bool tensor"):
        pair_index_from_batch(batch.edge_index, batch.ptr, batch.pair_mask[:-1])
    cross = torch.tensor([[0, 7], [7, 0]])  # node 0 of graph 0, node 0 of graph 1
    with pytest.raises(ValueError, match="an edge joins two different graphs"):
        pair_index_from_batch(cross, batch.ptr)
    with pytest.raises(ValueError, match="edge_index"):
        pair_index_from_batch(torch.tensor([[0], [99]]), batch.ptr)



@pytest.mark.parametrize("rows", [1, -1])  # too few (was read past its end), too many (was silently misaligned)
def test_edge_attr_with_another_number_of_rows_than_edges_is_refused(rows: int) -> None:
    batch = make_batch("ego")
    index = index_of(batch, True)
    num_edges = batch.edge_index.size(1)
    e = torch.randn(rows if rows > 0 else num_edges + 1, 2)
    h = torch.randn(index.num_pairs, 2)
    for atom in ("uL", "vL"):
        for mode in ("add", "gine"):
            with pytest.raises(ValueError, match=f"edge_attr has {e.size(0)} rows but the batch has E = {num_edges}"):
                pair_atom(h, index, atom, e, mode)
    for conv in (SSWLPlusConv(2, 3, edge_dim=2), SSWLPlusConv(2, 3, edge_dim=2, edge_mode="gine"),
                 DSSConv(2, 3, edge_dim=2)):
        with pytest.raises(ValueError, match=f"edge_attr has {e.size(0)} rows but the batch has E = {num_edges}"):
            conv(h, index, e)
    with pytest.raises(ValueError, match="h has 5 rows but the batch has"):
        DSSConv(2, 3)(torch.randn(5, 2), index)


# ------------------------------------------------------------------------------------------------------ layers


def dense_graphs(batch: Batch, h: Tensor, edge_attr: Tensor | None):
    """Per graph: (dense h [n, n, F], adjacency, dense edge vectors or None, mask or None, row slice)."""
    off = 0
    for g in range(batch.num_graphs):
        data = batch.get_example(g)
        n = data.num_nodes
        adj = torch.zeros(n, n, dtype=h.dtype)
        adj[data.edge_index[1], data.edge_index[0]] = 1.0
        e_dense = None
        if edge_attr is not None:
            first = int(batch.ptr[g])
            sel = (batch.edge_index[1] >= first) & (batch.edge_index[1] < first + n)
            e_dense = h.new_zeros(n, n, edge_attr.size(1))
            e_dense[data.edge_index[1], data.edge_index[0]] = edge_attr[sel]
        mask = data.pair_mask.view(n, n) if "pair_mask" in data else None
        yield h[off:off + n * n].view(n, n, -1), adj, e_dense, mask, slice(off, off + n * n)
        off += n * n


def gine_dense(hg: Tensor, adj: Tensor, atom: str, mask: Tensor | None, e_dense: Tensor | None) -> Tensor:
    r"""GINE-form local atom on one graph: \sum_w gate(u, v, w) ReLU(message), as [n, n, F]."""
    n = hg.size(0)
    e_dense = torch.zeros_like(hg) if e_dense is None else e_dense
    m = torch.ones(n, n, dtype=hg.dtype) if mask is None else mask.to(hg.dtype)
    if atom == "uL":  # messages h[u, w] + e[v, w] into (u, v), gate A[v, w] m[u, v] m[u, w]
        gate = adj[None, :, :] * m[:, :, None] * m[:, None, :]
        msg = torch.relu(hg[:, None, :, :] + e_dense[None, :, :, :])  # [u, v, w, F]
    else:  # messages h[w, v] + e[u, w] into (u, v), gate A[u, w] m[w, v] m[u, v]
        gate = adj[:, None, :] * m.T[None, :, :] * m[:, :, None]
        msg = torch.relu(hg.permute(1, 0, 2)[None, :, :, :] + e_dense[:, None, :, :])
    return (gate[..., None] * msg).sum(2)


def sswl_dense(conv: SSWLPlusConv, batch: Batch, h: Tensor, edge_attr: Tensor | None) -> Tensor:
    r"""ReLU(BN(Σ_a MLP_a((1+ε_a) h + AGG_a(h)))) with dense atoms, graph by graph (eval-mode BN)."""
    outs = []
    for hg, adj, e_dense, mask, _ in dense_graphs(batch, h, edge_attr):
        n = hg.size(0)
        total = 0
        for i, a in enumerate(conv.atoms):
            e = None if e_dense is None or a not in ("uL", "vL") else conv.edge_lins[a](e_dense)
            if a in ("uL", "vL") and conv.edge_mode == "gine":
                agg = gine_dense(hg, adj, a, mask, e).reshape(n * n, -1)
            else:
                agg = pair_atom_dense(hg, adj, a, mask, e).reshape(n * n, -1)
            own = (1 + conv.eps[i]) * hg.reshape(n * n, -1) if conv.gin else 0
            total = total + conv.mlps[a](own + agg)
        outs.append(torch.relu(conv.norm(total)))
    return torch.cat(outs)


def dss_dense(conv: DSSConv, batch: Batch, h: Tensor, edge_attr: Tensor | None) -> Tensor:
    """DSS-GNN from its equation, graph by graph: GIN in every subgraph + GIN of the node means on the graph."""
    outs = []
    for hg, adj, e_dense, mask, _ in dense_graphs(batch, h, edge_attr):
        n = hg.size(0)
        e_sub = None if e_dense is None else conv.edge_sub(e_dense)
        sub = conv.mlp_sub((1 + conv.eps[0]) * hg.reshape(n * n, -1)
                           + pair_atom_dense(hg, adj, "uL", mask, e_sub).reshape(n * n, -1))
        mean = hg.mean(0)  # [n, F]: mean over the subgraphs u of h(u, v)
        agg = adj @ mean
        if e_dense is not None:
            agg = agg + (adj[:, :, None] * conv.edge_graph(e_dense)).sum(1)
        graph = conv.mlp_graph((1 + conv.eps[1]) * mean + agg)
        out = conv.norm_sub(sub).view(n, n, -1) + conv.norm_graph(graph)[None, :, :]
        outs.append(torch.relu(out).reshape(n * n, -1))
    return torch.cat(outs)


def randomise(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random parameters and BN statistics (so eval-mode BN and ε are not identities), float64, eval mode."""
    gen = torch.Generator().manual_seed(seed)
    module = module.double().eval()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
        for name, b in module.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=gen, dtype=b.dtype) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=gen, dtype=b.dtype))
    return module


LAYERS = [
    ("sswl+", lambda e: SSWLPlusConv(3, 4, ("uL", "vL", "vv"), edge_dim=e), sswl_dense),
    ("sswl", lambda e: SSWLPlusConv(3, 4, ("uL", "vL"), edge_dim=e), sswl_dense),
    ("all-atoms", lambda e: SSWLPlusConv(3, 4, ("vu", "uu", "vv", "uL", "vL", "uG", "vG"), edge_dim=e), sswl_dense),
    ("sswl+gine", lambda e: SSWLPlusConv(3, 4, ("uL", "vL", "vv"), edge_dim=e, edge_mode="gine"), sswl_dense),
    ("pool-uG", lambda e: SSWLPlusConv(3, 4, ("uG",), gin=False), sswl_dense),
    ("pool-vG", lambda e: SSWLPlusConv(3, 4, ("vG", "uL"), edge_dim=e, gin=False), sswl_dense),
    ("ds", lambda e: DSConv(3, 4, edge_dim=e), sswl_dense),
    ("ds-gine", lambda e: DSConv(3, 4, edge_dim=e, edge_mode="gine"), sswl_dense),
    ("dss", lambda e: DSSConv(3, 4, edge_dim=e), dss_dense),
]


@pytest.mark.parametrize("with_edges", [False, True])
@pytest.mark.parametrize("policy", ["ego", "node_deletion", "node_marking"])
@pytest.mark.parametrize("name,build,dense", LAYERS, ids=[x[0] for x in LAYERS])
def test_layer_matches_dense_reference(name: str, build, dense, policy: str, with_edges: bool) -> None:
    batch = make_batch(policy)
    index = pair_index_from_batch(batch.edge_index, batch.ptr, batch.get("pair_mask"))
    conv = randomise(build(2 if with_edges else None), 0)
    gen = torch.Generator().manual_seed(1)
    h = torch.randn(index.num_pairs, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    e = torch.randn(batch.edge_index.size(1), 2, generator=gen, dtype=torch.float64) if with_edges else None
    if name == "pool-uG":
        e = None  # a layer without local atoms takes no edge features
    out, want = conv(h, index, e), dense(conv, batch, h, e)
    torch.testing.assert_close(out, want, **TOL[torch.float64])
    g = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    params = [h, *(p for p in conv.parameters() if p.requires_grad)]
    for a, b in zip(torch.autograd.grad((out * g).sum(), params, allow_unused=True),
                    torch.autograd.grad((want * g).sum(), params, allow_unused=True)):
        if a is None or b is None:
            assert a is None and b is None or (a if a is not None else b).abs().max() == 0
        else:
            torch.testing.assert_close(a, b, **TOL[torch.float64])


@pytest.mark.parametrize("name,build,dense", LAYERS, ids=[x[0] for x in LAYERS])
def test_layer_gradcheck(name: str, build, dense) -> None:
    batch = make_batch("ego", graph_list=[random_graph(3, 0.9, 4), random_graph(2, 1.0, 5)])
    index = pair_index_from_batch(batch.edge_index, batch.ptr, batch.pair_mask)
    conv = randomise(build(2), 2)
    h = torch.randn(index.num_pairs, 3, dtype=torch.float64, requires_grad=True)
    e = torch.randn(batch.edge_index.size(1), 2, dtype=torch.float64, requires_grad=True)
    if name == "pool-uG":
        assert torch.autograd.gradcheck(lambda h: conv(h, index), (h,))
    else:
        assert torch.autograd.gradcheck(lambda h, e: conv(h, index, e), (h, e))


class TinySubgraphGNN(torch.nn.Module):
    """h0(u, v) = x_v W + DistEmb(d(u, v)) [+ LabelEmb]; layers; readout over v then u."""

    def __init__(self, build, num_layers: int = 2, max_dis: int = 3) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 3)
        self.embed = PairEmbedding(3, max_dis, num_labels=2)
        self.layers = torch.nn.ModuleList([build() for _ in range(num_layers)])

    def forward(self, batch: Batch) -> Tensor:
        index = pair_index_from_batch(batch.edge_index, batch.ptr, batch.get("pair_mask"))
        h = self.embed(self.lin(batch.x), index, batch.pair_dis, batch.get("pair_label"))
        for layer in self.layers:
            h = layer(h, index, batch.edge_attr)
        return subgraph_readout(h, index)


@pytest.mark.parametrize("policy", ["ego", "ego_plus", "node_deletion", "node_marking"])
@pytest.mark.parametrize("name,build", [("sswl+", lambda: SSWLPlusConv(3, 3, edge_dim=2)),
                                        ("sswl+gine", lambda: SSWLPlusConv(3, 3, edge_dim=2, edge_mode="gine")),
                                        ("ds", lambda: DSConv(3, 3, edge_dim=2)),
                                        ("dss", lambda: DSSConv(3, 3, edge_dim=2))])
def test_readout_is_invariant_under_node_relabelling(name: str, build, policy: str) -> None:
    torch.manual_seed(0)
    model = randomise(TinySubgraphGNN(build), 3)
    t = SubgraphPairs(max_dis=3, policy=policy, num_hops=1)
    data_list, relabelled = [], []
    for i, n in enumerate((7, 5, 1)):
        d = random_graph(n, 0.5, 10 + i)
        d.x = torch.randn(n, 2, dtype=torch.float64)
        d.edge_attr = torch.randn(d.edge_index.size(1), 2, dtype=torch.float64)
        perm = torch.randperm(n)
        x = torch.empty_like(d.x)
        x[perm] = d.x
        data_list.append(t(d.clone()))
        relabelled.append(t(Data(x=x, edge_index=perm[d.edge_index], edge_attr=d.edge_attr, num_nodes=n)))
    out = model(Batch.from_data_list(data_list))
    out_p = model(Batch.from_data_list(relabelled))
    assert out.shape == (3, 3)
    torch.testing.assert_close(out, out_p)
    model.train()  # train-mode BN: still invariant, and the batch equals the graphs run ... as one batch
    torch.testing.assert_close(model(Batch.from_data_list(data_list)), model(Batch.from_data_list(relabelled)))


def test_layer_bad_input() -> None:
    with pytest.raises(ValueError, match="atoms must be distinct names from vu, uu"):
        SSWLPlusConv(3, 3, atoms=("uL", "uw"))
    with pytest.raises(ValueError, match="atoms must be distinct"):
        SSWLPlusConv(3, 3, atoms=())
    batch = make_batch("ego")
    index = pair_index_from_batch(batch.edge_index, batch.ptr, batch.pair_mask)
    h = torch.zeros(index.num_pairs, 3)
    for conv in (SSWLPlusConv(3, 3, edge_dim=2), DSSConv(3, 3, edge_dim=2)):
        with pytest.raises(ValueError, match="built with edge_dim=2; pass edge_attr"):
            conv(h, index)
    with pytest.raises(ValueError, match="built without edge features \\(edge_dim=None\\) but got edge_attr"):
        SSWLPlusConv(3, 3)(h, index, torch.zeros(batch.edge_index.size(1), 3))
    with pytest.raises(ValueError, match="edge_mode must be 'add' or 'gine'"):
        SSWLPlusConv(3, 3, edge_mode="relu")
    with pytest.raises(ValueError, match="edge_mode must be one of add, gine"):
        pair_atom(h, index, "uL", None, "relu")
    with pytest.raises(ValueError, match="expects h of shape \\[R, 3\\], got \\(.*, 5\\)"):
        SSWLPlusConv(3, 3)(torch.zeros(index.num_pairs, 5), index)
    with pytest.raises(ValueError, match="expects edge_attr of shape \\[E, 2\\]"):
        DSSConv(3, 3, edge_dim=2)(h, index, torch.zeros(batch.edge_index.size(1), 4))
    embed = PairEmbedding(3, max_dis=2)
    x = torch.zeros(int(batch.ptr[-1]), 3)
    with pytest.raises(ValueError, match="pair_dis has value 4 but PairEmbedding\\(max_dis=2\\) embeds 0..3"):
        embed(x, index, batch.pair_dis)  # the batch was made with max_dis=3
    with pytest.raises(ValueError, match="pair_dis must be \\[R\\]"):
        embed(x, index, batch.pair_dis[:-1])
    with pytest.raises(ValueError, match="built with num_labels=0"):
        PairEmbedding(3, max_dis=3)(x, index, batch.pair_dis, batch.pair_dis.clamp(max=1))
    assert repr(SSWLPlusConv(3, 4, ("uL", "vL"))) == "SSWLPlusConv(3, 4, atoms=('uL', 'vL'), edge_dim=None)"
    assert repr(PairEmbedding(3, max_dis=4, num_labels=2)) == "PairEmbedding(3, max_dis=4, num_labels=2)"
    assert repr(DSSConv(3, 4)) == "DSSConv(3, 4, edge_dim=None)"


@pytest.mark.parametrize("atom", ["uL", "vL"])
def test_gine_local_atom_matches_dense_reference(atom: str) -> None:
    r"""\sum_w ReLU(h(u, w) + e_{wv}) (uL) / ReLU(h(w, v) + e_{wu}) (vL), the GINE form, dense per graph."""
    from graphlab.ops.pairs import local_atom_gine

    batch = make_batch("ego")
    index = index_of(batch, True)
    gen = torch.Generator().manual_seed(3)
    h = torch.randn(index.num_pairs, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    e = torch.randn(batch.edge_index.size(1), 3, generator=gen, dtype=torch.float64, requires_grad=True)
    out = local_atom_gine(h, getattr(index, atom), e)
    outs = []
    for hg, adj, e_dense, mask, _ in dense_graphs(batch, h, e):
        outs.append(gine_dense(hg, adj, atom, mask, e_dense).reshape(-1, h.size(1)))
    want = torch.cat(outs)
    torch.testing.assert_close(pair_atom(h, index, atom, e, "gine"), want)
    no_edges = torch.cat([gine_dense(hg, adj, atom, mask, None).reshape(-1, h.size(1))
                          for hg, adj, _, mask, _ in dense_graphs(batch, h, None)])
    torch.testing.assert_close(pair_atom(h, index, atom, None, "gine"), no_edges)  # sum of ReLU(h), as SWL's code
    torch.testing.assert_close(out, want)
    g = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad((out * g).sum(), [h, e]), torch.autograd.grad((want * g).sum(), [h, e])):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------------------------------------- edge deletion


def edge_deleted_reference(h: Tensor, batch: Batch, atom: str, edge_attr: Tensor | None) -> Tensor:
    """Per graph, per deleted edge (networkx): the graph minus that edge, atoms on [m, n, F] states."""
    outs, off = [], 0
    for g in range(batch.num_graphs):
        data = batch.get_example(g)
        n, dels = data.num_nodes, data.deleted_edge_index.T.tolist()
        hg = h[off:off + len(dels) * n].view(len(dels), n, -1)
        first = int(batch.ptr[g])
        sel = (batch.edge_index[1] >= first) & (batch.edge_index[1] < first + n)
        e_of = {}
        if edge_attr is not None:
            for (w, v), vec in zip(data.edge_index.T.tolist(), edge_attr[sel]):
                e_of[(w, v)] = vec
        for s, (a, b) in enumerate(dels):
            graph = nx.DiGraph()
            graph.add_nodes_from(range(n))
            graph.add_edges_from(data.edge_index.T.tolist())
            if a != b:
                graph.remove_edges_from([(a, b), (b, a)])
            rows = []
            for v in range(n):
                if atom == "uv":
                    rows.append(hg[s, v])
                elif atom == "uL":
                    rows.append(sum((hg[s, w] + (e_of[(w, v)] if e_of else 0) for w in graph.predecessors(v)),
                                    torch.zeros_like(hg[s, v])))
                elif atom == "uG":
                    rows.append(hg[s].sum(0))
                else:  # vG
                    rows.append(hg[:, v].sum(0))
            outs.append(torch.stack(rows))
        off += len(dels) * n
    return torch.cat(outs)


@pytest.mark.parametrize("with_edges", [False, True])
@pytest.mark.parametrize("atom", ["uv", "uL", "uG", "vG"])
def test_edge_deleted_atoms_match_networkx(atom: str, with_edges: bool) -> None:
    batch = make_batch("edge_deletion")
    index = pair_index_from_batch(batch.edge_index, batch.ptr, deleted_edge_index=batch.deleted_edge_index)
    assert index.num_pairs == sum(batch.get_example(g).deleted_edge_index.size(1) * batch.get_example(g).num_nodes
                                  for g in range(batch.num_graphs))
    gen = torch.Generator().manual_seed(4)
    h = torch.randn(index.num_pairs, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    e = torch.randn(batch.edge_index.size(1), 3, generator=gen, dtype=torch.float64) if with_edges else None
    out = pair_atom(h, index, atom, e)
    want = edge_deleted_reference(h, batch, atom, e)
    torch.testing.assert_close(out, want)
    g = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(torch.autograd.grad((out * g).sum(), h)[0],
                               torch.autograd.grad((want * g).sum(), h)[0])


def test_edge_deleted_index_rejects_rooted_atoms_and_bad_input() -> None:
    batch = make_batch("edge_deletion")
    index = pair_index_from_batch(batch.edge_index, batch.ptr, deleted_edge_index=batch.deleted_edge_index)
    for atom in ("vu", "uu", "vv", "vL"):
        with pytest.raises(ValueError, match=f"atom '{atom}' needs one subgraph per node"):
            pair_atom(torch.zeros(index.num_pairs, 2), index, atom)
    with pytest.raises(ValueError, match="has no subgraph in deleted_edge_index"):
        pair_index_from_batch(batch.edge_index, batch.ptr, deleted_edge_index=batch.deleted_edge_index[:, :3])
    with pytest.raises(ValueError, match="not both"):
        pair_index_from_batch(batch.edge_index, batch.ptr, torch.ones(5, dtype=torch.bool),
                              batch.deleted_edge_index)


@pytest.mark.parametrize("name,build", [("ds", lambda: DSConv(3, 3, edge_dim=2)),
                                        ("dss", lambda: DSSConv(3, 3, edge_dim=2))])
def test_edge_deleted_readout_is_invariant_under_node_relabelling(name: str, build) -> None:
    model = randomise(TinyEdgeDeletedGNN(build), 5)
    t = SubgraphPairs(policy="edge_deletion")
    data_list, relabelled = [], []
    for i, n in enumerate((6, 4, 1)):
        d = random_graph(n, 0.5, 20 + i)
        d.x = torch.randn(n, 2, dtype=torch.float64)
        d.edge_attr = torch.randn(d.edge_index.size(1), 2, dtype=torch.float64)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(i))
        x = torch.empty_like(d.x)
        x[perm] = d.x
        data_list.append(t(d.clone()))
        relabelled.append(t(Data(x=x, edge_index=perm[d.edge_index], edge_attr=d.edge_attr, num_nodes=n)))
    out = model(Batch.from_data_list(data_list))
    torch.testing.assert_close(out, model(Batch.from_data_list(relabelled)))
    # DSS's cross-subgraph mean divides by the number of subgraphs m, not n: compare graph 0 with its own run
    torch.testing.assert_close(out[:1], model(Batch.from_data_list(data_list[:1])))


class TinyEdgeDeletedGNN(torch.nn.Module):
    """h0(s, v) = x_v W; layers; readout over v then over the subgraphs."""

    def __init__(self, build, num_layers: int = 2) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 3)
        self.layers = torch.nn.ModuleList([build() for _ in range(num_layers)])

    def forward(self, batch: Batch) -> Tensor:
        index = batch_pair_index(batch)
        h = self.lin(batch.x)[index.node]
        for layer in self.layers:
            h = layer(h, index, batch.edge_attr)
        return subgraph_readout(h, index)


def test_int32_indices_and_a_batch_without_edges() -> None:
    batch = make_batch("ego")
    index = index_of(batch, True)
    index32 = pair_index_from_batch(batch.edge_index.int(), batch.ptr.int(), batch.pair_mask)
    h = torch.randn(index.num_pairs, 2, dtype=torch.float64)
    for atom in ATOMS:
        torch.testing.assert_close(pair_atom(h, index32, atom), pair_atom(h, index, atom))
    lonely = make_batch("node_marking", graph_list=[Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=1),
                                                    Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=2)])
    index = index_of(lonely, False)
    h = torch.randn(5, 3, dtype=torch.float64)
    for atom in ATOMS:
        torch.testing.assert_close(pair_atom(h, index, atom), dense_atom_per_graph(h, lonely, atom, None, False))
    conv = randomise(SSWLPlusConv(3, 3, ("uL", "vL", "vv", "uG")), 1)
    torch.testing.assert_close(conv(h, index), sswl_dense(conv, lonely, h, None))
