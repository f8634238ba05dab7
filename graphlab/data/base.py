"""The contract every graphlab DataModule follows.

A task (``graphlab.tasks``) never looks inside a dataset: it reads :class:`DatasetInfo`
from ``trainer.datamodule.info`` and consumes batches of the layout documented on
:class:`GraphDataModule`. The CLI links ``num_features`` and ``num_outputs`` into the
model's ``in_channels`` / ``out_channels``, so both must be known right after
``__init__`` (read them from cheap metadata where the data is large).
"""

from __future__ import annotations

import abc
import copy
import os
import shlex
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TypeVar

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from graphlab.info import DatasetInfo, TaskType  # noqa: F401 - re-exported: the data contract names them

DATA_ENV = "GRAPHLAB_DATA"
SHARED_DATA_ENV = "GRAPHLAB_SHARED_DATA"
"""An offline copy of the data folder (same layout as the root): missing-file errors copy from it."""



class GraphDataModule(L.LightningDataModule, abc.ABC):
    """Base class of graphlab DataModules.

    Batch layouts, by ``info.level``:

    * ``node``: every loader yields one full :class:`~torch_geometric.data.Data` with ``x``
      ``[N, F]``, ``edge_index`` ``[2, E]``, ``y`` ``[N]`` (long) and 1-D boolean
      ``train_mask`` / ``val_mask`` / ``test_mask`` for the chosen split.
    * ``graph``: a PyG ``DataLoader`` of ``Batch`` objects with ``x``, ``edge_index``,
      optional ``edge_attr``, ``batch``; ``y`` is ``[B]`` long (multiclass) or ``[B, T]``
      float with NaN for missing labels (binary, regression).
    * ``link``: the train loader yields one ``Data`` with ``x``, ``edge_index`` (the
      message-passing graph) and ``pos_edge_index`` ``[2, P]`` (training positives; the
      task samples negatives); val/test loaders yield the same graph with
      ``pos_edge_index`` and ``neg_edge_index`` (fixed negatives): ``[2, Q]``, one pool shared by every
      positive, when ``info.negatives_per_positive`` is ``None``; ``[2, P * Q]`` positive-major (columns
      ``i*Q .. (i+1)*Q - 1`` are the negatives of positive ``i``) when it is ``Q``.

    Under DDP (``--trainer.strategy=ddp``) Lightning gives every loader a ``DistributedSampler``, so each rank draws
    its own shard of the items (a full-batch loader's single graph goes to every rank); a loader that already has a
    ``DistributedSampler`` (e.g. :class:`graphlab.distributed.EpochShardSampler`, the same shuffle for any number of
    processes) is kept. The task's split metrics stay exact when each batch gives one prediction row per item
    (graphs), one item many rows (a full graph), or rows named by global ids (``n_id`` of a sampled batch): see
    :meth:`graphlab.tasks.base.GraphTask.collect`.
    """

    predict_split: str = "test"
    """The split ``predict`` covers (``train``, ``val`` or ``test``); ``graphlab predict --predict_split`` sets it."""

    # A DataModule whose ``test_dataloader`` returns several loaders (e.g. one per test size) may define
    # ``test_names: list[str]``, one per loader: the task logs ``test_<metric>`` for the first and
    # ``test_<metric>@<name>`` for the others, and ``graphlab leaderboard`` records and tables each.

    def __init__(self, root: Optional[str] = None) -> None:
        super().__init__()
        self.root = resolve_root(root)

    @property
    @abc.abstractmethod
    def info(self) -> DatasetInfo:
        """The dataset description; every concrete DataModule defines it."""

    @property
    def num_features(self) -> int:
        return self.info.num_features

    @property
    def num_outputs(self) -> int:
        return self.info.num_outputs


class FullBatchMixin:
    """Full-batch node data: ``setup`` builds ``self.graph`` and every loader yields it.

    List it before :class:`GraphDataModule` in the bases so its loaders take precedence.
    """

    graph: Any

    def setup(self, stage: Optional[str] = None) -> None:
        _ = self.graph

    def train_dataloader(self) -> Any:
        return full_batch_loader(self.graph)

    def val_dataloader(self) -> Any:
        return full_batch_loader(self.graph)

    def test_dataloader(self) -> Any:
        return full_batch_loader(self.graph)

    def predict_dataloader(self) -> Any:
        return full_batch_loader(self.graph)


class FullBatchLinkMixin:
    """Full-batch link data: ``setup`` builds ``self.parts`` (``{"train", "val", "test"}``)
    and each loader yields its part; ``predict`` yields :func:`link_predict_data` of the test part.

    List it before :class:`GraphDataModule` in the bases so its loaders take precedence.
    """

    parts: Any

    def setup(self, stage: Optional[str] = None) -> None:
        _ = self.parts

    def train_dataloader(self) -> Any:
        return full_batch_loader(self.parts["train"])

    def val_dataloader(self) -> Any:
        return full_batch_loader(self.parts["val"])

    def test_dataloader(self) -> Any:
        return full_batch_loader(self.parts["test"])

    def predict_dataloader(self) -> Any:
        """The ``predict_split`` graph (default test) with ``edge_label_index`` = its positives then negatives."""
        return full_batch_loader(link_predict_data(self.parts[getattr(self, "predict_split", "test")]))


class PartLoaderMixin(abc.ABC):
    """Loaders that delegate to ``self._loader(part, shuffle)``: train shuffled; val, test
    and predict (on the test part) not. ``_val_part`` names the validation part.

    List it before :class:`GraphDataModule` in the bases so its loaders take precedence.
    """

    _val_part: str = "val"

    @abc.abstractmethod
    def _loader(self, part: str, shuffle: bool) -> Any:
        """A loader over ``part`` (``train``, ``val``/``valid``, ``test``)."""

    def train_dataloader(self) -> Any:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> Any:
        return self._loader(self._val_part, shuffle=False)

    def test_dataloader(self) -> Any:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> Any:
        split = getattr(self, "predict_split", "test")
        return self._loader(self._val_part if split == "val" else split, shuffle=False)


def resolve_root(root: Optional[str]) -> Path:
    """``root`` if given, else ``$GRAPHLAB_DATA``, else ``./data``."""
    if root is None or root == "":
        root = os.environ.get(DATA_ENV) or "data"
    return Path(root).expanduser()


# --------------------------------------------------------------------------- helpers
# Shared by the concrete DataModules: name lookup, file checks with actionable errors,
# the offline-aware download wrapper, split validation and the full-batch loader.

T = TypeVar("T")


def lookup_name(name: str, known: Mapping[str, T], what: str) -> T:
    """Case-insensitive lookup of ``name`` in ``known`` (keys are lower case).

    Raises:
        ValueError: naming the unknown ``name`` and listing every known one.
    """
    key = name.strip().lower()
    if key not in known:
        raise ValueError(f"unknown {what} {name!r}; known names: {', '.join(sorted(known))}")
    return known[key]


def check_split(split: int, num_splits: int, name: str) -> None:
    """Raise ``ValueError`` unless ``0 <= split < num_splits``."""
    if not 0 <= split < num_splits:
        raise ValueError(
            f"split={split} is out of range for {name}: it ships {num_splits} split(s), "
            f"so choose split in 0..{num_splits - 1}"
        )


def missing_files(directory: Path, names: Iterable[str]) -> list[str]:
    """The entries of ``names`` (paths relative to ``directory``) that are not files."""
    return [n for n in names if not (directory / n).is_file()]


def copy_command(directory: Path, root: Path) -> str:
    """The shell command that copies a dataset's folder into ``directory`` (below the data ``root``) from an offline
    copy: ``$GRAPHLAB_SHARED_DATA`` when set (a folder laid out like the root), else a placeholder to replace."""
    directory = Path(os.path.abspath(directory))
    root = Path(os.path.abspath(root))
    rel = directory.relative_to(root) if directory.is_relative_to(root) else Path(directory.name)
    source_root = os.environ.get(SHARED_DATA_ENV)
    source = str(Path(source_root) / rel) if source_root else f"<your copy of the data folder>/{rel.as_posix()}"
    quote = shlex.quote if source_root else (lambda text: f'"{text}"')
    return f"mkdir -p {shlex.quote(str(directory))} && cp -r {quote(source)}/. {shlex.quote(str(directory))}/"


def missing_files_error(dataset: str, directory: Path, missing: Sequence[str], how_to_get: str,
                        root: Optional[Path] = None, url: Optional[str] = None) -> FileNotFoundError:
    """A ``FileNotFoundError`` that names the missing files, where they belong and how to get them: with
    ``root`` (the DataModule's data root) the exact copy command (:func:`copy_command`), with ``url`` the
    download address."""
    where = f"{directory}" if directory.is_dir() else f"{directory} (the directory does not exist)"
    listed = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
    text = f"{dataset}: missing file(s) {listed} in {where}. {how_to_get}"
    if root is not None:
        text += f"\nCopy them from an offline copy with:\n  {copy_command(directory, root)}"
    if url:
        text += f"\nDownload address: {url}"
    return FileNotFoundError(text)


def download_or_raise(
    fetch: Callable[[], T], dataset: str, directory: Path, missing: Sequence[str], how_to_get: str,
    root: Optional[Path] = None, url: Optional[str] = None,
) -> T:
    """Run ``fetch`` (a library download), turning a network failure into a clear error.

    ``fetch`` is only called when files are missing and the user allowed downloading;
    any ``OSError`` it raises (``URLError``, connection resets, DNS failures, HTTP errors
    from fsspec/aiohttp all derive from it) becomes the :func:`missing_files_error`.
    """
    try:
        return fetch()
    except OSError as exc:
        error = missing_files_error(dataset, directory, missing, f"The download failed ({exc}). {how_to_get}", root,
                                    url)
        raise error from exc


def _only_item(items: list[T]) -> T:
    return items[0]


def full_batch_loader(data: Any) -> DataLoader:
    """A loader that yields ``data`` itself, once per epoch (full-batch node/link training).

    The item is handed over unchanged (no collation into a list or ``Batch``); Lightning
    moves it to the device through ``Data.to``.
    """
    return DataLoader([data], batch_size=1, shuffle=False, collate_fn=_only_item)


def link_train_loader(train: Any, batch_size: Optional[int] = None, drop_last: bool = True) -> DataLoader:
    """The training loader of a link split.

    ``batch_size=None``: one full batch per epoch (:func:`full_batch_loader`). Otherwise the training positives are
    shuffled each epoch (the global torch RNG, so ``seed_everything`` fixes the order) and cut into batches of
    ``batch_size``; each batch is a shallow copy of ``train`` (same ``x`` and message graph ``edge_index``) whose
    ``pos_edge_index`` holds that batch's positives. ``drop_last`` skips a final partial batch, as NCN's
    official ``PermIterator`` does.
    """
    if batch_size is None:
        return full_batch_loader(train)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (or None for full-batch training), got {batch_size}")
    num_pos = train.pos_edge_index.size(1)
    if drop_last and num_pos < batch_size:
        raise ValueError(f"the training split has {num_pos} positive edges, fewer than batch_size={batch_size}, so "
                         "every batch would be dropped: lower batch_size or set drop_last=False")

    def collate(index: list[int]) -> Any:
        out = copy.copy(train)
        out.pos_edge_index = train.pos_edge_index[:, torch.tensor(index, dtype=torch.long)]
        return out

    return DataLoader(range(num_pos), batch_size=batch_size, shuffle=True, drop_last=drop_last, collate_fn=collate)


def link_eval_loader(part: Any, positives_per_batch: Optional[int] = None,
                     negatives_per_positive: Optional[int] = None) -> DataLoader:
    """The validation/test loader of a link split, optionally cut into batches of positives.

    ``positives_per_batch=None``: one batch, ``part`` itself (:func:`full_batch_loader`). Otherwise batch ``k`` is a
    shallow copy of ``part`` (same ``x`` and message graph) holding the ``k``-th run of ``positives_per_batch``
    positives and, for each, its negatives: with ``negatives_per_positive = Q`` (OGB's per-source layout, positive-major
    ``neg_edge_index`` ``[2, P * Q]``) exactly the ``Q`` columns of each positive; with a shared pool (``None``) the
    pool is cut into as many equal runs as there are batches. Concatenating the batches' positives and negatives in
    order gives back the split's, so a metric over the whole epoch (Hits@K on the pooled negatives, or MRR per
    positive) is unchanged; only the memory and time of one step shrink (and ``fast_dev_run`` sees one small batch).
    """
    if positives_per_batch is None:
        return full_batch_loader(part)
    if positives_per_batch < 1:
        raise ValueError(f"positives_per_batch must be >= 1 or None (one batch), got {positives_per_batch}")
    pos, neg = part.pos_edge_index, part.neg_edge_index
    starts = list(range(0, pos.size(1), positives_per_batch)) or [0]
    if negatives_per_positive is None:
        neg_bounds = [(neg.size(1) * k) // len(starts) for k in range(len(starts) + 1)]
    else:
        if neg.size(1) != pos.size(1) * negatives_per_positive:
            raise ValueError(f"{pos.size(1)} positives with {negatives_per_positive} negatives each need "
                             f"{pos.size(1) * negatives_per_positive} negative pairs, got {neg.size(1)}")
        neg_bounds = [min(s, pos.size(1)) * negatives_per_positive for s in starts + [pos.size(1)]]

    def batch(k: int) -> Any:
        out = copy.copy(part)
        out.pos_edge_index = pos[:, starts[k]:starts[k] + positives_per_batch]
        out.neg_edge_index = neg[:, neg_bounds[k]:neg_bounds[k + 1]]
        return out

    return DataLoader(range(len(starts)), batch_size=None, shuffle=False, collate_fn=batch)


def link_predict_data(test: Any) -> Any:
    """A shallow copy of a link split's ``Data`` with ``edge_label_index`` = its positive then negative pairs
    (the training part has positives only) and ``edge_label`` 1 / 0: the pairs a link task scores in ``predict``."""
    out = copy.copy(test)
    pos = test.pos_edge_index
    neg = getattr(test, "neg_edge_index", None)
    neg = pos.new_zeros(2, 0) if neg is None else neg
    out.edge_label_index = torch.cat([pos, neg], dim=1)
    out.edge_label = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))])
    return out


def log_degree_features(edge_index: Tensor, num_nodes: int) -> Tensor:
    """``[N, 1]`` float feature ``log(1 + in-degree)``, for graphs without node features."""
    deg = torch.bincount(edge_index[1], minlength=num_nodes).to(torch.float)
    return torch.log1p(deg).view(-1, 1)
