"""graphlab.ops.dropout: the Philox mask against published known answers, the native kernel against the plain-torch
reference (mask bit-exact, values, gradients), statistics of the mask, edge cases, errors and the fallback."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import graphlab.ops as ops
from graphlab.ops import _native, reference
from graphlab.ops.dropout import draw_seed

native_only = pytest.mark.skipif(not _native.available(), reason="native kernels unavailable")

# Random123's kat_vectors (Salmon et al. 2011), "philox4x32 10": counter[4], key[2] -> output[4].
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", PHILOX_KAT)
def test_reference_philox_matches_published_known_answers(counter, key, expected):
    out = reference.philox4x32_10(torch.tensor([counter]), key)
    assert out[0].tolist() == list(expected)


def test_reference_mask_layout_follows_the_known_answers():
    # seed 2^64 - 1, offset 2^64 - 1, element 4 * (2^64 - 1) is out of reach; block 0 of seed 0 / offset 0 is not:
    # words 6627e8d5 e169c58d bc57ac4c 9b00dbd8 against the threshold a0000000 -> drop, keep, keep, drop.
    p = 0xA0000000 / 2**32
    assert reference.dropout_mask(4, p, seed=0).tolist() == [False, True, True, False]


@native_only
def test_native_mask_matches_the_known_answers():
    p = 0xA0000000 / 2**32
    assert ops.dropout_mask(4, p, seed=0).tolist() == [False, True, True, False]
    assert ops.last_path("dropout_mask") == "cpu"


@native_only
@pytest.mark.parametrize("numel", [0, 1, 3, 5, 63, 64, 65, 1000, 16384 * 2 + 17])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_native_mask_is_the_reference_mask_bit_for_bit(numel, p):
    for seed, offset in [(0, 0), (12345, 7), (2**64 - 1, 2**64 - 1), (2**40 + 3, 2**33)]:
        got = ops.dropout_mask(numel, p, seed, offset)
        assert torch.equal(got, reference.dropout_mask(numel, p, seed, offset))


@native_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", [(7,), (33, 5), (50, 40, 3)])
def test_native_values_and_gradients_equal_the_reference(dtype, shape):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(shape, generator=gen).to(dtype)
    g = torch.randn(shape, generator=gen).to(dtype)
    xr = x.clone().requires_grad_()
    want = reference.dropout(xr, 0.3, True, seed=99, offset=5)
    (want_grad,) = torch.autograd.grad(want, xr, g)
    for save_mask in (False, True):
        xn = x.clone().requires_grad_()
        got = ops.dropout(xn, 0.3, seed=99, offset=5, save_mask=save_mask)
        assert ops.last_path("dropout") == "cpu"
        (got_grad,) = torch.autograd.grad(got, xn, g)
        assert ops.last_path("dropout.backward") == "cpu"
        assert got.dtype == dtype and got.shape == x.shape
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        torch.testing.assert_close(got_grad, want_grad, rtol=0, atol=0)


@native_only
def test_non_contiguous_input_uses_the_row_major_index():
    x = torch.randn(40, 30).t()  # [30, 40], transposed
    torch.testing.assert_close(ops.dropout(x, 0.4, seed=1), reference.dropout(x, 0.4, True, seed=1), rtol=0, atol=0)


@native_only
def test_mask_does_not_depend_on_the_thread_count():
    x = torch.randn(16384 * 5 + 11, 3)  # several work units per thread
    previous = torch.get_num_threads()
    try:
        outs = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            outs.append(ops.dropout(x, 0.5, seed=2024))
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_gradcheck_float64(backend):
    x = torch.randn(13, 6, dtype=torch.float64, requires_grad=True)
    with ops.set_backend(backend):
        assert torch.autograd.gradcheck(lambda t: ops.dropout(t, 0.35, seed=11), (x,))
        assert torch.autograd.gradgradcheck(lambda t: ops.dropout(t, 0.35, seed=11), (x,))


@native_only
def test_forced_reference_path_gives_the_same_output():
    x = torch.randn(20, 9)
    with ops.set_backend("reference"):
        ref = ops.dropout(x, 0.25, seed=5)
        assert ops.last_path("dropout") == "reference"
    assert torch.equal(ops.dropout(x, 0.25, seed=5), ref)


# ---- the random function: keep rate, independence, reproducibility


@pytest.mark.parametrize("p", [0.05, 0.5, 0.8])
def test_keep_rate_and_scale(p):
    torch.manual_seed(0)
    x = torch.rand(300, 200) + 0.5  # no zeros: a zero output means "dropped"
    out = ops.dropout(x, p)
    dropped = out == 0
    torch.testing.assert_close(out[~dropped], x[~dropped] / (1 - p))
    std = (p * (1 - p) / x.numel()) ** 0.5
    assert abs(dropped.double().mean().item() - p) < 6 * std


def test_masks_are_independent_across_calls_entries_and_offsets():
    torch.manual_seed(1)
    x = torch.ones(300, 300)
    a, b = ops.dropout(x, 0.5) == 0, ops.dropout(x, 0.5) == 0  # two calls: two seeds
    c = ops.dropout(x, 0.5, seed=7, offset=1) == 0
    d = ops.dropout(x, 0.5, seed=7, offset=2) == 0
    tol = 6 * (0.25 * 0.75 / x.numel()) ** 0.5
    for u, v in [(a, b), (c, d), (a[:, :-1], a[:, 1:]), (a[:-1], a[1:])]:
        assert abs((u & v).double().mean().item() - 0.25) < tol
    # the four words of one Philox block: entries 4k and 4k + 1 .. 4k + 3
    flat = a.reshape(-1)[: 4 * (a.numel() // 4)].reshape(-1, 4)
    for j in range(1, 4):
        assert abs((flat[:, 0] & flat[:, j]).double().mean().item() - 0.25) < 4 * tol


def test_seed_comes_from_torch_generator():
    x = torch.randn(100, 10)
    torch.manual_seed(42)
    first = ops.dropout(x, 0.5)
    torch.manual_seed(42)
    assert torch.equal(ops.dropout(x, 0.5), first)
    assert not torch.equal(ops.dropout(x, 0.5), first)
    gen = torch.Generator().manual_seed(9)
    seed = draw_seed(torch.Generator().manual_seed(9))
    assert torch.equal(ops.dropout(x, 0.5, generator=gen), ops.dropout(x, 0.5, seed=seed))


# ---- edge cases


def test_eval_and_p_zero_return_the_input_itself():
    x = torch.randn(5, 4)
    assert ops.dropout(x, 0.5, training=False) is x
    assert ops.dropout(x, 0.0) is x


@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_p_one_gives_zeros_and_zero_gradient(backend):
    x = torch.randn(6, 5, requires_grad=True)
    with ops.set_backend(backend):
        out = ops.dropout(x, 1.0)
    assert torch.equal(out, torch.zeros(6, 5))
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros(6, 5))


@native_only
def test_dropped_non_finite_entries_become_zero():
    x = torch.full((64,), float("nan"))
    keep = ops.dropout_mask(64, 0.5, seed=3)
    out = ops.dropout(x, 0.5, seed=3)
    assert torch.equal(out[~keep], torch.zeros(int((~keep).sum())))
    assert out[keep].isnan().all()


def test_empty_input():
    assert ops.dropout(torch.empty(0, 4), 0.5).shape == (0, 4)


# ---- errors and fallback


@pytest.mark.parametrize("p, error, match", [
    (1.5, ValueError, r"p must lie in \[0, 1\]"), (-0.1, ValueError, r"p must lie in \[0, 1\]"),
    ("0.5", TypeError, "must be a real number"), (True, TypeError, "must be a real number"),
])
def test_bad_p_raises(p, error, match):
    with pytest.raises(error, match=match):
        ops.dropout(torch.ones(3), p)


def test_bad_input_seed_and_offset_raise():
    with pytest.raises(TypeError, match="floating-point tensor.*x.float"):
        ops.dropout(torch.ones(3, dtype=torch.long), 0.5)
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        ops.dropout([1.0, 2.0], 0.5)
    with pytest.raises(ValueError, match=r"seed must lie in \[0, 2\*\*64\)"):
        ops.dropout(torch.ones(3), 0.5, seed=-1)
    with pytest.raises(ValueError, match=r"offset must lie in \[0, 2\*\*64\)"):
        ops.dropout(torch.ones(3), 0.5, seed=1, offset=2**64)
    with pytest.raises(TypeError, match="seed must be an int"):
        ops.dropout(torch.ones(3), 0.5, seed=1.5)
    with pytest.raises(ValueError, match="non-negative int"):
        ops.dropout_mask(-1, 0.5, seed=0)


def test_without_native_kernels_it_falls_back_to_torch_dropout():
    x = torch.randn(50, 8)
    with _native.use_native(False):
        torch.manual_seed(4)
        out = ops.dropout(x, 0.3)
        assert ops.last_path("dropout") == "torch"
    torch.manual_seed(4)
    assert torch.equal(out, F.dropout(x, 0.3, training=True))


def test_benchmark_script_prints_one_row_per_method_and_mode(capsys, repo_script):
    module = repo_script("benchmarks/dropout.py")
    lines = module.main(["--rows", "50", "--features", "3", "--repeats", "1", "--warmup", "0"])
    rows = [line for line in lines if line.strip().startswith("50")]
    assert len(rows) == 2 * len(module.METHODS)  # fwd and fwd+bwd, every method; no timing is asserted
    assert "x torch" in capsys.readouterr().out


def test_compiled_model_uses_torch_dropout_without_graph_breaks():
    def f(x):
        return ops.dropout(x, 0.5).sum()

    compiled = torch.compile(f, backend="eager", fullgraph=True)  # fullgraph: a graph break fails
    x = torch.ones(64, 4)
    out = compiled(x)
    assert 0 < out.item() <= 2 * 64 * 4
