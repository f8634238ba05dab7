"""graphlab.nn.mamba: the Mamba block against a composition of reference pieces, its init, causality, padding,
the bidirectional block against unpadded runs, flip_valid, bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from graphlab import ops
from graphlab.nn import BiMamba, Mamba
from graphlab.nn.mamba import flip_valid
from graphlab.ops import reference

pytestmark = pytest.mark.usefixtures("one_thread")


def block(d_model: int = 8, seed: int = 0, **kwargs) -> Mamba:
    torch.manual_seed(seed)
    return Mamba(d_model, d_state=4, **kwargs).double()


def by_hand(m: Mamba, x: torch.Tensor) -> torch.Tensor:
    """The block's equations written out: explicit left-padded depthwise convolution and the reference scan."""
    length = x.shape[1]
    xz = x @ m.in_proj.weight.t()
    xs, z = xz[..., :m.d_inner], xz[..., m.d_inner:]
    padded = F.pad(xs.transpose(1, 2), (m.d_conv - 1, 0))  # [batch, E, d_conv - 1 + L]
    w = m.conv1d.weight[:, 0]  # [E, d_conv]
    conv = torch.stack([(padded[..., t:t + m.d_conv] * w).sum(-1) for t in range(length)], dim=-1)
    xs = F.silu(conv + m.conv1d.bias[:, None])
    proj = xs.transpose(1, 2) @ m.x_proj.weight.t()
    dt_low, B, C = proj[..., :m.dt_rank], proj[..., m.dt_rank:m.dt_rank + m.d_state], proj[..., -m.d_state:]
    delta = F.softplus(dt_low @ m.dt_proj.weight.t() + m.dt_proj.bias).transpose(1, 2)
    y = reference.selective_scan(xs, delta, -torch.exp(m.A_log), B.transpose(1, 2), C.transpose(1, 2), m.D,
                                 z=z.transpose(1, 2))
    return y.transpose(1, 2) @ m.out_proj.weight.t()


def test_block_matches_its_equations_values_and_gradients():
    m = block()
    x = torch.randn(2, 13, 8, dtype=torch.float64, requires_grad=True)
    out = m(x)
    expected = by_hand(m, x)
    torch.testing.assert_close(out, expected)
    g = torch.randn_like(out)
    params = [x, *m.parameters()]
    grads = torch.autograd.grad((out * g).sum(), params)
    grads_ref = torch.autograd.grad((expected * g).sum(), params)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b)


def test_gradcheck_small_block():
    m = block(d_model=4)
    x = torch.randn(1, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: m(inp, torch.tensor([4])), (x,))


def test_init_follows_mamba():
    m = Mamba(40, dt_min=1e-3, dt_max=0.1)
    assert m.d_inner == 80 and m.dt_rank == math.ceil(40 / 16) == 3 and m.d_state == 16 and m.d_conv == 4
    A = -torch.exp(m.A_log)
    torch.testing.assert_close(A, -torch.arange(1, 17, dtype=torch.float32).expand(80, 16))
    assert torch.all(m.D == 1)
    dt = F.softplus(m.dt_proj.bias)
    assert dt.min() >= 1e-3 * (1 - 1e-4) and dt.max() <= 0.1 * (1 + 1e-4)
    bound = 3**-0.5
    assert m.dt_proj.weight.abs().max() <= bound
    assert m.in_proj.weight.shape == (160, 40) and m.x_proj.weight.shape == (3 + 32, 80)
    assert "Mamba(40, d_state=16" in repr(m)


def test_block_is_causal():
    m = block()
    x = torch.randn(2, 12, 8, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 7] += 3.0
    out, out2 = m(x), m(x2)
    assert torch.equal(out[:, :7], out2[:, :7]) and not torch.allclose(out[:, 7:], out2[:, 7:])


def test_padding_never_reaches_valid_positions():
    m = block()
    lengths = torch.tensor([10, 4, 7])
    x = torch.randn(3, 10, 8, dtype=torch.float64)
    noisy = x.clone()
    for b, n in enumerate(lengths.tolist()):
        noisy[b, n:] = 1e3 * torch.randn(10 - n, 8, dtype=torch.float64)  # garbage in the padding
    out = m(noisy, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out[b:b + 1, :n], m(x[b:b + 1, :n]))
        assert torch.all(out[b, n:] == 0)


def test_cpu_path_equals_reference_path_through_the_block():
    m = block()
    x = torch.randn(2, 9, 8, dtype=torch.float64)
    lengths = torch.tensor([9, 5])
    with ops.set_backend("reference"):
        expected = m(x, lengths)
    torch.testing.assert_close(m(x, lengths), expected)
    assert ops.last_path("selective_scan") == "cpu"


def test_flip_valid():
    x = torch.arange(2 * 5, dtype=torch.float64).view(2, 5, 1).expand(2, 5, 3).clone()
    lengths = torch.tensor([5, 3])
    out = flip_valid(x, lengths)
    assert out[0, :, 0].tolist() == [4, 3, 2, 1, 0]
    assert out[1, :, 0].tolist() == [7, 6, 5, 8, 9]  # padding (positions 3, 4) untouched
    assert torch.equal(flip_valid(out, lengths), x)
    assert torch.equal(flip_valid(x), x.flip(1))


@pytest.mark.parametrize("combine", ["sum", "concat"])
def test_bimamba_with_padding_equals_two_runs_on_unpadded_sequences(combine):
    torch.manual_seed(0)
    bi = BiMamba(8, d_state=4, combine=combine).double()
    lengths = torch.tensor([9, 3, 6])
    x = torch.randn(3, 9, 8, dtype=torch.float64, requires_grad=True)
    out = bi(x, lengths)
    out.sum().backward()
    for b, n in enumerate(lengths.tolist()):
        seq = x[b:b + 1, :n].detach()
        ahead = bi.forward_block(seq)
        behind = bi.backward_block(seq.flip(1)).flip(1)
        expected = ahead + behind if combine == "sum" else bi.merge(torch.cat([ahead, behind], -1))
        torch.testing.assert_close(out[b:b + 1, :n], expected)
        assert torch.all(out[b, n:] == 0) and torch.all(x.grad[b, n:] == 0)


def test_bimamba_differs_from_a_padded_flip():
    """Flipping the padded tensor would put padding first for the short sequence: the result must differ."""
    torch.manual_seed(0)
    bi = BiMamba(8, d_state=4).double()
    lengths = torch.tensor([9, 4])
    x = torch.randn(2, 9, 8, dtype=torch.float64)
    wrong = bi.forward_block(x, lengths) + bi.backward_block(x.flip(1)).flip(1) * (torch.arange(9) < 4)[:, None]
    assert not torch.allclose(bi(x, lengths)[1], wrong[1])


@pytest.mark.parametrize("x,lengths,match", [
    (torch.randn(9, 8), None, r"x must be \[batch, L, d_model\]"),
    (torch.randn(2, 9, 6), None, r"x has 6 features but the block has d_model = 8"),
    (torch.randn(2, 9, 8), torch.tensor([9, 10]), r"lengths must lie in \[0, L = 9\]"),
    (torch.randn(2, 9, 8), torch.tensor([9]), r"lengths must be an integer tensor \[batch\]"),
])
def test_bad_input_is_named(x, lengths, match):
    with pytest.raises(ValueError, match=match):
        Mamba(8, d_state=4)(x, lengths)


def test_bad_arguments():
    with pytest.raises(ValueError, match="combine must be 'sum' or 'concat'"):
        BiMamba(8, combine="max")
    with pytest.raises(ValueError, match="dt_min <= dt_max"):
        Mamba(8, dt_min=0.2, dt_max=0.1)


# ---------------------------------------------------------------------------------------------- audit (issue 15)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_non_finite_padding_reaches_no_output_and_no_gradient(bidirectional):
    """NaN/inf in the padding (as a buggy upstream layer might leave there): the valid outputs, the padded outputs
    (0) and every parameter gradient equal those of the same batch with zeros in the padding."""
    torch.manual_seed(0)
    m = (BiMamba(8, d_state=4) if bidirectional else Mamba(8, d_state=4)).double()
    lengths = torch.tensor([7, 3])
    x = torch.randn(2, 7, 8, dtype=torch.float64)
    x[1, 3:] = 0.0
    poisoned = x.clone()
    poisoned[1, 3] = float("nan")
    poisoned[1, 4:] = float("inf")
    results = []
    for inp in (x, poisoned):
        m.zero_grad()
        out = m(inp, lengths)
        out.sum().backward()
        results.append((out, {n: p.grad.clone() for n, p in m.named_parameters()}))
    (out_c, grads_c), (out_p, grads_p) = results
    torch.testing.assert_close(out_p, out_c)
    assert torch.all(out_p[1, 3:] == 0)
    for name in grads_c:
        torch.testing.assert_close(grads_p[name], grads_c[name], msg=name)


def test_empty_sequences():
    m = block()
    for lengths in (None, torch.tensor([0, 0])):
        out = m(torch.randn(2, 0, 8, dtype=torch.float64), lengths)
        assert out.shape == (2, 0, 8)
        out.sum().backward()  # connected to the parameters (zero gradients)


@pytest.mark.parametrize("name", ["d_model", "d_state", "d_conv", "expand", "dt_rank"])
@pytest.mark.parametrize("value", [0, -1, 1.5])
def test_bad_sizes_are_named(name, value):
    kwargs = {"d_model": 8, name: value}
    with pytest.raises(ValueError, match=rf"{name} must be an int >= 1, got {value}"):
        Mamba(**kwargs)
    with pytest.raises(ValueError, match=rf"{name} must be an int >= 1"):
        BiMamba(**kwargs)
