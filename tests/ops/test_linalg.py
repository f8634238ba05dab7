"""spd_inv_sqrt: values and gradients against the eigh reference and an independent definition, input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphlab.ops as ops
from graphlab.ops.linalg import reference_spd_inv_sqrt


def random_spd(batch: int, d: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, d, d, dtype=torch.float64, generator=gen)
    return (a @ a.transpose(1, 2) + 0.5 * torch.eye(d, dtype=torch.float64)).to(dtype)


def sym(fn):
    """The function of a symmetric matrix, extended to all matrices (eigh reads one triangle only)."""
    return lambda m: fn(0.5 * (m + m.transpose(-1, -2)))


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("d", [1, 2, 5])
def test_values_against_an_independent_definition(backend, d):
    """A^{-1/2} is the SPD matrix Y with Y A Y = I; numpy's eigh of A (float64) gives it by definition."""
    spd = random_spd(4, d, seed=d)
    evals, evecs = np.linalg.eigh(spd.numpy())
    expected = np.einsum("bij,bj,bkj->bik", evecs, evals ** -0.5, evecs)
    ops.reset_path_log()
    with ops.set_backend(backend):
        y = ops.spd_inv_sqrt(spd)
    assert ops.last_path("spd_inv_sqrt") == ("cpu" if backend == "auto" else "reference")
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(y @ spd @ y, torch.eye(d, dtype=torch.float64).expand(4, d, d))


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-10)])
def test_fast_path_matches_reference_per_dtype(dtype, tol):
    spd = random_spd(6, 3, seed=2, dtype=dtype)
    torch.testing.assert_close(ops.spd_inv_sqrt(spd), reference_spd_inv_sqrt(spd), atol=tol, rtol=tol)


def test_gradients_match_the_reference_and_gradcheck():
    spd = random_spd(5, 3, seed=13).requires_grad_(True)
    weights = torch.randn(5, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    fast = torch.autograd.grad((sym(ops.spd_inv_sqrt)(spd) * weights).sum(), spd)[0]
    ref = torch.autograd.grad((sym(reference_spd_inv_sqrt)(spd) * weights).sum(), spd)[0]
    torch.testing.assert_close(fast, ref)
    assert torch.autograd.gradcheck(sym(ops.spd_inv_sqrt), (spd,))
    assert torch.autograd.gradcheck(sym(reference_spd_inv_sqrt), (spd,))


def test_finite_exact_gradients_at_repeated_eigenvalues():
    """``D_u + I = c I`` (isolated nodes, symmetric maps) makes the eigh backward divide by zero; the
    Daleckii-Krein backward stays finite and passes gradcheck there, with no noise injected."""
    matrix = torch.stack([torch.eye(3, dtype=torch.float64), 2.5 * torch.eye(3, dtype=torch.float64),
                          torch.diag(torch.tensor([2.0, 2.0, 5.0], dtype=torch.float64))]).requires_grad_(True)
    weights = torch.randn(3, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(14))
    (ops.spd_inv_sqrt(matrix) * weights).sum().backward()
    assert torch.isfinite(matrix.grad).all()
    assert torch.autograd.gradcheck(sym(ops.spd_inv_sqrt), (matrix,))
    naive = matrix.detach().clone().requires_grad_(True)
    (reference_spd_inv_sqrt(naive) * weights).sum().backward()
    assert not torch.isfinite(naive.grad).all()  # why the fast path has its own backward


def test_empty_batch():
    out = ops.spd_inv_sqrt(torch.empty(0, 3, 3))
    assert out.shape == (0, 3, 3)


def test_input_checks_name_the_problem_and_the_fix():
    with pytest.raises(ValueError, match=r"square matrices \[..., d, d\]"):
        ops.spd_inv_sqrt(torch.ones(2, 3, 4))
    with pytest.raises(TypeError, match="floating dtype"):
        ops.spd_inv_sqrt(torch.eye(3, dtype=torch.long))
    asym = torch.eye(3) + torch.tensor([[0.0, 0.5, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"not symmetric .*0.5 \* \(A \+ A.transpose"):
        ops.spd_inv_sqrt(asym)
    indefinite = torch.diag(torch.tensor([1.0, -2.0, 3.0]))
    for backend in ("auto", "reference"):
        with ops.set_backend(backend), pytest.raises(ValueError, match="not positive definite .* A \\+ I"):
            ops.spd_inv_sqrt(indefinite)
    with pytest.raises(ValueError, match="not positive definite"):
        ops.spd_inv_sqrt(torch.zeros(3, 3))
    with ops.set_validation(False):  # switched off: the documented clamp, no error
        assert torch.isfinite(ops.spd_inv_sqrt(torch.eye(2))).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_decomposed_in_float32(dtype):
    """eigh has no half kernels: the op computes in float32 and returns the input's dtype, values and gradient."""
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(4, 3, 3, dtype=torch.float64))
    evals = torch.rand(4, 3, dtype=torch.float64) + 0.5
    a64 = q @ torch.diag_embed(evals) @ q.transpose(-1, -2)
    a = a64.to(dtype)
    a = (0.5 * (a + a.transpose(-1, -2))).requires_grad_()  # symmetric after rounding
    out = ops.spd_inv_sqrt(a)
    assert out.dtype == dtype
    evals_h, evecs_h = torch.linalg.eigh(a.detach().double())
    want = evecs_h @ torch.diag_embed(evals_h.rsqrt()) @ evecs_h.transpose(-1, -2)
    torch.testing.assert_close(out.double(), want, atol=3e-2, rtol=3e-2)
    out.sum().backward()
    assert a.grad.dtype == dtype and torch.isfinite(a.grad.float()).all()
