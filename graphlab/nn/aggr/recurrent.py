r"""Recurrent (GRU / LSTM) aggregation over each neighbourhood, read at its true last element."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence
from torch_geometric.nn.aggr import Aggregation

from graphlab.nn.aggr._segments import check_rows, segment_ptr

Cell = Literal["gru", "lstm"]


class RecurrentAggregation(Aggregation):
    r"""A recurrent network run over each neighbourhood: the GRU set aggregator of Cohen-Karlik, Ben David &
    Globerson (`"Regularizing Towards Permutation Invariance in Recurrent Models" <https://arxiv.org/abs/2010.13055>`_,
    NeurIPS 2020) and the LSTM aggregator of GraphSAGE (Hamilton et al., NeurIPS 2017); the baseline that Learnable
    Commutative Monoids improve on.

    For neighbourhood :math:`\mathcal{N}(i) = (j_1, \dots, j_c)` in some order :math:`\pi`:

    .. math::
        \mathbf{s}_0 = \mathbf{0}, \qquad \mathbf{s}_t = \mathrm{RNN}(\mathbf{x}_{j_{\pi(t)}}, \mathbf{s}_{t-1}),
        \qquad \mathbf{x}_i' = \mathbf{h}_c,

    the hidden state after the neighbourhood's **true last** element (sequences are packed by length; no padding
    is ever read, unlike PyG's ``GRUAggregation``). In training :math:`\pi` is a fresh random order within every
    neighbourhood on each call (the permutation-sampling of the papers); in eval mode it is the input order. An
    empty neighbourhood gives zeros. Work and memory are :math:`O(E \cdot F)`; the depth is the largest degree.

    Args:
        in_channels: input features.
        out_channels: hidden size (output features).
        cell: ``"gru"`` (default) or ``"lstm"`` (the output is the LSTM's hidden state :math:`\mathbf{h}_c`).

    Shapes:
        - **input:** ``x`` :math:`(E, F_{in})`, ``index`` :math:`(E)` sorted or ``ptr`` :math:`(N + 1)`
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, cell: Cell = "gru") -> None:
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.cell = cell
        rnn = torch.nn.GRU if cell == "gru" else torch.nn.LSTM
        self.rnn = rnn(in_channels, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.rnn.reset_parameters()

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        check_rows(type(self).__name__, x, dim, self.in_channels)
        ptr = segment_ptr(type(self).__name__, x, index, ptr, dim_size)
        if self.training:
            x = x.index_select(0, shuffle_within_segments(ptr))
        counts = ptr[1:] - ptr[:-1]
        nonempty = torch.nonzero(counts).flatten()
        out = x.new_zeros((counts.numel(), self.out_channels))
        if nonempty.numel() == 0:
            return out
        _, state = self.rnn(pack_segments(x, ptr, nonempty))
        last = state[0] if self.cell == "lstm" else state  # [1, S_nonempty, F_out], in nonempty order
        return out.index_copy(0, nonempty, last[0])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, cell={self.cell!r})"


def shuffle_within_segments(ptr: Tensor) -> Tensor:
    """A permutation of the rows that keeps every segment in place and orders each one randomly: a stable sort by
    segment of a uniformly random permutation."""
    segment = torch.repeat_interleave(torch.arange(ptr.numel() - 1, device=ptr.device), ptr[1:] - ptr[:-1])
    perm = torch.randperm(segment.numel(), device=ptr.device)
    return perm.index_select(0, torch.sort(segment.index_select(0, perm), stable=True).indices)


def pack_segments(x: Tensor, ptr: Tensor, nonempty: Tensor) -> PackedSequence:
    """The segments ``nonempty`` of ``x`` as a :class:`PackedSequence` built straight from the rows (``[E, F]``
    data, never a padded ``[S, max_deg, F]`` tensor). Packed step ``t`` holds element ``t`` of every sequence
    longer than ``t``, sequences sorted by decreasing length."""
    starts, lengths = ptr[:-1].index_select(0, nonempty), (ptr[1:] - ptr[:-1]).index_select(0, nonempty)
    order = torch.sort(lengths, descending=True, stable=True).indices  # sorted position -> sequence
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=order.device)  # sequence -> sorted position
    sequence = torch.repeat_interleave(torch.arange(lengths.numel(), device=x.device), lengths)
    step = torch.arange(sequence.numel(), device=x.device) - (torch.cumsum(lengths, 0) - lengths)[sequence]
    batch_sizes = torch.bincount(step)  # sequences longer than t, for every step t
    step_offset = torch.cumsum(batch_sizes, 0) - batch_sizes
    packed_position = step_offset[step] + rank[sequence]
    source = torch.empty_like(packed_position)
    source[packed_position] = starts[sequence] + step
    return PackedSequence(x.index_select(0, source), batch_sizes.cpu(), order, rank)
