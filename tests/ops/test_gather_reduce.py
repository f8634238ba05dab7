"""gather_reduce: every path against the reference (values and gradients), gradcheck, semantics, bad input."""

from __future__ import annotations

import importlib

import pytest
import torch

import graphlab.ops as ops
from graphlab.ops import _cpu, reference

# graphlab.ops.gather_reduce is the function; the module of the same name is reached through importlib.
gather_reduce_module = importlib.import_module("graphlab.ops.gather_reduce")

REDUCES = ("sum", "mean", "max", "min")
TRITON = pytest.param("triton", marks=pytest.mark.triton)  # runs under TRITON_INTERPRET=1 (see conftest)
FAST_PATHS = ("cpu-native", "cpu-torch", TRITON)
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-9)}
# (num_nodes, num_edges, F, dtype, index dtype, weighted): F = 1 and non-powers of two, both dtypes and indices.
CASES = [
    (9, 30, 1, torch.float32, torch.int64, True),
    (10, 28, 7, torch.float64, torch.int32, False),
    (8, 24, 33, torch.float32, torch.int32, True),
]


def random_inputs(make_graph, num_nodes, num_edges, feat, dtype, index_dtype, weighted, seed=0):
    edge_index = make_graph(num_nodes, num_edges, seed, index_dtype)
    rowptr, col, _ = ops.to_csr(edge_index, num_nodes)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, feat, generator=gen, dtype=dtype)
    weight = torch.rand(num_edges, generator=gen, dtype=dtype) + 0.5 if weighted else None
    return x, rowptr, col, weight


def run(x, rowptr, col, reduce, weight, grad_out_seed=1):
    """Output and gradients w.r.t. x (and weight) for a fixed random upstream gradient."""
    leaves = [x.clone().requires_grad_(True), None if weight is None else weight.clone().requires_grad_(True)]
    out = ops.gather_reduce(leaves[0], rowptr, col, reduce, leaves[1])
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_out_seed), dtype=out.dtype)
    grads = torch.autograd.grad(out, [t for t in leaves if t is not None], upstream)
    return out.detach(), grads


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"F{c[2]}-{c[3]}-{c[4]}-w{int(c[5])}")
@pytest.mark.parametrize("path", FAST_PATHS)
def test_fast_path_matches_reference(path, case, reduce, make_graph, path_env):
    num_nodes, num_edges, feat, dtype, index_dtype, weighted = case
    x, rowptr, col, weight = random_inputs(make_graph, num_nodes, num_edges, feat, dtype, index_dtype, weighted)
    with ops.set_backend("reference"):
        expected, expected_grads = run(x, rowptr, col, reduce, weight)
    with path_env(path) as name:
        out, grads = run(x, rowptr, col, reduce, weight)
        assert ops.last_path("gather_reduce") == name
    if path.startswith("cpu"):
        assert ops.last_path(_cpu.IMPL_LOG) == path.removeprefix("cpu-")
    torch.testing.assert_close(out, expected, **TOL[dtype])
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, **TOL[dtype])


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("path", ("reference", *FAST_PATHS))
def test_gradcheck_float64(path, reduce, make_graph, path_env):
    small = path == "triton"  # the interpreter is slow: a smaller graph and gradcheck's fast mode
    x, rowptr, col, weight = random_inputs(
        make_graph, 6 if small else 9, 12 if small else 26, 2 if small else 3, torch.float64, torch.int64, True
    )
    with path_env(path) as name:
        fn = lambda x_, w_: ops.gather_reduce(x_, rowptr, col, reduce, w_)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x.requires_grad_(), weight.requires_grad_()), fast_mode=small)
        assert ops.last_path("gather_reduce") == name


@pytest.mark.parametrize("path", ("reference", *FAST_PATHS))
def test_hand_computed_example(path, path_env):
    # Targets: row 0 <- {x1 * 2, x2 * 1}; row 1 <- nothing; row 2 <- {x0 * 1, x0 * 3 (duplicate), x2 * -1}.
    rowptr = torch.tensor([0, 2, 2, 5])
    col = torch.tensor([1, 2, 0, 0, 2])
    weight = torch.tensor([2.0, 1.0, 1.0, 3.0, -1.0])
    x = torch.tensor([[1.0, -2.0], [0.5, 4.0], [3.0, 1.0]])
    expected = {
        "sum": [[4.0, 9.0], [0.0, 0.0], [1.0, -9.0]],
        "mean": [[2.0, 4.5], [0.0, 0.0], [1.0 / 3.0, -3.0]],
        "max": [[3.0, 8.0], [0.0, 0.0], [3.0, -1.0]],
        "min": [[1.0, 1.0], [0.0, 0.0], [-3.0, -6.0]],
    }
    with path_env(path):
        for reduce, want in expected.items():
            torch.testing.assert_close(ops.gather_reduce(x, rowptr, col, reduce, weight), torch.tensor(want))


@pytest.mark.parametrize("reduce", ("max", "min"))
@pytest.mark.parametrize("path", ("reference", *FAST_PATHS))
def test_ties_route_the_gradient_to_the_first_arg_edge(path, reduce, path_env):
    # One row with three edges whose messages tie (duplicate edge 0, and source 1 with the same value).
    rowptr = torch.tensor([0, 3])
    col = torch.tensor([0, 1, 0])
    x = torch.tensor([[2.0], [2.0]], requires_grad=True)
    weight = torch.ones(3, requires_grad=True)
    with path_env(path):
        out = ops.gather_reduce(x, rowptr, col, reduce, weight)
        out.backward(torch.tensor([[5.0]]))
    assert out.item() == 2.0
    assert x.grad.tolist() == [[5.0], [0.0]]
    assert weight.grad.tolist() == [10.0, 0.0, 0.0]


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("path", ("reference", *FAST_PATHS))
def test_graph_without_edges_gives_zeros(path, reduce, path_env):
    rowptr = torch.zeros(4, dtype=torch.long)
    col = torch.zeros(0, dtype=torch.long)
    x = torch.randn(3, 5, requires_grad=True)
    weight = torch.zeros(0, requires_grad=True)
    with path_env(path):
        out = ops.gather_reduce(x, rowptr, col, reduce, weight)
        out.sum().backward()
    assert torch.equal(out, torch.zeros(3, 5)) and torch.equal(x.grad, torch.zeros(3, 5))
    assert weight.grad.shape == (0,)


@pytest.mark.parametrize("path", ("cpu-native", TRITON))
def test_wide_features_span_several_tiles(path, make_graph, path_env, monkeypatch):
    x, rowptr, col, weight = random_inputs(make_graph, 7, 20, 21, torch.float64, torch.int64, True)
    if path == "triton":
        with path_env(path):
            from graphlab.kernels import gather_reduce as kernel

            monkeypatch.setattr(kernel, "MAX_BLOCK_F", 8)  # 21 features -> three tiles, the last one masked
    for reduce in ("sum", "max"):
        with ops.set_backend("reference"):
            expected, expected_grads = run(x, rowptr, col, reduce, weight)
        with path_env(path):
            out, grads = run(x, rowptr, col, reduce, weight)
        torch.testing.assert_close(out, expected, **TOL[torch.float64])
        for got, want in zip(grads, expected_grads):
            torch.testing.assert_close(got, want, **TOL[torch.float64])


def test_native_kernels_split_work_across_threads(make_graph, monkeypatch):
    """Force the multi-threaded branch on a small graph: the split must not change the result."""
    from graphlab.ops import _native

    if not _native.available():
        pytest.skip(f"native kernels unavailable: {_native.unavailable_reason()}")
    monkeypatch.setattr(_native, "_PARALLEL_MIN_WORK", 0)
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        x, rowptr, col, weight = random_inputs(make_graph, 11, 40, 5, torch.float64, torch.int64, True)
        for reduce in REDUCES:
            with ops.set_backend("reference"):
                expected, expected_grads = run(x, rowptr, col, reduce, weight)
            with ops.set_backend("cpu"):
                out, grads = run(x, rowptr, col, reduce, weight)
            torch.testing.assert_close(out, expected, **TOL[torch.float64])
            for got, want in zip(grads, expected_grads):
                torch.testing.assert_close(got, want, **TOL[torch.float64])
    finally:
        torch.set_num_threads(threads)


def test_auto_picks_cpu_for_cpu_tensors(make_graph):
    x, rowptr, col, _ = random_inputs(make_graph, 6, 10, 2, torch.float32, torch.int64, False)
    ops.gather_reduce(x, rowptr, col)
    assert ops.last_path("gather_reduce") == "cpu" and ops.path_count("gather_reduce", "cpu") == 1


def test_no_grad_max_skips_the_arg_and_still_matches(make_graph):
    x, rowptr, col, weight = random_inputs(make_graph, 9, 30, 4, torch.float32, torch.int64, True)
    with torch.no_grad():
        out = ops.gather_reduce(x, rowptr, col, "max", weight)
    torch.testing.assert_close(out, reference.gather_reduce(x, rowptr, col, "max", weight))


# --------------------------------------------------------------------------------------------- bad input

GOOD_ROWPTR = torch.tensor([0, 1, 3])
GOOD_COL = torch.tensor([1, 0, 2])
GOOD_X = torch.randn(3, 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(col=torch.tensor([1, 0, 3])), "col has max 3 but the input has 3 rows"),
        (dict(col=torch.tensor([1, -1, 2])), "negative"),
        (dict(rowptr=torch.tensor([0, 2, 1, 3])), "not non-decreasing"),
        (dict(rowptr=torch.tensor([0, 1, 2])), "rowptr and col lengths mismatch"),
        (dict(rowptr=torch.tensor([1, 1, 3])), r"rowptr\[0\] is 1"),
        (dict(rowptr=torch.tensor([], dtype=torch.long)), "empty"),
        (dict(col=torch.tensor([1.0, 0.0, 2.0])), "col has dtype torch.float32"),
        (dict(rowptr=torch.tensor([0.0, 1.0, 3.0])), "rowptr has dtype torch.float32"),
        (dict(x=torch.randn(3)), r"2-dimensional \[N, F\]"),
        (dict(x=torch.ones(3, 4, dtype=torch.long)), "floating point"),
        (dict(edge_weight=torch.ones(2)), "one weight per edge"),
        (dict(edge_weight=torch.ones(3, dtype=torch.long)), "edge_weight has dtype torch.int64; it must be floating"),
        (dict(reduce="avg"), "reduce must be one of"),
        (dict(x=[[1.0]]), "x must be a torch.Tensor"),
    ],
)
def test_bad_input_raises_value_error(kwargs, match):
    args = dict(x=GOOD_X, rowptr=GOOD_ROWPTR, col=GOOD_COL, reduce="sum", edge_weight=None) | kwargs
    with pytest.raises(ValueError, match=match):
        ops.gather_reduce(**args)


def test_validation_can_be_switched_off(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("check_csr must not run")

    monkeypatch.setattr(gather_reduce_module, "check_csr", fail)
    expected = reference.gather_reduce(GOOD_X, GOOD_ROWPTR, GOOD_COL, "sum")
    torch.testing.assert_close(ops.gather_reduce(GOOD_X, GOOD_ROWPTR, GOOD_COL, validate=False), expected)
    with ops.set_validation(False):
        torch.testing.assert_close(ops.gather_reduce(GOOD_X, GOOD_ROWPTR, GOOD_COL), expected)
    with pytest.raises(AssertionError, match="must not run"):
        ops.gather_reduce(GOOD_X, GOOD_ROWPTR, GOOD_COL)


def test_cpu_path_refuses_non_cpu_tensors():
    meta = torch.empty(3, 4, device="meta")
    with ops.set_backend("cpu"), pytest.raises(RuntimeError, match="needs CPU tensors"):
        gather_reduce_module.gather_reduce(meta, GOOD_ROWPTR.to("meta"), GOOD_COL.to("meta"), validate=False)


def test_x_and_index_on_different_devices_is_refused_even_without_validation():
    meta = torch.empty(3, 4, device="meta")
    with pytest.raises(ValueError, match="x is on meta but rowptr is on cpu"):
        gather_reduce_module.gather_reduce(meta, GOOD_ROWPTR, GOOD_COL, validate=False)


def test_native_kernels_build_where_a_compiler_exists():
    """A broken C source must fail loudly, not silently skip every native test."""
    import shutil

    from graphlab.ops import _native

    if not _native.enabled():
        pytest.skip("native kernels disabled by GRAPHLAB_NATIVE=0")
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.skip("no C compiler")
    assert _native.available(), _native.unavailable_reason()


def test_validation_is_remembered_per_graph_but_not_across_in_place_edits():
    rowptr, col, x = GOOD_ROWPTR.clone(), GOOD_COL.clone(), GOOD_X
    ops.gather_reduce(x, rowptr, col)  # validated and remembered
    col[0] = 3  # out of range, written in place: the version counter changes
    with pytest.raises(ValueError, match="col has max 3"):
        ops.gather_reduce(x, rowptr, col)
    with pytest.raises(ValueError, match="input has 2 rows"):
        ops.gather_reduce(x[:2], GOOD_ROWPTR, GOOD_COL)  # same pair, fewer source rows: checked again


@pytest.mark.parametrize("path", ("reference", *FAST_PATHS))
def test_mixed_index_dtypes(path, make_graph, path_env):
    """int64 rowptr with int32 col (e.g. pointers from a large graph, columns compressed) on every path."""
    x, rowptr, col, weight = random_inputs(make_graph, 8, 22, 3, torch.float64, torch.int32, True)
    rowptr = rowptr.long()
    for reduce in ("sum", "max"):
        with ops.set_backend("reference"):
            expected, expected_grads = run(x, rowptr, col.long(), reduce, weight)
        with path_env(path):
            out, grads = run(x, rowptr, col, reduce, weight)
        torch.testing.assert_close(out, expected, **TOL[torch.float64])
        for got, want in zip(grads, expected_grads):
            torch.testing.assert_close(got, want, **TOL[torch.float64])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_uses_the_torch_cpu_implementation(dtype, make_graph):
    x, rowptr, col, _ = random_inputs(make_graph, 9, 30, 4, torch.float32, torch.int64, False)
    for reduce in REDUCES:
        out = ops.gather_reduce(x.to(dtype), rowptr, col, reduce)
        assert out.dtype == dtype and ops.last_path(_cpu.IMPL_LOG) == "torch"
        torch.testing.assert_close(out.float(), reference.gather_reduce(x, rowptr, col, reduce), atol=3e-2, rtol=2e-2)
