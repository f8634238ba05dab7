"""Auxiliary losses reported by model modules: collected, weighted into the training loss, logged per name."""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from graphlab.data import CSBMData, RandomLinkData
from graphlab.info import DatasetInfo
from graphlab.models import GCN, LinkGNN
from graphlab.tasks import GraphPrediction, LinkPrediction, NodeClassification

pytestmark = pytest.mark.usefixtures("one_thread")


class ToyRegulariser(nn.Module):
    """Reports ``{name: scale * |theta|^2}`` with a parameter ``theta`` that nothing else uses: the only gradient
    ``theta`` can receive is the auxiliary one. Counts the calls and remembers the last value it reported."""

    def __init__(self, name: str = "toy", scale: float = 1.0) -> None:
        super().__init__()
        self.name, self.scale = name, scale
        self.theta = nn.Parameter(torch.tensor([1.0, -2.0]))
        self.calls = 0
        self.reported: list[float] = []

    def auxiliary_losses(self) -> dict[str, Tensor]:
        self.calls += 1
        value = self.scale * self.theta.pow(2).sum()
        self.reported.append(float(value.detach()))
        return {self.name: value}


class SumPoolModel(nn.Module):
    """``Linear`` on summed node features per graph, with two regularisers reporting the same name."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.reg_a = ToyRegulariser("toy", 1.0)
        self.reg_b = ToyRegulariser("toy", 0.5)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor) -> Tensor:
        return self.lin(torch.zeros(int(batch.max()) + 1, x.size(1)).index_add_(0, batch, x))


class KeepOutputs(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []
        self.logged: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.losses.append(float(outputs["loss"]))
        self.logged.append({k: float(v) for k, v in trainer.callback_metrics.items()})


def _graphs(n: int = 8) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    data = [Data(x=torch.randn(4, 3, generator=g), edge_index=torch.zeros(2, 0, dtype=torch.long),
                 y=torch.randint(0, 2, (1, 2), generator=g).float()) for _ in range(n)]
    return DataLoader(data, batch_size=n)


def _fit(task: L.LightningModule, steps: int = 1, **fit: Any) -> KeepOutputs:
    keep = KeepOutputs()
    trainer = L.Trainer(max_steps=steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[keep], accelerator="cpu")
    trainer.fit(task, **fit)
    return keep


GRAPH_INFO = DatasetInfo("toy", "graph", "binary", 3, 2, "rocauc")


def test_weighted_aux_loss_is_added_and_logged():
    model = SumPoolModel()
    task = GraphPrediction(model, lr=0.1, optimizer="sgd", info=GRAPH_INFO, aux_loss_weights={"toy": 0.25})
    keep = _fit(task, train_dataloaders=_graphs(), val_dataloaders=_graphs())
    toy = model.reg_a.reported[0] + model.reg_b.reported[0]
    assert toy == pytest.approx(5.0 + 2.5)  # |(1, -2)|^2 = 5, summed over both modules (scales 1 and 0.5)
    logged = keep.logged[0]
    assert logged["train_toy_loss"] == pytest.approx(toy)
    assert keep.losses[0] == pytest.approx(logged["train_loss"] + 0.25 * toy)
    # the auxiliary term trained theta: SGD with momentum 0.9, first step = -lr * grad = -0.1 * 0.25 * 2 * theta
    assert torch.allclose(model.reg_a.theta.detach(), torch.tensor([1.0, -2.0]) * (1 - 0.1 * 0.25 * 2))


def test_unweighted_aux_loss_is_logged_but_not_trained():
    model = SumPoolModel()
    task = GraphPrediction(model, lr=0.1, optimizer="sgd", info=GRAPH_INFO)
    keep = _fit(task, steps=2, train_dataloaders=_graphs(4), val_dataloaders=_graphs())
    assert model.reg_a.calls == 2 and model.reg_b.calls == 2  # asked every step even without a weight
    assert keep.logged[-1]["train_toy_loss"] == pytest.approx(7.5)
    assert keep.losses[0] == pytest.approx(keep.logged[0]["train_loss"])
    assert torch.equal(model.reg_a.theta.detach(), torch.tensor([1.0, -2.0]))


def test_unknown_aux_loss_name_names_the_available_ones():
    task = GraphPrediction(SumPoolModel(), info=GRAPH_INFO, aux_loss_weights={"associativity": 1.0})
    with pytest.raises(ValueError, match=r"\['associativity'\].*available: toy"):
        _fit(task, train_dataloaders=_graphs(), val_dataloaders=_graphs())


def test_aux_loss_name_without_any_reporting_module():
    task = NodeClassification(GCN(32, 2), aux_loss_weights={"associativity": 1.0})
    with pytest.raises(ValueError, match="available: none"):
        _fit(task, datamodule=CSBMData(num_nodes=60))


@pytest.mark.parametrize("weights, match", [({"toy": -1.0}, ">= 0"), ({"toy": float("nan")}, "finite"),
                                            ({"toy": "big"}, "finite number")])
def test_bad_weights_are_rejected(weights, match):
    with pytest.raises(ValueError, match=match):
        GraphPrediction(SumPoolModel(), info=GRAPH_INFO, aux_loss_weights=weights)


def test_node_task_adds_aux_loss():
    model = GCN(32, 2)
    model.reg = ToyRegulariser()
    keep = _fit(NodeClassification(model, aux_loss_weights={"toy": 2.0}), datamodule=CSBMData(num_nodes=60))
    assert keep.losses[0] == pytest.approx(keep.logged[0]["train_loss"] + 2.0 * 5.0)
    assert keep.logged[0]["train_toy_loss"] == pytest.approx(5.0)


@pytest.mark.parametrize("loss", ["bce", "bpr"])
def test_link_task_adds_aux_loss(loss):
    model = LinkGNN(16, hidden_channels=8)
    model.reg = ToyRegulariser()
    task = LinkPrediction(model, loss=loss, aux_loss_weights={"toy": 3.0})
    keep = _fit(task, datamodule=RandomLinkData(num_nodes=60))
    assert keep.losses[0] == pytest.approx(keep.logged[0]["train_loss"] + 3.0 * 5.0)
    assert keep.logged[0]["train_toy_loss"] == pytest.approx(5.0)
