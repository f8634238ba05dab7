"""Sheaf models: shapes, equivariance, parameter groups, learning labels only the graph reveals, configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch_geometric.utils import remove_self_loops, to_undirected

from graphlab.models import sheaf as M

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "sheaf"

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one intra-op thread, restored after


def heterophilic_graph(num_nodes: int = 24, num_classes: int = 3, seed: int = 0):
    """Edges only between different classes; features are a noisy one-hot of the class (for shape, equivariance
    and cross-implementation checks; learning is tested on :func:`neighbour_colour_task`)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(num_nodes) % num_classes
    src = torch.randint(0, num_nodes, (4 * num_nodes,), generator=gen)
    dst = torch.randint(0, num_nodes, (4 * num_nodes,), generator=gen)
    keep = y[src] != y[dst]
    edge_index, _ = remove_self_loops(torch.stack([src[keep], dst[keep]]))
    x = F.one_hot(y, num_classes).float() + 0.5 * torch.randn(num_nodes, num_classes, generator=gen)
    return x, to_undirected(edge_index, num_nodes=num_nodes), y


MODELS = {
    "diag": lambda: M.DiagNSD(3, 3, d=2, num_layers=2, hidden_channels=4, add_lp=True),
    "bundle": lambda: M.BundleNSD(3, 3, d=2, num_layers=2, hidden_channels=4, add_hp=True, sparse_learner=True),
    "bundle-cayley": lambda: M.BundleNSD(3, 3, d=3, num_layers=1, hidden_channels=4, orth_map="cayley",
                                         edge_weights=False),
    "general": lambda: M.GeneralNSD(3, 3, d=2, num_layers=2, hidden_channels=4, add_lp=True, add_hp=True),
    "general-linear": lambda: M.GeneralNSD(3, 3, d=2, num_layers=3, hidden_channels=4, linear=True),
    "ode-diag": lambda: M.ContinuousNSD(3, 3, sheaf_type="diag", d=2, hidden_channels=4, int_method="euler",
                                        step_size=0.25),
    "ode-bundle": lambda: M.ContinuousNSD(3, 3, sheaf_type="bundle", d=2, hidden_channels=4, int_method="rk4",
                                          step_size=0.5),
    "conn": lambda: M.ConnectionNSD(3, 3, d=2, num_layers=2, hidden_channels=4, num_neighbours=4, add_lp=True),
    "snn": lambda: M.SheafNN(3, 3, d=2, hidden_channels=4, dropout=0.0),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_shapes_and_equivariance(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    x, edge_index, _ = heterophilic_graph()
    out = model(x, edge_index)
    assert out.shape == (24, 3) and torch.isfinite(out).all()
    gen = torch.Generator().manual_seed(1)
    perm = torch.randperm(24, generator=gen)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(24)
    edge_perm = torch.randperm(edge_index.size(1), generator=gen)
    out_p = model(x[perm], inverse[edge_index][:, edge_perm])
    torch.testing.assert_close(out_p, out[perm], atol=1e-4, rtol=1e-4)


def neighbour_colour_task(per_type: int = 6, num_classes: int = 3, seed: int = 0):
    """Labels that only the graph reveals: node ``u`` has a label ``y_u`` and an independent colour ``z_u``; its
    features are ``one_hot(z_u)`` plus i.i.d. noise, and it links only to nodes ``v`` with ``z_v = y_u`` (and
    ``y_v = z_u``, so edges are undirected). Every (label, colour) pair has exactly ``per_type`` nodes, so the
    features are independent of the label: any function of a node's own features is right on 1/C of the nodes
    in expectation, while the colour of its neighbours is its label. Returns ``x, edge_index, y, train_mask, z``.
    """
    gen = torch.Generator().manual_seed(seed)
    types = torch.cartesian_prod(torch.arange(num_classes), torch.arange(num_classes)).repeat_interleave(per_type, 0)
    types = types[torch.randperm(len(types), generator=gen)]
    y, z = types[:, 0], types[:, 1]
    nodes = torch.arange(len(y))
    src, dst = [], []
    for u in nodes.tolist():
        partners = ((y == z[u]) & (z == y[u]) & (nodes != u)).nonzero().view(-1)
        pick = partners[torch.randperm(len(partners), generator=gen)[:3]].tolist()
        src += [u] * len(pick)
        dst += pick
    edge_index = to_undirected(torch.tensor([src, dst]), num_nodes=len(y))
    x = F.one_hot(z, num_classes).float() + 0.3 * torch.randn(len(y), num_classes, generator=gen)
    train = torch.zeros(len(y), dtype=torch.bool)
    train[torch.randperm(len(y), generator=gen)[: len(y) // 2]] = True
    return x, edge_index, y, train, z


def held_out_accuracy(model, uses_graph: bool, epochs: int) -> float:
    """Train on half of :func:`neighbour_colour_task`'s nodes (Adam, lr 0.02), accuracy on the other half."""
    torch.manual_seed(0)
    x, edge_index, y, train, _ = neighbour_colour_task()
    run = (lambda: model(x, edge_index)) if uses_graph else (lambda: model(x))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(epochs):
        optimizer.zero_grad()
        F.cross_entropy(run()[train], y[train]).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return (run().argmax(1) == y)[~train].float().mean().item()


def test_task_features_carry_no_label_signal():
    """The control: an MLP on the node features alone stays at chance (1/3) on the held-out nodes."""
    _, edge_index, y, _, colour = neighbour_colour_task()
    assert bool((colour[edge_index[0]] == y[edge_index[1]]).all())  # neighbours' colour = label
    joint = torch.zeros(3, 3)
    joint.index_put_((y, colour), torch.ones(len(y)), accumulate=True)
    assert bool((joint == joint[0, 0]).all())  # every (label, colour) pair equally often: independent
    mlp = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    assert held_out_accuracy(mlp, uses_graph=False, epochs=100) < 0.5


# epochs and held-out accuracy to reach (chance is 1/3; the MLP control stays below 0.5)
LEARNING = {"diag": (60, 0.85), "bundle": (60, 0.85), "general": (60, 0.85), "conn": (60, 0.8),
            "ode-diag": (100, 0.7), "snn": (100, 0.7)}


@pytest.mark.parametrize("name", list(LEARNING))
def test_learns_labels_only_the_graph_reveals(name):
    epochs, threshold = LEARNING[name]
    assert held_out_accuracy(MODELS[name](), uses_graph=True, epochs=epochs) >= threshold


def test_param_groups_split_sheaf_learners():
    model = M.BundleNSD(5, 2, d=3, num_layers=2, hidden_channels=4, sheaf_decay=1e-2)
    groups = model.optimizer_param_groups(5e-4)
    sheaf, others = groups
    assert sheaf["weight_decay"] == 1e-2 and others["weight_decay"] == 5e-4
    assert len(sheaf["params"]) == 2  # one map learner per layer; edge-weight learners are not in the group
    assert len(sheaf["params"]) + len(others["params"]) == len(list(model.parameters()))
    assert M.DiagNSD(5, 2).optimizer_param_groups(1e-3)[0]["weight_decay"] == 1e-3


def test_linear_nsd_learns_one_sheaf():
    assert len(MODELS["general-linear"]().sheaf_learners) == 1
    assert len(MODELS["general"]().sheaf_learners) == 2


def test_graph_is_prepared_once():
    model = MODELS["bundle"]().eval()
    x, edge_index, _ = heterophilic_graph()
    model(x, edge_index)
    graph = model.graph(edge_index, 24)
    model(x, edge_index.clone())
    assert model.graph(edge_index, 24) is graph


def test_sheaf_nn_given_maps_follow_edge_order():
    torch.manual_seed(0)
    model = M.SheafNN(3, 3, d=2, hidden_channels=4).eval()
    x, edge_index, _ = heterophilic_graph()
    maps = torch.randn(edge_index.size(1), 2, 2)
    perm = torch.randperm(edge_index.size(1))
    torch.testing.assert_close(model(x, edge_index[:, perm], maps[perm]), model(x, edge_index, maps))
    assert not torch.allclose(model(x, edge_index, maps), model(x, edge_index))
    with pytest.raises(ValueError, match="restriction_maps must be"):
        model(x, edge_index, maps[:3])


def test_sheaf_nn_constant_sheaf_is_gcn_like():
    """d = 1, identity maps: I - Delta is the augmented-normalised adjacency plus (D+I)^-1 ... on every node."""
    torch.manual_seed(0)
    model = M.SheafNN(3, 2, d=1, hidden_channels=5, num_layers=1, dropout=0.0, act="id").eval()
    x, edge_index, _ = heterophilic_graph()
    adj = torch.zeros(24, 24)
    adj[edge_index[0], edge_index[1]] = 1.0
    deg = adj.sum(1)
    scale = (deg + 1).rsqrt()
    propagate = torch.eye(24) - scale[:, None] * (torch.diag(deg) - adj) * scale[None, :]
    conv = model.convs[0]
    h = model.lin1(x) * conv.left.weight[0, 0]
    want = model.lin2(propagate @ conv.right(h))
    torch.testing.assert_close(model(x, edge_index), want, atol=1e-5, rtol=1e-5)


def test_validation_messages():
    with pytest.raises(ValueError, match="needs d >= 2"):
        M.BundleNSD(3, 2, d=1)
    with pytest.raises(ValueError, match="num_neighbours must be at least"):
        M.ConnectionNSD(3, 2, d=3, num_neighbours=3)
    with pytest.raises(ValueError, match="dropout"):
        M.DiagNSD(3, 2, dropout=1.5)


def config_files() -> list[Path]:
    return sorted(CONFIG_DIR.glob("*/*.yaml"))


@pytest.mark.parametrize("path", config_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_model_builds(path):
    """Every config names an existing class with valid arguments (instantiated with dummy channel counts)."""
    import importlib

    config = yaml.safe_load(path.read_text())
    spec = config["model"]["init_args"]["model"]
    module, _, name = spec["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    model = cls(in_channels=7, out_channels=3, **spec.get("init_args", {}))
    x, edge_index, _ = heterophilic_graph(num_classes=3)
    x = torch.cat([x, torch.randn(24, 4)], 1)
    if isinstance(model, M.Sheaf4Rec):  # a link predictor: its forward is tested in test_sheaf4rec.py
        return
    assert model.eval()(x, edge_index).shape == (24, 3)


FOLDERS = {"cora": "Cora", "citeseer": "CiteSeer"}
DEFAULT_RUN = ("diag-nsd/texas", "conn-nsd/texas")  # the rest (about 3 s each, more on big graphs) need -m slow


def config_params():
    """Every node-classification sheaf config, as a ``data`` test; all but two also ``slow``."""
    params = []
    for path in config_files():
        name = f"{path.parent.name}/{path.stem}"
        if path.parent.name != "sheaf4rec":
            marks = [pytest.mark.data] + ([] if name in DEFAULT_RUN else [pytest.mark.slow])
            params.append(pytest.param(path, marks=marks, id=name))
    return params


# Raised inside LightningCLI._add_instantiators (Lightning 2.6 on jsonargparse >= 4.4x), not by graphlab code.
@pytest.mark.filterwarnings("ignore::jsonargparse._deprecated.JsonargparseDeprecationWarning")
@pytest.mark.parametrize("path", config_params())
def test_config_runs_through_cli(path, copy_shared, tmp_path, monkeypatch):
    from graphlab.cli import main

    dataset = path.stem
    root = copy_shared(FOLDERS.get(dataset, dataset))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["graphlab"])  # LightningCLI warns when pytest's own argv is also present
    main(["fit", "--config", str(path), f"--data.init_args.root={root}", "--trainer.fast_dev_run=1",
          "--trainer.logger=false"])


@pytest.fixture(scope="module")
def bench(repo_script):
    return repo_script("benchmarks/sheaf.py")


@pytest.mark.parametrize("sheaf_type", ["diag", "bundle", "general"])
@pytest.mark.parametrize("add_lp,add_hp", [(False, False), (True, True)])
def test_matches_official_design_reimplementation(bench, sheaf_type, add_lp, add_hp):
    """benchmarks/sheaf.py rebuilds the Laplacian the official way (scalar COO, lower triangle + transpose,
    SVD normaliser) with the official default sparse_learner=False; in eval mode both designs must give the same
    logits."""
    torch.manual_seed(0)
    model = M.NeuralSheafDiffusion(3, 3, sheaf_type=sheaf_type, d=3, num_layers=2, hidden_channels=4,
                                   add_lp=add_lp, add_hp=add_hp).double().eval()
    x, edge_index, _ = heterophilic_graph()
    x = x.double()
    graph = model.graph(edge_index, 24)
    for product in ("torch.sparse", "torch_sparse"):
        official = bench.OfficialStyleNSD(model, graph, add_lp, add_hp, product, sparse_learner=False).eval()
        torch.testing.assert_close(official(x, edge_index), model(x, edge_index))


@pytest.mark.parametrize("sheaf_type", ["diag", "bundle", "general"])
def test_official_design_sparse_learner(bench, sheaf_type):
    """sparse_learner=True as the official texas script sets it. The official learner sums the ``final_d``
    ``2F``-wide slices of ``[x_u || x_v]``, which is linear: it equals a full (non-sparse) learner whose weight is
    ``W`` tiled ``final_d`` times. So the official-design network with ``W`` must match graphlab's network with
    ``sparse_learner=False`` and the tiled weight (all other parameters shared)."""
    torch.manual_seed(0)
    kwargs = dict(sheaf_type=sheaf_type, d=2, num_layers=2, hidden_channels=4, add_lp=True)
    sparse = M.NeuralSheafDiffusion(3, 3, sparse_learner=True, **kwargs).double().eval()
    full = M.NeuralSheafDiffusion(3, 3, sparse_learner=False, **kwargs).double().eval()
    state = sparse.state_dict()
    for key, weight in list(state.items()):
        if ".map_learner.linear.weight" in key:
            state[key] = weight.repeat(1, sparse.final_d)
    full.load_state_dict(state)
    x, edge_index, _ = heterophilic_graph()
    x = x.double()
    graph = sparse.graph(edge_index, 24)
    official = bench.OfficialStyleNSD(sparse, graph, True, False, "torch_sparse", sparse_learner=True).eval()
    torch.testing.assert_close(official(x, edge_index), full(x, edge_index))
    assert not torch.allclose(official(x, edge_index), sparse(x, edge_index))  # graphlab's variant differs
    with pytest.raises(ValueError, match="build the model with sparse_learner=False"):
        bench.OfficialStyleNSD(sparse, graph, True, False, "torch_sparse", sparse_learner=False)


def test_benchmark_settings_follow_the_official_scripts(bench):
    """sparse_learner per dataset as the official code sets it (parser default False; run_texas.sh True)."""
    assert {name: s["sparse_learner"] for name, s in bench.SETTINGS.items()} == \
        {"chameleon": False, "film": False, "squirrel": False, "texas": True}
    assert bench.DEFAULT_SETTING["sparse_learner"] is False
