"""The Triton kernel tables: the host launchers of :mod:`graphlab.kernels` in the shape of
:mod:`graphlab.ops._kernel_table`.

Importing this module imports ``triton`` (through :mod:`graphlab.kernels`); :func:`graphlab.ops._kernel_table.kernels`
imports it only when the Triton path runs. The per-graph transpose for the ``sum``/``mean`` backward comes from
:func:`graphlab.ops.csr.cached_transpose`, so the kernels module stays free of graphlab imports.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphlab.kernels import gather_reduce as _gr
from graphlab.kernels import segment_softmax as _softmax
from graphlab.kernels import tree_reduce as _tree
from graphlab.ops._kernel_table import GatherReduceKernels, SegmentSoftmaxKernels
from graphlab.ops.csr import cached_transpose


def _forward(
    x: Tensor, rowptr: Tensor, col: Tensor | None, weight: Tensor | None, reduce: str, want_arg: bool
) -> tuple[Tensor, Tensor | None]:
    return _gr.launch_gather_reduce_fwd(
        x.contiguous(), rowptr.contiguous(), None if col is None else col.contiguous(),
        None if weight is None else weight.contiguous(), reduce, want_arg,
    )


def _backward_x(rowptr: Tensor, col: Tensor, weight: Tensor | None, grad: Tensor, num_src: int, mean: bool) -> Tensor:
    transpose = tuple(cached_transpose(rowptr, col, num_src)[:3])
    return _gr.launch_transpose_spmm(transpose, rowptr, weight, grad.contiguous(), mean)


def _sddmm(rowptr: Tensor, col: Tensor, grad: Tensor, x: Tensor, mean: bool) -> Tensor:
    return _gr.launch_sddmm(rowptr.contiguous(), col.contiguous(), grad.contiguous(), x.contiguous(), mean)


def _arg_backward(
    rowptr: Tensor, col: Tensor, weight: Tensor | None, arg: Tensor, grad: Tensor, x: Tensor,
    need_x: bool, need_w: bool,
) -> tuple[Tensor | None, Tensor | None]:
    return _gr.launch_arg_backward(grad.contiguous(), x.contiguous(), col, weight, arg, col.numel(), need_x, need_w)


GATHER_REDUCE_TRITON = GatherReduceKernels(
    forward=_forward, backward_x=_backward_x, sddmm=_sddmm, arg_backward=_arg_backward, arg_dtype=torch.int64
)

SEGMENT_SOFTMAX_TRITON = SegmentSoftmaxKernels(
    forward=lambda src, ptr: _softmax.launch_segment_softmax_fwd(src.contiguous(), ptr.contiguous()),
    backward=lambda y, grad, ptr: _softmax.launch_segment_softmax_bwd(y, grad.contiguous(), ptr.contiguous()),
)

# The pairing step of the tree reduction (graphlab.ops.tree_reduce): (starts, counts) -> (left, right, carry, gather).
TREE_PAIR_LEVEL = _tree.launch_pair_level
