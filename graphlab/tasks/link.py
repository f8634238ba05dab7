"""Link prediction: score node pairs, train against sampled negatives."""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import negative_sampling

from graphlab.data.base import DatasetInfo
from graphlab.eval.metrics import link_metric
from graphlab.tasks.base import GraphTask


class LinkPrediction(GraphTask):
    r"""Binary link prediction with negative sampling.

    Training minimises
    :math:`-\log\sigma(s(u,v)) - \log(1-\sigma(s(u',v')))` over positive training edges
    :math:`(u,v)` and uniformly sampled non-edges :math:`(u',v')`, ``num_negatives`` per
    positive. Evaluation scores the split's fixed positives and negatives and reports
    ``hits@K`` or ``mrr`` (OGB's ``Evaluator`` for OGB data).

    The model either defines ``encode(x, edge_index) -> z`` and ``decode(z, pairs) -> [P]``
    (the task then encodes once and scores pairs in chunks), or
    ``forward(x, edge_index, edge_label_index) -> [P]`` logits.

    Args:
        num_negatives: negatives sampled per positive training edge.
        eval_batch_size: pairs scored at once during evaluation.
        model, lr, weight_decay, optimizer, lr_scheduler, info: see
            :class:`~graphlab.tasks.base.GraphTask`.
    """

    def __init__(
        self,
        model: nn.Module,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        optimizer: Literal["adam", "adamw", "sgd"] = "adam",
        lr_scheduler: Literal["none", "plateau", "cosine"] = "none",
        info: Optional[DatasetInfo] = None,
        num_negatives: int = 1,
        eval_batch_size: int = 65536,
    ) -> None:
        if num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
        super().__init__(model, lr, weight_decay, optimizer, lr_scheduler, info)
        self.num_negatives = num_negatives
        self.eval_batch_size = eval_batch_size

    def score(self, batch: Data, pairs: Tensor) -> Tensor:
        """Logits of the node pairs ``pairs`` (``[2, P]``) on the batch's graph."""
        encode, decode = getattr(self.model, "encode", None), getattr(self.model, "decode", None)
        if callable(encode) and callable(decode):
            z = encode(batch.x, batch.edge_index)
            chunks = pairs.split(self.eval_batch_size, dim=1)
            return torch.cat([decode(z, c) for c in chunks]) if chunks else pairs.new_zeros(0, dtype=z.dtype)
        return self.call_model(batch, edge_label_index=pairs)

    def training_step(self, batch: Data, batch_idx: int) -> Tensor:
        pos = batch.pos_edge_index
        neg = negative_sampling(
            batch.edge_index, num_nodes=batch.num_nodes, num_neg_samples=pos.size(1) * self.num_negatives
        )
        logits = self.score(batch, torch.cat([pos, neg], dim=1))
        labels = torch.cat([logits.new_ones(pos.size(1)), logits.new_zeros(neg.size(1))])
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        self.log("train_loss", loss, prog_bar=True, batch_size=pos.size(1))
        return loss

    def _evaluate(self, batch: Data, stage: str) -> None:
        for key in ("pos_edge_index", "neg_edge_index"):
            if getattr(batch, key, None) is None:
                raise ValueError(f"the {stage} batch has no `{key}`: link evaluation needs fixed positives and negatives")
        pos_neg = torch.cat([batch.pos_edge_index, batch.neg_edge_index], dim=1)
        scores = self.score(batch, pos_neg)
        num_pos = batch.pos_edge_index.size(1)
        labels = torch.cat([scores.new_ones(num_pos), scores.new_zeros(scores.numel() - num_pos)])
        self.log(f"{stage}_loss", F.binary_cross_entropy_with_logits(scores, labels), batch_size=num_pos)
        self.collect(stage, labels, scores)

    def compute_metric(self, y_true: Tensor, y_pred: Tensor) -> float:
        positive = y_true.bool()
        return link_metric(self.info, y_pred[positive], y_pred[~positive])

    def validation_step(self, batch: Data, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Data, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: Data, batch_idx: int) -> Tensor:
        pairs = getattr(batch, "edge_label_index", None)
        if pairs is None:
            raise ValueError("predict batches need `edge_label_index` [2, P]: the node pairs to score")
        return torch.sigmoid(self.score(batch, pairs))
