"""DropoutLinear against ``Linear(dropout(x))`` written with dense tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graphlab.nn.sparse_input import DropoutLinear, row_sparse


def sparse_features(n: int = 40, f: int = 30, density: float = 0.08, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, f, generator=g, dtype=dtype)
    return x * (torch.rand(n, f, generator=g, dtype=dtype) < density)


def test_row_sparse_matches_the_dense_matrix():
    x = sparse_features()
    found = row_sparse(x, max_density=0.5)
    assert found is not None
    dense = torch.zeros_like(x)
    for i in range(x.size(0)):
        lo, hi = found.rowptr[i].item(), found.rowptr[i + 1].item()
        dense[i, found.col[lo:hi]] = found.value[lo:hi]
    assert torch.equal(dense, x)
    assert row_sparse(torch.rand(5, 4) + 0.1, max_density=0.5) is None  # too dense: the caller goes dense


def test_row_sparse_is_rebuilt_after_an_in_place_change():
    x = sparse_features()
    first = row_sparse(x, 0.5)
    assert row_sparse(x, 0.5) is first  # cached per tensor
    x[0, 0] = 7.0
    again = row_sparse(x, 0.5)
    assert again is not first and again.value[0].item() == 7.0


@pytest.mark.parametrize("bias", [True, False])
def test_eval_mode_equals_linear_values_and_gradients(bias):
    torch.manual_seed(0)
    x = sparse_features(dtype=torch.float64)
    layer = DropoutLinear(30, 7, p=0.5, bias=bias).double().eval()
    ref = torch.nn.Linear(30, 7, bias=bias).double()
    ref.load_state_dict(layer.state_dict())
    out, expected = layer(x), ref(x)
    torch.testing.assert_close(out, expected)
    grad = torch.randn_like(out)
    out.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(layer.weight.grad, ref.weight.grad)
    if bias:
        torch.testing.assert_close(layer.bias.grad, ref.bias.grad)


def test_training_mode_drops_each_nonzero_with_probability_p():
    """One non-zero per row: each output row is either the bias (dropped) or ``b + x_ij W_j / (1 - p)``."""
    torch.manual_seed(1)
    n, f, p = 4000, 50, 0.3
    col = torch.randint(0, f, (n,))
    val = torch.rand(n) + 0.5
    x = torch.zeros(n, f)
    x[torch.arange(n), col] = val
    layer = DropoutLinear(f, 3, p=p).train()
    out = layer(x)
    kept = (layer.bias + val[:, None] * layer.weight.t()[col] / (1 - p)).detach()
    dropped = layer.bias.detach().expand(n, 3)
    is_kept = torch.isclose(out, kept, atol=1e-5).all(1)
    is_dropped = torch.isclose(out, dropped, atol=1e-6).all(1)
    assert bool((is_kept | is_dropped).all())
    assert abs(is_dropped.float().mean().item() - p) < 0.03  # binomial std ~0.007


def test_training_mode_gradcheck_with_a_fixed_mask():
    x = sparse_features(20, 12, 0.2, dtype=torch.float64, seed=3)
    layer = DropoutLinear(12, 5, p=0.4).double().train()

    def fn(weight, bias):
        torch.manual_seed(7)  # the same mask on every call
        layer.weight.data, layer.bias.data = weight.detach(), bias.detach()
        return torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (x,))

    w = layer.weight.detach().clone().requires_grad_()
    b = layer.bias.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(fn, (w, b))


def test_dense_or_differentiable_inputs_take_the_plain_path():
    torch.manual_seed(0)
    layer = DropoutLinear(6, 4, p=0.0)
    dense = torch.rand(8, 6) + 0.1
    torch.testing.assert_close(layer(dense), F.linear(dense, layer.weight, layer.bias))
    x = sparse_features(8, 6, 0.3).requires_grad_()
    out = layer(x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, layer.weight.sum(0).expand(8, 6))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="dropout probability"):
        DropoutLinear(3, 2, p=1.0)
    with pytest.raises(ValueError, match="sparse_threshold"):
        DropoutLinear(3, 2, sparse_threshold=2.0)
    with pytest.raises(ValueError, match="2-dimensional"):
        row_sparse(torch.zeros(3))
