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
    MovieLens100K,
    OGBGraphData,
    OGBLinkData,
    OGBNodeData,
    PyGData,
    RandomLinkData,
    resolve_root,
)

PUBLIC = [OGBNodeData, OGBLinkData, OGBGraphData, PyGData, CSLData, CSBMData, RandomLinkData, MovieLens100K]


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


def _write_ratings(raw: Path) -> set[tuple[int, int]]:
    """A tiny u.data: users 1..30 each rate items 1..20 by a fixed pattern; returns the 0-based (user, item) pairs."""
    raw.mkdir(parents=True)
    lines, pairs = [], set()
    for user in range(1, 31):
        for item in range(1, 21):
            if (user * 7 + item * 3) % 4 == 0:
                lines.append(f"{user}\t{item}\t4\t0")
                pairs.add((user - 1, item - 1))
    (raw / "u.data").write_text("\n".join(lines) + "\n")
    return pairs


@pytest.mark.parametrize("q", [1, 3])
def test_movielens_gives_each_positive_its_own_negatives(tmp_path, q):
    from graphlab.data.movielens import NUM_USERS, MovieLens100K

    known = _write_ratings(tmp_path / "MovieLens100K" / "raw")
    dm = MovieLens100K(root=str(tmp_path), metric="mrr", num_eval_negatives=q)
    assert dm.info.negatives_per_positive == q and dm.info.metric_label == f"mrr ({q} neg/pos)"
    for name in ("val", "test"):
        part = dm.parts[name]
        pos, neg = part.pos_edge_index, part.neg_edge_index
        assert neg.size(1) == q * pos.size(1)
        # positive-major: columns i*q .. (i+1)*q - 1 corrupt the item of positive i and keep its user
        assert neg[0].tolist() == [u for u in pos[0].tolist() for _ in range(q)]
        for user, item in neg.t().tolist():
            assert item >= NUM_USERS and (user, item - NUM_USERS) not in known


def test_movielens_rejects_a_bad_negative_count(tmp_path):
    from graphlab.data.movielens import MovieLens100K

    with pytest.raises(ValueError, match="num_eval_negatives must be an int >= 1"):
        MovieLens100K(root=str(tmp_path), num_eval_negatives=0)
