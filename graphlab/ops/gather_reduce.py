r"""``gather_reduce``: the fused ``x[col]``-then-reduce primitive behind message passing.

.. math::
    \mathrm{out}_i = \bigoplus_{e=\mathrm{rowptr}_i}^{\mathrm{rowptr}_{i+1}-1} w_e \, x_{\mathrm{col}_e},
    \qquad \bigoplus \in \{\textstyle\sum, \mathrm{mean}, \max, \min\}

One public function dispatches to three paths (see :mod:`graphlab.ops._backend`): the reference
(:func:`graphlab.ops.reference.gather_reduce`), the CPU path (:mod:`graphlab.ops._cpu`) and the Triton kernels
(:mod:`graphlab.kernels.gather_reduce`). None of the fast paths materialises per-edge rows ``E x F``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from graphlab.ops import reference
from graphlab.ops._backend import record_path, resolve_backend, validation_enabled
from graphlab.ops.csr import cached_transpose, check_csr
from graphlab.ops.reference import REDUCES, Reduce

OP_NAME = "gather_reduce"


def check_features(name: str, x: Any) -> None:
    """``x`` must be a floating-point ``[N, F]`` tensor."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} has dtype {x.dtype}; it must be floating point (call {name}.float())")
    if x.dim() != 2:
        raise ValueError(
            f"{name} must be 2-dimensional [N, F], got shape {tuple(x.shape)}; reshape it, e.g. "
            f"{name}.view({name}.size(0), -1)"
        )


def check_reduce(reduce: Any) -> None:
    if reduce not in REDUCES:
        raise ValueError(f"reduce must be one of {', '.join(repr(r) for r in REDUCES)}, got {reduce!r}")


def _check_inputs(x: Tensor, rowptr: Tensor, col: Tensor, reduce: str, edge_weight: Tensor | None) -> None:
    check_reduce(reduce)
    check_features("x", x)
    check_csr(rowptr, col, x.size(0), edge_weight)
    if x.device != col.device:
        raise ValueError(f"x is on {x.device} but col is on {col.device}; move them to one device")
    if edge_weight is not None and edge_weight.dtype != x.dtype:
        raise ValueError(
            f"edge_weight has dtype {edge_weight.dtype} but x has {x.dtype}; cast one of them to match"
        )


def gather_reduce(
    x: Tensor,
    rowptr: Tensor,
    col: Tensor,
    reduce: Reduce = "sum",
    edge_weight: Tensor | None = None,
    *,
    validate: bool | None = None,
) -> Tensor:
    r"""Fused gather-reduce over a CSR graph without materialising per-edge rows.

    .. math::
        \mathrm{out}_i = \bigoplus_{e=\mathrm{rowptr}_i}^{\mathrm{rowptr}_{i+1}-1} w_e \, x_{\mathrm{col}_e}

    Empty rows give 0, ``mean`` divides by ``max(deg_i, 1)``, and ``max``/``min`` send the gradient only to the
    first edge of the row (in CSR order) that attains the extremum. Differentiable w.r.t. ``x`` and
    ``edge_weight``.

    Args:
        x: ``[N_src, F]`` floating-point source features.
        rowptr: ``[N + 1]`` int64/int32 row pointers (rows are targets), e.g. from :func:`graphlab.ops.to_csr`.
        col: ``[E]`` int64/int32 source index per edge in CSR order.
        reduce: ``"sum" | "mean" | "max" | "min"``.
        edge_weight: optional ``[E]`` weights in CSR order (``to_csr(...).weight`` or ``w[perm]``).
        validate: check the inputs (ValueError naming the problem); ``None`` follows
            :class:`graphlab.ops.set_validation` (on by default).

    Returns:
        ``[N, F]`` tensor with the dtype of ``x``.
    """
    if validation_enabled() if validate is None else validate:
        _check_inputs(x, rowptr, col, reduce, edge_weight)
    path = resolve_backend(x, rowptr, col, edge_weight)
    record_path(OP_NAME, path)
    if path == "reference":
        return reference.gather_reduce(x, rowptr, col, reduce, edge_weight)
    if path == "cpu":
        from graphlab.ops import _cpu

        _require_cpu(x)
        return _cpu.gather_reduce(x, rowptr, col, reduce, edge_weight)
    from graphlab.kernels import gather_reduce as triton_gather_reduce

    num_cols = x.size(0)
    return triton_gather_reduce.gather_reduce(
        x, rowptr, col, reduce, edge_weight, lambda: cached_transpose(rowptr, col, num_cols)
    )


def _require_cpu(x: Tensor) -> None:
    if x.device.type != "cpu":
        raise RuntimeError(
            f"the 'cpu' path needs CPU tensors but x is on {x.device}; use set_backend('auto') or 'triton'"
        )
