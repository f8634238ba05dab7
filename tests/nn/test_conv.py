"""graphlab GCN/SAGE/GIN convs: equal to PyG's (values and gradients), fused path used, equivariant."""

from __future__ import annotations

import copy
import os
import warnings

import pytest
import torch
import torch_geometric.nn as pyg_nn
from torch_geometric.utils import remove_self_loops

import graphlab.ops as ops
from torch_geometric.nn import aggr as pyg_aggr
from torch_geometric.nn.conv.gcn_conv import gcn_norm

import graphlab.nn
from graphlab.nn import conv as gl_conv
from graphlab.nn.fused import fused_aggregate
from graphlab.ops import csr as csr_module

TOL = dict(atol=1e-5, rtol=1e-4)
IN_INTERPRETER = os.environ.get("TRITON_INTERPRET") == "1"


def random_graph(num_nodes: int, num_edges: int, seed: int) -> torch.Tensor:
    """Random edges plus two self loops, a duplicate edge, a node without in-edges and an isolated node.

    Random self loops are redirected, so no node has two self loops (see test_repeated_self_loops).
    """
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_nodes - 1, (num_edges,), generator=gen)
    dst = torch.randint(0, num_nodes - 2, (num_edges,), generator=gen)
    dst = torch.where(src == dst, (dst + 1) % (num_nodes - 2), dst)
    src[:2] = dst[:2] = torch.tensor([0, 3])
    src[2], dst[2] = src[5], dst[5]
    return torch.stack([src, dst])


def make_pair(kind: str, kwargs: dict, in_channels=5, out_channels=4):
    """(graphlab conv, PyG conv) with identical parameters."""
    torch.manual_seed(0)
    if kind == "gin":
        mlp = torch.nn.Sequential(torch.nn.Linear(in_channels, 8), torch.nn.ReLU(), torch.nn.Linear(8, out_channels))
        ours = gl_conv.GINConv(mlp, **kwargs)
        theirs = pyg_nn.GINConv(copy.deepcopy(mlp), **kwargs)
    else:
        cls_ours, cls_theirs = {"gcn": (gl_conv.GCNConv, pyg_nn.GCNConv), "sage": (gl_conv.SAGEConv, pyg_nn.SAGEConv)}[kind]
        ours = cls_ours(in_channels, out_channels, **kwargs)
        theirs = cls_theirs(in_channels, out_channels, **kwargs)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def forward_backward(module, x, edge_index, edge_weight=None, **kwargs):
    """Output and the gradients of x, edge_weight and every parameter for a fixed upstream gradient."""
    x = x.clone().requires_grad_(True)
    args = [x, edge_index]
    if edge_weight is not None:
        edge_weight = edge_weight.clone().requires_grad_(True)
        args.append(edge_weight)
    out = module(*args, **kwargs)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(5))
    module.zero_grad()
    out.backward(upstream)
    grads = {"x": x.grad, **({"edge_weight": edge_weight.grad} if edge_weight is not None else {})}
    grads.update({name: p.grad for name, p in module.named_parameters() if p.grad is not None})
    return out.detach(), grads


def assert_same(ours, theirs, *inputs, **kwargs):
    out_ours, grads_ours = forward_backward(ours, *inputs, **kwargs)
    out_theirs, grads_theirs = forward_backward(theirs, *inputs, **kwargs)
    torch.testing.assert_close(out_ours, out_theirs, **TOL)
    assert grads_ours.keys() == grads_theirs.keys()
    for name in grads_ours:
        torch.testing.assert_close(grads_ours[name], grads_theirs[name], **TOL, msg=name)
    return out_ours


def forbid_messages(module):
    """Make PyG's per-edge message path fail loudly: the fused path must not use it."""

    def message(*args, **kwargs):
        raise AssertionError("the E x F message path ran")

    module.message = message


CONFIGS = [
    ("gcn", {}, True),
    ("gcn", {}, False),
    ("gcn", {"improved": True}, True),
    ("gcn", {"add_self_loops": False}, True),
    ("gcn", {"normalize": False}, True),
    ("gcn", {"bias": False, "cached": True}, False),
    ("sage", {}, False),
    ("sage", {"aggr": "sum"}, False),
    ("sage", {"aggr": "max", "normalize": True}, False),
    ("sage", {"aggr": "min", "root_weight": False}, False),
    ("sage", {"project": True, "bias": False}, False),
    ("gin", {}, False),
    ("gin", {"eps": 0.5, "train_eps": True}, False),
]


@pytest.mark.parametrize("kind, kwargs, weighted", CONFIGS, ids=lambda v: str(v))
def test_matches_pyg_and_uses_the_fused_path(kind, kwargs, weighted):
    ours, theirs = make_pair(kind, kwargs)
    forbid_messages(ours)
    edge_index = random_graph(12, 40, seed=1)
    x = torch.randn(12, 5, generator=torch.Generator().manual_seed(2))
    weight = torch.rand(40, generator=torch.Generator().manual_seed(3)) + 0.1 if weighted else None
    ops.reset_path_log()
    assert_same(ours, theirs, x, edge_index, weight)
    assert ops.last_path("gather_reduce") == "cpu"


@pytest.mark.triton
@pytest.mark.parametrize("kind, kwargs, weighted", [CONFIGS[0], CONFIGS[8], CONFIGS[11]], ids=lambda v: str(v))
def test_matches_pyg_on_the_triton_path(kind, kwargs, weighted):
    pytest.importorskip("triton")
    if not IN_INTERPRETER:
        pytest.skip("needs TRITON_INTERPRET=1 at start-up; tests/ops/test_triton_interpreter.py runs it")
    ours, theirs = make_pair(kind, kwargs)
    forbid_messages(ours)
    edge_index = random_graph(8, 20, seed=4)
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(2))
    weight = torch.rand(20, generator=torch.Generator().manual_seed(3)) + 0.1 if weighted else None
    with ops.set_backend("triton"):
        assert_same(ours, theirs, x, edge_index, weight)
        assert ops.last_path("gather_reduce") == "triton"


def test_bipartite_sage_with_size():
    ours, theirs = make_pair("sage", {"aggr": "max"})
    forbid_messages(ours)
    gen = torch.Generator().manual_seed(6)
    edge_index = torch.stack([torch.randint(0, 9, (25,), generator=gen), torch.randint(0, 4, (25,), generator=gen)])
    x_src, x_dst = torch.randn(9, 5, generator=gen), torch.randn(6, 5, generator=gen)
    out_ours = ours((x_src, x_dst), edge_index)
    torch.testing.assert_close(out_ours, theirs((x_src, x_dst), edge_index), **TOL)
    assert out_ours.shape == (6, 4)
    torch.testing.assert_close(ours((x_src, None), edge_index, size=(9, 6)),
                               theirs((x_src, None), edge_index, size=(9, 6)), **TOL)


@pytest.mark.parametrize("kind", ["gcn", "sage", "gin"])
def test_sparse_csr_adjacency_gives_the_edge_index_result(kind):
    ours, _ = make_pair(kind, {})
    # A sparse matrix holds each edge once; no self loops, which PyG's sparse gcn_norm adds without deduplicating.
    edge_index = remove_self_loops(torch.unique(random_graph(10, 30, seed=7), dim=1))[0]
    x = torch.randn(10, 5, generator=torch.Generator().manual_seed(8))
    rowptr, col, _ = ops.to_csr(edge_index, 10)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        adj_t = torch.sparse_csr_tensor(rowptr, col, torch.ones(col.numel()), (10, 10), check_invariants=True)
    ops.reset_path_log()
    with warnings.catch_warnings():  # PyG's gcn_norm builds a sparse tensor without opting in/out of checks
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
        out_sparse = ours(x, adj_t)
    torch.testing.assert_close(out_sparse, ours(x, edge_index), **TOL)
    assert ops.path_count("gather_reduce", "cpu") == 2


def test_sparse_adjacency_values_get_gradients_every_call():
    """Sparse ``adj_t`` values act as edge weights, with gradients, on every call (no stale cached graph)."""
    gcn, _ = make_pair("gcn", {"normalize": False})
    edge_index = remove_self_loops(torch.unique(random_graph(8, 20, seed=23), dim=1))[0]
    rowptr, col, _ = ops.to_csr(edge_index, 8)
    in_csr_order = torch.stack([col, torch.repeat_interleave(torch.arange(8), rowptr.diff())])
    values = torch.rand(col.numel(), requires_grad=True)
    x = torch.randn(8, 5)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        adj_t = torch.sparse_csr_tensor(rowptr, col, values.detach(), (8, 8), check_invariants=True)
    adj_t.requires_grad_(True)  # a leaf: its gradient is a sparse tensor with the values' gradient
    expected = torch.autograd.grad(gcn(x, in_csr_order, values).sum(), values)[0]
    for _ in range(2):  # the second call must not reuse the first call's autograd graph
        adj_t.grad = None
        gcn(x, adj_t).sum().backward()
        torch.testing.assert_close(adj_t.grad.values(), expected, **TOL)


def test_fallback_for_aggregation_lists_matches_pyg():
    ours, theirs = make_pair("sage", {"aggr": ["mean", "max"]})
    edge_index = random_graph(10, 30, seed=9)
    x = torch.randn(10, 5, generator=torch.Generator().manual_seed(10))
    ops.reset_path_log()
    assert_same(ours, theirs, x, edge_index)
    assert ops.last_path("gather_reduce") is None


def test_explain_mode_falls_back_to_pyg():
    ours, theirs = make_pair("gin", {})
    edge_index = random_graph(10, 30, seed=11)
    x = torch.randn(10, 5, generator=torch.Generator().manual_seed(12))
    mask = torch.randn(edge_index.size(1), generator=torch.Generator().manual_seed(13))
    for module in (ours, theirs):
        module.explain = True
        module._edge_mask = mask
    ops.reset_path_log()
    torch.testing.assert_close(ours(x, edge_index), theirs(x, edge_index), **TOL)
    assert ops.last_path("gather_reduce") is None


def permuted(x, edge_index, edge_weight, seed):
    """Relabel nodes by a random permutation and shuffle the edge order."""
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(x.size(0), generator=gen)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(x.size(0))
    edge_perm = torch.randperm(edge_index.size(1), generator=gen)
    weight = None if edge_weight is None else edge_weight[edge_perm]
    return x[perm], inverse[edge_index][:, edge_perm], weight, perm


@pytest.mark.parametrize("kind, kwargs, weighted", CONFIGS, ids=lambda v: str(v))
def test_permutation_equivariance(kind, kwargs, weighted):
    ours, _ = make_pair(kind, {**kwargs, "cached": False} if kind == "gcn" else kwargs)
    edge_index = random_graph(11, 35, seed=13)  # no repeated self loops: their "last weight" depends on order
    x = torch.randn(11, 5, generator=torch.Generator().manual_seed(14))
    weight = torch.rand(edge_index.size(1), generator=torch.Generator().manual_seed(15)) if weighted else None
    out = ours(x, edge_index, weight) if weighted else ours(x, edge_index)
    x_p, edge_index_p, weight_p, perm = permuted(x, edge_index, weight, seed=16)
    out_p = ours(x_p, edge_index_p, weight_p) if weighted else ours(x_p, edge_index_p)
    torch.testing.assert_close(out_p, out[perm], **TOL)


def test_csr_is_built_once_per_edge_index(monkeypatch):
    calls = []
    real = csr_module.to_csr
    monkeypatch.setattr(csr_module, "to_csr", lambda *a, **k: calls.append(1) or real(*a, **k))
    sage, _ = make_pair("sage", {})
    edge_index = random_graph(10, 30, seed=17)
    x = torch.randn(10, 5)
    for _ in range(3):
        sage(x, edge_index)
    assert len(calls) == 1
    sage(x, edge_index.clone())
    assert len(calls) == 2


@pytest.mark.parametrize("kind", ["gcn", "sage"])
def test_backward_transpose_is_built_once_per_graph(kind, monkeypatch):
    calls = []
    real = csr_module.csr_transpose
    monkeypatch.setattr(csr_module, "csr_transpose", lambda *a, **k: calls.append(1) or real(*a, **k))
    conv, _ = make_pair(kind, {"aggr": "sum"} if kind == "sage" else {})
    edge_index = random_graph(10, 30, seed=22)
    x = torch.randn(10, 5, requires_grad=True)
    for _ in range(3):
        conv(x, edge_index).sum().backward()
    assert len(calls) == 1


def test_gcn_structure_is_cached_and_cached_flag_reuses_weights(monkeypatch):
    calls = []
    real = gl_conv.to_csr
    monkeypatch.setattr(gl_conv, "to_csr", lambda *a, **k: calls.append(1) or real(*a, **k))
    edge_index = random_graph(10, 30, seed=18)
    x = torch.randn(10, 5)
    gcn, _ = make_pair("gcn", {})
    first = gcn(x, edge_index, torch.rand(30))
    second = gcn(x, edge_index, torch.rand(30))  # new weights, same structure: no new sort
    assert len(calls) == 1 and not torch.allclose(first, second)
    cached, _ = make_pair("gcn", {"cached": True})
    out = cached(x, edge_index)
    torch.testing.assert_close(cached(x, random_graph(10, 30, seed=19)), out)  # transductive cache ignores it
    cached.reset_parameters()
    assert cached._cached_edge_index is None


def test_repeated_self_loops_keep_the_last_weight_with_its_gradient():
    """PyG keeps the last weight of repeated self loops (in its forward); graphlab does too, and sends the gradient
    only to that edge (PyG's ``index_put`` backward would credit every copy)."""
    edge_index = torch.tensor([[0, 1, 1, 2, 1], [1, 1, 2, 0, 1]])  # node 1 has self loops at positions 1 and 4
    weight = torch.tensor([1.0, 5.0, 2.0, 3.0, 7.0], requires_grad=True)
    ours, theirs = make_pair("gcn", {}, in_channels=2, out_channels=2)
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(21))
    out = ours(x, edge_index, weight)
    torch.testing.assert_close(out, theirs(x, edge_index, weight.detach()), **TOL)
    out.sum().backward()
    assert weight.grad[1] == 0.0 and weight.grad[4] != 0.0
    changed = weight.detach().clone()
    changed[1] = 100.0
    torch.testing.assert_close(ours(x, edge_index, changed), out.detach(), **TOL)


def test_out_of_range_edge_index_is_a_value_error():
    sage, _ = make_pair("sage", {})
    with pytest.raises(ValueError, match=r"edge_index\[0\] \(sources\) has max 10 but the graph has 10"):
        sage(torch.randn(10, 5), torch.tensor([[0, 10], [1, 2]]))


def test_fused_aggregate_rejects_wrong_weight_length():
    with pytest.raises(ValueError, match="one weight per edge"):
        fused_aggregate(torch.randn(4, 2), torch.tensor([[0, 1], [1, 2]]), "sum", torch.ones(3))


@pytest.mark.parametrize("x_dtype, w_dtype, out_dtype", [
    (torch.float32, torch.float64, torch.float64),
    (torch.float64, torch.float32, torch.float64),
    (torch.float32, torch.int64, torch.float32),
])
def test_fused_aggregate_weights_follow_pyg_promotion(x_dtype, w_dtype, out_dtype):
    """``w_ij * x_j`` in torch's promoted dtype (integer weights too, which gather_reduce itself rejects); the
    weight's gradient comes back in its own dtype."""
    edge_index = random_graph(6, 14, seed=48)
    x = torch.randn(6, 3, dtype=x_dtype, generator=torch.Generator().manual_seed(49))
    weight = torch.randint(1, 4, (14,), generator=torch.Generator().manual_seed(50)).to(w_dtype)
    if weight.is_floating_point():
        weight.requires_grad_()
    out = fused_aggregate(x, edge_index, "sum", weight)
    assert out.dtype == out_dtype
    want = torch.zeros(6, 3, dtype=out_dtype).index_add_(0, edge_index[1], weight.detach()[:, None] * x[edge_index[0]])
    torch.testing.assert_close(out, want)
    if weight.requires_grad:
        out.sum().backward()
        assert weight.grad is not None and weight.grad.dtype == w_dtype


def test_gradcheck_float64_gcn():
    gcn = gl_conv.GCNConv(3, 2).double()
    edge_index = random_graph(7, 16, seed=20)
    x = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x_, w_: gcn(x_, edge_index, w_), (x, weight))


def test_repr_and_signature_match_pyg():
    import inspect

    for ours, theirs in [(gl_conv.GCNConv, pyg_nn.GCNConv), (gl_conv.SAGEConv, pyg_nn.SAGEConv),
                         (gl_conv.GINConv, pyg_nn.GINConv)]:
        assert inspect.signature(ours.__init__) == inspect.signature(theirs.__init__)
    assert repr(gl_conv.GCNConv(3, 2)) == "GCNConv(3, 2)"
    assert gl_conv.GINEConv is pyg_nn.GINEConv


# ------------------------------------------------------------------------------ drop-in behaviours of PyG's convs


def test_layers_are_exported_from_graphlab_nn():
    assert graphlab.nn.GCNConv is gl_conv.GCNConv and graphlab.nn.SAGEConv is gl_conv.SAGEConv
    assert graphlab.nn.GINConv is gl_conv.GINConv
    assert issubclass(graphlab.nn.SheafConv, torch.nn.Module)
    assert all(isinstance(getattr(graphlab.nn, name), type) for name in graphlab.nn.__all__)


@pytest.mark.parametrize("kind", ["gcn", "sage", "gin"])
def test_static_graph_features_with_a_batch_dimension(kind):
    """``x`` of shape ``[B, N, F]`` with one shared ``edge_index``: each of the B slices is its own graph signal."""
    ours, theirs = make_pair(kind, {})
    forbid_messages(ours)
    edge_index = random_graph(9, 25, seed=30)
    x = torch.randn(3, 9, 5, generator=torch.Generator().manual_seed(31))
    ops.reset_path_log()
    out = ours(x, edge_index)
    assert ops.last_path("gather_reduce") == "cpu"
    per_slice = torch.stack([theirs(x[b], edge_index) for b in range(3)])
    torch.testing.assert_close(out, per_slice, **TOL)
    torch.testing.assert_close(out, theirs(x, edge_index), **TOL)


def test_message_hook_runs_on_pyg_path():
    ours, theirs = make_pair("gcn", {})
    edge_index = random_graph(8, 20, seed=32)
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(33))
    seen = []
    ours.register_message_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]["x_j"].shape))
    ops.reset_path_log()
    torch.testing.assert_close(ours(x, edge_index), theirs(x, edge_index), **TOL)
    assert seen == [(20 + 8 - 2, 4)]  # 20 edges, 2 of them self loops, plus one loop per node
    assert ops.path_count("gather_reduce", "cpu") == 0


def test_decomposed_layers_run_on_pyg_path_and_back():
    ours, theirs = make_pair("gcn", {})  # PyG's SAGE/GIN cannot decompose (they pass a feature pair)
    edge_index = random_graph(8, 20, seed=34)
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(35))
    fused = ours(x, edge_index)
    ours.decomposed_layers = 2
    ops.reset_path_log()
    torch.testing.assert_close(ours(x, edge_index), fused, **TOL)
    assert ops.path_count("gather_reduce", "cpu") == 0
    ours.decomposed_layers = 1
    torch.testing.assert_close(ours(x, edge_index), theirs(x, edge_index), **TOL)
    assert ops.path_count("gather_reduce", "cpu") == 1


def _edge_set(edge_index, weight):
    return {(int(s), int(d)): round(float(w), 5) for s, d, w in zip(edge_index[0], edge_index[1], weight)}


def test_cached_gcn_fills_the_attribute_pyg_users_read():
    ours, theirs = make_pair("gcn", {"cached": True})
    edge_index = random_graph(9, 24, seed=36)
    weight = torch.rand(24, generator=torch.Generator().manual_seed(37)) + 0.1
    x = torch.randn(9, 5, generator=torch.Generator().manual_seed(38))
    assert ours._cached_edge_index is None
    out = ours(x, edge_index, weight)
    cached_index, cached_weight = ours._cached_edge_index
    assert _edge_set(cached_index, cached_weight) == _edge_set(*gcn_norm(edge_index, weight, 9))
    torch.testing.assert_close(out, theirs(x, edge_index, weight), **TOL)
    torch.testing.assert_close(ours(x, random_graph(9, 24, seed=39)), out, **TOL)  # the cache wins
    ours._cached_edge_index = theirs._cached_edge_index = None  # how PyG users invalidate it
    torch.testing.assert_close(ours(x, edge_index), theirs(x, edge_index), **TOL)


FUSED_AGGRS = [
    ("sum", "sum"), ("mean", "mean"), ("max", "max"), ("min", "min"), ("add", "sum"),
    (pyg_aggr.SumAggregation(), "sum"), (pyg_aggr.MeanAggregation(), "mean"),
    (pyg_aggr.MaxAggregation(), "max"), (pyg_aggr.MinAggregation(), "min"),
]


class _ScaledMean(pyg_aggr.MeanAggregation):
    """A user subclass: not the fused mean, whatever its base class."""

    def forward(self, x, *args, **kwargs):
        return 2.0 * super().forward(x, *args, **kwargs)


UNFUSED_AGGRS = [
    lambda: pyg_aggr.SoftmaxAggregation(learn=True),
    lambda: pyg_aggr.PowerMeanAggregation(learn=True),
    lambda: pyg_aggr.MultiAggregation(["mean", "max"], mode="sum"),
    lambda: "softmax",
    lambda: _ScaledMean(),
]


def _aggr_pair(kind: str, aggr):
    torch.manual_seed(0)
    if kind == "gin":
        mlp = torch.nn.Linear(5, 4)
        ours, theirs = gl_conv.GINConv(mlp, aggr=copy.deepcopy(aggr)), pyg_nn.GINConv(copy.deepcopy(mlp), aggr=aggr)
    else:
        classes = {"gcn": (gl_conv.GCNConv, pyg_nn.GCNConv), "sage": (gl_conv.SAGEConv, pyg_nn.SAGEConv)}
        cls_ours, cls_theirs = classes[kind]
        ours, theirs = cls_ours(5, 4, aggr=copy.deepcopy(aggr)), cls_theirs(5, 4, aggr=aggr)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


@pytest.mark.parametrize("kind", ["gcn", "sage", "gin"])
@pytest.mark.parametrize("aggr, reduce", FUSED_AGGRS, ids=lambda v: str(v))
def test_aggregation_with_a_fused_op_runs_fused(kind, aggr, reduce):
    ours, theirs = _aggr_pair(kind, aggr)
    forbid_messages(ours)
    edge_index = random_graph(10, 30, seed=40)
    x = torch.randn(10, 5, generator=torch.Generator().manual_seed(41))
    ops.reset_path_log()
    assert_same(ours, theirs, x, edge_index)
    assert ops.path_count("gather_reduce", "cpu") == 1


@pytest.mark.parametrize("kind", ["gcn", "sage", "gin"])
@pytest.mark.parametrize("make_aggr", UNFUSED_AGGRS, ids=["softmax", "powermean", "multi", "softmax-str", "subclass"])
def test_aggregation_without_a_fused_op_runs_pyg_path(kind, make_aggr):
    ours, theirs = _aggr_pair(kind, make_aggr())
    edge_index = random_graph(10, 30, seed=42)
    x = torch.randn(10, 5, generator=torch.Generator().manual_seed(43)).abs() + 0.1  # power mean needs x > 0
    ops.reset_path_log()
    out = assert_same(ours, theirs, x, edge_index)
    assert ops.path_count("gather_reduce", "cpu") == 0
    learnable = list(ours.aggr_module.parameters())
    if learnable:  # a learnable aggregator is trained with the conv
        ours.zero_grad()
        ours(x, edge_index).square().sum().backward()
        assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in learnable)
    assert out.isfinite().all()


def test_float64_edge_weight_with_float32_features_matches_pyg():
    """The bug that opened issue 11: this returned values around 3e38."""
    ours, theirs = make_pair("gcn", {})
    edge_index = random_graph(10, 30, seed=44)
    x = torch.randn(10, 5, generator=torch.Generator().manual_seed(45))
    weight = torch.rand(30, dtype=torch.float64, generator=torch.Generator().manual_seed(46)) + 0.1
    out, want = ours(x, edge_index, weight), theirs(x, edge_index, weight)
    assert out.dtype == want.dtype == torch.float64
    torch.testing.assert_close(out, want, **TOL)


@pytest.mark.parametrize("kind", ["gcn", "sage"])
def test_features_of_another_dtype_than_the_layer_raise(kind):
    ours, _ = make_pair(kind, {})
    x = torch.randn(6, 5, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"x has dtype torch.float64 but .*Conv's parameters are torch.float32"):
        ours(x, random_graph(6, 10, seed=47))


def test_sparse_coo_features_give_the_dense_result():
    """GCN's linear map accepts sparse features (as PyG's); PyG's SAGEConv does not, so neither does ours."""
    ours, _ = make_pair("gcn", {})
    dense = torch.zeros(8, 5)
    dense[0, 1], dense[3, 4], dense[6, 0] = 1.0, -2.0, 0.5
    edge_index = random_graph(8, 20, seed=48)
    torch.testing.assert_close(ours(dense.to_sparse(), edge_index), ours(dense, edge_index), **TOL)


def test_target_to_source_flow_runs_pyg_path():
    ours, theirs = make_pair("gcn", {})
    ours.flow = theirs.flow = "target_to_source"
    edge_index = random_graph(8, 20, seed=49)
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(50))
    ops.reset_path_log()
    torch.testing.assert_close(ours(x, edge_index), theirs(x, edge_index), **TOL)
    assert ops.path_count("gather_reduce", "cpu") == 0


@pytest.mark.parametrize("conv", ["gcn", "sage", "gin"])
def test_graph_without_nodes_gives_an_empty_output_like_pyg(conv):
    """Zero nodes and zero edges (an empty mini-batch) give a ``[0, out]`` output, as PyG's layers do."""
    from torch_geometric.nn import GCNConv as PyGGCN, GINConv as PyGGIN, SAGEConv as PyGSAGE

    from graphlab.nn import GCNConv, GINConv, SAGEConv

    make = {"gcn": (lambda: GCNConv(3, 2), lambda: PyGGCN(3, 2)),
            "sage": (lambda: SAGEConv(3, 2), lambda: PyGSAGE(3, 2)),
            "gin": (lambda: GINConv(torch.nn.Linear(3, 2)), lambda: PyGGIN(torch.nn.Linear(3, 2)))}[conv]
    x, edge_index = torch.randn(0, 3), torch.empty(2, 0, dtype=torch.long)
    ours, theirs = make[0](), make[1]()
    assert ours(x, edge_index).shape == theirs(x, edge_index).shape == (0, 2)
