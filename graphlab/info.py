"""What a task needs to know about a dataset, and the names of the metrics graphlab reports.

A dependency-free module (standard library only) at the bottom of the import graph: ``graphlab.data``
builds :class:`DatasetInfo`, ``graphlab.eval`` reads it, ``graphlab.tasks`` passes it between them, and none of
them has to import another to agree on the metric names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

TaskType = Literal["multiclass", "binary", "regression", "link"]

NODE_GRAPH_METRICS = ("acc", "exact_acc", "rocauc", "ap", "rmse", "mae")
LOWER_IS_BETTER = ("rmse", "mae")
PAIR_METRICS = ("mrr", "hits")  # "mrr", "hits@K": fixed positive and negative pairs
RANKING_METRICS = ("recall", "ndcg")  # "recall@K", "ndcg@K": every query node ranks all candidates


def _at_k(metric: str, names: tuple[str, ...]) -> bool:
    name, _, k = metric.partition("@")
    return name in names and k.isdigit() and int(k) > 0


def is_ranking_metric(metric: str) -> bool:
    """``recall@K`` / ``ndcg@K``: every query node ranks all candidate nodes (recommendation)."""
    return _at_k(metric, RANKING_METRICS)


def is_hits_metric(metric: str) -> bool:
    """``hits@K`` with ``K >= 1``."""
    return _at_k(metric, ("hits",))


def is_link_metric(metric: str) -> bool:
    """A metric a link task can report: ``mrr``, ``hits@K``, ``recall@K`` or ``ndcg@K``."""
    return metric == "mrr" or is_hits_metric(metric) or is_ranking_metric(metric)


@dataclass(frozen=True)
class DatasetInfo:
    """What a task needs to know about a dataset.

    Attributes:
        name: dataset name as the user wrote it (``"cora"``, ``"ogbg-molbace"``).
        level: ``"node"``, ``"graph"`` or ``"link"``.
        task_type: ``"multiclass"`` (labels are class ids), ``"binary"`` (multi-label 0/1
            with NaN for missing labels, OGB mol style), ``"regression"`` or ``"link"``.
        num_features: node feature width (the model's ``in_channels``).
        num_outputs: classes for multiclass, tasks for binary/regression, 1 for link.
        metric: the headline metric, e.g. ``"acc"``, ``"rocauc"``, ``"rmse"``, ``"mae"``,
            ``"hits@20"``, ``"mrr"``, or ``"exact_acc"`` (binary multi-label: the fraction of rows whose every
            label is predicted right, as for the bits of an integer). Higher is better unless it is ``rmse``/``mae``.
        ogb_name: the OGB dataset name when the data is an OGB dataset (its metric then follows
            OGB's ``Evaluator``; the tests check that graphlab's link metrics agree with it).
        num_edge_features: edge feature width (0 when there are none).
        num_splits: number of fixed splits the dataset ships (the ``split`` argument
            of the DataModule ranges over ``0 .. num_splits-1``).
        categorical_features: node features are integer categories (OGB mol atoms),
            to be embedded rather than fed to a linear layer.
        negatives_per_positive: link data only. ``None``: the split's negatives form one pool shared by every
            positive (OGB's ``hits@K`` datasets: ddi, collab, ppa). ``Q``: each positive ``i`` has its own ``Q``
            negatives, columns ``i*Q .. (i+1)*Q - 1`` of ``neg_edge_index`` (OGB's MRR convention, as
            ogbl-citation2's ``[P, Q]`` negatives). ``mrr`` needs it: an MRR is only comparable across papers
            together with ``Q``, so logs and leaderboard tables show it.
    """

    name: str
    level: Literal["node", "graph", "link"]
    task_type: TaskType
    num_features: int
    num_outputs: int
    metric: str
    ogb_name: Optional[str] = None
    num_edge_features: int = 0
    num_splits: int = 1
    categorical_features: bool = False
    negatives_per_positive: Optional[int] = None

    def __post_init__(self) -> None:
        q = self.negatives_per_positive
        if q is not None and (isinstance(q, bool) or not isinstance(q, int) or q < 1):
            raise ValueError(f"{self.name}: negatives_per_positive must be a positive int or None, got {q!r}")
        if q is not None and self.level != "link":
            raise ValueError(f"{self.name}: negatives_per_positive is for link data, but level is {self.level!r}; "
                             "leave it None")
        if self.metric == "mrr" and q is None:
            raise ValueError(f"{self.name}: metric 'mrr' ranks each positive against its own negatives; set "
                             "negatives_per_positive to how many negatives each positive gets")

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER

    @property
    def metric_label(self) -> str:
        """The metric with its negative count where that matters (``"mrr (50 neg/pos)"``), for logs and tables."""
        if self.negatives_per_positive is not None and not is_ranking_metric(self.metric):
            return f"{self.metric} ({self.negatives_per_positive} neg/pos)"
        return self.metric
