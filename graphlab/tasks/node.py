"""Node classification on one full graph or on mini-batches of graphs, with the split's node masks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from graphlab.tasks.base import GraphTask


class NodeClassification(GraphTask):
    r"""Node classification with the split's boolean masks.

    The loss follows ``info.task_type``: ``multiclass`` (labels ``[N]`` class ids) takes the cross-entropy over
    the split's nodes,
    :math:`\mathcal{L} = -\frac{1}{|V_{tr}|}\sum_{v \in V_{tr}} \log \mathrm{softmax}(f(X, A)_v)_{y_v}`;
    ``binary`` (multi-label 0/1 targets ``[N, T]``, e.g. the bits of an integer) the binary cross-entropy with
    logits over the split's nodes and all ``T`` labels. The model maps ``(x, edge_index)`` to logits
    ``[N, C]`` / ``[N, T]``. Each loader may yield one full graph (transductive) or batches of graphs, each
    carrying the mask of its split. Datasets with several fixed splits choose one with the DataModule's
    ``split`` argument. Logged: ``train_loss``, ``val_loss``, ``{train,val,test}_<metric>``.
    """

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        if self.info.task_type == "binary":
            return F.binary_cross_entropy_with_logits(logits, y.view(logits.shape).to(logits.dtype))
        if self.info.task_type != "multiclass":
            raise ValueError(f"node classification supports task_type 'multiclass' or 'binary', got "
                             f"{self.info.task_type!r}")
        return F.cross_entropy(logits, y)

    def _step(self, batch: Data, stage: str) -> Tensor:
        if batch.x is None:
            raise ValueError("node classification needs node features `x`; the DataModule gave none")
        mask = getattr(batch, f"{stage}_mask", None)
        if mask is None:
            raise ValueError(f"the batch has no `{stage}_mask`: node classification needs train/val/test masks")
        logits = self.call_model(batch)
        loss = self.loss(logits[mask], batch.y[mask])
        self.log(f"{stage}_loss", loss, prog_bar=stage != "test", batch_size=int(mask.sum()))
        self.collect(stage, batch.y[mask], logits[mask])
        return loss

    def training_step(self, batch: Data, batch_idx: int) -> Tensor:
        mask = getattr(batch, "train_mask", None)
        loss = self._step(batch, "train")
        return self.add_auxiliary_losses(loss, int(mask.sum()))

    def validation_step(self, batch: Data, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch, "val")  # per-dataloader metrics: GraphTask.collect

    def test_step(self, batch: Data, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch, "test")  # per-dataloader metrics: GraphTask.collect

    def predict_step(self, batch: Data, batch_idx: int) -> dict[str, Tensor]:
        """``{"node_id", "prob" [n, C], "label"}`` for the nodes of :attr:`predict_split` (softmax over classes for
        multiclass, a sigmoid per label for binary). ``node_id`` is the node's id in the whole graph: a sampled
        batch (``n_id``, :class:`graphlab.data.SampledNodeData`) maps its local ids through ``n_id``."""
        mask = getattr(batch, f"{self.predict_split}_mask", None)
        if mask is None:
            raise ValueError(f"the batch has no `{self.predict_split}_mask`: node prediction needs the split's mask")
        ids = mask.nonzero().view(-1)
        logits = self.call_model(batch)[ids]
        prob = torch.sigmoid(logits) if self.info.task_type == "binary" else logits.softmax(dim=-1)
        n_id = getattr(batch, "n_id", None)
        return {"node_id": ids if n_id is None else n_id[ids], "prob": prob, "label": batch.y[ids]}
