r"""Multi-process (DDP) support shared by graphlab's data and tasks: the process group's rank and size, a seed
schedule that is the same for any number of processes, and exact split metrics across ranks.

Lightning's DDP strategy (``--trainer.strategy=ddp``; backend ``gloo`` on CPU, ``nccl`` on GPU, chosen by Lightning)
runs one process per device. Each rank's loaders go through a :class:`~torch.utils.data.DistributedSampler`:
for a dataset of :math:`N` items and :math:`W` ranks it pads the (shuffled or ordered) index list to
:math:`W \lceil N / W \rceil` by repeating its first items, and rank :math:`r` takes positions
:math:`r, r + W, r + 2W, \dots`. A split metric computed per rank and averaged is therefore neither the
single-process metric (a mean of per-shard AUCs is not the AUC) nor free of the padded duplicates. graphlab keys
every collected prediction row by its dataset item (and its row within the item), gathers every rank's rows,
keeps one row per key in key order (:func:`unique_by_key`) and computes the metric once on the whole split, so
every rank logs the number one process would.

This module imports only torch.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler

__all__ = ["is_distributed", "world_size", "rank", "gather_objects", "unique_by_key", "row_keys",
           "loader_item_indices", "batch_items", "EpochShardSampler"]


def is_distributed() -> bool:
    """Whether a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """The number of ranks of the process group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank in the process group (0 without one)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in one process). Objects may differ in size across ranks
    (``torch.distributed.all_gather_object`` pickles them); put tensors on the CPU first."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def unique_by_key(keys: Tensor, *values: Tensor) -> tuple[Tensor, ...]:
    """Keep the first row of each distinct key, in ascending key order.

    Args:
        keys: ``[n, k]`` integer keys, compared lexicographically (e.g. ``(dataset item, row within item)``).
        values: tensors with ``n`` rows each.

    Returns:
        ``(unique keys [m, k], *values restricted to the first row of each key)``, sorted by key. Rows of equal
        key are duplicates (a ``DistributedSampler``'s padding, or a full graph every rank evaluated); with the
        ranks' rows concatenated in rank order, the lowest rank's copy is kept.
    """
    if keys.dim() != 2:
        raise ValueError(f"keys must be [n, k], got shape {tuple(keys.shape)}")
    n = keys.size(0)
    for value in values:
        if value.size(0) != n:
            raise ValueError(f"every value needs one row per key ({n}), got shape {tuple(value.shape)}")
    if n == 0:
        return (keys, *values)
    unique, inverse = torch.unique(keys, dim=0, return_inverse=True)
    position = torch.arange(n, device=keys.device)
    first = torch.full((unique.size(0),), n, dtype=torch.long, device=keys.device)
    first = first.scatter_reduce(0, inverse, position, reduce="amin")
    return (unique, *(value[first] for value in values))


def row_keys(items: Tensor, num_rows: int) -> Optional[Tensor]:
    """``[num_rows, 2]`` keys ``(dataset item, row within item)`` of a batch's collected rows, or ``None`` when the
    rows cannot be told apart by item.

    A batch of ``B`` items that gives one row each (graph-level prediction) is keyed ``(item_i, 0)``; a batch of one
    item that gives many rows (a full graph's nodes, a link split's pairs) is keyed ``(item, j)``. Any other shape
    (several items, rows not one per item) has no item key: the caller must pass its own row ids.
    """
    items = items.view(-1).long()
    if items.numel() == num_rows:
        return torch.stack([items, torch.zeros_like(items)], dim=1)
    if items.numel() == 1:
        return torch.stack([items.expand(num_rows), torch.arange(num_rows)], dim=1)
    return None


def loader_item_indices(loader: Any) -> Optional[Tensor]:
    """The dataset indices this rank's ``loader`` visits this epoch, in order, when its sampler is a plain
    :class:`~torch.utils.data.DistributedSampler` (deterministic for a given epoch: listing it again gives the
    order the loop saw); ``None`` for any other loader (a random sampler would give a new order)."""
    if not isinstance(loader, DataLoader):
        return None
    sampler = loader.sampler
    if loader.batch_sampler is not None:
        if not isinstance(loader.batch_sampler, BatchSampler):
            return None
        sampler = loader.batch_sampler.sampler
    if not isinstance(sampler, DistributedSampler) or type(sampler).__name__ == "DistributedSamplerWrapper":
        return None  # Lightning's wrapper re-lists the sampler it wraps, which may reshuffle
    return torch.tensor(list(iter(sampler)), dtype=torch.long)


def batch_items(loader: Any, item_indices: Tensor, batch_idx: int) -> Optional[Tensor]:
    """The dataset items of batch ``batch_idx`` of ``loader``, given :func:`loader_item_indices`."""
    if not isinstance(loader, DataLoader):
        return None
    if loader.batch_sampler is None:  # batch_size=None: every sampled index is one batch
        return item_indices[batch_idx:batch_idx + 1]
    if not isinstance(loader.batch_sampler, BatchSampler):
        return None
    size = loader.batch_sampler.batch_size
    return item_indices[batch_idx * size:(batch_idx + 1) * size]


class EpochShardSampler(DistributedSampler):
    r"""A shuffle that is the same for 1 and for :math:`W` processes: epoch :math:`e` permutes the dataset with a
    generator seeded :math:`s + e` (``seed`` + epoch) on every rank, and rank :math:`r` of :math:`W` takes
    positions :math:`r, r + W, \dots` of it (padded to a multiple of :math:`W`, as
    :class:`~torch.utils.data.DistributedSampler` does).

    The rank and world size are read from the running process group (1 process without one), so one DataModule
    serves both. With per-rank batch size :math:`b`, step :math:`k` of :math:`W` ranks covers permutation positions
    :math:`[kWb, (k+1)Wb)`: exactly what one process with batch size :math:`Wb` sees at step :math:`k`. DDP
    averages the ranks' gradients, so (with a loss that is a mean over the batch, equal shard sizes and no
    batch-dependent layers such as BatchNorm) the two runs take the same optimisation steps.

    Lightning keeps a ``DistributedSampler`` it finds in a loader (it replaces only other samplers) and calls
    :meth:`set_epoch` every epoch.

    Args:
        dataset: anything with ``len``.
        shuffle: permute each epoch (``False``: dataset order).
        seed: the base seed :math:`s` of the permutation.
        drop_last: drop the tail instead of padding it (then each rank gets :math:`\lfloor N/W \rfloor` items).
    """

    def __init__(self, dataset: Sequence[Any], shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        super().__init__(dataset, num_replicas=world_size(), rank=rank(), shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
