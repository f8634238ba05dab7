"""Planetoid citation graphs (Cora, CiteSeer, PubMed) as link-prediction benchmarks.

The split is NCN/NCNC's random 70/10/20 edge split (:func:`graphlab.data.splits.ncn_random_split`), drawn anew
for every run: by default from the run's seed (``seed_everything``, which the leaderboard runner sets per seed),
so seed ``s`` of a leaderboard trains and evaluates on its own split, as the official code's ``set_seed(run)``.
The metric is ``hits@100`` with OGB's definition (the official code evaluates Planetoid with ogbl-ppa's
``Evaluator``): a positive hits when it scores strictly above the 100-th best negative of the split's pool.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from graphlab.data.base import (
    DatasetInfo,
    FullBatchLinkMixin,
    GraphDataModule,
    link_train_loader,
)
from graphlab.data.pyg import PyGData
from graphlab.data.splits import EdgeSplit, ncn_random_split

PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}


class PlanetoidLinkData(FullBatchLinkMixin, GraphDataModule):
    """Cora / CiteSeer / PubMed link prediction with NCN's random 70/10/20 edge split.

    The message-passing graph holds the training positives in both directions; ``pos_edge_index`` lists each
    positive once (``u < v``). Validation and test have a fixed pool of negatives (non-edges of the whole graph),
    as many as the test positives. Node features are PyG's raw bag-of-words rows (not row-normalised, as the
    official code loads them).

    Args:
        name: ``cora``, ``citeseer`` or ``pubmed`` (case-insensitive).
        root: data root holding ``<Name>/raw/ind.<name>.*`` (default ``$GRAPHLAB_DATA`` or ``./data``).
        split_seed: seed of the edge split; ``None`` (default) uses the run's seed (``torch.initial_seed()``,
            which ``seed_everything`` sets), so each leaderboard seed gets its own split.
        batch_size: training positives per optimisation step (NCN: 1152 on Cora, 384 on CiteSeer); ``None``
            trains on all of them at once. A final partial batch is dropped, as in the official code.
        hits_k: the metric is ``hits@<hits_k>`` (the paper reports 100).
        val_ratio, test_ratio: the split's proportions (the paper: 0.1 and 0.2).
        download: let PyG download missing raw files (needs internet).
    """

    def __init__(
        self,
        name: Literal["cora", "citeseer", "pubmed", "Cora", "CiteSeer", "PubMed"] = "cora",
        root: Optional[str] = None,
        split_seed: Optional[int] = None,
        batch_size: Optional[int] = None,
        hits_k: int = 100,
        val_ratio: float = 0.1,
        test_ratio: float = 0.2,
        download: bool = True,
    ) -> None:
        super().__init__(root)
        key = name.strip().lower()
        if key not in PLANETOID:
            raise ValueError(f"unknown Planetoid dataset {name!r}; known names: {', '.join(PLANETOID)}")
        if hits_k < 1:
            raise ValueError(f"hits_k must be >= 1, got {hits_k}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None (full batch), got {batch_size}")
        if not (0 < val_ratio <= test_ratio < 0.5):
            raise ValueError(f"need 0 < val_ratio <= test_ratio < 0.5, got {val_ratio}, {test_ratio}")
        self.name, self.split_seed, self.batch_size, self.hits_k = PLANETOID[key], split_seed, batch_size, hits_k
        self.val_ratio, self.test_ratio, self.download = val_ratio, test_ratio, download
        self._source = PyGData(key, root=str(self.root), normalize_features=False, download=download)
        self._parts: Optional[dict[str, Data]] = None
        self.save_hyperparameters()

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(name=f"{self.name.lower()}-link", level="link", task_type="link",
                           num_features=self._source.info.num_features, num_outputs=1, metric=f"hits@{self.hits_k}")

    @property
    def seed(self) -> int:
        """The split's seed: ``split_seed``, else the run's seed."""
        return int(torch.initial_seed()) if self.split_seed is None else int(self.split_seed)

    @property
    def split(self) -> EdgeSplit:
        """The edge split of this run (drawn on first use)."""
        _ = self.parts
        return self._split

    @property
    def parts(self) -> dict[str, Data]:
        """``{"train", "val", "test"}`` Data objects sharing ``x`` and the training graph (built once)."""
        if self._parts is None:
            graph = self._source.graph
            self._split = ncn_random_split(graph.edge_index, graph.num_nodes, self.seed, self.val_ratio,
                                           self.test_ratio)
            s = self._split
            common = {"x": graph.x, "edge_index": to_undirected(s.train_pos, num_nodes=graph.num_nodes),
                      "num_nodes": graph.num_nodes}
            self._parts = {
                "train": Data(**common, pos_edge_index=s.train_pos),
                "val": Data(**common, pos_edge_index=s.val_pos, neg_edge_index=s.val_neg),
                "test": Data(**common, pos_edge_index=s.test_pos, neg_edge_index=s.test_neg),
            }
        return self._parts

    def train_dataloader(self) -> Any:
        return link_train_loader(self.parts["train"], self.batch_size)
