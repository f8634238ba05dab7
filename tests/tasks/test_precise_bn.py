"""PreciseBatchNorm: running statistics recomputed with the current weights before every validation of a fit."""

from __future__ import annotations

from typing import Any, Optional

import lightning as L
import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from graphlab.info import DatasetInfo
from graphlab.tasks import GraphPrediction, PreciseBatchNorm, recompute_batch_norm_stats

pytestmark = pytest.mark.usefixtures("one_thread")

INFO = DatasetInfo("toy", "graph", "regression", 3, 1, "mae")


class TwoBranch(nn.Module):
    """Per node: ``BN_c(W_c x_0)`` (``x_0`` is the same constant on every node, so this BatchNorm's input has zero
    variance in every batch and a weight-dependent mean) plus ``BN_r(W_r x_{1:})`` (ordinary features); sum pool,
    dropout, linear head."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.lin_c, self.bn_c = nn.Linear(1, 4), nn.BatchNorm1d(4)
        self.lin_r, self.bn_r = nn.Linear(2, 4), nn.BatchNorm1d(4)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(4, 1)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor) -> Tensor:
        h = self.bn_c(self.lin_c(x[:, :1])) + self.bn_r(self.lin_r(x[:, 1:]))
        pooled = torch.zeros(int(batch.max()) + 1, h.size(1)).index_add_(0, batch, h)
        return self.head(self.drop(pooled))


def _graphs(n: int = 24, seed: int = 0) -> list[Data]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        nodes = int(torch.randint(3, 7, (1,), generator=g))
        x = torch.cat([torch.ones(nodes, 1), torch.randn(nodes, 2, generator=g)], dim=1)
        out.append(Data(x=x, edge_index=torch.zeros(2, 0, dtype=torch.long), y=torch.randn(1, 1, generator=g)))
    return out


class ToyData(L.LightningDataModule):
    def __init__(self, batch_size: int = 4, shuffle: bool = True) -> None:
        super().__init__()
        self.train, self.val, self.batch_size, self.shuffle = _graphs(24, 0), _graphs(8, 1), batch_size, shuffle

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=self.shuffle)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=self.batch_size)


def _fit(callback: Optional[PreciseBatchNorm], epochs: int = 3, dropout: float = 0.0, datamodule: bool = True,
         lr: float = 0.05, shuffle: bool = True, **trainer: Any) -> tuple[GraphPrediction, L.Trainer]:
    L.seed_everything(0, verbose=False)
    task = GraphPrediction(TwoBranch(dropout), lr=lr, info=INFO)
    kwargs = dict(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0)
    kwargs.update(trainer)
    trainer_ = L.Trainer(callbacks=[callback] if callback is not None else [], **kwargs)
    if datamodule:
        trainer_.fit(task, datamodule=ToyData(shuffle=shuffle))
    else:
        data = ToyData(shuffle=shuffle)
        trainer_.fit(task, train_dataloaders=data.train_dataloader(), val_dataloaders=data.val_dataloader())
    return task, trainer_


def _reference_stats(task: GraphPrediction, graphs: list[Data], batch_size: int = 4) -> dict[str, tuple[Tensor, Tensor]]:
    """Average over the training batches of the batch mean and unbiased batch variance of each BatchNorm's input,
    computed directly from the weights (no BatchNorm module involved)."""
    model = task.model
    inputs = {"bn_c": lambda x: model.lin_c(x[:, :1]), "bn_r": lambda x: model.lin_r(x[:, 1:])}
    out = {}
    with torch.no_grad():
        for name, f in inputs.items():
            means, variances = [], []
            for b in DataLoader(graphs, batch_size=batch_size):
                z = f(b.x)
                means.append(z.mean(0))
                variances.append(z.var(0, unbiased=True))
            out[name] = (torch.stack(means).mean(0), torch.stack(variances).mean(0))
    return out


@pytest.mark.parametrize("datamodule", [True, False])
def test_running_stats_equal_the_average_of_batch_stats_under_the_final_weights(datamodule: bool) -> None:
    # a fixed partition into batches: the average of batch statistics depends on it (graphs differ in size)
    task, _ = _fit(PreciseBatchNorm(num_batches=None), datamodule=datamodule, shuffle=False)
    ref = _reference_stats(task, _graphs(24, 0))
    for name, (mean, var) in ref.items():
        bn = getattr(task.model, name)
        torch.testing.assert_close(bn.running_mean, mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(bn.running_var, var, rtol=1e-5, atol=1e-6)
        assert bn.momentum == 0.1  # restored after the pass


def test_zero_variance_channel_eval_matches_training_mode_only_with_the_callback() -> None:
    everything = next(iter(DataLoader(_graphs(24, 0), batch_size=24)))

    def train_vs_eval(task: GraphPrediction) -> float:
        with torch.no_grad():
            task.train()
            train_mode = task.call_model(everything)
            task.eval()
            eval_mode = task.call_model(everything)
        return float((train_mode - eval_mode).abs().max())

    stale, _ = _fit(None)
    precise, _ = _fit(PreciseBatchNorm(num_batches=None))
    # the constant branch normalises to beta in training mode; with the moving averages its eval output is the
    # lag of the running mean divided by sqrt(eps), which swamps the head
    assert train_vs_eval(stale) > 1.0
    # with the statistics recomputed: the constant branch matches exactly, the other one up to the batch-to-batch
    # spread of the statistics, which the full-set batch here does not see
    assert train_vs_eval(precise) < 0.25 * train_vs_eval(stale)
    torch.testing.assert_close(precise.model.bn_c.running_var, torch.zeros(4), atol=1e-10, rtol=0)


def test_training_draws_the_same_randomness_with_and_without_the_callback() -> None:
    plain, _ = _fit(None, dropout=0.5)
    precise, _ = _fit(PreciseBatchNorm(num_batches=3), dropout=0.5)
    for (name, a), b in zip(plain.model.named_parameters(), precise.model.parameters()):
        assert torch.equal(a, b), name
    assert not torch.equal(plain.model.bn_c.running_mean, precise.model.bn_c.running_mean)


def test_best_checkpoint_holds_the_recomputed_stats(tmp_path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    ckpt = ModelCheckpoint(dirpath=tmp_path, monitor="val_mae", mode="min", save_top_k=1)
    L.seed_everything(0, verbose=False)
    task = GraphPrediction(TwoBranch(), lr=0.05, info=INFO)
    trainer = L.Trainer(max_epochs=4, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", num_sanity_val_steps=0,
                        callbacks=[PreciseBatchNorm(num_batches=None), ckpt])
    trainer.fit(task, datamodule=ToyData(shuffle=False))
    best = GraphPrediction(TwoBranch(), info=INFO)
    best.load_state_dict(torch.load(ckpt.best_model_path, weights_only=False)["state_dict"])
    ref = _reference_stats(best, _graphs(24, 0))
    for name, (mean, var) in ref.items():
        bn = getattr(best.model, name)
        torch.testing.assert_close(bn.running_mean, mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(bn.running_var, var, rtol=1e-5, atol=1e-6)


def test_recompute_uses_only_the_given_batches_and_keeps_stats_without_batches() -> None:
    model = TwoBranch()
    model.bn_r.running_mean.fill_(3.0)
    graphs = _graphs(8, 0)
    forward = lambda b: model(b.x, b.edge_index, b.batch)  # noqa: E731
    assert recompute_batch_norm_stats(model, forward, []) == 0
    assert torch.equal(model.bn_r.running_mean, torch.full((4,), 3.0))
    batches = list(DataLoader(graphs, batch_size=4))
    assert recompute_batch_norm_stats(model, forward, batches[:1]) == 1
    with torch.no_grad():
        expected = model.lin_r(batches[0].x[:, 1:]).mean(0)
    torch.testing.assert_close(model.bn_r.running_mean, expected)
    assert int(model.bn_r.num_batches_tracked) == 1


def test_every_submodule_keeps_its_mode() -> None:
    model = TwoBranch(dropout=0.5)
    model.eval()
    model.bn_r.train()
    batches = list(DataLoader(_graphs(8, 0), batch_size=4))
    recompute_batch_norm_stats(model, lambda b: model(b.x, b.edge_index, b.batch), batches)
    assert {name: m.training for name, m in model.named_modules()} == {
        name: name == "bn_r" for name, _ in model.named_modules()}


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "all"])
def test_bad_num_batches(bad: Any) -> None:
    with pytest.raises(ValueError, match="num_batches must be a positive int or None"):
        PreciseBatchNorm(num_batches=bad)
