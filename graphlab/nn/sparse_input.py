r"""``DropoutLinear``: :math:`Y = \mathrm{dropout}_p(X)\,W^\top + b` computed from the non-zeros of ``X``.

Node features of citation and web graphs are bags of words: Cora's ``2708 x 1433`` matrix is 1.3 % non-zero,
CiteSeer's ``3327 x 3703`` under 1 %. Input dropout followed by the first linear layer (NSD, GCN, GAT, ...)
then spends nearly all of its time drawing a Bernoulli mask for millions of zeros and multiplying them by
``W`` (on one CPU thread, ``F.dropout`` of Cora's features alone takes ~0.1 s, half an NSD epoch).

Dropout never changes a zero, so masking only the stored non-zeros is the same random function:

.. math:: \mathrm{dropout}_p(X)_{ij} = X_{ij}\,m_{ij}/(1-p), \quad m_{ij} \sim \mathrm{Bernoulli}(1-p),

and :math:`Y_i = b + \sum_{j:\,X_{ij}\neq 0} \big(X_{ij} m_{ij}/(1-p)\big)\, W_{:,j}` is one
:func:`graphlab.ops.gather_reduce` over the CSR of ``X`` (rows = nodes, columns = input channels) with the
masked values as edge weights, differentiable in ``W`` and ``b``. The CSR of ``X`` is built once per tensor
(identity and in-place version, as :func:`graphlab.ops.cached_csr` does for graphs) and reused every step of
full-batch training. Dense inputs (density above ``sparse_threshold``), inputs that require a gradient and
inputs of other shapes take the plain ``F.linear(F.dropout(x))`` path.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlab.nn._checks import check_feature_dtype
from graphlab.ops import IdentityCache, gather_reduce

__all__ = ["DropoutLinear", "RowSparse", "row_sparse"]

_ROW_SPARSE_CACHE = IdentityCache(max_entries=16)


class RowSparse(NamedTuple):
    """The non-zeros of a dense ``[N, F]`` matrix in CSR form (``rowptr [N+1]``, ``col [nnz]``, ``value [nnz]``)."""

    rowptr: Tensor
    col: Tensor
    value: Tensor


def _build_row_sparse(x: Tensor, max_density: float) -> tuple[Optional[RowSparse]]:
    with torch.inference_mode(False):  # built under validation, reused (and saved for backward) in training
        return (_nonzeros(x, max_density),)


def _nonzeros(x: Tensor, max_density: float) -> Optional[RowSparse]:
    row, col = (x != 0).nonzero(as_tuple=True)  # row-major order: already sorted by row
    if row.numel() > max_density * x.numel():
        return None
    rowptr = torch.zeros(x.size(0) + 1, dtype=torch.long, device=x.device)
    rowptr[1:] = torch.bincount(row, minlength=x.size(0)).cumsum(0)
    return RowSparse(rowptr, col, x[row, col].contiguous())


def row_sparse(x: Tensor, max_density: float = 0.1) -> Optional[RowSparse]:
    """The CSR non-zeros of a 2-D ``x``, or ``None`` when more than ``max_density`` of it is non-zero.

    Cached per tensor identity and in-place version: a feature matrix passed every step is scanned once.
    """
    if x.dim() != 2:
        raise ValueError(f"x must be 2-dimensional [N, F], got shape {tuple(x.shape)}")
    (found,) = _ROW_SPARSE_CACHE.get_or_build([x], ("row_sparse", float(max_density)),
                                              lambda: _build_row_sparse(x, max_density))
    return found


class DropoutLinear(nn.Linear):
    r"""``Linear(in, out)`` applied to ``dropout_p(x)``, skipping the zeros of a sparse ``x``.

    A drop-in for ``F.dropout(x, p, training)`` followed by ``nn.Linear`` (same parameters and state-dict keys,
    same distribution of outputs): see the module docstring for the identity it uses.

    Args:
        in_features, out_features, bias: as :class:`torch.nn.Linear`.
        p: dropout probability on the input, in ``[0, 1)``.
        sparse_threshold: use the non-zero path when at most this fraction of ``x`` is non-zero.
    """

    def __init__(self, in_features: int, out_features: int, p: float = 0.0, bias: bool = True,
                 sparse_threshold: float = 0.1) -> None:
        super().__init__(in_features, out_features, bias=bias)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must lie in [0, 1), got {p}")
        if not 0.0 <= sparse_threshold <= 1.0:
            raise ValueError(f"sparse_threshold must lie in [0, 1], got {sparse_threshold}")
        self.p, self.sparse_threshold = p, sparse_threshold

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"

    def forward(self, x: Tensor) -> Tensor:
        check_feature_dtype(self, x, self.weight)
        sparse = None
        if (x.dim() == 2 and x.size(-1) == self.in_features and x.size(0) > 0 and not x.requires_grad
                and x.dtype == self.weight.dtype and self.sparse_threshold > 0):
            sparse = row_sparse(x, self.sparse_threshold)
        if sparse is None:
            return F.linear(F.dropout(x, self.p, self.training), self.weight, self.bias)
        value = sparse.value
        if self.training and self.p > 0:
            keep = torch.empty_like(value).bernoulli_(1.0 - self.p)
            value = value * keep / (1.0 - self.p)
        out = gather_reduce(self.weight.t().contiguous(), sparse.rowptr, sparse.col, "sum", edge_weight=value)
        return out if self.bias is None else out + self.bias
