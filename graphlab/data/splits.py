"""Seeded, reproducible splits for datasets that ship none.

* :func:`stratified_folds` + :func:`fold_split`: k-fold cross-validation where fold ``i``
  is the test set, fold ``i + 1`` (mod k) the validation set and the rest the training
  set (TU datasets with k = 10, CSL with k = 5: 3/1/1 folds as in benchmarking-gnns).
* :func:`random_node_masks`: random train/val/test node masks (cSBM).
* :func:`split_edges`: disjoint train/val/test positive edges plus fixed negatives for
  link prediction on an undirected graph.
* :func:`sample_tail_negatives`: corrupt the tail of each pair with a candidate node it is
  not known to link to (BPR training, recommendation negatives).

All functions take an explicit seed and never touch the global random state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor


def stratified_folds(labels: Tensor, num_folds: int, seed: int) -> list[Tensor]:
    """Partition ``range(len(labels))`` into ``num_folds`` class-stratified folds.

    Each class's indices are shuffled with ``seed`` and dealt round-robin over the folds,
    with the starting fold rotated per class so fold sizes differ by at most one.

    Returns:
        ``num_folds`` sorted LongTensors of indices, disjoint and covering.
    """
    if num_folds < 2:
        raise ValueError(f"num_folds must be >= 2, got {num_folds}")
    rng = np.random.default_rng(seed)
    labels_np = labels.view(-1).cpu().numpy()
    folds: list[list[int]] = [[] for _ in range(num_folds)]
    offset = 0
    for cls in np.unique(labels_np):
        members = rng.permutation(np.flatnonzero(labels_np == cls))
        for j, index in enumerate(members):
            folds[(offset + j) % num_folds].append(int(index))
        offset += len(members)
    return [torch.tensor(sorted(f), dtype=torch.long) for f in folds]


@dataclass(frozen=True)
class IndexSplit:
    """Train/validation/test index tensors of a graph-level dataset."""

    train: Tensor
    val: Tensor
    test: Tensor


def fold_split(folds: list[Tensor], fold: int) -> IndexSplit:
    """Test = ``folds[fold]``, validation = ``folds[(fold + 1) % k]``, train = the rest."""
    k = len(folds)
    if not 0 <= fold < k:
        raise ValueError(f"fold={fold} is out of range: there are {k} folds, so choose 0..{k - 1}")
    val_fold = (fold + 1) % k
    train = [f for i, f in enumerate(folds) if i not in (fold, val_fold)]
    return IndexSplit(train=torch.cat(train).sort().values, val=folds[val_fold], test=folds[fold])


def check_node_ratios(train_ratio: float, val_ratio: float) -> None:
    """Raise ``ValueError`` unless the ratios leave a non-empty remainder for the test set."""
    if not (0 < train_ratio and 0 <= val_ratio and train_ratio + val_ratio < 1):
        raise ValueError(
            f"need 0 < train_ratio, 0 <= val_ratio and train_ratio + val_ratio < 1 "
            f"(got {train_ratio}, {val_ratio}); the test set takes the remainder"
        )


def random_node_masks(
    num_nodes: int, train_ratio: float, val_ratio: float, seed: int | Sequence[int]
) -> tuple[Tensor, Tensor, Tensor]:
    """Random disjoint boolean masks: ``train_ratio``/``val_ratio`` of the nodes, test = rest.

    ``seed`` may be a sequence (e.g. ``(graph_seed, split)``), giving independent streams.
    """
    check_node_ratios(train_ratio, val_ratio)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(num_nodes))
    num_train = int(round(train_ratio * num_nodes))
    num_val = int(round(val_ratio * num_nodes))
    masks = []
    for part in (perm[:num_train], perm[num_train : num_train + num_val], perm[num_train + num_val :]):
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[part] = True
        masks.append(mask)
    return masks[0], masks[1], masks[2]


@dataclass(frozen=True)
class EdgeSplit:
    """Link-prediction split of an undirected graph; every edge tensor is ``[2, *]``,
    one column per undirected edge (``row < col``)."""

    train_pos: Tensor
    val_pos: Tensor
    val_neg: Tensor
    test_pos: Tensor
    test_neg: Tensor


def split_edges(edge_index: Tensor, num_nodes: int, val_ratio: float, test_ratio: float, seed: int) -> EdgeSplit:
    """Split the undirected edges of ``edge_index`` into train/val/test positives.

    Each val/test set gets as many negatives as positives: uniformly random node pairs
    that are not edges of the graph, not self-loops and not repeated anywhere.
    """
    if not (0 <= val_ratio and 0 <= test_ratio and val_ratio + test_ratio < 1):
        raise ValueError(f"need val_ratio, test_ratio >= 0 with sum < 1, got {val_ratio}, {test_ratio}")
    row, col = edge_index
    keep = row < col
    undirected = torch.unique(torch.stack([row[keep], col[keep]]), dim=1)
    rng = np.random.default_rng(seed)
    perm = torch.from_numpy(rng.permutation(undirected.size(1)))
    num_val = int(round(val_ratio * undirected.size(1)))
    num_test = int(round(test_ratio * undirected.size(1)))
    val_pos = undirected[:, perm[:num_val]]
    test_pos = undirected[:, perm[num_val : num_val + num_test]]
    train_pos = undirected[:, perm[num_val + num_test :]]
    negatives = _sample_non_edges(undirected, num_nodes, num_val + num_test, rng)
    return EdgeSplit(train_pos, val_pos, negatives[:, :num_val], test_pos, negatives[:, num_val:])


def _sample_non_edges(undirected: Tensor, num_nodes: int, count: int, rng: np.random.Generator) -> Tensor:
    """``count`` distinct pairs ``(u, v)``, ``u < v``, that are not in ``undirected``."""
    max_pairs = num_nodes * (num_nodes - 1) // 2 - undirected.size(1)
    if count > max_pairs:
        raise ValueError(f"cannot sample {count} negative pairs: the graph has only {max_pairs} non-edges")
    taken = set((undirected[0] * num_nodes + undirected[1]).tolist())
    chosen: list[int] = []
    while len(chosen) < count:
        u = rng.integers(0, num_nodes, size=2 * count)
        v = rng.integers(0, num_nodes, size=2 * count)
        lo, hi = np.minimum(u, v), np.maximum(u, v)
        for key in (lo * num_nodes + hi)[lo < hi].tolist():
            if key not in taken:
                taken.add(key)
                chosen.append(key)
                if len(chosen) == count:
                    break
    keys = torch.tensor(chosen, dtype=torch.long)
    return torch.stack([keys // num_nodes, keys % num_nodes])


def sample_tail_negatives(heads: Tensor, candidates: Tensor, known: Tensor, num_nodes: int,
                          generator: torch.Generator | None = None, max_rounds: int = 100) -> Tensor:
    """For each head node, a uniformly drawn node of ``candidates`` that ``head -> tail`` is not in ``known``.

    Vectorised rejection sampling: all heads draw at once, only the clashes redraw.

    Args:
        heads: ``[B]`` head node ids.
        candidates: ``[C]`` node ids the tail is drawn from (e.g. all items of a user-item graph).
        known: sorted ``[K]`` int64 keys ``head * num_nodes + tail`` of the pairs to avoid.
        num_nodes: the key base (number of nodes).
        generator: random generator (``None``: the global one, e.g. ``seed_everything``).
        max_rounds: redraw rounds before giving up.

    Returns:
        ``[B]`` tail node ids.
    """
    if candidates.numel() == 0:
        raise ValueError("no candidate tails to sample negatives from")
    device = heads.device
    draw = torch.randint(0, candidates.numel(), (heads.numel(),), generator=generator, device=device)
    tails = candidates[draw]
    if known.numel() == 0:
        return tails
    for _ in range(max_rounds):
        keys = heads * num_nodes + tails
        at = torch.searchsorted(known, keys).clamp_max(known.numel() - 1)
        clash = known[at] == keys
        if not bool(clash.any()):
            return tails
        redraw = torch.randint(0, candidates.numel(), (int(clash.sum()),), generator=generator, device=device)
        tails[clash] = candidates[redraw]
    raise RuntimeError("could not sample negatives: some head links to (almost) every candidate tail")


def pair_keys(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Sorted int64 keys ``head * num_nodes + tail`` of ``edge_index`` (``[2, E]``), for :func:`sample_tail_negatives`."""
    return torch.sort(edge_index[0].long() * num_nodes + edge_index[1].long()).values


def ncn_random_split(edge_index: Tensor, num_nodes: int, seed: int, val_ratio: float = 0.1,
                     test_ratio: float = 0.2) -> EdgeSplit:
    """The random 70/10/20 edge split of NCN/NCNC on Planetoid (Wang et al. 2024, ``ogbdataset.randomsplit``).

    The official code calls ``train_test_split_edges(data, test_ratio, test_ratio)`` and then moves part of the
    validation positives into training. The same semantics, drawn from ``seed``:

    1. the undirected edges (``u < v``, ``E`` of them) are shuffled; ``n = floor(test_ratio * E)`` become
       validation candidates, the next ``n`` the test positives, the rest training positives;
    2. ``2n`` distinct non-edges of the whole graph (``u < v``) are drawn: the first ``n`` are the validation
       negatives, the others the test negatives;
    3. the last ``int(n * val_ratio / test_ratio)`` validation candidates stay validation positives; the other
       candidates join the training positives.

    Cora (5278 edges): 3696 / 527 / 1055 positives, 1055 validation and 1055 test negatives, as the official run.
    """
    if not (0 < val_ratio <= test_ratio and 2 * test_ratio < 1):
        raise ValueError(f"need 0 < val_ratio <= test_ratio < 0.5, got val_ratio={val_ratio}, test_ratio={test_ratio}")
    row, col = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    keep = row < col
    undirected = torch.unique(torch.stack([row[keep], col[keep]]), dim=1)
    rng = np.random.default_rng(seed)
    perm = torch.from_numpy(rng.permutation(undirected.size(1)))
    n = int(math.floor(test_ratio * undirected.size(1)))
    candidates = undirected[:, perm[:n]]
    test_pos = undirected[:, perm[n : 2 * n]]
    train_pos = undirected[:, perm[2 * n :]]
    negatives = _sample_non_edges(undirected, num_nodes, 2 * n, rng)
    num_val = int(n * val_ratio / test_ratio)
    train_pos = torch.cat([train_pos, candidates[:, : n - num_val]], dim=1)
    return EdgeSplit(train_pos, candidates[:, n - num_val :], negatives[:, :n], test_pos, negatives[:, n:])
