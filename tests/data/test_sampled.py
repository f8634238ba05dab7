"""SampledNodeData: seed masks, every seed once per epoch, exact full-neighbour evaluation through the unchanged
NodeClassification task, global node ids in predictions, store pairs, worker processes and bad input."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch_geometric.testing import MyFeatureStore, MyGraphStore

from graphlab.data import CSBMData, CSLData, SampledNodeData
from graphlab.data.base import DatasetInfo
from graphlab.models import GraphSAGE
from graphlab.tasks import NodeClassification


def _csbm() -> CSBMData:
    return CSBMData(num_nodes=150, num_features=6, num_classes=3, avg_degree=4.0, seed=1)


def _trainer() -> L.Trainer:
    return L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, max_epochs=1)


def test_batches_mask_exactly_their_seeds_and_cover_each_split_once() -> None:
    inner = _csbm()
    dm = SampledNodeData(inner, num_neighbors=[3, 2], batch_size=16)
    dm.setup("fit")
    full = inner.graph
    for stage, loader in (("train", dm.train_dataloader()), ("val", dm.val_dataloader()),
                          ("test", dm.test_dataloader())):
        seen = []
        for batch in loader:
            mask = batch[f"{stage}_mask"]
            assert mask.tolist() == [True] * batch.batch_size + [False] * (batch.num_nodes - batch.batch_size)
            assert not any(f"{other}_mask" in batch for other in ("train", "val", "test") if other != stage)
            assert torch.equal(batch.x, full.x[batch.n_id]) and torch.equal(batch.y, full.y[batch.n_id])
            seen.append(batch.n_id[:batch.batch_size])
        seen = torch.cat(seen)
        expected = full[f"{stage}_mask"].nonzero().view(-1)
        assert sorted(seen.tolist()) == expected.tolist()  # every seed of the split exactly once
    assert dm.num_features == 6 and dm.num_outputs == 3


def test_training_fanout_is_used_for_training_and_all_neighbours_for_evaluation() -> None:
    dm = SampledNodeData(_csbm(), num_neighbors=[1, 1], batch_size=8)
    dm.setup("fit")
    train = next(iter(dm.train_dataloader()))
    assert train.num_sampled_edges[0] <= 8  # one neighbour per seed
    val = next(iter(dm.val_dataloader()))
    full = dm.graph
    seeds = val.n_id[:val.batch_size]
    in_degree = torch.bincount(full.edge_index[1], minlength=full.num_nodes)
    assert val.num_sampled_edges[0] == int(in_degree[seeds].sum())
    assert dm.eval_num_neighbors == [-1, -1]


def test_full_neighbour_evaluation_equals_full_batch_metrics() -> None:
    """The unchanged task on sampled batches reports the full-graph validation and test metrics (GraphSAGE, 2 layers,
    2 hops of every neighbour), and predicts the same probabilities under global node ids."""
    inner = _csbm()
    torch.manual_seed(0)
    model = GraphSAGE(6, 3, hidden_channels=8, num_layers=2)
    task = NodeClassification(model)
    full_metrics = _trainer().validate(task, datamodule=inner, verbose=False)[0]
    sampled = SampledNodeData(inner, num_neighbors=[2, 2], batch_size=16)
    sampled_metrics = _trainer().validate(task, datamodule=sampled, verbose=False)[0]
    assert full_metrics["val_acc"] == pytest.approx(sampled_metrics["val_acc"], abs=1e-6)
    assert full_metrics["val_loss"] == pytest.approx(sampled_metrics["val_loss"], abs=1e-5)

    full_pred = _trainer().predict(task, datamodule=inner)
    sampled_pred = _trainer().predict(task, datamodule=sampled)
    ids = torch.cat([p["node_id"] for p in sampled_pred])
    prob = torch.cat([p["prob"] for p in sampled_pred])
    reference = dict(zip(full_pred[0]["node_id"].tolist(), full_pred[0]["prob"]))
    assert sorted(ids.tolist()) == sorted(reference)  # global ids of the test nodes
    for node, p in zip(ids.tolist(), prob):
        torch.testing.assert_close(p, reference[node], atol=1e-5, rtol=1e-5)


def test_one_training_epoch_runs_and_learns_something() -> None:
    torch.manual_seed(0)
    task = NodeClassification(GraphSAGE(6, 3, hidden_channels=16, num_layers=2), lr=0.05)
    dm = SampledNodeData(_csbm(), num_neighbors=[5, 5], batch_size=32)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, max_epochs=8)
    trainer.fit(task, datamodule=dm)
    assert trainer.callback_metrics["val_acc"] > 0.5  # three balanced classes: chance is 1/3


def test_feature_store_graph_store_pair() -> None:
    graph = _csbm().graph
    feature_store, graph_store = MyFeatureStore(), MyGraphStore()
    feature_store.put_tensor(graph.x, group_name=None, attr_name="x", index=None)
    feature_store.put_tensor(graph.y, group_name=None, attr_name="y", index=None)
    graph_store.put_edge_index(graph.edge_index, edge_type=None, layout="coo",
                               size=(graph.num_nodes, graph.num_nodes))
    info = DatasetInfo(name="csbm-store", level="node", task_type="multiclass", num_features=6, num_outputs=3,
                       metric="acc")
    dm = SampledNodeData((feature_store, graph_store), num_neighbors=[2], batch_size=10, info=info,
                         seeds={"train": graph.train_mask, "val": graph.val_mask.nonzero().view(-1)})
    batch = next(iter(dm.train_dataloader()))
    assert batch.train_mask.sum() == 10 and torch.equal(batch.x, graph.x[batch.n_id])
    assert bool(graph.train_mask[batch.n_id[:10]].all())
    with pytest.raises(ValueError, match="no test split"):
        dm.test_dataloader()


def test_worker_processes_yield_the_same_seed_masks() -> None:
    dm = SampledNodeData(_csbm(), num_neighbors=[2], batch_size=16, num_workers=1)
    dm.setup("fit")
    batches = list(dm.val_dataloader())
    assert all(int(b.val_mask.sum()) == b.batch_size for b in batches)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_neighbors": []}, ValueError, "num_neighbors is empty"),
        ({"num_neighbors": [2, -3]}, ValueError, "a fan-out must be >= 0"),
        ({"eval_num_neighbors": [-1]}, ValueError, "eval_num_neighbors has 1 hops"),
        ({"batch_size": 0}, ValueError, "batch_size >= 1"),
        ({"backend": "fast"}, ValueError, "backend must be"),
        ({"backend": "pyg"}, ImportError, "needs pyg-lib or torch-sparse"),
        ({"info": DatasetInfo(name="x", level="node", task_type="multiclass", num_features=1, num_outputs=2,
                              metric="acc")}, ValueError, "for a \\(FeatureStore, GraphStore\\) pair"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, match) -> None:
    from graphlab.data.sampler import pyg_sampler_available

    if kwargs.get("backend") == "pyg" and pyg_sampler_available():
        pytest.skip("pyg-lib or torch-sparse is installed here")
    args = {"num_neighbors": [2, 2]} | kwargs
    with pytest.raises(error, match=match):
        SampledNodeData(_csbm(), **args)


def test_wrong_data_is_named() -> None:
    with pytest.raises(ValueError, match="samples node-level data"):
        _ = SampledNodeData(CSLData(), num_neighbors=[2]).info
    with pytest.raises(TypeError, match="graphlab node DataModule or a \\(FeatureStore, GraphStore\\) pair"):
        SampledNodeData("cora", num_neighbors=[2])
    with pytest.raises(ValueError, match="needs info= .* and seeds="):
        SampledNodeData((MyFeatureStore(), MyGraphStore()), num_neighbors=[2])
