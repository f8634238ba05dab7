"""block_spmm: every path against the reference (forward and all three gradients), gradcheck, validation."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch_geometric.utils import coalesce

from graphlab.ops import _backend
from graphlab.ops.sheaf import BlockIndex, block_spmm, block_spmm_reference

TOL = {torch.float32: dict(atol=1e-5, rtol=1e-4), torch.float64: dict(atol=1e-10, rtol=1e-9)}

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: one intra-op thread, restored after


def random_graph(num_nodes: int, num_edges: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, max(num_nodes, 1), (2, num_edges), generator=gen)
    return coalesce(edge_index, num_nodes=num_nodes)


def random_inputs(num_nodes, edge_index, d, feats, full_blocks, diag_kind, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    num_edges = edge_index.size(1)
    blocks_shape = (num_edges, d, d) if full_blocks else (num_edges, d)
    blocks = torch.randn(blocks_shape, generator=gen, dtype=dtype)
    diag = {
        "none": None,
        "full": torch.randn(num_nodes, d, d, generator=gen, dtype=dtype),
        "vector": torch.randn(num_nodes, d, generator=gen, dtype=dtype),
    }[diag_kind]
    x = torch.randn(num_nodes, d, feats, generator=gen, dtype=dtype)
    return diag, blocks, x


def run_with_grads(path, diag, blocks, index, x):
    leaves = [t.detach().clone().requires_grad_(True) if t is not None else None for t in (diag, blocks, x)]
    g = torch.randn_like(x, generator=torch.Generator().manual_seed(7)) if x.numel() else torch.zeros_like(x)
    with _backend.set_backend(path):
        out = block_spmm(leaves[0], leaves[1], index, leaves[2])
    out.backward(g)
    return out.detach(), [t.grad if t is not None else None for t in leaves]


def assert_paths_match(path, num_nodes, edge_index, d, feats, full_blocks, diag_kind, dtype):
    diag, blocks, x = random_inputs(num_nodes, edge_index, d, feats, full_blocks, diag_kind, dtype)
    index = BlockIndex.from_edge_index(edge_index, num_nodes)
    out_ref, grads_ref = run_with_grads("reference", diag, blocks, index, x)
    _backend.reset_path_log()
    out, grads = run_with_grads(path, diag, blocks, index, x)
    assert _backend.last_path("block_spmm") == path
    if x.numel():
        assert _backend.last_path("block_spmm.backward") == path
    torch.testing.assert_close(out, out_ref, **TOL[dtype])
    for got, want in zip(grads, grads_ref):
        if want is None:
            assert got is None
        else:
            torch.testing.assert_close(got, want, **TOL[dtype])


GRID = [  # (num_nodes, num_edges, d, feats)
    (7, 20, 3, 5),
    (13, 40, 1, 3),
    (11, 0, 4, 6),  # no edges
    (9, 30, 5, 1),
    (6, 12, 2, 0),  # no channels
]


@pytest.mark.parametrize("num_nodes,num_edges,d,feats", GRID)
@pytest.mark.parametrize("full_blocks", [True, False])
@pytest.mark.parametrize("diag_kind", ["none", "full", "vector"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_matches_reference(num_nodes, num_edges, d, feats, full_blocks, diag_kind, dtype):
    edge_index = random_graph(num_nodes, num_edges, seed=num_nodes)
    assert_paths_match("cpu", num_nodes, edge_index, d, feats, full_blocks, diag_kind, dtype)


def test_reference_matches_dense_definition():
    num_nodes, d, feats = 6, 3, 4
    edge_index = random_graph(num_nodes, 14, seed=3)
    diag, blocks, x = random_inputs(num_nodes, edge_index, d, feats, True, "full", torch.float64)
    dense = torch.zeros(num_nodes * d, num_nodes * d, dtype=torch.float64)
    for u in range(num_nodes):
        dense[u * d:(u + 1) * d, u * d:(u + 1) * d] += diag[u]
    for e, (u, v) in enumerate(edge_index.t().tolist()):
        dense[u * d:(u + 1) * d, v * d:(v + 1) * d] += blocks[e]
    want = (dense @ x.reshape(num_nodes * d, feats)).reshape(num_nodes, d, feats)
    torch.testing.assert_close(block_spmm_reference(diag, blocks, edge_index, x), want)


@pytest.mark.parametrize("path", ["reference", "cpu"])
@pytest.mark.parametrize("full_blocks,diag_kind", [(True, "full"), (False, "vector"), (True, "vector")])
def test_gradcheck_float64(path, full_blocks, diag_kind):
    num_nodes, d, feats = 5, 2, 3
    edge_index = random_graph(num_nodes, 11, seed=1)
    diag, blocks, x = random_inputs(num_nodes, edge_index, d, feats, full_blocks, diag_kind, torch.float64)
    index = BlockIndex.from_edge_index(edge_index, num_nodes)
    inputs = [t.requires_grad_(True) for t in (diag, blocks, x)]
    with _backend.set_backend(path):
        assert torch.autograd.gradcheck(lambda dg, b, xx: block_spmm(dg, b, index, xx), inputs)


def test_accepts_edge_index_directly():
    edge_index = random_graph(8, 20, seed=2)
    diag, blocks, x = random_inputs(8, edge_index, 3, 4, True, "full", torch.float64)
    with _backend.set_backend("cpu"):
        got = block_spmm(diag, blocks, edge_index, x)
    torch.testing.assert_close(got, block_spmm_reference(diag, blocks, edge_index, x))


def test_index_caches_layouts():
    index = BlockIndex.from_edge_index(random_graph(8, 20, seed=2), 8)
    assert index.transpose() is index.transpose()
    assert index.scalar_layout(3, True) is index.scalar_layout(3, True)
    index_t, perm = index.transpose()
    torch.testing.assert_close(index_t.col, index.row[perm])
    assert bool((index_t.row[1:] >= index_t.row[:-1]).all())


def test_validation_errors():
    edge_index = random_graph(5, 10, seed=0)
    with pytest.raises(ValueError, match="sorted by \\(row, col\\)"):
        BlockIndex.from_edge_index(edge_index.flip(1), 5)
    with pytest.raises(ValueError, match="graph has 3 nodes"):
        BlockIndex.from_edge_index(edge_index, 3)
    with pytest.raises(ValueError, match="int64 tensor of shape \\[2, E\\]"):
        BlockIndex.from_edge_index(edge_index.float(), 5)
    index = BlockIndex.from_edge_index(edge_index, 5)
    x = torch.randn(5, 3, 2)
    with pytest.raises(ValueError, match="edge_blocks must be"):
        block_spmm(None, torch.randn(edge_index.size(1), 2, 2), index, x)
    with pytest.raises(ValueError, match="diag_blocks must be"):
        block_spmm(torch.randn(4, 3), torch.randn(edge_index.size(1), 3), index, x)
    with pytest.raises(ValueError, match="x must be \\[N, d, F\\]"):
        block_spmm(None, torch.randn(edge_index.size(1), 3), index, x.view(5, 6))
    with pytest.raises(ValueError, match="edge_blocks has dtype torch.int64; it must be floating point"):
        block_spmm(None, torch.ones(edge_index.size(1), 3, dtype=torch.long), index, x)


def test_blocks_of_another_float_dtype_are_cast_to_x_dtype():
    """The documented dtype rule: float64 blocks with float32 x give float32, equal to float32 blocks."""
    edge_index = random_graph(6, 14, seed=2)
    index = BlockIndex.from_edge_index(edge_index, 6)
    diag, blocks, x = random_inputs(6, edge_index, 3, 4, True, "full", torch.float64)
    want = block_spmm_reference(diag.float(), blocks.float(), edge_index, x.float())
    for path in ("reference", "cpu"):
        with _backend.set_backend(path):
            out = block_spmm(diag, blocks, index, x.float())
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, want, **TOL[torch.float32])


def _in_interpreter() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


@pytest.mark.triton
@pytest.mark.skipif(not _in_interpreter(), reason="needs TRITON_INTERPRET=1 at start-up; "
                    "test_triton_kernels_in_interpreter runs these in a subprocess that sets it")
@pytest.mark.parametrize("num_nodes,num_edges,d,feats", [(7, 18, 3, 70), (6, 0, 2, 3)])
@pytest.mark.parametrize("full_blocks,diag_kind", [(True, "full"), (False, "vector"), (True, "none"), (True, "vector")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_triton_matches_reference(num_nodes, num_edges, d, feats, full_blocks, diag_kind, dtype):
    pytest.importorskip("triton")
    edge_index = random_graph(num_nodes, num_edges, seed=num_nodes + 1)
    assert_paths_match("triton", num_nodes, edge_index, d, feats, full_blocks, diag_kind, dtype)


@pytest.mark.triton
@pytest.mark.skipif(_in_interpreter(), reason="already inside the interpreter run")
def test_triton_kernels_in_interpreter():
    """``@triton.jit`` reads TRITON_INTERPRET when it decorates, so the kernel tests run in a fresh process."""
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    cmd = [sys.executable, "-m", "pytest", __file__, "-q", "-m", "triton", "-k", "triton_matches_reference",
           "-p", "no:cacheprovider"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
