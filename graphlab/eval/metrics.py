"""Epoch-level evaluation: OGB's own ``Evaluator`` for OGB data, torchmetrics otherwise.

Every function takes whole-split tensors (predictions are accumulated over the epoch
by the task) and returns a Python float, so the numbers a leaderboard reports come from
one place and are comparable with the OGB leaderboards.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc, binary_average_precision
from torchmetrics.functional.classification import multiclass_accuracy
from torchmetrics.functional.regression import mean_absolute_error, mean_squared_error

from graphlab.data.base import DatasetInfo

SUPPORTED = ("acc", "rocauc", "ap", "rmse", "mae", "mrr")  # plus "hits@K"


def evaluate(info: DatasetInfo, y_true: Tensor, y_pred: Tensor) -> float:
    """Headline metric ``info.metric`` of node- and graph-level predictions.

    Args:
        info: the dataset description (metric, task type, OGB name).
        y_true: ``[N]`` class ids (multiclass) or ``[N, T]`` targets with NaN = missing.
        y_pred: ``[N, C]`` logits (multiclass) or ``[N, T]`` scores / values.
    """
    if info.ogb_name is not None:
        return _ogb_node_or_graph(info, y_true, y_pred)
    metric = info.metric
    if metric == "acc":
        if info.task_type != "multiclass":
            raise ValueError(f"metric 'acc' needs a multiclass task, got task_type={info.task_type!r}")
        return float(multiclass_accuracy(y_pred, y_true, num_classes=y_pred.size(-1), average="micro"))
    if metric in ("rocauc", "ap"):
        return _masked_per_task(y_true, y_pred, binary_auroc if metric == "rocauc" else binary_average_precision)
    if metric in ("rmse", "mae"):
        return _masked_regression(y_true, y_pred, metric)
    raise ValueError(f"unknown metric {metric!r} for {info.name}; supported: {SUPPORTED + ('hits@K',)}")


def _ogb_node_or_graph(info: DatasetInfo, y_true: Tensor, y_pred: Tensor) -> float:
    evaluator = _ogb_evaluator(info)
    if info.task_type == "multiclass":
        y_pred = y_pred.argmax(dim=-1, keepdim=True)
        y_true = y_true.view(-1, 1)
    result = evaluator.eval({"y_true": y_true.cpu(), "y_pred": y_pred.detach().cpu()})
    return float(result[info.metric])


def _ogb_evaluator(info: DatasetInfo):  # noqa: ANN202 - ogb has no type hints
    prefix = (info.ogb_name or "").split("-")[0]
    if prefix == "ogbn":
        from ogb.nodeproppred import Evaluator
    elif prefix == "ogbl":
        from ogb.linkproppred import Evaluator
    elif prefix == "ogbg":
        from ogb.graphproppred import Evaluator
    else:
        raise ValueError(f"{info.ogb_name!r} is not an OGB dataset name (ogbn-*, ogbl-*, ogbg-*)")
    return Evaluator(info.ogb_name)


def _masked_per_task(y_true: Tensor, y_pred: Tensor, fn) -> float:  # noqa: ANN001
    """Mean over tasks of ``fn`` on the labelled entries, as OGB does for mol sets.

    Tasks whose labelled entries hold only one class are skipped (the score is undefined).
    """
    y_true, y_pred = _as_2d(y_true), _as_2d(y_pred)
    scores = []
    for t in range(y_true.size(1)):
        labelled = ~torch.isnan(y_true[:, t])
        target = y_true[labelled, t]
        if target.numel() == 0 or target.min() == target.max():
            continue
        scores.append(float(fn(y_pred[labelled, t].float(), target.long())))
    if not scores:
        raise ValueError("no task has both positive and negative labels: ROC-AUC/AP is undefined on this split")
    return sum(scores) / len(scores)


def _masked_regression(y_true: Tensor, y_pred: Tensor, metric: str) -> float:
    y_true, y_pred = _as_2d(y_true).float(), _as_2d(y_pred).float()
    scores = []
    for t in range(y_true.size(1)):
        labelled = ~torch.isnan(y_true[:, t])
        if labelled.any():
            a, b = y_pred[labelled, t], y_true[labelled, t]
            value = mean_absolute_error(a, b) if metric == "mae" else mean_squared_error(a, b, squared=False)
            scores.append(float(value))
    if not scores:
        raise ValueError("every target is NaN: nothing to evaluate")
    return sum(scores) / len(scores)


def _as_2d(t: Tensor) -> Tensor:
    return t.view(-1, 1) if t.dim() == 1 else t


def link_metric(info: DatasetInfo, pos_score: Tensor, neg_score: Tensor) -> float:
    """``hits@K`` (one negative set shared by all positives) or ``mrr`` (``neg_score`` ``[P, Q]``).

    Follows OGB's definitions: a positive counts as a hit when its score is strictly
    greater than the K-th best negative; MRR ranks each positive against its own
    negatives with ties counted half-optimistically, half-pessimistically.
    """
    pos_score, neg_score = pos_score.detach().float().cpu(), neg_score.detach().float().cpu()
    if info.ogb_name is not None:
        evaluator = _ogb_evaluator(info)
        if info.metric.startswith("hits@"):
            evaluator.K = int(info.metric.split("@")[1])
        elif neg_score.dim() == 1:  # mrr: each positive is ranked against its own negatives
            if neg_score.numel() % max(pos_score.numel(), 1):
                raise ValueError(
                    f"MRR needs the same number of negatives per positive: {neg_score.numel()} negatives "
                    f"for {pos_score.numel()} positives"
                )
            neg_score = neg_score.view(pos_score.numel(), -1)
        result = evaluator.eval({"y_pred_pos": pos_score, "y_pred_neg": neg_score})
        if info.metric == "mrr":
            return float(result["mrr_list"].mean())
        return float(result[info.metric])
    if info.metric.startswith("hits@"):
        return hits_at_k(pos_score, neg_score, int(info.metric.split("@")[1]))
    if info.metric == "mrr":
        return mean_reciprocal_rank(pos_score, neg_score)
    raise ValueError(f"unknown link metric {info.metric!r}; use 'hits@K' or 'mrr'")


def hits_at_k(pos_score: Tensor, neg_score: Tensor, k: int) -> float:
    """Fraction of positives scored strictly above the ``k``-th highest negative."""
    if neg_score.numel() < k:
        return 1.0
    kth = torch.topk(neg_score.view(-1), k).values[-1]
    return float((pos_score > kth).float().mean())


def mean_reciprocal_rank(pos_score: Tensor, neg_score: Tensor, neg_per_pos: Optional[int] = None) -> float:
    """MRR of each positive against its row of negatives ``neg_score[i]`` (``[P, Q]``)."""
    if neg_score.dim() == 1:
        if neg_per_pos is None:
            neg_score = neg_score.view(1, -1).expand(pos_score.numel(), -1)
        else:
            neg_score = neg_score.view(-1, neg_per_pos)
    pos = pos_score.view(-1, 1)
    optimistic = (neg_score > pos).sum(dim=1) + 1
    pessimistic = (neg_score >= pos).sum(dim=1) + 1
    rank = 0.5 * (optimistic + pessimistic).float()
    return float((1.0 / rank).mean())


RANKING = ("recall", "ndcg")  # "recall@K", "ndcg@K": full ranking per query node (recommendation)


def is_ranking_metric(metric: str) -> bool:
    """``recall@K`` / ``ndcg@K``: every query node ranks all candidate nodes."""
    name, _, k = metric.partition("@")
    return name in RANKING and k.isdigit() and int(k) > 0


def ranking_metric(scores: Tensor, relevant: Tensor, metric: str) -> Tensor:
    r"""Per-query ``recall@K`` or ``ndcg@K`` of a score matrix (LightGCN/NGCF definitions).

    With :math:`T_q` the top-K candidates of query :math:`q` and :math:`R_q` its relevant set:
    recall@K :math:`= |T_q \cap R_q| / |R_q|`; ndcg@K :math:`= \sum_{r \le K} \mathbb 1[t_r \in R_q] / \log_2(r+1)`
    divided by the same sum for an ideal ranking of :math:`\min(|R_q|, K)` hits.

    Args:
        scores: ``[Q, I]`` scores; entries that must not be ranked (known interactions) set to ``-inf``.
        relevant: ``[Q, I]`` bool, the held-out positives.
        metric: ``"recall@K"`` or ``"ndcg@K"``.

    Returns:
        ``[Q']`` values of the queries with at least one relevant candidate (others are skipped).
    """
    if not is_ranking_metric(metric):
        raise ValueError(f"{metric!r} is not a ranking metric: use recall@K or ndcg@K")
    if scores.shape != relevant.shape or scores.dim() != 2:
        raise ValueError(f"scores {tuple(scores.shape)} and relevant {tuple(relevant.shape)} must be the same [Q, I]")
    name, k = metric.split("@")[0], min(int(metric.split("@")[1]), scores.size(1))
    keep = relevant.any(1)
    scores, relevant = scores[keep].float(), relevant[keep]
    hits = relevant.gather(1, scores.topk(k, dim=1).indices).float()  # [Q', K] in rank order
    num_rel = relevant.sum(1)
    if name == "recall":
        return hits.sum(1) / num_rel
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float32, device=scores.device))
    ideal = torch.cumsum(discount, 0)[num_rel.clamp(max=k) - 1]
    return (hits * discount).sum(1) / ideal
