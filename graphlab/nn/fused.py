r"""The one place where graphlab layers hand ``x_j`` / ``w_ij x_j`` aggregation to :func:`graphlab.ops.gather_reduce`.

PyG's default :meth:`MessagePassing.propagate` gathers ``x[edge_index[0]]`` (``E x F``) and scatters it. When a
layer's message is ``x_j`` or ``w_ij * x_j`` and its aggregation is ``sum``/``add``/``mean``/``max``/``min``, the
same result is

.. math:: \mathbf{h}_i = \bigoplus_{j \in \mathcal{N}(i)} w_{ij}\,\mathbf{x}_j = \texttt{gather\_reduce}(x,
   \mathrm{rowptr}, \mathrm{col}, \oplus, w)

on the CSR of the graph (rows = targets), which never materialises ``E x F`` rows.

Use :class:`FusedPropagateMixin` before the PyG base class and declare the message::

    class MyConv(FusedPropagateMixin, MessagePassing):
        FUSED_X = "x"                  # propagate kwarg holding the features (a tensor or an (x_src, x_dst) pair)
        FUSED_WEIGHT = "edge_weight"   # propagate kwarg holding w_ij, or None for plain x_j messages

Aggregation. ``aggr`` may be anything PyG's ``MessagePassing`` accepts (a name, an ``Aggregation`` instance, a
list, ``aggr_kwargs``): PyG resolves it into ``self.aggr_module``. A module of exactly the type
``SumAggregation``/``MeanAggregation``/``MaxAggregation``/``MinAggregation`` is run by the fused op; any other
(``SoftmaxAggregation``, ``PowerMeanAggregation``, ``MultiAggregation``, a user subclass) goes through PyG's path.

Dtypes. PyG's message ``w_ij * x_j`` follows torch's type promotion, so the fused path computes in
``torch.promote_types(x.dtype, w.dtype)`` (float32 features with float64 weights give a float64 output, as PyG's
layers do) and hands :func:`gather_reduce` tensors of one dtype.

Anything else the fused path does not cover falls back to PyG's own ``propagate`` unchanged: explain mode,
decomposed layers (``decomposed_layers > 1``), registered propagate/message/aggregate hooks, a custom ``update``,
``flow="target_to_source"``, ``torch_sparse.SparseTensor`` inputs. Features with more than two dimensions (a static
graph: ``x`` of shape ``[B, N, F]`` with ``node_dim=-2``) are aggregated as one ``[N, B * F]`` matrix.

CSR caching. For an ``edge_index`` tensor the CSR is built by :func:`graphlab.ops.cached_csr`, keyed on the tensor's
identity and in-place version counter (weakly held, so the entry dies with the tensor); the transpose used by the
backward pass is cached the same way on the CSR tensors. Full-batch training that passes the same ``edge_index``
every step sorts once; every new mini-batch pays one sort. For a ``torch.sparse_csr_tensor`` adjacency (``adj_t``,
rows = targets) its own ``crow_indices``/``col_indices``/``values`` are used (values are the weights ``w_ij``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch_geometric.nn import aggr as pyg_aggr
from torch_geometric.nn.conv import MessagePassing

from graphlab.ops import IdentityCache, cached_csr, gather_reduce

FUSED_AGGRS: dict[str, str] = {"add": "sum", "sum": "sum", "mean": "mean", "max": "max", "min": "min"}

# Exact types only: a subclass may override ``forward`` and must keep its own semantics.
FUSED_MODULES: dict[type, str] = {
    pyg_aggr.SumAggregation: "sum",
    pyg_aggr.MeanAggregation: "mean",
    pyg_aggr.MaxAggregation: "max",
    pyg_aggr.MinAggregation: "min",
}

_SPARSE_CACHE = IdentityCache()


def is_edge_index(edge_index: Any) -> bool:
    """A dense ``[2, E]`` integer tensor (PyG's ``edge_index``, incl. its ``EdgeIndex`` subclass)."""
    return (
        isinstance(edge_index, Tensor)
        and edge_index.layout == torch.strided
        and edge_index.dim() == 2
        and not edge_index.is_floating_point()
    )


def is_sparse_csr(adj: Any) -> bool:
    return isinstance(adj, Tensor) and adj.layout == torch.sparse_csr


def _sparse_csr_index(adj_t: Tensor) -> tuple[Tensor, Tensor]:
    """Stable ``(rowptr, col)`` copies of a sparse CSR adjacency's indices, cached per ``adj_t`` so that the
    transpose cache (keyed on tensor identity) hits; the values are read fresh every call (they may carry a
    gradient)."""

    def build() -> tuple[Tensor, Tensor]:
        return adj_t.crow_indices().clone(), adj_t.col_indices().clone()

    return _SPARSE_CACHE.get_or_build([adj_t], "index", build)


def fused_reduce_of(aggr_module: Any) -> str | None:
    """The fused reduction equal to a resolved PyG aggregation module, or ``None`` when it has none."""
    return FUSED_MODULES.get(type(aggr_module))


def _nodes_first(x: Tensor, node_dim: int) -> tuple[Tensor, int, torch.Size]:
    """``x`` as a ``[N, rest]`` matrix with the node axis first, that axis and the shape of ``rest`` (to undo it)."""
    axis = node_dim % x.dim()
    moved = x.movedim(axis, 0)
    rest = moved.shape[1:]
    return moved.reshape(moved.size(0), math.prod(rest)), axis, rest  # explicit: -1 is ambiguous with 0 nodes


def aggregate_csr(
    x_src: Tensor,
    rowptr: Tensor,
    col: Tensor,
    reduce: str,
    weight: Tensor | None = None,
    node_dim: int = 0,
) -> Tensor:
    r"""``h_i = reduce_{k in row i} w_k x_{col_k}`` along ``node_dim`` of ``x_src``, in PyG's output dtype.

    ``rowptr``/``col``/``weight`` are a CSR this module built (rows = targets), so the index checks of
    :func:`gather_reduce` are skipped. ``x_src`` is promoted to PyG's output dtype here; :func:`gather_reduce`
    casts a floating ``weight`` to that dtype itself (an integer one, which it rejects, is cast here).

    Args:
        x_src: source features, nodes along ``node_dim`` (``[N_src, F]`` or e.g. ``[B, N_src, F]``).
        rowptr, col: the CSR, ``[N_dst + 1]`` and ``[E]``.
        reduce: ``"sum" | "mean" | "max" | "min"``.
        weight: optional ``[E]`` weights in CSR order; any floating dtype.
        node_dim: the node axis of ``x_src``.

    Returns:
        the aggregation with ``x_src``'s shape except ``N_dst`` along ``node_dim``, in
        ``torch.promote_types(x_src.dtype, weight.dtype)`` (as PyG's ``w_ij * x_j`` message).
    """
    if weight is not None:
        if weight.device != x_src.device:
            raise ValueError(
                f"edge_weight is on {weight.device} but x is on {x_src.device}; move them to one device"
            )
        dtype = torch.promote_types(x_src.dtype, weight.dtype)
        x_src = x_src.to(dtype)
        if not weight.is_floating_point():
            weight = weight.to(dtype)
    matrix, axis, rest = _nodes_first(x_src, node_dim)
    out = gather_reduce(matrix, rowptr, col, FUSED_AGGRS.get(reduce, reduce), weight, validate=False)
    return out.reshape(out.size(0), *rest).movedim(0, axis)


def fused_aggregate(
    x_src: Tensor,
    adj: Tensor,
    reduce: str,
    edge_weight: Tensor | None = None,
    num_dst: int | None = None,
    node_dim: int = 0,
) -> Tensor:
    r"""``h_i = reduce_{j -> i} w_ij x_j`` for ``adj`` = ``edge_index`` ``[2, E]`` or a sparse CSR ``adj_t``.

    Args:
        x_src: ``[N_src, F]`` source features (or more dimensions, nodes along ``node_dim``).
        adj: ``edge_index`` (row 0 sources, row 1 targets) or ``torch.sparse_csr`` ``[N_dst, N_src]``.
        reduce: ``"sum" | "mean" | "max" | "min"`` (``"add"`` is accepted for ``"sum"``).
        edge_weight: optional ``[E]`` weights in ``edge_index`` order (ignored for a sparse ``adj``, whose values
            are the weights).
        num_dst: number of targets; defaults to ``N_src`` for ``edge_index`` (square graph).
        node_dim: the node axis of ``x_src``.

    Returns:
        the aggregation, in the promoted dtype of ``x_src`` and the weights (see :func:`aggregate_csr`).
    """
    num_src = x_src.size(node_dim)
    if is_sparse_csr(adj):
        rowptr, col = _sparse_csr_index(adj)
        return aggregate_csr(x_src, rowptr, col, reduce, adj.values(), node_dim)
    num_dst = num_src if num_dst is None else num_dst
    rowptr, col, perm = cached_csr(adj, (num_src, num_dst))
    weight = None
    if edge_weight is not None:
        if not isinstance(edge_weight, Tensor) or edge_weight.dim() != 1 or edge_weight.numel() != perm.numel():
            shape = tuple(edge_weight.shape) if isinstance(edge_weight, Tensor) else type(edge_weight).__name__
            raise ValueError(
                f"edge_weight has shape {shape} but edge_index has {perm.numel()} edges; pass one weight per edge"
            )
        weight = edge_weight.index_select(0, perm.to(edge_weight.device))
    return aggregate_csr(x_src, rowptr, col, reduce, weight, node_dim)


def _split_features(x: Any) -> tuple[Tensor | None, Tensor | None]:
    if isinstance(x, Tensor):
        return x, x
    if isinstance(x, Sequence) and len(x) == 2 and isinstance(x[0], Tensor):
        return x[0], x[1]
    return None, None


_HOOKS = (
    "_propagate_forward_pre_hooks", "_propagate_forward_hooks", "_message_forward_pre_hooks",
    "_message_forward_hooks", "_aggregate_forward_pre_hooks", "_aggregate_forward_hooks",
    "_message_and_aggregate_forward_pre_hooks", "_message_and_aggregate_forward_hooks",
)


class FusedPropagateMixin:
    """Route ``propagate`` through :func:`fused_aggregate` when the message is ``x_j`` or ``w_ij x_j``.

    Subclasses set :attr:`FUSED_X` (the propagate keyword holding features) and :attr:`FUSED_WEIGHT` (the keyword
    holding per-edge weights, or ``None``). Place the mixin before the PyG base class.
    """

    FUSED_X: str = "x"
    FUSED_WEIGHT: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # PyG compiles a jinja `propagate` into every class that does not define one itself; defining it in the
        # class body keeps our override (PyG then falls back to the plain method, which is ours).
        cls.propagate = FusedPropagateMixin.propagate  # type: ignore[method-assign]

    def _fused_reduce(self) -> str | None:
        """The fused reduction for this layer's current settings, or ``None`` when PyG's path must run."""
        mp: Any = self
        reduce = fused_reduce_of(getattr(mp, "aggr_module", None))
        if reduce is None:
            return None
        if mp.explain or mp.decomposed_layers != 1 or any(len(getattr(mp, name)) for name in _HOOKS):
            return None
        if mp.flow != "source_to_target":
            return None
        if type(self).update is not MessagePassing.update:
            return None
        return reduce

    def propagate(self, edge_index: Any, size: Any = None, **kwargs: Any) -> Tensor:
        reduce = self._fused_reduce()
        x_src, x_dst = _split_features(kwargs.get(self.FUSED_X))
        plain = is_edge_index(edge_index) or is_sparse_csr(edge_index)
        if reduce is None or x_src is None or x_src.dim() < 2 or x_src.is_sparse or not plain:
            return MessagePassing.propagate(self, edge_index, size=size, **kwargs)  # type: ignore[arg-type]
        node_dim: int = self.node_dim  # type: ignore[attr-defined]
        weight = kwargs.get(self.FUSED_WEIGHT) if self.FUSED_WEIGHT else None
        if is_sparse_csr(edge_index):
            num_dst = edge_index.size(0)
        elif size is not None and size[1] is not None:
            num_dst = int(size[1])
        else:
            num_dst = x_src.size(node_dim) if x_dst is None else x_dst.size(node_dim)
        return fused_aggregate(x_src, edge_index, reduce, weight, num_dst, node_dim)
