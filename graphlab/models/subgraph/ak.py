r"""GNN-AK / GNN-AK+ and SUN as complete graph-level models on the pair-tensor engine.

Both read a PyG ``Batch`` preprocessed by :class:`graphlab.transforms.SubgraphPairs` (the DataModule option
``subgraph: {policy: ego, num_hops: 3, max_dis: 5}``): besides ``x``, ``edge_index``, ``edge_attr`` and ``batch``
the model's ``forward`` takes the batch's ``ptr`` and the pair attributes ``pair_mask``, ``pair_dis``,
``pair_label`` as keyword arguments.

References:
    Zhao, Jin, Akoglu & Shah, *From Stars to Subgraphs: Uplifting Any GNN with Local Structure Awareness*,
    ICLR 2022 (GNN-AK, GNN-AK+; official code ``LingxiaoShawn/GNNAsKernel``).
    Frasca, Bevilacqua, Bronstein & Maron, *Understanding and Extending Subgraph GNNs by Rethinking Their
    Symmetries*, NeurIPS 2022 (SUN; official code ``beabevi/SUN``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_mean_pool

from graphlab.nn.subgraph import GNNAKConv, PairEmbedding, SUNConv, pair_index_from_batch, subgraph_readout
from graphlab.nn.subgraph.swl import reset_children
from graphlab.models.subgraph.swl import check_pair_fields
from graphlab.ops import PairIndex

NodeEncoder = Literal["linear", "atom", "none"]
EdgeEncoder = Literal["none", "bond", "linear"]


def _node_encoder(kind: NodeEncoder, in_channels: int, hidden_channels: int) -> nn.Module:
    if kind not in ("linear", "atom", "none"):
        raise ValueError(f"node_encoder must be 'linear', 'atom' or 'none', got {kind!r}")
    if kind == "atom":
        return AtomEncoder(hidden_channels)
    if kind == "none" and in_channels != hidden_channels:
        raise ValueError(f"node_encoder='none' needs in_channels == hidden_channels, got {in_channels} and "
                         f"{hidden_channels}; use node_encoder='linear'")
    return nn.Linear(in_channels, hidden_channels) if kind == "linear" else nn.Identity()


def _edge_setup(kind: EdgeEncoder, edge_dim: int, hidden_channels: int, num_layers: int
                ) -> tuple[Optional[nn.ModuleList], Optional[int]]:
    """Per-layer edge encoders and the edge width the layers see: OGB bonds are embedded (``bond``), real edge
    features go to the layers' own linear maps (``linear``)."""
    if kind not in ("none", "bond", "linear"):
        raise ValueError(f"edge_encoder must be 'none', 'bond' or 'linear', got {kind!r}")
    if kind == "bond":
        return nn.ModuleList(BondEncoder(hidden_channels) for _ in range(num_layers)), hidden_channels
    if kind == "linear":
        if edge_dim < 1:
            raise ValueError("edge_encoder='linear' needs edge_dim >= 1 (the edge feature width)")
        return None, edge_dim
    return None, None


def _batch_index(x: Tensor, edge_index: Tensor, batch: Optional[Tensor], ptr: Optional[Tensor],
                 pair_mask: Optional[Tensor]) -> PairIndex:
    if ptr is None:
        if batch is None:
            ptr = torch.tensor([0, x.size(0)], device=x.device)
        else:
            counts = torch.bincount(batch, minlength=int(batch.max()) + 1 if batch.numel() else 0)
            ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    return pair_index_from_batch(edge_index, ptr, pair_mask)


def _edges(encoders: Optional[nn.ModuleList], layer: int, edge_attr: Optional[Tensor], edge_dim: Optional[int],
           dtype: torch.dtype) -> Optional[Tensor]:
    if edge_dim is None:
        return None
    if edge_attr is None:
        raise ValueError("this model uses edge features (edge_encoder != 'none') but the batch has no edge_attr")
    if encoders is not None:
        return encoders[layer](edge_attr.long())
    return edge_attr.to(dtype)


def _dtype(module: nn.Module) -> torch.dtype:
    return next(p.dtype for p in module.parameters() if p.is_floating_point())


class GNNAK(nn.Module):
    r"""GNN-AK and GNN-AK+ (Zhao et al., ICLR 2022): ``num_layers`` outer layers :class:`~graphlab.nn.subgraph.
    GNNAKConv` (GINE inside every :math:`k`-hop ego net, centroid / subgraph / context encodings), each followed by
    batch norm, ReLU, dropout and a residual connection, then a pool over the nodes and a 2-layer MLP:

    .. math::
        x^{(l+1)} = x^{(l)} + \mathrm{Dropout}(\mathrm{ReLU}(\mathrm{BN}(\mathrm{AK}^{(l)}(x^{(l)})))), \qquad
        y = \mathrm{MLP}\big(\mathrm{pool}_v\, x_v^{(L)}\big)

    Args:
        in_channels, out_channels: node feature width and classes / tasks (linked from the DataModule).
        hidden_channels: :math:`F` (128 in the official ZINC configuration).
        num_layers: outer layers (6 on ZINC).
        mini_layers: inner GINE layers per outer layer (1).
        plus: GNN-AK+: the hop embedding of width ``hop_dim`` and its sigmoid gates, and the context encoding.
        hop_dim: width of the hop embedding (16 in the official code), used when ``plus``.
        max_dis: the ``max_dis`` of the ``SubgraphPairs`` pre-transform.
        encodings: which encodings to combine; ``None`` = the paper's: ``(centroid, subgraph)`` for GNN-AK,
            ``(centroid, subgraph, context)`` for GNN-AK+.
        pool: ``mean`` (official default) or ``sum`` (ZINC), for the encodings' pools and the graph readout.
        combine: ``concat`` (official) or ``add``.
        dropout: dropout rate (0 on ZINC).
        residual: the outer residual connection (official default True).
        node_encoder: ``linear`` (real features), ``atom`` (OGB molecules) or ``none``.
        edge_encoder: ``none``, ``bond`` (OGB molecules: one BondEncoder per outer layer) or ``linear`` (real edge
            features of width ``edge_dim``).
        edge_dim: raw edge feature width for ``edge_encoder="linear"``.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 128, num_layers: int = 6,
                 mini_layers: int = 1, plus: bool = False, hop_dim: int = 16, max_dis: int = 5,
                 encodings: Optional[Sequence[str]] = None, pool: Literal["sum", "mean"] = "mean",
                 combine: Literal["concat", "add"] = "concat", dropout: float = 0.0, residual: bool = True,
                 node_encoder: NodeEncoder = "linear", edge_encoder: EdgeEncoder = "none",
                 edge_dim: int = 0) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if plus and hop_dim < 1:
            raise ValueError(f"GNN-AK+ (plus=True) needs hop_dim >= 1 (16 in the paper), got {hop_dim}")
        if encodings is None:
            encodings = ("centroid", "subgraph", "context") if plus else ("centroid", "subgraph")
        self.in_channels, self.out_channels, self.plus, self.pool = in_channels, out_channels, plus, pool
        self.dropout, self.residual = dropout, residual
        self.encoder = _node_encoder(node_encoder, in_channels, hidden_channels)
        self.edge_encoders, self.layer_edge_dim = _edge_setup(edge_encoder, edge_dim, hidden_channels, num_layers)
        self.layers = nn.ModuleList(
            GNNAKConv(hidden_channels, hidden_channels, mini_layers, self.layer_edge_dim, hop_dim if plus else 0,
                      max_dis, encodings, pool, combine, dropout) for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden_channels) for _ in range(num_layers))
        self.head = nn.Sequential(nn.Linear(hidden_channels, hidden_channels), nn.ReLU(),
                                  nn.Linear(hidden_channels, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_children(self)

    def forward(self, x: Tensor, edge_index: Tensor, *, edge_attr: Optional[Tensor] = None,
                batch: Optional[Tensor] = None, ptr: Optional[Tensor] = None, pair_mask: Optional[Tensor] = None,
                pair_dis: Optional[Tensor] = None, pair_label: Optional[Tensor] = None,
                deleted_edge_index: Optional[Tensor] = None) -> Tensor:
        """``[B, out_channels]``; ``pair_label`` is accepted (and unused) so every node-rooted ``SubgraphPairs``
        policy works; an edge-deletion batch (``deleted_edge_index``) is refused."""
        check_pair_fields(self, self.layers[0].max_dis, pair_dis, deleted_edge_index, node_rooted=True)
        index = _batch_index(x, edge_index, batch, ptr, pair_mask)
        h = self.encoder(x.long() if isinstance(self.encoder, AtomEncoder) else x.to(_dtype(self)))
        for i, (layer, norm) in enumerate(zip(self.layers, self.norms)):
            e = _edges(self.edge_encoders, i, edge_attr, self.layer_edge_dim, h.dtype)
            out = F.dropout(torch.relu(norm(layer(h, index, pair_dis, e))), self.dropout, self.training)
            h = h + out if self.residual else out
        if batch is None:
            batch = index.node.new_zeros(h.size(0)) if ptr is None else torch.repeat_interleave(index.num_nodes)
        pooled = (global_add_pool if self.pool == "sum" else global_mean_pool)(h, batch, size=index.num_nodes.numel())
        return self.head(F.dropout(pooled, self.dropout, self.training))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, num_layers={len(self.layers)}, "
                f"plus={self.plus})")


class SUN(nn.Module):
    r"""SUN (Frasca et al., NeurIPS 2022): pair states initialised from the node features (plus a root-mark
    embedding for the ``node_marking`` / ``ego_plus`` policies), ``num_layers`` :class:`~graphlab.nn.subgraph.
    SUNConv` layers with dropout (and an optional residual), then the mean over the nodes of each subgraph, the
    mean over the subgraphs and an MLP:

    .. math::
        h^{(0)}(k, v) = \mathrm{Enc}(x_v) \;[+\, \mathrm{Emb}(\mathbb{1}[k = v])]
        \;[+\, \mathrm{DistEmb}(\min(d(k, v), D))], \qquad
        y = \mathrm{MLP}\Big(\frac{1}{n} \sum_k \frac{1}{n} \sum_v h^{(L)}(k, v)\Big)

    Args:
        in_channels, out_channels: node feature width and classes / tasks.
        hidden_channels: :math:`F` (64 in the official ZINC and OGB configurations).
        num_layers: SUN layers (6 on ZINC, 2 on ogbg-molhiv).
        dropout: dropout after every layer and in the head (0 on ZINC, 0.3 on OGB).
        residual: residual connection around every layer (official OGB: True, ZINC: False).
        use_readout, use_transpose, use_mlp, readout_pool: see :class:`~graphlab.nn.subgraph.SUNConv`
            (official OGB: ``use_readout=False, use_mlp=False``).
        num_labels: 2 to embed ``pair_label`` (root marking, policies ``node_marking`` / ``ego_plus``), else 0.
        use_distances: add the distance embedding of :class:`~graphlab.nn.subgraph.PairEmbedding` (the SWL
            models' distance encoding; not in the official SUN, off by default).
        max_dis: :math:`D`, the ``max_dis`` of the ``subgraph:`` option (used with ``use_distances``).
        node_encoder, edge_encoder, edge_dim: as :class:`GNNAK`.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 64, num_layers: int = 6,
                 dropout: float = 0.0, residual: bool = False, use_readout: bool = True, use_transpose: bool = False,
                 use_mlp: bool = True, readout_pool: Literal["sum", "mean"] = "sum", num_labels: int = 0,
                 use_distances: bool = False, max_dis: int = 5, node_encoder: NodeEncoder = "linear",
                 edge_encoder: EdgeEncoder = "none", edge_dim: int = 0) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.in_channels, self.out_channels, self.dropout, self.residual = in_channels, out_channels, dropout, residual
        self.use_distances = use_distances
        self.encoder = _node_encoder(node_encoder, in_channels, hidden_channels)
        self.embedding = PairEmbedding(hidden_channels, max_dis, num_labels=num_labels)
        self.edge_encoders, self.layer_edge_dim = _edge_setup(edge_encoder, edge_dim, hidden_channels, num_layers)
        self.layers = nn.ModuleList(
            SUNConv(hidden_channels, hidden_channels, self.layer_edge_dim, use_readout, use_transpose, use_mlp,
                    readout_pool) for _ in range(num_layers))
        self.head = nn.Sequential(nn.Linear(hidden_channels, 2 * hidden_channels), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(2 * hidden_channels, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_children(self)

    def forward(self, x: Tensor, edge_index: Tensor, *, edge_attr: Optional[Tensor] = None,
                batch: Optional[Tensor] = None, ptr: Optional[Tensor] = None, pair_mask: Optional[Tensor] = None,
                pair_dis: Optional[Tensor] = None, pair_label: Optional[Tensor] = None,
                deleted_edge_index: Optional[Tensor] = None) -> Tensor:
        """``[B, out_channels]``; ``pair_dis`` is read with ``use_distances`` only (but must be there: the batch
        comes from ``SubgraphPairs``); an edge-deletion batch (``deleted_edge_index``) is refused."""
        if self.embedding.num_labels and pair_label is None:
            raise ValueError("SUN(num_labels=2) embeds the root mark but the batch has no pair_label; use the "
                             "node_marking or ego_plus policy of SubgraphPairs, or num_labels=0")
        if self.use_distances and pair_dis is None:
            raise ValueError("SUN(use_distances=True) embeds d(k, v) but the batch has no pair_dis; preprocess "
                             "with graphlab.transforms.SubgraphPairs (the DataModule's subgraph: option)")
        check_pair_fields(self, self.embedding.max_dis, pair_dis, deleted_edge_index, node_rooted=True)
        index = _batch_index(x, edge_index, batch, ptr, pair_mask)
        node = self.encoder(x.long() if isinstance(self.encoder, AtomEncoder) else x.to(_dtype(self)))
        h = self.embedding(node, index, pair_dis if self.use_distances else None,
                           pair_label if self.embedding.num_labels else None)
        h = F.dropout(h, self.dropout, self.training)
        for i, layer in enumerate(self.layers):
            e = _edges(self.edge_encoders, i, edge_attr, self.layer_edge_dim, h.dtype)
            out = F.dropout(layer(h, index, e), self.dropout, self.training)
            h = h + out if self.residual else out
        return self.head(subgraph_readout(h, index, "mean"))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, num_layers={len(self.layers)})")
