"""Graph-level prediction: multi-class, multi-label binary (NaN-masked) and regression."""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch

from graphlab.info import DatasetInfo
from graphlab.tasks.base import GraphTask


class GraphPrediction(GraphTask):
    r"""Predict one label vector per graph.

    The loss follows ``info.task_type``:

    * ``multiclass``: cross-entropy on logits ``[B, C]``;
    * ``binary``: binary cross-entropy with logits on ``[B, T]``, over the labelled
      entries only (NaN labels are missing, as in the OGB molecule sets);
    * ``regression``: the ``loss`` argument (``l1`` or ``mse``) over labelled entries.

    The model maps ``(x, edge_index, batch=..., edge_attr=...)`` to ``[B, C]`` or ``[B, T]``.

    Args:
        loss: regression loss, ``mse`` (default, OGB's choice for molesol) or ``l1``
            (the usual choice for ZINC).
        model, lr, weight_decay, optimizer, lr_scheduler, info, aux_loss_weights: see
            :class:`~graphlab.tasks.base.GraphTask`.
    """

    def __init__(
        self,
        model: nn.Module,
        lr: float = 0.001,
        weight_decay: float = 0.0,
        optimizer: Literal["adam", "adamw", "sgd"] = "adam",
        lr_scheduler: Literal["none", "plateau", "cosine"] = "none",
        info: Optional[DatasetInfo] = None,
        loss: Literal["mse", "l1"] = "mse",
        aux_loss_weights: Optional[dict[str, float]] = None,
    ) -> None:
        if loss not in ("mse", "l1"):
            raise ValueError(f"loss must be 'mse' or 'l1', got {loss!r}")
        super().__init__(model, lr, weight_decay, optimizer, lr_scheduler, info, aux_loss_weights)
        self.loss_name = loss

    def loss(self, pred: Tensor, y: Tensor) -> Tensor:
        task_type = self.info.task_type
        if task_type == "multiclass":
            return F.cross_entropy(pred, y.view(-1).long())
        y = y.view(pred.shape).float()
        labelled = ~torch.isnan(y)
        if not labelled.any():
            return pred.sum() * 0.0
        if task_type == "binary":
            return F.binary_cross_entropy_with_logits(pred[labelled], y[labelled])
        if self.loss_name == "l1":
            return F.l1_loss(pred[labelled], y[labelled])
        return F.mse_loss(pred[labelled], y[labelled])

    def _step(self, batch: Batch, stage: str) -> Tensor:
        pred = self.call_model(batch)
        loss = self.loss(pred, batch.y)
        self.log_loss(stage, loss, batch.num_graphs)
        y = batch.y.view(-1) if self.info.task_type == "multiclass" else batch.y.view(pred.shape)
        self.collect(stage, y, pred)
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        return self.add_auxiliary_losses(self._step(batch, "train"), batch.num_graphs)

    def validation_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch, "val")  # per-dataloader metrics: GraphTask.collect

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch, "test")  # per-dataloader metrics: GraphTask.collect

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, Tensor]:
        """``{"prob"}`` (softmax for multiclass, sigmoid per task for binary) or ``{"score"}`` (regression), and
        ``label``; the writer adds ``graph_id`` (position within the split)."""
        pred = self.call_model(batch)
        task_type = self.info.task_type
        out = {"score": pred} if task_type == "regression" else {
            "prob": pred.softmax(dim=-1) if task_type == "multiclass" else torch.sigmoid(pred)}
        if getattr(batch, "y", None) is not None:
            out["label"] = batch.y.view(-1) if task_type == "multiclass" else batch.y.view(pred.shape)
        return out
