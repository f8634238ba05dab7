r"""GNN-AK and GNN-AK+ (Zhao, Jin, Akoglu, Shah, "From Stars to Subgraphs: Uplifting Any GNN with Local Structure
Awareness", ICLR 2022) on the pair tensors of :mod:`graphlab.ops.pairs`.

One outer layer maps node states :math:`x \in \mathbb{R}^{N \times F}` to node states. The subgraph of root
:math:`u` is its :math:`k`-hop ego net :math:`S_u = \{v : d(u, v) \le k\}` (``pair_mask`` of
:class:`graphlab.transforms.SubgraphPairs` with ``policy="ego"``). The official code copies every ego net into one
big batch; here the states of all subgraphs are the rows :math:`(u, v)`, :math:`v \in S_u`, of one pair tensor.

1. Lift (GNN-AK+ concatenates the hop embedding :math:`\eta(u, v) = \mathrm{Emb}(d(u, v) + 1)`, index 0 outside):

   .. math:: h^{(0)}(u, v) = x_v \,\|\, \eta(u, v), \qquad v \in S_u

2. Inner GNN, ``mini_layers`` GINE layers restricted to each subgraph (the ``uL`` atom with the ego mask), each with
   batch norm, ReLU and a residual connection, then a linear map to :math:`F_{out}`:

   .. math::
       h^{(l+1)}(u, v) = h^{(l)}(u, v) + \mathrm{ReLU}\Big(\mathrm{BN}\Big(\mathrm{MLP}^{(l)}\big((1+\epsilon^{(l)})
       h^{(l)}(u, v) + \textstyle\sum_{w \in N(v) \cap S_u} \mathrm{ReLU}(h^{(l)}(u, w) + W^{(l)} e_{wv})
       \big)\Big)\Big), \qquad z(u, v) = W_o h^{(L)}(u, v)

3. Three encodings of node :math:`v` (``pool`` = sum or mean over the subgraph / over the subgraphs containing
   :math:`v`), each gated by :math:`g_\ast = \sigma(W_\ast \eta)` in GNN-AK+ (:math:`g_\ast = 1` in GNN-AK):

   .. math::
       c_v = g_c(v, v) \odot z(v, v), \qquad
       s_v = \mathrm{pool}_{w \in S_v} \; g_s(v, w) \odot \mathrm{T_s}(z(v, w)), \qquad
       t_v = \mathrm{pool}_{u : v \in S_u} \; g_t(u, v) \odot \mathrm{T_t}(z(u, v))

   with :math:`\mathrm{T}_\ast` = Linear-BN-ReLU; combined by concatenation and a linear map (official default
   ``embs_combine_mode="concat"``) or by a sum and a linear map: :math:`x'_v = W_{out} [c_v \| s_v \| t_v]`.

The pools are segment reductions over the rows of one root (:math:`s`) and over the rows of one node (:math:`t`),
:math:`O(\sum_g n_g^2)`, never a row per triple. Batch norm inside the layer sees exactly the rows of the official
combined batch (the pairs in the mask); rows outside the mask are kept at zero and never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlab.nn.subgraph.swl import mlp, reset_children
from graphlab.ops import PairIndex, check_edge_attr_rows, column_sum, pair_atom, segment_reduce

ENCODINGS: tuple[str, ...] = ("centroid", "subgraph", "context")
Pool = Literal["sum", "mean"]


def masked_rows(index: PairIndex) -> Tensor:
    """``[M]`` the pair rows inside the policy's mask (all rows without a mask), ascending."""
    if index.pair_mask is None:
        return torch.arange(index.num_pairs, device=index.root.device)
    return index.pair_mask.nonzero().view(-1)


def diagonal_rows(index: PairIndex) -> Tensor:
    """``[N]`` the row of :math:`(v, v)` for every node :math:`v` of the batch."""
    return index.root_diag.index_select(0, index.root_ptr[:-1])


def scatter_rows(values: Tensor, rows: Tensor, num_rows: int) -> Tensor:
    """``[num_rows, F]``: ``values`` at ``rows``, zero elsewhere (out of place, differentiable)."""
    return values.new_zeros(num_rows, values.size(1)).index_copy(0, rows, values)


def subgraph_pool(z: Tensor, index: PairIndex, count: Tensor | None) -> Tensor:
    r"""``[N, F]``: :math:`\sum_w z(u, w)` per root :math:`u`, divided by ``count`` when given (mean)."""
    out = segment_reduce(z, index.root_ptr, "sum", validate=False)
    return out if count is None else out / count.clamp(min=1)[:, None]


def context_pool(z: Tensor, index: PairIndex, count: Tensor | None) -> Tensor:
    r"""``[N, F]``: :math:`\sum_u z(u, v)` per node :math:`v`, divided by ``count`` when given (mean)."""
    out = column_sum(z, index)
    return out if count is None else out / count.clamp(min=1)[:, None]


def _linear_bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(channels, channels), nn.BatchNorm1d(channels), nn.ReLU())


def check_edge_attr(layer: nn.Module, edge_attr: Tensor | None, index: PairIndex) -> None:
    """``edge_attr`` must be given exactly when ``layer`` was built with an ``edge_dim``, as ``[E, edge_dim]`` with
    one row per edge of the batch."""
    name, edge_dim = type(layer).__name__, layer.edge_dim
    if (edge_dim is None) != (edge_attr is None):
        raise ValueError(f"{name} was built with edge_dim={edge_dim} but edge_attr is "
                         f"{'missing' if edge_attr is None else 'given'}; build it with the edge width or "
                         f"pass/drop edge_attr accordingly")
    if edge_attr is not None and (edge_attr.dim() != 2 or edge_attr.size(1) != edge_dim):
        raise ValueError(f"{name} expects edge_attr of shape [E, {edge_dim}], got {tuple(edge_attr.shape)}")
    if edge_attr is not None:
        check_edge_attr_rows(edge_attr, index)


class GNNAKConv(nn.Module):
    r"""One outer layer of GNN-AK / GNN-AK+ (module docstring for the equations).

    Args:
        in_channels: :math:`F_{in}`, width of the node states :math:`x`.
        out_channels: :math:`F_{out}`.
        mini_layers: inner GINE layers per outer layer (official default 1).
        edge_dim: width of ``edge_attr`` (each inner layer maps it with its own :math:`W^{(l)}`), ``None`` for
            none (then the inner layers are GIN: :math:`\sum_w h(u, w)`).
        hop_dim: width of the hop embedding :math:`\eta` (16 in the official GNN-AK+; 0 = GNN-AK, no gates).
        max_dis: the ``max_dis`` of :class:`~graphlab.transforms.SubgraphPairs` (size of the hop embedding).
        encodings: which of ``centroid``, ``subgraph``, ``context`` to combine (GNN-AK: the first two; GNN-AK-ctx
            and GNN-AK+: all three).
        pool: ``mean`` (official default) or ``sum`` (the ZINC configuration) for the subgraph and context pools.
        combine: ``concat`` (official default) or ``add``.
        dropout: dropout inside the inner GNN and before the transforms and the combination.
        train_eps: learn :math:`\epsilon^{(l)}`.

    Shapes: ``x`` [N, F_in], ``pair_dis`` [R] (needed when ``hop_dim > 0``), ``edge_attr`` [E, edge_dim]
    → [N, F_out].
    """

    def __init__(self, in_channels: int, out_channels: int, mini_layers: int = 1, edge_dim: int | None = None,
                 hop_dim: int = 0, max_dis: int = 5, encodings: Sequence[str] = ENCODINGS, pool: Pool = "mean",
                 combine: Literal["concat", "add"] = "concat", dropout: float = 0.0,
                 train_eps: bool = True) -> None:
        super().__init__()
        encodings = tuple(encodings)
        if not encodings or any(e not in ENCODINGS for e in encodings) or len(set(encodings)) != len(encodings):
            raise ValueError(f"encodings must be distinct names from {', '.join(ENCODINGS)}, got {encodings}")
        if pool not in ("sum", "mean"):
            raise ValueError(f"pool must be 'sum' or 'mean', got {pool!r}")
        if combine not in ("concat", "add"):
            raise ValueError(f"combine must be 'concat' or 'add', got {combine!r}")
        if mini_layers < 1:
            raise ValueError(f"mini_layers must be >= 1 (GNN-AK with no inner layer is the base GNN), got "
                             f"{mini_layers}")
        if hop_dim < 0 or max_dis < 1:
            raise ValueError(f"hop_dim must be >= 0 and max_dis >= 1, got hop_dim={hop_dim}, max_dis={max_dis}")
        self.in_channels, self.out_channels, self.mini_layers = in_channels, out_channels, mini_layers
        self.edge_dim, self.hop_dim, self.max_dis = edge_dim, hop_dim, max_dis
        self.encodings, self.pool, self.combine, self.dropout = encodings, pool, combine, dropout
        width = in_channels + hop_dim
        self.hop_embedding = nn.Embedding(max_dis + 3, hop_dim) if hop_dim else None
        self.inner_mlps = nn.ModuleList(mlp(width, width) for _ in range(mini_layers))
        self.inner_norms = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(mini_layers))
        self.edge_lins = nn.ModuleList(nn.Linear(edge_dim, width) for _ in range(mini_layers)) \
            if edge_dim is not None else None
        self.eps = nn.Parameter(torch.zeros(mini_layers), requires_grad=train_eps)
        self.inner_out = nn.Linear(width, out_channels) if width != out_channels else nn.Identity()
        self.transforms = nn.ModuleDict({e: _linear_bn_relu(out_channels) for e in encodings if e != "centroid"})
        self.gates = nn.ModuleDict({e: nn.Linear(hop_dim, out_channels) for e in encodings}) if hop_dim else None
        combined = out_channels * len(encodings) if combine == "concat" else out_channels
        self.out = nn.Linear(combined, out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_children(self)
        with torch.no_grad():
            self.eps.zero_()

    def _check(self, x: Tensor, index: PairIndex, pair_dis: Tensor | None, edge_attr: Tensor | None) -> None:
        name = type(self).__name__
        if x.dim() != 2 or x.size(1) != self.in_channels:
            raise ValueError(f"{name} expects node states x of shape [N, {self.in_channels}], got {tuple(x.shape)}")
        if x.size(0) != index.root_ptr.numel() - 1:
            raise ValueError(f"x has {x.size(0)} rows but the pair index has {index.root_ptr.numel() - 1} nodes")
        if not index.node_rooted:
            raise ValueError(f"{name} needs one subgraph per node (ego nets); edge-deleted subgraphs have no root")
        if self.hop_dim and (pair_dis is None or pair_dis.shape != (index.num_pairs,)):
            raise ValueError(f"{name} with hop_dim={self.hop_dim} (GNN-AK+) needs pair_dis of shape "
                             f"[{index.num_pairs}] from SubgraphPairs; got "
                             f"{None if pair_dis is None else tuple(pair_dis.shape)}")
        if self.hop_dim and pair_dis.numel() and int(pair_dis.max()) > self.max_dis + 1:
            raise ValueError(f"pair_dis has value {int(pair_dis.max())} but {name}(max_dis={self.max_dis}) embeds "
                             f"0..{self.max_dis + 1}; use the max_dis of SubgraphPairs")
        check_edge_attr(self, edge_attr, index)

    def hop_index(self, index: PairIndex, pair_dis: Tensor, rows: Tensor) -> Tensor:
        """``[M]`` the hop-embedding index of the masked rows: distance + 1 (0 is the official "outside")."""
        return pair_dis.index_select(0, rows).long() + 1

    def inner_gnn(self, h: Tensor, index: PairIndex, rows: Tensor, edge_attr: Tensor | None) -> Tensor:
        """``mini_layers`` GINE layers on the masked rows ``h`` ``[M, F_in + hop_dim]`` → ``[M, F_out]``."""
        for layer in range(self.mini_layers):
            full = scatter_rows(h, rows, index.num_pairs)
            if self.edge_lins is not None:
                agg = pair_atom(full, index, "uL", self.edge_lins[layer](edge_attr).to(h.dtype), "gine")
            else:
                agg = pair_atom(full, index, "uL")
            out = self.inner_mlps[layer]((1 + self.eps[layer]) * h + agg.index_select(0, rows))
            out = F.dropout(torch.relu(self.inner_norms[layer](out)), self.dropout, self.training)
            h = h + out
        return self.inner_out(h)

    def forward(self, x: Tensor, index: PairIndex, pair_dis: Tensor | None = None,
                edge_attr: Tensor | None = None) -> Tensor:
        self._check(x, index, pair_dis, edge_attr)
        rows = masked_rows(index)
        h = x.index_select(0, index.node.index_select(0, rows))
        hop = None
        if self.hop_embedding is not None:
            hop = self.hop_embedding(self.hop_index(index, pair_dis, rows)).to(x.dtype)
            h = torch.cat([h, hop], dim=-1)
        z = self.inner_gnn(h, index, rows, edge_attr)  # [M, F_out]
        count_root = count_node = None
        if self.pool == "mean":
            ones = scatter_rows(z.new_ones(rows.numel(), 1), rows, index.num_pairs)
            count_root = subgraph_pool(ones, index, None)[:, 0]
            count_node = context_pool(ones, index, None)[:, 0]
        parts = []
        for name in self.encodings:
            if name == "centroid":
                part = z.new_zeros(index.num_pairs, z.size(1)).index_copy(0, rows, z).index_select(
                    0, diagonal_rows(index))
                gate_rows = diagonal_rows(index)
            else:
                part = self.transforms[name](F.dropout(z, self.dropout, self.training))
            if self.gates is not None:
                if name == "centroid":
                    dis = pair_dis.index_select(0, gate_rows).long() + 1
                    part = part * torch.sigmoid(self.gates[name](self.hop_embedding(dis).to(x.dtype)))
                else:
                    part = part * torch.sigmoid(self.gates[name](hop))
            if name == "subgraph":
                part = subgraph_pool(scatter_rows(part, rows, index.num_pairs), index, count_root)
            elif name == "context":
                part = context_pool(scatter_rows(part, rows, index.num_pairs), index, count_node)
            parts.append(part)
        combined = torch.cat(parts, dim=-1) if self.combine == "concat" else sum(parts)
        return self.out(F.dropout(combined, self.dropout, self.training))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, mini_layers={self.mini_layers}, "
                f"hop_dim={self.hop_dim}, encodings={self.encodings}, pool={self.pool!r})")
