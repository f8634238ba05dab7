"""Every DataModule is configurable from YAML-like config and feeds Lightning the contract batches."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from jsonargparse import ArgumentError, ArgumentParser
from torch_geometric.data import Batch, Data

from graphlab.data import (
    CSBMData,
    CSLData,
    GraphDataModule,
    OGBGraphData,
    OGBLinkData,
    OGBNodeData,
    PyGData,
    RandomLinkData,
    resolve_root,
)

PUBLIC = [OGBNodeData, OGBLinkData, OGBGraphData, PyGData, CSLData, CSBMData, RandomLinkData]


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda c: c.__name__)
def test_every_argument_is_typed_with_a_default(cls) -> None:
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self":
            continue
        assert param.annotation is not inspect.Parameter.empty, f"{cls.__name__}.{name} has no type"
        assert param.default is not inspect.Parameter.empty, f"{cls.__name__}.{name} has no default"


def _parser() -> ArgumentParser:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(GraphDataModule, "data")
    return parser


def test_config_instantiates_data_and_links_num_features() -> None:
    parser = _parser()
    config = parser.parse_object({"data": {"class_path": "graphlab.data.CSLData",
                                           "init_args": {"fold": 3, "positional_encoding": "laplacian", "pe_dim": 8}}})
    data = parser.instantiate(config).data
    assert isinstance(data, CSLData) and data.fold == 3
    assert (data.num_features, data.num_outputs) == (8, 10)  # known right after __init__


def test_config_rejects_unknown_choice() -> None:
    parser = _parser()
    with pytest.raises(ArgumentError, match="positional_encoding"):
        parser.parse_object({"data": {"class_path": "graphlab.data.CSLData",
                                      "init_args": {"positional_encoding": "spectral"}}})


def test_root_resolution(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("GRAPHLAB_DATA", raising=False)
    assert resolve_root(None) == Path("data")
    monkeypatch.setenv("GRAPHLAB_DATA", str(tmp_path))
    assert resolve_root(None) == tmp_path and resolve_root("x") == Path("x")
    assert PyGData("cora").root == tmp_path


class _ContractProbe(L.LightningModule):
    """Checks each batch against the documented layout and trains a linear layer on ``x``."""

    def __init__(self, level: str, in_channels: int) -> None:
        super().__init__()
        self.level = level
        self.lin = torch.nn.Linear(in_channels, 1)
        self.seen: dict[str, int] = {}

    def _check(self, batch: Any, stage: str) -> torch.Tensor:
        self.seen[stage] = self.seen.get(stage, 0) + 1
        if self.level == "graph":
            assert isinstance(batch, Batch) and batch.batch is not None
        else:
            assert isinstance(batch, Data) and not isinstance(batch, Batch)
        if self.level == "node":
            assert batch.train_mask.dim() == 1 and batch.y.dim() == 1
        if self.level == "link":
            assert batch.pos_edge_index.size(0) == 2
            assert (stage == "train") == ("neg_edge_index" not in batch)
        return self.lin(batch.x.float()).mean()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._check(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._check(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._check(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _trainer() -> L.Trainer:
    return L.Trainer(fast_dev_run=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False)


@pytest.mark.parametrize("make", [lambda: CSBMData(), lambda: RandomLinkData(), lambda: CSLData()],
                         ids=["csbm", "random-link", "csl"])
def test_lightning_fit_and_test_receive_contract_batches(make) -> None:
    data = make()
    probe = _ContractProbe(data.info.level, data.num_features)
    trainer = _trainer()
    trainer.fit(probe, datamodule=data)
    trainer.test(probe, datamodule=data)
    assert probe.seen["train"] >= 1 and probe.seen["val"] >= 1 and probe.seen["test"] >= 1
