r"""Sampled mini-batch node classification: :class:`SampledNodeData` turns a full-graph node DataModule (or a PyG
``(FeatureStore, GraphStore)`` pair) into neighbour-sampled mini-batches.

Each batch is the subgraph that :class:`~graphlab.data.sampler.GraphlabNeighborSampler` (or PyG's sampler, when
pyg-lib is installed) draws around ``batch_size`` seed nodes of one split, laid out as PyG's ``NeighborLoader``
yields it: the seeds are its first ``batch_size`` nodes, ``n_id`` maps local to global node ids, ``e_id`` local to
global edge ids. The batch carries one mask, ``<stage>_mask``, true exactly on the seeds, so
:class:`graphlab.tasks.NodeClassification` trains and evaluates on it unchanged: the loss and the metric see each
seed once per epoch, with the neighbourhood the sampler gave it (GraphSAGE's minibatch algorithm, Hamilton et al.,
*Inductive Representation Learning on Large Graphs*, NeurIPS 2017, Algorithm 2).

Evaluation samples with ``eval_num_neighbors`` (default: every neighbour, ``-1`` per hop). With as many hops as the
model has layers, a message-passing model whose layer :math:`l` reads only in-neighbours,
:math:`h_v^{(l+1)} = f\big(h_v^{(l)}, \{h_u^{(l)} : u \in \mathcal N(v)\}\big)` (GraphSAGE, GIN), then gives each seed
exactly its full-graph output. GCN's symmetric normalisation :math:`1/\sqrt{\hat d_u \hat d_v}` also reads the degree
of the outermost sources, so it needs one hop more for exactness.
"""

from __future__ import annotations

import copy
from typing import Any, Optional, Sequence, Union

import torch
from torch import Tensor
from torch_geometric.data import Data, FeatureStore, GraphStore

from graphlab.data.base import DatasetInfo, GraphDataModule
from graphlab.data.store.datamodule import DiskStoreData
from graphlab.distributed import EpochShardSampler
from graphlab.data.sampler import (
    Backend,
    GraphlabNeighborSampler,
    check_num_neighbors,
    neighbor_loader,
    resolve_backend,
)

STAGES = ("train", "val", "test")
MASKS = tuple(f"{stage}_mask" for stage in STAGES)


class SeedMask:
    """Loader transform: ``<stage>_mask`` true on the batch's first ``batch_size`` nodes (the seeds), false after.

    A class (not a closure) so that it pickles into DataLoader worker processes.
    """

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def __call__(self, batch: Data) -> Data:
        mask = torch.zeros(batch.num_nodes, dtype=torch.bool)
        mask[:batch.batch_size] = True
        batch[f"{self.stage}_mask"] = mask
        return batch

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.stage!r})"


class SampledNodeData(GraphDataModule):
    """Neighbour-sampled mini-batches over a node-level dataset.

    Args:
        data: a graphlab node DataModule with a full ``graph`` (:class:`~graphlab.data.PyGData` on a node dataset,
            :class:`~graphlab.data.OGBNodeData`, :class:`~graphlab.data.CSBMData`), a
            :class:`~graphlab.data.DiskStoreData` (features and topology stay in its memory-mapped store; batches
            gather their rows from it), or a PyG ``(FeatureStore, GraphStore)`` pair (then ``info`` and ``seeds``
            are required; the feature store must hold ``x`` and ``y``).
        num_neighbors: training fan-out per hop, e.g. ``[15, 10]`` (``-1``: every neighbour).
        batch_size: seed nodes per batch.
        eval_num_neighbors: validation/test/predict fan-outs; ``None`` takes every neighbour for as many hops as
            ``num_neighbors`` has (exact layer-wise evaluation for a model with that many layers).
        eval_batch_size: seeds per evaluation batch (default ``batch_size``).
        num_workers: DataLoader worker processes (sampling and feature gathering run in them).
        replace: sample neighbours with replacement.
        backend: ``"auto"`` (PyG's sampler with pyg-lib / torch-sparse, else graphlab's), ``"graphlab"``, ``"pyg"``.
        info: the dataset description, for a ``(FeatureStore, GraphStore)`` pair (a DataModule brings its own).
        seeds: ``{"train": ids, "val": ids, "test": ids}`` (or boolean masks) for a store pair; a DataModule's
            graph gives them through its ``train_mask`` / ``val_mask`` / ``test_mask``.

    Raises:
        ValueError: a graph- or link-level DataModule, fan-outs that are empty or below -1, eval fan-outs of
            another depth, a batch size below 1, a store pair without ``info`` or ``seeds``.
    """

    def __init__(
        self,
        data: Union[GraphDataModule, tuple[FeatureStore, GraphStore]],
        num_neighbors: Sequence[int] = (15, 10),
        batch_size: int = 512,
        eval_num_neighbors: Optional[Sequence[int]] = None,
        eval_batch_size: Optional[int] = None,
        num_workers: int = 0,
        replace: bool = False,
        backend: Backend = "auto",
        info: Optional[DatasetInfo] = None,
        seeds: Optional[dict[str, Tensor]] = None,
    ) -> None:
        super().__init__(getattr(data, "root", None))
        self.data = data
        self.num_neighbors = check_num_neighbors(num_neighbors)
        self.eval_num_neighbors = (check_num_neighbors(eval_num_neighbors) if eval_num_neighbors is not None
                                   else [-1] * len(self.num_neighbors))
        self.batch_size = batch_size
        self.eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
        self.num_workers, self.replace, self.backend = num_workers, replace, backend
        self._given_info, self._given_seeds = info, seeds
        self._validate()
        self._graph: Any = None
        self._seeds: Optional[dict[str, Tensor]] = None
        self._sampler: Optional[GraphlabNeighborSampler] = None
        self.save_hyperparameters(ignore=["data", "info", "seeds"])

    @property
    def is_store(self) -> bool:
        return isinstance(self.data, (tuple, list))

    def _validate(self) -> None:
        if self.batch_size < 1 or self.eval_batch_size < 1 or self.num_workers < 0:
            raise ValueError(f"need batch_size >= 1, eval_batch_size >= 1 and num_workers >= 0, got "
                             f"{self.batch_size}, {self.eval_batch_size}, {self.num_workers}")
        if len(self.eval_num_neighbors) != len(self.num_neighbors):
            raise ValueError(f"eval_num_neighbors has {len(self.eval_num_neighbors)} hops but num_neighbors has "
                             f"{len(self.num_neighbors)}: the model sees as many hops in training as in evaluation")
        resolve_backend(self.backend)
        if self.is_store:
            if not (len(self.data) == 2 and isinstance(self.data[0], FeatureStore)
                    and isinstance(self.data[1], GraphStore)):
                raise TypeError("data must be a graphlab node DataModule or a (FeatureStore, GraphStore) pair")
            if self._given_info is None or self._given_seeds is None:
                raise ValueError("a (FeatureStore, GraphStore) pair needs info= (a DatasetInfo) and seeds= "
                                 "({'train': ids, 'val': ids, 'test': ids})")
        elif not isinstance(self.data, GraphDataModule):
            raise TypeError(f"data must be a graphlab node DataModule or a (FeatureStore, GraphStore) pair, got "
                            f"{type(self.data).__name__}")
        elif self._given_info is not None or self._given_seeds is not None:
            raise ValueError("info= and seeds= are for a (FeatureStore, GraphStore) pair; a DataModule brings its own")

    # ------------------------------------------------------------------ dataset
    @property
    def info(self) -> DatasetInfo:
        info = self._given_info if self.is_store else self.data.info
        if info.level != "node":
            raise ValueError(f"SampledNodeData samples node-level data; {info.name!r} is {info.level}-level")
        return info

    def prepare_data(self) -> None:
        if not self.is_store:
            self.data.prepare_data()

    def setup(self, stage: Optional[str] = None) -> None:
        _ = self.graph

    @property
    def graph(self) -> Any:
        """What the loaders sample from: the full graph without its split masks (so batches do not gather them),
        or the store pair."""
        if self._graph is None:
            if self.is_store:
                self._graph, self._seeds = tuple(self.data), _seed_ids(self._given_seeds)
            elif isinstance(self.data, DiskStoreData):
                self._graph, self._seeds = self.data.stores, self.data.seeds
            else:
                full = getattr(self.data, "graph", None)
                if not isinstance(full, Data):
                    raise ValueError(f"{type(self.data).__name__} has no full `graph` Data to sample from: wrap a "
                                     "node-level DataModule (PyGData on a node dataset, OGBNodeData, CSBMData)")
                self._seeds = _seed_ids({stage: full[f"{stage}_mask"] for stage in STAGES if f"{stage}_mask" in full})
                graph = copy.copy(full)
                for mask in MASKS:
                    if mask in graph:
                        del graph[mask]
                self._graph = graph
        return self._graph

    @property
    def seeds(self) -> dict[str, Tensor]:
        """Global node ids of each split's seeds."""
        _ = self.graph
        return self._seeds or {}

    # ------------------------------------------------------------------ loaders
    def _graphlab_sampler(self, fanouts: list[int]) -> Optional[GraphlabNeighborSampler]:
        """graphlab's sampler for ``fanouts`` (built once, then copied per fan-out list), or ``None`` for PyG's."""
        if resolve_backend(self.backend) != "graphlab":
            return None
        if self._sampler is None:
            self._sampler = GraphlabNeighborSampler(self.graph, self.num_neighbors, replace=self.replace)
        return self._sampler.with_num_neighbors(fanouts)

    def loader(self, stage: str, shuffle: bool = False) -> Any:
        """A ``NeighborLoader`` over the seeds of ``stage`` whose batches carry ``<stage>_mask``."""
        if stage not in self.seeds:
            raise ValueError(f"the data has no {stage} split (no `{stage}_mask`), so there is no {stage} loader")
        train = stage == "train" and shuffle
        fanouts = self.num_neighbors if train else self.eval_num_neighbors
        seeds = self.seeds[stage]
        # Training order: one permutation per epoch seeded by the run's seed, the same in every process, each DDP
        # rank taking its own shard of it (EpochShardSampler), so 2 ranks at batch b follow 1 process at batch 2b.
        sampler = EpochShardSampler(seeds, shuffle=True, seed=torch.initial_seed() % 2**31) if shuffle else None
        return neighbor_loader(
            self.graph, fanouts, backend=self.backend, replace=self.replace,
            neighbor_sampler=self._graphlab_sampler(fanouts), input_nodes=seeds,
            batch_size=self.batch_size if train else self.eval_batch_size, sampler=sampler,
            num_workers=self.num_workers, persistent_workers=self.num_workers > 0, transform=SeedMask(stage),
        )

    def train_dataloader(self) -> Any:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> Any:
        return self.loader("val")

    def test_dataloader(self) -> Any:
        return self.loader("test")

    def predict_dataloader(self) -> Any:
        return self.loader(self.predict_split)


def _seed_ids(seeds: dict[str, Tensor]) -> dict[str, Tensor]:
    """Each split's seeds as int64 ids (boolean masks become the ids of their true entries)."""
    out = {}
    for stage, value in seeds.items():
        if stage not in STAGES:
            raise ValueError(f"seeds has an unknown split {stage!r}; use 'train', 'val' and 'test'")
        value = torch.as_tensor(value)
        out[stage] = value.nonzero().view(-1) if value.dtype == torch.bool else value.to(torch.long).view(-1)
    return out
