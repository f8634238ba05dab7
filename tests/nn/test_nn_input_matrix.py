"""Every public layer of ``graphlab.nn`` and every model's forward under awkward inputs.

Features in float32 / float64 / bfloat16 (with the layer in each of those dtypes), edge weights in float16 / float32
/ float64, non-contiguous (transposed, sliced) and expanded (stride 0) tensors, int32 and int64 indices. Each case
either matches a reference or raises a clear error:

* graphlab's ``GCNConv`` / ``SAGEConv`` / ``GINConv`` are compared with PyG's layer of the same name on the same
  inputs (values and output dtype); where PyG raises, graphlab raises a ``TypeError`` naming ``x`` (GIN's error
  comes from the user's MLP, exactly as in PyG);
* layers and models without a PyG twin are compared with themselves on canonical inputs (contiguous, int64) in
  float64, within the tolerance of the lowest precision involved.
"""

from __future__ import annotations

import copy
from typing import Callable

import pytest
import torch
import torch.nn.functional as F
import torch_geometric.nn as pyg_nn
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

import graphlab.nn as gnn
from graphlab.models import (
    GCN,
    GIN,
    GMN,
    GraphMamba,
    BundleNSD,
    ConnectionNSD,
    ContinuousNSD,
    DiagNSD,
    GeneralNSD,
    GraphSAGE,
    LinkGNN,
    Sheaf4Rec,
    SheafNN,
)
from graphlab.nn.sheaf import SheafGraph

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one intra-op thread

# Tolerance by the lowest precision taking part in a computation.
TOL = {
    torch.float64: dict(atol=1e-9, rtol=1e-7),
    torch.float32: dict(atol=1e-5, rtol=1e-4),
    torch.float16: dict(atol=2e-2, rtol=2e-2),
    torch.bfloat16: dict(atol=8e-2, rtol=8e-2),
}
PRECISION = [torch.bfloat16, torch.float16, torch.float32, torch.float64]  # lowest first
N, E, F_IN, F_OUT = 8, 20, 4, 3


def lowest(*dtypes: torch.dtype | None) -> torch.dtype:
    return min((d for d in dtypes if d is not None), key=PRECISION.index)


def graph(seed: int = 0) -> torch.Tensor:
    """A small undirected graph without self loops or duplicates (the sheaf layers need that)."""
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, N, (2, E), generator=gen)
    edge_index = to_undirected(remove_self_loops(edge_index)[0], num_nodes=N)
    return coalesce(edge_index, num_nodes=N)


EDGE_INDEX = graph()
NUM_EDGES = EDGE_INDEX.size(1)


# ------------------------------------------------------------------------------------------ input layouts


def layout(t: torch.Tensor, kind: str) -> torch.Tensor:
    """The same values as ``t`` held in a different memory layout."""
    if kind == "contiguous":
        return t
    if kind == "transposed":  # column-major storage of a 2-D tensor
        return t.t().contiguous().t() if t.dim() == 2 else t
    if kind == "sliced":  # every other element of a twice-as-long buffer along the last axis
        wide = torch.zeros(*t.shape[:-1], 2 * t.size(-1), dtype=t.dtype)
        wide[..., ::2] = t
        return wide[..., ::2]
    raise ValueError(kind)


def expanded_rows(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    """A stride-0 tensor: one random row repeated."""
    return torch.randn(1, *shape[1:], generator=torch.Generator().manual_seed(seed), dtype=dtype).expand(*shape)


LAYOUTS = ["contiguous", "transposed", "sliced", "expanded"]
INDEX_VARIANTS = ["int64", "int32", "int64-transposed", "int32-sliced"]


def index_variant(edge_index: torch.Tensor, kind: str) -> torch.Tensor:
    dtype = torch.int32 if kind.startswith("int32") else torch.int64
    edge_index = edge_index.to(dtype)
    if kind.endswith("transposed"):
        return edge_index.t().contiguous().t()
    if kind.endswith("sliced"):
        return layout(edge_index, "sliced")
    return edge_index


def features(kind: str, dtype: torch.dtype = torch.float32, shape=(N, F_IN), seed: int = 1) -> torch.Tensor:
    if kind == "expanded":
        return expanded_rows(shape, dtype, seed)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
    return layout(x, kind)


def edge_weights(kind: str, dtype: torch.dtype = torch.float32, num: int = NUM_EDGES) -> torch.Tensor:
    if kind == "expanded":
        return torch.tensor(0.7, dtype=dtype).expand(num)
    w = (torch.rand(num, generator=torch.Generator().manual_seed(2)) + 0.2).to(dtype)
    return layout(w, kind)


# ---------------------------------------------------------------------------------- PyG's convs as reference


def conv_pair(kind: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    if kind == "gin":
        mlp = torch.nn.Sequential(torch.nn.Linear(F_IN, 5), torch.nn.ReLU(), torch.nn.Linear(5, F_OUT))
        ours, theirs = gnn.GINConv(mlp, train_eps=True), pyg_nn.GINConv(copy.deepcopy(mlp), train_eps=True)
    elif kind == "gcn":
        ours, theirs = gnn.GCNConv(F_IN, F_OUT), pyg_nn.GCNConv(F_IN, F_OUT)
    elif kind == "gcn-plain":
        kwargs = dict(normalize=False, add_self_loops=False)
        ours, theirs = gnn.GCNConv(F_IN, F_OUT, **kwargs), pyg_nn.GCNConv(F_IN, F_OUT, **kwargs)
    elif kind == "sage":
        ours, theirs = gnn.SAGEConv(F_IN, F_OUT), pyg_nn.SAGEConv(F_IN, F_OUT)
    else:
        ours, theirs = gnn.SAGEConv(F_IN, F_OUT, aggr="max"), pyg_nn.SAGEConv(F_IN, F_OUT, aggr="max")
    with torch.no_grad():  # a non-zero eps, so the root term is visible
        for conv in (ours, theirs):
            if kind == "gin":
                conv.eps.fill_(0.25)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def call_conv(conv: torch.nn.Module, kind: str, x, edge_index, weight):
    return conv(x, edge_index, weight) if kind.startswith("gcn") else conv(x, edge_index)


WEIGHTED = ["gcn", "gcn-plain"]
CONVS = ["gcn", "gcn-plain", "sage", "sage-max", "gin"]
DTYPES = [torch.float32, torch.float64, torch.bfloat16]
WEIGHT_DTYPES = [None, torch.float16, torch.float32, torch.float64]


def dtype_cases():
    for kind in CONVS:
        for layer_dtype in DTYPES:
            for x_dtype in DTYPES:
                for w_dtype in WEIGHT_DTYPES if kind in WEIGHTED else [None]:
                    yield kind, layer_dtype, x_dtype, w_dtype


def _short(d):
    return "none" if d is None else str(d).replace("torch.", "")


@pytest.mark.parametrize("kind, layer_dtype, x_dtype, w_dtype", list(dtype_cases()),
                         ids=lambda v: _short(v) if not isinstance(v, str) else v)
def test_convs_match_pyg_for_every_dtype_mix(kind, layer_dtype, x_dtype, w_dtype):
    ours, theirs = conv_pair(kind)
    ours, theirs = ours.to(layer_dtype), theirs.to(layer_dtype)
    x = features("contiguous", x_dtype)
    weight = None if w_dtype is None else edge_weights("contiguous", w_dtype)
    try:
        want = call_conv(theirs, kind, x, EDGE_INDEX, weight)
    except RuntimeError:  # PyG's Linear rejects features of another dtype than its weight
        error = (TypeError, r"x has dtype .* but \w+Conv's parameters are") if kind != "gin" else \
            (RuntimeError, "same dtype")
        with pytest.raises(error[0], match=error[1]):
            call_conv(ours, kind, x, EDGE_INDEX, weight)
        return
    out = call_conv(ours, kind, x, EDGE_INDEX, weight)
    assert out.dtype == want.dtype
    torch.testing.assert_close(out, want, **TOL[lowest(layer_dtype, x_dtype, w_dtype)])


@pytest.mark.parametrize("kind", CONVS)
@pytest.mark.parametrize("x_layout", LAYOUTS)
@pytest.mark.parametrize("index", INDEX_VARIANTS)
def test_convs_match_pyg_for_every_layout(kind, x_layout, index):
    ours, theirs = conv_pair(kind)
    x = features(x_layout)
    edge_index = index_variant(EDGE_INDEX, index)
    for w_layout in (["contiguous", "sliced", "expanded"] if kind in WEIGHTED else [None]):
        weight = None if w_layout is None else edge_weights(w_layout)
        want = call_conv(theirs, kind, x.contiguous(), EDGE_INDEX,
                         None if weight is None else weight.contiguous())
        torch.testing.assert_close(call_conv(ours, kind, x, edge_index, weight), want, **TOL[torch.float32])


@pytest.mark.parametrize("w_dtype", [torch.float16, torch.float64], ids=_short)
def test_gcn_gradients_with_mixed_weight_dtype_match_pyg(w_dtype):
    ours, theirs = conv_pair("gcn")
    grads = []
    for conv in (ours, theirs):
        x = features("transposed").requires_grad_(True)
        weight = edge_weights("contiguous", w_dtype).requires_grad_(True)
        conv(x, EDGE_INDEX, weight).square().sum().backward()
        grads.append((x.grad, weight.grad))
    tol = TOL[lowest(torch.float32, w_dtype)]
    for mine, want in zip(*grads):
        assert mine.dtype == want.dtype
        torch.testing.assert_close(mine, want, **tol)


def test_bad_edge_weight_shape_is_a_clear_error():
    ours, _ = conv_pair("gcn-plain")
    with pytest.raises(ValueError, match="one weight per edge"):
        ours(features("contiguous"), EDGE_INDEX, torch.ones(NUM_EDGES, 2))


# ------------------------------------------------------------------------------------------- DropoutLinear


@pytest.mark.parametrize("x_layout", LAYOUTS)
@pytest.mark.parametrize("layer_dtype", DTYPES, ids=_short)
@pytest.mark.parametrize("x_dtype", DTYPES, ids=_short)
def test_dropout_linear_matches_linear(x_layout, layer_dtype, x_dtype):
    torch.manual_seed(0)
    layer = gnn.DropoutLinear(F_IN, F_OUT, p=0.5, sparse_threshold=0.6).to(layer_dtype).eval()
    dense = features(x_layout, x_dtype)
    x = dense * (dense > 0.3)  # sparse enough for the non-zero path when not expanded
    if x_dtype != layer_dtype:
        with pytest.raises(TypeError, match=r"x has dtype .* but DropoutLinear's parameters are"):
            layer(x)
        return
    want = F.linear(x.double(), layer.weight.double(), layer.bias.double())
    out = layer(x)
    assert out.dtype == layer_dtype
    torch.testing.assert_close(out.double(), want, **TOL[layer_dtype])


# ------------------------------------------------------------------------ layers and models against themselves


def run_in(module: torch.nn.Module, call: Callable, dtype: torch.dtype, *args):
    """``call(copy of module in dtype, *args)`` with floating tensors cast to ``dtype``."""
    cast = [a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    return call(copy.deepcopy(module).to(dtype), *cast)


def canonical(*args):
    return [a.contiguous() if isinstance(a, torch.Tensor) else a for a in args]


def compare(module, call, args, dtype, canonical_args):
    """``module`` in ``dtype`` on ``args`` equals ``module`` in float64 on the canonical ``args``."""
    want = run_in(module, call, torch.float64, *canonical_args)
    out = run_in(module, call, dtype, *args)
    assert out.dtype == dtype
    torch.testing.assert_close(out.double(), want, **TOL[dtype])


def _sheaf_graph(edge_index):
    return SheafGraph.from_edge_index(edge_index, N)


SHEAF_LAYERS = {
    # name: (module, call(module, x, edge_index), x shape)
    "Orthogonal": lambda: (gnn.Orthogonal(3, "householder"), lambda m, p, ei: m(p), (N, 3)),
    "LocalConcatSheafLearner": lambda: (gnn.LocalConcatSheafLearner(F_IN, (2, 2)),
                                        lambda m, x, ei: m(x, ei), (N, F_IN)),
    "LocalConcatSheafLearnerVariant": lambda: (gnn.LocalConcatSheafLearnerVariant(2, 3, (2,)),
                                               lambda m, x, ei: m(x, ei), (N, 6)),
    "EdgeWeightLearner": lambda: (gnn.EdgeWeightLearner(F_IN),
                                  lambda m, x, ei: m(x, _sheaf_graph(ei).edge_index, _sheaf_graph(ei).rev),
                                  (N, F_IN)),
    "FixedRestrictionMaps": lambda: (
        gnn.FixedRestrictionMaps(torch.randn(NUM_EDGES, 2, generator=torch.Generator().manual_seed(3)), EDGE_INDEX),
        lambda m, x, ei: m(x, ei), (N, 1)),
    "SheafLaplacianLearner+DiscreteSheafDiffusionLayer": lambda: (
        torch.nn.ModuleList([gnn.SheafLaplacianLearner("general", 2, 3), gnn.DiscreteSheafDiffusionLayer(2, 3)]),
        lambda m, x, ei: m[1](x.view(N, 2, 3), m[0](x.view(N, 2, 3), _sheaf_graph(ei))), (N, 6)),
    "SheafLaplacianLearner+SheafConv": lambda: (
        torch.nn.ModuleList([gnn.SheafLaplacianLearner("bundle", 2, 3), gnn.SheafConv(2, 3, 4)]),
        lambda m, x, ei: m[1](x.view(N, 2, 3), m[0](x.view(N, 2, 3), _sheaf_graph(ei))), (N, 6)),
}



def _sheaf_case(name: str, x_layout: str, index: str, dtype: torch.dtype):
    torch.manual_seed(0)
    module, call, shape = SHEAF_LAYERS[name]()
    module.eval()
    x = features(x_layout, torch.float32, shape)
    edge_index = index_variant(EDGE_INDEX, index)
    return module, call, x, edge_index


def _expect_sheaf_outcome(module, call, x, edge_index, dtype):
    """Equal to the float64 canonical run; an int32 ``edge_index`` may instead raise a ValueError asking for int64."""
    if edge_index.dtype == torch.int32:  # SheafGraph wants int64 and says so, or the layer casts it
        try:
            compare(module, call, (x, edge_index), dtype, canonical(x, edge_index.long()))
        except ValueError as err:
            assert "int64" in str(err) and "edge_index" in str(err), str(err)
        return
    compare(module, call, (x, edge_index), dtype, canonical(x, edge_index.contiguous()))


@pytest.mark.parametrize("name", list(SHEAF_LAYERS))
@pytest.mark.parametrize("dtype", DTYPES, ids=_short)
def test_sheaf_layers_in_every_dtype(name, dtype):
    module, call, x, edge_index = _sheaf_case(name, "contiguous", "int64", dtype)
    _expect_sheaf_outcome(module, call, x, edge_index, dtype)


@pytest.mark.parametrize("name", list(SHEAF_LAYERS))
@pytest.mark.parametrize("x_layout", LAYOUTS)
@pytest.mark.parametrize("index", INDEX_VARIANTS)
def test_sheaf_layers_for_every_layout(name, x_layout, index):
    module, call, x, edge_index = _sheaf_case(name, x_layout, index, torch.float32)
    _expect_sheaf_outcome(module, call, x, edge_index, torch.float32)


def test_sheaf_layer_features_of_another_dtype_fail_or_match():
    """A float32 layer given float64 features: a clear dtype error, or the float32 result (never garbage)."""
    module, call, x, _ = _sheaf_case("SheafLaplacianLearner+SheafConv", "contiguous", "int64", torch.float32)
    try:
        out = call(module, x.double(), EDGE_INDEX)
    except RuntimeError as err:
        assert "dtype" in str(err) or "Double" in str(err), str(err)
        return
    torch.testing.assert_close(out.double(), call(module.double(), x.double(), EDGE_INDEX), **TOL[torch.float32])


# ------------------------------------------------------------------------------------------ models' forward


def _graph_batch():
    return (torch.arange(N) >= N // 2).long()


MODELS = {
    "GCN": (lambda: GCN(F_IN, F_OUT, hidden_channels=5, dropout=0.0), {"edge_weight": "weight"}),
    "GCN-pooled": (lambda: GCN(F_IN, F_OUT, hidden_channels=5, dropout=0.0, pool="mean"),
                   {"edge_weight": "weight", "batch": "batch"}),
    "GraphSAGE": (lambda: GraphSAGE(F_IN, F_OUT, hidden_channels=5, dropout=0.0, aggr="max"), {}),
    "GIN": (lambda: GIN(F_IN, F_OUT, hidden_channels=5, num_layers=2, dropout=0.0), {"batch": "batch"}),
    "GINE": (lambda: GIN(F_IN, F_OUT, hidden_channels=5, num_layers=2, dropout=0.0, edge_encoder="linear",
                         edge_dim=2), {"edge_attr": "edge_attr", "batch": "batch"}),
    "LinkGNN": (lambda: LinkGNN(F_IN, hidden_channels=5, encoder="sage"), {"edge_label_index": "pairs"}),
    "DiagNSD": (lambda: DiagNSD(F_IN, F_OUT, d=2, num_layers=2, hidden_channels=3), {}),
    "BundleNSD": (lambda: BundleNSD(F_IN, F_OUT, d=2, num_layers=2, hidden_channels=3), {}),
    "GeneralNSD": (lambda: GeneralNSD(F_IN, F_OUT, d=2, num_layers=1, hidden_channels=3), {}),
    "ContinuousNSD": (lambda: ContinuousNSD(F_IN, F_OUT, sheaf_type="diag", d=2, hidden_channels=3,
                                            int_method="euler", step_size=0.5), {}),
    "ConnectionNSD": (lambda: ConnectionNSD(F_IN, F_OUT, d=2, num_layers=1, hidden_channels=3, num_neighbours=3),
                      {}),
    "SheafNN": (lambda: SheafNN(F_IN, F_OUT, d=2, hidden_channels=3, dropout=0.0), {}),
    "Sheaf4Rec": (lambda: Sheaf4Rec(N, latent_dim=3, num_layers=2), {"edge_label_index": "pairs"}),
    "GraphMamba": (lambda: GraphMamba(F_IN, F_OUT, hidden_channels=4, num_layers=1, d_state=2, pool="mean"),
                   {"batch": "batch"}),
    "GMN": (lambda: GMN(F_IN, F_OUT, hidden_channels=4, num_layers=1, d_state=2, edge_encoder="linear", edge_dim=2),
            {"edge_attr": "edge_attr"}),
}

SHEAF_MODELS = {"DiagNSD", "BundleNSD", "GeneralNSD", "ContinuousNSD", "ConnectionNSD", "SheafNN", "Sheaf4Rec"}



def _extras(name: str, weight_dtype: torch.dtype, weight_layout: str, index: str) -> dict:
    pairs = index_variant(torch.tensor([[0, 1, 2], [3, 4, 5]]), index)
    values = {
        "weight": edge_weights(weight_layout, weight_dtype),
        "batch": _graph_batch().to(torch.int32 if index.startswith("int32") else torch.int64),
        "edge_attr": features(weight_layout, weight_dtype, shape=(NUM_EDGES, 2), seed=4),
        "pairs": pairs,
    }
    return {arg: values[source] for arg, source in MODELS[name][1].items()}


def _model_inputs(name: str, x_layout: str, x_dtype: torch.dtype, index: str, weight_dtype=torch.float32,
                  weight_layout="contiguous"):
    x = torch.eye(N, dtype=x_dtype) if name == "Sheaf4Rec" else features(x_layout, x_dtype)
    if name == "Sheaf4Rec":
        x = layout(x, x_layout) if x_layout != "expanded" else x
    return x, index_variant(EDGE_INDEX, index), _extras(name, weight_dtype, weight_layout, index)


def _call_model(model, x, edge_index, **extras):
    return model(x, edge_index, **extras)


def _check_model(name: str, model, x, edge_index, extras, dtype):
    """Equal to the float64 run on canonical inputs; a sheaf model may instead reject an int32 ``edge_index`` with a
    ValueError asking for int64."""
    canonical_extras = {k: v.contiguous().long() if not v.is_floating_point() else v.contiguous()
                        for k, v in extras.items()}
    want = run_in(model, lambda m, *a: _call_model(m, *a[:2], **dict(zip(canonical_extras, a[2:]))),
                  torch.float64, x.contiguous(), edge_index.long().contiguous(), *canonical_extras.values())
    try:
        out = run_in(model, lambda m, *a: _call_model(m, *a[:2], **dict(zip(extras, a[2:]))),
                     dtype, x, edge_index, *extras.values())
    except ValueError as err:
        if name in SHEAF_MODELS and edge_index.dtype == torch.int32 and "int64" in str(err) \
                and "edge_index" in str(err):
            return
        raise
    assert out.dtype == dtype
    torch.testing.assert_close(out.double(), want, **TOL[dtype])


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("dtype", DTYPES, ids=_short)
def test_models_in_every_dtype(name, dtype):
    torch.manual_seed(0)
    model = MODELS[name][0]().eval()
    x, edge_index, extras = _model_inputs(name, "contiguous", dtype, "int64", weight_dtype=dtype)
    _check_model(name, model, x, edge_index, extras, dtype)


# Each layout once, each with another index variant (the layer tests above cover the full product).
MODEL_LAYOUTS = list(zip(LAYOUTS, ["int32", "int64-transposed", "int32-sliced", "int64"]))


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("x_layout, index", MODEL_LAYOUTS)
def test_models_for_every_layout(name, x_layout, index):
    torch.manual_seed(0)
    model = MODELS[name][0]().eval()
    x, edge_index, extras = _model_inputs(name, x_layout, torch.float32, index, weight_layout=x_layout)
    _check_model(name, model, x, edge_index, extras, torch.float32)


@pytest.mark.parametrize("weight_dtype", [torch.float16, torch.float64], ids=_short)
def test_gcn_model_with_edge_weights_of_another_dtype(weight_dtype):
    """The model computes in its parameters' dtype: weights are cast to the features' dtype."""
    torch.manual_seed(0)
    model = GCN(F_IN, F_OUT, hidden_channels=5, dropout=0.0).eval()
    x = features("contiguous")
    weight = edge_weights("contiguous", weight_dtype)
    out = model(x, EDGE_INDEX, edge_weight=weight)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, model(x, EDGE_INDEX, edge_weight=weight.float()))


@pytest.mark.parametrize("name", ["GCN", "GraphSAGE", "LinkGNN"])
def test_models_given_features_of_another_dtype_raise(name):
    model = MODELS[name][0]().eval()
    x, edge_index, extras = _model_inputs(name, "contiguous", torch.float64, "int64")
    with pytest.raises(TypeError, match=r"x has dtype torch.float64 but \w+Conv's parameters are torch.float32"):
        model(x, edge_index, **extras)


def test_gin_casts_real_features_to_its_dtype():
    torch.manual_seed(0)
    model = MODELS["GIN"][0]().eval()
    x = features("contiguous")
    batch = _graph_batch()
    torch.testing.assert_close(model(x.double(), EDGE_INDEX, batch=batch), model(x, EDGE_INDEX, batch=batch))
