r"""Models of the 2nd-minimum benchmarks (:mod:`graphlab.data.multiset`): encoder, one aggregation, decoder.

Both take the aggregation under test as a module (any ``torch_geometric.nn.aggr.Aggregation``, given in a config
by ``class_path``: ``graphlab.nn.aggr.LCMAggregation``, ``graphlab.nn.aggr.RecurrentAggregation``, PyG's
``SumAggregation`` / ``MaxAggregation`` / ``GRUAggregation``, ...), as in PyG's ``examples/lcm_aggr_2nd_min.py``
and the LCM paper (Ong & Veličković, LoG 2022):

.. math::
    \mathbf{e}_v = \sum_{k=1}^{b} \mathbf{E}_k[\beta_k(x_v)], \qquad
    \mathbf{h}_v = \mathrm{GELU}(\mathbf{W}_1 \mathbf{e}_v + \mathbf{b}_1), \qquad
    \mathbf{z}_S = \bigoplus_{v \in S} \mathbf{h}_v, \qquad
    \hat{\mathbf{y}}_S = \mathbf{W}_3\, \mathrm{GELU}(\mathbf{W}_2 \mathbf{z}_S + \mathbf{b}_2) + \mathbf{b}_3,

with :math:`\beta_k(x)` the :math:`k`-th bit of :math:`x`, :math:`\mathbf{E}_k \in \mathbb{R}^{2 \times d}` one
learned embedding per bit position, :math:`\bigoplus` the aggregation and :math:`\hat{\mathbf{y}}_S` one logit per
bit of the answer. :class:`MultisetModel` aggregates each set :math:`S` of a batch (``batch`` vector);
:class:`NeighbourhoodModel` aggregates each node's in-neighbours, :math:`S = \{u : (u, v) \in E\}`.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.aggr import Aggregation

__all__ = ["BitEmbedding", "MultisetModel", "NeighbourhoodModel"]


class BitEmbedding(nn.Module):
    r"""Sum of one learned embedding per bit position: :math:`\mathbf{e} = \sum_k \mathbf{E}_k[\beta_k]`.

    Args:
        num_bits: bits per integer :math:`b`.
        channels: embedding width :math:`d`.

    Shapes:
        input ``[N, b]`` 0/1 integers (most significant first); output ``[N, d]``.
    """

    def __init__(self, num_bits: int, channels: int) -> None:
        super().__init__()
        self.num_bits, self.channels = num_bits, channels
        self.table = nn.Embedding(2 * num_bits, channels)  # row 2k + bit: E_k[bit]
        self.register_buffer("offset", 2 * torch.arange(num_bits), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.table.reset_parameters()

    def forward(self, bits: Tensor) -> Tensor:
        if bits.dim() != 2 or bits.size(1) != self.num_bits:
            raise ValueError(f"BitEmbedding expects bits of shape [N, {self.num_bits}], got {tuple(bits.shape)}; "
                             "feed each integer as its bits (graphlab.data.multiset.int_to_bits)")
        if bits.is_floating_point() and not bool(((bits == 0) | (bits == 1)).all()):
            raise ValueError("BitEmbedding expects 0/1 bits, got other values")
        return self.table(bits.long() + self.offset).sum(dim=1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.num_bits}, {self.channels})"


class _SetEncoderDecoder(nn.Module):
    """Shared parts: bit encoder + linear/GELU, the aggregation, and the decoder MLP."""

    def __init__(self, in_channels: int, out_channels: int, aggr: Aggregation, hidden_channels: int,
                 dropout: float) -> None:
        super().__init__()
        if not isinstance(aggr, Aggregation):
            raise TypeError(f"aggr must be a torch_geometric.nn.aggr.Aggregation (e.g. class_path: "
                            f"graphlab.nn.aggr.LCMAggregation), got {type(aggr).__name__}")
        if hidden_channels < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"need hidden_channels >= 1 and 0 <= dropout < 1, got {hidden_channels} and {dropout}")
        self.in_channels, self.out_channels, self.hidden_channels, self.dropout = \
            in_channels, out_channels, hidden_channels, dropout
        self.embed = BitEmbedding(in_channels, hidden_channels)
        self.encoder = nn.Linear(hidden_channels, hidden_channels)
        self.aggr = aggr
        self.decoder = nn.Sequential(nn.Linear(hidden_channels, hidden_channels), nn.Dropout(dropout), nn.GELU(),
                                     nn.Linear(hidden_channels, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in (self.embed, self.encoder, self.aggr, self.decoder[0], self.decoder[3]):
            module.reset_parameters()

    def encode(self, x: Tensor) -> Tensor:
        h = self.encoder(self.embed(x))
        return F.gelu(F.dropout(h, p=self.dropout, training=self.training))

    def decode(self, z: Tensor) -> Tensor:
        if z.size(-1) != self.hidden_channels:
            raise ValueError(f"{type(self.aggr).__name__} returned {z.size(-1)} features per set but the decoder "
                             f"takes hidden_channels={self.hidden_channels}: set the aggregation's out_channels (and "
                             f"in_channels) to {self.hidden_channels}")
        return self.decoder(z)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, aggr={self.aggr}, "
                f"hidden_channels={self.hidden_channels})")


class MultisetModel(_SetEncoderDecoder):
    r"""Encoder, aggregation over each multiset, decoder (see :mod:`graphlab.models.multiset` for the equations).

    Args:
        in_channels: bits per integer (the DataModule's ``num_features``).
        out_channels: output logits (the bits of the answer, ``num_outputs``).
        aggr: the aggregation :math:`\bigoplus` over a set; its input and output width must be ``hidden_channels``.
        hidden_channels: width :math:`d` (128 in PyG's example).
        dropout: dropout after the encoder's linear layer and in the decoder.

    Shapes:
        input ``x`` ``[N, b]`` bits, ``edge_index`` (ignored: a set has no edges), ``batch`` ``[N]`` sorted set
        ids (``None``: one set); output ``[B, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, aggr: Aggregation, hidden_channels: int = 128,
                 dropout: float = 0.0) -> None:
        super().__init__(in_channels, out_channels, aggr, hidden_channels, dropout)

    def forward(self, x: Tensor, edge_index: Optional[Tensor] = None, *, batch: Optional[Tensor] = None) -> Tensor:
        if batch is None:
            batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        num_sets = int(batch.max()) + 1 if batch.numel() else 0
        return self.decode(self.aggr(self.encode(x), index=batch, dim_size=num_sets))


class NeighbourhoodModel(_SetEncoderDecoder):
    r"""Encoder, one message-passing step aggregating each node's in-neighbours, decoder (node level).

    :math:`\mathbf{z}_v = \bigoplus_{u : (u, v) \in E} \mathbf{h}_u`; the node's own state is not used (the
    2nd-minimum graph task asks about the neighbours only). The edges are sorted by target before aggregating
    when they are not already (recurrent and LCM aggregators need each neighbourhood's rows consecutive).

    Args: as :class:`MultisetModel`.

    Shapes:
        input ``x`` ``[N, b]`` bits, ``edge_index`` ``[2, E]``; output ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, aggr: Aggregation, hidden_channels: int = 128,
                 dropout: float = 0.0) -> None:
        super().__init__(in_channels, out_channels, aggr, hidden_channels, dropout)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        dst = edge_index[1]
        if dst.numel() > 1 and not bool((dst[1:] >= dst[:-1]).all()):
            edge_index = edge_index[:, torch.sort(dst, stable=True).indices]
        h = self.encode(x)
        messages = h.index_select(0, edge_index[0])  # message u -> v is h_u
        return self.decode(self.aggr(messages, index=edge_index[1], dim_size=x.size(0)))
