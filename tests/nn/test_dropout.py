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


# ---- the sparse path (p <= SPARSE_DROP_MAX_P): dropped positions drawn as geometric gaps


def test_sparse_path_is_used_for_small_p_and_keeps_the_definition():
    from graphlab.nn import dropout as module

    assert module.SPARSE_DROP_MAX_P >= 0.05
    torch.manual_seed(3)
    x = torch.rand(300, 200) + 0.5
    out = uniform_dropout(x, 0.1)
    dropped = out == 0
    torch.testing.assert_close(out[~dropped], x[~dropped] / 0.9)
    left, right = dropped[:, :-1].double(), dropped[:, 1:].double()
    assert abs((left * right).mean().item() - 0.01) < 6 * (0.01 * 0.99 / left.numel()) ** 0.5
    again = uniform_dropout(x, 0.1) == 0
    assert abs((dropped & again).double().mean().item() - 0.01) < 6 * (0.01 * 0.99 / x.numel()) ** 0.5


@pytest.mark.parametrize("chunk", [None, 1, 3])
def test_bernoulli_positions_match_iid_bernoulli_in_distribution(chunk):
    """Against the plain path (``rand < p``): per-position rates (incl. across the restarts between batches of
    gaps when ``chunk`` is tiny), pairwise independence of neighbours, and the Binomial count's mean and variance."""
    from graphlab.nn.dropout import bernoulli_positions

    torch.manual_seed(4)
    n, p, reps = 24, 0.15, 20000
    sparse = torch.zeros(reps, n)
    for r in range(reps):
        pos = bernoulli_positions(n, p, chunk=chunk)
        assert (pos.diff() > 0).all() and (pos >= 0).all() and (pos < n).all()
        sparse[r, pos] = 1.0
    plain = (torch.rand(reps, n) < p).float()
    std = (p * (1 - p) / reps) ** 0.5
    for draws in (sparse, plain):  # the test itself passes on the plain path
        assert ((draws.mean(0) - p).abs() < 5 * std).all()
        joint = (draws[:, :-1] * draws[:, 1:]).mean(0)
        assert ((joint - p * p).abs() < 5 * (p * p * (1 - p * p) / reps) ** 0.5).all()
        counts = draws.sum(1).double()
        assert abs(counts.mean().item() - n * p) < 5 * (n * p * (1 - p) / reps) ** 0.5
        assert abs(counts.var().item() / (n * p * (1 - p)) - 1) < 0.05


def test_sparse_path_gradient_is_the_mask_times_the_upstream_gradient():
    torch.manual_seed(6)
    x = (torch.rand(40, 30, dtype=torch.float64) + 0.5).requires_grad_()
    out = uniform_dropout(x, 0.05)
    grad = torch.randn_like(out)
    out.backward(grad)
    torch.testing.assert_close(x.grad, grad * (out != 0).double() / 0.95)
    x = x[:8, :6]

    def fn(t):
        torch.manual_seed(7)
        return uniform_dropout(t, 0.05)

    assert torch.autograd.gradcheck(fn, (x.detach().clone().requires_grad_(),))
    assert torch.autograd.gradcheck(fn, (x.detach().clone().t().requires_grad_(),))  # non-contiguous input


def test_bernoulli_positions_rejects_bad_p():
    from graphlab.nn.dropout import bernoulli_positions

    with pytest.raises(ValueError, match="p in"):
        bernoulli_positions(10, 0.0)
