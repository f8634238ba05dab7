"""UniformDropout against the definition of dropout, and against ``F.dropout``'s keep rate."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from graphlab.nn.dropout import UniformDropout, uniform_dropout


@pytest.mark.parametrize("p", [0.05, 0.3, 0.7])
def test_each_entry_is_dropped_or_scaled_at_the_right_rate(p):
    torch.manual_seed(0)
    x = torch.rand(400, 250) + 0.5  # no zeros, so a zero output means "dropped"
    out = uniform_dropout(x, p)
    dropped = out == 0
    torch.testing.assert_close(out[~dropped], x[~dropped] / (1 - p))
    n = x.numel()
    std = (p * (1 - p) / n) ** 0.5
    assert abs(dropped.double().mean().item() - p) < 6 * std
    # F.dropout's keep rate, same tolerance: the two are the same random function
    assert abs((F.dropout(x, p, True) == 0).double().mean().item() - p) < 6 * std


def test_masks_are_independent_across_entries_and_calls():
    torch.manual_seed(1)
    x = torch.ones(200, 200)
    a, b = uniform_dropout(x, 0.5) == 0, uniform_dropout(x, 0.5) == 0
    both = (a & b).double().mean().item()
    assert abs(both - 0.25) < 0.01  # independent calls: P(both dropped) = p^2
    left, right = a[:, :-1].double(), a[:, 1:].double()
    assert abs((left * right).mean().item() - 0.25) < 0.01  # neighbouring entries independent


def test_gradient_is_the_mask_times_the_upstream_gradient():
    torch.manual_seed(2)
    x = (torch.rand(30, 20, dtype=torch.float64) + 0.5).requires_grad_()
    out = uniform_dropout(x, 0.4)
    grad = torch.randn_like(out)
    out.backward(grad)
    mask = (out != 0).double() / 0.6
    torch.testing.assert_close(x.grad, grad * mask)

    def fn(t):
        torch.manual_seed(5)  # the same mask on every call
        return uniform_dropout(t, 0.4)

    assert torch.autograd.gradcheck(fn, (x.detach().clone().requires_grad_(),))


def test_module_is_a_dropout_and_identity_in_eval_or_at_zero():
    layer = UniformDropout(0.3)
    assert isinstance(layer, nn.Dropout) and layer.p == 0.3 and not list(layer.parameters())
    x = torch.randn(5, 4)
    assert layer.eval()(x) is x
    assert UniformDropout(0.0).train()(x) is x
    assert (layer.train()(torch.ones(100, 100)) == 0).any()


def test_bad_probability_raises():
    with pytest.raises(ValueError, match="dropout probability"):
        UniformDropout(1.0)
    with pytest.raises(ValueError, match="dropout probability"):
        uniform_dropout(torch.ones(3), -0.1)
