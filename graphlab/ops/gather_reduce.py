r"""``gather_reduce``: the fused ``x[col]``-then-reduce primitive behind message passing.

.. math::
    \mathrm{out}_i = \bigoplus_{e=\mathrm{rowptr}_i}^{\mathrm{rowptr}_{i+1}-1} w_e \, x_{\mathrm{col}_e},
    \qquad \bigoplus \in \{\textstyle\sum, \mathrm{mean}, \max, \min\}

One public function dispatches to three paths (see :mod:`graphlab.ops._backend`): the reference
(:func:`graphlab.ops.reference.gather_reduce`), and the CPU / Triton paths, which share one
``autograd.Function`` (:class:`GatherReduce`) over the kernel tables of :mod:`graphlab.ops._kernel_table`
(``"cpu-native"``, ``"cpu-torch"``, ``"triton"``), called through the ``torch.library`` ops of
:mod:`graphlab.ops._library`. None of the fast paths materialises per-edge rows ``E x F``.

Backward, with :math:`g = \partial L / \partial \mathrm{out}` and :math:`c_i = \max(\deg_i, 1)` for ``mean``
(1 otherwise): :math:`\partial L/\partial x = A^\top (g / c)`, :math:`\partial L/\partial w_e = \langle g_i,
x_{\mathrm{col}_e}\rangle / c_i`; for ``max``/``min`` the gradient flows through the arg edge of each
(row, feature) only, :math:`\partial x_{\mathrm{col}_a, f} \mathrel{+}= w_a g_{i,f}`, :math:`\partial w_a
\mathrel{+}= g_{i,f} x_{\mathrm{col}_a, f}`.

Dtypes (checked on every call, independently of :class:`graphlab.ops.set_validation`): ``x`` is any floating
dtype; ``edge_weight`` of another floating dtype is cast to ``x``'s dtype (the result has ``x``'s dtype and the
weight's gradient flows back in the weight's own dtype); ``rowptr`` and ``col`` are int32 or int64, not
necessarily the same. float32/float64 run on the native CPU kernels, bfloat16/float16 on the torch CPU ops.
Non-contiguous and expanded inputs are accepted (copied where a kernel needs contiguous memory).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from graphlab.ops import _cpu, _library, reference
from graphlab.ops._backend import record_path, resolve_backend, validation_enabled
from graphlab.ops.csr import _check_edge_weight, _check_index_tensor, check_csr
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


def _check_cheap(x: Tensor, rowptr: Tensor, col: Tensor, reduce: str, edge_weight: Tensor | None) -> None:
    """O(1) checks that run on every call: types, dtypes, dimensions, sizes, devices."""
    check_reduce(reduce)
    check_features("x", x)
    _check_index_tensor("rowptr", rowptr, 1)
    _check_index_tensor("col", col, 1)
    if edge_weight is not None:
        _check_edge_weight(edge_weight, col.numel(), "col", col.device)
    for name, t in (("rowptr", rowptr), ("col", col)):
        if t.device != x.device:
            raise ValueError(f"x is on {x.device} but {name} is on {t.device}; move them to one device")


class GatherReduce(torch.autograd.Function):
    """The one autograd definition of gather-reduce; ``kernel`` names the kernel table (module docstring)."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, rowptr: Tensor, col: Tensor, weight: Tensor | None, reduce: str, kernel: str
    ) -> Tensor:
        want_arg = reduce in ("max", "min") and (ctx.needs_input_grad[0] or ctx.needs_input_grad[3])
        out, arg = _library.gather_reduce_fwd(x, rowptr, col, weight, reduce, want_arg, kernel)
        ctx.reduce, ctx.kernel = reduce, kernel
        ctx.save_for_backward(x, rowptr, col, weight, arg)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, rowptr, col, weight, arg = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[3]
        grad = grad.contiguous()
        grad_x = grad_w = None
        if ctx.reduce in ("max", "min"):
            gx, gw = _library.gather_reduce_arg_bwd(rowptr, col, weight, arg, grad, x, need_x, need_w, ctx.kernel)
            grad_x, grad_w = (gx if need_x else None), (gw if need_w else None)
        else:
            mean = ctx.reduce == "mean"
            if need_x:
                grad_x = _library.gather_reduce_bwd_x(rowptr, col, weight, grad, x.size(0), mean, ctx.kernel)
            if need_w:
                grad_w = _library.gather_reduce_sddmm(rowptr, col, grad, x, mean, ctx.kernel)
        return grad_x, None, None, grad_w, None, None


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
        x: ``[N_src, F]`` floating-point source features (any floating dtype; see the module docstring).
        rowptr: ``[N + 1]`` int64/int32 row pointers (rows are targets), e.g. from :func:`graphlab.ops.to_csr`.
        col: ``[E]`` int64/int32 source index per edge in CSR order.
        reduce: ``"sum" | "mean" | "max" | "min"``.
        edge_weight: optional ``[E]`` weights in CSR order (``to_csr(...).weight`` or ``w[perm]``); another
            floating dtype than ``x``'s is cast to ``x``'s.
        validate: check the index values (sorted ``rowptr``, ``col`` in range; ValueError naming the problem);
            ``None`` follows :class:`graphlab.ops.set_validation` (on by default). Dtypes, shapes and devices are
            checked on every call.

    Returns:
        ``[N, F]`` tensor with the dtype of ``x``.
    """
    _check_cheap(x, rowptr, col, reduce, edge_weight)
    if validation_enabled() if validate is None else validate:
        check_csr(rowptr, col, x.size(0), edge_weight)
    if edge_weight is not None and edge_weight.dtype != x.dtype:
        edge_weight = edge_weight.to(x.dtype)
    path = resolve_backend(x, rowptr, col, edge_weight)
    record_path(OP_NAME, path)
    if path == "reference":
        return reference.gather_reduce(x, rowptr, col, reduce, edge_weight)
    if path == "cpu":
        _require_cpu(x)
        kernel = _cpu.gather_reduce_kernel_name(x, col, col.numel(), reduce)
        record_path(_cpu.IMPL_LOG, kernel.removeprefix("cpu-"))
    else:
        kernel = "triton"
    return GatherReduce.apply(x, rowptr, col, edge_weight, reduce, kernel)


def _require_cpu(x: Tensor) -> None:
    if x.device.type != "cpu":
        raise RuntimeError(
            f"the 'cpu' path needs CPU tensors but x is on {x.device}; use set_backend('auto') or 'triton'"
        )
