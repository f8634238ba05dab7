"""Sheaf Laplacian builders, O(d) maps, learners and layers against dense references from the definitions."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import remove_self_loops, to_undirected

from graphlab.nn import sheaf as S
from graphlab.nn.sheaf.orthogonal import _fill_lower
from graphlab.ops import _backend

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one intra-op thread, restored after


def random_undirected(num_nodes: int, num_edges: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    edge_index, _ = remove_self_loops(torch.randint(0, num_nodes, (2, num_edges), generator=gen))
    return to_undirected(edge_index, num_nodes=num_nodes)


# ---------------------------------------------------------------------------------------------- references


def dense_coboundary_laplacian(graph: S.SheafGraph, maps: torch.Tensor) -> torch.Tensor:
    """``delta^T delta`` from the definition: ``(delta x)_e = F_{v<e} x_v - F_{u<e} x_u`` per undirected edge."""
    n, d = graph.num_nodes, maps.size(-1)
    full = torch.diag_embed(maps) if maps.dim() == 2 else maps
    rows = []
    for e, (u, v) in enumerate(graph.edge_index.t().tolist()):
        if u > v:
            continue
        delta = torch.zeros(d, n * d, dtype=maps.dtype)
        delta[:, v * d:(v + 1) * d] = full[graph.rev[e]]
        delta[:, u * d:(u + 1) * d] = -full[e]
        rows.append(delta)
    delta = torch.cat(rows) if rows else torch.zeros(0, n * d, dtype=maps.dtype)
    return delta.t() @ delta


def dense_normalise(lap: torch.Tensor, n: int, d: int) -> torch.Tensor:
    """``(D + I)^{-1/2} L (D + I)^{-1/2}`` with ``D`` the block diagonal, by eigendecomposition per block."""
    inv_sqrt = torch.zeros_like(lap)
    for u in range(n):
        sl = slice(u * d, (u + 1) * d)
        evals, evecs = torch.linalg.eigh(lap[sl, sl] + torch.eye(d, dtype=lap.dtype))
        inv_sqrt[sl, sl] = evecs @ torch.diag(evals.rsqrt()) @ evecs.t()
    return inv_sqrt @ lap @ inv_sqrt


def random_orthogonal(num: int, d: int, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(num, d, d, generator=gen, dtype=torch.float64))
    return q


def build(kind: str, graph: S.SheafGraph, maps: torch.Tensor, normalisation: str, weights=None):
    if kind == "diag":
        diag, off = S.diag_sheaf_laplacian(maps, graph, normalisation)
    elif kind == "bundle":
        diag, off = S.bundle_sheaf_laplacian(maps, graph, weights, normalisation)
    else:
        diag, off = S.general_sheaf_laplacian(maps, graph, normalisation)
    return S.SheafLaplacian(diag, off, graph)


def random_maps(kind: str, num_edges: int, d: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if kind == "diag":
        return torch.randn(num_edges, d, generator=gen, dtype=torch.float64)
    if kind == "bundle":
        return random_orthogonal(num_edges, d, gen)
    return torch.randn(num_edges, d, d, generator=gen, dtype=torch.float64)


# ---------------------------------------------------------------------------------------------- builders


@pytest.mark.parametrize("kind", ["diag", "bundle", "general"])
@pytest.mark.parametrize("normalisation", ["none", "augmented"])
def test_builder_matches_dense_definition(kind, normalisation):
    graph = S.SheafGraph.from_edge_index(random_undirected(9, 20, seed=1), 10)  # node 9 isolated
    d = 3
    maps = random_maps(kind, graph.edge_index.size(1), d, seed=2)
    weights = None
    if kind == "bundle":
        half = torch.rand(graph.edge_index.size(1), dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        weights = half * half[graph.rev]
        scaled = maps * weights.view(-1, 1, 1)
    lap = build(kind, graph, maps, normalisation, weights).to_dense()
    want = dense_coboundary_laplacian(graph, scaled if kind == "bundle" else maps)
    if normalisation == "augmented":
        want = dense_normalise(want, graph.num_nodes, d)
    torch.testing.assert_close(lap, want)
    torch.testing.assert_close(lap, lap.t())
    assert torch.linalg.eigvalsh(lap).min() > -1e-10
    if normalisation == "augmented":  # the spectrum of the augmented normalised Laplacian lies in [0, 2)
        assert torch.linalg.eigvalsh(lap).max() < 2


@pytest.mark.parametrize("kind", ["diag", "general"])
def test_degree_normalisation(kind):
    graph = S.SheafGraph.from_edge_index(random_undirected(8, 18, seed=4), 8)
    d = 2
    maps = random_maps(kind, graph.edge_index.size(1), d, seed=5)
    lap = build(kind, graph, maps, "degree").to_dense()
    deg = graph.deg(torch.float64)
    scale = (deg * (d if kind == "general" else 1) + 1).rsqrt().repeat_interleave(d)
    want = scale[:, None] * dense_coboundary_laplacian(graph, maps) * scale[None, :]
    torch.testing.assert_close(lap, want)


def test_unit_maps_give_normalised_graph_laplacian():
    edge_index = random_undirected(12, 30, seed=6)
    graph = S.SheafGraph.from_edge_index(edge_index, 12)
    ones = torch.ones(graph.edge_index.size(1), 1, dtype=torch.float64)
    lap = build("diag", graph, ones, "augmented").to_dense()
    adj = torch.zeros(12, 12, dtype=torch.float64)
    adj[edge_index[0], edge_index[1]] = 1.0
    deg = adj.sum(1)
    scale = (deg + 1).rsqrt()
    want = scale[:, None] * (torch.diag(deg) - adj) * scale[None, :]
    torch.testing.assert_close(lap, want)
    torch.testing.assert_close(build("diag", graph, ones, "none").to_dense(), torch.diag(deg) - adj)


def test_global_sections_in_kernel():
    """For the constant sheaf and for an O(d) sheaf with node-wise frames ``F_{u<e} = Q_u`` the sections
    ``x_u = Q_u^T v`` are global sections: the unnormalised Laplacian annihilates them."""
    graph = S.SheafGraph.from_edge_index(random_undirected(10, 25, seed=7), 10)
    d, gen = 3, torch.Generator().manual_seed(8)
    v = torch.randn(d, 2, dtype=torch.float64, generator=gen)
    eye = torch.eye(d, dtype=torch.float64).expand(graph.edge_index.size(1), d, d)
    constant = build("general", graph, eye.contiguous(), "none")
    section = v.expand(10, d, 2).contiguous()
    torch.testing.assert_close(constant.matmul(section), torch.zeros_like(section))
    frames = random_orthogonal(10, d, gen)
    bundle = build("bundle", graph, frames[graph.row].contiguous(), "none")
    twisted = frames.transpose(1, 2) @ v
    torch.testing.assert_close(bundle.matmul(twisted), torch.zeros_like(twisted))
    assert bundle.matmul(section).abs().max() > 1e-3  # a constant signal is not a section of the twisted sheaf


@pytest.mark.parametrize("add_lp,add_hp", [(True, False), (False, True), (True, True)])
def test_fixed_dims(add_lp, add_hp):
    graph = S.SheafGraph.from_edge_index(random_undirected(7, 14, seed=9), 7)
    maps = random_maps("general", graph.edge_index.size(1), 2, seed=10)
    diag, off = S.general_sheaf_laplacian(maps, graph, "augmented")
    diag2, off2 = S.append_fixed_dims(diag, off, graph, add_lp, add_hp, "augmented")
    k = int(add_lp) + int(add_hp)
    assert diag2.shape == (7, 2 + k, 2 + k) and off2.shape == (off.size(0), 2 + k, 2 + k)
    torch.testing.assert_close(off2[:, :2, :2], off)
    deg = graph.deg(torch.float64)
    scale = (deg[graph.row] + 1).rsqrt() * (deg[graph.col] + 1).rsqrt()
    signs = [1.0] * int(add_lp) + [-1.0] * int(add_hp)
    for j, sign in enumerate(signs):
        torch.testing.assert_close(off2[:, 2 + j, 2 + j], sign * scale)
        torch.testing.assert_close(diag2[:, 2 + j, 2 + j], deg / (deg + 1))
    assert off2[:, :2, 2:].abs().max() == 0


def test_batched_equals_per_graph():
    graphs = [Data(edge_index=random_undirected(n, 2 * n, seed=n), num_nodes=n) for n in (6, 9, 5)]
    batch = Batch.from_data_list(graphs)
    torch.manual_seed(0)
    learner = S.SheafLaplacianLearner("general", d=2, hidden_channels=3, add_lp=True).double()
    x = torch.randn(batch.num_nodes, 3, 3, dtype=torch.float64)
    dense = learner(x, S.SheafGraph.from_edge_index(batch.edge_index, batch.num_nodes)).to_dense()
    offset = 0
    for g in graphs:
        n = g.num_nodes
        part = learner(x[offset:offset + n], S.SheafGraph.from_edge_index(g.edge_index, n)).to_dense()
        sl = slice(offset * 3, (offset + n) * 3)
        torch.testing.assert_close(dense[sl, sl], part)
        offset += n
    blocks_mask = torch.block_diag(*[torch.ones(g.num_nodes * 3, g.num_nodes * 3) for g in graphs])
    assert dense[blocks_mask == 0].abs().max() == 0


@pytest.mark.parametrize("kind", ["diag", "bundle", "general"])
def test_builder_gradcheck(kind):
    graph = S.SheafGraph.from_edge_index(random_undirected(6, 10, seed=11), 7)
    maps = random_maps("general" if kind != "diag" else "diag", graph.edge_index.size(1), 2, seed=12)
    maps.requires_grad_(True)
    x = torch.randn(7, 2, 2, dtype=torch.float64)

    def apply(m):
        transports = S.householder_orthogonal(m[:, 1, :1], 2) if kind == "bundle" else m
        return build(kind, graph, transports, "augmented").matmul(x)

    assert torch.autograd.gradcheck(apply, (maps,))


# ---------------------------------------------------------------------------------------------- O(d) maps


@pytest.mark.parametrize("orth_map,d", [("householder", 2), ("householder", 4), ("cayley", 3),
                                        ("matrix_exp", 3), ("euler", 2), ("euler", 3)])
def test_orthogonal_maps(orth_map, d):
    module = S.Orthogonal(d, orth_map)
    params = torch.randn(17, module.num_params, dtype=torch.float64, generator=torch.Generator().manual_seed(16))
    q = module(params)
    torch.testing.assert_close(q @ q.transpose(1, 2), torch.eye(d, dtype=torch.float64).expand(17, d, d))
    if orth_map in ("cayley", "matrix_exp", "euler"):
        torch.testing.assert_close(torch.linalg.det(q), torch.ones(17, dtype=torch.float64))
    assert torch.autograd.gradcheck(module, (params[:3].clone().requires_grad_(True),))


def test_householder_equals_lapack_orgqr():
    d = 4
    params = torch.randn(6, d * (d - 1) // 2, dtype=torch.float64)
    vectors = _fill_lower(params, d, -1) + torch.eye(d, dtype=torch.float64)
    tau = 2.0 / (vectors * vectors).sum(1)
    torch.testing.assert_close(S.householder_orthogonal(params, d), torch.linalg.householder_product(vectors, tau))


def test_orthogonal_validation():
    with pytest.raises(ValueError, match="orth_map must be one of"):
        S.Orthogonal(3, "qr")
    with pytest.raises(ValueError, match="needs d in \\(2, 3\\)"):
        S.Orthogonal(4, "euler")


# ---------------------------------------------------------------------------------------------- learners, graph


def test_local_concat_learners():
    edge_index = random_undirected(6, 12, seed=17)
    x = torch.randn(6, 3 * 4)
    learner = S.LocalConcatSheafLearner(12, (3, 3))
    maps = learner(x, edge_index)
    want = torch.tanh(learner.linear(torch.cat([x[edge_index[0]], x[edge_index[1]]], 1))).view(-1, 3, 3)
    torch.testing.assert_close(maps, want)
    variant = S.LocalConcatSheafLearnerVariant(3, 4, (2,), sheaf_act="id")
    summed = x.view(6, 3, 4).sum(1)
    torch.testing.assert_close(variant(x, edge_index),
                               variant.linear(torch.cat([summed[edge_index[0]], summed[edge_index[1]]], 1)))
    with pytest.raises(ValueError, match="sheaf_act must be one of"):
        S.LocalConcatSheafLearner(3, (1,), sheaf_act="relu")


def test_edge_weights_symmetric():
    graph = S.SheafGraph.from_edge_index(random_undirected(8, 20, seed=18), 8)
    w = S.EdgeWeightLearner(5)(torch.randn(8, 5), graph.edge_index, graph.rev)
    torch.testing.assert_close(w, w[graph.rev])
    assert ((w > 0) & (w < 1)).all()


def test_fixed_maps_follow_edge_order():
    edge_index = random_undirected(6, 12, seed=19)
    maps = torch.arange(edge_index.size(1), dtype=torch.float32).view(-1, 1)
    fixed = S.FixedRestrictionMaps(maps, edge_index)
    perm = torch.randperm(edge_index.size(1), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(fixed(torch.zeros(6, 1), edge_index[:, perm]), maps[perm])
    with pytest.raises(ValueError, match="without a fixed restriction map"):
        fixed(torch.zeros(6, 1), torch.tensor([[0, 5], [5, 0]]) + 0 * edge_index[:, :2])


def test_sheaf_graph_validation_and_cache():
    edge_index = random_undirected(6, 12, seed=20)
    with pytest.raises(ValueError, match="self-loops"):
        S.SheafGraph.from_edge_index(torch.cat([edge_index, torch.tensor([[1], [1]])], 1), 6)
    with pytest.raises(ValueError, match="not symmetric"):
        S.SheafGraph.from_edge_index(torch.tensor([[0, 1, 2], [1, 0, 1]]), 3)
    with pytest.raises(ValueError, match="duplicate"):
        S.SheafGraph.from_edge_index(torch.cat([edge_index, edge_index[:, :1]], 1), 6)
    graph = S.SheafGraph.from_edge_index(edge_index, 6)
    torch.testing.assert_close(graph.edge_index[:, graph.rev], graph.edge_index.flip(0))
    cache = S.SheafGraphCache()
    assert cache(edge_index, 6) is cache(edge_index.clone(), 6)
    assert cache(edge_index, 6) is not cache(edge_index, 7)


def test_connection_transports():
    gen = torch.Generator().manual_seed(21)
    x = torch.randn(15, 6, generator=gen, dtype=torch.float64)
    graph = S.SheafGraph.from_edge_index(random_undirected(15, 30, seed=22), 15)
    bases = S.local_pca_bases(x, graph, d=3, num_neighbours=6)
    torch.testing.assert_close(bases.transpose(1, 2) @ bases, torch.eye(3, dtype=torch.float64).expand(15, 3, 3))
    transports = S.procrustes_transports(bases, graph)
    torch.testing.assert_close(transports @ transports.transpose(1, 2),
                               torch.eye(3, dtype=torch.float64).expand(transports.size(0), 3, 3))
    torch.testing.assert_close(transports[graph.rev], transports.transpose(1, 2))
    # Procrustes optimality: no rotation of the solution fits O_u^T O_v better
    target = bases[graph.row].transpose(1, 2) @ bases[graph.col]
    best = (target - transports).norm(dim=(1, 2))
    other = (target - transports @ S.matrix_exp_orthogonal(0.1 * torch.randn(transports.size(0), 6, dtype=torch.float64), 3)).norm(dim=(1, 2))
    assert (best <= other + 1e-9).all()
    diag, off = S.connection_sheaf_laplacian(transports, graph)
    lap = S.SheafLaplacian(diag, off, graph).to_dense()
    # as a sheaf: F_{u<e} = I and F_{v<e} = O_uv for e = (u, v), u < v, so that L_uv = -O_uv
    eye = torch.eye(3, dtype=torch.float64).expand_as(transports)
    maps = torch.where((graph.row < graph.col).view(-1, 1, 1), eye, transports[graph.rev])
    torch.testing.assert_close(lap, dense_normalise(dense_coboundary_laplacian(graph, maps), 15, 3))


# ---------------------------------------------------------------------------------------------- layers


def permuted(x, edge_index, seed):
    """Relabel nodes by a random permutation and shuffle the edge order."""
    gen = torch.Generator().manual_seed(seed)
    n = x.size(0)
    perm = torch.randperm(n, generator=gen)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(n)
    edge_perm = torch.randperm(edge_index.size(1), generator=gen)
    return x[perm], inverse[edge_index][:, edge_perm], perm


def assert_equivariant(fn, x, edge_index, seed=0):
    out = fn(x, edge_index)
    x_p, edge_index_p, perm = permuted(x, edge_index, seed)
    torch.testing.assert_close(fn(x_p, edge_index_p), out[perm], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("sheaf_type", ["diag", "bundle", "general"])
def test_diffusion_layer_equivariant(sheaf_type):
    torch.manual_seed(0)
    learner = S.SheafLaplacianLearner(sheaf_type, d=2, hidden_channels=4, add_hp=True)
    layer = S.DiscreteSheafDiffusionLayer(3, 4).eval()
    edge_index = random_undirected(11, 25, seed=23)
    fn = lambda x, ei: layer(x, learner(x, S.SheafGraph.from_edge_index(ei, x.size(0))))
    assert_equivariant(fn, torch.randn(11, 3, 4), edge_index)


def test_sheaf_conv_equivariant_and_formula():
    torch.manual_seed(0)
    conv = S.SheafConv(2, 3, 5, act="id")
    edge_index = random_undirected(9, 20, seed=24)
    graph = S.SheafGraph.from_edge_index(edge_index, 9)
    maps = torch.randn(graph.edge_index.size(1), 2, 2)
    lap = build("general", graph, maps, "augmented")
    x = torch.randn(9, 2, 3)
    h = torch.einsum("ij,njf->nif", conv.left.weight, x) @ conv.right.weight.t()
    want = h.reshape(18, 5) - lap.to_dense() @ h.reshape(18, 5)
    torch.testing.assert_close(conv(x, lap).reshape(18, 5), want, atol=1e-5, rtol=1e-5)
    learner = S.SheafLaplacianLearner("bundle", d=2, hidden_channels=3)
    fn = lambda xx, ei: conv(xx, learner(xx, S.SheafGraph.from_edge_index(ei, 9)))
    assert_equivariant(fn, x, edge_index)


def test_diffusion_layer_formula():
    torch.manual_seed(0)
    layer = S.DiscreteSheafDiffusionLayer(2, 3, use_act=False)
    nn_init = torch.randn(2)
    with torch.no_grad():
        layer.epsilons.copy_(nn_init.view(2, 1))
        layer.left.weight.copy_(torch.randn(2, 2))
    graph = S.SheafGraph.from_edge_index(random_undirected(7, 14, seed=25), 7)
    lap = build("diag", graph, torch.randn(graph.edge_index.size(1), 2), "augmented")
    x = torch.randn(7, 2, 3)
    h = torch.einsum("ij,njf->nif", layer.left.weight, x) @ layer.right.weight.t()
    want = (1 + torch.tanh(nn_init)).repeat(7)[:, None] * x.reshape(14, 3) - lap.to_dense() @ h.reshape(14, 3)
    torch.testing.assert_close(layer(x, lap).reshape(14, 3), want, atol=1e-5, rtol=1e-5)


def test_layers_same_on_every_backend():
    torch.manual_seed(0)
    learner = S.SheafLaplacianLearner("general", d=3, hidden_channels=4).double()
    layer = S.DiscreteSheafDiffusionLayer(3, 4).double()
    graph = S.SheafGraph.from_edge_index(random_undirected(10, 22, seed=26), 10)
    x = torch.randn(10, 3, 4, dtype=torch.float64)
    outs = []
    for path in ("reference", "cpu"):
        with _backend.set_backend(path):
            outs.append(layer(x, learner(x, graph)))
            assert _backend.last_path("block_spmm") == path
    torch.testing.assert_close(outs[0], outs[1])


# ---------------------------------------------------------------------------------------------- preconditions


def test_bundle_laplacian_rejects_per_direction_edge_weights():
    """Per-direction weights w_(u,v) != w_(v,u) would give an asymmetric Laplacian: refused, with the fix."""
    graph = S.SheafGraph.from_edge_index(random_undirected(8, 20, seed=1), 8)
    gen = torch.Generator().manual_seed(2)
    transports = random_orthogonal(graph.edge_index.size(1), 2, gen)
    weights = torch.rand(graph.edge_index.size(1), generator=gen, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"edge_weights of edge \(\d+, \d+\) and of its reverse .* w \* w\[graph.rev\]"):
        S.bundle_sheaf_laplacian(transports, graph, weights)
    diag, off = S.bundle_sheaf_laplacian(transports, graph, weights * weights[graph.rev])  # the fix works
    dense = S.SheafLaplacian(diag, off, graph).to_dense()
    torch.testing.assert_close(dense, dense.t())
    with pytest.raises(ValueError, match=r"edge_weights must have shape \[E\]"):
        S.bundle_sheaf_laplacian(transports, graph, weights[:-1])


def test_builders_check_block_shapes_and_orthogonality():
    graph = S.SheafGraph.from_edge_index(random_undirected(8, 20, seed=1), 8)
    num_edges = graph.edge_index.size(1)
    gen = torch.Generator().manual_seed(3)
    with pytest.raises(ValueError, match=f"has {num_edges - 1} blocks but the graph has E = {num_edges}"):
        S.diag_sheaf_laplacian(torch.randn(num_edges - 1, 2, generator=gen), graph)
    with pytest.raises(ValueError, match=r"maps must have shape \[E, d, d\]"):
        S.general_sheaf_laplacian(torch.randn(num_edges, 2, 3, generator=gen), graph)
    with pytest.raises(ValueError, match=r"maps must have shape \[E, d\]"):
        S.diag_sheaf_laplacian(torch.randn(num_edges, 2, 2, generator=gen), graph)
    with pytest.raises(ValueError, match="transports must be orthogonal .* graphlab.nn.sheaf.Orthogonal"):
        S.bundle_sheaf_laplacian(torch.randn(num_edges, 2, 2, generator=gen), graph)
    with pytest.raises(ValueError, match="transports must be orthogonal"):
        S.connection_sheaf_laplacian(2 * torch.eye(2).expand(num_edges, 2, 2), graph)
    not_transposed = random_orthogonal(num_edges, 2, gen)  # O_vu independent of O_uv
    with pytest.raises(ValueError, match="must be the transpose of the one of"):
        S.connection_sheaf_laplacian(not_transposed, graph)
    with _backend.set_validation(False):  # value checks off: only shapes are checked
        S.bundle_sheaf_laplacian(torch.randn(num_edges, 2, 2, generator=gen), graph)
    diag, off = S.diag_sheaf_laplacian(torch.randn(num_edges, 2, generator=gen), graph)
    with pytest.raises(ValueError, match="must be the blocks of a Laplacian on this graph"):
        S.append_fixed_dims(diag[:-1], off, graph, add_lp=True, add_hp=False)
    with pytest.raises(ValueError, match="normalisation must be"):
        S.append_fixed_dims(diag, off, graph, add_lp=True, add_hp=False, normalisation="degre")


def test_sheaf_graph_rejects_indices_outside_num_nodes():
    with pytest.raises(ValueError, match=r"indices in \[0, 5\] but the graph has num_nodes=4"):
        S.SheafGraph.from_edge_index(torch.tensor([[0, 5], [5, 0]]), 4)
    with pytest.raises(ValueError, match=r"indices in \[-1, 2\]"):
        S.SheafGraph.from_edge_index(torch.tensor([[-1, 2], [2, -1]]), 4)


@pytest.mark.parametrize("fn,d,good", [(S.householder_orthogonal, 3, 3), (S.cayley_orthogonal, 3, 6),
                                       (S.matrix_exp_orthogonal, 2, 3), (S.euler_orthogonal, 3, 3)])
def test_orthogonal_maps_check_parameter_count(fn, d, good):
    assert fn(torch.zeros(4, good), d).shape == (4, d, d)
    with pytest.raises(ValueError, match=f"takes {good} parameters per map"):
        fn(torch.zeros(4, good + 1), d)
    with pytest.raises(ValueError, match="takes"):
        S.Orthogonal(d, "householder")(torch.zeros(4, d * (d - 1) // 2 + 1))


def test_learners_and_layers_check_input_shapes():
    graph = S.SheafGraph.from_edge_index(random_undirected(8, 20, seed=1), 8)
    with pytest.raises(ValueError, match=r"x must have shape \[N, 6\]"):
        S.LocalConcatSheafLearner(6, (2,))(torch.randn(8, 5), graph.edge_index)
    with pytest.raises(ValueError, match=r"x must have shape \[N, 12\] \(d \* hidden_channels\)"):
        S.LocalConcatSheafLearnerVariant(3, 4, (2,))(torch.randn(8, 4), graph.edge_index)
    with pytest.raises(ValueError, match=r"edge_index must have shape \[2, E\]"):
        S.LocalConcatSheafLearner(6, (2,))(torch.randn(8, 6), graph.edge_index.t())
    with pytest.raises(ValueError, match=r"rev must have shape \[E\]"):
        S.EdgeWeightLearner(6)(torch.randn(8, 6), graph.edge_index, graph.rev[:-1])
    learner = S.SheafLaplacianLearner("diag", 2, 4, add_lp=True)
    with pytest.raises(ValueError, match=r"x must be a cochain \[N, d \+ add_lp \+ add_hp, F\] = \[8, 3, F\]"):
        learner(torch.randn(8, 2, 4), graph)
    laplacian = learner(torch.randn(8, 3, 4), graph)
    with pytest.raises(ValueError, match=r"x must be a cochain \[N, d, F\] = \[N, 3, 4\]"):
        S.DiscreteSheafDiffusionLayer(3, 4)(torch.randn(8, 3, 5), laplacian)
    with pytest.raises(ValueError, match="the Laplacian has stalk dimension 3 on 8 nodes"):
        S.SheafConv(2, 4, 4)(torch.randn(8, 2, 4), laplacian)
    with pytest.raises(ValueError, match=r"x must have shape \[N, p\] with N = 8"):
        S.local_pca_bases(torch.randn(7, 4), graph, d=2, num_neighbours=4)
    with pytest.raises(ValueError, match=r"bases must have shape \[N, p, d\]"):
        S.procrustes_transports(torch.randn(7, 4, 2), graph)


def test_bundle_learner_skips_the_value_checks_and_matches_the_checked_builder(monkeypatch):
    """Its transports (Orthogonal) and edge weights (EdgeWeightLearner) are valid by construction, so the learner
    does not pay the O^T O product and host syncs of bundle_sheaf_laplacian's value checks every step."""
    from graphlab.nn.sheaf import laplacian as L

    torch.manual_seed(0)
    graph = S.SheafGraph.from_edge_index(random_undirected(8, 20, seed=4), 8)
    learner = S.SheafLaplacianLearner("bundle", d=2, hidden_channels=3, add_lp=True)
    x = torch.randn(8, learner.final_d, 3)
    flat = x.reshape(8, -1)
    transports = learner.orthogonal(learner.map_learner(flat, graph.edge_index))
    weights = learner.weight_learner(flat, graph.edge_index, graph.rev)
    diag, off = L.append_fixed_dims(*S.bundle_sheaf_laplacian(transports, graph, weights), graph, True, False)

    def forbidden(*args, **kwargs):
        raise AssertionError("value check run in the learner's forward")

    monkeypatch.setattr(L, "_check_orthogonal", forbidden)
    monkeypatch.setattr(L, "_check_symmetric_pairs", forbidden)
    laplacian = learner(x, graph)
    torch.testing.assert_close(laplacian.diag, diag)
    torch.testing.assert_close(laplacian.off, off)
