"""MovieLens-100K as a user-item link-prediction DataModule (the setting of Sheaf4Rec).

Reads ``<root>/MovieLens100K/raw/u.data`` (``user \\t item \\t rating \\t timestamp``, 1-based ids), keeps
the interactions rated at least ``min_rating`` (Sheaf4Rec keeps ratings >= 3), and splits them at random
80/10/10 (seeded) into training, validation and test interactions, as Sheaf4Rec's ``dataset.py`` does.

Graph: one node per user (``0 .. U-1``) then per item (``U .. U+I-1``); the message-passing graph holds the
training interactions in both directions. Features are the identity (one-hot node ids), so a model's first
linear layer is its embedding table. Validation/test batches carry sampled negative items for each positive,
items the user never interacted with (``num_eval_negatives`` per positive, for ``hits@K`` / ``mrr``), and the full-ranking fields
(``rank_src`` = all users, ``rank_dst`` = all items, ``rank_exclude`` = the interactions seen in training,
plus validation for the test split) for ``recall@K`` / ``ndcg@K``, where each user ranks every item it has not
interacted with in training, as recommendation papers (Sheaf4Rec, LightGCN) evaluate.
With ``batch_size`` the training loader yields shuffled mini-batches of training interactions (BPR's
batches; the message-passing graph stays whole), else one full batch per epoch.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torch_geometric.data import Data

from graphlab.data.base import FullBatchLinkMixin, GraphDataModule, missing_files_error
from graphlab.data.splits import pair_keys, sample_tail_negatives
from graphlab.info import DatasetInfo, is_hits_metric, is_ranking_metric

NUM_USERS, NUM_ITEMS = 943, 1682
RAW = ("u.data",)


def read_ratings(raw_dir: Path) -> Tensor:
    """``[R, 3]`` int64 ``(user, item, rating)`` with 0-based ids."""
    rows = [line.split("\t")[:3] for line in (raw_dir / "u.data").read_text().splitlines() if line.strip()]
    ratings = torch.tensor([[int(u), int(i), int(r)] for u, i, r in rows], dtype=torch.long)
    ratings[:, :2] -= 1
    return ratings


class MovieLens100K(FullBatchLinkMixin, GraphDataModule):
    """MovieLens-100K user-item interactions for link prediction / recommendation.

    Args:
        root: data root holding ``MovieLens100K/raw/u.data`` (default ``$GRAPHLAB_DATA`` or ``./data``).
        min_rating: keep interactions rated at least this (1..5).
        val_ratio, test_ratio: fractions of the kept interactions held out.
        split_seed: seed of the random split and of the evaluation negatives.
        metric: link metric of the task: ``"recall@K"`` / ``"ndcg@K"`` (full ranking of all items per user)
            or ``"hits@K"`` / ``"mrr"`` (held-out positives against their own ``num_eval_negatives`` sampled negatives).
        batch_size: training interactions per step (``None``: all of them, one step per epoch).
        num_eval_negatives: ``Q``, the negative items sampled for each held-out interaction (its own negatives,
            positive-major in ``neg_edge_index``; ``info.negatives_per_positive``). ``hits@K`` / ``mrr`` rank
            each interaction against its ``Q`` negatives, so they are comparable only at equal ``Q``.
    """

    def __init__(self, root: Optional[str] = None, min_rating: int = 3, val_ratio: float = 0.1,
                 test_ratio: float = 0.1, split_seed: int = 0, metric: str = "ndcg@10",
                 batch_size: Optional[int] = None, num_eval_negatives: int = 1) -> None:
        super().__init__(root)
        if not (is_ranking_metric(metric) or metric == "mrr" or is_hits_metric(metric)):
            raise ValueError(f"metric {metric!r} is not supported: use recall@K, ndcg@K, hits@K or mrr")
        if isinstance(num_eval_negatives, bool) or not isinstance(num_eval_negatives, int) or num_eval_negatives < 1:
            raise ValueError(f"num_eval_negatives must be an int >= 1 (sampled negative items per held-out "
                             f"interaction), got {num_eval_negatives!r}")
        self.num_eval_negatives = num_eval_negatives
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (or null for full batch), got {batch_size}")
        self.batch_size = batch_size
        if not 1 <= min_rating <= 5:
            raise ValueError(f"min_rating must lie in 1..5, got {min_rating}")
        if val_ratio <= 0 or test_ratio <= 0 or val_ratio + test_ratio >= 1:
            raise ValueError(f"need val_ratio, test_ratio > 0 with sum < 1, got {val_ratio}, {test_ratio}")
        self.min_rating, self.val_ratio, self.test_ratio = min_rating, val_ratio, test_ratio
        self.split_seed, self.metric = split_seed, metric
        self.raw_dir = self.root / "MovieLens100K" / "raw"
        self._parts: Optional[dict[str, Data]] = None

    @property
    def num_nodes(self) -> int:
        return NUM_USERS + NUM_ITEMS

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name="movielens100k", level="link", task_type="link", num_features=self.num_nodes,
                           num_outputs=1, metric=self.metric, negatives_per_positive=self.num_eval_negatives)

    def _load(self) -> Tensor:
        missing = [f for f in RAW if not (self.raw_dir / f).is_file()]
        if missing:
            raise missing_files_error("MovieLens100K", self.raw_dir, missing,
                                      "Copy the GroupLens ml-100k files there (u.data is the one needed).", self.root,
                                      "https://files.grouplens.org/datasets/movielens/ml-100k.zip")
        ratings = read_ratings(self.raw_dir)
        return ratings[ratings[:, 2] >= self.min_rating, :2]

    def _build_parts(self) -> dict[str, Data]:
        pairs = self._load()
        gen = torch.Generator().manual_seed(self.split_seed)
        perm = torch.randperm(pairs.size(0), generator=gen)
        n_test, n_val = int(round(self.test_ratio * pairs.size(0))), int(round(self.val_ratio * pairs.size(0)))
        test, val, train = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
        edges = torch.stack([pairs[:, 0], pairs[:, 1] + NUM_USERS])  # [2, R] user -> item node ids
        train_edges = edges[:, train]
        message = torch.cat([train_edges, train_edges.flip(0)], dim=1)
        x = torch.eye(self.num_nodes)
        known = pair_keys(edges, self.num_nodes)
        items = torch.arange(NUM_USERS, self.num_nodes)
        parts = {"train": Data(x=x, edge_index=message, num_nodes=self.num_nodes, pos_edge_index=train_edges,
                               dst_candidates=items)}
        seen = train_edges
        for name, index in (("val", val), ("test", test)):
            pos = edges[:, index]
            heads = pos[0].repeat_interleave(self.num_eval_negatives)  # positive-major: Q negatives per positive
            neg_items = sample_tail_negatives(heads, items, known, self.num_nodes, gen)
            parts[name] = Data(x=x, edge_index=message, num_nodes=self.num_nodes, pos_edge_index=pos,
                               neg_edge_index=torch.stack([heads, neg_items]), rank_src=torch.arange(NUM_USERS),
                               rank_dst=items, rank_exclude=seen)
            seen = torch.cat([seen, pos], dim=1)  # the test ranking also skips validation interactions
        return parts

    def train_dataloader(self) -> DataLoader:
        if self.batch_size is None:
            return super().train_dataloader()
        train = self.parts["train"]
        return DataLoader(range(train.pos_edge_index.size(1)), batch_size=self.batch_size, shuffle=True,
                          collate_fn=functools.partial(_with_positives, train))

    @property
    def parts(self) -> dict[str, Data]:
        """``{"train", "val", "test"}`` Data objects sharing ``x`` and the training message graph."""
        if self._parts is None:
            self._parts = self._build_parts()
        return self._parts


def _with_positives(train: Data, index: list[int]) -> Data:
    """A shallow copy of the training part whose ``pos_edge_index`` holds the interactions ``index``."""
    out = copy.copy(train)
    out.pos_edge_index = train.pos_edge_index[:, torch.as_tensor(index)]
    return out
