"""Epoch-level evaluation: OGB's own ``Evaluator`` for OGB data, torchmetrics otherwise.

Every function takes whole-split tensors (predictions are accumulated over the epoch
by the task) and returns a Python float, so the numbers a leaderboard reports come from
one place and are comparable with the OGB leaderboards.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc, binary_average_precision
from torchmetrics.functional.classification import multiclass_accuracy
from torchmetrics.functional.regression import mean_absolute_error, mean_squared_error

from graphlab.info import NODE_GRAPH_METRICS, DatasetInfo, is_hits_metric, is_ranking_metric

__all__ = ["evaluate", "exact_match_accuracy", "link_metric", "positive_ranks", "pessimistic_ranks", "ranking_metric",
           "is_ranking_metric"]


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
    if metric == "exact_acc":
        if info.task_type != "binary":
            raise ValueError(f"metric 'exact_acc' needs a binary multi-label task, got task_type={info.task_type!r}")
        return exact_match_accuracy(y_true, y_pred)
    if metric in ("rocauc", "ap"):
        return _masked_per_task(y_true, y_pred, binary_auroc if metric == "rocauc" else binary_average_precision)
    if metric in ("rmse", "mae"):
        return _masked_regression(y_true, y_pred, metric)
    raise ValueError(f"unknown metric {metric!r} for {info.name}; supported: {NODE_GRAPH_METRICS}")


def exact_match_accuracy(y_true: Tensor, y_pred: Tensor) -> float:
    r"""Fraction of rows whose every label is right: :math:`\frac1N \sum_i \prod_t \mathbb 1[\,[s_{it} > 0] = y_{it}]`.

    Args:
        y_true: ``[N, T]`` 0/1 targets (e.g. the bits of an integer); NaN (missing) is not allowed.
        y_pred: ``[N, T]`` logits; a label is predicted 1 where its logit is > 0 (probability > 1/2).
    """
    y_true, y_pred = _as_2d(y_true), _as_2d(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"exact_acc needs targets and logits of one shape, got {tuple(y_true.shape)} and "
                         f"{tuple(y_pred.shape)}")
    if torch.isnan(y_true).any():
        raise ValueError("exact_acc needs every label: y_true holds NaN (missing) entries; use 'rocauc' or 'ap' "
                         "for partially labelled data")
    if y_true.size(0) == 0:
        raise ValueError("exact_acc of an empty split is undefined")
    correct = ((y_pred > 0) == (y_true > 0.5)).all(dim=1)
    return float(correct.float().mean())


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
    r"""``mrr`` or ``hits@K`` of a link split: graphlab's one definition, equal to OGB's ``Evaluator``.

    Two layouts of the negatives, named by ``info.negatives_per_positive``:

    * ``None`` (a pool shared by every positive, OGB's ddi/collab/ppa): ``neg_score`` ``[Q]``;
    * ``Q`` (each positive its own ``Q`` negatives, OGB's citation2 convention): ``neg_score`` ``[P, Q]``, or
      ``[P * Q]`` positive-major (row ``i`` = the negatives of positive ``i``).

    Each positive :math:`i` is ranked against its negatives :math:`N_i` by :func:`positive_ranks`,
    :math:`r_i = 1 + \tfrac12\big(|\{n \in N_i: s_n > s_i\}| + |\{n \in N_i: s_n \ge s_i\}|\big)`
    (ties count half, as OGB's ``_eval_mrr``). Then ``mrr`` :math:`= \frac1P \sum_i 1/r_i` and, per-positive,
    ``hits@K`` :math:`= \frac1P |\{i: r_i \le K\}|`. On a shared pool ``hits@K`` is OGB's ``_eval_hits``: a
    positive hits when it scores strictly above the K-th best negative (the pessimistic rank
    :math:`1 + |\{n: s_n \ge s_i\}| \le K`), and 1.0 when the pool has fewer than K negatives.
    """
    pos_score, neg_score = pos_score.detach().float().cpu().view(-1), neg_score.detach().float().cpu()
    per_positive = info.negatives_per_positive
    if per_positive is None:
        if info.metric == "mrr":
            raise ValueError(f"{info.name}: mrr needs negatives_per_positive (each positive's own negatives)")
        neg_score = neg_score.view(-1)
    else:
        neg_score = _rows_of_negatives(pos_score, neg_score, per_positive, info.name)
    if info.metric == "mrr":
        return float((1.0 / positive_ranks(pos_score, neg_score)).mean())
    if not is_hits_metric(info.metric):
        raise ValueError(f"unknown link metric {info.metric!r}; use 'hits@K' or 'mrr'")
    k = int(info.metric.split("@")[1])
    if per_positive is not None:
        return float((positive_ranks(pos_score, neg_score) <= k).float().mean())
    if neg_score.numel() < k:
        return 1.0
    return float((pessimistic_ranks(pos_score, neg_score) <= k).float().mean())


def _rows_of_negatives(pos_score: Tensor, neg_score: Tensor, per_positive: int, name: str) -> Tensor:
    """``neg_score`` as ``[P, Q]`` (row ``i`` = the negatives of positive ``i``), or a clear error."""
    expected = (pos_score.numel(), per_positive)
    if neg_score.dim() == 2 and tuple(neg_score.shape) == expected:
        return neg_score
    if neg_score.dim() == 1 and neg_score.numel() == expected[0] * expected[1]:
        return neg_score.view(expected)
    raise ValueError(
        f"{name}: {pos_score.numel()} positives with {per_positive} negatives each need {expected[0] * expected[1]} "
        f"negative scores (shape [P, Q] or positive-major [P*Q]), got shape {tuple(neg_score.shape)}; the "
        "DataModule's neg_edge_index and its negatives_per_positive disagree"
    )


def positive_ranks(pos_score: Tensor, neg_score: Tensor) -> Tensor:
    r"""``[P]`` rank of each positive among its own negatives, ties counted half (OGB's ``_eval_mrr``):

    :math:`r_i = 1 + 	frac12ig(|\{j: s^-_{ij} > s^+_i\}| + |\{j: s^-_{ij} \ge s^+_i\}|ig)`.

    Args:
        pos_score: ``[P]`` scores of the positives.
        neg_score: ``[P, Q]`` scores of each positive's negatives.
    """
    if neg_score.dim() != 2 or neg_score.size(0) != pos_score.numel():
        raise ValueError(f"neg_score must be [P, Q] with P = {pos_score.numel()} positives, "
                         f"got shape {tuple(neg_score.shape)}")
    pos = pos_score.view(-1, 1)
    above = (neg_score > pos).sum(dim=1)
    at_least = (neg_score >= pos).sum(dim=1)
    return 1.0 + 0.5 * (above + at_least).to(torch.float64)


def pessimistic_ranks(pos_score: Tensor, pool: Tensor) -> Tensor:
    """``[P]`` rank ``1 + |{n in pool: s_n >= s_i}|`` of each positive against one shared pool ``[Q]`` of negatives
    (ties ranked below the positive), by binary search: ``O((P + Q) log Q)``, no ``[P, Q]`` matrix."""
    ordered = torch.sort(pool.view(-1)).values
    at_least = ordered.numel() - torch.searchsorted(ordered, pos_score.view(-1).contiguous(), right=False)
    return 1 + at_least


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
