r"""graphlab's GCN, GraphSAGE and GIN convolutions: PyG's layers, aggregated through :mod:`graphlab.ops`.

Each class subclasses the PyG layer of the same name (same constructor signature, same parameters and
``state_dict`` keys, same ``reset_parameters``), and only changes *how* the neighbourhood is aggregated: through
:func:`graphlab.ops.gather_reduce` on a cached CSR instead of gathering ``E x F`` messages and scattering them (see
:mod:`graphlab.nn.fused`). Inputs and cases the fused path does not cover fall back to PyG's code.

Dtypes follow PyG: edge weights of another floating dtype than the features promote the output (float32 ``x`` with
float64 ``edge_weight`` gives float64, as ``torch_geometric.nn.GCNConv`` does). Features whose dtype differs from
the layer's parameters raise a ``TypeError`` naming ``x`` (PyG's ``Linear`` raises an unnamed ``RuntimeError``),
except under ``torch.autocast``, which casts them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch_geometric.nn import conv as pyg_conv
from torch_geometric.nn.conv import GINEConv

from graphlab.nn._checks import check_feature_dtype
from graphlab.nn.fused import FusedPropagateMixin, aggregate_csr, is_edge_index
from graphlab.ops import CSR, IdentityCache, to_csr

__all__ = ["GCNConv", "GINConv", "GINEConv", "SAGEConv", "gcn_norm_csr"]

_GCN_CACHE = IdentityCache()


class _LoopedGraph:
    """Structure of ``edge_index`` with remaining self loops added (as PyG's ``add_remaining_self_loops``), in CSR.

    ``keep`` are the positions of the non-loop edges, ``loop_pos``/``loop_node`` the existing self loops (the last
    one per node when a node has several: its weight is the one kept, as in PyG), and ``csr`` the CSR of
    ``[edge_index[:, keep], (0..N-1, 0..N-1)]`` whose ``perm`` indexes that augmented list.
    """

    def __init__(self, edge_index: Tensor, num_nodes: int, add_loops: bool) -> None:
        src, dst = edge_index[0], edge_index[1]
        if add_loops:
            is_loop = src == dst
            self.keep = torch.nonzero(~is_loop).view(-1)
            loop_pos = torch.nonzero(is_loop).view(-1)
            last = torch.full((num_nodes,), -1, dtype=torch.long, device=edge_index.device)
            last.scatter_reduce_(0, src.index_select(0, loop_pos).long(), loop_pos, "amax")
            self.loop_node = torch.nonzero(last >= 0).view(-1)
            self.loop_pos = last.index_select(0, self.loop_node)
            nodes = torch.arange(num_nodes, device=edge_index.device, dtype=edge_index.dtype)
            augmented = torch.cat([edge_index.index_select(1, self.keep), torch.stack([nodes, nodes])], dim=1)
        else:
            self.keep = self.loop_pos = self.loop_node = None
            augmented = edge_index
        self.add_loops = add_loops
        self.num_nodes = num_nodes
        self.num_edges = edge_index.size(1)
        self.csr: CSR = to_csr(augmented, num_nodes)

    def weights(self, edge_weight: Tensor | None, fill: float, dtype: torch.dtype, device: torch.device) -> Tensor:
        """Weights of the augmented edge list: ``w[keep]`` then one loop weight per node (existing loops kept)."""
        if not self.add_loops:
            return edge_weight if edge_weight is not None else torch.ones(self.num_edges, dtype=dtype, device=device)
        if edge_weight is None:
            edge_weight = torch.ones(self.num_edges, dtype=dtype, device=device)
        loop_weight = torch.full((self.num_nodes,), fill, dtype=edge_weight.dtype, device=device)
        loop_weight = loop_weight.index_put((self.loop_node,), edge_weight.index_select(0, self.loop_pos))
        return torch.cat([edge_weight.index_select(0, self.keep), loop_weight])


def gcn_norm_csr(
    edge_index: Tensor,
    edge_weight: Tensor | None,
    num_nodes: int,
    improved: bool = False,
    add_self_loops: bool = True,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""GCN normalisation in CSR order: ``(rowptr, col, w)`` with
    :math:`w_{ij} = \hat d_i^{-1/2} \hat a_{ij} \hat d_j^{-1/2}`, :math:`\hat A = A + \text{fill}\cdot I` (remaining
    self loops, fill 2 if ``improved``) and :math:`\hat d_i = \sum_j \hat a_{ij}` over incoming edges.

    Equal to PyG's ``gcn_norm`` (flow ``source_to_target``) up to edge order; the structure (self loops + CSR
    sort) is cached per ``edge_index`` tensor, the weights are recomputed each call (they may carry gradients).
    """
    graph: _LoopedGraph = _GCN_CACHE.get_or_build(
        [edge_index], (num_nodes, add_self_loops), lambda: _LoopedGraph(edge_index, num_nodes, add_self_loops)
    )
    rowptr, col, perm = graph.csr
    weight = graph.weights(edge_weight, 2.0 if improved else 1.0, dtype, edge_index.device).index_select(0, perm)
    row = _csr_rows(rowptr, col.numel())
    deg = torch.zeros(num_nodes, dtype=weight.dtype, device=weight.device).index_add_(0, row, weight)
    deg_inv_sqrt = deg.pow(-0.5).masked_fill(deg == 0, 0.0)
    weight = deg_inv_sqrt.index_select(0, row) * weight * deg_inv_sqrt.index_select(0, col.long())
    return rowptr, col, weight


def _csr_rows(rowptr: Tensor, num_edges: int) -> Tensor:
    """The int64 row (target) of every CSR edge; ``num_edges`` is given so that no ``rowptr[-1]`` sync is needed
    (:func:`graphlab.ops.reference.csr_row_index` reads it from the device)."""
    counts = (rowptr[1:] - rowptr[:-1]).long()
    return torch.repeat_interleave(torch.arange(counts.numel(), device=rowptr.device), counts, output_size=num_edges)


def csr_to_edge_index(rowptr: Tensor, col: Tensor) -> Tensor:
    """The ``[2, E]`` ``edge_index`` (row 0 sources, row 1 targets) of a CSR whose rows are targets."""
    return torch.stack([col, _csr_rows(rowptr, col.numel()).to(col.dtype)])


class GCNConv(FusedPropagateMixin, pyg_conv.GCNConv):
    r"""Graph convolution of Kipf & Welling, `Semi-Supervised Classification with Graph Convolutional Networks
    <https://arxiv.org/abs/1609.02907>`_ (ICLR 2017), aggregated with :func:`graphlab.ops.gather_reduce`.

    .. math::
        \mathbf{X}' = \hat{\mathbf{D}}^{-1/2} \hat{\mathbf{A}} \hat{\mathbf{D}}^{-1/2} \mathbf{X} \mathbf{\Theta},
        \qquad \mathbf{x}'_i = \mathbf{\Theta}^\top \sum_{j \in \mathcal{N}(i) \cup \{i\}}
        \frac{e_{j,i}}{\sqrt{\hat d_j \hat d_i}} \mathbf{x}_j

    with :math:`\hat{\mathbf{A}} = \mathbf{A} + \mathbf{I}` (``2I`` if ``improved``), :math:`\hat d_i = 1 +
    \sum_{j} e_{j,i}` and edge weights :math:`e_{j,i}` (default 1).

    Args: identical to :class:`torch_geometric.nn.GCNConv` (``in_channels``, ``out_channels``, ``improved=False``,
        ``cached=False``, ``add_self_loops=None``, ``normalize=True``, ``bias=True``, ``**kwargs``). With
        ``cached=True`` the normalised graph is computed once and kept where PyG keeps it,
        ``_cached_edge_index = (edge_index, edge_weight)`` (transductive use only; ``reset_parameters`` clears it).

    Shapes:
        input ``x`` ``[N, F_in]`` (or ``[B, N, F_in]``: a static graph), ``edge_index`` ``[2, E]`` or sparse
        ``[N, N]``, ``edge_weight`` ``[E]``; output ``[N, F_out]`` (``[B, N, F_out]``).
    """

    FUSED_X = "x"
    FUSED_WEIGHT = "edge_weight"

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        check_feature_dtype(self, x, self.lin.weight)
        reduce = self._fused_reduce()
        fusable = self.normalize and isinstance(x, Tensor) and not x.is_sparse and is_edge_index(edge_index)
        if reduce is None or not fusable or self._cached_edge_index is not None:
            # PyG's forward; it reads `_cached_edge_index` and propagates through the fused `propagate`
            return super().forward(x, edge_index, edge_weight)
        rowptr, col, weight = gcn_norm_csr(edge_index, edge_weight, x.size(self.node_dim), self.improved,
                                           self.add_self_loops, x.dtype)
        if self.cached:  # the attribute PyG's users read (and reset), in PyG's (edge_index, edge_weight) form
            self._cached_edge_index = (csr_to_edge_index(rowptr, col), weight)
            return super().forward(x, edge_index, edge_weight)
        out = aggregate_csr(self.lin(x), rowptr, col, reduce, weight, self.node_dim)
        return out + self.bias if self.bias is not None else out


class SAGEConv(FusedPropagateMixin, pyg_conv.SAGEConv):
    r"""GraphSAGE of Hamilton et al., `Inductive Representation Learning on Large Graphs
    <https://arxiv.org/abs/1706.02216>`_ (NeurIPS 2017), aggregated with :func:`graphlab.ops.gather_reduce`.

    .. math::
        \mathbf{x}'_i = \mathbf{W}_1 \mathbf{x}_i + \mathbf{W}_2 \cdot
        \bigoplus_{j \in \mathcal{N}(i)} \mathbf{x}_j, \qquad \bigoplus \in \{\mathrm{mean}, \mathrm{sum},
        \max, \min\}

    Args: identical to :class:`torch_geometric.nn.SAGEConv` (``in_channels``, ``out_channels``, ``aggr="mean"``,
        ``normalize=False``, ``root_weight=True``, ``project=False``, ``bias=True``, ``**kwargs``). Aggregation
        modules or lists (``"lstm"``, ``["mean", "max"]``) use PyG's unfused path.

    Shapes:
        input ``x`` ``[N, F_in]`` or a pair ``([N_src, F_in], [N_dst, F_in])``, ``edge_index`` ``[2, E]``;
        output ``[N_dst, F_out]``.
    """

    FUSED_X = "x"
    FUSED_WEIGHT = None

    def forward(self, x: Any, edge_index: Any, size: Any = None) -> Tensor:
        check_feature_dtype(self, x, self.lin_l.weight)
        return super().forward(x, edge_index, size)


class GINConv(FusedPropagateMixin, pyg_conv.GINConv):
    r"""Graph isomorphism network of Xu et al., `How Powerful are Graph Neural Networks?
    <https://arxiv.org/abs/1810.00826>`_ (ICLR 2019), aggregated with :func:`graphlab.ops.gather_reduce`.

    .. math::
        \mathbf{x}'_i = h_{\mathbf{\Theta}}\Big((1 + \epsilon)\,\mathbf{x}_i + \sum_{j \in \mathcal{N}(i)}
        \mathbf{x}_j\Big)

    Args: identical to :class:`torch_geometric.nn.GINConv` (``nn``, ``eps=0.0``, ``train_eps=False``,
        ``**kwargs``).

    Shapes:
        input ``x`` ``[N, F_in]`` or a pair, ``edge_index`` ``[2, E]``; output ``[N_dst, F_out]``.
    """

    FUSED_X = "x"
    FUSED_WEIGHT = None
