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


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_dropout_relu_is_relu_of_dropout_values_and_gradients(p):
    """Same seed, same draws: the fused op equals the plain composition exactly (in place too, without autograd)."""
    from graphlab.nn.dropout import dropout_relu

    x = torch.randn(50, 40, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(50, 40, dtype=torch.float64)
    torch.manual_seed(9)
    fused = dropout_relu(x, p)
    (g_fused,) = torch.autograd.grad(fused, x, grad)
    torch.manual_seed(9)
    plain = torch.relu(uniform_dropout(x, p))
    (g_plain,) = torch.autograd.grad(plain, x, grad)
    torch.testing.assert_close(fused, plain, rtol=0, atol=0)
    torch.testing.assert_close(g_fused, g_plain, rtol=0, atol=0)
    with torch.no_grad():
        y = x.detach().clone()
        torch.manual_seed(9)
        out = dropout_relu(y, p, inplace=True)
    torch.testing.assert_close(out, plain.detach(), rtol=0, atol=0)
    assert torch.equal(dropout_relu(x, p, training=False), torch.relu(x))

    def fn(t):
        torch.manual_seed(10)
        return dropout_relu(t, p)

    assert torch.autograd.gradcheck(fn, (torch.randn(6, 5, dtype=torch.float64, requires_grad=True),))


def test_run_mlp_matches_the_sequential():
    from graphlab.nn.dropout import run_mlp

    mlp = nn.Sequential(nn.Linear(16, 16), UniformDropout(0.05), nn.ReLU(), nn.Linear(16, 16), nn.LayerNorm(16),
                        UniformDropout(0.3), nn.ReLU(), nn.Identity()).double()
    x = torch.randn(30, 16, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(11)
    got = run_mlp(mlp, x)
    g_got = torch.autograd.grad(got.sum(), [x, *mlp.parameters()])
    torch.manual_seed(11)
    want = mlp(x)
    g_want = torch.autograd.grad(want.sum(), [x, *mlp.parameters()])
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b)
    with torch.no_grad():  # in-place intermediates, the input untouched
        x0 = x.detach().clone()
        torch.manual_seed(11)
        torch.testing.assert_close(run_mlp(mlp, x0), want.detach(), rtol=0, atol=0)
        assert torch.equal(x0, x.detach())
    assert torch.equal(run_mlp(mlp.eval(), x), mlp(x))
    head = nn.Sequential(UniformDropout(0.05), nn.ReLU())  # the input is the caller's: never written
    with torch.no_grad():
        x1 = torch.randn(30, 16)
        x1_copy = x1.clone()
        run_mlp(head, x1)
        assert torch.equal(x1, x1_copy)


# ---- graphlab.nn.Dropout: the module around graphlab.ops.dropout (Philox mask, native kernel)


def test_philox_dropout_module_is_a_dropout_using_the_op():
    import graphlab.ops as ops
    from graphlab.nn import Dropout
    from graphlab.ops import reference

    layer = Dropout(0.3)
    assert isinstance(layer, nn.Dropout) and layer.p == 0.3 and not list(layer.parameters())
    x = torch.randn(40, 7)
    assert layer.eval()(x) is x and Dropout(0.0).train()(x) is x
    torch.manual_seed(8)
    out = layer.train()(x)
    assert ops.last_path("dropout") in ("cpu", "reference", "torch")
    if ops.last_path("dropout") == "cpu":  # the op's documented seed: one draw from torch's default generator
        torch.manual_seed(8)
        seed = int(torch.randint(0, 2**63 - 1, (1,)).item())
        torch.testing.assert_close(out, reference.dropout(x, 0.3, True, seed), rtol=0, atol=0)
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.5)


def test_baseline_models_apply_the_philox_dropout_and_stay_reproducible():
    import graphlab.ops as ops
    from graphlab.models import GCN, GIN, GraphSAGE

    x = torch.randn(30, 6)
    edge_index = torch.randint(0, 30, (2, 90))
    for cls, kwargs in [(GCN, {}), (GraphSAGE, {}), (GIN, {"pool": None, "num_layers": 2})]:
        torch.manual_seed(0)
        model = cls(6, 3, hidden_channels=8, dropout=0.5, **kwargs).train()
        ops.reset_path_log()
        outs = []
        for _ in range(2):
            torch.manual_seed(1)
            outs.append(model(x, edge_index))
        assert ops.path_count("dropout", ops.last_path("dropout") or "") >= 2, cls.__name__
        torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
        assert not torch.equal(model(x, edge_index), outs[0])  # a fresh seed: another mask
