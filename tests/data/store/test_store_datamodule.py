"""DiskStoreData: sampled training and evaluation from a disk store equal the in-memory sampled path."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from graphlab.data import CSBMData, DiskStoreData, SampledNodeData, write_store
from graphlab.data.store.datamodule import BatchFeatureStore
from graphlab.models import GraphSAGE
from graphlab.tasks import NodeClassification


def _csbm() -> CSBMData:
    return CSBMData(num_nodes=150, num_features=6, num_classes=3, avg_degree=4.0, seed=1)


def _trainer(**kwargs) -> L.Trainer:
    return L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     **kwargs)


def _store(tmp_path: Path, inner: CSBMData, with_info: bool = True) -> Path:
    write_store(tmp_path / "csbm", inner.graph, info=inner.info if with_info else None)
    return tmp_path / "csbm"


def test_store_evaluation_and_predictions_equal_the_in_memory_graph(tmp_path: Path) -> None:
    inner = _csbm()
    disk = DiskStoreData(str(_store(tmp_path, inner)))
    assert disk.info == inner.info
    for stage in ("train", "val", "test"):
        torch.testing.assert_close(disk.seeds[stage], inner.graph[f"{stage}_mask"].nonzero().view(-1))
    torch.manual_seed(0)
    task = NodeClassification(GraphSAGE(6, 3, hidden_channels=8, num_layers=2))
    in_memory = SampledNodeData(inner, num_neighbors=[2, 2], batch_size=16)
    from_disk = SampledNodeData(disk, num_neighbors=[2, 2], batch_size=16)
    expected = _trainer().validate(task, datamodule=in_memory, verbose=False)[0]
    got = _trainer().validate(task, datamodule=from_disk, verbose=False)[0]
    assert got["val_acc"] == pytest.approx(expected["val_acc"], abs=1e-6)
    assert got["val_loss"] == pytest.approx(expected["val_loss"], abs=1e-5)
    pred_memory = _trainer().predict(task, datamodule=in_memory)
    pred_disk = _trainer().predict(task, datamodule=from_disk)
    torch.testing.assert_close(torch.cat([p["node_id"] for p in pred_disk]),
                               torch.cat([p["node_id"] for p in pred_memory]))
    torch.testing.assert_close(torch.cat([p["prob"] for p in pred_disk]),
                               torch.cat([p["prob"] for p in pred_memory]), atol=1e-5, rtol=1e-5)


def test_training_from_the_store_follows_the_in_memory_run(tmp_path: Path) -> None:
    """Same seed, same seed order, every neighbour (the two graphs may list a node's neighbours in another order, so
    with a fan-out the same random stream picks other neighbours): the store changes where rows come from, not what
    is learnt."""
    inner = _csbm()
    disk = DiskStoreData(str(_store(tmp_path, inner)))
    results = []
    for data in (inner, disk):
        L.seed_everything(3, verbose=False)
        task = NodeClassification(GraphSAGE(6, 3, hidden_channels=16, num_layers=2, dropout=0.0), lr=0.05)
        trainer = _trainer(max_epochs=3)
        trainer.fit(task, datamodule=SampledNodeData(data, num_neighbors=[-1, -1], batch_size=32))
        results.append([p.detach().clone() for p in task.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_batches_gather_only_features_and_labels(tmp_path: Path) -> None:
    inner = _csbm()
    disk = DiskStoreData(str(_store(tmp_path, inner)))
    assert isinstance(disk.stores[0], BatchFeatureStore)
    assert sorted(attr.attr_name for attr in disk.stores[0].get_all_tensor_attrs()) == ["x", "y"]
    batch = next(iter(SampledNodeData(disk, num_neighbors=[2], batch_size=8).train_dataloader()))
    assert not hasattr(batch, "val_mask") and not hasattr(batch, "test_mask")
    torch.testing.assert_close(batch.x, inner.graph.x[batch.n_id])
    assert int(batch.train_mask.sum()) == 8


def test_relative_path_is_under_the_data_root_and_a_missing_store_names_the_command(tmp_path: Path) -> None:
    module = DiskStoreData("stores/absent", root=str(tmp_path))
    assert module.path == tmp_path / "stores" / "absent"
    with pytest.raises(FileNotFoundError, match="graphlab store convert --source"):
        _ = module.info


def test_info_is_derived_for_a_raw_store_and_split_columns_are_checked(tmp_path: Path) -> None:
    inner = _csbm()
    graph = inner.graph.clone()
    for stage in ("train", "val", "test"):  # two splits as [N, 2] columns: the second is the complement of the first
        mask = graph[f"{stage}_mask"]
        graph[f"{stage}_mask"] = torch.stack([mask, ~mask], dim=1)
    write_store(tmp_path / "raw", graph)
    module = DiskStoreData(str(tmp_path / "raw"), split=1)
    assert module.info.task_type == "multiclass" and module.info.metric == "acc"
    assert module.info.num_outputs == int(graph.y.max()) + 1 and module.info.num_features == 6
    np.testing.assert_array_equal(module.seeds["train"].numpy(), (~inner.graph.train_mask).nonzero().view(-1).numpy())
    with pytest.raises(ValueError, match="split 2 is out of range"):
        _ = DiskStoreData(str(tmp_path / "raw"), split=2).seeds
