"""Compatibility layer between graphlab and ``ogb`` 1.3.6 on torch >= 2.6, without editing ``ogb``.

Nothing here patches ``ogb`` globally: the fixes are subclasses of ``ogb``'s dataset classes and plain functions,
applied explicitly where graphlab builds an OGB dataset (:func:`load_ogb_dataset`, :func:`download_ogb`).

* ``ogb`` reads its processed file with a bare ``torch.load``, which fails under torch's ``weights_only=True``
  default. The ``Safe*Dataset`` subclasses load that file themselves: ``weights_only=True`` with PyG's storage
  classes allow-listed, falling back to ``weights_only=False`` for that one file only (a processed file ``ogb``
  itself wrote). Split files (``split/<name>/*.pt``) load with ``weights_only=True``; the numpy integer and float
  arrays some of them hold are allow-listed, nothing else.
* ``ogb`` calls ``input()`` when the dataset folder exists without ``RELEASE_v<k>.txt`` and before downloads over
  1 GB. The subclasses' constructor sets ``ogb``'s attributes itself (no prompt), their ``download`` refuses, and
  :func:`download_ogb` fetches the archive without ``decide_download``.

One global side effect remains and is ``ogb``'s own: ``import ogb`` starts a thread that asks PyPI for a newer
version (through the ``outdated`` package); offline it only emits an ``OutdatedCheckFailedWarning``.
"""

from __future__ import annotations

import os
import pickle
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pandas as pd
import torch
from ogb.graphproppred import PygGraphPropPredDataset
from ogb.linkproppred import PygLinkPropPredDataset
from ogb.nodeproppred import PygNodePropPredDataset
from ogb.utils.torch_util import replace_numpy_with_torchtensor
from ogb.utils.url import download_url, extract_zip
from torch import Tensor
from torch_geometric.data import InMemoryDataset
from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
from torch_geometric.data.storage import GlobalStorage

if TYPE_CHECKING:  # graphlab.data.ogb imports this module
    from graphlab.data.ogb import OGBMeta

__all__ = ["DATASET_CLASSES", "download_ogb", "load_ogb_dataset", "load_processed", "load_split_file"]


_PYG_STORAGE_CLASSES = [DataEdgeAttr, DataTensorAttr, GlobalStorage]


def load_processed(path: str) -> Any:
    """Load an ``ogb``-processed ``(data, slices)`` file.

    First with ``weights_only=True`` and PyG's storage classes allow-listed; a file in an
    older layout that needs more falls back to ``weights_only=False`` for this path only
    (it is the dataset's own processed file, written by ``ogb``'s ``process``).
    """
    try:
        with torch.serialization.safe_globals(_PYG_STORAGE_CLASSES):
            return torch.load(path, weights_only=True)
    except pickle.UnpicklingError:
        return torch.load(path, weights_only=False)


def _numpy_array_globals() -> list[Any]:
    """The pickle globals of numpy numeric arrays, under both numpy 1 and 2 module names."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    numeric = ("Int8DType", "Int16DType", "Int32DType", "Int64DType", "UInt8DType", "BoolDType",
               "Float16DType", "Float32DType", "Float64DType")
    dtypes = [getattr(np.dtypes, n) for n in numeric if hasattr(np.dtypes, n)]
    names = ("numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct")
    return [(_reconstruct, n) for n in names] + [np.ndarray, np.dtype, *dtypes]


def load_split_file(path: str) -> Any:
    """Load an OGB split ``.pt`` file with ``weights_only=True``; numpy arrays become tensors."""
    with torch.serialization.safe_globals(_numpy_array_globals()):
        obj = torch.load(path, weights_only=True)
    return replace_numpy_with_torchtensor(obj)


def _init_ogb_attributes(dataset: InMemoryDataset, meta: OGBMeta, folder: Path) -> None:
    """Set the attributes ``ogb``'s constructors set, without their prompt or ``torch.load``."""
    dataset.name = meta.name
    dataset.dir_name = folder.name
    dataset.original_root = str(folder.parent)
    dataset.root = str(folder)
    dataset.meta_info = pd.Series(meta.record)
    dataset.download_name = meta.record["download_name"]
    dataset.num_tasks = meta.num_tasks
    dataset.task_type = meta.task_type
    dataset.eval_metric = meta.metric
    dataset.__num_classes__ = meta.num_classes
    dataset.is_hetero = meta.flag("is hetero")
    dataset.binary = meta.flag("binary")


class _SafeOGBDataset:
    """Mixin in front of an ``ogb`` Pyg*Dataset: safe constructor, download and splits."""

    def __init__(self, meta: OGBMeta, folder: Path) -> None:
        _init_ogb_attributes(self, meta, folder)
        InMemoryDataset.__init__(self, self.root)
        self._data, self.slices = load_processed(self.processed_paths[0])

    def download(self) -> None:
        """Replaces ``ogb``'s ``download`` (prompts, ``exit(-1)``): the DataModule fetches first."""
        raise FileNotFoundError(
            f"{self.name}: raw files missing in {self.raw_dir}; build the dataset through graphlab's "
            "OGB DataModules, which download it (download=True) or name the missing files"
        )

    def _split_dict(self, split_type: Optional[str]) -> tuple[Path, Optional[Any]]:
        """The split folder and, when OGB's ``split_dict.pt`` shortcut exists, its content."""
        folder = Path(self.root) / "split" / (split_type or self.meta_info["split"])
        shortcut = folder / "split_dict.pt"
        return folder, load_split_file(str(shortcut)) if shortcut.is_file() else None

    def get_idx_split(self, split_type: Optional[str] = None) -> dict[str, Tensor]:
        """OGB's ``{"train", "valid", "test"}`` indices (CSV files, or ``split_dict.pt``)."""
        _, shortcut = self._split_dict(split_type)
        return shortcut if shortcut is not None else super().get_idx_split(split_type)


class SafeNodePropPredDataset(_SafeOGBDataset, PygNodePropPredDataset):
    """``ogb``'s node dataset, loadable on torch >= 2.6 and never prompting."""


class SafeGraphPropPredDataset(_SafeOGBDataset, PygGraphPropPredDataset):
    """``ogb``'s graph dataset, loadable on torch >= 2.6 and never prompting."""


class SafeLinkPropPredDataset(_SafeOGBDataset, PygLinkPropPredDataset):
    """``ogb``'s link dataset, loadable on torch >= 2.6 and never prompting."""

    def get_edge_split(self, split_type: Optional[str] = None) -> dict[str, Any]:
        """``{"train", "valid", "test"}`` dicts of edge tensors, loaded ``weights_only``."""
        folder, shortcut = self._split_dict(split_type)
        if shortcut is not None:
            return shortcut
        return {part: load_split_file(str(folder / f"{part}.pt")) for part in ("train", "valid", "test")}


DATASET_CLASSES: dict[str, type] = {
    "node": SafeNodePropPredDataset,
    "link": SafeLinkPropPredDataset,
    "graph": SafeGraphPropPredDataset,
}


def download_ogb(meta: OGBMeta, root: Path) -> None:
    """Fetch and unpack ``meta``'s archive into ``root / meta.dir_name``.

    Unlike ``ogb``'s ``download`` this neither prompts nor deletes an existing incomplete
    folder: the archive's files are merged into it (same-named files are replaced).
    """
    root.mkdir(parents=True, exist_ok=True)
    archive = download_url(meta.record["url"], str(root))
    extract_zip(archive, str(root))
    os.unlink(archive)
    unpacked = root / meta.record["download_name"]
    shutil.copytree(unpacked, root / meta.dir_name, dirs_exist_ok=True)
    shutil.rmtree(unpacked)


def load_ogb_dataset(level: str, meta: OGBMeta, folder: Path) -> InMemoryDataset:
    """Build (process on first use) the ``Safe*Dataset`` of ``level`` for the files in ``folder``."""
    with warnings.catch_warnings():
        # ogb's process() wraps pandas' read-only arrays with torch.from_numpy and only
        # reads them; torch's "non-writable" warning is noise the user cannot act on.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return DATASET_CLASSES[level](meta, folder)
