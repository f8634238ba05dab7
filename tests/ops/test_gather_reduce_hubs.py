"""Native gather_reduce on graphs whose hub rows are split across threads (edge-balanced work split).

The native forward cuts a row with more edges than one chunk's share (at least ``HUB_MIN_EDGES`` = 256, see
``kernels/csrc/gather_reduce.c``) into pieces reduced on different threads and combined afterwards; the SDDMM
(edge-weight gradient) is split by edges. These tests force several threads on small graphs and compare values
and gradients with the reference, including feature sizes that are not a multiple of the 64/32/8-lane tiles.
"""

from __future__ import annotations

import pytest
import torch

import graphlab.ops as ops
from graphlab.ops import _native

REDUCES = ("sum", "mean", "max", "min")
TOL = {torch.float32: dict(atol=1e-4, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-9)}
HUB_EDGES = 1500  # > 256, so the hub row is cut into pieces whatever the thread count


@pytest.fixture
def threads(monkeypatch):
    """Run the native kernels multi-threaded even on tiny inputs; yields a setter for the thread count."""
    if not _native.available():
        pytest.skip(f"native kernels unavailable: {_native.unavailable_reason()}")
    monkeypatch.setattr(_native, "_PARALLEL_MIN_WORK", 0)
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def hub_graph(num_nodes: int, hub_edges: int, other_edges: int, seed: int) -> torch.Tensor:
    """``edge_index`` where target 1 receives ``hub_edges`` edges (from every node, repeats included), the
    other targets share ``other_edges`` random edges, and target ``N-1`` receives none (an empty row)."""
    gen = torch.Generator().manual_seed(seed)
    hub_src = torch.randint(0, num_nodes, (hub_edges,), generator=gen)
    src = torch.randint(0, num_nodes, (other_edges,), generator=gen)
    dst = torch.randint(0, num_nodes - 1, (other_edges,), generator=gen)
    dst[dst == 1] = 0
    return torch.stack([torch.cat([src, hub_src]), torch.cat([dst, torch.ones(hub_edges, dtype=torch.long)])])


def run(x, rowptr, col, reduce, weight, seed=1):
    leaves = [x.clone().requires_grad_(True), weight.clone().requires_grad_(True)]
    out = ops.gather_reduce(leaves[0], rowptr, col, reduce, leaves[1])
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return (out.detach(), *torch.autograd.grad(out, leaves, upstream))


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("feat", [1, 7, 70, 130])  # F = 1; tails after 8-, 64- and two 64-lane tiles
@pytest.mark.parametrize("num_threads", [2, 3])
def test_hub_rows_split_across_threads_match_the_reference(reduce, feat, num_threads, threads):
    threads(num_threads)
    num_nodes = 23
    rowptr, col, _ = ops.to_csr(hub_graph(num_nodes, HUB_EDGES, 200, seed=feat), num_nodes)
    gen = torch.Generator().manual_seed(feat)
    x = torch.randn(num_nodes, feat, generator=gen, dtype=torch.float64)
    weight = torch.rand(col.numel(), generator=gen, dtype=torch.float64) + 0.5
    assert int((rowptr[2] - rowptr[1])) > 2 * 256  # the hub is longer than a thread's chunk and than 256 edges
    with ops.set_backend("reference"):
        expected = run(x, rowptr, col, reduce, weight)
    with ops.set_backend("cpu"):
        got = run(x, rowptr, col, reduce, weight)
        assert ops.last_path("gather_reduce.cpu_impl") == "native"
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, **TOL[torch.float64])


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_ties_across_hub_pieces_keep_the_first_edge(reduce, threads):
    """Every edge of the hub row brings the same message: the output is that message and the whole gradient
    goes to the first edge (CSR order), though the pieces that saw later edges found the same extremum."""
    threads(2)
    num_nodes, feat = 4, 5
    edge_index = torch.stack([torch.full((HUB_EDGES,), 2), torch.zeros(HUB_EDGES, dtype=torch.long)])
    rowptr, col, _ = ops.to_csr(edge_index, num_nodes)
    x = torch.randn(num_nodes, feat, dtype=torch.float64, requires_grad=True)
    weight = torch.ones(HUB_EDGES, dtype=torch.float64, requires_grad=True)
    with ops.set_backend("cpu"):
        out = ops.gather_reduce(x, rowptr, col, reduce, weight)
    out.sum().backward()
    torch.testing.assert_close(out[0], x[2].detach())
    expected_w = torch.zeros(HUB_EDGES, dtype=torch.float64)
    expected_w[0] = x[2].detach().sum()
    torch.testing.assert_close(weight.grad, expected_w)
    expected_x = torch.zeros(num_nodes, feat, dtype=torch.float64)
    expected_x[2] = 1.0
    torch.testing.assert_close(x.grad, expected_x)


@pytest.mark.parametrize("reduce", REDUCES)
def test_float32_hub_rows_match_the_reference(reduce, threads):
    threads(2)
    num_nodes, feat = 17, 96
    rowptr, col, _ = ops.to_csr(hub_graph(num_nodes, HUB_EDGES, 100, seed=3), num_nodes)
    x = torch.randn(num_nodes, feat)
    weight = torch.rand(col.numel()) + 0.5
    with ops.set_backend("reference"):
        expected = run(x, rowptr, col, reduce, weight)
    with ops.set_backend("cpu"):
        got = run(x, rowptr, col, reduce, weight)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, **TOL[torch.float32])


@pytest.mark.parametrize("reduce", REDUCES)
def test_gradcheck_float64_with_split_hub_row(reduce, threads):
    threads(2)
    num_nodes = 5
    rowptr, col, _ = ops.to_csr(hub_graph(num_nodes, 300, 12, seed=7), num_nodes)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(num_nodes, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = (torch.rand(col.numel(), generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
    with ops.set_backend("cpu"):
        assert torch.autograd.gradcheck(lambda x_, w_: ops.gather_reduce(x_, rowptr, col, reduce, w_), (x, weight))


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("feat", [1, 24, 64, 70, 120, 130])  # 16+8; 64; 64+tail 6; 64+32+16+8; 2x64+2
def test_single_thread_tiles_match_the_reference(reduce, feat, threads):
    """One thread: no hub split, so every row goes through the tile sequence 64 / 32 / 8 / tail directly."""
    threads(1)
    num_nodes = 31
    rowptr, col, _ = ops.to_csr(hub_graph(num_nodes, 40, 300, seed=feat + 1), num_nodes)
    gen = torch.Generator().manual_seed(feat)
    x = torch.randn(num_nodes, feat, generator=gen, dtype=torch.float64)
    weight = torch.rand(col.numel(), generator=gen, dtype=torch.float64) + 0.5
    with ops.set_backend("reference"):
        expected = run(x, rowptr, col, reduce, weight)
    with ops.set_backend("cpu"):
        got = run(x, rowptr, col, reduce, weight)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, **TOL[torch.float64])
