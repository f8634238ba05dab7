"""segment_reduce and segment_softmax: every path against the reference, gradcheck, properties, bad input."""

from __future__ import annotations

import pytest
import torch

import graphlab.ops as ops
from graphlab.ops import reference

REDUCES = ("sum", "mean", "max", "min")
TRITON = pytest.param("triton", marks=pytest.mark.triton)  # runs under TRITON_INTERPRET=1 (see conftest)
FAST_PATHS = ("cpu-native", "cpu-torch", TRITON)
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-9)}


def random_segments(sizes, feat, dtype, index_dtype=torch.long, seed=0):
    """Values for segments of the given sizes (zeros are empty segments); ``feat=None`` gives 1-D values."""
    gen = torch.Generator().manual_seed(seed)
    ptr = torch.zeros(len(sizes) + 1, dtype=index_dtype)
    ptr[1:] = torch.tensor(sizes).cumsum(0)
    shape = (int(ptr[-1]),) if feat is None else (int(ptr[-1]), feat)
    return torch.randn(shape, generator=gen, dtype=dtype), ptr


def value_and_grad(fn, src):
    leaf = src.clone().requires_grad_(True)
    out = fn(leaf)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(3), dtype=out.dtype)
    return out.detach(), torch.autograd.grad(out, leaf, upstream)[0]


SEGMENT_CASES = [
    ([3, 0, 4, 1, 0, 5], 3, torch.float32, torch.int64),
    ([2, 2, 0, 7], None, torch.float64, torch.int32),
    ([0, 1, 6], 5, torch.float64, torch.int64),
]


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("case", SEGMENT_CASES, ids=lambda c: f"{len(c[0])}seg-F{c[1]}-{c[2]}-{c[3]}")
@pytest.mark.parametrize("path", FAST_PATHS)
def test_segment_reduce_matches_reference(path, case, reduce, path_env):
    sizes, feat, dtype, index_dtype = case
    src, ptr = random_segments(sizes, feat, dtype, index_dtype)
    expected = value_and_grad(lambda s: reference.segment_reduce(s, ptr, reduce), src)
    with path_env(path) as name:
        got = value_and_grad(lambda s: ops.segment_reduce(s, ptr, reduce), src)
        assert ops.last_path("segment_reduce") == name
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, **TOL[dtype])


@pytest.mark.parametrize("case", SEGMENT_CASES, ids=lambda c: f"{len(c[0])}seg-F{c[1]}-{c[2]}-{c[3]}")
@pytest.mark.parametrize("path", FAST_PATHS)
def test_segment_softmax_matches_reference(path, case, path_env):
    sizes, feat, dtype, index_dtype = case
    src, ptr = random_segments(sizes, feat, dtype, index_dtype)
    expected = value_and_grad(lambda s: reference.segment_softmax(s, ptr), src)
    with path_env(path) as name:
        got = value_and_grad(lambda s: ops.segment_softmax(s, ptr), src)
        assert ops.last_path("segment_softmax") == name
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, **TOL[dtype])


@pytest.mark.parametrize("path", ("reference", *FAST_PATHS))
def test_segment_gradcheck_float64(path, path_env):
    src, ptr = random_segments([2, 0, 3, 1], 2, torch.float64)
    src.requires_grad_(True)
    with path_env(path):
        for reduce in REDUCES:
            assert torch.autograd.gradcheck(lambda s: ops.segment_reduce(s, ptr, reduce), (src,))
        assert torch.autograd.gradcheck(lambda s: ops.segment_softmax(s, ptr), (src,))


@pytest.mark.parametrize("path", ("reference", *FAST_PATHS))
def test_softmax_properties(path, path_env):
    """Each segment sums to one, large logits do not overflow, and a shift per segment changes nothing."""
    src, ptr = random_segments([4, 1, 0, 3], 2, torch.float64)
    shift = torch.tensor([1000.0, -7.0, 0.0, 3.5], dtype=torch.float64)
    shifted = src + shift.repeat_interleave(ptr.diff()).unsqueeze(1)
    with path_env(path):
        out = ops.segment_softmax(src, ptr)
        out_shifted = ops.segment_softmax(shifted, ptr)
        sums = ops.segment_reduce(out, ptr, "sum")
    torch.testing.assert_close(sums, torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0]],
                                                  dtype=torch.float64))
    torch.testing.assert_close(out_shifted, out)
    assert out[4].tolist() == [1.0, 1.0]  # a one-entry segment


@pytest.mark.parametrize("path", ("reference", *FAST_PATHS))
def test_segment_hand_example(path, path_env):
    src = torch.tensor([[1.0], [-2.0], [5.0], [4.0], [4.0]])
    ptr = torch.tensor([0, 2, 2, 5])
    expected = {"sum": [[-1.0], [0.0], [13.0]], "mean": [[-0.5], [0.0], [13.0 / 3.0]],
                "max": [[1.0], [0.0], [5.0]], "min": [[-2.0], [0.0], [4.0]]}
    with path_env(path):
        for reduce, want in expected.items():
            torch.testing.assert_close(ops.segment_reduce(src, ptr, reduce), torch.tensor(want))
        leaf = src.clone().requires_grad_(True)
        ops.segment_reduce(leaf, ptr, "min").sum().backward()
    assert leaf.grad.view(-1).tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]  # the tie 4 = 4 goes to the first entry


@pytest.mark.parametrize(
    "src, ptr, match",
    [
        (torch.randn(5, 2), torch.tensor([0, 2, 4]), "lengths mismatch"),
        (torch.randn(5, 2), torch.tensor([0, 3, 2, 5]), "not non-decreasing"),
        (torch.randn(5, 2), torch.tensor([1, 5]), r"ptr\[0\] is 1"),
        (torch.randn(5, 2), torch.tensor([0.0, 5.0]), "ptr has dtype torch.float32"),
        (torch.ones(5, dtype=torch.long), torch.tensor([0, 5]), "floating point"),
        (torch.randn(5, 2, 2), torch.tensor([0, 5]), r"\[E\] or \[E, F\]"),
    ],
)
def test_segment_bad_input(src, ptr, match):
    with pytest.raises(ValueError, match=match):
        ops.segment_reduce(src, ptr)
    with pytest.raises(ValueError, match=match):
        ops.segment_softmax(src, ptr)


def test_segment_reduce_bad_reduce():
    with pytest.raises(ValueError, match="reduce must be one of"):
        ops.segment_reduce(torch.randn(2, 1), torch.tensor([0, 2]), "prod")
