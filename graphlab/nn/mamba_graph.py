r"""Graph layers around the Mamba block: GatedGCN, the Graph-Mamba (GPS-style) layer and the GMN layer.

* :class:`GatedGCNConv`: the residual gated graph convolution of Bresson & Laurent (2017, "Residual Gated Graph
  ConvNets") in the form of Dwivedi et al.'s benchmarking-gnns and GraphGPS (edge gates, batch norm, ReLU,
  dropout, residual on nodes and edges); the local model of both graph Mambas.
* :class:`GraphMambaLayer`: Wang et al. (2024, "Graph-Mamba", bowang-lab/Graph-Mamba ``gps_layer.py``): GatedGCN in
  parallel with a Mamba over node sequences (the caller orders the nodes, e.g. by degree), outputs averaged over
  several orderings, then an FFN.
* :class:`GMNLayer`: Behrouz & Hashemi (2024, "Graph Mamba: Towards Learning on Graphs with State Space Models"):
  a bidirectional Mamba over each node's sequence of neighbourhood tokens (the caller samples them).

This module imports only :mod:`graphlab.ops` from graphlab; orderings and tokens come in as tensors (built by
:mod:`graphlab.transforms.tokens` in :mod:`graphlab.models.mamba`).
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import to_dense_batch

from graphlab.nn.mamba import BiMamba, Mamba
from graphlab.ops import cached_csr, gather_reduce, segment_reduce

__all__ = ["GMNLayer", "GatedGCNConv", "GraphMambaLayer", "gated_gcn_reference", "sequence_mixing"]

Ordering = tuple[Tensor, Tensor, int]  # (perm, sequence, num_sequences), as graphlab.transforms.NodeSequences


def gated_gcn_reference(h: Tensor, edge_index: Tensor, A: nn.Linear, B: nn.Linear, C: Optional[nn.Linear],
                        D: nn.Linear, E: nn.Linear, e: Optional[Tensor] = None,
                        eps: float = 1e-6) -> tuple[Tensor, Tensor]:
    r"""The GatedGCN aggregation written edge by edge (no CSR, no fused op): the spec :class:`GatedGCNConv` is
    tested against. Returns :math:`(h', \hat e)` before normalisation (see :class:`GatedGCNConv`)."""
    j, i = edge_index  # j -> i: source j, target i
    e_hat = D(h)[i] + E(h)[j] + (C(e) if C is not None and e is not None else 0.0)
    sigma = torch.sigmoid(e_hat)
    num = torch.zeros_like(h).index_add_(0, i, sigma * B(h)[j])
    den = torch.zeros_like(h).index_add_(0, i, sigma)
    return A(h) + num / (den + eps), e_hat


class GatedGCNConv(nn.Module):
    r"""Residual gated graph convolution (Bresson & Laurent 2017; benchmarking-gnns / GraphGPS form).

    .. math::
        \hat e_{ij} = D h_i + E h_j + C e_{ij}, \qquad \sigma_{ij} = \mathrm{sigmoid}(\hat e_{ij}),

    .. math::
        h'_i = A h_i + \frac{\sum_{j \to i} \sigma_{ij} \odot B h_j}{\sum_{j \to i} \sigma_{ij} + \epsilon},

    .. math::
        h_i \leftarrow h_i + \mathrm{Dropout}(\mathrm{ReLU}(\mathrm{BN}(h'_i))), \qquad
        e_{ij} \leftarrow e_{ij} + \mathrm{Dropout}(\mathrm{ReLU}(\mathrm{BN}(\hat e_{ij}))).

    :math:`i` is the target of edge :math:`j \to i`. Without edge states (``edge_attr=None``) the :math:`C e_{ij}`
    term is absent and no edge output is made (node-level sets without edge features: it saves the ``[E, F]``
    edge-state update, the largest tensor on dense graphs such as tolokers). The two sums run as
    :func:`graphlab.ops.segment_reduce` over the edges in CSR order (rows = targets).

    Args:
        channels: :math:`F` (node and edge states).
        dropout: dropout after the ReLU.
        batch_norm: BN before the ReLU (else identity).
        residual: add the input back.
        eps: :math:`\epsilon` of the normalised sum.
        edge_states: keep and update edge states (:math:`C` and the edge BN exist); ``False`` for graphs without
            edge features.

    Shapes:
        x ``[N, F]``, edge_index ``[2, E]``, edge_attr ``[E, F]`` or ``None`` -> ``([N, F], [E, F] or None)``.
    """

    def __init__(self, channels: int, dropout: float = 0.0, batch_norm: bool = True, residual: bool = True,
                 eps: float = 1e-6, edge_states: bool = True) -> None:
        super().__init__()
        self.channels, self.dropout, self.residual, self.eps = channels, dropout, residual, eps
        self.edge_states = edge_states
        self.A, self.B, self.D, self.E = (nn.Linear(channels, channels) for _ in range(4))
        self.C = nn.Linear(channels, channels) if edge_states else None
        self.bn_node = nn.BatchNorm1d(channels) if batch_norm else nn.Identity()
        self.bn_edge = (nn.BatchNorm1d(channels) if batch_norm else nn.Identity()) if edge_states else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in (self.A, self.B, self.C, self.D, self.E, self.bn_node, self.bn_edge):
            if module is not None and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def aggregate(self, h: Tensor, edge_index: Tensor, e: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """:math:`(h', \\hat e)` (``\\hat e`` in the order of ``edge_index``), through the CSR and segment sums."""
        n = h.size(0)
        rowptr, col, perm = cached_csr(edge_index, n)
        row = torch.repeat_interleave(torch.arange(n, device=h.device), rowptr[1:] - rowptr[:-1])
        e_hat = self.D(h).index_select(0, row) + self.E(h).index_select(0, col)  # CSR order
        if e is not None and self.C is not None:
            e_hat = e_hat + self.C(e).index_select(0, perm)
        sigma = torch.sigmoid(e_hat)
        num = segment_reduce(sigma * self.B(h).index_select(0, col), rowptr, "sum", validate=False)
        den = segment_reduce(sigma, rowptr, "sum", validate=False)
        out_e = torch.empty_like(e_hat).index_copy_(0, perm, e_hat)  # back to edge_index order
        return self.A(h) + num / (den + self.eps), out_e

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Optional[Tensor] = None
                ) -> tuple[Tensor, Optional[Tensor]]:
        if edge_attr is not None and not self.edge_states:
            raise ValueError("this GatedGCNConv has no edge states (edge_states=False) but got edge_attr; build it "
                             "with edge_states=True or pass edge_attr=None")
        if edge_attr is not None and edge_attr.shape != (edge_index.size(1), self.channels):
            raise ValueError(f"edge_attr must be [E, channels] = [{edge_index.size(1)}, {self.channels}], got "
                             f"{tuple(edge_attr.shape)}; encode edge features to the hidden width first")
        h, e_hat = self.aggregate(x, edge_index, edge_attr)
        h = F.dropout(F.relu(self.bn_node(h)), self.dropout, self.training)
        h = x + h if self.residual else h
        if edge_attr is None:
            return h, None
        e = F.dropout(F.relu(self.bn_edge(e_hat)), self.dropout, self.training)
        return h, (edge_attr + e if self.residual else e)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, dropout={self.dropout})"


def sequence_mixing(block: nn.Module, h: Tensor, ordering: Ordering) -> Tensor:
    r"""Run a sequence block over node sequences and put the outputs back in node order.

    .. math:: \mathrm{out}_{\pi(p)} = \mathrm{Block}\big(\mathrm{dense}(h_{\pi})\big)_{p}

    ``ordering = (perm, sequence, num_sequences)``: position ``p`` holds node ``perm[p]`` of sequence
    ``sequence[p]`` (non-decreasing). The nodes are packed with ``to_dense_batch`` (padding at the end of each
    sequence) and the valid lengths go to the block, so padding never reaches a valid position.
    """
    perm, sequence, num_sequences = ordering
    dense, mask = to_dense_batch(h.index_select(0, perm), sequence, batch_size=num_sequences)
    out = block(dense, mask.sum(1))[mask]
    return torch.empty_like(out).index_copy_(0, perm, out)


def _ffn(channels: int, ratio: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(channels, ratio * channels), nn.ReLU(), nn.Linear(ratio * channels, channels))


class GraphMambaLayer(nn.Module):
    r"""One Graph-Mamba layer (Wang et al. 2024; GPS layer with a Mamba global model, ``gps_layer.py``).

    .. math::
        h^{\mathrm{loc}} = \mathrm{BN}(\mathrm{GatedGCN}(h, e)), \qquad
        h^{\mathrm{glob}} = \mathrm{BN}\Big(h + \mathrm{Dropout}\big(\tfrac{1}{R}\textstyle\sum_{r=1}^{R}
            \pi_r^{-1}\,\mathrm{Mamba}(\pi_r h)\big)\Big),

    .. math::
        \tilde h = h^{\mathrm{loc}} + h^{\mathrm{glob}}, \qquad
        h \leftarrow \mathrm{BN}\big(\tilde h + \mathrm{Dropout}(W_2\, \mathrm{Dropout}(\mathrm{ReLU}(W_1 \tilde h)))\big),

    where :math:`\pi_r` are the node orderings (each a set of sequences; :func:`sequence_mixing`), one during
    training and ``R = 5`` averaged at evaluation in the official code. GatedGCN adds its own residual.

    Args:
        channels: hidden width :math:`F`.
        d_state, d_conv, expand: the Mamba block's (Graph-Mamba uses 16, 4 and **1**).
        dropout: dropout of the GatedGCN, the Mamba branch and the FFN.
        local: include the GatedGCN branch (``False``: Mamba only).
        ffn_ratio: FFN width :math:`/ F` (2 in GraphGPS).
        edge_states: the GatedGCN keeps edge states (graphs with edge features).

    Shapes:
        x ``[N, F]``, edge_index ``[2, E]``, orderings: a list of ``(perm [N], sequence [N], S)``,
        edge_attr ``[E, F]`` or ``None`` -> ``([N, F], edge_attr)``.
    """

    def __init__(self, channels: int, d_state: int = 16, d_conv: int = 4, expand: int = 1, dropout: float = 0.0,
                 local: bool = True, ffn_ratio: int = 2, edge_states: bool = False) -> None:
        super().__init__()
        self.channels, self.dropout = channels, dropout
        self.local = GatedGCNConv(channels, dropout, edge_states=edge_states) if local else None
        self.norm_local = nn.BatchNorm1d(channels) if local else None
        self.mamba = Mamba(channels, d_state=d_state, d_conv=d_conv, expand=expand)
        self.norm_global = nn.BatchNorm1d(channels)
        self.ffn = _ffn(channels, ffn_ratio)
        self.norm_ffn = nn.BatchNorm1d(channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in (self.local, self.norm_local, self.mamba, self.norm_global, self.norm_ffn, *self.ffn):
            if module is not None and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def global_mixing(self, h: Tensor, orderings: Sequence[Ordering]) -> Tensor:
        """:math:`\\frac1R \\sum_r \\pi_r^{-1} \\mathrm{Mamba}(\\pi_r h)`, node order restored."""
        if len(orderings) == 0:
            raise ValueError("orderings is empty: give at least one (perm, sequence, num_sequences)")
        return torch.stack([sequence_mixing(self.mamba, h, o) for o in orderings]).mean(0)

    def forward(self, x: Tensor, edge_index: Tensor, orderings: Sequence[Ordering],
                edge_attr: Optional[Tensor] = None) -> tuple[Tensor, Optional[Tensor]]:
        h = self.norm_global(x + F.dropout(self.global_mixing(x, orderings), self.dropout, self.training))
        if self.local is not None:
            h_local, edge_attr = self.local(x, edge_index, edge_attr)
            h = h + self.norm_local(h_local)
        ff = self.ffn[2](F.dropout(self.ffn[1](self.ffn[0](h)), self.dropout, self.training))
        return self.norm_ffn(h + F.dropout(ff, self.dropout, self.training)), edge_attr

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, local={self.local is not None}, "
                f"expand={self.mamba.expand})")


class GMNLayer(nn.Module):
    r"""One GMN layer (Behrouz & Hashemi 2024) over precomputed neighbourhood tokens.

    Token :math:`k` of node :math:`v` (node set :math:`T_k(v)`, walk length :math:`\hat m_k`) is encoded by pooling
    the local encoder's node states over its node set, plus a learned embedding of its walk length:

    .. math::
        x_{v,k} = \mathrm{Pool}_{u \in T_k(v)}\ \mathrm{MPNN}(h)_u + P_{\hat m_k}, \qquad
        y_v = \mathrm{Readout}_k\ \mathrm{BiMamba}(x_{v,1}, \dots, x_{v,K}),

    .. math::
        \tilde h_v = \mathrm{BN}(h_v + \mathrm{Dropout}(y_v)) \; [+\ \mathrm{BN}(\mathrm{MPNN}(h)_v)], \qquad
        h_v \leftarrow \mathrm{BN}(\tilde h_v + \mathrm{Dropout}(\mathrm{FFN}(\tilde h_v))).

    **Token encoders** (the paper's code was never released). ``token_encoder="subgraph"`` is the paper's design:
    the local MPNN (GatedGCN or GIN) runs on each token's *induced subgraph* :math:`G[T_k(v)]`, all :math:`N K`
    subgraphs at once as one disjoint union over token memberships (built by
    :func:`graphlab.transforms.token_subgraphs`), and :math:`\mathrm{Pool}` reduces each subgraph's member states.
    A token then sees its own structure (a triangle is not a path), also when every node state is equal.
    ``token_encoder="graph"`` (the default, "the cheaper option") runs the MPNN once on the whole graph and pools
    its states over each node set: one pass over :math:`N` nodes instead of :math:`\sum |T|` memberships, but
    a token sees its nodes' full neighbourhoods, not its induced edges, so with identical node states (regular
    graphs, constant features) it only counts its nodes. With edge states (``edge_states``) the subgraph encoder
    reads the input edge states of the induced edges and the layer passes them on unchanged (updated only by a
    ``parallel_mpnn`` branch, which runs on the whole graph). ``readout="mean"`` (default)
    averages the outputs of all positions; ``"last"`` reads the output at the node's own token (the last position,
    where the forward scan has read every neighbourhood) -- but there the backward scan has read only that token
    (its state starts at zero), so half of the bidirectional block does no mixing and its :math:`A` gets no
    gradient; "mean" lets both directions contribute their full context. ``parallel_mpnn`` adds the encoder's output as a
    GPS-style parallel branch.

    Args:
        channels: hidden width :math:`F`.
        num_hops: :math:`m + 1` (size of the walk-length embedding table).
        d_state, d_conv, expand: the Mamba blocks' (mamba-ssm defaults 16, 4, 2).
        dropout: dropout of the branches.
        local_encoder: ``"gatedgcn"``, ``"gin"`` or ``"none"`` (pool the raw states).
        token_pool: ``"mean"`` or ``"sum"`` over a token's nodes.
        readout: ``"last"`` or ``"mean"`` over the token sequence.
        parallel_mpnn: add the local encoder's output as a parallel branch.
        edge_states: the GatedGCN encoder keeps edge states (graphs with edge features).
        token_encoder: ``"graph"`` or ``"subgraph"`` (see above).

    Shapes:
        x ``[N, F]``, edge_index ``[2, E]``, token_rowptr ``[N K + 1]``, token_col ``[nnz]``, hops ``[K]``;
        with ``token_encoder="subgraph"`` also sub_edge_index ``[2, P]`` over the ``nnz`` memberships and
        sub_edge_id ``[P]`` into ``edge_index`` (:class:`graphlab.transforms.TokenSubgraphs`) -> ``[N, F]``.
    """

    def __init__(self, channels: int, num_hops: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dropout: float = 0.0, local_encoder: Literal["gatedgcn", "gin", "none"] = "gatedgcn",
                 token_pool: Literal["mean", "sum"] = "mean", readout: Literal["last", "mean"] = "mean",
                 parallel_mpnn: bool = False, ffn_ratio: int = 2, edge_states: bool = False,
                 token_encoder: Literal["graph", "subgraph"] = "graph") -> None:
        super().__init__()
        for name, value, allowed in (("local_encoder", local_encoder, ("gatedgcn", "gin", "none")),
                                     ("token_pool", token_pool, ("mean", "sum")), ("readout", readout, ("last", "mean")),
                                     ("token_encoder", token_encoder, ("graph", "subgraph"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if parallel_mpnn and local_encoder == "none":
            raise ValueError("parallel_mpnn needs a local encoder: set local_encoder to 'gatedgcn' or 'gin'")
        if token_encoder == "subgraph" and local_encoder == "none":
            raise ValueError("token_encoder='subgraph' runs the local encoder on each token's induced subgraph: set "
                             "local_encoder to 'gatedgcn' or 'gin'")
        self.token_encoder = token_encoder
        self.channels, self.num_hops, self.dropout = channels, num_hops, dropout
        self.local_encoder, self.token_pool, self.readout, self.parallel_mpnn = (local_encoder, token_pool, readout,
                                                                                 parallel_mpnn)
        self.gated = GatedGCNConv(channels, dropout, edge_states=edge_states) if local_encoder == "gatedgcn" else None
        self.gin = (nn.Sequential(nn.Linear(channels, channels), nn.BatchNorm1d(channels), nn.ReLU(),
                                  nn.Linear(channels, channels)) if local_encoder == "gin" else None)
        self.hop_embedding = nn.Embedding(num_hops, channels)
        self.bimamba = BiMamba(channels, d_state=d_state, d_conv=d_conv, expand=expand)
        self.norm_global = nn.BatchNorm1d(channels)
        self.norm_local = nn.BatchNorm1d(channels) if parallel_mpnn else None
        self.ffn = _ffn(channels, ffn_ratio)
        self.norm_ffn = nn.BatchNorm1d(channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        modules = (self.gated, self.hop_embedding, self.bimamba, self.norm_global, self.norm_local, self.norm_ffn,
                   *self.ffn, *(self.gin or ()))
        for module in modules:
            if module is not None and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def encode(self, x: Tensor, edge_index: Tensor, edge_attr: Optional[Tensor]) -> tuple[Tensor, Optional[Tensor]]:
        """The local MPNN on the whole graph (GIN: :math:`\\mathrm{MLP}(h_v + \\sum_{u \\to v} h_u)`)."""
        if self.gated is not None:
            return self.gated(x, edge_index, edge_attr)
        if self.gin is not None:
            rowptr, col, _ = cached_csr(edge_index, x.size(0))
            return self.gin(x + gather_reduce(x, rowptr, col, "sum", validate=False)), edge_attr
        return x, edge_attr

    def token_sequences(self, h: Tensor, token_rowptr: Tensor, token_col: Tensor, hops: Tensor) -> Tensor:
        """``[N, K, F]`` token vectors :math:`x_{v,k}`."""
        pooled = gather_reduce(h, token_rowptr, token_col, self.token_pool, validate=False)
        return pooled.view(h.size(0), hops.numel(), -1) + self.hop_embedding(hops)[None]

    def subgraph_token_sequences(self, x: Tensor, token_rowptr: Tensor, token_col: Tensor, hops: Tensor,
                                 sub_edge_index: Tensor, sub_edge_id: Tensor,
                                 edge_attr: Optional[Tensor] = None) -> Tensor:
        """``[N, K, F]`` token vectors with the local encoder run on every token's induced subgraph."""
        members = torch.arange(token_col.numel(), device=x.device)
        sub_attr = None if edge_attr is None else edge_attr[sub_edge_id]
        states, _ = self.encode(x[token_col], sub_edge_index, sub_attr)
        pooled = gather_reduce(states, token_rowptr, members, self.token_pool, validate=False)
        return pooled.view(x.size(0), hops.numel(), -1) + self.hop_embedding(hops)[None]

    def forward(self, x: Tensor, edge_index: Tensor, token_rowptr: Tensor, token_col: Tensor, hops: Tensor,
                edge_attr: Optional[Tensor] = None, sub_edge_index: Optional[Tensor] = None,
                sub_edge_id: Optional[Tensor] = None) -> tuple[Tensor, Optional[Tensor]]:
        if token_rowptr.numel() != x.size(0) * hops.numel() + 1:
            raise ValueError(f"token_rowptr has {token_rowptr.numel()} entries but N * K + 1 = "
                             f"{x.size(0) * hops.numel() + 1} ({x.size(0)} nodes, {hops.numel()} tokens each)")
        if hops.numel() and int(hops.max()) >= self.num_hops:
            raise ValueError(f"hops reach {int(hops.max())} but the layer embeds walk lengths < num_hops = "
                             f"{self.num_hops}; build the layer with num_hops = walk_length + 1")
        if self.token_encoder == "subgraph":
            if sub_edge_index is None or sub_edge_id is None:
                raise ValueError("token_encoder='subgraph' needs the tokens' induced subgraphs: pass sub_edge_index "
                                 "and sub_edge_id from graphlab.transforms.token_subgraphs")
            tokens = self.subgraph_token_sequences(x, token_rowptr, token_col, hops, sub_edge_index, sub_edge_id,
                                                   edge_attr)
            encoded = None
            if self.norm_local is not None:
                encoded, edge_attr = self.encode(x, edge_index, edge_attr)
        else:
            encoded, edge_attr = self.encode(x, edge_index, edge_attr)
            tokens = self.token_sequences(encoded, token_rowptr, token_col, hops)
        seq = self.bimamba(tokens)
        y = seq[:, -1] if self.readout == "last" else seq.mean(1)
        h = self.norm_global(x + F.dropout(y, self.dropout, self.training))
        if self.norm_local is not None and encoded is not None:
            h = h + self.norm_local(encoded)
        ff = self.ffn[2](F.dropout(self.ffn[1](self.ffn[0](h)), self.dropout, self.training))
        return self.norm_ffn(h + F.dropout(ff, self.dropout, self.training)), edge_attr

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, num_hops={self.num_hops}, "
                f"local_encoder={self.local_encoder!r}, token_encoder={self.token_encoder!r}, "
                f"readout={self.readout!r})")
