r"""Baseline message-passing networks: GCN, GraphSAGE, GIN/GINE, and a link predictor.

All of them aggregate through graphlab's fused convolutions (:mod:`graphlab.nn.conv`),
which never materialise one row per edge. Every model takes ``in_channels`` and
``out_channels`` first (the CLI links them from the DataModule) and works at node level
(``pool=None``) or graph level (``pool`` = ``sum`` / ``mean`` / ``max``).

References:
    Kipf & Welling, *Semi-Supervised Classification with Graph Convolutional Networks*, ICLR 2017.
    Hamilton, Ying & Leskovec, *Inductive Representation Learning on Large Graphs*, NeurIPS 2017.
    Xu, Hu, Leskovec & Jegelka, *How Powerful are Graph Neural Networks?*, ICLR 2019.
    Hu et al., *Strategies for Pre-training Graph Neural Networks* (GINE), ICLR 2020.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Literal, Optional

import torch
import torch.nn.functional as F
from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool
from torch_geometric.nn.aggr import Aggregation
from torch_geometric.nn.conv import GINEConv

from graphlab.nn.conv import GCNConv, GINConv, SAGEConv
from graphlab.nn.dropout import Dropout

Pool = Optional[Literal["sum", "mean", "max"]]
NodeEncoder = Literal["linear", "atom", "none"]
_POOLS = {"sum": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}


def _node_encoder(kind: NodeEncoder, in_channels: int, hidden_channels: int) -> nn.Module:
    """``linear`` for real features, ``atom`` for OGB's categorical atom features."""
    if kind == "atom":
        return AtomEncoder(hidden_channels)
    if kind == "linear":
        return nn.Linear(in_channels, hidden_channels)
    return nn.Identity()


def _mlp(in_channels: int, hidden_channels: int, out_channels: int, batch_norm: bool = True) -> nn.Sequential:
    norm: nn.Module = nn.BatchNorm1d(hidden_channels) if batch_norm else nn.Identity()
    return nn.Sequential(nn.Linear(in_channels, hidden_channels), norm, nn.ReLU(), nn.Linear(hidden_channels, out_channels))


class _Readout(nn.Module):
    """Optional graph pooling followed by a linear head."""

    def __init__(self, hidden_channels: int, out_channels: int, pool: Pool) -> None:
        super().__init__()
        if pool is not None and pool not in _POOLS:
            raise ValueError(f"pool must be one of {sorted(_POOLS)} or None, got {pool!r}")
        self.pool = pool
        self.head = nn.Linear(hidden_channels, out_channels)

    def forward(self, h: Tensor, batch: Optional[Tensor]) -> Tensor:
        if self.pool is not None:
            if batch is None:
                batch = h.new_zeros(h.size(0), dtype=torch.long)
            h = _POOLS[self.pool](h, batch)
        return self.head(h)


class _ConvStack(nn.Module):
    """``num_layers`` convolutions with ReLU between them, then an optional pooled readout."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, num_layers: int,
                 dropout: float, pool: Pool, make_conv: Callable[[int, int], nn.Module],
                 normalize: bool = False) -> None:
        super().__init__()
        _check_layers(num_layers)
        self.in_channels, self.out_channels, self.dropout, self.pool = in_channels, out_channels, dropout, pool
        self.normalize = normalize
        self.feature_dropout = Dropout(dropout)  # graphlab's multithreaded Philox dropout (graphlab.ops.dropout)
        dims = [in_channels] + [hidden_channels] * (num_layers - 1)
        last = out_channels if pool is None else hidden_channels
        self.convs = nn.ModuleList(make_conv(a, b) for a, b in zip(dims, dims[1:] + [last]))
        self.readout = _Readout(hidden_channels, out_channels, pool) if pool is not None else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        if self.readout is not None:
            self.readout.head.reset_parameters()

    def _forward(self, x: Tensor, edge_index: Tensor, batch: Optional[Tensor], *conv_args: Optional[Tensor]) -> Tensor:
        for i, conv in enumerate(self.convs):
            x = self.feature_dropout(x)
            x = conv(x, edge_index, *conv_args)
            if i < len(self.convs) - 1 or self.readout is not None:
                x = F.relu(x)
                if self.normalize:
                    x = F.normalize(x, dim=-1)
        return x if self.readout is None else self.readout(x, batch)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, num_layers={len(self.convs)}, pool={self.pool})"


class GCN(_ConvStack):
    r"""Graph Convolutional Network (Kipf & Welling, 2017).

    .. math::
        H^{(l+1)} = \sigma\big(\hat D^{-1/2} \hat A \hat D^{-1/2} H^{(l)} W^{(l)}\big),
        \qquad \hat A = A + I.

    Args:
        in_channels: input feature width.
        out_channels: classes / tasks.
        hidden_channels: width of the hidden layers.
        num_layers: number of graph convolutions (the last one outputs ``out_channels``
            at node level; at graph level a linear head follows the pooling).
        dropout: dropout before every convolution.
        pool: ``None`` for node-level output, else the graph readout.
        cached: cache the normalised adjacency (transductive full-graph training only).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 64,
        num_layers: int = 2,
        dropout: float = 0.5,
        pool: Pool = None,
        cached: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, dropout, pool,
                         lambda a, b: GCNConv(a, b, cached=cached))

    def forward(self, x: Tensor, edge_index: Tensor, *, edge_weight: Optional[Tensor] = None,
                batch: Optional[Tensor] = None) -> Tensor:
        """``edge_weight`` (keyword-only, like ``batch``) is cast to the dtype of ``x``: the model computes in one
        dtype, its parameters' (a float32 GCN given float64 weights computes and returns float32)."""
        if edge_weight is not None and edge_weight.is_floating_point():
            edge_weight = edge_weight.to(x.dtype)
        return self._forward(x, edge_index, batch, edge_weight)


class GraphSAGE(_ConvStack):
    r"""GraphSAGE with mean aggregation (Hamilton et al., 2017).

    .. math::
        h_v^{(l+1)} = \sigma\Big(W_1 h_v^{(l)} + W_2 \tfrac{1}{|N(v)|}\textstyle\sum_{u \in N(v)} h_u^{(l)}\Big)

    Args:
        in_channels, out_channels, hidden_channels, num_layers, dropout, pool: as in :class:`GCN`.
        aggr: neighbourhood aggregation, ``mean`` (paper default), ``max`` or ``sum``.
        normalize: L2-normalise every hidden representation (paper's option).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 64,
        num_layers: int = 2,
        dropout: float = 0.5,
        pool: Pool = None,
        aggr: Literal["mean", "max", "sum"] = "mean",
        normalize: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, dropout, pool,
                         lambda a, b: SAGEConv(a, b, aggr=aggr), normalize=normalize)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Optional[Tensor] = None) -> Tensor:
        return self._forward(x, edge_index, batch)


class GIN(nn.Module):
    r"""Graph Isomorphism Network (Xu et al., 2019), GINE with edge features (Hu et al., 2020).

    .. math::
        h_v^{(l+1)} = \mathrm{MLP}^{(l)}\Big((1+\epsilon^{(l)}) h_v^{(l)} + \textstyle\sum_{u \in N(v)} h_u^{(l)}\Big)
        \quad\text{(GIN)},\qquad
        \ldots + \textstyle\sum_{u \in N(v)} \mathrm{ReLU}(h_u^{(l)} + e_{uv}^{(l)}) \quad\text{(GINE)}.

    Each layer is followed by batch norm, ReLU and dropout; the readout sums (``pool``)
    the last layer's node states and applies a linear head.

    Args:
        in_channels, out_channels, hidden_channels, num_layers, dropout, pool: as in :class:`GCN`.
        node_encoder: ``linear`` (real features) or ``atom`` (OGB categorical atoms).
        edge_encoder: ``none`` (GIN), ``bond`` (GINE on OGB categorical bonds) or ``linear``
            (GINE on real edge features of width ``edge_dim``).
        edge_dim: edge feature width for ``edge_encoder="linear"``.
        train_eps: learn :math:`\epsilon` (GIN-:math:`\epsilon`).
        aggr: the neighbourhood aggregation replacing :math:`\sum_{u \in N(v)}`: ``None`` (default) sums, on
            graphlab's fused path; any ``torch_geometric.nn.aggr.Aggregation`` (e.g.
            ``graphlab.nn.aggr.LCMAggregation(hidden, hidden)``, whose width must be ``hidden_channels``) is used
            instead, one independent copy per layer (parameters re-initialised for each). The edges are then sorted
            by target in ``forward`` (order-dependent aggregators need each neighbourhood's rows consecutive).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int = 64,
        num_layers: int = 5,
        dropout: float = 0.5,
        pool: Pool = "sum",
        node_encoder: NodeEncoder = "linear",
        edge_encoder: Literal["none", "bond", "linear"] = "none",
        edge_dim: int = 0,
        train_eps: bool = False,
        aggr: Optional[Aggregation] = None,
    ) -> None:
        super().__init__()
        _check_layers(num_layers)
        if aggr is not None and not isinstance(aggr, Aggregation):
            raise TypeError(f"aggr must be None (sum) or a torch_geometric.nn.aggr.Aggregation, got "
                            f"{type(aggr).__name__}")
        self.sorts_edges = aggr is not None  # a custom aggregation needs each neighbourhood's rows consecutive
        if edge_encoder == "linear" and edge_dim < 1:
            raise ValueError("edge_encoder='linear' needs edge_dim >= 1 (the edge feature width)")
        self.in_channels, self.out_channels, self.dropout, self.pool = in_channels, out_channels, dropout, pool
        self.edge_encoder_kind = edge_encoder
        self.feature_dropout = Dropout(dropout)  # graphlab's multithreaded Philox dropout (graphlab.ops.dropout)
        self.encoder = _node_encoder(node_encoder, in_channels, hidden_channels)
        aggrs = [aggr if i == 0 or aggr is None else copy.deepcopy(aggr) for i in range(num_layers)]
        self.convs = nn.ModuleList(self._conv(hidden_channels, train_eps, layer_aggr) for layer_aggr in aggrs)
        self.edge_encoders = nn.ModuleList(
            self._edge_encoder(edge_encoder, edge_dim, hidden_channels) for _ in range(num_layers)
        ) if edge_encoder != "none" else None
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden_channels) for _ in range(num_layers))
        self.readout = _Readout(hidden_channels, out_channels, pool)
        self.reset_parameters()

    def _conv(self, hidden_channels: int, train_eps: bool, aggr: Optional[Aggregation]) -> nn.Module:
        """One GIN/GINE layer; ``aggr`` ``None`` sums (fused path). ``reset_parameters()`` later re-initialises
        each layer's copy of a custom aggregation independently."""
        mlp = _mlp(hidden_channels, 2 * hidden_channels, hidden_channels)
        reduce: Any = "add" if aggr is None else aggr
        if self.edge_encoder_kind == "none":
            return GINConv(mlp, train_eps=train_eps, aggr=reduce)
        return GINEConv(mlp, train_eps=train_eps, aggr=reduce)

    def _dtype(self) -> torch.dtype:
        return next(p.dtype for p in self.parameters() if p.is_floating_point())

    @staticmethod
    def _edge_encoder(kind: str, edge_dim: int, hidden_channels: int) -> nn.Module:
        return BondEncoder(hidden_channels) if kind == "bond" else nn.Linear(edge_dim, hidden_channels)

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, *, edge_attr: Optional[Tensor] = None,
                batch: Optional[Tensor] = None) -> Tensor:
        """``edge_attr`` and ``batch`` are keyword-only. Real features are cast to the dtype of the model's
        parameters (integer or float64 features work with a float32 model), categorical ones to int64; so are
        real edge features (``edge_encoder="linear"``)."""
        h = self.encoder(x.long() if isinstance(self.encoder, AtomEncoder) else x.to(self._dtype()))
        if self.sorts_edges:
            edge_index, edge_attr = _sorted_by_target(edge_index, edge_attr)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            if self.edge_encoders is not None:
                if edge_attr is None:
                    raise ValueError("this GIN uses edge features (GINE) but the batch has no `edge_attr`")
                if self.edge_encoder_kind == "linear":
                    edge_attr = edge_attr.to(h.dtype)
                h = conv(h, edge_index, self.edge_encoders[i](edge_attr))
            else:
                h = conv(h, edge_index)
            h = self.feature_dropout(F.relu(norm(h)))
        return self.readout(h, batch)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, num_layers={len(self.convs)}, pool={self.pool})"


class LinkGNN(nn.Module):
    r"""GNN encoder plus a pair decoder for link prediction.

    .. math::
        s(u, v) = \mathrm{dec}(z_u, z_v), \qquad Z = \mathrm{GNN}(X, A),

    with ``dec`` the inner product :math:`z_u^\top z_v` or an MLP on :math:`z_u \odot z_v`.

    Args:
        in_channels: input feature width.
        out_channels: width of the scores (1: one logit per pair).
        hidden_channels: embedding width.
        num_layers: encoder layers.
        encoder: ``gcn`` or ``sage``.
        decoder: ``dot`` or ``mlp``.
        dropout: encoder dropout.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 1,
        hidden_channels: int = 64,
        num_layers: int = 2,
        encoder: Literal["gcn", "sage"] = "gcn",
        decoder: Literal["dot", "mlp"] = "mlp",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if out_channels != 1:
            raise ValueError(f"LinkGNN scores each pair with one logit: out_channels must be 1, got {out_channels}")
        cls = GCN if encoder == "gcn" else GraphSAGE
        self.encoder = cls(in_channels, hidden_channels, hidden_channels, num_layers, dropout)
        self.decoder_kind = decoder
        self.decoder = _mlp(hidden_channels, hidden_channels, 1, batch_norm=False) if decoder == "mlp" else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        if self.decoder is not None:
            for layer in self.decoder:
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()

    def encode(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.encoder(x, edge_index)

    def decode(self, z: Tensor, edge_label_index: Tensor, *, graph: Optional[object] = None) -> Tensor:
        """Logits ``[P]`` of the pairs ``edge_label_index`` ``[2, P]`` from node states ``z``; ``graph`` (the batch,
        passed by :class:`~graphlab.tasks.LinkPrediction`) is unused: this decoder reads only the two end nodes."""
        src, dst = z[edge_label_index[0]], z[edge_label_index[1]]
        if self.decoder is None:
            return (src * dst).sum(dim=-1)
        return self.decoder(src * dst).view(-1)

    def forward(self, x: Tensor, edge_index: Tensor, edge_label_index: Tensor) -> Tensor:
        return self.decode(self.encode(x, edge_index), edge_label_index)


def _sorted_by_target(edge_index: Tensor, edge_attr: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor]]:
    """The edges (and their features) sorted by target node, stably; unchanged when already sorted."""
    dst = edge_index[1]
    if dst.numel() < 2 or bool((dst[1:] >= dst[:-1]).all()):
        return edge_index, edge_attr
    order = torch.sort(dst, stable=True).indices
    return edge_index[:, order], (edge_attr[order] if edge_attr is not None else None)


def _check_layers(num_layers: int) -> None:
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
