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

Anything the fused path does not cover falls back to PyG's own ``propagate`` unchanged: explain mode,
decomposed layers, registered propagate/message/aggregate hooks, a custom ``update``, ``flow="target_to_source"``,
aggregation modules or lists, ``torch_sparse.SparseTensor`` inputs.

CSR caching. For an ``edge_index`` tensor the CSR is built by :func:`graphlab.ops.cached_csr`, keyed on the tensor's
identity and in-place version counter (weakly held, so the entry dies with the tensor); the transpose used by the
backward pass is cached the same way on the CSR tensors. Full-batch training that passes the same ``edge_index``
every step sorts once; every new mini-batch pays one sort. For a ``torch.sparse_csr_tensor`` adjacency (``adj_t``,
rows = targets) its own ``crow_indices``/``col_indices``/``values`` are used (values are the weights ``w_ij``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing

from graphlab.ops import cached_csr, gather_reduce
from graphlab.ops.csr import IdentityCache

FUSED_AGGRS: dict[str, str] = {"add": "sum", "sum": "sum", "mean": "mean", "max": "max", "min": "min"}

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


def fused_aggregate(
    x_src: Tensor,
    adj: Tensor,
    reduce: str,
    edge_weight: Tensor | None = None,
    num_dst: int | None = None,
) -> Tensor:
    r"""``h_i = reduce_{j -> i} w_ij x_j`` for ``adj`` = ``edge_index`` ``[2, E]`` or a sparse CSR ``adj_t``.

    Args:
        x_src: ``[N_src, F]`` source features.
        adj: ``edge_index`` (row 0 sources, row 1 targets) or ``torch.sparse_csr`` ``[N_dst, N_src]``.
        reduce: ``"sum" | "mean" | "max" | "min"`` (``"add"`` is accepted for ``"sum"``).
        edge_weight: optional ``[E]`` weights in ``edge_index`` order (ignored for a sparse ``adj``, whose values
            are the weights).
        num_dst: number of targets; defaults to ``N_src`` for ``edge_index`` (square graph).
    """
    reduce = FUSED_AGGRS.get(reduce, reduce)
    if is_sparse_csr(adj):
        rowptr, col = _sparse_csr_index(adj)
        return gather_reduce(x_src, rowptr, col, reduce, adj.values().to(x_src.dtype))
    num_dst = x_src.size(0) if num_dst is None else num_dst
    rowptr, col, perm = cached_csr(adj, (x_src.size(0), num_dst))
    weight = None
    if edge_weight is not None:
        if edge_weight.dim() != 1 or edge_weight.numel() != perm.numel():
            raise ValueError(
                f"edge_weight has shape {tuple(edge_weight.shape)} but edge_index has {perm.numel()} edges; "
                f"pass one weight per edge"
            )
        weight = edge_weight.index_select(0, perm)
    return gather_reduce(x_src, rowptr, col, reduce, weight, validate=False)


def _split_features(x: Any) -> tuple[Tensor | None, Tensor | None]:
    if isinstance(x, Tensor):
        return x, x
    if isinstance(x, Sequence) and len(x) == 2 and isinstance(x[0], Tensor):
        return x[0], x[1]
    return None, None


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
        mp: Any = self
        aggr = getattr(mp, "aggr", None)
        if not isinstance(aggr, str) or aggr not in FUSED_AGGRS:
            return None
        hooks = (
            mp._propagate_forward_pre_hooks, mp._propagate_forward_hooks, mp._message_forward_pre_hooks,
            mp._message_forward_hooks, mp._aggregate_forward_pre_hooks, mp._aggregate_forward_hooks,
        )
        if mp.explain or mp.decomposed_layers != 1 or any(len(h) for h in hooks):
            return None
        if mp.flow != "source_to_target" or mp.node_dim not in (0, -2):
            return None
        if type(self).update is not MessagePassing.update:
            return None
        return FUSED_AGGRS[aggr]

    def propagate(self, edge_index: Any, size: Any = None, **kwargs: Any) -> Tensor:
        reduce = self._fused_reduce()
        x_src, x_dst = _split_features(kwargs.get(self.FUSED_X))
        plain = is_edge_index(edge_index) or is_sparse_csr(edge_index)
        if reduce is None or x_src is None or x_src.dim() != 2 or not plain:
            return MessagePassing.propagate(self, edge_index, size=size, **kwargs)  # type: ignore[arg-type]
        weight = kwargs.get(self.FUSED_WEIGHT) if self.FUSED_WEIGHT else None
        if is_sparse_csr(edge_index):
            num_dst = edge_index.size(0)
        elif size is not None and size[1] is not None:
            num_dst = int(size[1])
        else:
            num_dst = x_src.size(0) if x_dst is None else x_dst.size(0)
        return fused_aggregate(x_src, edge_index, reduce, weight, num_dst)
