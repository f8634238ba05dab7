r"""Level-by-level balanced pairwise reduction over CSR segments: the tree of Learnable Commutative Monoids.

For segment :math:`i` with rows :math:`r_0, \dots, r_{c-1}` (``ptr[i] <= e < ptr[i+1]``) and a binary operator
:math:`\oplus` (``combine``):

.. math::
    T(r_0) = r_0, \qquad
    T(r_0, \dots, r_{c-1}) = T\big(r_0 \oplus r_1,\; r_2 \oplus r_3,\; \dots,\; [r_{c-1} \text{ if } c \text{ odd}]\big)

One *level* pairs rows ``(2k, 2k+1)`` inside every segment and passes an odd last row up unchanged, so a segment
of :math:`c` rows needs :math:`\lceil \log_2 c \rceil` levels (Ong & Veličković, "Learnable Commutative Monoids
for Graph Neural Networks", LoG 2022). No padding value ever enters :math:`\oplus`, so a segment's result depends
only on its own rows. Empty segments give zeros (or a given ``empty`` row).

The op has two halves:

* the **schedule** (:func:`tree_reduce_schedule`): integer index tensors per level, which depend only on ``ptr``.
  Its pairing step has three paths (reference loops; on the CPU the same vectorised step in NumPy, whole
  schedule built before any tensor is made, because a fresh mini-batch needs a fresh schedule every training
  step and ~15 small torch ops per level cost more than the arithmetic; a Triton kernel on CUDA / under
  ``TRITON_INTERPRET=1``) dispatched by :mod:`graphlab.ops._backend`; schedules are cached per ``ptr`` tensor
  (identity and in-place version) in :data:`SCHEDULE_CACHE`. :func:`pair_level_torch` is the same step in torch
  (any device; tests check the NumPy step against it).
* the **reduction** (:func:`tree_reduce`): per level, two gathers, **one** ``combine`` call on all pairs of all
  segments, a concatenation with the carried rows and one gather into the next level's layout. Gradients flow
  through torch autograd of those gathers and of ``combine``. Each level holds at most half the rows of the one
  before, so the work and memory are :math:`O(E \cdot F)` plus whatever ``combine`` saves for backward.

A segment whose count has reached 1 is *done*: its row is set aside at that level and it takes no part in later
levels, so a hub's depth does not make the other segments pay for copies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from graphlab.ops import reference
from graphlab.ops._backend import record_path, resolve_backend, validation_enabled
from graphlab.ops.csr import IdentityCache
from graphlab.ops.segment import check_segment_types, check_segments

Combine = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class TreeLevel:
    """One level of the schedule; every index is int64 on ``ptr``'s device and points into this level's rows.

    Attributes:
        done: rows whose segment is finished at this level (count 1), in segment order.
        left, right: pair ``p`` combines rows ``left[p]`` and ``right[p]`` (``right = left + 1``).
        carry: the odd last rows of the active segments, passed up unchanged.
        gather: next level's row ``r`` is entry ``gather[r]`` of ``cat([combine(left, right), rows[carry]])``.
    """

    done: Tensor
    left: Tensor
    right: Tensor
    carry: Tensor
    gather: Tensor


@dataclass(frozen=True)
class TreeSchedule:
    """The whole schedule for ``num_segments`` segments.

    Attributes:
        levels: the levels, the first one over the input rows; the last one has no pairs.
        final: ``[S]`` position of each segment's result in ``cat(rows[level.done] for level in levels)``; an
            empty segment points one past the end (the ``empty`` row).
    """

    levels: tuple[TreeLevel, ...]
    final: Tensor
    num_segments: int

    @property
    def depth(self) -> int:
        """Number of pairing levels, :math:`\\lceil \\log_2 \\max_i c_i \\rceil`."""
        return len(self.levels) - 1


# ----------------------------------------------------------------------------------------------- pairing step


def _exclusive_cumsum(t: Tensor) -> Tensor:
    return torch.cumsum(t, 0) - t


def pair_level_torch(starts: Tensor, counts: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Vectorised pairing step (see :func:`graphlab.ops.reference.tree_reduce_level_reference`).

    Args:
        starts, counts: int64 ``[S_active]``, first row and row count (>= 2) of each active segment.

    Returns:
        ``(left, right, carry, gather)`` int64.
    """
    half, odd = counts // 2, counts % 2
    num_pairs = int(half.sum())
    segment_ids = torch.arange(counts.numel(), device=counts.device)
    pair_segment = torch.repeat_interleave(segment_ids, half, output_size=num_pairs)
    pair_offset = _exclusive_cumsum(half)
    k = torch.arange(num_pairs, device=counts.device) - pair_offset[pair_segment]
    left = starts[pair_segment] + 2 * k
    odd_segments = torch.nonzero(odd).flatten()
    carry = starts[odd_segments] + counts[odd_segments] - 1
    next_offset = _exclusive_cumsum(half + odd)
    gather = torch.empty(num_pairs + carry.numel(), dtype=torch.long, device=counts.device)
    gather[next_offset[pair_segment] + k] = torch.arange(num_pairs, device=counts.device)
    gather[next_offset[odd_segments] + half[odd_segments]] = num_pairs + torch.arange(
        carry.numel(), device=counts.device
    )
    return left, left + 1, carry, gather


def pair_level_numpy(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`pair_level_torch` in NumPy (int64 arrays in and out); the CPU path of the schedule."""
    half, odd = counts // 2, counts % 2
    num_pairs = int(half.sum())
    pair_segment = np.repeat(np.arange(counts.size), half)
    k = np.arange(num_pairs) - (np.cumsum(half) - half)[pair_segment]
    left = starts[pair_segment] + 2 * k
    odd_segments = np.flatnonzero(odd)
    carry = starts[odd_segments] + counts[odd_segments] - 1
    width = half + odd
    next_offset = np.cumsum(width) - width
    gather = np.empty(num_pairs + carry.size, dtype=np.int64)
    gather[next_offset[pair_segment] + k] = np.arange(num_pairs)
    gather[next_offset[odd_segments] + half[odd_segments]] = num_pairs + np.arange(carry.size)
    return left, left + 1, carry, gather


def _build_schedule_numpy(ptr: Tensor) -> TreeSchedule:
    """:func:`_build_schedule` with :func:`pair_level_numpy` on a CPU ``ptr``: the same levels, built in NumPy."""
    bounds = ptr.long().numpy()
    num_segments = bounds.size - 1
    starts, counts = bounds[:-1], bounds[1:] - bounds[:-1]
    segments = np.arange(num_segments)
    levels, done_segments = [], []
    as_tensor = torch.from_numpy
    while True:
        finished = counts == 1
        done_segments.append(segments[finished])
        active = counts >= 2
        if not active.any():
            empty = torch.empty(0, dtype=torch.long)
            levels.append(TreeLevel(as_tensor(starts[finished]), empty, empty, empty, empty))
            break
        starts_a, counts_a = starts[active], counts[active]
        left, right, carry, gather = pair_level_numpy(starts_a, counts_a)
        levels.append(TreeLevel(*(as_tensor(np.ascontiguousarray(a)) for a in
                                  (starts[finished], left, right, carry, gather))))
        counts = (counts_a + 1) // 2
        starts = np.cumsum(counts) - counts
        segments = segments[active]
    order = np.concatenate(done_segments)
    final = np.full(num_segments, order.size, dtype=np.int64)
    final[order] = np.arange(order.size)
    return TreeSchedule(tuple(levels), as_tensor(final), num_segments)


def _pair_level_reference(starts: Tensor, counts: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    level = reference.tree_reduce_level_reference(starts.tolist(), counts.tolist())
    as_tensor = lambda v: torch.tensor(v, dtype=torch.long, device=counts.device)  # noqa: E731
    return tuple(as_tensor(level[k]) for k in ("left", "right", "carry", "gather"))  # type: ignore[return-value]


def _pair_level_triton(starts: Tensor, counts: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    from graphlab.ops import _triton  # imports triton: only when this path runs

    return _triton.TREE_PAIR_LEVEL(starts, counts)


_PAIR_LEVEL = {"reference": _pair_level_reference, "cpu": pair_level_torch, "triton": _pair_level_triton}


# ----------------------------------------------------------------------------------------------- the schedule


def _build_schedule(ptr: Tensor, pair_level: Callable[..., tuple[Tensor, Tensor, Tensor, Tensor]]) -> TreeSchedule:
    ptr = ptr.long()
    num_segments = ptr.numel() - 1
    starts, counts = ptr[:-1], ptr[1:] - ptr[:-1]
    segments = torch.arange(num_segments, device=ptr.device)
    levels, done_segments = [], []
    while True:
        finished = counts == 1
        done_segments.append(segments[finished])
        active = counts >= 2
        if not bool(active.any()):
            empty = ptr.new_empty(0)
            levels.append(TreeLevel(starts[finished], empty, empty, empty, empty))
            break
        starts_a, counts_a = starts[active], counts[active]
        left, right, carry, gather = pair_level(starts_a, counts_a)
        levels.append(TreeLevel(starts[finished], left, right, carry, gather))
        counts = (counts_a + 1) // 2
        starts = _exclusive_cumsum(counts)
        segments = segments[active]
    order = torch.cat(done_segments)
    final = torch.full((num_segments,), order.numel(), dtype=torch.long, device=ptr.device)
    final[order] = torch.arange(order.numel(), device=ptr.device)
    return TreeSchedule(tuple(levels), final, num_segments)


SCHEDULE_CACHE = IdentityCache()


def tree_reduce_schedule(ptr: Tensor, *, validate: bool | None = None, cache: bool = True) -> TreeSchedule:
    """The integer schedule of :func:`tree_reduce` for segments ``ptr`` ``[S + 1]`` (int32/int64).

    The pairing step runs on the dispatched path (reported as ``"tree_reduce_schedule"`` by
    :func:`graphlab.ops.last_path`). With ``cache=True`` the result is kept per ``ptr`` tensor (identity and
    in-place version; see :class:`graphlab.ops.IdentityCache`), so a full-batch loop builds it once.

    Raises:
        ValueError: if ``ptr`` is not an int32/int64 ``[S + 1]`` tensor starting at 0 and non-decreasing.
    """
    _check_ptr(ptr, validate)
    path = resolve_backend(ptr)
    record_path("tree_reduce_schedule", path)

    def build() -> TreeSchedule:
        if path == "cpu" and ptr.device.type == "cpu":
            return _build_schedule_numpy(ptr)
        return _build_schedule(ptr, _PAIR_LEVEL[path])

    return SCHEDULE_CACHE.get_or_build([ptr], ("tree", path), build) if cache else build()


def _check_ptr(ptr: Any, validate: bool | None) -> None:
    probe = torch.empty(0) if not isinstance(ptr, Tensor) else torch.empty(0, device=ptr.device)
    check_segment_types(probe, ptr, "x")
    if validation_enabled() if validate is None else validate:
        if int(ptr[0]) != 0:
            raise ValueError(f"ptr[0] is {int(ptr[0])} but must be 0")
        if ptr.numel() > 1 and bool((ptr[1:] < ptr[:-1]).any()):
            raise ValueError("ptr is not non-decreasing; segments must be consecutive and sorted")


# ----------------------------------------------------------------------------------------------- the reduction


def _check_inputs(x: Any, ptr: Any, combine: Any, empty: Any, validate: bool | None) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a 2-D tensor [E, F] (rows segment after segment), got {shape}")
    if validation_enabled() if validate is None else validate:
        check_segments(x, ptr, "x")
    else:
        check_segment_types(x, ptr, "x")
    if not callable(combine):
        raise TypeError(f"combine must be a callable (a, b) -> [P, F], got {type(combine).__name__}")
    if empty is not None and (not isinstance(empty, Tensor) or tuple(empty.shape) != (x.size(1),)):
        shape = tuple(empty.shape) if isinstance(empty, Tensor) else type(empty).__name__
        raise ValueError(f"empty must be a tensor of shape [F] = [{x.size(1)}] (the value of an empty segment), "
                         f"got {shape}")


def _combine_checked(combine: Combine, a: Tensor, b: Tensor) -> Tensor:
    out = combine(a, b)
    if not isinstance(out, Tensor) or out.shape != a.shape:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"combine(a, b) must return a tensor shaped like a {tuple(a.shape)}, got {shape}; "
                         "the operator maps two rows of F features to one row of F features")
    return out


def run_schedule(x: Tensor, schedule: TreeSchedule, combine: Combine, empty: Tensor | None = None) -> Tensor:
    """Apply a :class:`TreeSchedule` to rows ``x`` ``[E, F]``: one ``combine`` call per level. No checks."""
    rows, results = x, []
    for level in schedule.levels:
        results.append(rows.index_select(0, level.done))
        if level.left.numel() == 0:
            break
        paired = _combine_checked(combine, rows.index_select(0, level.left), rows.index_select(0, level.right))
        rows = torch.cat([paired, rows.index_select(0, level.carry)]).index_select(0, level.gather)
    fill = x.new_zeros((1, x.size(1))) if empty is None else empty.to(x.dtype).view(1, -1)
    return torch.cat([*results, fill]).index_select(0, schedule.final)


def tree_reduce(
    x: Tensor,
    ptr: Tensor,
    combine: Combine,
    empty: Tensor | None = None,
    *,
    schedule: TreeSchedule | None = None,
    validate: bool | None = None,
) -> Tensor:
    r"""Reduce every segment of ``x`` with ``combine`` over a balanced binary tree (module docstring).

    Args:
        x: ``[E, F]`` floating rows, segment after segment.
        ptr: ``[S + 1]`` int64/int32 segment boundaries, ``ptr[0] = 0``, ``ptr[S] = E``, non-decreasing.
        combine: ``(a [P, F], b [P, F]) -> [P, F]``, any differentiable row-wise binary operator; called once per
            level on all pairs of all segments.
        empty: optional ``[F]`` value of an empty segment (default zeros).
        schedule: a precomputed :func:`tree_reduce_schedule` of ``ptr`` (otherwise taken from the cache).
        validate: check the values of ``ptr`` (ValueError); ``None`` follows :class:`graphlab.ops.set_validation`.

    Returns:
        ``[S, F]``, differentiable w.r.t. ``x``, ``empty`` and whatever ``combine`` closes over.

    The ``"reference"`` backend runs :func:`graphlab.ops.reference.tree_reduce` (one segment at a time).
    """
    _check_inputs(x, ptr, combine, empty, validate)
    path = resolve_backend(x, ptr)
    record_path("tree_reduce", path)
    if path == "reference":
        return reference.tree_reduce(x, ptr, combine, empty)
    if schedule is None:
        schedule = tree_reduce_schedule(ptr, validate=False)
    elif schedule.num_segments != ptr.numel() - 1:
        raise ValueError(f"schedule was built for {schedule.num_segments} segments but ptr has "
                         f"{ptr.numel() - 1}; build it with tree_reduce_schedule(ptr)")
    return run_schedule(x, schedule, combine, empty)
