r"""Batch normalisation fused with the ReLU after it (and optionally the bias-free linear map after that).

Ioffe & Szegedy (2015) batch normalisation of the rows of :math:`x \in \mathbb{R}^{R \times F}`, then a ReLU:

.. math::
    \hat x = (x - \mu) \odot \sigma^{-1}, \qquad \sigma = \sqrt{\mathrm{Var}(x) + \varepsilon}, \qquad
    h = \mathrm{ReLU}(\gamma \odot \hat x + \beta) = \mathrm{ReLU}(s \odot x + t), \quad s = \gamma \odot \sigma^{-1},
    \; t = \beta - \mu \odot s

with the batch mean and biased variance over the :math:`R` rows in training mode (and the running statistics
updated as :class:`torch.nn.BatchNorm1d` does), the running statistics in eval mode. :func:`batch_norm_relu`
returns :math:`h`, or :math:`h W^\top [+ \mathrm{acc}]` when given the weight :math:`W` of the next linear map.

Backward (:math:`g' = g \odot [h > 0]`, training-mode statistics):

.. math::
    \frac{\partial L}{\partial \beta} = \sum_r g'_r, \quad
    \frac{\partial L}{\partial \gamma} = \sum_r g'_r \odot \hat x_r, \quad
    \frac{\partial L}{\partial x_r} = s \odot \Big(g'_r - \frac{1}{R} \frac{\partial L}{\partial \beta}
    - \hat x_r \odot \frac{1}{R} \frac{\partial L}{\partial \gamma}\Big)

(eval mode: :math:`\partial L / \partial x_r = s \odot g'_r`).

Why: ``nn.BatchNorm1d`` + ``nn.ReLU`` + ``nn.Linear`` keep two ``[R, F]`` tensors for backward (the BN input and
the ReLU output, which the linear map saves). With the linear map fused, only the BN input :math:`x` is kept and
:math:`h` is recomputed in backward from :math:`x, s, t` (one pass): the memory of one ``[R, F]`` tensor per call,
which is what bounds the pair-tensor layers of :mod:`graphlab.nn.subgraph` (their ``R`` is :math:`\sum_g n_g^2`).
Without the linear map, :math:`x` and the output :math:`h` are saved (the next layer keeps :math:`h` anyway).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn


def _bn_stats(x: Tensor, norm: nn.BatchNorm1d) -> tuple[bool, Optional[Tensor], Optional[Tensor], float]:
    """(batch statistics?, running mean, running var, momentum factor), with ``num_batches_tracked`` advanced
    exactly as :meth:`torch.nn.modules.batchnorm._BatchNorm.forward` does."""
    factor = 0.0 if norm.momentum is None else norm.momentum
    if norm.training and norm.track_running_stats and norm.num_batches_tracked is not None:
        norm.num_batches_tracked.add_(1)
        factor = 1.0 / float(norm.num_batches_tracked) if norm.momentum is None else norm.momentum
    batch_stats = norm.training or (norm.running_mean is None and norm.running_var is None)
    use_running = not norm.training or norm.track_running_stats
    running_mean = norm.running_mean if use_running else None
    running_var = norm.running_var if use_running else None
    return batch_stats, running_mean, running_var, factor


class _BatchNormReLU(torch.autograd.Function):
    """ReLU(BN(x)) [@ weight.T + acc]; see the module docstring for the equations. The statistics, the running
    update and the BN backward are ATen's own kernels (``native_batch_norm`` and its backward, so the numbers are
    those of ``nn.BatchNorm1d``); what differs is what is kept for backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, gamma: Optional[Tensor], beta: Optional[Tensor], weight: Optional[Tensor],
                acc: Optional[Tensor], running_mean: Optional[Tensor], running_var: Optional[Tensor],
                batch_stats: bool, factor: float, eps: float) -> Tensor:
        h, mean, invstd = torch.native_batch_norm(x, gamma, beta, running_mean, running_var, batch_stats, factor,
                                                  eps)
        h = h.relu_()  # [R, F], in place: the BN output is ours
        if not batch_stats:  # eval: ATen returns no statistics; the running ones normalise
            mean, invstd = running_mean.to(x.dtype), torch.rsqrt(running_var.to(x.dtype) + eps)
        ctx.batch_stats, ctx.eps = batch_stats, eps
        ctx.has_acc = acc is not None
        if weight is None:
            ctx.save_for_backward(x, gamma, beta, running_mean, running_var, mean, invstd, h, None)
            return h
        ctx.save_for_backward(x, gamma, beta, running_mean, running_var, mean, invstd, None, weight)
        return torch.mm(h, weight.t()) if acc is None else torch.addmm(acc, h, weight.t())

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], ...]:
        x, gamma, beta, running_mean, running_var, mean, invstd, h, weight = ctx.saved_tensors
        d_weight = None
        if weight is not None:  # h = ReLU(s x + t), recomputed: not kept between forward and backward
            scale = invstd if gamma is None else invstd * gamma
            shift = -mean * scale if beta is None else beta - mean * scale
            h = torch.addcmul(shift, x, scale).relu_()
            if ctx.needs_input_grad[3]:
                d_weight = torch.mm(grad.t(), h)
            grad_h = torch.ops.aten.threshold_backward(torch.mm(grad, weight), h, 0)
        else:
            grad_h = torch.ops.aten.threshold_backward(grad, h, 0)
        del h
        mask = [ctx.needs_input_grad[0], gamma is not None and ctx.needs_input_grad[1],
                beta is not None and ctx.needs_input_grad[2]]
        save_mean, save_invstd = (mean, invstd) if ctx.batch_stats else (None, None)
        d_x, d_gamma, d_beta = torch.ops.aten.native_batch_norm_backward(
            grad_h, x, gamma, running_mean, running_var, save_mean, save_invstd, ctx.batch_stats, ctx.eps, mask)
        return (d_x, d_gamma, d_beta, d_weight, grad if ctx.has_acc and ctx.needs_input_grad[4] else None,
                None, None, None, None, None)


def batch_norm_relu(x: Tensor, norm: nn.BatchNorm1d, weight: Optional[Tensor] = None,
                    acc: Optional[Tensor] = None) -> Tensor:
    r""":math:`\mathrm{ReLU}(\mathrm{BN}(x))`, or :math:`\mathrm{ReLU}(\mathrm{BN}(x)) W^\top + \mathrm{acc}` with
    ``weight`` :math:`W` ``[F_out, F]`` (a bias-free linear map) and ``acc`` ``[R, F_out]`` (optional).

    Same values, gradients and running-statistics updates as ``torch.relu(norm(x))`` (then
    ``F.linear(..., weight) + acc``) for every :class:`torch.nn.BatchNorm1d` setting (``affine``,
    ``track_running_stats``, ``momentum=None``), in training and eval mode; see the module docstring for what it
    saves for backward.

    Shapes: ``x`` [R, F] → [R, F] (or [R, F_out]).
    """
    if not isinstance(norm, nn.BatchNorm1d):
        raise TypeError(f"norm must be a torch.nn.BatchNorm1d, got {type(norm).__name__}")
    if x.dim() != 2 or x.size(1) != norm.num_features:
        raise ValueError(f"batch_norm_relu expects x of shape [R, {norm.num_features}], got {tuple(x.shape)}")
    if weight is not None and (weight.dim() != 2 or weight.size(1) != x.size(1)):
        raise ValueError(f"weight must be [F_out, {x.size(1)}] (a linear map of the normalised features), got "
                         f"{tuple(weight.shape)}")
    if acc is not None and (weight is None or acc.shape != (x.size(0), weight.size(0))):
        raise ValueError(f"acc must come with weight and be [R, F_out] = [{x.size(0)}, "
                         f"{None if weight is None else weight.size(0)}], got {tuple(acc.shape)}")
    batch_stats, running_mean, running_var, factor = _bn_stats(x, norm)
    if batch_stats and x.size(0) < 2:
        raise ValueError(f"batch norm in training mode needs more than 1 row per channel, got x of shape "
                         f"{tuple(x.shape)}; use a larger batch or eval mode")
    return _BatchNormReLU.apply(x, norm.weight, norm.bias, weight, acc, running_mean, running_var, batch_stats,
                                factor, norm.eps)


def batch_norm_rows(x: Tensor, counts: Tensor, norm: nn.BatchNorm1d) -> Tensor:
    r""":math:`\mathrm{BN}` of a batch in which row :math:`s` of ``x`` stands for ``counts[s]`` identical rows:
    row :math:`s` of ``norm(x.repeat_interleave(counts, 0))``, with the same running-statistics update, computed on
    the distinct rows only. With :math:`c_s` = ``counts``, :math:`R = \sum_s c_s`:

    .. math::
        \mu = \frac{1}{R} \sum_s c_s x_s, \qquad \mathrm{Var} = \frac{1}{R} \sum_s c_s (x_s - \mu)^2

    (the running variance gets :math:`\frac{R}{R - 1} \mathrm{Var}`, as ``nn.BatchNorm1d`` does). Differentiable
    by autograd (the statistics are ``[F]`` reductions over the :math:`S` distinct rows).

    Shapes: ``x`` [S, F], ``counts`` [S] (integer, >= 0) → [S, F].
    """
    if not isinstance(norm, nn.BatchNorm1d):
        raise TypeError(f"norm must be a torch.nn.BatchNorm1d, got {type(norm).__name__}")
    if x.dim() != 2 or x.size(1) != norm.num_features:
        raise ValueError(f"batch_norm_rows expects x of shape [S, {norm.num_features}], got {tuple(x.shape)}")
    if counts.shape != (x.size(0),) or counts.is_floating_point():
        raise ValueError(f"counts must be an integer tensor of shape [S] = [{x.size(0)}] (rows each row of x "
                         f"stands for), got {counts.dtype} {tuple(counts.shape)}")
    batch_stats, running_mean, running_var, factor = _bn_stats(x, norm)
    if batch_stats:
        rows = int(counts.sum())
        if rows < 2:
            raise ValueError(f"batch norm in training mode needs more than 1 row per channel, got {rows} rows; use "
                             f"a larger batch or eval mode")
        weight = counts.to(x.dtype)[:, None] / rows
        mean = (weight * x).sum(0)
        var = (weight * (x - mean).square()).sum(0)
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                running_mean.mul_(1 - factor).add_(mean.to(running_mean.dtype), alpha=factor)
                running_var.mul_(1 - factor).add_(var.to(running_var.dtype), alpha=factor * rows / (rows - 1))
    else:
        mean, var = running_mean.to(x.dtype), running_var.to(x.dtype)
    out = (x - mean) * torch.rsqrt(var + norm.eps)
    return out if norm.weight is None else torch.addcmul(norm.bias, out, norm.weight)
