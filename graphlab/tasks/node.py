"""Transductive node classification on one full graph."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from graphlab.tasks.base import GraphTask


class NodeClassification(GraphTask):
    r"""Full-batch node classification with the split's boolean masks.

    The loss is the cross-entropy over the training nodes,
    :math:`\mathcal{L} = -\frac{1}{|V_{tr}|}\sum_{v \in V_{tr}} \log \mathrm{softmax}(f(X, A)_v)_{y_v}`.
    The model maps ``(x, edge_index)`` to logits ``[N, C]``. Datasets with several fixed
    splits choose one with the DataModule's ``split`` argument. Logged: ``train_loss``,
    ``val_loss``, ``{train,val,test}_<metric>``.
    """

    def _step(self, batch: Data, stage: str) -> Tensor:
        if batch.x is None:
            raise ValueError("node classification needs node features `x`; the DataModule gave none")
        mask = getattr(batch, f"{stage}_mask", None)
        if mask is None:
            raise ValueError(f"the batch has no `{stage}_mask`: node classification needs train/val/test masks")
        logits = self.call_model(batch)
        loss = F.cross_entropy(logits[mask], batch.y[mask])
        self.log(f"{stage}_loss", loss, prog_bar=stage != "test", batch_size=int(mask.sum()))
        self.collect(stage, batch.y[mask], logits[mask])
        return loss

    def training_step(self, batch: Data, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Data, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Data, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: Data, batch_idx: int) -> dict[str, Tensor]:
        """``{"node_id", "prob" [n, C], "label"}`` for the nodes of :attr:`predict_split`."""
        mask = getattr(batch, f"{self.predict_split}_mask", None)
        if mask is None:
            raise ValueError(f"the batch has no `{self.predict_split}_mask`: node prediction needs the split's mask")
        ids = mask.nonzero().view(-1)
        return {"node_id": ids, "prob": self.call_model(batch)[ids].softmax(dim=-1), "label": batch.y[ids]}
