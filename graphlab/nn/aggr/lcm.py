r"""Learnable Commutative Monoid aggregation (Ong & Veličković, LoG 2022), reduced exactly per neighbourhood."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torch_geometric.nn.aggr import Aggregation

from graphlab.nn.aggr._segments import check_rows, segment_ptr
from graphlab.ops import tree_reduce

Operator = Literal["gru", "mlp"]


class LCMAggregation(Aggregation):
    r"""The Learnable Commutative Monoid aggregation of `"Learnable Commutative Monoids for Graph Neural Networks"
    <https://arxiv.org/abs/2212.08541>`_ (Ong & Veličković, LoG 2022).

    A learnable binary operator is made exactly commutative by symmetrisation,

    .. math::
        x \oplus y = \tfrac{1}{2}\big(g(x, y) + g(y, x)\big),

    with :math:`g` a GRU cell (``operator="gru"``: input :math:`x`, hidden state :math:`y`) or an MLP on the
    concatenation (``operator="mlp"``: :math:`g(x, y) = \mathrm{MLP}([x \,\|\, y])`), and every neighbourhood
    :math:`\mathcal{N}(i) = (j_0, \dots, j_{c-1})` (in input order) is reduced over a balanced binary tree:

    .. math::
        \mathbf{h}_j = \mathrm{ReLU}(\mathbf{W} \mathbf{x}_j + \mathbf{b}) \ (\text{if project}), \qquad
        \mathbf{x}_i' = T(\mathbf{h}_{j_0}, \dots, \mathbf{h}_{j_{c-1}}), \qquad
        T(a_0, \dots, a_{c-1}) = T(a_0 \oplus a_1, a_2 \oplus a_3, \dots, [a_{c-1}])

    (one level pairs neighbours :math:`(2k, 2k+1)`, an odd last element passes up unchanged; depth
    :math:`\lceil \log_2 c \rceil`), computed by :func:`graphlab.ops.tree_reduce` with one operator call per
    level over all neighbourhoods. Unlike PyG's ``LCMAggregation`` nothing is padded: a node's output depends
    only on its own neighbourhood, never on other nodes' degrees or on what else is in the batch, and memory is
    :math:`O(E \cdot F)`. An empty neighbourhood gives **zeros**. :math:`\oplus` is commutative exactly but only
    approximately associative, so the output depends (slightly) on neighbour order; the paper's associativity
    regulariser

    .. math::
        \mathcal{L}_{\mathrm{assoc}} = \mathbb{E}_{(a, b, c)} \big\| (a \oplus b) \oplus c - a \oplus (b \oplus c)
        \big\|_2^2

    is returned by :meth:`auxiliary_losses` over ``num_triples`` triples drawn from the rows of the last training
    forward pass (from one neighbourhood with at least three rows, chosen uniformly, positions drawn with
    replacement; from all rows when no neighbourhood has three). The task adds it with a weight.

    The rows of each neighbourhood must be consecutive: pass ``ptr``, or an ``index`` sorted ascending (PyG's
    ``MessagePassing`` passes ``edge_index[1]``; sort the edges by target, e.g. ``data.sort(sort_by_row=False)``).

    Args:
        in_channels: input features :math:`F_{in}`.
        out_channels: output (latent) features :math:`F_{out}`.
        project: apply ``Linear(in, out) + ReLU`` first (default ``True``); ``False`` needs ``in == out``.
        operator: ``"gru"`` (default, the paper's) or ``"mlp"``.
        hidden_channels: hidden width of the ``"mlp"`` operator (default ``out_channels``).
        num_triples: triples sampled by :meth:`auxiliary_losses` (default 256).

    Shapes:
        - **input:** ``x`` :math:`(E, F_{in})`, ``index`` :math:`(E)` sorted or ``ptr`` :math:`(N + 1)`
        - **output:** :math:`(N, F_{out})`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        project: bool = True,
        operator: Operator = "gru",
        hidden_channels: int | None = None,
        num_triples: int = 256,
    ) -> None:
        super().__init__()
        if operator not in ("gru", "mlp"):
            raise ValueError(f"operator must be 'gru' or 'mlp', got {operator!r}")
        if not project and in_channels != out_channels:
            raise ValueError(f"project=False needs in_channels == out_channels, got {in_channels} and "
                             f"{out_channels}; set project=True or make them equal")
        if num_triples < 1:
            raise ValueError(f"num_triples must be >= 1, got {num_triples}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.project = project
        self.operator = operator
        self.hidden_channels = out_channels if hidden_channels is None else hidden_channels
        self.num_triples = num_triples
        self.lin = torch.nn.Linear(in_channels, out_channels) if project else None
        if operator == "gru":
            self.g: torch.nn.Module = torch.nn.GRUCell(out_channels, out_channels)
        else:
            self.g = torch.nn.Sequential(
                torch.nn.Linear(2 * out_channels, self.hidden_channels),
                torch.nn.ReLU(),
                torch.nn.Linear(self.hidden_channels, out_channels),
            )
        self._pending: tuple[Tensor, Tensor] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.lin is not None:
            self.lin.reset_parameters()
        for module in self.g.modules():  # the GRU cell, or the MLP's linear layers
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        self._pending = None

    def combine(self, a: Tensor, b: Tensor) -> Tensor:
        r""":math:`a \oplus b = \tfrac12 (g(a, b) + g(b, a))` row-wise, both orders in one call of :math:`g`."""
        num = a.size(0)
        first, second = torch.cat([a, b]), torch.cat([b, a])
        if self.operator == "gru":
            both = self.g(first, second)  # GRUCell(input, hidden)
        else:
            both = self.g(torch.cat([first, second], dim=-1))
        return 0.5 * (both[:num] + both[num:])

    def forward(
        self,
        x: Tensor,
        index: Tensor | None = None,
        ptr: Tensor | None = None,
        dim_size: int | None = None,
        dim: int = -2,
    ) -> Tensor:
        check_rows(type(self).__name__, x, dim, self.in_channels)
        ptr = segment_ptr(type(self).__name__, x, index, ptr, dim_size)
        h = torch.relu(self.lin(x)) if self.lin is not None else x
        if self.training and torch.is_grad_enabled():
            self._pending = (h, ptr)
        return tree_reduce(h, ptr, self.combine, validate=False)

    def auxiliary_losses(self) -> dict[str, Tensor]:
        r"""``{"associativity": mean ||(a+b)+c - a+(b+c)||^2}`` over triples from the last training forward.

        Returns an empty dict when no training forward ran since the last call; clears the stored rows.
        """
        if self._pending is None:
            return {}
        h, ptr = self._pending
        self._pending = None
        if h.size(0) == 0:
            return {"associativity": h.new_zeros(())}
        idx = sample_triples(ptr, self.num_triples)
        a, b, c = (h.index_select(0, idx[:, k]) for k in range(3))
        left = self.combine(self.combine(a, b), c)
        right = self.combine(a, self.combine(b, c))
        return {"associativity": (left - right).pow(2).sum(dim=-1).mean()}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, project={self.project}, "
                f"operator={self.operator!r})")


def sample_triples(ptr: Tensor, num: int) -> Tensor:
    """``[num, 3]`` row indices: a neighbourhood with >= 3 rows chosen uniformly, then three positions in it
    (with replacement); all rows when no neighbourhood has three."""
    starts, counts = ptr[:-1], ptr[1:] - ptr[:-1]
    eligible = torch.nonzero(counts >= 3).flatten()
    if eligible.numel() == 0:
        return torch.randint(0, int(ptr[-1]), (num, 3), device=ptr.device)
    seg = eligible[torch.randint(0, eligible.numel(), (num,), device=ptr.device)]
    offsets = (torch.rand(num, 3, device=ptr.device) * counts[seg].unsqueeze(1)).long()
    offsets = torch.minimum(offsets, (counts[seg] - 1).unsqueeze(1))
    return starts[seg].unsqueeze(1) + offsets
