r"""Restriction-map learners (NSD, Bodnar et al. 2022, eq. 10), fixed maps, and the learned sheaf Laplacian."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlab.nn.sheaf.graph import SheafGraph, _take
from graphlab.nn.sheaf.laplacian import (
    Normalisation, SheafLaplacian, _bundle_blocks, _check_normalisation, append_fixed_dims, diag_sheaf_laplacian,
    general_sheaf_laplacian,
)
from graphlab.nn.sheaf.orthogonal import OrthMap, Orthogonal

SheafType = Literal["diag", "bundle", "general"]
SheafAct = Literal["tanh", "elu", "id"]

__all__ = ["SheafType", "SheafAct", "concat_linear", "LocalConcatSheafLearner", "LocalConcatSheafLearnerVariant",
           "EdgeWeightLearner", "FixedRestrictionMaps", "SheafLaplacianLearner"]


def concat_linear(weight: Tensor, x: Tensor, edge_index: Tensor) -> Tensor:
    r"""``W [x_u || x_v]`` for every edge ``(u, v)``, computed as ``(x W_a^T)[u] + (x W_b^T)[v]`` with
    ``W = [W_a | W_b]``: the products run once per node and only ``out``-wide rows are gathered per edge,
    instead of ``2 * in``-wide concatenations (``E / N`` times less work on the wide part).

    Shapes: ``weight [out, 2 * in]``, ``x [N, in]``, ``edge_index [2, E]`` -> ``[E, out]``."""
    half = x.size(-1)
    both = x @ torch.cat([weight[:, :half], weight[:, half:]], dim=0).t()  # [N, 2 * out]
    out = weight.size(0)
    return _take(both[:, :out], edge_index[0]) + _take(both[:, out:], edge_index[1])


def _check_inputs(x: Tensor, width: int, edge_index: Tensor, what: str) -> None:
    """``x`` is ``[N, width]`` and ``edge_index`` ``[2, E]`` (the shapes every learner states)."""
    if x.dim() != 2 or x.size(1) != width:
        raise ValueError(f"x must have shape [N, {width}] ({what}), got {tuple(x.shape)}; flatten the cochain "
                         f"with x.reshape(N, -1) or build the learner with the input width")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")


def _sheaf_activation(name: str) -> Any:
    acts = {"tanh": torch.tanh, "elu": F.elu, "id": lambda t: t}
    if name not in acts:
        raise ValueError(f"sheaf_act must be one of {sorted(acts)}, got {name!r}")
    return acts[name]


class LocalConcatSheafLearner(nn.Module):
    r"""Restriction maps from the features of both ends of each edge (Bodnar et al. 2022, eq. 10):

    .. math::
        \mathcal{F}_{u \trianglelefteq e} = \sigma\big(W [\mathbf{x}_u \,\Vert\, \mathbf{x}_v]\big),
        \quad e = (u, v),

    with :math:`W` without bias and :math:`\sigma` the ``sheaf_act``.

    Args:
        in_channels: width of :math:`\mathbf{x}_u` (the flattened stalk, ``d * F`` in NSD).
        out_shape: shape of one map: ``(d,)`` diagonal, ``(k,)`` O(d) parameters, ``(d, d)`` general.
        sheaf_act: ``"tanh"`` (default), ``"elu"`` or ``"id"``.

    Shapes: ``x [N, in_channels]``, ``edge_index [2, E]`` -> ``[E, *out_shape]``.
    """

    def __init__(self, in_channels: int, out_shape: tuple[int, ...], sheaf_act: SheafAct = "tanh") -> None:
        super().__init__()
        self.in_channels, self.out_shape, self.sheaf_act = in_channels, tuple(out_shape), sheaf_act
        self.act = _sheaf_activation(sheaf_act)
        self.linear = nn.Linear(2 * in_channels, math.prod(self.out_shape), bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.linear.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        _check_inputs(x, self.in_channels, edge_index, "in_channels")
        maps = self.act(concat_linear(self.linear.weight, x, edge_index))
        return maps.view((-1,) + self.out_shape)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, out_shape={self.out_shape}, sheaf_act={self.sheaf_act!r}"


class LocalConcatSheafLearnerVariant(LocalConcatSheafLearner):
    r"""The sparse learner of NSD: sums each node's ``d`` stalk vectors before the concatenation,

    .. math::
        \mathcal{F}_{u \trianglelefteq e} = \sigma\Big(W \big[\textstyle\sum_i \mathbf{x}_{u,i} \,\Vert\,
        \sum_i \mathbf{x}_{v,i}\big]\Big),

    so :math:`W` has ``2F`` instead of ``2dF`` inputs. (The official code sums over a reshape of the
    concatenation, which mixes the two ends; this is the variant as the paper describes it.)

    Args:
        d: stalk dimension of the input.
        hidden_channels: ``F``.
        out_shape, sheaf_act: as :class:`LocalConcatSheafLearner`.

    Shapes: ``x [N, d * F]``, ``edge_index [2, E]`` -> ``[E, *out_shape]``.
    """

    def __init__(self, d: int, hidden_channels: int, out_shape: tuple[int, ...], sheaf_act: SheafAct = "tanh") -> None:
        self.d = d
        super().__init__(hidden_channels, out_shape, sheaf_act)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        _check_inputs(x, self.d * self.in_channels, edge_index, "d * hidden_channels")
        return super().forward(x.view(x.size(0), self.d, -1).sum(1), edge_index)


class EdgeWeightLearner(nn.Module):
    r"""Symmetric edge weights :math:`w_e = \mathrm{sigmoid}(W[\mathbf{x}_u \Vert \mathbf{x}_v]) \cdot
    \mathrm{sigmoid}(W[\mathbf{x}_v \Vert \mathbf{x}_u])` (NSD's O(d) sheaf scales its maps by them).

    Args:
        in_channels: width of :math:`\mathbf{x}_u`.

    Shapes: ``x [N, in_channels]``, ``edge_index [2, E]``, ``rev [E]`` -> ``[E]``.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.linear = nn.Linear(2 * in_channels, 1, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.linear.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, rev: Tensor) -> Tensor:
        _check_inputs(x, self.in_channels, edge_index, "in_channels")
        if rev.shape != (edge_index.size(1),):
            raise ValueError(f"rev must have shape [E] = [{edge_index.size(1)}] (the reverse of each edge, "
                             f"SheafGraph.rev), got {tuple(rev.shape)}")
        half = torch.sigmoid(concat_linear(self.linear.weight, x, edge_index)).squeeze(-1)
        return half * _take(half, rev)


class FixedRestrictionMaps(nn.Module):
    r"""User-supplied restriction maps :math:`\mathcal{F}_{u \trianglelefteq e}` (a sheaf given a priori, as in
    Hansen & Gebhart 2020), one per directed edge of ``edge_index``, stored as a buffer.

    Args:
        maps: ``[E, d, d]`` or ``[E, d]`` (diagonal maps), in the order of ``edge_index``.
        edge_index: ``[2, E]`` the maps belong to.

    Shapes: ``forward(x, edge_index)`` returns the maps reordered to ``edge_index`` (which must hold the
    same edges, in any order).
    """

    def __init__(self, maps: Tensor, edge_index: Tensor) -> None:
        super().__init__()
        if maps.size(0) != edge_index.size(1):
            raise ValueError(f"got {maps.size(0)} maps for {edge_index.size(1)} edges; give one map per directed edge")
        self.register_buffer("maps", maps.detach().clone())
        self.register_buffer("edge_index", edge_index.clone())

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        if torch.equal(edge_index, self.edge_index):
            return self.maps.to(x.dtype)
        n = int(torch.cat([edge_index, self.edge_index], 1).max()) + 1
        own = self.edge_index[0] * n + self.edge_index[1]
        order = torch.argsort(own)
        want = edge_index[0] * n + edge_index[1]
        pos = torch.searchsorted(own[order], want).clamp_max(own.numel() - 1)
        if not bool((own[order][pos] == want).all()):
            raise ValueError("edge_index has edges without a fixed restriction map; pass the graph the maps were built for")
        return self.maps[order[pos]].to(x.dtype)


class SheafLaplacianLearner(nn.Module):
    r"""Learns restriction maps from node features and builds the normalised sheaf Laplacian
    :math:`\Delta_{\mathcal{F}(X)}` of NSD (Bodnar et al. 2022, Sec. 4-5).

    Args:
        sheaf_type: ``"diag"`` (diagonal maps), ``"bundle"`` (O(d) maps times learned edge weights) or
            ``"general"`` (``d x d`` maps).
        d: learned stalk dimension.
        hidden_channels: channels ``F`` per stalk dimension of the input cochain.
        add_lp, add_hp: append NSD's fixed stalk dimensions (:func:`append_fixed_dims`).
        normalisation: ``"augmented"`` (NSD default), ``"degree"`` or ``"none"``.
        sparse_learner: use :class:`LocalConcatSheafLearnerVariant` instead of :class:`LocalConcatSheafLearner`.
        sheaf_act: activation of the map learner.
        orth_map: O(d) parametrisation for ``"bundle"``.
        edge_weights: learn :class:`EdgeWeightLearner` weights for ``"bundle"``.

    Shapes: ``x [N, d + add_lp + add_hp, F]``, a :class:`SheafGraph` -> :class:`SheafLaplacian` with stalk
    dimension ``d + add_lp + add_hp``.
    """

    def __init__(self, sheaf_type: SheafType, d: int, hidden_channels: int, add_lp: bool = False,
                 add_hp: bool = False, normalisation: Normalisation = "augmented", sparse_learner: bool = False,
                 sheaf_act: SheafAct = "tanh", orth_map: OrthMap = "householder", edge_weights: bool = True) -> None:
        super().__init__()
        if sheaf_type not in ("diag", "bundle", "general"):
            raise ValueError(f"sheaf_type must be 'diag', 'bundle' or 'general', got {sheaf_type!r}")
        if sheaf_type != "diag" and d < 2:
            raise ValueError(f"sheaf_type={sheaf_type!r} needs d >= 2 (got d={d}); use sheaf_type='diag' for d=1")
        _check_normalisation(normalisation)
        self.sheaf_type, self.d, self.add_lp, self.add_hp = sheaf_type, d, add_lp, add_hp
        self.normalisation = normalisation
        self.final_d = d + int(add_lp) + int(add_hp)
        self.orthogonal = Orthogonal(d, orth_map) if sheaf_type == "bundle" else None
        out_shape = {"diag": (d,), "general": (d, d)}.get(sheaf_type, (self.orthogonal.num_params if self.orthogonal else 0,))
        self.map_learner = (LocalConcatSheafLearnerVariant(self.final_d, hidden_channels, out_shape, sheaf_act)
                            if sparse_learner else
                            LocalConcatSheafLearner(self.final_d * hidden_channels, out_shape, sheaf_act))
        self.weight_learner = (EdgeWeightLearner(self.final_d * hidden_channels)
                               if sheaf_type == "bundle" and edge_weights else None)

    def reset_parameters(self) -> None:
        self.map_learner.reset_parameters()
        if self.weight_learner is not None:
            self.weight_learner.reset_parameters()

    def forward(self, x: Tensor, graph: SheafGraph) -> SheafLaplacian:
        if x.dim() != 3 or x.shape[1] != self.final_d or x.size(0) != graph.num_nodes:
            raise ValueError(f"x must be a cochain [N, d + add_lp + add_hp, F] = [{graph.num_nodes}, {self.final_d}, F] "
                             f"on the graph's N nodes, got {tuple(x.shape)}")
        flat = x.reshape(x.size(0), -1)
        maps = self.map_learner(flat, graph.edge_index)
        if self.sheaf_type == "diag":
            diag, off = diag_sheaf_laplacian(maps, graph, self.normalisation)
        elif self.sheaf_type == "general":
            diag, off = general_sheaf_laplacian(maps, graph, self.normalisation)
        else:
            weights = self.weight_learner(flat, graph.edge_index, graph.rev) if self.weight_learner else None
            # orthogonal (Orthogonal) and symmetric (EdgeWeightLearner) by construction: no per-step value checks
            diag, off = _bundle_blocks(self.orthogonal(maps), graph, weights, self.normalisation)
        diag, off = append_fixed_dims(diag, off, graph, self.add_lp, self.add_hp, self.normalisation)
        return SheafLaplacian(diag, off, graph)

    def extra_repr(self) -> str:
        return f"sheaf_type={self.sheaf_type!r}, d={self.d}, final_d={self.final_d}, normalisation={self.normalisation!r}"
