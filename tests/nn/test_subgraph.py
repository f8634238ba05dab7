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
    SSWLPlusConv,
    pair_index_from_batch,
    subgraph_readout,
)
from graphlab.ops.pairs import ATOMS, PairIndex, pair_atom
from graphlab.ops.reference import pair_atom_dense
from graphlab.transforms import SubgraphPairs

TOL = {torch.float64: dict(atol=1e-10, rtol=1e-9), torch.float32: dict(atol=1e-5, rtol=1e-4)}


def random_graph(n: int, p: float, seed: int) -> Data:
    g = nx.gnp_random_graph(n, p, seed=seed)
    ei = torch.tensor(list(g.edges), dtype=torch.long).T.reshape(2, -1)
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
