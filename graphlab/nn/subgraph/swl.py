r"""Node-based subgraph GNNs on pair tensors: the engine entry point and the layers.

The state of a node-based subgraph GNN is :math:`h(u, v)`, node :math:`v` in the subgraph of root :math:`u`. For a
PyG ``Batch`` preprocessed with :class:`graphlab.transforms.SubgraphPairs` it is one ``[R, F]`` tensor,
:math:`R = \sum_g n_g^2`, in the row order of :func:`graphlab.ops.pairs.pair_index`. Build the index once per
batch with :func:`pair_index_from_batch`; every atom and layer below reads it.

Layers (all take ``(h, index, edge_attr=None)`` and return ``[R, F_out]``):

* :class:`SSWLPlusConv` (Zhang et al., ICML 2023): :math:`h \leftarrow \mathrm{ReLU}(\mathrm{BN}(\sum_{a}
  \mathrm{MLP}_a((1 + \epsilon_a) h + \mathrm{AGG}_a(h))))` over a set of atoms: ``("uL", "vL")`` is SSWL,
  ``("uL", "vL", "vv")`` GNN-SSWL+, ``("uL",)`` SWL, ``("uL", "vv")`` PSWL.
* :class:`DSConv` (Bevilacqua et al., ICLR 2022, DS-GNN): a GIN layer run on every subgraph independently,
  :math:`h(u, v) \leftarrow \mathrm{ReLU}(\mathrm{BN}(\mathrm{MLP}((1+\epsilon) h(u, v) + \sum_{w \in N_u(v)}
  h(u, w))))`.
* :class:`DSSConv` (DSS-GNN): the same plus a GIN on the original graph over the cross-subgraph mean
  :math:`\bar h(v) = \frac{1}{n} \sum_{u'} h(u', v)`, added after its own BN.

Readout (:func:`subgraph_readout`): pool over :math:`v` inside each subgraph, then over the subgraphs :math:`u`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphlab.nn.norm import batch_norm_relu, batch_norm_rows
from graphlab.ops import (
    PairIndex,
    check_edge_attr_rows,
    column_sum,
    edge_deleted_index,
    gather_reduce,
    pair_atom,
    pair_index,
    pool_pairs,
    segment_reduce,
    to_csr,
)

ATOMS = ("uv", "vu", "uu", "vv", "uL", "vL", "uG", "vG")  # graphlab.ops.pair_atom's names

LOCAL_ATOMS = ("uL", "vL")


def pair_index_from_batch(
    edge_index: Tensor,
    ptr: Tensor,
    pair_mask: Tensor | None = None,
    deleted_edge_index: Tensor | None = None,
    *,
    validate: bool = True,
) -> PairIndex:
    """The :class:`~graphlab.ops.pairs.PairIndex` of a batch: ``edge_index`` [2, E] (sources, targets) and
    ``ptr`` [B+1] of a PyG ``Batch`` (``Batch.ptr``), ``pair_mask`` from :class:`~graphlab.transforms.SubgraphPairs`
    (``batch.pair_mask`` for the ego and node-deletion policies), or ``deleted_edge_index`` for edge deletion (one
    subgraph per edge, :func:`graphlab.ops.edge_deleted_index`)."""
    if pair_mask is not None and deleted_edge_index is not None:
        raise ValueError("pass pair_mask (node-based policies) or deleted_edge_index (edge deletion), not both")
    num_nodes = int(ptr[-1])
    csr = to_csr(edge_index, num_nodes, validate=validate)
    if deleted_edge_index is not None:
        return edge_deleted_index(ptr, csr.rowptr, csr.col, csr.perm, deleted_edge_index, validate=validate)
    return pair_index(ptr, csr.rowptr, csr.col, csr.perm, pair_mask, validate=validate)


def batch_pair_index(batch: Any, *, validate: bool = True) -> PairIndex:
    """:func:`pair_index_from_batch` of a PyG ``Batch`` preprocessed by :class:`~graphlab.transforms.SubgraphPairs`
    (reads ``edge_index``, ``ptr`` and ``pair_mask`` / ``deleted_edge_index`` when present)."""
    ptr = getattr(batch, "ptr", None)
    if ptr is None:
        ptr = torch.tensor([0, int(batch.num_nodes)], device=batch.edge_index.device)
    return pair_index_from_batch(batch.edge_index, ptr, getattr(batch, "pair_mask", None),
                                 getattr(batch, "deleted_edge_index", None), validate=validate)


def subgraph_readout(h: Tensor, index: PairIndex, reduce: Literal["sum", "mean"] = "mean") -> Tensor:
    r"""Graph embedding ``[B, F]``: :math:`\bigoplus_u \bigoplus_v h(u, v)` (pool over :math:`v` then :math:`u`)."""
    return pool_pairs(h, index, reduce)[1]


def mlp(in_channels: int, out_channels: int) -> nn.Sequential:
    """Linear-BN-ReLU-Linear, the MLP of SWL's aggregation and of GIN, without the two linear biases: the first
    feeds a BatchNorm and every MLP of this module feeds another BatchNorm (the layer's), whose mean subtraction
    cancels a constant shift exactly, in training and in eval mode; dropping them changes no output."""
    return nn.Sequential(nn.Linear(in_channels, out_channels, bias=False), nn.BatchNorm1d(out_channels), nn.ReLU(),
                         nn.Linear(out_channels, out_channels, bias=False))


def _check_layer_input(layer: nn.Module, h: Tensor, index: PairIndex, edge_attr: Tensor | None) -> None:
    name = layer.__class__.__name__
    if h.dim() != 2 or h.size(1) != layer.in_channels:
        raise ValueError(f"{name} expects h of shape [R, {layer.in_channels}], got {tuple(h.shape)}")
    if h.size(0) != index.num_pairs:
        raise ValueError(f"{name}: h has {h.size(0)} rows but the batch has {index.num_pairs} pair rows")
    if layer.edge_dim is not None and edge_attr is None:
        raise ValueError(f"{name} was built with edge_dim={layer.edge_dim}; pass edge_attr")
    if layer.edge_dim is None and edge_attr is not None:
        raise ValueError(f"{name} was built without edge features (edge_dim=None) but got edge_attr; set edge_dim "
                         f"to use them or do not pass edge_attr")
    if layer.edge_dim is not None and (edge_attr.dim() != 2 or edge_attr.size(1) != layer.edge_dim):
        raise ValueError(f"{name} expects edge_attr of shape [E, {layer.edge_dim}], got {tuple(edge_attr.shape)}")
    if edge_attr is not None:
        check_edge_attr_rows(edge_attr, index)


def reset_children(module: nn.Module) -> None:
    """``reset_parameters()`` of every submodule of ``module`` that has one (not of ``module`` itself)."""
    for child in module.modules():
        if child is not module and hasattr(child, "reset_parameters"):
            child.reset_parameters()


class _AddScaled(torch.autograd.Function):
    r"""In place :math:`z \mathrel{+}= (1 + \epsilon) p` (the GIN term of :class:`SSWLPlusConv`), with the
    :math:`\epsilon` gradient :math:`\langle g, p \rangle` taken as one dot product. ``torch.addcmul_`` with a
    0-dim :math:`1 + \epsilon` computes it as two ``[R, F]`` products and a sum."""

    @staticmethod
    def forward(ctx: Any, z: Tensor, p: Tensor, eps: Tensor) -> Tensor:
        ctx.save_for_backward(p, eps)
        ctx.mark_dirty(z)
        return z.addcmul_(p, 1 + eps)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        p, eps = ctx.saved_tensors
        d_p = grad * (1 + eps) if ctx.needs_input_grad[1] else None
        d_eps = torch.dot(grad.reshape(-1), p.reshape(-1)).to(eps.dtype) if ctx.needs_input_grad[2] else None
        return grad, d_p, d_eps


class SSWLPlusConv(nn.Module):
    r"""One aggregation layer of the SWL family (Zhang et al., "A Complete Expressiveness Hierarchy for Subgraph
    GNNs via Subgraph Weisfeiler-Lehman Tests", ICML 2023).

    .. math::
        h \leftarrow \mathrm{ReLU}\Big(\mathrm{BN}\Big(\sum_{a \in \mathcal{A}} \mathrm{MLP}_a\big((1 + \epsilon_a)
        \, h + \mathrm{AGG}_a(h)\big)\Big)\Big)

    with :math:`\mathrm{AGG}_a` an atom of :func:`graphlab.ops.pairs.pair_atom`; for a local atom with edge
    features, :math:`\mathrm{AGG}_a(h)(u, v) = \sum_{w} (h(u, w) + W_a e_{wv})` (``edge_mode="add"``, fused) or
    :math:`\sum_{w} \mathrm{ReLU}(h(u, w) + W_a e_{wv})` (``edge_mode="gine"``, the official code's form, which
    applies the ReLU also without edge features). With ``gin=False`` the :math:`(1 + \epsilon_a) h` term is dropped
    (the official code's last, pooling layer: e.g. SWL(VS) ends with ``atoms=("uG",)``, SWL(SV) with ``("vG",)``).

    Args:
        in_channels: input features :math:`F_{in}`.
        out_channels: output features :math:`F_{out}`.
        atoms: the atom set :math:`\mathcal{A}`; ``("uL", "vL", "vv")`` is GNN-SSWL+ (default), ``("uL", "vL")``
            SSWL, ``("uL",)`` SWL(VS/SV), ``("uL", "vv")`` PSWL.
        edge_dim: features of ``edge_attr``; ``None`` for no edge features.
        train_eps: learn :math:`\epsilon_a` (initialised at 0), else fixed at 0.
        edge_mode: ``"add"`` or ``"gine"`` (above).
        gin: keep the :math:`(1 + \epsilon_a) h` term (default); ``False`` for a pure aggregation layer.

    Shapes: ``h`` [R, F_in], ``edge_attr`` [E, edge_dim] in the batch's edge order → [R, F_out].

    Computation: every atom is linear in :math:`h` (with ``edge_mode="add"``), so each MLP's first linear map is
    applied before the atom, :math:`W_1^a \mathrm{AGG}_a(h) = \mathrm{AGG}_a(h W_1^{a\top})`; the edge vectors are
    mapped by :math:`W_1^a W_a` at edge level (``E`` rows), the GIN term is added in place to the atom's output, and
    :math:`\sum_a W_2^a \mathrm{ReLU}(\mathrm{BN}_a(\cdot))` accumulates through
    :func:`graphlab.nn.norm.batch_norm_relu`, which keeps only each BN input for backward (the ReLU output is
    recomputed). A pooling layer (``gin=False`` and one global atom, ``uG`` or ``vG``) runs on the pooled rows and
    broadcasts at the end (:meth:`_global_forward`). The MLPs' linear biases are omitted: each feeds a BatchNorm,
    which cancels a constant shift (:func:`mlp`). ``edge_mode="gine"`` takes the direct route. Parameters and
    ``state_dict`` keys are those of the plain modules (``mlps.<atom>.{0,1,3}``, ``norm``), which
    ``tests/nn/test_norm.py`` checks the layer against in training and eval mode.
    """

    def __init__(self, in_channels: int, out_channels: int, atoms: Sequence[str] = ("uL", "vL", "vv"),
                 edge_dim: int | None = None, train_eps: bool = True,
                 edge_mode: Literal["add", "gine"] = "add", gin: bool = True) -> None:
        super().__init__()
        atoms = tuple(atoms)
        bad = [a for a in atoms if a not in ATOMS or a == "uv"]
        if not atoms or bad or len(set(atoms)) != len(atoms):
            raise ValueError(f"atoms must be distinct names from {', '.join(a for a in ATOMS if a != 'uv')}, "
                             f"got {atoms}")
        if edge_mode not in ("add", "gine"):
            raise ValueError(f"edge_mode must be 'add' or 'gine', got {edge_mode!r}")
        self.in_channels, self.out_channels, self.atoms = in_channels, out_channels, atoms
        self.edge_dim, self.train_eps, self.edge_mode, self.gin = edge_dim, train_eps, edge_mode, gin
        self.mlps = nn.ModuleDict({a: mlp(in_channels, out_channels) for a in atoms})
        self.edge_lins = nn.ModuleDict({a: nn.Linear(edge_dim, in_channels) for a in atoms
                                        if a in LOCAL_ATOMS and edge_dim is not None})
        self.eps = nn.Parameter(torch.zeros(len(atoms)), requires_grad=train_eps and gin)
        self.norm = nn.BatchNorm1d(out_channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_children(self.mlps)
        reset_children(self.edge_lins)
        self.norm.reset_parameters()
        with torch.no_grad():
            self.eps.zero_()

    def aggregate(self, h: Tensor, index: PairIndex, atom: str, edge_attr: Tensor | None) -> Tensor:
        edge = self.edge_lins[atom](edge_attr) if atom in self.edge_lins and edge_attr is not None else None
        return pair_atom(h, index, atom, edge, self.edge_mode)

    def forward(self, h: Tensor, index: PairIndex, edge_attr: Tensor | None = None) -> Tensor:
        _check_layer_input(self, h, index, edge_attr)
        if not self.gin and len(self.atoms) == 1 and self.atoms[0] in ("uG", "vG"):
            return self._global_forward(h, index, self.atoms[0])
        out: Tensor | None = None
        for i, a in enumerate(self.atoms):
            z = self._atom_input(h, index, i, a, edge_attr)  # W_1^a((1+eps_a) h + AGG_a(h)), the BN input
            lin2 = self.mlps[a][3]
            # Σ_a W_2^a ReLU(BN(z_a)), accumulated by addmm; ReLU(BN(z_a)) is recomputed in backward, not kept
            out = batch_norm_relu(z, self.mlps[a][1], lin2.weight, out)
            if lin2.bias is not None:
                out = out + lin2.bias
        return batch_norm_relu(out, self.norm)

    def _global_forward(self, h: Tensor, index: PairIndex, atom: str) -> Tensor:
        r"""A pooling layer (``gin=False``, one global atom): :math:`\mathrm{uG}(h)(u, v) = \sum_w h(u, w)` is the
        same for every :math:`v` (``vG``: for every :math:`u`), and so is everything after it, row by row. The layer
        runs on the :math:`S` pooled rows (one per subgraph, or per node), each standing for its ``counts`` pair
        rows in the BatchNorm statistics (:func:`graphlab.nn.norm.batch_norm_rows`), and is broadcast at the end:
        the same output as on the :math:`R` rows, with :math:`S \ll R` rows of dense work."""
        if atom == "uG":
            pooled, rows = segment_reduce(h, index.root_ptr, "sum", validate=False), index.root
        else:
            pooled, rows = column_sum(h, index), index.node
        counts = torch.bincount(rows, minlength=pooled.size(0))
        lin1, norm, lin2 = self.mlps[atom][0], self.mlps[atom][1], self.mlps[atom][3]
        hidden = torch.relu(batch_norm_rows(lin1(pooled), counts, norm))
        return torch.relu(batch_norm_rows(lin2(hidden), counts, self.norm)).index_select(0, rows)

    def _atom_input(self, h: Tensor, index: PairIndex, i: int, atom: str, edge_attr: Tensor | None) -> Tensor:
        r"""The input of :math:`\mathrm{MLP}_a`'s BatchNorm, :math:`W_1((1+\epsilon_a) h + \mathrm{AGG}_a(h))`.
        Every atom is linear in :math:`h` (``edge_mode="add"``), so the first linear map is applied before
        aggregating, :math:`W_1 \mathrm{AGG}_a(h) = \mathrm{AGG}_a(h W_1^\top)`, and the edge vectors are mapped at
        edge level (:math:`E` rows, not one per pair-CSR entry); the GIN term is added in place to the atom's
        fresh output (one ``addcmul_``, no further ``[R, F]`` tensor). The GINE form is not linear and takes the
        direct route."""
        lin1 = self.mlps[atom][0]
        if self.edge_mode == "gine" and atom in LOCAL_ATOMS:
            y = self.aggregate(h, index, atom, edge_attr)  # a fresh [R, F] tensor
            return lin1(_AddScaled.apply(y, h, self.eps[i]) if self.gin else y)
        p = F.linear(h, lin1.weight)
        edge = None
        if atom in self.edge_lins and edge_attr is not None:
            edge = F.linear(self.edge_lins[atom](edge_attr), lin1.weight)
        z = pair_atom(p, index, atom, edge, "add")  # a fresh [R, F] tensor ("uv", which returns p, is no atom here)
        if self.gin:
            z = _AddScaled.apply(z, p, self.eps[i])
        if lin1.bias is not None:
            z = z.add_(lin1.bias)
        return z

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, atoms={self.atoms}, "
                f"edge_dim={self.edge_dim})")


class DSConv(SSWLPlusConv):
    r"""DS-GNN layer (Bevilacqua et al., "Equivariant Subgraph Aggregation Networks", ICLR 2022): one GIN layer
    shared by all subgraphs, each subgraph on its own (policy-restricted) edges.

    .. math::
        h(u, v) \leftarrow \mathrm{ReLU}\Big(\mathrm{BN}\Big(\mathrm{MLP}\big((1+\epsilon) h(u, v) +
        \sum_{w \in N_u(v)} h(u, w)\big)\Big)\Big)

    Args: as :class:`SSWLPlusConv` without ``atoms`` (fixed to ``("uL",)``).
    """

    def __init__(self, in_channels: int, out_channels: int, edge_dim: int | None = None,
                 train_eps: bool = True, edge_mode: Literal["add", "gine"] = "add") -> None:
        super().__init__(in_channels, out_channels, ("uL",), edge_dim, train_eps, edge_mode)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, edge_dim={self.edge_dim})"


class DSSConv(nn.Module):
    r"""DSS-GNN layer (Bevilacqua et al., ICLR 2022): a GIN inside every subgraph plus a GIN on the original graph
    over the mean of each node across subgraphs.

    .. math::
        h(u, v) \leftarrow \mathrm{ReLU}\Big(\mathrm{BN}_1\big(\mathrm{GIN}_1(h(u, \cdot), E_u)(v)\big) +
        \mathrm{BN}_2\big(\mathrm{GIN}_2(\bar h, E)(v)\big)\Big), \qquad
        \bar h(v) = \frac{1}{|S|} \sum_{u'} h(u', v)

    (the mean over the :math:`|S|` subgraphs: :math:`n` for node-based policies, :math:`m` for edge deletion), with :math:`\mathrm{GIN}(x, E)(v) = \mathrm{MLP}((1+\epsilon) x(v) + \sum_{w \in N_E(v)} x(w))`; the first
    acts on the pair rows with the uL atom (edges :math:`E_u` of subgraph :math:`u`), the second on the
    ``[N, F]`` node means with the graph's CSR, broadcast back to every subgraph.

    Args:
        in_channels, out_channels: :math:`F_{in}`, :math:`F_{out}`.
        edge_dim: features of ``edge_attr`` (added to the messages of both GINs), ``None`` for none.
        train_eps: learn :math:`\epsilon_1, \epsilon_2`.

    Shapes: ``h`` [R, F_in], ``edge_attr`` [E, edge_dim] → [R, F_out].
    """

    def __init__(self, in_channels: int, out_channels: int, edge_dim: int | None = None,
                 train_eps: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.edge_dim = in_channels, out_channels, edge_dim
        self.mlp_sub, self.mlp_graph = mlp(in_channels, out_channels), mlp(in_channels, out_channels)
        self.norm_sub, self.norm_graph = nn.BatchNorm1d(out_channels), nn.BatchNorm1d(out_channels)
        self.edge_sub = nn.Linear(edge_dim, in_channels) if edge_dim is not None else None
        self.edge_graph = nn.Linear(edge_dim, in_channels) if edge_dim is not None else None
        self.eps = nn.Parameter(torch.zeros(2), requires_grad=train_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in (self.mlp_sub, self.mlp_graph, self.norm_sub, self.norm_graph, self.edge_sub, self.edge_graph):
            if m is not None:
                reset_children(m) if isinstance(m, nn.Sequential) else m.reset_parameters()
        with torch.no_grad():
            self.eps.zero_()

    def forward(self, h: Tensor, index: PairIndex, edge_attr: Tensor | None = None) -> Tensor:
        _check_layer_input(self, h, index, edge_attr)
        e_sub = None if self.edge_sub is None else self.edge_sub(edge_attr)
        sub = self.mlp_sub((1 + self.eps[0]) * h + pair_atom(h, index, "uL", e_sub))
        subs_of_node = torch.repeat_interleave(index.num_subgraphs, index.num_nodes).to(h.dtype)
        mean = column_sum(h, index) / subs_of_node[:, None]  # \bar h(v), [N, F]
        agg = gather_reduce(mean, index.rowptr, index.col, "sum", validate=False)
        if self.edge_graph is not None:
            agg = agg + gather_reduce(self.edge_graph(edge_attr).to(h.dtype), index.rowptr, index.edge_id,
                                      "sum", validate=False)
        graph = self.mlp_graph((1 + self.eps[1]) * mean + agg)
        return torch.relu(self.norm_sub(sub) + self.norm_graph(graph).index_select(0, index.node))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, edge_dim={self.edge_dim})"


class PairEmbedding(nn.Module):
    r"""Initial pair states of SWL / GNN-SSWL+ (Zhang et al., 2023) and of node marking:

    .. math::
        h^{(0)}(u, v) = x_v + \mathrm{DistEmb}\big(\min(d(u, v), D)\big)
        \;[+\, \mathrm{LabelEmb}(\ell(u, v))]

    with :math:`D` = ``max_dis`` and index :math:`D + 1` for unreachable pairs (``pair_dis`` of
    :class:`graphlab.transforms.SubgraphPairs`); distance 0 marks the root, so this subsumes node marking.

    Args:
        channels: :math:`F`, the width of the (already encoded) node features ``x``.
        max_dis: :math:`D`, the ``max_dis`` the transform used (``max_dis + 2`` embeddings).
        num_labels: size of the label embedding for ``pair_label`` (2 for node marking / EGO+), 0 for none.

    Shapes: ``x`` [N, F], ``pair_dis`` [R] long (``None`` for edge-deleted subgraphs: then :math:`h^{(0)} = x_v`),
    ``pair_label`` [R] → [R, F].
    """

    def __init__(self, channels: int, max_dis: int = 5, num_labels: int = 0) -> None:
        super().__init__()
        if max_dis < 1:
            raise ValueError(f"max_dis must be >= 1 (as in SubgraphPairs), got {max_dis}")
        self.channels, self.max_dis, self.num_labels = channels, max_dis, num_labels
        self.dist = nn.Embedding(max_dis + 2, channels)
        self.label = nn.Embedding(num_labels, channels) if num_labels else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.dist.reset_parameters()
        if self.label is not None:
            self.label.reset_parameters()

    def forward(self, x: Tensor, index: PairIndex, pair_dis: Tensor | None = None,
                pair_label: Tensor | None = None) -> Tensor:
        h = x.index_select(0, index.node)
        if pair_dis is not None:
            if pair_dis.shape != (index.num_pairs,):
                raise ValueError(f"pair_dis must be [R] = [{index.num_pairs}], got {tuple(pair_dis.shape)}")
            if pair_dis.numel() and int(pair_dis.max()) > self.max_dis + 1:
                raise ValueError(f"pair_dis has value {int(pair_dis.max())} but PairEmbedding(max_dis="
                                 f"{self.max_dis}) embeds 0..{self.max_dis + 1}; use the max_dis of SubgraphPairs")
            h = h + self.dist(pair_dis)
        if pair_label is not None:
            if self.label is None:
                raise ValueError("pair_label given but PairEmbedding was built with num_labels=0; set num_labels=2")
            h = h + self.label(pair_label)
        return h

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, max_dis={self.max_dis}, num_labels={self.num_labels})"
