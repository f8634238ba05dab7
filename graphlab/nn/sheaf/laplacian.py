r"""Sheaf Laplacians in block form: the diagonal, O(d) (bundle), general and connection builders, NSD's fixed
stalk dimensions, and :class:`SheafLaplacian` (applied with :func:`graphlab.ops.block_spmm`).

Blocks: :math:`L_{\mathcal{F}, uu} = \sum_{e \ni u} \mathcal{F}_{u \trianglelefteq e}^\top
\mathcal{F}_{u \trianglelefteq e}`, :math:`L_{\mathcal{F}, uv} = -\mathcal{F}_{u \trianglelefteq e}^\top
\mathcal{F}_{v \trianglelefteq e}`; normalised :math:`\Delta_{\mathcal{F}} = \tilde D^{-1/2} L_{\mathcal{F}}
\tilde D^{-1/2}`, :math:`\tilde D = D + I` (``"augmented"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
from torch import Tensor

from graphlab.nn.sheaf.graph import SheafGraph, _gather_sum, _take
from graphlab.ops import block_spmm, spd_inv_sqrt, validation_enabled

Normalisation = Literal["augmented", "degree", "none"]

__all__ = ["Normalisation", "SheafLaplacian", "diag_sheaf_laplacian", "bundle_sheaf_laplacian",
           "general_sheaf_laplacian", "connection_sheaf_laplacian", "append_fixed_dims"]


@dataclass(eq=False)
class SheafLaplacian:
    """A sheaf Laplacian in block form: ``diag`` ``[N, d]``/``[N, d, d]`` and ``off`` ``[E, d]``/``[E, d, d]``
    (one block per directed edge of ``graph``), applied with :func:`~graphlab.ops.sheaf.block_spmm`."""

    diag: Tensor
    off: Tensor
    graph: SheafGraph

    @property
    def d(self) -> int:
        return self.diag.size(1)

    def matmul(self, x: Tensor) -> Tensor:
        """``Delta x`` for a cochain ``x`` ``[N, d, F]``."""
        return block_spmm(self.diag, self.off, self.graph.index, x)

    def to_dense(self) -> Tensor:
        """The ``[N d, N d]`` matrix (for tests and inspection)."""
        n, d = self.graph.num_nodes, self.diag.size(1)
        diag = torch.diag_embed(self.diag) if self.diag.dim() == 2 else self.diag
        off = torch.diag_embed(self.off) if self.off.dim() == 2 else self.off
        dense = diag.new_zeros(n, d, n, d)
        nodes = torch.arange(n, device=diag.device)
        dense[nodes, :, nodes, :] = diag
        dense[self.graph.row, :, self.graph.col, :] = off
        return dense.reshape(n * d, n * d)


def _scale_pair(off: Tensor, scale: Tensor, graph: SheafGraph) -> Tensor:
    """``s_u * L_uv * s_v`` for per-node scalars or per-stalk vectors ``scale`` ``[N]``/``[N, d]``."""
    left, right = _take(scale, graph.row), _take(scale, graph.col)
    if off.dim() == 3 and scale.dim() == 1:
        return off * (left * right).view(-1, 1, 1)
    if scale.dim() == 1:
        return off * (left * right).unsqueeze(-1)
    return left * off * right


def _check_normalisation(normalisation: str) -> None:
    if normalisation not in ("augmented", "degree", "none"):
        raise ValueError(f"normalisation must be 'augmented', 'degree' or 'none', got {normalisation!r}")


def _tolerance(t: Tensor) -> float:
    """Rounding tolerance of an identity that holds exactly in exact arithmetic: ``sqrt(eps)`` of ``t``'s dtype."""
    return torch.finfo(t.dtype).eps ** 0.5


def _check_edge_blocks(name: str, blocks: Tensor, graph: SheafGraph, square: bool) -> None:
    """``blocks`` holds one ``[d]`` (``square=False``) or ``[d, d]`` block per directed edge of ``graph``."""
    want = "[E, d, d]" if square else "[E, d]"
    num_edges = graph.edge_index.size(1)
    if not isinstance(blocks, Tensor) or not blocks.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor {want}, got {type(blocks).__name__}"
                         f"{'' if not isinstance(blocks, Tensor) else ' of dtype ' + str(blocks.dtype)}")
    if blocks.dim() != (3 if square else 2) or (square and blocks.size(1) != blocks.size(2)):
        raise ValueError(f"{name} must have shape {want}, got {tuple(blocks.shape)}")
    if blocks.size(0) != num_edges:
        raise ValueError(f"{name} has {blocks.size(0)} blocks but the graph has E = {num_edges} directed edges; "
                         f"give one block per edge of graph.edge_index (both directions, in its sorted order)")


def _check_orthogonal(name: str, transports: Tensor) -> None:
    if not validation_enabled() or transports.numel() == 0:
        return
    eye = torch.eye(transports.size(-1), dtype=transports.dtype, device=transports.device)
    error = float((transports.detach().transpose(1, 2) @ transports.detach() - eye).abs().amax())
    if not error <= _tolerance(transports):
        raise ValueError(f"{name} must be orthogonal (max |O^T O - I| = {error:.3g}); build them with "
                         f"graphlab.nn.sheaf.Orthogonal, or use general_sheaf_laplacian for arbitrary maps")


def _check_symmetric_pairs(name: str, values: Tensor, graph: SheafGraph, transpose: bool, fix: str) -> None:
    """``values[rev[e]]`` equals ``values[e]`` (``transpose``: its transpose) for every edge ``e``."""
    if not validation_enabled() or values.numel() == 0:
        return
    mirrored = _take(values.detach(), graph.rev)
    if transpose:
        mirrored = mirrored.transpose(1, 2)
    error = float((values.detach() - mirrored).abs().amax())
    if not error <= _tolerance(values) * max(float(values.detach().abs().amax()), 1.0):
        bad = int((values.detach() - mirrored).reshape(values.size(0), -1).abs().amax(1).argmax())
        u, v = graph.edge_index[:, bad].tolist()
        raise ValueError(f"{name} of edge ({u}, {v}) and of its reverse ({v}, {u}) differ by {error:.3g}; {fix}")


def diag_sheaf_laplacian(maps: Tensor, graph: SheafGraph, normalisation: Normalisation = "augmented"
                         ) -> tuple[Tensor, Tensor]:
    r"""Laplacian of a sheaf with diagonal maps ``maps`` ``[E, d]`` (one per directed edge):
    :math:`D_u = \sum_{e \ni u} f_{u \trianglelefteq e}^2`, :math:`L_{uv} = -f_{u \trianglelefteq e} \odot
    f_{v \trianglelefteq e}`. ``augmented``: :math:`(D+I)^{-1/2} L (D+I)^{-1/2}`; ``degree``: scaled by
    :math:`(\deg + 1)^{-1/2}` on both sides. Returns ``(diag [N, d], off [E, d])``."""
    _check_normalisation(normalisation)
    _check_edge_blocks("maps", maps, graph, square=False)
    diag = _gather_sum(maps * maps, graph.row, graph.num_nodes)
    off = -maps * _take(maps, graph.rev)
    if normalisation == "augmented":
        scale = (diag + 1).rsqrt()  # [N, d]: one normaliser per stalk dimension
    elif normalisation == "degree":
        scale = (graph.deg(maps.dtype) + 1).rsqrt().unsqueeze(-1)  # [N, 1]
    else:
        return diag, off
    return diag * scale * scale, _scale_pair(off, scale, graph)


def bundle_sheaf_laplacian(transports: Tensor, graph: SheafGraph, edge_weights: Optional[Tensor] = None,
                           normalisation: Normalisation = "augmented") -> tuple[Tensor, Tensor]:
    r"""Laplacian of an O(d) (vector-bundle) sheaf with maps :math:`\mathcal{F}_{u \trianglelefteq e} = w_e O_{u
    \trianglelefteq e}`: :math:`D_u = (\sum_{e \ni u} w_e^2) I`, :math:`L_{uv} = -w_e^2 O_{u \trianglelefteq
    e}^\top O_{v \trianglelefteq e}`. The normaliser is a scalar per node. ``transports`` ``[E, d, d]``
    orthogonal, ``edge_weights`` ``[E]`` symmetric or None (all ones). Returns ``(diag [N, d], off [E, d, d])``.

    Raises:
        ValueError: wrong shapes, ``transports`` not orthogonal, or ``edge_weights`` not symmetric
            (:math:`w_{(u,v)} \ne w_{(v,u)}`: the Laplacian would not be symmetric); with
            :func:`graphlab.ops.set_validation` off, only the shapes are checked.
    """
    _check_normalisation(normalisation)
    _check_edge_blocks("transports", transports, graph, square=True)
    _check_orthogonal("transports", transports)
    if edge_weights is not None:
        if not isinstance(edge_weights, Tensor) or edge_weights.shape != (graph.edge_index.size(1),):
            shape = tuple(edge_weights.shape) if isinstance(edge_weights, Tensor) else type(edge_weights).__name__
            raise ValueError(f"edge_weights must have shape [E] = [{graph.edge_index.size(1)}], got {shape}")
        _check_symmetric_pairs("edge_weights", edge_weights, graph, transpose=False,
                               fix="give one weight per undirected edge, e.g. w * w[graph.rev] or "
                                   "0.5 * (w + w[graph.rev]) (EdgeWeightLearner does the former)")
    return _bundle_blocks(transports, graph, edge_weights, normalisation)


def _bundle_blocks(transports: Tensor, graph: SheafGraph, edge_weights: Optional[Tensor],
                   normalisation: Normalisation) -> tuple[Tensor, Tensor]:
    """:func:`bundle_sheaf_laplacian` without its checks, for callers whose transports are orthogonal and weights
    symmetric by construction (:class:`~graphlab.nn.sheaf.SheafLaplacianLearner`): the value checks cost a batched
    ``O^T O`` and host syncs on every call."""
    d = transports.size(-1)
    w2 = edge_weights * edge_weights if edge_weights is not None else transports.new_ones(transports.size(0))
    diag = _gather_sum(w2, graph.row, graph.num_nodes)
    off = -w2.view(-1, 1, 1) * (transports.transpose(1, 2) @ _take(transports, graph.rev))
    if normalisation == "augmented":
        scale = (diag + 1).rsqrt()
    elif normalisation == "degree":
        scale = (graph.deg(transports.dtype) + 1).rsqrt()
    else:
        return diag.unsqueeze(-1).expand(-1, d), off
    return (diag * scale * scale).unsqueeze(-1).expand(-1, d), _scale_pair(off, scale, graph)


def general_sheaf_laplacian(maps: Tensor, graph: SheafGraph, normalisation: Normalisation = "augmented"
                            ) -> tuple[Tensor, Tensor]:
    r"""Laplacian of a sheaf with general maps ``maps`` ``[E, d, d]``: :math:`D_u = \sum_{e \ni u}
    \mathcal{F}_{u \trianglelefteq e}^\top \mathcal{F}_{u \trianglelefteq e}`, :math:`L_{uv} =
    -\mathcal{F}_{u \trianglelefteq e}^\top \mathcal{F}_{v \trianglelefteq e}`. ``augmented`` uses the block
    normaliser :math:`(D_u + I)^{-1/2}` from :func:`spd_inv_sqrt` (finite gradients without noise);
    ``degree`` the scalar :math:`(d \deg + 1)^{-1/2}`. Returns ``(diag [N, d, d], off [E, d, d])``."""
    _check_normalisation(normalisation)
    _check_edge_blocks("maps", maps, graph, square=True)
    d = maps.size(-1)
    maps_t = maps.transpose(1, 2)
    diag = _gather_sum(maps_t @ maps, graph.row, graph.num_nodes)
    if normalisation == "augmented":
        # S_u L_uv S_v = -(F_{u<e} S_u)^T (F_{v<e} S_v): normalise the maps once, then one product per edge
        inv_sqrt = spd_inv_sqrt(diag + torch.eye(d, dtype=maps.dtype, device=maps.device))
        scaled = maps @ _take(inv_sqrt, graph.row)
        return inv_sqrt @ diag @ inv_sqrt, -(scaled.transpose(1, 2) @ _take(scaled, graph.rev))
    off = -(maps_t @ _take(maps, graph.rev))
    if normalisation == "degree":
        scale = (graph.deg(maps.dtype) * d + 1).rsqrt()
        return diag * (scale * scale).view(-1, 1, 1), _scale_pair(off, scale, graph)
    return diag, off


def connection_sheaf_laplacian(transports: Tensor, graph: SheafGraph,
                               normalisation: Normalisation = "augmented") -> tuple[Tensor, Tensor]:
    r"""Connection Laplacian of fixed transports :math:`O_{uv}` ``[E, d, d]`` (:math:`O_{vu} = O_{uv}^\top`):
    :math:`L_{uu} = \deg(u) I`, :math:`L_{uv} = -O_{uv}` (Barbero et al. 2022); normalised like
    :func:`bundle_sheaf_laplacian`. Returns ``(diag [N, d], off [E, d, d])``.

    Raises:
        ValueError: wrong shapes, ``transports`` not orthogonal or :math:`O_{vu} \ne O_{uv}^\top` (checks of the
            values are skipped with :func:`graphlab.ops.set_validation` off).
    """
    _check_normalisation(normalisation)
    _check_edge_blocks("transports", transports, graph, square=True)
    _check_orthogonal("transports", transports)
    _check_symmetric_pairs("transports", transports, graph, transpose=True,
                           fix="the transport of (v, u) must be the transpose of the one of (u, v) "
                               "(procrustes_transports builds them so)")
    d = transports.size(-1)
    deg = graph.deg(transports.dtype)
    if normalisation == "none":
        return deg.unsqueeze(-1).expand(-1, d), -transports
    scale = (deg + 1).rsqrt()
    return (deg * scale * scale).unsqueeze(-1).expand(-1, d), _scale_pair(-transports, scale, graph)


def append_fixed_dims(diag: Tensor, off: Tensor, graph: SheafGraph, add_lp: bool, add_hp: bool,
                      normalisation: Normalisation = "augmented") -> tuple[Tensor, Tensor]:
    r"""Append NSD's fixed stalk dimensions to a Laplacian in block form.

    Each extra dimension has :math:`L_{uu} = \deg(u)` and a constant off-diagonal entry: ``+1`` for
    ``add_lp`` (restriction maps of opposite sign, the signless Laplacian :math:`D + A`) and ``-1`` for
    ``add_hp`` (unit maps, the graph Laplacian :math:`D - A`), exactly as the official implementation builds
    them (whose option help strings note that the names are the other way round). Unless ``normalisation`` is
    ``"none"`` they are scaled by :math:`(\deg+1)^{-1/2}` on both sides.
    """
    _check_normalisation(normalisation)
    if diag.size(0) != graph.num_nodes or off.size(0) != graph.edge_index.size(1) or diag.dim() > off.dim():
        raise ValueError(f"diag {tuple(diag.shape)} and off {tuple(off.shape)} must be the blocks of a Laplacian on "
                         f"this graph: diag [N, d] or [N, d, d], off [E, d] or [E, d, d] (not [E, d] with [N, d, d]), N = {graph.num_nodes}, "
                         f"E = {graph.edge_index.size(1)}; pass the output of one of the builders")
    signs = [1.0] * int(add_lp) + [-1.0] * int(add_hp)
    if not signs:
        return diag, off
    deg = graph.deg(off.dtype)
    fixed_diag = deg.unsqueeze(-1).expand(-1, len(signs))
    fixed_off = off.new_tensor(signs).expand(off.size(0), -1)
    if normalisation != "none":
        scale = (deg + 1).rsqrt()
        fixed_diag = fixed_diag * (scale * scale).unsqueeze(-1)
        fixed_off = _scale_pair(fixed_off, scale, graph)
    return _block_concat(diag, fixed_diag), _block_concat(off, fixed_off)


def _block_concat(blocks: Tensor, extra: Tensor) -> Tensor:
    """Block-diagonal concatenation of ``blocks`` (``[M, d]`` or ``[M, d, d]``) with diagonal ``extra`` ``[M, k]``."""
    if blocks.dim() == 2:
        return torch.cat([blocks, extra], dim=1)
    d, k = blocks.size(-1), extra.size(-1)
    out = blocks.new_zeros(blocks.size(0), d + k, d + k)
    out[:, :d, :d] = blocks
    out[:, d:, d:] = torch.diag_embed(extra)
    return out
