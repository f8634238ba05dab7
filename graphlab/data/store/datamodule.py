"""A node-level dataset held in a graphlab disk store, as a DataModule: :class:`DiskStoreData`.

It never loads the features: it opens the store's :class:`DiskFeatureStore` / :class:`DiskGraphStore` pair, reads
the dataset description and the split masks (one boolean per node), and hands the pair to
:class:`graphlab.data.SampledNodeData`, whose loaders gather each mini-batch's rows from the memory-mapped files::

    data:
      class_path: graphlab.data.SampledNodeData
      init_args:
        data:
          class_path: graphlab.data.DiskStoreData
          init_args: {path: stores/film, source: film}
        num_neighbors: [15, 10]

A relative ``path`` lies under the data root (``root`` / ``$GRAPHLAB_DATA``). A missing store is written on first use
from ``source`` (a graphlab node dataset name, as ``graphlab store convert --source`` takes it), the way other
DataModules download; without ``source`` the error gives the ``graphlab store convert`` command to run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import torch
from torch import Tensor
from torch_geometric.data import TensorAttr

from graphlab.data.base import GraphDataModule
from graphlab.data.store.convert import convert
from graphlab.data.store.feature_store import DiskFeatureStore
from graphlab.data.store.graph_store import DiskGraphStore
from graphlab.data.store.manifest import MANIFEST
from graphlab.info import DatasetInfo

STAGES = ("train", "val", "test")
BATCH_ATTRS = ("x", "y")
"""The tensors a sampled batch gathers from the store (the split masks are read once, as seed ids)."""


class BatchFeatureStore(DiskFeatureStore):
    """A :class:`DiskFeatureStore` that lists only ``x`` and ``y`` to PyG's loaders, which gather every tensor a
    store lists for each batch: the split masks stay on disk (the seeds come from them once)."""

    def get_all_tensor_attrs(self) -> list[TensorAttr]:
        return [attr for attr in super().get_all_tensor_attrs()
                if attr.group_name is None and attr.attr_name in BATCH_ATTRS]


class DiskStoreData(GraphDataModule):
    """A node-level graph in a disk store (``graphlab store convert``), for sampled training.

    Use it as the ``data`` of :class:`graphlab.data.SampledNodeData`; it has no loaders of its own (a full batch
    would read the whole feature file into memory, which is what the store is for avoiding).

    Args:
        path: the store folder; relative paths are under the data root.
        source: a graphlab node dataset (``film``, ``tolokers``, ``ogbn-arxiv``, ...) to convert into ``path`` when
            the store does not exist yet.
        split: the column of 2-D split masks ``[N, S]`` (stores written from raw sources may hold several splits).
        verify: checksums checked on open (``"auto"``: files under 256 MiB; ``"full"``; ``"none"``).
        root: the data root (default ``$GRAPHLAB_DATA``, else ``./data``).

    The dataset description comes from the store's manifest when it was converted from a graphlab dataset;
    otherwise it is derived: integer labels ``y`` ``[N]`` give a multiclass task scored by accuracy, 0/1 float labels
    ``[N, T]`` a binary task scored by ROC-AUC.
    """

    def __init__(self, path: str, source: Optional[str] = None, split: int = 0,
                 verify: Literal["auto", "full", "none"] = "auto", root: Optional[str] = None) -> None:
        super().__init__(root)
        self.path = Path(path).expanduser()
        if not self.path.is_absolute():
            self.path = self.root / self.path
        self.source, self.split, self.verify = source, split, verify
        if split < 0:
            raise ValueError(f"split must be >= 0, got {split}")
        self._stores: Optional[tuple[BatchFeatureStore, DiskGraphStore]] = None
        self._info: Optional[DatasetInfo] = None
        self._seeds: Optional[dict[str, Tensor]] = None

    def prepare_data(self) -> None:
        if (self.path / MANIFEST).exists():
            return
        if self.source is None:
            raise FileNotFoundError(
                f"no graphlab store at {self.path}: write one with `graphlab store convert --source <dataset | "
                f"npy:FILE | csv:FILE> --out {self.path}`, or give DiskStoreData a `source` dataset to convert")
        convert(self.source, self.path, root=str(self.root), progress=False)

    def setup(self, stage: Optional[str] = None) -> None:
        _ = self.stores

    @property
    def stores(self) -> tuple[BatchFeatureStore, DiskGraphStore]:
        """The ``(feature store, graph store)`` pair, opened read-only (converted from ``source`` first if missing)."""
        if self._stores is None:
            self.prepare_data()
            self._stores = (BatchFeatureStore(self.path, "r", self.verify), DiskGraphStore(self.path, "r", "none"))
        return self._stores

    @property
    def info(self) -> DatasetInfo:
        if self._info is None:
            features = self.stores[0]
            meta = features.folder.manifest.get("meta", {}).get("info")
            self._info = DatasetInfo(**meta) if meta else self._derived_info(features)
            if self._info.level != "node":
                raise ValueError(f"{self.path} holds a {self._info.level}-level dataset; DiskStoreData is node-level")
        return self._info

    def _derived_info(self, features: DiskFeatureStore) -> DatasetInfo:
        names = {attr.attr_name for attr in DiskFeatureStore.get_all_tensor_attrs(features)}
        missing = [name for name in BATCH_ATTRS if name not in names]
        if missing:
            raise ValueError(f"{self.path} holds no {' / '.join(missing)}: node classification needs features `x` "
                             "and labels `y` (graphlab store convert --labels FILE adds them to a raw source)")
        x_shape = features.get_tensor_size(None, "x")
        y = features.get_tensor(None, "y", index=None)
        num_features = int(x_shape[1]) if len(x_shape) > 1 else 1
        if y.is_floating_point():
            return DatasetInfo(name=self.path.name, level="node", task_type="binary", num_features=num_features,
                               num_outputs=int(y.shape[1]) if y.dim() > 1 else 1, metric="rocauc")
        return DatasetInfo(name=self.path.name, level="node", task_type="multiclass", num_features=num_features,
                           num_outputs=int(y.max()) + 1 if y.numel() else 0, metric="acc")

    @property
    def seeds(self) -> dict[str, Tensor]:
        """Node ids of each split (from the store's ``train_mask`` / ``val_mask`` / ``test_mask``)."""
        if self._seeds is None:
            features = self.stores[0]
            names = {attr.attr_name for attr in DiskFeatureStore.get_all_tensor_attrs(features)}
            self._seeds = {stage: self._split_ids(features, f"{stage}_mask") for stage in STAGES
                           if f"{stage}_mask" in names}
            if "train" not in self._seeds:
                raise ValueError(f"{self.path} holds no train_mask: a store for training needs the split masks")
        return self._seeds

    def _split_ids(self, features: DiskFeatureStore, name: str) -> Tensor:
        mask = features.get_tensor(None, name, index=None)
        if mask.dim() == 2:
            if self.split >= mask.shape[1]:
                raise ValueError(f"split {self.split} is out of range: {self.path} holds {mask.shape[1]} splits "
                                 f"(0 .. {mask.shape[1] - 1})")
            mask = mask[:, self.split]
        elif self.split != 0:
            raise ValueError(f"split {self.split} is out of range: {self.path} holds one split (use split 0)")
        return torch.as_tensor(mask).to(torch.bool).nonzero().view(-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, source={self.source!r}, split={self.split})"

