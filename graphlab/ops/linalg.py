r"""Batched small-matrix linear algebra with stable gradients: ``spd_inv_sqrt``.

.. math::
    \operatorname{spd\_inv\_sqrt}(A) = A^{-1/2} = V \operatorname{diag}(\lambda)^{-1/2} V^\top,
    \qquad A = V \operatorname{diag}(\lambda) V^\top,\ \lambda_i > 0,

for a batch ``[..., d, d]`` of symmetric positive-definite matrices (the block normaliser
:math:`(D_u + I)^{-1/2}` of a general sheaf Laplacian, Bodnar et al. 2022).

Paths (chosen by :func:`graphlab.ops.resolve_backend`, recorded under ``"spd_inv_sqrt"``):

* ``"reference"``: :func:`reference_spd_inv_sqrt`, the definition above on ``torch.linalg.eigh``, differentiated
  by autograd through ``eigh`` (whose backward divides by :math:`\lambda_i - \lambda_j`, so it is only finite for
  distinct eigenvalues). It lives here rather than in :mod:`graphlab.ops.reference` (the graph-primitive spec).
* ``"cpu"`` / ``"triton"``: one :class:`torch.autograd.Function`, :class:`SPDInvSqrt`, forward by ``eigh``,
  backward by the Daleckii-Krein formula with the divided differences of :math:`f(x) = x^{-1/2}`, which has no
  :math:`1 / (\lambda_i - \lambda_j)` term: repeated eigenvalues (``D_u + I = c I``, common) give finite, exact
  gradients. There is no Triton kernel for a batched ``d x d`` eigendecomposition: both paths run
  ``torch.linalg.eigh`` (LAPACK on CPU, cuSOLVER on CUDA).

Input checks (always on unless :func:`graphlab.ops.set_validation` switched them off): a floating ``[..., d, d]``
tensor, symmetric within ``sqrt(eps)`` of its largest entry, positive definite (every eigenvalue > 0; checked on the
eigenvalues the forward computes anyway, so the check costs one host sync).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from graphlab.ops._backend import record_path, resolve_backend, validation_enabled

OP_NAME = "spd_inv_sqrt"


# ----------------------------------------------------------------------------------------------- checks


def _check_square_symmetric(matrix: Any) -> None:
    if not isinstance(matrix, Tensor):
        raise TypeError(f"matrix must be a torch.Tensor, got {type(matrix).__name__}")
    if not matrix.is_floating_point():
        raise TypeError(f"matrix has dtype {matrix.dtype} but spd_inv_sqrt needs a floating dtype; "
                        f"convert it with matrix.double() or matrix.float()")
    if matrix.dim() < 2 or matrix.size(-1) != matrix.size(-2):
        raise ValueError(f"matrix must be a batch of square matrices [..., d, d], got shape {tuple(matrix.shape)}")
    if matrix.numel() == 0:
        return
    scale = float(matrix.detach().abs().amax())
    asym = float((matrix.detach() - matrix.detach().transpose(-1, -2)).abs().amax())
    tol = torch.finfo(matrix.dtype).eps ** 0.5 * max(scale, 1.0)
    if not asym <= tol:  # also catches NaN
        raise ValueError(f"matrix is not symmetric (max |A - A^T| = {asym:.3g} > {tol:.3g}); pass a symmetric "
                         f"positive-definite matrix, e.g. 0.5 * (A + A.transpose(-1, -2))")


def _check_positive(evals: Tensor) -> None:
    if evals.numel() == 0:
        return
    smallest = float(evals.amin())
    if not smallest > 0:
        raise ValueError(f"matrix is not positive definite (smallest eigenvalue {smallest:.3g} <= 0); "
                         f"A^(-1/2) needs every eigenvalue > 0: add a multiple of the identity (e.g. A + I)")


# ----------------------------------------------------------------------------------------------- reference


def reference_spd_inv_sqrt(matrix: Tensor) -> Tensor:
    r"""``A^{-1/2} = V diag(lambda)^{-1/2} V^T`` from ``eigh``; gradients by autograd through ``eigh``."""
    evals, evecs = torch.linalg.eigh(matrix)
    if validation_enabled():
        _check_positive(evals.detach())
    return (evecs * evals.rsqrt().unsqueeze(-2)) @ evecs.transpose(-1, -2)


# ----------------------------------------------------------------------------------------------- fast path


def _eigh_forward(matrix: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(A^{-1/2}, sqrt(lambda), V)``; ``lambda`` clamped at the smallest normal number (reached only with the
    checks switched off)."""
    evals, evecs = torch.linalg.eigh(matrix)
    if validation_enabled():
        _check_positive(evals)
    sqrt = evals.clamp_min(torch.finfo(matrix.dtype).tiny).sqrt()
    return (evecs / sqrt.unsqueeze(-2)) @ evecs.transpose(-1, -2), sqrt, evecs


class SPDInvSqrt(torch.autograd.Function):
    r"""``A^{-1/2}`` with the backward :math:`\bar A = V (K \circ V^\top \operatorname{sym}(\bar Y) V) V^\top`,
    :math:`K_{ij} = (s_i^{-1} - s_j^{-1}) / (s_i^2 - s_j^2) = -1 / (s_i s_j (s_i + s_j))`, :math:`s = \sqrt\lambda`
    (Daleckii-Krein; finite at repeated eigenvalues)."""

    @staticmethod
    def forward(ctx: Any, matrix: Tensor) -> Tensor:
        out, sqrt, evecs = _eigh_forward(matrix)
        ctx.save_for_backward(sqrt, evecs)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        sqrt, evecs = ctx.saved_tensors
        grad = 0.5 * (grad + grad.transpose(-1, -2))
        inner = evecs.transpose(-1, -2) @ grad @ evecs
        s_i, s_j = sqrt.unsqueeze(-1), sqrt.unsqueeze(-2)
        divided = -1.0 / (s_i * s_j * (s_i + s_j))
        return evecs @ (divided * inner) @ evecs.transpose(-1, -2)


# torch.linalg.eigh has no float16 / bfloat16 kernels: those inputs are decomposed in float32.
_HALF = (torch.float16, torch.bfloat16)


def spd_inv_sqrt(matrix: Tensor) -> Tensor:
    """Inverse square root ``A^{-1/2}`` of a batch of symmetric positive-definite matrices ``[..., d, d]``.

    Differentiable with finite gradients at repeated eigenvalues (no noise injection, no SVD). float16 / bfloat16
    matrices are decomposed in float32 (``eigh`` has no half-precision kernels) and the result is cast back.

    Raises:
        TypeError: ``matrix`` is not a floating tensor.
        ValueError: ``matrix`` is not square, not symmetric, or not positive definite (with the fix).
    """
    if validation_enabled():
        _check_square_symmetric(matrix)
    if matrix.dtype in _HALF:
        return spd_inv_sqrt(matrix.float()).to(matrix.dtype)
    path = resolve_backend(matrix)
    record_path(OP_NAME, path)
    if path == "reference":
        return reference_spd_inv_sqrt(matrix)
    return SPDInvSqrt.apply(matrix)
