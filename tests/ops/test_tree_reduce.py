"""graphlab.ops.tree_reduce: the schedule on every path against the reference, the reduction against an
independent per-segment recursion, exactness for associative operators, gradients, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from graphlab import ops
from graphlab.ops import reference
from graphlab.ops.tree_reduce import SCHEDULE_CACHE

pytestmark = pytest.mark.usefixtures("one_thread")

PATHS = ["reference", "cpu", pytest.param("triton", marks=pytest.mark.triton)]
FIELDS = ("done", "left", "right", "carry", "gather")


def ptr_of(counts: list[int]) -> torch.Tensor:
    return torch.tensor([0, *torch.tensor(counts, dtype=torch.long).cumsum(0).tolist()], dtype=torch.long)


# degree 0/1/2/3, odd large, a hub, trailing empties, a single segment, no segment at all
COUNT_CASES = {
    "mixed": [0, 1, 2, 3, 0, 5, 7, 8, 1, 0],
    "odd_large": [1, 33, 2, 65, 3],
    "hub": [2, 1, 257, 0, 4, 1, 1],
    "single": [13],
    "all_empty": [0, 0, 0],
    "none": [],
    "powers": [1, 2, 4, 8, 16, 32],
}


def random_counts(seed: int, num: int = 40) -> list[int]:
    gen = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, 9, (num,), generator=gen)
    counts[3] = 61  # one hub, odd
    return counts.tolist()


def tree_by_recursion(rows: list[torch.Tensor], combine) -> torch.Tensor:
    """The definition, written independently of the op: pair (0,1), (2,3), ...; an odd last one goes up as is."""
    if len(rows) == 1:
        return rows[0]
    paired = [combine(rows[i].unsqueeze(0), rows[i + 1].unsqueeze(0))[0] for i in range(0, len(rows) - 1, 2)]
    if len(rows) % 2:
        paired.append(rows[-1])
    return tree_by_recursion(paired, combine)


def per_segment_loop(x: torch.Tensor, ptr: torch.Tensor, combine, empty=None) -> torch.Tensor:
    out = []
    for s in range(ptr.numel() - 1):
        rows = list(x[int(ptr[s]):int(ptr[s + 1])])
        out.append(tree_by_recursion(rows, combine) if rows else
                   (torch.zeros(x.size(1), dtype=x.dtype) if empty is None else empty))
    return torch.stack(out)


class SmallMLP(torch.nn.Module):
    """A non-associative, non-commutative operator: enough to tell pairings apart."""

    def __init__(self, features: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.w1 = torch.nn.Parameter(torch.randn(2 * features, 8, generator=gen, dtype=dtype) / 3)
        self.w2 = torch.nn.Parameter(torch.randn(8, features, generator=gen, dtype=dtype) / 3)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.tanh(torch.cat([a, b], dim=-1) @ self.w1) @ self.w2 + 0.5 * a


# ----------------------------------------------------------------------------------------------- schedule


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", [*COUNT_CASES, "random0", "random1"])
def test_schedule_equals_reference(path, case, path_env):
    counts = random_counts(int(case[-1])) if case.startswith("random") else COUNT_CASES[case]
    ptr = ptr_of(counts)
    expected = reference.tree_reduce_schedule(ptr)
    with path_env(path) as ran:
        schedule = ops.tree_reduce_schedule(ptr, cache=False)
    assert ops.last_path("tree_reduce_schedule") == ran
    assert len(schedule.levels) == len(expected)
    for level, want in zip(schedule.levels, expected):
        for field in FIELDS:
            assert getattr(level, field).tolist() == want[field], field
    done_order = [s for want in expected for s in want["done_segments"]]
    final = schedule.final.tolist()
    for s, c in enumerate(counts):
        assert final[s] == (done_order.index(s) if c else len(done_order))


@pytest.mark.parametrize("case", list(COUNT_CASES))
def test_depth_is_ceil_log2_of_the_largest_segment(case):
    counts = COUNT_CASES[case]
    schedule = ops.tree_reduce_schedule(ptr_of(counts), cache=False)
    largest = max(counts, default=0)
    assert schedule.depth == (math.ceil(math.log2(largest)) if largest > 1 else 0)


def test_every_level_at_most_halves_the_rows():
    counts = COUNT_CASES["hub"]
    schedule = ops.tree_reduce_schedule(ptr_of(counts), cache=False)
    rows = sum(counts)
    for level in schedule.levels[:-1]:
        next_rows = level.gather.numel()
        assert next_rows <= (rows + 1) // 2 + len(counts)
        assert level.left.numel() + level.carry.numel() == next_rows
        rows = next_rows


def test_schedule_is_cached_per_ptr_and_invalidated_by_in_place_edits():
    ptr = ptr_of([3, 0, 5])
    SCHEDULE_CACHE.clear()
    first = ops.tree_reduce_schedule(ptr)
    assert ops.tree_reduce_schedule(ptr) is first
    assert ops.tree_reduce_schedule(ptr.clone()) is not first
    ptr[1:3] = 1  # [0, 1, 1, 8]: now the segments are 1, 0, 7
    rebuilt = ops.tree_reduce_schedule(ptr)
    assert rebuilt is not first
    assert rebuilt.depth == 3 and rebuilt.final.tolist() == [0, 2, 1]


# ----------------------------------------------------------------------------------------------- reduction


@pytest.mark.parametrize("path", ["reference", "cpu"])
@pytest.mark.parametrize("case", list(COUNT_CASES))
def test_associative_operators_give_the_segment_reduction_exactly(path, case, path_env):
    counts = COUNT_CASES[case]
    ptr = ptr_of(counts)
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(-50, 50, (sum(counts), 5), generator=gen).double()  # integers: sums are exact in any order
    with path_env(path) as ran:
        total = ops.tree_reduce(x, ptr, torch.add)
        largest = ops.tree_reduce(x, ptr, torch.maximum)
        assert ops.last_path("tree_reduce") == ran
    torch.testing.assert_close(total, reference.segment_reduce(x, ptr, "sum"), rtol=0, atol=0)
    torch.testing.assert_close(largest, reference.segment_reduce(x, ptr, "max"), rtol=0, atol=0)


@pytest.mark.parametrize("path", ["reference", "cpu"])
def test_associative_operator_is_invariant_to_order_within_segments(path, path_env):
    counts = random_counts(2)
    ptr = ptr_of(counts)
    x = torch.randn(sum(counts), 4, dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    perm = torch.cat([int(ptr[s]) + torch.randperm(c, generator=gen) for s, c in enumerate(counts)])
    with path_env(path):
        torch.testing.assert_close(ops.tree_reduce(x[perm], ptr, torch.maximum),
                                   ops.tree_reduce(x, ptr, torch.maximum), rtol=0, atol=0)


@pytest.mark.parametrize("path", ["reference", "cpu"])
@pytest.mark.parametrize("case", ["mixed", "hub", "odd_large", "random0"])
def test_matches_an_independent_per_segment_recursion(path, case, path_env):
    counts = random_counts(0) if case == "random0" else COUNT_CASES[case]
    ptr = ptr_of(counts)
    combine = SmallMLP(3)
    x = torch.randn(sum(counts), 3, dtype=torch.float64, requires_grad=True)
    expected = per_segment_loop(x, ptr, combine)
    with path_env(path):
        out = ops.tree_reduce(x, ptr, combine)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(out)
    want = torch.autograd.grad(expected, [x, combine.w1], grad)
    got = torch.autograd.grad(out, [x, combine.w1], grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_the_recursion_tells_pairings_apart():
    """The independent recursion is sensitive to the tree's shape: a left fold gives a different value."""
    combine = SmallMLP(2)
    rows = list(torch.randn(5, 2, dtype=torch.float64))
    fold = rows[0]
    for r in rows[1:]:
        fold = combine(fold.unsqueeze(0), r.unsqueeze(0))[0]
    assert not torch.allclose(tree_by_recursion(rows, combine), fold)


def test_empty_segments_give_the_empty_row():
    ptr = ptr_of([0, 2, 0])
    x = torch.randn(2, 3, dtype=torch.float64)
    empty = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    out = ops.tree_reduce(x, ptr, torch.add, empty)
    torch.testing.assert_close(out[0], empty.detach())
    torch.testing.assert_close(out[2], empty.detach())
    torch.testing.assert_close(ops.tree_reduce(x, ptr, torch.add)[0], torch.zeros(3, dtype=torch.float64))
    out.sum().backward()
    torch.testing.assert_close(empty.grad, torch.full((3,), 2.0, dtype=torch.float64))


def test_a_given_schedule_is_used_and_checked():
    ptr = ptr_of([3, 4])
    x = torch.randn(7, 2, dtype=torch.float64)
    schedule = ops.tree_reduce_schedule(ptr)
    torch.testing.assert_close(ops.tree_reduce(x, ptr, torch.add, schedule=schedule), reference.segment_reduce(x, ptr))
    with pytest.raises(ValueError, match="schedule was built for 2 segments"):
        ops.tree_reduce(x, ptr_of([3, 4, 0]), torch.add, schedule=schedule)


def test_gradcheck_float64_with_a_small_mlp():
    ptr = ptr_of([0, 1, 2, 3, 5])
    combine = SmallMLP(2)
    x = torch.randn(11, 2, dtype=torch.float64, requires_grad=True)
    empty = torch.randn(2, dtype=torch.float64, requires_grad=True)
    with ops.set_backend("cpu"):
        assert torch.autograd.gradcheck(lambda x, e, w: ops.tree_reduce(x, ptr, combine, e), (x, empty, combine.w1))


# ----------------------------------------------------------------------------------------------- bad input


def test_bad_input_is_named():
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match="ptr is not non-decreasing"):
        ops.tree_reduce(x, torch.tensor([0, 3, 2, 5]), torch.add)
    with pytest.raises(ValueError, match=r"ptr\[-1\] is 4 but x has 5"):
        ops.tree_reduce(x, torch.tensor([0, 4]), torch.add)
    with pytest.raises(ValueError, match=r"ptr\[0\] is 1"):
        ops.tree_reduce_schedule(torch.tensor([1, 4]))
    with pytest.raises(ValueError, match="int64 or torch.int32"):
        ops.tree_reduce(x, torch.tensor([0.0, 5.0]), torch.add)
    with pytest.raises(ValueError, match=r"2-D tensor \[E, F\]"):
        ops.tree_reduce(torch.randn(5), torch.tensor([0, 5]), torch.add)
    with pytest.raises(TypeError, match="combine must be a callable"):
        ops.tree_reduce(x, torch.tensor([0, 5]), "add")
    with pytest.raises(ValueError, match=r"empty must be a tensor of shape \[F\] = \[2\]"):
        ops.tree_reduce(x, torch.tensor([0, 5]), torch.add, torch.zeros(3))
    with pytest.raises(ValueError, match="combine\\(a, b\\) must return a tensor shaped like a"):
        ops.tree_reduce(x, torch.tensor([0, 5]), lambda a, b: torch.cat([a, b], dim=1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numpy_pairing_step_equals_the_torch_one(seed):
    """The CPU schedule is built in NumPy; its pairing step must equal the torch step on any active segments."""
    from graphlab.ops.tree_reduce import pair_level_numpy, pair_level_torch

    gen = torch.Generator().manual_seed(seed)
    counts = torch.randint(2, 40, (57,), generator=gen)
    starts = torch.cumsum(counts, 0) - counts
    ours = pair_level_numpy(starts.numpy(), counts.numpy())
    theirs = pair_level_torch(starts, counts)
    for a, b in zip(ours, theirs):
        assert a.tolist() == b.tolist()


def test_cpu_schedule_from_an_int32_ptr_equals_the_int64_one():
    ptr = ptr_of(random_counts(3))
    a = ops.tree_reduce_schedule(ptr, cache=False)
    b = ops.tree_reduce_schedule(ptr.int(), cache=False)
    assert a.final.tolist() == b.final.tolist() and a.final.dtype == b.final.dtype == torch.long
    for la, lb in zip(a.levels, b.levels):
        assert all(getattr(la, f).tolist() == getattr(lb, f).tolist() for f in FIELDS)
