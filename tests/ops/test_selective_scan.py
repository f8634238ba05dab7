"""graphlab.ops.selective_scan: every path against the sequential reference (values and gradients in float64,
gradcheck), every argument combination, chunk sizes, causality, long sequences, variable lengths, bad input."""

from __future__ import annotations

import importlib
import itertools

import pytest
import torch

from graphlab import ops
from graphlab.ops import _native_scan, reference

pytestmark = pytest.mark.usefixtures("one_thread")

scan_module = importlib.import_module("graphlab.ops.selective_scan")  # the package exports the function

# "cpu-native": the C kernel (graphlab/ops/_native_scan.py); "cpu-torch": the chunked torch scan (its fallback).
CPU_PATHS = ["cpu-native", "cpu-torch"]
PATHS = [*CPU_PATHS, pytest.param("triton", marks=pytest.mark.triton)]
IMPL = {"cpu-native": "native", "cpu-torch": "torch"}


def assert_ran(path: str) -> None:
    """The op recorded the CPU path and, for "cpu-native"/"cpu-torch", the implementation that ran."""
    if path in IMPL:
        assert ops.last_path("selective_scan") == "cpu"
        assert ops.last_path(scan_module.IMPL_LOG) == IMPL[path]
PARAM_KINDS = {"const": 2, "shared": 3, "grouped": 4}


def make_inputs(
    batch: int = 2, channels: int = 6, length: int = 11, state: int = 3, b_kind: str = "shared",
    c_kind: str = "shared", groups: int = 2, dtype: torch.dtype = torch.float64, seed: int = 0,
) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=dtype)

    def param(kind: str) -> torch.Tensor:
        return rand(*{"const": (channels, state), "shared": (batch, state, length),
                      "grouped": (batch, groups, state, length)}[kind])

    return {
        "u": rand(batch, channels, length),
        "delta": rand(batch, channels, length) * 0.5,
        "A": -torch.rand(channels, state, generator=gen, dtype=dtype) * 2 - 0.1,
        "B": param(b_kind),
        "C": param(c_kind),
        "D": rand(channels),
        "z": rand(batch, channels, length),
        "delta_bias": rand(channels) * 0.1,
    }


def leaves(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}


def run_both(path_env, path, inputs, keys, softplus, lengths=None, chunk_size=None):
    """Output, last state and gradients of the reference and of ``path`` (same random cotangents)."""
    results = []
    for which in ("reference", "fast"):
        x = leaves(inputs)
        args = [x[k] for k in ("u", "delta", "A", "B", "C")]
        kwargs = {k: x[k] for k in ("D", "z", "delta_bias") if k in keys}
        if which == "reference":
            out, last = reference.selective_scan(*args, **kwargs, delta_softplus=softplus, return_last_state=True,
                                                 lengths=lengths)
        else:
            with path_env(path) as expected:
                out, last = ops.selective_scan(*args, **kwargs, delta_softplus=softplus, return_last_state=True,
                                               lengths=lengths, chunk_size=chunk_size)
                assert ops.last_path("selective_scan") == expected
                assert_ran(path)
        gen = torch.Generator().manual_seed(1)
        g_out = torch.randn(out.shape, generator=gen, dtype=out.dtype)
        g_last = torch.randn(last.shape, generator=gen, dtype=last.dtype)
        names = ["u", "delta", "A", "B", "C", *kwargs]
        grads = torch.autograd.grad((out * g_out).sum() + (last * g_last).sum(), [x[k] for k in names])
        results.append((out, last, dict(zip(names, grads))))
    return results


def assert_match(results, atol=1e-9, rtol=1e-7):
    (out_r, last_r, grads_r), (out_f, last_f, grads_f) = results
    torch.testing.assert_close(out_f, out_r, atol=atol, rtol=rtol)
    torch.testing.assert_close(last_f, last_r, atol=atol, rtol=rtol)
    for name in grads_r:
        torch.testing.assert_close(grads_f[name], grads_r[name], atol=atol, rtol=rtol, msg=f"grad of {name}")


# ---------------------------------------------------------------------------------------------- values, grads
OPTIONAL_SETS = [(), ("D",), ("z",), ("delta_bias",), ("D", "z", "delta_bias")]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("b_kind,c_kind", list(itertools.product(PARAM_KINDS, PARAM_KINDS)))
def test_matches_reference_for_every_b_c_layout(path, path_env, b_kind, c_kind):
    inputs = make_inputs(b_kind=b_kind, c_kind=c_kind, groups=3)
    lengths = torch.tensor([11, 6])
    assert_match(run_both(path_env, path, inputs, ("D", "z", "delta_bias"), True, lengths=lengths, chunk_size=4))


# D, z, delta_bias, softplus and the lengths are applied in torch around the kernels, the same code for every path:
# the CPU path covers them; the Triton kernel sees every B/C layout above (the interpreter is slow).
@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("keys", OPTIONAL_SETS, ids=lambda k: "+".join(k) or "none")
@pytest.mark.parametrize("softplus", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_matches_reference_for_every_option(path, path_env, keys, softplus, with_lengths):
    inputs = make_inputs(b_kind="grouped", c_kind="shared")
    lengths = torch.tensor([3, 11]) if with_lengths else None
    assert_match(run_both(path_env, path, inputs, keys, softplus, lengths=lengths, chunk_size=5))


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("chunk_size", [1, 2, 4, 5, 16, 23, 64])
def test_chunk_sizes_that_do_and_do_not_divide_l(path, path_env, chunk_size, monkeypatch):
    """The torch path's chunk (``chunk_size``) and the native path's checkpoint interval ``K``."""
    inputs = make_inputs(length=23, channels=4)  # 23 is prime: only 1 and 23 divide it; 64 > L
    monkeypatch.setattr(_native_scan, "_CHUNK_VALUES", chunk_size * 3)  # K = chunk_size at N = 3
    assert _native_scan.checkpoint_every(3) == chunk_size
    assert_match(run_both(path_env, path, inputs, ("D", "z"), True, lengths=torch.tensor([23, 17]),
                          chunk_size=chunk_size))


def test_default_chunk_with_many_chunks_and_channel_blocks(path_env, monkeypatch):
    monkeypatch.setattr(scan_module, "BLOCK_ELEMENTS", 2 * 100 * 3)  # one channel per block
    inputs = make_inputs(length=100, channels=4, b_kind="grouped", c_kind="const", groups=2)
    assert_match(run_both(path_env, "cpu-torch", inputs, ("D", "delta_bias"), True, lengths=torch.tensor([100, 57])))


@pytest.mark.parametrize("path", CPU_PATHS)
def test_gradcheck_cpu_every_argument(path, path_env):
    x = leaves(make_inputs(batch=2, channels=4, length=7, state=2, b_kind="grouped", c_kind="shared"))
    lengths = torch.tensor([7, 4])

    def fn(u, delta, A, B, C, D, z, delta_bias):
        return ops.selective_scan(u, delta, A, B, C, D, z, delta_bias, True, True, lengths=lengths, chunk_size=3)

    with path_env(path):
        assert torch.autograd.gradcheck(fn, tuple(x.values()), eps=1e-6, atol=1e-7)
        assert_ran(path)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("b_kind", ["const", "grouped"])
def test_gradcheck_scan_inputs(path, path_env, b_kind):
    """The kernels see u, delta, A, B, C (the rest is torch around them): a small gradcheck of those."""
    inputs = make_inputs(batch=1, channels=2, length=4, state=2, b_kind=b_kind, c_kind="shared", groups=2)
    x = leaves({k: inputs[k] for k in ("u", "delta", "A", "B", "C")})

    def fn(u, delta, A, B, C):
        return ops.selective_scan(u, delta, A, B, C, return_last_state=True, chunk_size=3)

    with path_env(path):
        assert torch.autograd.gradcheck(fn, tuple(x.values()), eps=1e-6, atol=1e-7)
        assert_ran(path)


# ---------------------------------------------------------------------------------------------- semantics
def test_reference_is_the_recurrence_by_hand(path_env):
    """One channel, one state, constant B and C: h_t = exp(d A) h_{t-1} + d u_t, y_t = h_t + D u_t."""
    u = torch.tensor([[[1.0, 2.0, -1.0]]], dtype=torch.float64)
    delta = torch.full_like(u, 0.5)
    A = torch.tensor([[-2.0]], dtype=torch.float64)
    one = torch.ones(1, 1, dtype=torch.float64)
    decay = torch.exp(torch.tensor(-1.0, dtype=torch.float64))
    h1 = 0.5
    h2 = decay * h1 + 1.0
    h3 = decay * h2 - 0.5
    expected = torch.tensor([[[h1, h2, h3]]], dtype=torch.float64) + 3.0 * u
    for path in ("reference", *CPU_PATHS):
        with path_env(path):
            out = ops.selective_scan(u, delta, A, one, one, D=torch.tensor([3.0], dtype=torch.float64))
            assert_ran(path)
        torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("path", PATHS)
def test_causality(path, path_env):
    inputs = make_inputs(length=19, b_kind="shared", c_kind="grouped", groups=2)
    t = 9
    with path_env(path):
        out = ops.selective_scan(**inputs, delta_softplus=True, chunk_size=4)
        changed = dict(inputs)
        for key in ("u", "delta", "z"):
            changed[key] = inputs[key].clone()
            changed[key][:, :, t] += 5.0
        for key in ("B", "C"):
            changed[key] = inputs[key].clone()
            changed[key][..., t] += 5.0
        out2 = ops.selective_scan(**changed, delta_softplus=True, chunk_size=4)
        assert_ran(path)
    assert torch.equal(out[:, :, :t], out2[:, :, :t])
    assert not torch.allclose(out[:, :, t:], out2[:, :, t:])


@pytest.mark.parametrize("path", PATHS)
def test_variable_length_batch_equals_per_sequence_runs(path, path_env):
    lengths = torch.tensor([13, 5, 0, 9])
    inputs = leaves(make_inputs(batch=4, length=13, b_kind="grouped", c_kind="shared", groups=3))
    with path_env(path):
        out, last = ops.selective_scan(**inputs, delta_softplus=True, return_last_state=True, lengths=lengths,
                                       chunk_size=4)
        out.sum().backward()
        for b, n in enumerate(lengths.tolist()):
            one = {k: (v[b:b + 1, ..., :n].detach() if v.dim() >= 3 else v.detach()) for k, v in inputs.items()}
            out_b, last_b = ops.selective_scan(**one, delta_softplus=True, return_last_state=True, chunk_size=4)
            torch.testing.assert_close(out[b:b + 1, :, :n], out_b)
            torch.testing.assert_close(last[b:b + 1], last_b)
        assert_ran(path)
    assert torch.all(out[1, :, 5:] == 0) and torch.all(out[2] == 0)
    for key in ("u", "delta", "z"):  # padding gets no gradient
        assert torch.all(inputs[key].grad[1, :, 5:] == 0) and torch.all(inputs[key].grad[2] == 0)
    assert torch.all(inputs["B"].grad[1, ..., 5:] == 0) and torch.all(inputs["C"].grad[2] == 0)


@pytest.mark.parametrize("path", CPU_PATHS)
def test_mask_equals_lengths_and_skips_invalid_positions(path, path_env):
    inputs = make_inputs(batch=2, length=10)
    lengths = torch.tensor([10, 4])
    mask = torch.arange(10)[None, :] < lengths[:, None]
    with path_env(path):
        by_len = ops.selective_scan(**inputs, lengths=lengths)
        by_mask = ops.selective_scan(**inputs, mask=mask)
        holes = mask.clone()
        holes[0, 3] = False  # a hole: the state is carried over position 3
        with_hole = ops.selective_scan(**inputs, mask=holes)
    assert torch.equal(by_len, by_mask)
    expected = reference.selective_scan(**inputs, mask=holes)
    torch.testing.assert_close(with_hole, expected)
    assert torch.all(with_hole[0, :, 3] == 0)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_low_precision_inputs_run_in_float32(path, path_env, dtype):
    inputs = {k: v.to(dtype) for k, v in make_inputs(length=40).items()}
    with path_env(path):
        out, last = ops.selective_scan(**inputs, delta_softplus=True, return_last_state=True)
    assert out.dtype == dtype and last.dtype == torch.float32
    expected = reference.selective_scan(**{k: v.double() for k, v in inputs.items()}, delta_softplus=True)
    tol = {torch.float32: 1e-4, torch.bfloat16: 3e-2}[dtype]
    torch.testing.assert_close(out.double(), expected, atol=tol, rtol=tol)


@pytest.mark.parametrize("path", CPU_PATHS)
def test_empty_sequence(path, path_env):
    inputs = make_inputs(length=0)
    with path_env(path):
        out, last = ops.selective_scan(**inputs, return_last_state=True)
    assert out.shape == (2, 6, 0) and torch.all(last == 0)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("regime", ["strongly_decaying", "tiny_delta"])
def test_long_sequence_stays_finite_and_accurate(path, path_env, regime):
    """L = 4096 in float32: Delta*A down to -800 per step (a cumulative sum of it would reach -3e6) and Delta = 1e-6
    (states that barely move); the values and the gradients match the float64 reference."""
    length = 4096
    inputs = make_inputs(batch=1, channels=2, length=length, state=4, dtype=torch.float32)
    if regime == "strongly_decaying":
        inputs["delta"] = torch.rand(1, 2, length) * 50
        inputs["A"] = -torch.linspace(1.0, 16.0, 8).view(2, 4)
    else:
        inputs["delta"] = torch.full((1, 2, length), 1e-6)
    x = leaves({k: inputs[k] for k in ("u", "delta", "A", "B", "C")})
    with path_env(path):
        out, last = ops.selective_scan(**x, return_last_state=True)
        (out.sum() + last.sum()).backward()
        assert_ran(path)
    x64 = leaves({k: v.double() for k, v in x.items()})
    out64, last64 = reference.selective_scan(**x64, return_last_state=True)
    (out64.sum() + last64.sum()).backward()
    assert torch.isfinite(out).all() and torch.isfinite(last).all()
    torch.testing.assert_close(out.double(), out64, atol=1e-4, rtol=1e-4)
    for k in x:
        assert torch.isfinite(x[k].grad).all(), k
        scale = x64[k].grad.abs().max().clamp(min=1.0)
        torch.testing.assert_close(x[k].grad.double() / scale, x64[k].grad / scale, atol=1e-4, rtol=1e-3, msg=k)


def test_the_forced_reference_path_is_recorded():
    inputs = make_inputs()
    with ops.set_backend("reference"):
        ops.selective_scan(**inputs)
    assert ops.last_path("selective_scan") == "reference"
    ops.selective_scan(**inputs)  # auto on CPU tensors
    assert ops.last_path("selective_scan") == "cpu"
    assert ops.last_path(scan_module.IMPL_LOG) == ("native" if _native_scan.available() else "torch")


# ---------------------------------------------------------------------------------------------- bad input
BAD_INPUTS = [
    ({"u": torch.randn(2, 6)}, ValueError, r"u must be 3-D"),
    ({"u": torch.ones(2, 6, 11, dtype=torch.long)}, TypeError, r"u has dtype torch.int64"),
    ({"delta": torch.randn(2, 6, 10)}, ValueError, r"delta must have u's shape"),
    ({"A": torch.randn(5, 3)}, ValueError, r"A must be \[D, N\] with D = 6"),
    ({"A": torch.randn(6)}, ValueError, r"A must be 2-D"),
    ({"B": torch.randn(6, 4)}, ValueError, r"constant B must be \[D, N\]"),
    ({"B": torch.randn(2, 3, 10)}, ValueError, r"input-dependent B must be \[batch, N, L\]"),
    ({"C": torch.randn(2, 4, 3, 11)}, ValueError, r"G = 4 groups, which must divide D = 6"),
    ({"C": torch.randn(2, 3, 2, 11)}, ValueError, r"grouped C must be"),
    ({"D": torch.randn(5)}, ValueError, r"D must have shape \(6,\)"),
    ({"z": torch.randn(2, 6, 10)}, ValueError, r"z must have shape"),
    ({"delta_bias": torch.randn(6, 1)}, ValueError, r"delta_bias must be 1-D"),
    ({"lengths": torch.tensor([11, 12])}, ValueError, r"lengths must lie in \[0, L = 11\].*max 12"),
    ({"lengths": torch.tensor([3, -1])}, ValueError, r"lengths must lie in"),
    ({"lengths": torch.tensor([3.0, 2.0])}, TypeError, r"lengths must be an integer tensor"),
    ({"lengths": torch.tensor([3, 2, 1])}, ValueError, r"lengths must have shape \[batch\]"),
    ({"mask": torch.ones(2, 11)}, TypeError, r"mask must be a boolean tensor"),
    ({"mask": torch.ones(2, 10, dtype=torch.bool)}, ValueError, r"mask must have shape \[batch, L\]"),
    ({"lengths": torch.tensor([3, 2]), "mask": torch.ones(2, 11, dtype=torch.bool)}, ValueError, r"either lengths"),
    ({"chunk_size": 0}, ValueError, r"chunk_size must be a positive int"),
    ({"B": [[1.0]]}, TypeError, r"B must be a torch.Tensor"),
]


@pytest.mark.parametrize("change,error,match", BAD_INPUTS)
def test_bad_input_is_named(change, error, match):
    inputs = make_inputs(dtype=torch.float32)
    del inputs["z"]
    inputs.update(change)
    with pytest.raises(error, match=match):
        ops.selective_scan(**inputs)


# ---------------------------------------------------------------------------------------------- native kernel
@pytest.mark.parametrize("b_kind,c_kind", [("const", "grouped"), ("shared", "const"), ("grouped", "shared")])
def test_native_threads_match_one_thread(path_env, b_kind, c_kind, monkeypatch):
    """Several pthreads (per-thread partial gradients of A, B, C, summed afterwards) give the one-thread result."""
    monkeypatch.setattr(_native_scan, "_PARALLEL_MIN_WORK", 0)
    inputs = make_inputs(batch=3, channels=6, length=29, state=5, b_kind=b_kind, c_kind=c_kind, groups=3)
    results = []
    for threads in (1, 3):
        torch.set_num_threads(threads)
        try:
            results.append(run_both(path_env, "cpu-native", inputs, ("D",), True, lengths=torch.tensor([29, 8, 20]))[1])
        finally:
            torch.set_num_threads(1)
    (out1, last1, grads1), (out3, last3, grads3) = results
    torch.testing.assert_close(out3, out1, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(last3, last1, atol=1e-12, rtol=1e-12)
    for name in grads1:
        torch.testing.assert_close(grads3[name], grads1[name], atol=1e-12, rtol=1e-12, msg=name)


def test_native_boundary_names_the_bad_argument():
    if not _native_scan.available():
        pytest.skip("native kernels unavailable")
    u = torch.randn(1, 2, 5)
    A = -torch.rand(2, 3)
    B = torch.randn(1, 1, 5, 3)
    with pytest.raises(TypeError, match="argument dt has dtype torch.float64"):
        _native_scan.scan_forward(u, u.double(), A, B, B, 1, 1, False)
    with pytest.raises(ValueError, match=r"argument C has shape \(1, 1, 4, 3\)"):
        _native_scan.scan_forward(u, u, A, B, B[:, :, :4], 1, 1, False)
    with pytest.raises(ValueError, match="3 groups, which must divide D = 2"):
        _native_scan.scan_forward(u, u, A, B, B, 3, 1, False)


# ---------------------------------------------------------------------------------------------- N = 16, float32
# Mamba's d_state 16 in float32 has its own forward (ss_fwd_pair16: the states as one 16-lane vector, y of 16
# positions at once through a transpose-add tree, a vectorised exp) wherever the build targets AVX-512.
@pytest.mark.parametrize("b_kind,c_kind", [("shared", "shared"), ("const", "grouped"), ("grouped", "const")])
@pytest.mark.parametrize("length,every", [(53, 64), (100, 20), (16, 16), (5, 64)])
@pytest.mark.parametrize("with_grad", [False, True])
def test_native_state_16_float32_matches_float64_reference(path_env, b_kind, c_kind, length, every, with_grad,
                                                           monkeypatch):
    """Lengths and checkpoint intervals ``K`` that are and are not multiples of 16 (blocks of 16 positions, the
    tails of a chunk and of the sequence); without grad the forward keeps no checkpoints."""
    monkeypatch.setattr(_native_scan, "_CHUNK_VALUES", every * 16)
    inputs = make_inputs(batch=2, channels=6, length=length, state=16, b_kind=b_kind, c_kind=c_kind, groups=3,
                         dtype=torch.float32, seed=3)
    inputs["delta"] = torch.nn.functional.softplus(inputs["delta"])
    x = leaves({k: inputs[k] for k in ("u", "delta", "A", "B", "C", "D")})
    with path_env("cpu-native"), torch.set_grad_enabled(with_grad):
        out, last = ops.selective_scan(**x, return_last_state=True)
        assert_ran("cpu-native")
    x64 = leaves({k: v.double() for k, v in x.items()})
    out64, last64 = reference.selective_scan(**x64, return_last_state=True)
    torch.testing.assert_close(out.double(), out64, atol=2e-5, rtol=2e-5)
    torch.testing.assert_close(last.double(), last64, atol=2e-5, rtol=2e-5)
    if with_grad:
        gen = torch.Generator().manual_seed(1)
        g = torch.randn(out.shape, generator=gen)
        grads = torch.autograd.grad((out * g).sum(), list(x.values()))
        grads64 = torch.autograd.grad((out64 * g.double()).sum(), list(x64.values()))
        for name, got, want in zip(x, grads, grads64):
            torch.testing.assert_close(got.double(), want, atol=1e-4, rtol=1e-4, msg=name)


def test_native_state_16_float32_threads_match_one_thread(path_env, monkeypatch):
    """Outputs bit for bit; gradients up to the order in which the per-thread partial sums of A, B, C are added."""
    monkeypatch.setattr(_native_scan, "_PARALLEL_MIN_WORK", 0)
    inputs = make_inputs(batch=3, channels=8, length=70, state=16, b_kind="grouped", groups=2, dtype=torch.float32,
                         seed=4)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            x = leaves(inputs)
            with path_env("cpu-native"):
                out, last = ops.selective_scan(**x, delta_softplus=True, return_last_state=True)
            grads = torch.autograd.grad(out.sum() + last.sum(), list(x.values()))
            results.append((out, last, grads))
        finally:
            torch.set_num_threads(1)
    (out1, last1, grads1), (out2, last2, grads2) = results
    torch.testing.assert_close(out2, out1, atol=0, rtol=0)
    torch.testing.assert_close(last2, last1, atol=0, rtol=0)
    for name, g2, g1 in zip(inputs, grads2, grads1):
        torch.testing.assert_close(g2, g1, atol=1e-5, rtol=1e-5, msg=name)


# The kernels' float32 exp (kernels/csrc/selective_scan.c: ss_expf, and ss_exp16 on vectors) against float64:
# measured max relative error 1.18e-7 over [-87, 88] (about one float32 ulp of the result), bounded at 2e-7 here.
EXP_RELATIVE_ERROR = 2e-7


@pytest.mark.parametrize("vector", [True, False], ids=["ss_exp16", "ss_expf"])
def test_kernel_exp_relative_error_over_the_range_the_scan_sees(vector):
    if not _native_scan.available():
        pytest.skip("native kernels unavailable")
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([
        torch.linspace(-87.0, 88.0, 2_000_003),  # the range of normal results: Delta * A from -87 (A < 0) up
        -torch.rand(500_000, generator=gen) * 1e-3,  # tiny Delta * A: decays close to 1
        -torch.rand(500_000, generator=gen) * 20.0,
    ])
    got = _native_scan.kernel_exp(x, vector=vector).double()
    want = torch.exp(x.double())
    assert ((got - want).abs() / want).max().item() < EXP_RELATIVE_ERROR


def test_kernel_exp_of_very_negative_and_special_inputs():
    """Below -87 (a decay under 1.7e-38, e.g. Delta * A = -1e4 or -inf) the scalar exp clamps at exp(-87) and the
    vector one underflows to a subnormal or 0: either multiplies the state by < 1.7e-38 (0 for every purpose of
    the scan) and never gives a NaN, a negative value or a garbage exponent; a NaN stays a NaN."""
    if not _native_scan.available():
        pytest.skip("native kernels unavailable")
    special = [0.0, -0.0, -87.0, -87.5, -100.0, -1e4, -3e38, float("-inf")]
    for count, vector in ((16, True), (16, False), (17, True)):
        x = torch.tensor((special * 3)[:count], dtype=torch.float32)
        got = _native_scan.kernel_exp(x, vector=vector)
        assert torch.all(got[x == 0] == 1.0)
        below = x <= -87
        assert torch.all((got[below] >= 0) & (got[below] <= 1.7e-38))
    nan = _native_scan.kernel_exp(torch.full((17,), float("nan")))
    assert torch.isnan(nan).all()


def test_native_boundary_checks_the_skip():
    if not _native_scan.available():
        pytest.skip("native kernels unavailable")
    u = torch.randn(1, 2, 5)
    B = torch.randn(1, 1, 5, 3)
    with pytest.raises(ValueError, match=r"argument skip has shape \(3,\)"):
        _native_scan.scan_forward(u, u, -torch.rand(2, 3), B, B, 1, 1, False, skip=torch.ones(3))


# ---------------------------------------------------------------------------------------------- benchmark
def test_benchmark_script_prints_one_row_per_shape_and_mode(capsys, repo_script):
    """benchmarks/scan.py end to end on a tiny shape (no timing is asserted)."""
    bench = repo_script("benchmarks/scan.py")
    bench.main(["--L", "20", "33", "--d-inner", "4", "--d-state", "16", "--batch", "2", "--methods", "graphlab",
                "reference", "--modes", "fwd", "--repeats", "1", "--warmup", "0", "--clock", "thread"])
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [line.split() for line in lines if not line.startswith("#")][1:]
    assert [(r[0], r[1], r[2]) for r in rows] == [("20", "4", "fwd"), ("33", "4", "fwd")]
    assert all(len(r) == 3 + 2 * 2 + 1 and float(r[-1]) > 0 for r in rows)  # 2 methods x (ms, MiB), 1 ratio


# ---------------------------------------------------------------------------------------------- audit (issue 15)
@pytest.mark.parametrize("path", ["reference", *CPU_PATHS])
@pytest.mark.parametrize("key", ["u", "delta", "B", "C", "z"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_values_at_invalid_positions_change_no_output_and_no_gradient(path, path_env, key, bad):
    """A hole in the mask (position 2) and padding at the end (positions 5, 6) hold NaN/inf in one input: the
    outputs, the last state and every gradient equal those of the same call with zeros there (the reference
    carries the state over an invalid position, so nothing there may be read -- not even as ``0 * nan``)."""
    inputs = make_inputs(batch=2, channels=4, length=7, b_kind="shared", c_kind="grouped", groups=2)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[0, 2] = False
    mask[1, 5:] = False
    poisoned = {k: v.clone() for k, v in inputs.items()}
    poisoned[key][0, ..., 2] = bad
    poisoned[key][1, ..., 5:] = bad
    clean = {k: v.clone() for k, v in inputs.items()}
    clean[key][0, ..., 2] = 0.0
    clean[key][1, ..., 5:] = 0.0
    results = []
    for values in (clean, poisoned):
        x = leaves(values)
        with path_env(path):
            out, last = ops.selective_scan(**x, delta_softplus=True, return_last_state=True, mask=mask,
                                           chunk_size=2)
        grads = torch.autograd.grad(out.sum() + last.sum(), list(x.values()))
        results.append((out, last, dict(zip(x, grads))))
    (out_c, last_c, grads_c), (out_p, last_p, grads_p) = results
    torch.testing.assert_close(out_p, out_c)
    torch.testing.assert_close(last_p, last_c)
    assert torch.all(out_p[0, :, 2] == 0) and torch.all(out_p[1, :, 5:] == 0)
    for name in grads_c:
        torch.testing.assert_close(grads_p[name], grads_c[name], msg=f"grad of {name}")


@pytest.mark.parametrize("path", CPU_PATHS)
def test_zero_channels(path, path_env):
    inputs = leaves(make_inputs(channels=0, groups=1, b_kind="shared", c_kind="grouped"))
    with path_env(path):
        out, last = ops.selective_scan(**inputs, delta_softplus=True, return_last_state=True)
        (out.sum() + last.sum()).backward()
    assert out.shape == (2, 0, 11) and last.shape == (2, 0, 3)
    assert torch.all(inputs["B"].grad == 0) and torch.all(inputs["C"].grad == 0)


def test_complex_a_is_named():
    inputs = make_inputs(dtype=torch.float32)
    inputs["A"] = inputs["A"].to(torch.complex64)
    with pytest.raises(TypeError, match=r"A has dtype torch.complex64: mamba-ssm's complex mode is not supported"):
        ops.selective_scan(**inputs)


@pytest.mark.parametrize("compute,state,length,expected", [
    (torch.float32, 16, 64, True), (torch.float64, 16, 64, False), (torch.float32, 256, 64, True),
    (torch.float32, 257, 64, False), (torch.float32, 16, 0, False),
])
def test_mamba_ssm_gets_only_calls_its_kernel_accepts(compute, state, length, expected):
    """mamba-ssm's CUDA scan dispatches on float32/float16/bfloat16 only and checks d_state <= 256: float64 (the
    gradcheck dtype) and larger states must go to the Triton kernels instead of failing inside mamba-ssm."""
    assert scan_module.mamba_ssm_supports(compute, state, length) is expected
