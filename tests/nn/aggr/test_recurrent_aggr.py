"""graphlab.nn.aggr.RecurrentAggregation: equal to a per-node loop of the same cell in eval mode, the true last
state (no padding), a random order within each neighbourhood in training, gradients, bad input."""

from __future__ import annotations

import itertools

import pytest
import torch

from graphlab.nn import RecurrentAggregation
from graphlab.nn.aggr.recurrent import shuffle_within_segments

pytestmark = pytest.mark.usefixtures("one_thread")
CELLS = ["gru", "lstm"]


def make_aggr(cell: str, in_channels: int = 3, out_channels: int = 4) -> RecurrentAggregation:
    torch.manual_seed(0)
    return RecurrentAggregation(in_channels, out_channels, cell=cell).double()


def index_of(counts: list[int]) -> torch.Tensor:
    return torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))


def cell_of(aggr: RecurrentAggregation) -> torch.nn.Module:
    """A GRUCell / LSTMCell holding the aggregation's weights."""
    cls = torch.nn.GRUCell if aggr.cell == "gru" else torch.nn.LSTMCell
    cell = cls(aggr.in_channels, aggr.out_channels).double()
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(cell, name).data.copy_(getattr(aggr.rnn, f"{name}_l0").data)
    return cell


def run_cell(cell: torch.nn.Module, rows: torch.Tensor, out_channels: int) -> torch.Tensor:
    h = torch.zeros(1, out_channels, dtype=rows.dtype)
    c = torch.zeros_like(h)
    for row in rows:
        if isinstance(cell, torch.nn.LSTMCell):
            h, c = cell(row[None], (h, c))
        else:
            h = cell(row[None], h)
    return h[0]


def loop_reference(aggr: RecurrentAggregation, x: torch.Tensor, counts: list[int]) -> torch.Tensor:
    cell, out, start = cell_of(aggr), [], 0
    for c in counts:
        out.append(run_cell(cell, x[start:start + c], aggr.out_channels))
        start += c
    return torch.stack(out)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("counts", [[0, 1, 2, 3, 7, 0, 16], [5], [0], [1, 40, 2, 0, 3]])
def test_eval_equals_a_per_node_loop_of_the_same_cell(cell, counts):
    aggr = make_aggr(cell).eval()
    x = torch.randn(sum(counts), 3, dtype=torch.float64)
    out = aggr(x, index_of(counts), dim_size=len(counts))
    torch.testing.assert_close(out, loop_reference(aggr, x, counts), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_padding_independence(cell):
    """A node's state is read at its own last neighbour, whatever the longest neighbourhood in the batch."""
    aggr = make_aggr(cell).eval()
    x = torch.randn(6, 3, dtype=torch.float64)
    alone = aggr(x, index_of([2, 4]))
    with_hub = aggr(torch.cat([x, torch.randn(100, 3, dtype=torch.float64)]), index_of([2, 4, 100]))
    torch.testing.assert_close(with_hub[:2], alone, rtol=0, atol=1e-14)


def test_training_order_is_a_permutation_within_each_neighbourhood():
    aggr = make_aggr("gru").train()
    x = torch.randn(3, 3, dtype=torch.float64)
    cell = cell_of(aggr)
    candidates = [run_cell(cell, x[list(p)], 4) for p in itertools.permutations(range(3))]
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        out = aggr(x, index_of([3]))[0]
        matches = [i for i, c in enumerate(candidates) if torch.allclose(out, c, atol=1e-12)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 1  # the order really is random


def test_shuffle_keeps_every_row_in_its_segment():
    ptr = torch.tensor([0, 3, 3, 4, 10])
    perm = shuffle_within_segments(ptr)
    assert sorted(perm.tolist()) == list(range(10))
    segment = torch.bucketize(perm, ptr[1:], right=True)
    assert segment.tolist() == [0, 0, 0, 2, 3, 3, 3, 3, 3, 3]


@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_float64(cell):
    aggr = make_aggr(cell, 2, 2).eval()
    x = torch.randn(7, 2, dtype=torch.float64, requires_grad=True)
    index = index_of([0, 1, 2, 4])
    assert torch.autograd.gradcheck(lambda x: aggr(x, index), (x,))


def test_bad_input_is_named():
    aggr = make_aggr("gru")
    with pytest.raises(ValueError, match="index is not sorted"):
        aggr(torch.randn(3, 3, dtype=torch.float64), torch.tensor([1, 0, 1]))
    with pytest.raises(ValueError, match="in_channels=3 but x has 2 features"):
        aggr(torch.randn(3, 2, dtype=torch.float64), torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="cell must be 'gru' or 'lstm'"):
        RecurrentAggregation(3, 4, cell="rnn")
    assert repr(aggr) == "RecurrentAggregation(3, 4, cell='gru')"
