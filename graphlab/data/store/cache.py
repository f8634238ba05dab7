"""A hot-node feature cache in memory under a byte budget (DiskGNN's in-memory cache level).

The nodes with the highest score (how often the epoch's pre-sampled batches use them, or their degree when the
batches are not known in advance) are kept in RAM, as many as fit in the budget:

.. math::
    H = \\operatorname{top}_{\\lfloor b / r \\rfloor}\\{v : s_v > 0\\} \\text{ by } s_v,

with :math:`b` the budget in bytes and :math:`r` the bytes of one row. A lookup maps global ids to cache slots
through a dense ``[N]`` table (``-1`` for a miss), so serving a batch is two vectorised index operations.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


class HotNodeCache:
    """Rows of the highest-scoring nodes, in memory.

    Args:
        num_nodes: rows of the cached tensor.
        row_shape: shape of one row (``x.shape[1:]``).
        dtype: the tensor's dtype.
        budget_bytes: bytes of rows the cache may hold (the slot table, 4 bytes per node, is extra).
    """

    def __init__(self, num_nodes: int, row_shape: Sequence[int], dtype: torch.dtype, budget_bytes: int) -> None:
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}")
        self.num_nodes, self.row_shape, self.dtype = num_nodes, tuple(row_shape), dtype
        self.row_bytes = max(1, int(torch.Size(self.row_shape).numel()) * torch.empty((), dtype=dtype).element_size())
        self.capacity = min(num_nodes, budget_bytes // self.row_bytes)
        self.slot = torch.full((num_nodes,), -1, dtype=torch.int32)
        self.ids = torch.empty(0, dtype=torch.long)
        self.rows = torch.empty((0, *self.row_shape), dtype=dtype)

    @property
    def nbytes(self) -> int:
        return self.rows.numel() * self.rows.element_size()

    def select(self, score: Tensor) -> Tensor:
        """The sorted ids to cache: the ``capacity`` highest ``score > 0`` (ties to the lower id)."""
        if score.shape != (self.num_nodes,):
            raise ValueError(f"score must have one entry per node ({self.num_nodes}), got {list(score.shape)}")
        candidates = int((score > 0).sum())
        k = min(self.capacity, candidates)
        if k == 0:
            return torch.empty(0, dtype=torch.long)
        order = torch.sort(score.to(torch.float64), descending=True, stable=True).indices[:k]
        return torch.sort(order).values

    def allocate(self, ids: Tensor) -> None:
        """Reserve slots for ``ids`` (sorted, unique); fill them with :meth:`fill`."""
        self.slot.fill_(-1)
        self.ids = ids
        self.slot[ids] = torch.arange(ids.numel(), dtype=torch.int32)
        self.rows = torch.empty((ids.numel(), *self.row_shape), dtype=self.dtype)

    def fill(self, ids: Tensor, rows: Tensor) -> None:
        """Copy ``rows`` of ``ids`` (all allocated) into their slots."""
        self.rows[self.slot[ids].long()] = rows

    def lookup(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        """``(hit positions in n_id, their slots)``."""
        slot = self.slot[n_id]
        hit = (slot >= 0).nonzero().view(-1)
        return hit, slot[hit].long()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.ids.numel()} of {self.num_nodes} rows, "
                f"{self.nbytes / 2**20:.1f} MiB)")
