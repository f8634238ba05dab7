"""PyGData on Platonov et al.'s heterophilous sets (minesweeper, tolokers): official splits, binary task, ROC-AUC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from graphlab.data import PyGData


def _npz(raw: Path) -> dict[str, np.ndarray]:
    with np.load(raw) as f:
        return {k: f[k] for k in ("node_labels", "train_masks", "val_masks", "test_masks")}


@pytest.mark.data
@pytest.mark.parametrize("name, nodes, features", [("minesweeper", 10000, 7), ("Tolokers", 11758, 10)])
def test_platonov_split_and_binary_task(copy_shared, name, nodes, features) -> None:
    folder = name.lower()
    root = copy_shared(folder)
    dm = PyGData(name, root=str(root), split=7, download=False)
    info = dm.info
    assert (info.level, info.task_type, info.metric, info.num_outputs) == ("node", "binary", "rocauc", 1)
    assert (info.num_features, info.num_splits) == (features, 10)
    data = dm.graph
    raw = _npz(root / folder / "raw" / f"{folder}.npz")  # independent read of the official split file
    for mask, key in (("train_mask", "train_masks"), ("val_mask", "val_masks"), ("test_mask", "test_masks")):
        assert data[mask].dtype == torch.bool and data[mask].dim() == 1
        assert data[mask].numpy().tolist() == raw[key][7].astype(bool).tolist(), mask
    assert data.y.shape == (nodes, 1) and data.y.dtype == torch.float
    assert data.y.view(-1).numpy().tolist() == raw["node_labels"].astype(float).tolist()
    assert not dm.normalize_features  # Platonov et al. feed raw features


def test_platonov_bad_split_and_name() -> None:
    with pytest.raises(ValueError, match="split=10 is out of range"):
        PyGData("minesweeper", split=10)
    with pytest.raises(ValueError, match="unknown PyG dataset"):
        PyGData("minesweepers")
