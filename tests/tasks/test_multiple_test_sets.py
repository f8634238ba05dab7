"""Several test loaders in one run: the task logs the headline ``test_<metric>`` for the first and
``test_<metric>@<name>`` for the others, each computed on its own loader only."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch_geometric.nn.aggr import MaxAggregation, SumAggregation

from graphlab.data import SecondMinimumData, SecondMinimumGraphData
from graphlab.models import MultisetModel, NeighbourhoodModel
from graphlab.tasks import GraphPrediction, NodeClassification

pytestmark = pytest.mark.usefixtures("one_thread")


def _trainer() -> L.Trainer:
    return L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, accelerator="cpu")


def _exact_match(model: torch.nn.Module, batches: list, node_level: bool) -> float:
    """Independent count: a prediction is right when every bit's logit has the label's sign."""
    right = total = 0
    with torch.no_grad():
        for b in batches:
            out = model(b.x, b.edge_index) if node_level else model(b.x, b.edge_index, batch=b.batch)
            ok = ((out > 0).float() == b.y.view(out.shape)).all(dim=-1)
            right, total = right + int(ok.sum()), total + ok.numel()
    return right / total


def test_set_task_reports_every_test_size_from_its_own_loader():
    torch.manual_seed(0)
    dm = SecondMinimumData(test_sizes=[6, 12, 3], num_train=64, num_val=16, num_test=40, batch_size=16)
    model = MultisetModel(8, 8, MaxAggregation(), hidden_channels=16)
    task = GraphPrediction(model, lr=0.01)
    trainer = _trainer()
    trainer.fit(task, datamodule=dm)
    results = trainer.test(task, datamodule=dm, verbose=False)
    merged = {k: v for r in results for k, v in r.items()}
    model.eval()
    expected = {f"test_exact_acc{'' if i == 0 else '@' + str(size)}": _exact_match(model, list(loader), False)
                for i, (size, loader) in enumerate(zip([6, 12, 3], dm.test_dataloader()))}
    assert {k: merged[k] for k in expected} == pytest.approx(expected)
    assert len(set(expected.values())) > 1  # the three sets are really different (else the check proves little)
    assert not any(k.startswith("test_exact_acc@6") for k in merged)  # the first one is the headline only


def test_graph_task_reports_every_test_degree():
    torch.manual_seed(0)
    dm = SecondMinimumGraphData(test_degrees=[4, 9], val_degree=5, num_train_graphs=4, num_val_graphs=1, num_test_graphs=2,
                                train_degrees=(2, 6), num_nodes=20)
    model = NeighbourhoodModel(8, 8, SumAggregation(), hidden_channels=16)
    task = NodeClassification(model, lr=0.01)
    trainer = _trainer()
    trainer.fit(task, datamodule=dm)
    merged = {k: v for r in trainer.test(task, datamodule=dm, verbose=False) for k, v in r.items()}
    model.eval()
    loaders = dm.test_dataloader()
    assert merged["test_exact_acc"] == pytest.approx(_exact_match(model, list(loaders[0]), True))
    assert merged["test_exact_acc@9"] == pytest.approx(_exact_match(model, list(loaders[1]), True))
