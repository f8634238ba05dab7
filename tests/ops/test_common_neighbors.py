"""graphlab.ops.neighbor_sets / common_neighbors / sorted_csr against the dense-mask reference.

Every path (reference, native C kernel, torch fallback, Triton under TRITON_INTERPRET=1) is compared with the
``B x N`` boolean masks of :func:`graphlab.ops.reference.neighbor_set_masks`, which are built from a dense
adjacency filled straight from ``edge_index`` (not from the CSR under test).
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

import graphlab.ops as ops
from graphlab.ops import _native, reference
from graphlab.ops.common_neighbors import CPU_IMPL_LOG, subsample

TRITON_PATH = pytest.param("triton", marks=pytest.mark.triton)  # runs under TRITON_INTERPRET=1 (see conftest)

PATHS = ("reference", "cpu-native", "cpu-torch", TRITON_PATH)
ALL_SETS = ("cn", "src_only", "dst_only")
INDEX_DTYPES = (torch.int32, torch.int64)


def undirected_awkward(make_graph, num_nodes: int, num_edges: int, seed: int) -> Tensor:
    """Self loops, duplicate edges, an isolated node (``N - 1``), both directions of every edge."""
    edge_index = make_graph(num_nodes, num_edges, seed)
    return torch.cat([edge_index, edge_index.flip(0)], 1)


def dense_from_edge_index(edge_index: Tensor, num_nodes: int) -> Tensor:
    """``A[i, w] = True`` iff some edge ``w -> i`` (rows = targets, as the CSR): independent of sorted_csr."""
    adj = torch.zeros(num_nodes, num_nodes, dtype=torch.bool)
    adj[edge_index[1].long(), edge_index[0].long()] = True
    return adj


def targets(num_nodes: int, num_pairs: int, seed: int) -> tuple[Tensor, Tensor]:
    """Random pairs plus the awkward ones: i = j, an isolated target, a self-loop node."""
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_nodes, (num_pairs,), generator=gen)
    dst = torch.randint(0, num_nodes, (num_pairs,), generator=gen)
    src[:4] = torch.tensor([3, num_nodes - 1, 0, num_nodes - 1])
    dst[:4] = torch.tensor([3, 2, 0, num_nodes - 1])  # i = j, isolated src, self loop i = j, isolated i = j
    return src, dst


def to_dense(sets: ops.PairSets, num_nodes: int) -> Tensor:
    """Dense mask of a PairSets, after checking its CSR structure (ascending, no duplicates, ptr consistent)."""
    ptr, index = sets.ptr, sets.index.long()
    assert ptr.dtype == torch.long and int(ptr[0]) == 0 and int(ptr[-1]) == index.numel()
    pair = torch.repeat_interleave(torch.arange(ptr.numel() - 1), ptr.diff())
    same_pair = pair[1:] == pair[:-1]
    assert bool((index[1:][same_pair] > index[:-1][same_pair]).all()), "index not ascending within a pair"
    dense = torch.zeros(ptr.numel() - 1, num_nodes, dtype=torch.bool)
    dense[pair, index] = True
    return dense


def expected_masks(adj: Tensor, src: Tensor, dst: Tensor) -> dict[str, Tensor]:
    a, b = adj[src.long()], adj[dst.long()]
    return {"cn": a & b, "src_only": a & ~b, "dst_only": b & ~a}


# --------------------------------------------------------------------------------------------- sorted_csr


def test_sorted_csr_sorts_dedups_and_caches(make_graph):
    edge_index = make_graph(12, 60, 1)
    rowptr, col, perm = ops.sorted_csr(edge_index, 12)
    assert ops.sorted_csr(edge_index, 12).col is col  # cached per tensor
    row = reference.csr_row_index(rowptr)
    keys = row * 12 + col
    assert bool((keys[1:] > keys[:-1]).all())  # sorted within rows, no duplicates
    expected = torch.unique(edge_index[1] * 12 + edge_index[0])
    torch.testing.assert_close(keys, expected)
    torch.testing.assert_close(col, edge_index[0][perm])
    torch.testing.assert_close(row, edge_index[1][perm])


# --------------------------------------------------------------------------------------------- exact sets


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES, ids=str)
def test_neighbor_sets_match_dense_masks(path, index_dtype, make_graph, path_env):
    num_nodes = 17
    edge_index = undirected_awkward(make_graph, num_nodes, 40, seed=2)
    rowptr, col, _ = ops.sorted_csr(edge_index, num_nodes)
    src, dst = targets(num_nodes, 23, seed=5)
    rowptr, col, src, dst = (t.to(index_dtype) for t in (rowptr, col, src, dst))
    want = expected_masks(dense_from_edge_index(edge_index, num_nodes), src, dst)
    with path_env(path) as expected_path:
        got = ops.neighbor_sets(rowptr, col, src, dst, sets=ALL_SETS)
    assert ops.last_path("neighbor_sets") == expected_path
    if path.startswith("cpu-"):
        assert ops.last_path(CPU_IMPL_LOG) == path.removeprefix("cpu-")
    for name in ALL_SETS:
        assert got[name].weight is None
        assert got[name].index.dtype == index_dtype
        torch.testing.assert_close(to_dense(got[name], num_nodes), want[name], msg=name)


@pytest.mark.parametrize("path", PATHS)
def test_mixed_index_widths_and_a_graph_without_common_neighbours(path, path_env):
    # a star's leaves share only the centre; a matching has no common neighbours at all
    num_nodes = 9
    matching = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    rowptr, col, _ = ops.sorted_csr(matching, num_nodes)
    src, dst = torch.tensor([0, 2, 1, 8], dtype=torch.int32), torch.tensor([2, 0, 3, 8])
    with path_env(path):
        got = ops.neighbor_sets(rowptr.int(), col, src, dst, sets=ALL_SETS)
        counts = ops.common_neighbors(rowptr.int(), col, src, dst)
    assert got["cn"].index.numel() == 0
    torch.testing.assert_close(counts, torch.zeros(4))
    torch.testing.assert_close(got["src_only"].index, torch.tensor([1, 3, 0]))
    torch.testing.assert_close(got["dst_only"].index, torch.tensor([3, 1, 2]))


@pytest.mark.parametrize("path", PATHS)
def test_empty_batch_gives_empty_results(path, make_graph, path_env):
    rowptr, col, _ = ops.sorted_csr(undirected_awkward(make_graph, 8, 20, 0), 8)
    empty = torch.empty(0, dtype=torch.long)
    x = torch.randn(8, 5)
    with path_env(path):
        got = ops.neighbor_sets(rowptr, col, empty, empty, sets=ALL_SETS)
        z = ops.common_neighbors(rowptr, col, empty, empty, x)
        n = ops.common_neighbors(rowptr, col, empty, empty)
    for sets in got.values():
        assert sets.ptr.tolist() == [0] and sets.index.numel() == 0
    assert z.shape == (0, 5) and n.shape == (0,)


# --------------------------------------------------------------------------------------------- reductions


@pytest.mark.parametrize("path", PATHS)
def test_common_neighbors_values_and_gradients(path, make_graph, path_env):
    num_nodes = 15
    edge_index = undirected_awkward(make_graph, num_nodes, 35, seed=7)
    rowptr, col, _ = ops.sorted_csr(edge_index, num_nodes)
    src, dst = targets(num_nodes, 19, seed=8)
    cn = expected_masks(dense_from_edge_index(edge_index, num_nodes), src, dst)["cn"].double()
    x = torch.randn(num_nodes, 6, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(19, 6, dtype=torch.float64)
    with path_env(path) as expected_path:
        z = ops.common_neighbors(rowptr, col, src, dst, x)
        counts = ops.common_neighbors(rowptr, col, src, dst)
    assert ops.last_path("common_neighbors") == expected_path
    torch.testing.assert_close(z, cn @ x)
    torch.testing.assert_close(counts, cn.sum(1).float())
    (grad,) = torch.autograd.grad(z, x, upstream)
    torch.testing.assert_close(grad, cn.t() @ upstream)


@pytest.mark.parametrize("path", ("reference", "cpu-native", "cpu-torch"))
def test_common_neighbors_gradcheck(path, make_graph, path_env):
    rowptr, col, _ = ops.sorted_csr(undirected_awkward(make_graph, 10, 25, 3), 10)
    src, dst = targets(10, 7, seed=4)
    x = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    with path_env(path):
        assert torch.autograd.gradcheck(lambda x: ops.common_neighbors(rowptr, col, src, dst, x), (x,))


def test_weighted_reduction_through_gather_reduce_gradcheck(make_graph):
    """NCNC's completion: sum_w p_w x_w over N(i) \\ N(j), differentiable in x and in the weights p."""
    rowptr, col, _ = ops.sorted_csr(undirected_awkward(make_graph, 10, 25, 5), 10)
    src, dst = targets(10, 6, seed=6)
    sets = ops.neighbor_sets(rowptr, col, src, dst, sets=("src_only",))["src_only"]
    x = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    p = torch.rand(sets.index.numel(), dtype=torch.float64, requires_grad=True)
    dense = torch.zeros(6, 10, dtype=torch.float64)
    pair = torch.repeat_interleave(torch.arange(6), sets.ptr.diff())
    dense[pair, sets.index] = p.detach()
    torch.testing.assert_close(ops.gather_reduce(x, sets.ptr, sets.index, "sum", edge_weight=p), dense @ x.detach())
    assert torch.autograd.gradcheck(
        lambda x, p: ops.gather_reduce(x, sets.ptr, sets.index, "sum", edge_weight=p), (x, p)
    )


# --------------------------------------------------------------------------------------------- sampling


def _dense_graph(num_nodes: int = 30, p: float = 0.6, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    upper = torch.rand(num_nodes, num_nodes, generator=gen) < p
    adj = torch.triu(upper, 1)
    adj = adj | adj.t()
    edge_index = adj.nonzero().t().flip(0)
    rowptr, col, _ = ops.sorted_csr(edge_index, num_nodes)
    return rowptr, col, adj


def test_sampling_keeps_k_distinct_members_of_the_set_with_weight_size_over_k():
    rowptr, col, adj = _dense_graph()
    src, dst = torch.arange(0, 12), torch.arange(12, 24)
    k = 4
    full = ops.neighbor_sets(rowptr, col, src, dst, sets=ALL_SETS)
    gen = torch.Generator().manual_seed(0)
    got = ops.neighbor_sets(rowptr, col, src, dst, sets=ALL_SETS, max_neighbors={"cn": k, "src_only": 3}, generator=gen)
    assert got["dst_only"].weight is None
    torch.testing.assert_close(got["dst_only"].index, full["dst_only"].index)
    for name, limit in (("cn", k), ("src_only", 3)):
        size = full[name].ptr.diff()
        assert bool((size > limit).any()), "the test graph must exceed the limit somewhere"
        sampled = got[name]
        torch.testing.assert_close(sampled.ptr.diff(), size.clamp(max=limit))
        dense_full, dense_kept = to_dense(full[name], 30), to_dense(sampled, 30)  # to_dense: ascending, distinct
        assert not bool((dense_kept & ~dense_full).any()), "sampled a node outside the set"
        pair = torch.repeat_interleave(torch.arange(12), sampled.ptr.diff())
        expected_w = (size.double() / size.clamp(max=limit).double())[pair].float()
        torch.testing.assert_close(sampled.weight, expected_w)


def test_sampling_is_deterministic_with_a_seeded_generator_and_unbiased():
    rowptr, col, adj = _dense_graph(seed=1)
    src, dst = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    x = torch.randn(30, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    run = lambda seed: ops.common_neighbors(  # noqa: E731
        rowptr, col, src, dst, x, max_neighbors=3, generator=torch.Generator().manual_seed(seed)
    )
    torch.testing.assert_close(run(11), run(11))
    assert not torch.equal(run(11), run(12))
    samples = torch.stack([run(s) for s in range(400)])
    exact = (adj[src] & adj[dst]).double() @ x
    # unbiased: the mean of 400 draws lies within 5 standard errors of the exact sum (a fixed tolerance relative
    # to max |exact| failed for ~15% of random x; an estimator without the |S|/k reweighting is off by >> 5 SE)
    standard_error = samples.std(0) / len(samples) ** 0.5
    assert bool(((samples.mean(0) - exact).abs() <= 5 * standard_error + 1e-9).all())


@pytest.mark.parametrize("path", ("reference", "cpu-native", "cpu-torch", TRITON_PATH))
def test_seeded_sampling_agrees_across_paths(path, path_env):
    rowptr, col, _ = _dense_graph(num_nodes=14, seed=2)
    src, dst = torch.arange(0, 5), torch.arange(5, 10)
    with ops.set_backend("reference"):
        want = ops.neighbor_sets(rowptr, col, src, dst, sets=ALL_SETS, max_neighbors=2,
                                 generator=torch.Generator().manual_seed(3))
    with path_env(path):
        got = ops.neighbor_sets(rowptr, col, src, dst, sets=ALL_SETS, max_neighbors=2,
                                generator=torch.Generator().manual_seed(3))
    for name in ALL_SETS:
        torch.testing.assert_close(got[name], want[name])


# --------------------------------------------------------------------------------------------- errors


def _small():
    rowptr, col, _ = ops.sorted_csr(torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), 3)
    return rowptr, col, torch.tensor([0, 1]), torch.tensor([2, 2])


@pytest.mark.parametrize(
    "change, error, match",
    [
        (lambda a: {**a, "src": a["src"].float()}, TypeError, "src has dtype torch.float32"),
        (lambda a: {**a, "col": a["col"].tolist()}, TypeError, "col must be a torch.Tensor"),
        (lambda a: {**a, "dst": torch.tensor([2])}, ValueError, "src has 2 target pairs but dst has 1"),
        (lambda a: {**a, "dst": torch.tensor([2, 3])}, ValueError, "dst has max 3 but the graph has 3"),
        (lambda a: {**a, "src": torch.tensor([-1, 0])}, ValueError, "src has a negative entry"),
        (lambda a: {**a, "src": a["src"].view(2, 1)}, ValueError, "src must be 1-dimensional"),
        (lambda a: {**a, "col": torch.tensor([1, 2, 0, 1])}, ValueError, "col has max 2|sorted"),
        (lambda a: {**a, "col": torch.tensor([1, 2, 0, 1]).clamp(max=1)}, ValueError, "graphlab.ops.sorted_csr"),
        (lambda a: {**a, "sets": ("cn", "common")}, ValueError, "unknown neighbour set 'common'"),
        (lambda a: {**a, "max_neighbors": 0}, ValueError, "max_neighbors must be a positive int"),
        (lambda a: {**a, "max_neighbors": {"dst_only": 2}}, ValueError, "max_neighbors has keys"),
    ],
)
def test_bad_input_names_the_argument(change, error, match):
    rowptr, col, src, dst = _small()
    args = change({"rowptr": rowptr, "col": col, "src": src, "dst": dst})
    with pytest.raises(error, match=match):
        ops.neighbor_sets(**args)


def test_unsorted_rows_are_caught_and_x_rows_must_match():
    rowptr = torch.tensor([0, 2, 3, 4])
    unsorted = torch.tensor([2, 1, 0, 1])
    with pytest.raises(ValueError, match=r"col is not sorted.*sorted_csr"):
        ops.common_neighbors(rowptr, unsorted, torch.tensor([0]), torch.tensor([1]))
    duplicate = torch.tensor([1, 1, 0, 1])
    with pytest.raises(ValueError, match=r"col is not sorted and duplicate-free"):
        ops.neighbor_sets(rowptr, duplicate, torch.tensor([0]), torch.tensor([1]))
    rowptr, col, src, dst = _small()
    with pytest.raises(ValueError, match="x has 4 rows but the graph has 3 nodes"):
        ops.common_neighbors(rowptr, col, src, dst, torch.randn(4, 2))


def test_validation_is_cached_per_graph_but_redone_after_an_in_place_change():
    rowptr = torch.tensor([0, 2, 3, 4])
    col = torch.tensor([1, 2, 0, 1])
    src, dst = torch.tensor([0]), torch.tensor([1])
    ops.neighbor_sets(rowptr, col, src, dst)  # passes and is remembered
    col[0], col[1] = 2, 1  # unsorted now: the in-place version bump must invalidate the cached verdict
    with pytest.raises(ValueError, match=r"col is not sorted.*sorted_csr"):
        ops.common_neighbors(rowptr, col, src, dst)
    with pytest.raises(ValueError, match="src has max 3 but the graph has 3"):  # counts-only route checks too
        ops.common_neighbors(rowptr, torch.tensor([1, 2, 0, 1]), torch.tensor([3]), dst)


@pytest.mark.parametrize("index_dtype", INDEX_DTYPES, ids=str)
def test_native_counts_only_and_branch_free_merge_on_long_rows(index_dtype):
    """Long rows of similar length (the branch-free merge) and skewed ones (galloping); the count pass alone
    (``fill=False``) gives the same ``ptr`` as the full call."""
    if not _native.available():
        pytest.skip(f"native kernels unavailable: {_native.unavailable_reason()}")
    num_nodes = 120
    gen = torch.Generator().manual_seed(11)
    dense = torch.rand(num_nodes, num_nodes, generator=gen) < torch.linspace(0.02, 0.6, num_nodes)[:, None]
    edge_index = dense.nonzero().t()
    rowptr, col, _ = ops.sorted_csr(edge_index, num_nodes)
    src = torch.randint(0, num_nodes, (200,), generator=gen)
    dst = torch.randint(0, num_nodes, (200,), generator=gen)
    rowptr, col, src, dst = (t.to(index_dtype) for t in (rowptr, col, src, dst))
    want = expected_masks(dense_from_edge_index(edge_index, num_nodes), src, dst)
    full = _native.neighbor_sets(rowptr, col, src, dst, ALL_SETS)
    sizes = _native.neighbor_sets(rowptr, col, src, dst, ALL_SETS, fill=False)
    for name in ALL_SETS:
        ptr, index = full[name]
        torch.testing.assert_close(to_dense(ops.PairSets(ptr, index, None), num_nodes), want[name], msg=name)
        assert sizes[name][1] is None and torch.equal(sizes[name][0], ptr)
    with ops.set_backend("cpu"):
        counts = ops.common_neighbors(rowptr, col, src, dst)
    assert ops.last_path(CPU_IMPL_LOG) == "native"
    torch.testing.assert_close(counts, want["cn"].sum(1).to(counts.dtype))


def test_native_boundary_refuses_mismatched_index_widths():
    if not _native.available():
        pytest.skip(f"native kernels unavailable: {_native.unavailable_reason()}")
    rowptr, col, src, dst = _small()
    with pytest.raises(TypeError, match="native kernel argument src has dtype torch.int32"):
        _native.neighbor_sets(rowptr, col, src.int(), dst, ("cn",))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("sets", [("cn",), ("cn", "src_only"), ("dst_only", "cn"), ("src_only",)], ids=str)
def test_subsets_of_sets_on_a_graph_with_hubs(path, sets, path_env):
    """Hubs next to low-degree nodes: the native merge gallops over the list whose leftovers are not requested."""
    num_nodes = 60
    gen = torch.Generator().manual_seed(9)
    hub_edges = torch.stack([torch.zeros(45, dtype=torch.long), torch.randperm(59, generator=gen)[:45] + 1])
    hub2 = torch.stack([torch.ones(30, dtype=torch.long), torch.randperm(58, generator=gen)[:30] + 2])
    sparse = torch.randint(2, num_nodes, (2, 40), generator=gen)
    edge_index = torch.cat([hub_edges, hub2, sparse], 1)
    edge_index = torch.cat([edge_index, edge_index.flip(0)], 1)
    rowptr, col, _ = ops.sorted_csr(edge_index, num_nodes)
    src = torch.cat([torch.zeros(10, dtype=torch.long), torch.randint(0, num_nodes, (10,), generator=gen)])
    dst = torch.cat([torch.randint(0, num_nodes, (10,), generator=gen), torch.ones(10, dtype=torch.long)])
    want = expected_masks(dense_from_edge_index(edge_index, num_nodes), src, dst)
    with path_env(path):
        got = ops.neighbor_sets(rowptr, col, src, dst, sets=sets)
    assert tuple(got) == sets
    for name in sets:
        torch.testing.assert_close(to_dense(got[name], num_nodes), want[name], msg=name)


def test_native_source_compiles_without_warnings():
    import shutil
    import subprocess

    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    source = _native.source_dir() / "common_neighbors.c"
    cmd = [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-pthread", str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_benchmark_script_runs_on_a_tiny_graph(capsys, repo_script):
    """benchmarks/common_neighbors.py end to end (it also checks that graphlab and the official design agree)."""
    module = repo_script("benchmarks/common_neighbors.py")
    module.main(["--graphs", "tiny", "--repeats", "1", "--warmup", "0"])
    rows = capsys.readouterr().out.strip().splitlines()
    assert [r.split()[4] for r in rows[2:4]] == ["sets", "cn-sum"]
    args = module.parse_args(["--graphs", "tiny", "--epoch", "--epoch-count", "2"])
    assert args.epoch and args.epoch_count == 2  # the full-epoch table itself trains on Cora: benchmarks/ncn_epoch.py
