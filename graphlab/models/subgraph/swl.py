r"""Node-based subgraph GNNs on pair tensors :math:`h(u, v)`: DS-GNN, DSS-GNN and the SWL family.

Every model reads a PyG ``Batch`` preprocessed by :class:`graphlab.transforms.SubgraphPairs` (a DataModule's
``subgraph:`` option): ``ptr``, ``pair_dis``, and by policy ``pair_mask`` / ``pair_label`` / ``deleted_edge_index``;
the pair index is built once per forward pass (:func:`graphlab.nn.subgraph.pair_index_from_batch`).

* SWL family (Zhang et al., "A Complete Expressiveness Hierarchy for Subgraph GNNs via Subgraph Weisfeiler-Lehman
  Tests", ICML 2023): :math:`h^{(0)}(u, v) = \mathrm{Enc}(x_v) + \mathrm{DistEmb}(\min(d(u, v), D))`, ``num_layers``
  layers :math:`h \leftarrow \mathrm{ReLU}(\mathrm{BN}(\sum_{a \in \mathcal{A}} \mathrm{MLP}_a((1+\epsilon_a) h +
  \mathrm{AGG}_a(h))))`, a final pooling layer :math:`h \leftarrow \mathrm{ReLU}(\mathrm{BN}(\mathrm{MLP}(
  \mathrm{AGG}_{pool}(h))))`, the mean over all pairs of a graph and an MLP with hidden width :math:`2F`:

  ======================  ==========================  ========
  model                   :math:`\mathcal{A}`          pool
  ======================  ==========================  ========
  :class:`SWLVS`          uL                          uG
  :class:`SWLSV`          uL                          vG
  :class:`PSWL`           uL, vv                      uG (vG)
  :class:`SSWL`           uL, vL                      uG
  :class:`GNNSSWLPlus`    uL, vL, vv                  uG
  ======================  ==========================  ========

  Defaults are the official ZINC hyperparameters (6 layers, width 96, ``max_dis`` 5).

* DS-GNN and DSS-GNN (Bevilacqua et al., "Equivariant Subgraph Aggregation Networks", ICLR 2022): GIN layers
  inside every subgraph (DSS adds a GIN on the original graph over the cross-subgraph mean of each node), readout
  :math:`\mathrm{MLP}\big(\frac{1}{|S|}\sum_{u} \phi(\frac{1}{n}\sum_v h(u, v))\big)` with :math:`\phi` = identity for
  DSS and Linear-ReLU (the invariant DeepSets layer) for DS. Defaults: ESAN's ZINC setting (4 layers, width 64).

Edge features enter the local atoms as :math:`\sum_w (h(u, w) + W_a e_{wv})` (``edge_mode="add"``, graphlab's fused
path) or as the official SWL code's :math:`\sum_w \mathrm{ReLU}(h(u, w) + W_a e_{wv})` (``edge_mode="gine"``).
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder
from torch import Tensor, nn

from graphlab.nn.subgraph import (
    DSConv,
    DSSConv,
    PairEmbedding,
    SSWLPlusConv,
    pair_index_from_batch,
    reset_children,
)
from graphlab.ops import PairIndex, pool_pairs, segment_reduce

NodeEncoder = Literal["linear", "atom"]
EdgeEncoder = Literal["none", "bond", "linear"]
EdgeMode = Literal["add", "gine"]


def check_pair_fields(model: nn.Module, max_dis: int, pair_dis: Optional[Tensor],
                      deleted_edge_index: Optional[Tensor], node_rooted: bool) -> None:
    """The batch must come from :class:`graphlab.transforms.SubgraphPairs` (which always stores ``pair_dis``, and
    ``deleted_edge_index`` for edge deletion): a plain ``Batch`` would run every subgraph as the whole graph, and a
    model with one subgraph per node (``node_rooted``) cannot read edge-deleted subgraphs."""
    name = type(model).__name__
    if pair_dis is None and deleted_edge_index is None:
        raise ValueError(f"{name} needs pair_dis and the other pair fields of graphlab.transforms.SubgraphPairs "
                         f"(without them every subgraph would be the whole graph): set the DataModule's `subgraph:` "
                         f"option (e.g. subgraph: {{policy: node_marking, max_dis: {max_dis}}}) or apply "
                         f"SubgraphPairs as a pre_transform")
    if node_rooted and deleted_edge_index is not None:
        raise ValueError(f"{name} needs one subgraph per node (a root) but the batch has edge-deleted subgraphs "
                         f"(SubgraphPairs(policy='edge_deletion')); use the node_marking, node_deletion, ego or "
                         f"ego_plus policy (DSGNN and DSSGNN take edge_deletion)")


def _ptr_from_batch(batch: Optional[Tensor], num_nodes: int, device: torch.device) -> Tensor:
    if batch is None:
        return torch.tensor([0, num_nodes], device=device)
    counts = torch.bincount(batch, minlength=int(batch.max()) + 1 if batch.numel() else 0)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


class _PairModel(nn.Module):
    """Shared parts: node / edge encoders, the pair index, the input checks, the MLP head."""

    node_rooted = True  # one subgraph per node; DS/DSS-GNN also take edge-deleted subgraphs

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, num_layers: int,
                 max_dis: int, node_encoder: NodeEncoder, edge_encoder: EdgeEncoder, edge_dim: int,
                 dropout: float) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if node_encoder not in ("linear", "atom"):
            raise ValueError(f"node_encoder must be 'linear' or 'atom', got {node_encoder!r}")
        if edge_encoder not in ("none", "bond", "linear"):
            raise ValueError(f"edge_encoder must be 'none', 'bond' or 'linear', got {edge_encoder!r}")
        if edge_encoder == "linear" and edge_dim < 1:
            raise ValueError("edge_encoder='linear' needs edge_dim >= 1 (the edge feature width)")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels, self.out_channels, self.hidden_channels = in_channels, out_channels, hidden_channels
        self.num_layers, self.max_dis, self.dropout = num_layers, max_dis, dropout
        self.node_encoder_kind, self.edge_encoder_kind = node_encoder, edge_encoder
        self.encoder = AtomEncoder(hidden_channels) if node_encoder == "atom" else \
            nn.Linear(in_channels, hidden_channels)
        self.embed = PairEmbedding(hidden_channels, max_dis, num_labels=2)
        self.edge_encoders = None if edge_encoder == "none" else nn.ModuleList(
            BondEncoder(hidden_channels) if edge_encoder == "bond" else nn.Linear(edge_dim, hidden_channels)
            for _ in range(num_layers))
        self.head = nn.Sequential(nn.Linear(hidden_channels, 2 * hidden_channels), nn.ReLU(),
                                  nn.Linear(2 * hidden_channels, out_channels))

    @property
    def edge_dim(self) -> Optional[int]:
        return None if self.edge_encoders is None else self.hidden_channels

    def reset_parameters(self) -> None:
        reset_children(self)

    def _dtype(self) -> torch.dtype:
        return self.head[0].weight.dtype

    def _inputs(self, x: Tensor, edge_index: Tensor, edge_attr: Optional[Tensor], batch: Optional[Tensor],
                ptr: Optional[Tensor], pair_dis: Optional[Tensor], pair_mask: Optional[Tensor],
                deleted_edge_index: Optional[Tensor]) -> tuple[PairIndex, Tensor]:
        name = type(self).__name__
        check_pair_fields(self, self.max_dis, pair_dis, deleted_edge_index, self.node_rooted)
        if self.edge_encoders is not None and edge_attr is None:
            raise ValueError(f"{name} was built with edge_encoder={self.edge_encoder_kind!r} but the batch has no "
                             f"edge_attr; use edge_encoder='none'")
        if ptr is None:
            ptr = _ptr_from_batch(batch, x.size(0), x.device)
        index = pair_index_from_batch(edge_index, ptr, pair_mask, deleted_edge_index)
        h = self.encoder(x.long() if self.node_encoder_kind == "atom" else x.to(self._dtype()))
        return index, h

    def _drop(self, h: Tensor) -> Tensor:
        """Dropout on the pair states; skipped at p = 0 (F.dropout would still store a mask per pair row)."""
        return F.dropout(h, self.dropout, self.training) if self.dropout > 0 else h

    def _edges(self, i: int, edge_attr: Optional[Tensor]) -> Optional[Tensor]:
        if self.edge_encoders is None:
            return None
        if self.edge_encoder_kind == "bond":
            return self.edge_encoders[i](edge_attr.long())
        return self.edge_encoders[i](edge_attr.to(self._dtype()))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers})")


class SubgraphWL(_PairModel):
    r"""A model of the SWL family with atom set ``atoms`` and final pooling atom ``pool`` (module docstring).

    .. math::
        h^{(0)}(u, v) = \mathrm{Enc}(x_v) + \mathrm{DistEmb}(\min(d(u, v), D)) [+ \mathrm{Mark}(u = v)] \\
        h^{(l+1)} = \mathrm{ReLU}\Big(\mathrm{BN}\Big(\sum_{a \in \mathcal{A}} \mathrm{MLP}^{(l)}_a\big(
        (1 + \epsilon^{(l)}_a) h^{(l)} + \mathrm{AGG}_a(h^{(l)})\big)\Big)\Big) \\
        h^{(L+1)} = \mathrm{ReLU}(\mathrm{BN}(\mathrm{MLP}(\mathrm{AGG}_{pool}(h^{(L)})))), \quad
        y_G = \mathrm{MLP}_{2F}\Big(\frac{1}{n^2} \sum_{u, v} h^{(L+1)}(u, v)\Big)

    Args:
        in_channels: node feature width (``info.num_features``).
        out_channels: outputs (``info.num_outputs``).
        hidden_channels: :math:`F` (96 in the paper).
        num_layers: :math:`L` aggregation layers before the pooling layer (6).
        max_dis: :math:`D`, the distance cap; must equal ``SubgraphPairs.max_dis`` (5).
        atoms: :math:`\mathcal{A}`.
        pool: the final layer's atom, ``"uG"`` or ``"vG"``.
        node_encoder: ``"atom"`` (OGB molecules) or ``"linear"``.
        edge_encoder: ``"bond"`` (OGB), ``"linear"`` (real edge features of width ``edge_dim``) or ``"none"``.
        edge_dim: edge feature width for ``edge_encoder="linear"``.
        edge_mode: ``"add"`` (fused) or ``"gine"`` (official form), see the module docstring.
        dropout: dropout on the pair states after every layer (0 in the paper).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 96, num_layers: int = 6,
                 max_dis: int = 5, atoms: Sequence[str] = ("uL", "vL", "vv"),
                 pool: Literal["uG", "vG"] = "uG", node_encoder: NodeEncoder = "linear",
                 edge_encoder: EdgeEncoder = "none", edge_dim: int = 0, edge_mode: EdgeMode = "add",
                 dropout: float = 0.0) -> None:
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, max_dis, node_encoder,
                         edge_encoder, edge_dim, dropout)
        if pool not in ("uG", "vG"):
            raise ValueError(f"pool must be 'uG' or 'vG' (the SWL papers' final pooling atoms), got {pool!r}")
        self.atoms, self.pool = tuple(atoms), pool
        self.convs = nn.ModuleList(
            SSWLPlusConv(hidden_channels, hidden_channels, self.atoms, self.edge_dim, edge_mode=edge_mode)
            for _ in range(num_layers))
        self.pool_conv = SSWLPlusConv(hidden_channels, hidden_channels, (pool,), gin=False)
        self.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, *, edge_attr: Optional[Tensor] = None,
                batch: Optional[Tensor] = None, ptr: Optional[Tensor] = None, pair_dis: Optional[Tensor] = None,
                pair_mask: Optional[Tensor] = None, pair_label: Optional[Tensor] = None,
                deleted_edge_index: Optional[Tensor] = None) -> Tensor:
        """``[B, out_channels]`` from a SubgraphPairs batch (keyword fields as the Batch names them; an
        edge-deletion batch, ``deleted_edge_index``, is refused: the SWL family needs a root per subgraph)."""
        index, x = self._inputs(x, edge_index, edge_attr, batch, ptr, pair_dis, pair_mask, deleted_edge_index)
        h = self.embed(x, index, pair_dis, pair_label)
        for i, conv in enumerate(self.convs):
            h = self._drop(conv(h, index, self._edges(i, edge_attr)))
        h = self.pool_conv(h, index)
        return self.head(pool_pairs(h, index, "mean")[1])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, atoms={self.atoms}, "
                f"pool={self.pool!r}, hidden_channels={self.hidden_channels}, num_layers={self.num_layers})")


class SWLVS(SubgraphWL):
    r"""SWL(VS): atoms {uL}, pool uG (Zhang et al., 2023). Args as :class:`SubgraphWL` without ``atoms``/``pool``."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 96, num_layers: int = 6,
                 max_dis: int = 5, node_encoder: NodeEncoder = "linear", edge_encoder: EdgeEncoder = "none",
                 edge_dim: int = 0, edge_mode: EdgeMode = "add", dropout: float = 0.0) -> None:
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, max_dis, ("uL",), "uG",
                         node_encoder, edge_encoder, edge_dim, edge_mode, dropout)


class SWLSV(SubgraphWL):
    r"""SWL(SV): atoms {uL}, pool vG (Zhang et al., 2023). Args as :class:`SubgraphWL` without ``atoms``/``pool``."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 96, num_layers: int = 6,
                 max_dis: int = 5, node_encoder: NodeEncoder = "linear", edge_encoder: EdgeEncoder = "none",
                 edge_dim: int = 0, edge_mode: EdgeMode = "add", dropout: float = 0.0) -> None:
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, max_dis, ("uL",), "vG",
                         node_encoder, edge_encoder, edge_dim, edge_mode, dropout)


class PSWL(SubgraphWL):
    r"""PSWL: atoms {uL, vv}, pool uG (PSWL(VS), default) or vG (PSWL(SV)) (Zhang et al., 2023). Args as
    :class:`SubgraphWL` without ``atoms``."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 96, num_layers: int = 6,
                 max_dis: int = 5, pool: Literal["uG", "vG"] = "uG", node_encoder: NodeEncoder = "linear",
                 edge_encoder: EdgeEncoder = "none", edge_dim: int = 0, edge_mode: EdgeMode = "add",
                 dropout: float = 0.0) -> None:
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, max_dis, ("uL", "vv"), pool,
                         node_encoder, edge_encoder, edge_dim, edge_mode, dropout)


class SSWL(SubgraphWL):
    r"""SSWL: atoms {uL, vL}, pool uG (Zhang et al., 2023). Args as :class:`SubgraphWL` without ``atoms``/``pool``."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 96, num_layers: int = 6,
                 max_dis: int = 5, node_encoder: NodeEncoder = "linear", edge_encoder: EdgeEncoder = "none",
                 edge_dim: int = 0, edge_mode: EdgeMode = "add", dropout: float = 0.0) -> None:
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, max_dis, ("uL", "vL"), "uG",
                         node_encoder, edge_encoder, edge_dim, edge_mode, dropout)


class GNNSSWLPlus(SubgraphWL):
    r"""GNN-SSWL+ (the official ``SSWL_P``): atoms {uL, vL, vv}, pool uG (Zhang et al., 2023). Args as
    :class:`SubgraphWL` without ``atoms``/``pool``."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 96, num_layers: int = 6,
                 max_dis: int = 5, node_encoder: NodeEncoder = "linear", edge_encoder: EdgeEncoder = "none",
                 edge_dim: int = 0, edge_mode: EdgeMode = "add", dropout: float = 0.0) -> None:
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, max_dis, ("uL", "vL", "vv"),
                         "uG", node_encoder, edge_encoder, edge_dim, edge_mode, dropout)


class _ESAN(_PairModel):
    """DS-/DSS-GNN: layers, then subgraph mean pool, the DeepSets map ``phi``, mean over subgraphs, MLP head."""

    node_rooted = False  # edge-deleted subgraphs too

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, num_layers: int, max_dis: int,
                 use_distances: bool, node_encoder: NodeEncoder, edge_encoder: EdgeEncoder, edge_dim: int,
                 dropout: float) -> None:
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, max_dis, node_encoder,
                         edge_encoder, edge_dim, dropout)
        self.use_distances = use_distances

    def _phi(self, per_subgraph: Tensor) -> Tensor:
        return per_subgraph

    def forward(self, x: Tensor, edge_index: Tensor, *, edge_attr: Optional[Tensor] = None,
                batch: Optional[Tensor] = None, ptr: Optional[Tensor] = None, pair_dis: Optional[Tensor] = None,
                pair_mask: Optional[Tensor] = None, pair_label: Optional[Tensor] = None,
                deleted_edge_index: Optional[Tensor] = None) -> Tensor:
        """``[B, out_channels]`` from a SubgraphPairs batch (any policy, edge deletion included)."""
        index, x = self._inputs(x, edge_index, edge_attr, batch, ptr, pair_dis, pair_mask, deleted_edge_index)
        dis = pair_dis if self.use_distances and index.node_rooted else None
        h = self.embed(x, index, dis, pair_label if index.node_rooted else None)
        for i, conv in enumerate(self.convs):
            h = self._drop(conv(h, index, self._edges(i, edge_attr)))
        per_subgraph = pool_pairs(h, index, "mean")[0]  # [S, F]: mean over v inside every subgraph
        phi = self._phi(per_subgraph)
        return self.head(segment_reduce(phi, index.subgraph_ptr, "mean", validate=False))


class DSGNN(_ESAN):
    r"""DS-GNN (Bevilacqua et al., ICLR 2022): a GIN shared by all subgraphs, each on its own edges.

    .. math::
        h^{(l+1)}(u, v) = \mathrm{ReLU}\Big(\mathrm{BN}\Big(\mathrm{MLP}^{(l)}\big((1+\epsilon) h^{(l)}(u, v) +
        \sum_{w \in N_u(v)} h^{(l)}(u, w)\big)\Big)\Big), \quad
        y_G = \mathrm{MLP}_{2F}\Big(\frac{1}{|S|} \sum_u \mathrm{ReLU}\big(W \tfrac{1}{n} \textstyle\sum_v
        h^{(L)}(u, v) + b\big)\Big)

    :math:`h^{(0)}(u, v) = \mathrm{Enc}(x_v)` [+ a root mark for ``ego_plus`` / ``node_marking``]
    [+ a distance embedding with ``use_distances``].

    Args:
        in_channels, out_channels, node_encoder, edge_encoder, edge_dim, dropout: as :class:`SubgraphWL`.
        hidden_channels: :math:`F` (64, ESAN's ZINC setting).
        num_layers: GIN layers (4).
        max_dis: distance cap of the pair embedding (used with ``use_distances``).
        use_distances: add the distance embedding (ESAN: no).
        edge_mode: local-atom form with edge features (``"add"`` or ``"gine"``, ESAN's GINE).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 64, num_layers: int = 4,
                 max_dis: int = 5, use_distances: bool = False, node_encoder: NodeEncoder = "linear",
                 edge_encoder: EdgeEncoder = "none", edge_dim: int = 0, edge_mode: EdgeMode = "add",
                 dropout: float = 0.0) -> None:
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, max_dis, use_distances,
                         node_encoder, edge_encoder, edge_dim, dropout)
        self.convs = nn.ModuleList(DSConv(hidden_channels, hidden_channels, self.edge_dim, edge_mode=edge_mode)
                                   for _ in range(num_layers))
        self.phi = nn.Linear(hidden_channels, hidden_channels)
        self.reset_parameters()

    def _phi(self, per_subgraph: Tensor) -> Tensor:
        return torch.relu(self.phi(per_subgraph))


class DSSGNN(_ESAN):
    r"""DSS-GNN (Bevilacqua et al., ICLR 2022): per layer a GIN inside every subgraph plus a GIN on the original
    graph over the cross-subgraph mean :math:`\bar h(v) = \frac{1}{|S|}\sum_{u} h(u, v)`
    (:class:`graphlab.nn.subgraph.DSSConv`); readout :math:`y_G = \mathrm{MLP}_{2F}(\frac{1}{|S|}\sum_u \frac{1}{n}
    \sum_v h^{(L)}(u, v))`.

    Args: as :class:`DSGNN` (no ``edge_mode``: DSS adds edge vectors to the messages).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 64, num_layers: int = 4,
                 max_dis: int = 5, use_distances: bool = False, node_encoder: NodeEncoder = "linear",
                 edge_encoder: EdgeEncoder = "none", edge_dim: int = 0, dropout: float = 0.0) -> None:
        super().__init__(in_channels, out_channels, hidden_channels, num_layers, max_dis, use_distances,
                         node_encoder, edge_encoder, edge_dim, dropout)
        self.convs = nn.ModuleList(DSSConv(hidden_channels, hidden_channels, self.edge_dim)
                                   for _ in range(num_layers))
        self.reset_parameters()
