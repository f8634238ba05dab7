"""GNNAK (GNN-AK / GNN-AK+) and SUN models: graph outputs invariant under node relabelling, a batch equals
per-graph runs, OGB molecule encoders, the task passes the pair attributes, a hand-built composition of the layers,
bad configuration."""

from __future__ import annotations

import networkx as nx
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_undirected

from graphlab.info import DatasetInfo
from graphlab.models.subgraph.ak import GNNAK, SUN
from graphlab.nn.subgraph import pair_index_from_batch, subgraph_readout
from graphlab.tasks import GraphPrediction
from graphlab.transforms import SubgraphPairs

TOL = dict(atol=1e-9, rtol=1e-7)


def random_graph(n: int, p: float, seed: int) -> Data:
    g = nx.gnp_random_graph(n, p, seed=seed)
    ei = torch.tensor(list(g.edges), dtype=torch.long).reshape(-1, 2).T
    return Data(edge_index=to_undirected(ei, num_nodes=n), num_nodes=n)


def graphs() -> list[Data]:
    return [random_graph(7, 0.4, 0), random_graph(5, 0.3, 1),
            Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=1),
            Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=3)]


def featurise(data: list[Data], molecules: bool, seed: int = 0) -> list[Data]:
    """Real features (x [n, 4], edge_attr [E, 2]) or OGB-style categorical atoms / bonds."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for g in data:
        g = g.clone()
        n, e = g.num_nodes, g.edge_index.size(1)
        if molecules:
            g.x = torch.randint(0, 2, (n, 9), generator=gen)  # every OGB atom vocabulary has >= 2 entries
            g.edge_attr = torch.randint(0, 2, (e, 3), generator=gen)
        else:
            g.x = torch.randn(n, 4, generator=gen, dtype=torch.float64)
            g.edge_attr = torch.randn(e, 2, generator=gen, dtype=torch.float64)
        out.append(g)
    return out


def batch_of(data: list[Data], policy: str = "ego_plus") -> Batch:
    t = SubgraphPairs(max_dis=5, policy=policy, num_hops=2)
    return Batch.from_data_list([t(g.clone()) for g in data])


def call(model: nn.Module, b: Batch, **skip) -> torch.Tensor:
    kw = dict(edge_attr=b.edge_attr, batch=b.batch, ptr=b.ptr, pair_mask=getattr(b, "pair_mask", None),
              pair_dis=b.pair_dis, pair_label=getattr(b, "pair_label", None))
    return model(b.x, b.edge_index, **{k: v for k, v in kw.items() if k not in skip})


def models(molecules: bool) -> list[nn.Module]:
    enc = dict(node_encoder="atom", edge_encoder="bond") if molecules else \
        dict(node_encoder="linear", edge_encoder="linear", edge_dim=2)
    in_channels = 9 if molecules else 4
    torch.manual_seed(0)
    return [GNNAK(in_channels, 3, hidden_channels=8, num_layers=2, **enc),
            GNNAK(in_channels, 3, hidden_channels=8, num_layers=2, plus=True, hop_dim=4, pool="sum",
                  mini_layers=2, **enc),
            SUN(in_channels, 3, hidden_channels=8, num_layers=2, num_labels=2, use_transpose=True, **enc),
            SUN(in_channels, 3, hidden_channels=8, num_layers=2, residual=True, use_readout=False, use_mlp=False,
                **enc),
            SUN(in_channels, 3, hidden_channels=8, num_layers=2, num_labels=2, use_distances=True, **enc)]


def randomise_norms(module: nn.Module) -> None:
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(0.3 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(1 + torch.rand(m.running_var.shape, generator=gen))


def relabel(g: Data, perm: torch.Tensor) -> Data:
    """Node i becomes node perm[i]; features move with their node, edges keep their order."""
    out = Data(edge_index=perm[g.edge_index], num_nodes=g.num_nodes, edge_attr=g.edge_attr)
    out.x = torch.empty_like(g.x).index_copy(0, perm, g.x)
    return out


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("molecules", [False, True])
def test_graph_output_invariant_under_relabelling(molecules: bool, train: bool) -> None:
    data = featurise(graphs(), molecules)
    gen = torch.Generator().manual_seed(7)
    permuted = [relabel(g, torch.randperm(g.num_nodes, generator=gen)) for g in data]
    b, pb = batch_of(data), batch_of(permuted)
    for model in models(molecules):
        model = model.double().train(train)
        randomise_norms(model)
        torch.testing.assert_close(call(model, pb), call(model, b), **TOL)


def test_batch_equals_per_graph_runs() -> None:
    data = featurise(graphs(), molecules=False)
    b = batch_of(data)
    for model in models(False):
        model = model.double().eval()
        randomise_norms(model)
        out = call(model, b)
        for i, g in enumerate(data):
            torch.testing.assert_close(call(model, batch_of([g])), out[i:i + 1], **TOL)
        # Without ptr (only `batch`) the model rebuilds it.
        torch.testing.assert_close(call(model, b, ptr=True), out, **TOL)


def test_sun_model_is_its_layers_composed() -> None:
    """SUN's forward equals the documented composition: embedding, layers with residual, mean-mean readout, MLP."""
    data = featurise(graphs(), molecules=False)
    b = batch_of(data)
    model = SUN(4, 3, hidden_channels=8, num_layers=2, num_labels=2, residual=True, edge_encoder="linear",
                edge_dim=2).double().eval()
    randomise_norms(model)
    index = pair_index_from_batch(b.edge_index, b.ptr, b.pair_mask)
    h = model.encoder(b.x).index_select(0, index.node) + model.embedding.label(b.pair_label)
    for layer in model.layers:
        h = h + layer(h, index, b.edge_attr)
    pooled = torch.stack([h[index.pair_ptr[g]:index.pair_ptr[g + 1]].mean(0) for g in range(b.num_graphs)])
    torch.testing.assert_close(subgraph_readout(h, index), pooled, **TOL)  # equal sizes per subgraph: mean-mean
    torch.testing.assert_close(call(model, b), model.head(pooled), **TOL)


def test_gnnak_model_is_its_layers_composed() -> None:
    data = featurise(graphs(), molecules=False)
    b = batch_of(data, "ego")
    model = GNNAK(4, 3, hidden_channels=8, num_layers=2, plus=True, hop_dim=4, edge_encoder="linear",
                  edge_dim=2).double().eval()
    randomise_norms(model)
    index = pair_index_from_batch(b.edge_index, b.ptr, b.pair_mask)
    x = model.encoder(b.x)
    for layer, norm in zip(model.layers, model.norms):
        x = x + torch.relu(norm(layer(x, index, b.pair_dis, b.edge_attr)))
    pooled = torch.stack([x[b.ptr[g]:b.ptr[g + 1]].mean(0) for g in range(b.num_graphs)])
    torch.testing.assert_close(call(model, b), model.head(pooled), **TOL)


def test_task_passes_pair_attributes_and_trains() -> None:
    """GraphPrediction.call_model forwards ptr / pair_mask / pair_dis / pair_label; a few steps lower the loss."""
    data = featurise(graphs() * 2, molecules=True)
    for i, g in enumerate(data):
        g.y = torch.tensor([[float(g.num_nodes % 3 == 0)]])
    b = batch_of(data)
    info = DatasetInfo(name="toy", level="graph", task_type="binary", num_features=9, num_outputs=1,
                       metric="rocauc")
    for model in (GNNAK(9, 1, hidden_channels=16, num_layers=2, plus=True, node_encoder="atom",
                        edge_encoder="bond"),
                  SUN(9, 1, hidden_channels=16, num_layers=2, num_labels=2, node_encoder="atom",
                      edge_encoder="bond")):
        task = GraphPrediction(model, lr=0.01, info=info)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        losses = []
        for _ in range(15):
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(task.call_model(b), b.y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < 0.5 * losses[0]


def test_bad_configuration() -> None:
    with pytest.raises(ValueError, match="hop_dim >= 1"):
        GNNAK(4, 2, plus=True, hop_dim=0)
    with pytest.raises(ValueError, match="node_encoder"):
        GNNAK(4, 2, node_encoder="embedding")
    with pytest.raises(ValueError, match="edge_dim >= 1"):
        SUN(4, 2, edge_encoder="linear")
    with pytest.raises(ValueError, match="num_layers"):
        SUN(4, 2, num_layers=0)
    b = batch_of(featurise(graphs(), molecules=False), "ego")
    with pytest.raises(ValueError, match="no pair_label"):
        call(SUN(4, 2, num_labels=2).double(), b)
    with pytest.raises(ValueError, match="no edge_attr"):
        call(GNNAK(4, 2, edge_encoder="linear", edge_dim=2).double(), b, edge_attr=True)
    with pytest.raises(ValueError, match="needs pair_dis"):
        call(GNNAK(4, 2, plus=True).double(), b, pair_dis=True)


def test_sun_distance_embedding_is_added_to_the_initial_pair_states() -> None:
    """With every distance embedding zeroed, SUN(use_distances=True) is SUN without it (same other parameters);
    with them it differs, and changing one pair's distance changes the output."""
    b = batch_of(featurise(graphs(), molecules=False))
    torch.manual_seed(0)
    plain = SUN(4, 3, hidden_channels=8, num_layers=2, num_labels=2).double().eval()
    torch.manual_seed(0)
    with_dis = SUN(4, 3, hidden_channels=8, num_layers=2, num_labels=2, use_distances=True).double().eval()
    randomise_norms(plain)
    with_dis.load_state_dict(plain.state_dict())  # PairEmbedding always holds the distance table
    assert not torch.allclose(call(with_dis, b), call(plain, b))
    with torch.no_grad():
        with_dis.embedding.dist.weight.zero_()
    torch.testing.assert_close(call(with_dis, b), call(plain, b), **TOL)


def test_sun_use_distances_needs_pair_dis() -> None:
    b = batch_of(featurise(graphs(), molecules=False))
    with pytest.raises(ValueError, match="use_distances=True.*no pair_dis"):
        call(SUN(4, 2, num_labels=2, use_distances=True).double(), b, pair_dis=True)


@pytest.mark.parametrize("i", range(5))
def test_a_plain_batch_or_an_edge_deleted_one_is_refused(i: int) -> None:
    """A Batch without SubgraphPairs fields used to run GNN-AK (and SUN without root marks) with every subgraph the
    whole graph; an edge-deletion batch used to be run as if no policy were set (``deleted_edge_index`` was not a
    forward argument, so the task dropped it)."""
    model = models(molecules=False)[i].double()
    data = featurise(graphs(), molecules=False)
    plain = Batch.from_data_list(data)
    kw = dict(edge_attr=plain.edge_attr, batch=plain.batch, ptr=plain.ptr)
    if not getattr(model, "use_distances", False) and not getattr(getattr(model, "embedding", None), "num_labels", 0):
        with pytest.raises(ValueError, match="needs pair_dis and the other pair fields of graphlab.transforms."
                                             "SubgraphPairs"):
            model(plain.x, plain.edge_index, **kw)
    b = batch_of(data, "edge_deletion")
    with pytest.raises(ValueError, match="needs one subgraph per node|no pair_label"):
        model(b.x, b.edge_index, edge_attr=b.edge_attr, batch=b.batch, ptr=b.ptr, pair_dis=b.pair_dis,
              deleted_edge_index=b.deleted_edge_index)
