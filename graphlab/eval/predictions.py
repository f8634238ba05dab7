"""``graphlab predict`` writes its predictions to a file: ``.pt`` (a dict of tensors), ``.csv`` or ``.parquet``.

Each task's ``predict_step`` returns a dict of equal-length tensors: ids (``node_id``; ``graph_id`` added here as
the position within the split in loader order; ``src``/``dst`` for link pairs), ``prob`` (class probabilities
``[N, C]``, or ``[N]`` pair / binary-task probabilities) or ``score`` (regression outputs), and the true ``label``
where the split has one. :class:`PredictionFileWriter` (a Lightning ``BasePredictionWriter``) concatenates them
once the split is done and writes the file atomically (temp file in the same folder, fsync, rename).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from graphlab._io import atomic_write_bytes

FORMATS = (".pt", ".csv", ".parquet")


def merge_batches(outputs: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Concatenate the per-batch dicts; graph-level batches (no id key) get ``graph_id`` = running position."""
    if not outputs:
        return {}
    merged = {key: torch.cat([o[key].detach().cpu() for o in outputs]) for key in outputs[0]}
    if not {"node_id", "src", "graph_id"} & merged.keys():
        first = next(iter(merged.values()))
        merged = {"graph_id": torch.arange(first.size(0)), **merged}
    return merged


def to_frame(table: dict[str, Tensor]) -> Any:
    """A pandas DataFrame: one column per 1-D tensor, ``prob_0 .. prob_{C-1}`` for ``[N, C]`` ones."""
    import pandas as pd

    columns: dict[str, Any] = {}
    for key, value in table.items():
        if value.dim() == 2:
            columns.update({f"{key}_{j}": value[:, j].numpy() for j in range(value.size(1))})
        else:
            columns[key] = value.numpy()
    return pd.DataFrame(columns)


def write_predictions(path: Path, table: dict[str, Tensor], split: str) -> None:
    """Write ``table`` (plus ``split``) to ``path``; the format follows the suffix (:data:`FORMATS`)."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"--predict_out {path}: unknown suffix {suffix!r}; use one of {', '.join(FORMATS)}")
    if suffix == ".pt":
        atomic_write_bytes(path, lambda f: torch.save({"split": split, **table}, f))
        return
    frame = to_frame(table)
    frame.insert(0, "split", split)
    if suffix == ".csv":
        atomic_write_bytes(path, lambda f: f.write(frame.to_csv(index=False).encode()))
        return
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError(f"--predict_out {path}: writing Parquet needs pyarrow (pip install pyarrow), or use a "
                          ".csv or .pt file") from None
    atomic_write_bytes(path, lambda f: frame.to_parquet(f, index=False))


class PredictionFileWriter(BasePredictionWriter):
    """Write the predictions of ``split`` to ``path`` when the predict loop ends (Lightning shows its progress
    bar meanwhile)."""

    def __init__(self, path: str | Path, split: str = "test") -> None:
        super().__init__(write_interval="epoch")
        self.path, self.split = Path(path), split

    def write_on_epoch_end(self, trainer: Any, pl_module: Any, predictions: Sequence[Any],
                           batch_indices: Sequence[Any]) -> None:
        outputs = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        if outputs and not isinstance(outputs[0], dict):
            raise TypeError(f"{type(pl_module).__name__}.predict_step must return a dict of tensors to be written "
                            f"to a file, got {type(outputs[0]).__name__}")
        write_predictions(self.path, merge_batches(outputs), self.split)
        print(f"[graphlab] wrote {self.split} predictions to {self.path}")
