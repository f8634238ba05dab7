"""Every public op of graphlab.ops under mixed dtypes, awkward memory layouts and both index widths.

Each case either matches the op's definition (computed in float64 by :mod:`graphlab.ops.reference` from the same
values, after the documented dtype rule: weights / blocks of another floating dtype are cast to ``x``'s dtype)
within a per-dtype tolerance, values and gradients, or raises a clear error. Paths: the reference, the native CPU
kernels and the torch-only CPU fallback (``_native.use_native(False)``).

Also: every reduction at and across the torch CPU path's edge chunk (:data:`graphlab.ops._cpu.EDGE_CHUNK`).
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch_geometric.utils import coalesce

import graphlab.ops as ops
from graphlab.ops import _cpu, reference
from graphlab.ops.sheaf import BlockIndex, block_spmm_reference

PATHS = ("reference", "cpu-native", "cpu-torch")
REDUCES = ("sum", "mean", "max", "min")
X_DTYPES = (torch.float32, torch.float64, torch.bfloat16)
W_DTYPES = (None, torch.float16, torch.float32, torch.float64)
INDEX_DTYPES = (torch.int32, torch.int64)
LAYOUTS = ("contiguous", "transposed", "sliced", "expanded")
TOL = {
    torch.float64: dict(atol=1e-10, rtol=1e-9),
    torch.float32: dict(atol=1e-5, rtol=1e-4),
    torch.float16: dict(atol=1e-2, rtol=1e-2),
    torch.bfloat16: dict(atol=1e-1, rtol=5e-2),
}
_PRECISION = [torch.float64, torch.float32, torch.float16, torch.bfloat16]  # most to least precise


def tolerance(*dtypes: torch.dtype | None) -> dict:
    """The tolerance of the least precise dtype involved."""
    return TOL[max((d for d in dtypes if d is not None), key=_PRECISION.index)]


def name(value: object) -> str:
    return str(value).removeprefix("torch.")


def with_layout(t: Tensor, layout: str) -> Tensor:
    """A tensor of ``t``'s shape in another memory layout (``expanded`` repeats the first row: values change)."""
    if layout == "contiguous":
        return t.clone()
    if layout == "transposed":  # column-major storage of a 2-D tensor; a stride-2 view for 1-D
        return t.t().contiguous().t() if t.dim() == 2 else torch.stack([t, t], 1)[:, 0]
    if layout == "sliced":  # every other column of a wider tensor
        wide = torch.stack([t, torch.zeros_like(t)], -1)
        return wide[..., 0]
    if layout == "expanded":  # stride 0 along the first dimension
        return t[:1].expand_as(t)
    raise ValueError(layout)


def grads_of(out: Tensor, inputs: list[Tensor], seed: int = 3) -> list[Tensor]:
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return list(torch.autograd.grad(out, inputs, upstream.to(out.dtype)))


def leaf(t: Tensor | None, layout: str) -> tuple[Tensor | None, Tensor | None]:
    """``(view, base)``: ``base`` a leaf requiring grad, ``view`` the op's input in ``layout``."""
    if t is None:
        return None, None
    base = t.detach().clone().requires_grad_(True)
    return with_layout(base, layout), base


# --------------------------------------------------------------------------------------------- gather_reduce


def _graph(make_graph, index_dtype: torch.dtype, num_nodes: int = 9, num_edges: int = 31):
    edge_index = make_graph(num_nodes, num_edges, 4)
    rowptr, col, _ = ops.to_csr(edge_index, num_nodes)
    return rowptr.to(index_dtype), col.to(index_dtype)


def _check_gather_reduce(path_env, path, x, weight, rowptr, col, reduce, layout):
    x_in, _ = leaf(x, layout)
    w_in, _ = leaf(weight, layout)
    with path_env(path) as expected_path:
        out = ops.gather_reduce(x_in, rowptr, col, reduce, w_in)
        assert ops.last_path("gather_reduce") == expected_path
    assert out.dtype == x.dtype
    # the definition, in float64, of the same values after the dtype rule (weights cast to x's dtype)
    x64 = x_in.detach().double().requires_grad_(True)
    w64 = None if w_in is None else w_in.detach().to(x.dtype).double().requires_grad_(True)
    want = reference.gather_reduce(x64, rowptr.long(), col.long(), reduce, w64)
    torch.testing.assert_close(out.double(), want, **tolerance(x.dtype))
    if x.dtype == torch.bfloat16 and reduce in ("max", "min"):
        return  # bf16 rounding can tie messages that float64 tells apart: the arg edge may differ, values agree
    inputs = [t for t in (x_in, w_in) if t is not None]
    got = grads_of(out, inputs)
    expected = grads_of(want, [t for t in (x64, w64) if t is not None])
    for g, e, t in zip(got, expected, inputs):
        assert g.dtype == t.dtype  # the weight's gradient comes back in the weight's own dtype
        torch.testing.assert_close(g.double(), e, **tolerance(x.dtype, t.dtype))


@pytest.mark.parametrize("index_dtype", INDEX_DTYPES, ids=name)
@pytest.mark.parametrize("w_dtype", W_DTYPES, ids=name)
@pytest.mark.parametrize("x_dtype", X_DTYPES, ids=name)
@pytest.mark.parametrize("path", PATHS)
def test_gather_reduce_matrix(path, x_dtype, w_dtype, index_dtype, make_graph, path_env):
    rowptr, col = _graph(make_graph, index_dtype)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(9, 5, generator=gen).to(x_dtype)
    weight = None if w_dtype is None else (torch.rand(col.numel(), generator=gen) + 0.5).to(w_dtype)
    for reduce in REDUCES:
        for layout in LAYOUTS:
            _check_gather_reduce(path_env, path, x, weight, rowptr, col, reduce, layout)
    if path == "cpu-native" and x_dtype == torch.bfloat16:
        assert ops.last_path(_cpu.IMPL_LOG) == "torch"  # half precision runs on the torch ops


def test_gather_reduce_mixed_dtypes_fixed_the_fused_gcn_garbage(make_graph):
    """The bug of issue 11: float64 weights with float32 features through validate=False gave ~3e38."""
    rowptr, col = _graph(make_graph, torch.int64)
    x = torch.randn(9, 4)
    weight = torch.rand(col.numel(), dtype=torch.float64)
    with ops.set_backend("cpu"):
        out = ops.gather_reduce(x, rowptr, col, "sum", weight, validate=False)
    torch.testing.assert_close(out, reference.gather_reduce(x, rowptr, col, "sum", weight.float()))


GR_ROWPTR, GR_COL, GR_X = torch.tensor([0, 1, 3]), torch.tensor([1, 0, 2]), torch.randn(3, 4)


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x=torch.ones(3, 4, dtype=torch.long)), "x has dtype torch.int64; it must be floating point"),
        (dict(x=torch.ones(3, 4, dtype=torch.complex64)), "x has dtype torch.complex64; it must be floating"),
        (dict(edge_weight=torch.ones(3, dtype=torch.int32)), "edge_weight has dtype torch.int32; it must be floating"),
        (dict(edge_weight=torch.ones(3, 1)), r"edge_weight has shape \(3, 1\).*one weight per edge"),
        (dict(col=GR_COL.to(torch.int16)), "col has dtype torch.int16 but an index must be torch.int64 or torch.int32"),
        (dict(rowptr=GR_ROWPTR.float()), "rowptr has dtype torch.float32 but an index must be"),
        (dict(x=torch.empty(3, 4, device="meta")), "x is on meta but rowptr is on cpu"),
        (dict(edge_weight=torch.ones(3, device="meta")), "edge_weight is on meta but the index is on cpu"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_gather_reduce_bad_dtype_or_device_raises_even_without_validation(kwargs, match, path, validate, path_env):
    args = dict(x=GR_X, rowptr=GR_ROWPTR, col=GR_COL, reduce="sum", edge_weight=None) | kwargs
    with path_env(path), pytest.raises(ValueError, match=match):
        ops.gather_reduce(**args, validate=validate)


# --------------------------------------------------------------------------------------------- segment ops


def _segments(index_dtype: torch.dtype) -> Tensor:
    return torch.tensor([0, 3, 3, 4, 9, 12], dtype=index_dtype)  # an empty segment, a single entry


@pytest.mark.parametrize("index_dtype", INDEX_DTYPES, ids=name)
@pytest.mark.parametrize("x_dtype", X_DTYPES, ids=name)
@pytest.mark.parametrize("path", PATHS)
def test_segment_ops_matrix(path, x_dtype, index_dtype, path_env):
    ptr = _segments(index_dtype)
    src = torch.randn(12, 3, generator=torch.Generator().manual_seed(1)).to(x_dtype)
    for layout in LAYOUTS:
        for one_dim in (False, True):
            base = src[:, 0] if one_dim else src
            for reduce in (*REDUCES, "softmax"):
                x_in, _ = leaf(base, layout)
                with path_env(path):
                    if reduce == "softmax":
                        out = ops.segment_softmax(x_in, ptr)
                    else:
                        out = ops.segment_reduce(x_in, ptr, reduce)
                assert out.dtype == x_dtype
                x64 = x_in.detach().double().requires_grad_(True)
                if reduce == "softmax":
                    want = reference.segment_softmax(x64, ptr.long())
                else:
                    want = reference.segment_reduce(x64, ptr.long(), reduce)
                torch.testing.assert_close(out.double(), want, **tolerance(x_dtype))
                if x_dtype == torch.bfloat16 and reduce in ("max", "min"):
                    continue  # ties after rounding (see the gather_reduce matrix)
                torch.testing.assert_close(
                    grads_of(out, [x_in])[0].double(), grads_of(want, [x64])[0], **tolerance(x_dtype)
                )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(src=torch.ones(12, 2, dtype=torch.long)), "src has dtype torch.int64; it must be floating point"),
        (dict(ptr=_segments(torch.int64).float()), "ptr has dtype torch.float32 but an index must be"),
        (dict(ptr=_segments(torch.int64).to(torch.int16)), "ptr has dtype torch.int16"),
        (dict(src=torch.randn(12, 2, 2)), r"src must be \[E\] or \[E, F\]"),
        (dict(ptr=torch.tensor([], dtype=torch.long)), "ptr must have num_segments"),
        (dict(src=torch.randn(12, 2, device="meta")), "ptr is on cpu but src is on meta"),
    ],
)
@pytest.mark.parametrize("validate", [True, False])
def test_segment_ops_bad_input(kwargs, match, path, validate, path_env):
    """Type, dtype, shape and device errors, with or without validation."""
    args = dict(src=torch.randn(12, 2), ptr=_segments(torch.int64)) | kwargs
    with path_env(path):
        with pytest.raises(ValueError, match=match):
            ops.segment_reduce(args["src"], args["ptr"], "sum", validate=validate)
        with pytest.raises(ValueError, match=match):
            ops.segment_softmax(args["src"], args["ptr"], validate=validate)


@pytest.mark.parametrize("path", PATHS)
def test_segment_ops_bad_pointer_values(path, path_env):
    with path_env(path), pytest.raises(ValueError, match=r"ptr\[-1\] is 5 but src has 12 entries"):
        ops.segment_reduce(torch.randn(12, 2), torch.tensor([0, 5]))


# --------------------------------------------------------------------------------------------- block_spmm


def _blocks(x_dtype, b_dtype, full, diag_kind, layout, d=3, feats=4, num_nodes=7):
    edge_index = torch.randint(0, num_nodes, (2, 18), generator=torch.Generator().manual_seed(5))
    edge_index = coalesce(edge_index, num_nodes=num_nodes)
    gen = torch.Generator().manual_seed(6)
    num_edges = edge_index.size(1)
    blocks = torch.randn((num_edges, d, d) if full else (num_edges, d), generator=gen).to(b_dtype)
    diag = {"none": None, "full": torch.randn(num_nodes, d, d, generator=gen),
            "vector": torch.randn(num_nodes, d, generator=gen)}[diag_kind]
    diag = None if diag is None else diag.to(b_dtype)
    x = torch.randn(num_nodes, d, feats, generator=gen).to(x_dtype)
    views = [leaf(t, layout)[0] for t in (diag, blocks, x)]
    return edge_index, BlockIndex.from_edge_index(edge_index, num_nodes), views


@pytest.mark.parametrize("b_dtype", (torch.float16, torch.float32, torch.float64), ids=name)
@pytest.mark.parametrize("x_dtype", X_DTYPES, ids=name)
@pytest.mark.parametrize("path", ("reference", "cpu"))
def test_block_spmm_matrix(path, x_dtype, b_dtype):
    for full in (True, False):
        for diag_kind in ("none", "vector", "full"):
            for layout in LAYOUTS:
                edge_index, index, (diag, blocks, x) = _blocks(x_dtype, b_dtype, full, diag_kind, layout)
                with ops.set_backend(path):
                    out = ops.block_spmm(diag, blocks, index, x)
                assert out.dtype == x_dtype and ops.last_path("block_spmm") == path
                leaves64 = [None if t is None else t.detach().to(x_dtype).double().requires_grad_(True)
                            for t in (diag, blocks, x)]
                want = block_spmm_reference(leaves64[0], leaves64[1], edge_index, leaves64[2])
                torch.testing.assert_close(out.double(), want, **tolerance(x_dtype))
                inputs = [t for t in (diag, blocks, x) if t is not None]
                got = grads_of(out, inputs)
                expected = grads_of(want, [t for t in leaves64 if t is not None])
                for g, e, t in zip(got, expected, inputs):
                    assert g.dtype == t.dtype
                    torch.testing.assert_close(g.double(), e, **tolerance(x_dtype, t.dtype))


@pytest.mark.parametrize("path", ("reference", "cpu"))
def test_block_spmm_bad_input(path):
    edge_index, index, (diag, blocks, x) = _blocks(torch.float32, torch.float32, True, "full", "contiguous")
    with ops.set_backend(path):
        with pytest.raises(ValueError, match="edge_blocks has dtype torch.int64; it must be floating point"):
            ops.block_spmm(diag, blocks.long(), index, x)
        with pytest.raises(ValueError, match="x has dtype torch.int32; it must be floating point"):
            ops.block_spmm(diag, blocks, index, x.int())
        with pytest.raises(ValueError, match="diag_blocks is on meta but x is on cpu"):
            ops.block_spmm(diag.to("meta"), blocks, index, x)
        with ops.set_validation(False), pytest.raises(ValueError, match="edge_blocks has dtype torch.int64"):
            ops.block_spmm(diag, blocks.long(), index, x)
    with pytest.raises(ValueError, match=r"edge_index must be an int64 tensor of shape \[2, E\]"):
        BlockIndex.from_edge_index(edge_index.int(), 7)


# --------------------------------------------------------------------------------------------- edge chunk


@pytest.mark.parametrize("offset", [(1, -1), (1, 0), (1, 1), (2, 3)], ids=lambda o: f"{o[0]}chunk{o[1]:+d}")
@pytest.mark.parametrize("path", ("cpu-native", "cpu-torch"))
def test_every_reduce_at_and_across_the_edge_chunk(path, offset, path_env):
    """E = chunk - 1, chunk, chunk + 1, 2 chunk + 3 with F = 3: the chunked SDDMM / arg passes of the torch path
    (and the native kernels) against the reference, forward and backward, weighted."""
    num_edges = offset[0] * _cpu.EDGE_CHUNK + offset[1]
    num_nodes = 2000
    gen = torch.Generator().manual_seed(num_edges)
    edge_index = torch.randint(0, num_nodes - 1, (2, num_edges), generator=gen)  # node N-1 has no edges
    rowptr, col, perm = ops.to_csr(edge_index, num_nodes)
    x = torch.randn(num_nodes, 3, generator=gen, dtype=torch.float64)
    weight = torch.rand(num_edges, generator=gen, dtype=torch.float64) + 0.5
    for reduce in REDUCES:
        leaves = [x.clone().requires_grad_(True), weight.clone().requires_grad_(True)]
        with path_env(path):
            out = ops.gather_reduce(leaves[0], rowptr, col, reduce, leaves[1])
        assert ops.last_path(_cpu.IMPL_LOG) == path.removeprefix("cpu-")
        ref_leaves = [x.clone().requires_grad_(True), weight.clone().requires_grad_(True)]
        want = reference.gather_reduce(ref_leaves[0], rowptr, col, reduce, ref_leaves[1])
        torch.testing.assert_close(out, want, **TOL[torch.float64])
        for got, expected in zip(grads_of(out, leaves), grads_of(want, ref_leaves)):
            torch.testing.assert_close(got, expected, **TOL[torch.float64])
