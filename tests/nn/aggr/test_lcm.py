"""graphlab.nn.aggr.LCMAggregation: exact commutativity, locality (no dependence on other nodes or the batch),
equality with a per-node loop over the same tree, the associativity regulariser, PyG integration, bad input."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import sort_edge_index

from graphlab.nn import GINConv, LCMAggregation
from graphlab.nn.aggr.lcm import sample_triples

pytestmark = pytest.mark.usefixtures("one_thread")
OPERATORS = ["gru", "mlp"]


def make_aggr(operator: str, in_channels: int = 3, out_channels: int = 4, **kwargs) -> LCMAggregation:
    torch.manual_seed(0)
    return LCMAggregation(in_channels, out_channels, operator=operator, **kwargs).double()


def index_of(counts: list[int]) -> torch.Tensor:
    return torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))


def loop_reference(aggr: LCMAggregation, x: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Per node: project, then the tree from its definition, one pair at a time with ``aggr.combine``."""
    h = torch.relu(aggr.lin(x)) if aggr.project else x
    out, start = [], 0
    for c in counts:
        rows = list(h[start:start + c])
        start += c
        while len(rows) > 1:
            nxt = [aggr.combine(rows[i][None], rows[i + 1][None])[0] for i in range(0, len(rows) - 1, 2)]
            rows = nxt + ([rows[-1]] if len(rows) % 2 else [])
        out.append(rows[0] if rows else torch.zeros(aggr.out_channels, dtype=x.dtype))
    return torch.stack(out)


@pytest.mark.parametrize("operator", OPERATORS)
def test_operator_is_exactly_commutative(operator):
    aggr = make_aggr(operator, 4, 4, project=False)
    a, b, c = (torch.randn(50, 4, dtype=torch.float64) for _ in range(3))
    torch.testing.assert_close(aggr.combine(a, b), aggr.combine(b, a), rtol=0, atol=1e-15)
    op = aggr.combine
    assert not torch.allclose(op(op(a, b), c), op(a, op(b, c)))  # associative only approximately


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize("counts", [[0, 1, 2, 3, 5, 0, 8, 17], [1], [0, 0], [33, 2, 1, 64]])
def test_equals_a_per_node_loop_over_the_same_tree(operator, counts):
    aggr = make_aggr(operator)
    x = torch.randn(sum(counts), 3, dtype=torch.float64)
    out = aggr(x, index_of(counts), dim_size=len(counts))
    torch.testing.assert_close(out, loop_reference(aggr, x, counts), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(aggr(x, ptr=torch.tensor([0, *torch.tensor(counts).cumsum(0).tolist()])), out)


@pytest.mark.parametrize("operator", OPERATORS)
def test_output_does_not_depend_on_other_nodes_degrees(operator):
    aggr = make_aggr(operator)
    gen = torch.Generator().manual_seed(1)
    small = [3, 2, 5]
    x = torch.randn(10, 3, dtype=torch.float64, generator=gen)
    alone = aggr(x, index_of(small))
    hub = torch.randn(300, 3, dtype=torch.float64, generator=gen)  # node 3 becomes a hub of 300 neighbours
    with_hub = aggr(torch.cat([x, hub]), index_of([*small, 300]))
    torch.testing.assert_close(with_hub[:3], alone, rtol=0, atol=1e-14)


@pytest.mark.parametrize("operator", OPERATORS)
def test_output_does_not_depend_on_the_batch(operator):
    aggr = make_aggr(operator)
    gen = torch.Generator().manual_seed(2)
    first, second = [2, 0, 7], [1, 12, 4, 4]
    x1 = torch.randn(sum(first), 3, dtype=torch.float64, generator=gen)
    x2 = torch.randn(sum(second), 3, dtype=torch.float64, generator=gen)
    batch = aggr(torch.cat([x2, x1]), index_of([*second, *first]))
    torch.testing.assert_close(batch[len(second):], aggr(x1, index_of(first)), rtol=0, atol=1e-14)
    torch.testing.assert_close(batch[:len(second)], aggr(x2, index_of(second)), rtol=0, atol=1e-14)


def test_pyg_lcm_does_depend_on_other_degrees():
    """Why the test above matters: PyG's padded version changes a node's output when a hub joins the batch."""
    from torch_geometric.nn.aggr import LCMAggregation as PyGLCM

    torch.manual_seed(0)
    pyg = PyGLCM(3, 4).double()
    x = torch.randn(10, 3, dtype=torch.float64)
    alone = pyg(x, index_of([3, 2, 5]))
    with_hub = pyg(torch.cat([x, torch.randn(40, 3, dtype=torch.float64)]), index_of([3, 2, 5, 40]))
    assert not torch.allclose(with_hub[:3], alone)


def test_order_invariance_is_exact_for_an_associative_operator_in_the_same_tree():
    aggr = make_aggr("gru")
    aggr.combine = torch.maximum  # an associative, commutative operator through the same tree
    counts = [4, 0, 9, 1, 2]
    x = torch.randn(sum(counts), 3, dtype=torch.float64)
    perm = torch.cat([int(s) + torch.randperm(c) for s, c in zip(torch.tensor([0, *counts]).cumsum(0), counts)])
    torch.testing.assert_close(aggr(x[perm], index_of(counts)), aggr(x, index_of(counts)), rtol=0, atol=0)


def test_empty_neighbourhoods_give_zeros_including_trailing_ones():
    aggr = make_aggr("gru")
    out = aggr(torch.randn(3, 3, dtype=torch.float64), torch.tensor([1, 1, 1]), dim_size=4)
    assert out.shape == (4, 4)
    assert out[0].abs().sum() == 0 and out[2:].abs().sum() == 0 and out[1].abs().sum() > 0


@pytest.mark.parametrize("operator", OPERATORS)
def test_gradcheck_float64(operator):
    aggr = make_aggr(operator, 2, 2)
    x = torch.randn(8, 2, dtype=torch.float64, requires_grad=True)
    index = index_of([0, 1, 2, 5])
    assert torch.autograd.gradcheck(lambda x: aggr(x, index), (x,))


# ----------------------------------------------------------------------------------------------- regulariser


def test_associativity_loss_follows_the_formula_on_the_sampled_triples():
    aggr = make_aggr("gru")
    counts = [4, 1, 6]
    x = torch.randn(11, 3, dtype=torch.float64)
    aggr.train()
    aggr(x, index_of(counts))
    torch.manual_seed(5)
    loss = aggr.auxiliary_losses()["associativity"]
    torch.manual_seed(5)
    ptr = torch.tensor([0, 4, 5, 11])
    idx = sample_triples(ptr, aggr.num_triples)
    h = torch.relu(aggr.lin(x))
    a, b, c = h[idx[:, 0]], h[idx[:, 1]], h[idx[:, 2]]
    op = aggr.combine
    expected = ((op(op(a, b), c) - op(a, op(b, c))) ** 2).sum(-1).mean()
    torch.testing.assert_close(loss, expected)
    assert loss > 0
    loss.backward()
    assert aggr.g.weight_hh.grad.abs().sum() > 0


def test_associativity_loss_protocol():
    aggr = make_aggr("mlp")
    x = torch.randn(6, 3, dtype=torch.float64)
    assert aggr.auxiliary_losses() == {}
    aggr.train()
    aggr(x, index_of([6]))
    assert set(aggr.auxiliary_losses()) == {"associativity"}
    assert aggr.auxiliary_losses() == {}  # cleared after the call
    aggr.eval()
    aggr(x, index_of([6]))
    assert aggr.auxiliary_losses() == {}  # nothing kept in eval mode
    aggr.train()
    with torch.no_grad():
        aggr(x, index_of([6]))
    assert aggr.auxiliary_losses() == {}  # nor without autograd


def test_associativity_loss_is_zero_for_an_associative_operator():
    aggr = make_aggr("gru")
    aggr.combine = torch.add
    aggr.train()
    aggr(torch.randn(9, 3, dtype=torch.float64), index_of([2, 7]))
    torch.testing.assert_close(aggr.auxiliary_losses()["associativity"], torch.tensor(0.0, dtype=torch.float64),
                               atol=1e-24, rtol=0)


def test_triples_come_from_one_neighbourhood_when_possible():
    ptr = torch.tensor([0, 2, 7, 8, 12])  # sizes 2, 5, 1, 4: only 1 and 3 have three rows
    idx = sample_triples(ptr, 500)
    segment = torch.bucketize(idx, ptr[1:], right=True)
    assert (segment == segment[:, :1]).all()
    assert set(segment[:, 0].tolist()) == {1, 3}
    fallback = sample_triples(torch.tensor([0, 2, 3]), 100)
    assert fallback.min() >= 0 and fallback.max() < 3


# ----------------------------------------------------------------------------------------------- integration


class PlainMP(MessagePassing):
    def forward(self, x, edge_index):
        return self.propagate(edge_index, x=x)


def test_inside_pyg_message_passing_and_graphlab_gin():
    torch.manual_seed(3)
    num_nodes = 12
    edge_index = sort_edge_index(torch.randint(0, num_nodes, (2, 40)), sort_by_row=False)
    x = torch.randn(num_nodes, 3, dtype=torch.float64)
    aggr = make_aggr("gru", 3, 3, project=False)
    mlp = torch.nn.Linear(3, 5).double()
    gin = GINConv(mlp, aggr=aggr).double()  # PyG's layers reset their aggregation's parameters here
    plain = PlainMP(aggr=aggr)
    direct = aggr(x[edge_index[0]], edge_index[1], dim_size=num_nodes)
    torch.testing.assert_close(plain(x, edge_index), direct)
    torch.testing.assert_close(gin(x, edge_index), mlp(direct + x))


def test_repr():
    assert repr(LCMAggregation(3, 4, operator="mlp")) == "LCMAggregation(3, 4, project=True, operator='mlp')"


# ----------------------------------------------------------------------------------------------- bad input


def test_bad_input_is_named():
    aggr = make_aggr("gru")
    x = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="index is not sorted.*sort_by_row=False"):
        aggr(x, torch.tensor([1, 0, 0, 1]))
    with pytest.raises(ValueError, match="in_channels=3 but x has 5 features"):
        aggr(torch.randn(4, 5, dtype=torch.float64), torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="project=False needs in_channels == out_channels"):
        LCMAggregation(3, 4, project=False)
    with pytest.raises(ValueError, match="operator must be 'gru' or 'mlp'"):
        LCMAggregation(3, 4, operator="lstm")
    with pytest.raises(ValueError, match="ptr must be"):
        aggr(x, ptr=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="outside"):
        aggr(x, torch.tensor([0, 0, 1, 3]), dim_size=2)


def test_cached_ptr_follows_in_place_edits_of_edge_index():
    aggr = make_aggr("mlp")
    edge_index = torch.tensor([[0, 1, 2, 3, 4], [0, 0, 1, 1, 1]])
    x = torch.randn(5, 3, dtype=torch.float64)
    first = aggr(x, edge_index[1], dim_size=3)
    torch.testing.assert_close(aggr(x, edge_index[1], dim_size=3), first)  # a fresh view: a cache hit, same value
    edge_index[1, 2:] = 2  # node 1 loses its neighbours to node 2
    moved = aggr(x, edge_index[1], dim_size=3)
    torch.testing.assert_close(moved[2], first[1])
    assert moved[1].abs().sum() == 0
