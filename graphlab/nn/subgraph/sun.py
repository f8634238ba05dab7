r"""SUN, Subgraph Union Network (Frasca, Bevilacqua, Bronstein, Maron, "Understanding and Extending Subgraph GNNs by
Rethinking Their Symmetries", NeurIPS 2022), on the pair tensors of :mod:`graphlab.ops.pairs`.

With :math:`x^k_v = h(k, v)` the state of node :math:`v` in the subgraph of root :math:`k`, one layer updates the
non-root pairs (:math:`v \ne k`) and the root pairs (:math:`v = k`) with separate parameters:

.. math::
    x^k_v &\leftarrow \mathrm{ReLU}\Big(U_{vv}(x^v_v) + U_{kk}(x^k_k) + U_{kv}(x^k_v)
        + \mathrm{BN}\big(\mathrm{GNN}(x^k)_v\big) + \mathrm{BN}\big(\mathrm{GNN}_{\Sigma}(\bar x)_v\big)
        \;[+\, U_{ro}(\textstyle\sum_w x^k_w)] \;[+\, U_{vk}(x^v_k)]\Big), \\
    x^v_v &\leftarrow \mathrm{ReLU}\Big(U'_{vv}(x^v_v) + \mathrm{BN}'\big(\mathrm{GNN}'(x^v)_v\big)
        + \mathrm{BN}'\big(\mathrm{GNN}'_{\Sigma}(\bar x)_v\big) \;[+\, U'_{ro}(\textstyle\sum_w x^v_w)]\Big),
    \qquad \bar x_v = \frac{1}{n} \sum_{k'} x^{k'}_v

:math:`\mathrm{GNN}(x^k)` is a GIN(E) layer inside subgraph :math:`k` (the ``uL`` atom, restricted by the policy's
mask), :math:`\mathrm{GNN}_\Sigma` a GIN(E) layer on the original graph over the cross-subgraph mean, each
:math:`U_\ast` a Linear-BN-ReLU-Linear MLP (a Linear with ``use_mlp=False``). As in the official code, the
:math:`U` of the diagonal are applied to the :math:`N` diagonal states once and broadcast, the subgraph BN sees the
non-root rows and the root BN the root rows, and the root GIN's MLP runs on the :math:`N` root rows only.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from graphlab.nn.subgraph.ak import check_edge_attr, diagonal_rows
from graphlab.nn.subgraph.swl import mlp, reset_children
from graphlab.ops import PairIndex, column_sum, gather_reduce, pair_atom, segment_reduce

U_TERMS: tuple[str, ...] = ("vv", "kk", "kv", "ro", "vk", "vv_root", "ro_root")


class SUNConv(nn.Module):
    r"""One SUN layer (module docstring for the equations).

    Args:
        in_channels, out_channels: :math:`F_{in}`, :math:`F_{out}`.
        edge_dim: width of ``edge_attr`` (each of the four GIN layers maps it with its own linear map and sums
            :math:`\mathrm{ReLU}(h_w + W e_{wv})`, GINE); ``None``: plain GIN, :math:`\sum_w h_w`.
        use_readout: add the :math:`U_{ro}` terms (official default True).
        use_transpose: add :math:`U_{vk}(x^v_k)` (official default False).
        use_mlp: each :math:`U_\ast` is Linear-BN-ReLU-Linear (default) or one Linear.
        readout_pool: ``sum`` (official default) or ``mean`` pool inside the subgraph for the readout terms.
        batch_norm: the BN after each GIN (official ``add_bn``, default True).
        train_eps: learn the GIN :math:`\epsilon`.

    Shapes: ``h`` [R, F_in], ``edge_attr`` [E, edge_dim] → [R, F_out].
    """

    def __init__(self, in_channels: int, out_channels: int, edge_dim: int | None = None, use_readout: bool = True,
                 use_transpose: bool = False, use_mlp: bool = True, readout_pool: Literal["sum", "mean"] = "sum",
                 batch_norm: bool = True, train_eps: bool = True) -> None:
        super().__init__()
        if readout_pool not in ("sum", "mean"):
            raise ValueError(f"readout_pool must be 'sum' or 'mean', got {readout_pool!r}")
        self.in_channels, self.out_channels, self.edge_dim = in_channels, out_channels, edge_dim
        self.use_readout, self.use_transpose, self.use_mlp = use_readout, use_transpose, use_mlp
        self.readout_pool, self.batch_norm = readout_pool, batch_norm
        terms = [t for t in U_TERMS if (use_readout or t not in ("ro", "ro_root")) and (use_transpose or t != "vk")]
        self.u = nn.ModuleDict({t: mlp(in_channels, out_channels) if use_mlp else nn.Linear(in_channels,
                                                                                          out_channels)
                                for t in terms})
        gins = ("sub", "sub_root", "sum", "sum_root")
        self.gin_mlps = nn.ModuleDict({g: mlp(in_channels, out_channels) for g in gins})
        self.norms = nn.ModuleDict({g: nn.BatchNorm1d(out_channels) if batch_norm else nn.Identity() for g in gins})
        self.edge_lins = nn.ModuleDict({g: nn.Linear(edge_dim, in_channels) for g in gins}) \
            if edge_dim is not None else None
        self.eps = nn.Parameter(torch.zeros(len(gins)), requires_grad=train_eps)
        self._gin_names = gins
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_children(self)
        with torch.no_grad():
            self.eps.zero_()

    def _check(self, h: Tensor, index: PairIndex, edge_attr: Tensor | None) -> None:
        name = type(self).__name__
        if h.dim() != 2 or h.size(1) != self.in_channels:
            raise ValueError(f"{name} expects h of shape [R, {self.in_channels}], got {tuple(h.shape)}")
        if h.size(0) != index.num_pairs:
            raise ValueError(f"h has {h.size(0)} rows but the batch has R = Σ n_g² = {index.num_pairs} pairs")
        if not index.node_rooted:
            raise ValueError(f"{name} needs one subgraph per node (a root); edge-deleted subgraphs have none")
        check_edge_attr(self, edge_attr, index)

    def _edges(self, gin: str, edge_attr: Tensor | None, dtype: torch.dtype) -> Tensor | None:
        return None if self.edge_lins is None else self.edge_lins[gin](edge_attr).to(dtype)

    def _subgraph_agg(self, gin: str, h: Tensor, index: PairIndex, edge_attr: Tensor | None) -> Tensor:
        r"""``[R, F_in]``: :math:`(1+\epsilon) h(k, v) + \sum_{w \in N(v) \cap S_k} \mathrm{msg}` inside each
        subgraph (the input of the GIN's MLP)."""
        e = self._edges(gin, edge_attr, h.dtype)
        agg = pair_atom(h, index, "uL", e, "gine") if e is not None else pair_atom(h, index, "uL")
        return (1 + self.eps[self._gin_names.index(gin)]) * h + agg

    def _graph_gin(self, gin: str, x: Tensor, index: PairIndex, edge_attr: Tensor | None) -> Tensor:
        r"""``[N, F_out]``: GIN(E) on the original graph, :math:`\mathrm{MLP}((1+\epsilon) x_v + \sum_w \ldots)`."""
        e = self._edges(gin, edge_attr, x.dtype)
        if e is None:
            agg = gather_reduce(x, index.rowptr, index.col, "sum", validate=False)
        else:
            msg = torch.relu(x.index_select(0, index.col) + e.index_select(0, index.edge_id))
            agg = segment_reduce(msg, index.rowptr, "sum", validate=False)
        return self.gin_mlps[gin]((1 + self.eps[self._gin_names.index(gin)]) * x + agg)

    def forward(self, h: Tensor, index: PairIndex, edge_attr: Tensor | None = None) -> Tensor:
        self._check(h, index, edge_attr)
        diag = diagonal_rows(index)  # [N] row (v, v)
        non_root = (index.root != index.node).nonzero().view(-1)
        x_diag = h.index_select(0, diag)  # x^v_v, [N, F_in]
        subs = (index.root_ptr[1:] - index.root_ptr[:-1]).to(h.dtype)  # n_g of each node's graph
        x_mean = column_sum(h, index) / subs.clamp(min=1)[:, None]  # \bar x_v

        # Non-root pairs.
        out = (self.u["vv"](x_diag).index_select(0, index.node) + self.u["kk"](x_diag).index_select(0, index.root)
               + self.u["kv"](h))
        sub = self.gin_mlps["sub"](self._subgraph_agg("sub", h, index, edge_attr))
        if non_root.numel():
            sub = sub.index_copy(0, non_root, self.norms["sub"](sub.index_select(0, non_root)))
        out = out + sub + self.norms["sum"](self._graph_gin("sum", x_mean, index, edge_attr)).index_select(
            0, index.node)
        readout = None
        if self.use_readout:
            readout = segment_reduce(h, index.root_ptr, self.readout_pool, validate=False)  # [N], per root k
            out = out + self.u["ro"](readout).index_select(0, index.root)
        if self.use_transpose:
            out = out + self.u["vk"](pair_atom(h, index, "vu"))

        # Root pairs (separate parameters), only on the N diagonal rows.
        root_sub = self._subgraph_agg("sub_root", h, index, edge_attr).index_select(0, diag)
        root = (self.u["vv_root"](x_diag) + self.norms["sub_root"](self.gin_mlps["sub_root"](root_sub))
                + self.norms["sum_root"](self._graph_gin("sum_root", x_mean, index, edge_attr)))
        if readout is not None:
            root = root + self.u["ro_root"](readout)
        return torch.relu(out.index_copy(0, diag, root))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, edge_dim={self.edge_dim}, "
                f"use_readout={self.use_readout}, use_transpose={self.use_transpose})")
