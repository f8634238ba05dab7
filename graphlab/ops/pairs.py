r"""Pair tensors of node-based subgraph GNNs: the index structure and the aggregation atoms.

A node-based subgraph GNN keeps one state :math:`h(u, v)` per root :math:`u` and node :math:`v` of a graph. For a
batch of graphs :math:`g` with :math:`n_g` nodes the states are the rows of one ``[R, F]`` tensor,
:math:`R = \sum_g n_g^2`, row-major per graph: pair :math:`(u, v)` of graph :math:`g` (local node numbers) is row

.. math::
    r(g, u, v) = \mathrm{off}_g + u \, n_g + v, \qquad \mathrm{off}_g = \textstyle\sum_{g' < g} n_{g'}^2 .

The aggregation atoms of Zhang et al. (2023), "A Complete Expressiveness Hierarchy for Subgraph GNNs via Subgraph
Weisfeiler-Lehman Tests" (ICML), for the target pair :math:`(u, v)`:

.. math::
    \mathrm{uv}: h(u,v) \quad \mathrm{vu}: h(v,u) \quad \mathrm{uu}: h(u,u) \quad \mathrm{vv}: h(v,v) \\
    \mathrm{uL}: \sum_{w \in N_u(v)} h(u,w) \quad \mathrm{vL}: \sum_{w \in N(u)} h(w,v) \quad
    \mathrm{uG}: \sum_{w} h(u,w) \quad \mathrm{vG}: \sum_{w} h(w,v)

The pointwise atoms are gathers with precomputed rows; the global atoms are segment sums over the rows of one root
(``uG``) or over the rows of the transposed tensor (``vG``), then a broadcast: :math:`O(n^2)` time and memory,
never the :math:`n^3` index triples of the official code. The local atoms are one :func:`graphlab.ops.gather_reduce`
over a *pair CSR*: target row :math:`(u, v)` reads the rows :math:`(u, w)` for the edges :math:`w \to v`
(``uL``) or :math:`(w, v)` for the edges :math:`w \to u` (``vL``). That CSR has :math:`\sum_g n_g E_g` entries
per atom (what the op needs); no ``[entries, F]`` message tensor is created.

**Policies.** A boolean ``pair_mask`` over the rows says which nodes ``v`` belong to subgraph ``u`` (ego net:
:math:`d(u, v) \le k`; node deletion: :math:`v \ne u`). As in ESAN, every subgraph keeps all :math:`n` nodes and the
policy removes edges: edge :math:`(v, w)` is in subgraph :math:`u` iff both ends are, so a pair-CSR entry is kept
iff **both** of its pair rows are in the mask. For ``uL`` this is exactly message passing inside subgraph
:math:`u`; for ``vL`` it keeps :math:`h(w, v)` only when :math:`v` is in subgraph :math:`w` and in subgraph
:math:`u`. The pointwise and global atoms ignore the mask (the nodes outside an ego net are isolated nodes of the
subgraph and are pooled, as in ESAN).

**Edge features.** With ``edge_attr`` ``[E, F]`` the local atoms add the edge's vector to each message,
:math:`\sum_{w} (h(u, w) + e_{wv})`. The sum is linear, so it is computed as a second gather-reduce whose source
table is ``edge_attr`` itself, indexed by the edge id of each pair-CSR entry: still no per-entry message rows.
(The GINE form :math:`\sum_w \mathrm{ReLU}(h(u,w) + e_{wv})` of the official SWL code is not linear and needs
them: :func:`local_atom_gine` does that with a segment sum over materialised messages; without edge features it is
:math:`\sum_w \mathrm{ReLU}(h(u,w))`, one fused gather-reduce of :math:`\mathrm{ReLU}(h)`.)

**Edge direction.** Messages follow PyG's convention, source ``edge_index[0]`` to target ``edge_index[1]``; the
official SWL code reads ``edge_index`` the other way round. Both agree on undirected graphs (every benchmark).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from graphlab.ops.csr import _check_index_tensor, rowptr_from_sorted
from graphlab.ops.gather_reduce import gather_reduce
from graphlab.ops.reference import csr_row_index
from graphlab.ops.segment import segment_reduce

Atom = Literal["uv", "vu", "uu", "vv", "uL", "vL", "uG", "vG"]
ATOMS: tuple[str, ...] = ("uv", "vu", "uu", "vv", "uL", "vL", "uG", "vG")
ROOTED_ATOMS: tuple[str, ...] = ("vu", "uu", "vv", "vL")
EdgeMode = Literal["add", "gine"]
EDGE_MODES: tuple[str, ...] = ("add", "gine")


@dataclass(frozen=True)
class PairCSR:
    """The CSR of one local atom over pair rows: ``col`` the source pair rows, ``edge_id`` the graph edge of each
    entry (an index into ``edge_attr``)."""

    rowptr: Tensor
    col: Tensor
    edge_id: Tensor


@dataclass(frozen=True)
class PairIndex:
    r"""Everything the atoms need for one batch; build it once per batch with :func:`pair_index`.

    Shapes (``B`` graphs, ``N`` = Σ n_g nodes, ``R`` = Σ n_g² pair rows):

    * ``num_nodes`` [B], ``node_ptr`` [B+1], ``pair_ptr`` [B+1] (``off_g``);
    * ``root`` [R], ``node`` [R]: the batch node numbers of :math:`u` and :math:`v` of every row;
    * ``transpose`` [R]: row of :math:`(v, u)`; ``root_diag`` [R]: row of :math:`(u, u)`; ``node_diag`` [R]: row
      of :math:`(v, v)`;
    * ``root_ptr`` [N+1]: the rows of root :math:`u` are ``root_ptr[u] : root_ptr[u+1]``;
    * ``uL``, ``vL``: :class:`PairCSR` of the local atoms (restricted by ``pair_mask`` when given);
    * ``rowptr``, ``col``, ``edge_id``: the node-level CSR of the batch (rows = targets) and the original edge id
      of each entry, for layers that also pass messages on the original graph (DSS-GNN);
    * ``subgraph_ptr`` [B+1]: subgraph offsets per graph (``node_ptr`` here); ``by_node`` [R], ``by_node_ptr``
      [N+1]: the rows sorted by node :math:`v` and their segments (``transpose`` and ``root_ptr`` here).

    :func:`edge_deleted_index` builds the same structure with one subgraph per edge instead of per node
    (``R = Σ m_g n_g``); then ``transpose``, ``root_diag``, ``node_diag`` and ``vL`` are ``None`` and the atoms that
    need a root node (``vu, uu, vv, vL``) raise.
    """

    num_nodes: Tensor
    node_ptr: Tensor
    pair_ptr: Tensor
    root: Tensor
    node: Tensor
    transpose: Tensor | None
    root_diag: Tensor | None
    node_diag: Tensor | None
    root_ptr: Tensor
    uL: PairCSR
    vL: PairCSR | None
    pair_mask: Tensor | None
    rowptr: Tensor
    col: Tensor
    edge_id: Tensor
    subgraph_ptr: Tensor
    by_node: Tensor
    by_node_ptr: Tensor

    @property
    def node_rooted(self) -> bool:
        """One subgraph per node (every atom defined); False for edge-deleted subgraphs."""
        return self.transpose is not None

    @property
    def num_subgraphs(self) -> Tensor:
        """``[B]`` subgraphs per graph (:math:`n_g` for node-based policies)."""
        return self.subgraph_ptr[1:] - self.subgraph_ptr[:-1]

    @property
    def num_pairs(self) -> int:
        return int(self.root.numel())

    @property
    def num_edges(self) -> int:
        """``E``: the edges of the batch (columns of its ``edge_index``), the rows an ``edge_attr`` must have."""
        return int(self.edge_id.numel())


def check_edge_attr_rows(edge_attr: Tensor, index: PairIndex, name: str = "edge_attr") -> None:
    """``edge_attr`` must have one row per edge of the batch: the local atoms index it by edge id without a bounds
    check, so a shorter tensor would be read past its end and a longer one silently misaligned."""
    if edge_attr.size(0) != index.num_edges:
        raise ValueError(f"{name} has {edge_attr.size(0)} rows but the batch has E = {index.num_edges} edges; pass "
                         f"one row per column of edge_index, in edge_index's order")


def _check_pair_inputs(node_ptr: Tensor, rowptr: Tensor, col: Tensor, perm: Tensor | None,
                       pair_mask: Tensor | None) -> None:
    _check_index_tensor("node_ptr", node_ptr, 1)
    _check_index_tensor("rowptr", rowptr, 1)
    _check_index_tensor("col", col, 1)
    if node_ptr.numel() == 0 or int(node_ptr[0]) != 0 or bool((node_ptr[1:] < node_ptr[:-1]).any()):
        raise ValueError("node_ptr must start at 0 and be non-decreasing (a PyG Batch's ptr)")
    num_nodes = int(node_ptr[-1])
    if rowptr.numel() != num_nodes + 1:
        raise ValueError(f"rowptr has {rowptr.numel()} entries but node_ptr says {num_nodes} nodes (+1 expected)")
    if col.numel() and (int(col.min()) < 0 or int(col.max()) >= num_nodes):
        raise ValueError(f"col has values outside [0, {num_nodes}); the CSR does not belong to this batch")
    if perm is not None and perm.numel() != col.numel():
        raise ValueError(f"perm has {perm.numel()} entries but col has {col.numel()}")
    if col.numel():
        graph_of = torch.bucketize(torch.arange(num_nodes, device=col.device), node_ptr[1:], right=True)
        row = csr_row_index(rowptr)
        if bool((graph_of[row] != graph_of[col.long()]).any()):
            raise ValueError("an edge joins two different graphs of the batch; edges must stay inside a graph")
    if pair_mask is not None:
        num_pairs = int((node_ptr[1:] - node_ptr[:-1]).pow(2).sum())
        if pair_mask.dtype != torch.bool or pair_mask.dim() != 1 or pair_mask.numel() != num_pairs:
            raise ValueError(
                f"pair_mask must be a bool tensor [Σ n_g²] = [{num_pairs}], got {pair_mask.dtype} "
                f"{tuple(pair_mask.shape)}; it comes from graphlab.transforms.SubgraphPairs"
            )


def _local_csr(entry_row: Tensor, entry_col: Tensor, edge_id: Tensor, num_pairs: int,
               pair_mask: Tensor | None, keep: Tensor | None = None) -> PairCSR:
    """Drop the entries with a pair outside the mask (or not in ``keep``) and build the CSR; the entries come
    from :func:`_expand`, already sorted by target row, and filtering keeps that order."""
    if pair_mask is not None:
        keep = pair_mask[entry_row] & pair_mask[entry_col]
    if keep is not None:
        entry_row, entry_col, edge_id = entry_row[keep], entry_col[keep], edge_id[keep]
    return PairCSR(rowptr_from_sorted(entry_row, num_pairs), entry_col, edge_id)


def pair_index(
    node_ptr: Tensor,
    rowptr: Tensor,
    col: Tensor,
    perm: Tensor | None = None,
    pair_mask: Tensor | None = None,
    *,
    validate: bool = True,
) -> PairIndex:
    r"""Build the :class:`PairIndex` of a batch of graphs.

    Args:
        node_ptr: ``[B+1]`` node offsets of the graphs (``Batch.ptr``).
        rowptr, col: the batch's CSR with rows = targets (:func:`graphlab.ops.to_csr` of ``edge_index``).
        perm: ``[E]`` the original edge id of each CSR entry (``to_csr(...).perm``), for edge features;
            ``None`` means CSR order.
        pair_mask: optional ``[R]`` bool, which node :math:`v` is in subgraph :math:`u` (module docstring).
        validate: check the inputs (ValueError naming the problem).

    Cost: :math:`O(\sum_g n_g^2 + \sum_g n_g E_g)` time and memory.
    """
    if validate:
        _check_pair_inputs(node_ptr, rowptr, col, perm, pair_mask)
    device = node_ptr.device
    node_ptr = node_ptr.long()
    rowptr, col = rowptr.long(), col.long()
    n = node_ptr[1:] - node_ptr[:-1]  # [B]
    pair_ptr = torch.zeros_like(node_ptr)
    torch.cumsum(n * n, 0, out=pair_ptr[1:])
    num_pairs = int(pair_ptr[-1])
    # Per root u (batch node number): its graph, graph size, and first row (u, 0).
    graph_of_node = torch.repeat_interleave(torch.arange(n.numel(), device=device), n)
    n_of_node = n[graph_of_node]
    local = torch.arange(int(node_ptr[-1]), device=device) - node_ptr[graph_of_node]
    root_start = pair_ptr[graph_of_node] + local * n_of_node  # row of (u, 0)
    root_ptr = torch.cat([root_start, pair_ptr[-1:]])
    root = torch.repeat_interleave(torch.arange(local.numel(), device=device), n_of_node, output_size=num_pairs)
    v_local = torch.arange(num_pairs, device=device) - root_start[root]
    node = node_ptr[graph_of_node[root]] + v_local
    u_local, n_row = local[root], n_of_node[root]
    off_row = pair_ptr[graph_of_node[root]]
    transpose = off_row + v_local * n_row + u_local
    root_diag = off_row + u_local * n_row + u_local
    node_diag = off_row + v_local * n_row + v_local

    edge_id = torch.arange(col.numel(), device=device) if perm is None else perm.long()
    # uL: (u, v) <- (u, w) for w -> v; row (u, w) = r - v + w (same graph, same root).
    r_u, w_u, pos_u = _expand(rowptr, col, node)
    uL = _local_csr(r_u, r_u - node[r_u] + w_u, edge_id[pos_u], num_pairs, pair_mask)
    # vL: (u, v) <- (w, v) for w -> u; row (w, v) = r + (w - u) * n.
    r_v, w_v, pos_v = _expand(rowptr, col, root)
    vL = _local_csr(r_v, r_v + (w_v - root[r_v]) * n_row[r_v], edge_id[pos_v], num_pairs, pair_mask)
    return PairIndex(n, node_ptr, pair_ptr, root, node, transpose, root_diag, node_diag, root_ptr, uL, vL, pair_mask,
                     rowptr, col, edge_id, node_ptr, transpose, root_ptr)


def _expand(rowptr: Tensor, col: Tensor, anchor: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One entry per (row r, edge w -> anchor[r]): (r, w, CSR position), sorted by r."""
    device = anchor.device
    counts = (rowptr[1:] - rowptr[:-1])[anchor]
    entry_row = torch.repeat_interleave(torch.arange(anchor.numel(), device=device), counts)
    starts = torch.cumsum(counts, 0) - counts
    pos = rowptr[anchor[entry_row]] + torch.arange(entry_row.numel(), device=device) - starts[entry_row]
    return entry_row, col[pos], pos


def edge_deleted_index(
    node_ptr: Tensor,
    rowptr: Tensor,
    col: Tensor,
    perm: Tensor | None,
    deleted_edge_index: Tensor,
    *,
    validate: bool = True,
) -> PairIndex:
    r"""The :class:`PairIndex` of the edge-deletion policy (ESAN's ED): one subgraph per undirected edge
    :math:`\{a_s, b_s\}`, the graph without that edge (both directions), all :math:`n` nodes kept.

    Rows: pair :math:`(s, v)` of graph :math:`g` is :math:`\mathrm{off}_g + s\,n_g + v` with
    :math:`\mathrm{off}_g = \sum_{g'<g} m_{g'} n_{g'}` (:math:`s` local to the graph). Atoms: ``uv``, ``uL``
    (inside subgraph :math:`s`), ``uG``, ``vG`` (over the subgraphs).

    Args:
        node_ptr, rowptr, col, perm: as :func:`pair_index`.
        deleted_edge_index: ``[2, S]`` batch node numbers of the deleted edge of each subgraph, grouped by graph
            (``batch.deleted_edge_index`` from :class:`graphlab.transforms.SubgraphPairs` with
            ``policy="edge_deletion"``; a graph without edges has one subgraph, the graph itself, marked by a
            self-loop pair that deletes nothing).
    """
    if validate:
        _check_pair_inputs(node_ptr, rowptr, col, perm, None)
        _check_deleted(node_ptr, deleted_edge_index)
    device = node_ptr.device
    node_ptr, rowptr, col = node_ptr.long(), rowptr.long(), col.long()
    deleted = deleted_edge_index.long().contiguous()
    n = node_ptr[1:] - node_ptr[:-1]
    num_graphs, num_nodes = n.numel(), int(node_ptr[-1])
    graph_of_sub = torch.bucketize(deleted[0].contiguous(), node_ptr[1:].contiguous(), right=True)
    subs = torch.bincount(graph_of_sub, minlength=num_graphs)
    subgraph_ptr = torch.zeros_like(node_ptr)
    torch.cumsum(subs, 0, out=subgraph_ptr[1:])
    pair_ptr = torch.zeros_like(node_ptr)
    torch.cumsum(subs * n, 0, out=pair_ptr[1:])
    num_pairs = int(pair_ptr[-1])
    n_of_sub = n[graph_of_sub]
    s_local = torch.arange(graph_of_sub.numel(), device=device) - subgraph_ptr[graph_of_sub]
    root_start = pair_ptr[graph_of_sub] + s_local * n_of_sub
    root_ptr = torch.cat([root_start, pair_ptr[-1:]])
    root = torch.repeat_interleave(torch.arange(s_local.numel(), device=device), n_of_sub, output_size=num_pairs)
    node = node_ptr[graph_of_sub[root]] + torch.arange(num_pairs, device=device) - root_start[root]
    by_node = torch.sort(node, stable=True).indices
    by_node_ptr = rowptr_from_sorted(node[by_node], num_nodes)
    edge_id = torch.arange(col.numel(), device=device) if perm is None else perm.long()
    r, w, pos = _expand(rowptr, col, node)
    v, a, b = node[r], deleted[0, root[r]], deleted[1, root[r]]
    keep = ~(((w == a) & (v == b)) | ((w == b) & (v == a)))
    uL = _local_csr(r, r - v + w, edge_id[pos], num_pairs, None, keep)
    return PairIndex(n, node_ptr, pair_ptr, root, node, None, None, None, root_ptr, uL, None, None,
                     rowptr, col, edge_id, subgraph_ptr, by_node, by_node_ptr)


def _check_deleted(node_ptr: Tensor, deleted: Tensor) -> None:
    _check_index_tensor("deleted_edge_index", deleted, 2)
    num_nodes = int(node_ptr[-1])
    if deleted.size(0) != 2:
        raise ValueError(f"deleted_edge_index must be [2, S], got {tuple(deleted.shape)}")
    if deleted.numel() and (int(deleted.min()) < 0 or int(deleted.max()) >= num_nodes):
        raise ValueError(f"deleted_edge_index points outside the batch's {num_nodes} nodes")
    graph = torch.bucketize(deleted.long().contiguous(), node_ptr[1:].long().contiguous(), right=True)
    if bool((graph[0] != graph[1]).any()) or bool((graph[0][1:] < graph[0][:-1]).any()):
        raise ValueError("deleted_edge_index must list each graph's subgraphs together, in graph order, with both "
                         "ends in the same graph (as a PyG Batch of SubgraphPairs(policy='edge_deletion') has it)")
    has_nodes = (node_ptr[1:] > node_ptr[:-1])
    subs = torch.bincount(graph[0], minlength=has_nodes.numel())
    if bool((has_nodes & (subs == 0)).any()):
        raise ValueError("a graph with nodes has no subgraph in deleted_edge_index; apply "
                         "SubgraphPairs(policy='edge_deletion') to every graph")


def _check_h(h: Tensor, index: PairIndex) -> None:
    if not isinstance(h, Tensor) or not h.is_floating_point() or h.dim() != 2:
        raise ValueError(f"h must be a floating-point [R, F] tensor of pair states, got "
                         f"{type(h).__name__} {tuple(getattr(h, 'shape', ()))}")
    if h.size(0) != index.num_pairs:
        raise ValueError(f"h has {h.size(0)} rows but the batch has R = Σ n_g² = {index.num_pairs} pairs")


def local_atom(h: Tensor, csr: PairCSR, edge_attr: Tensor | None = None) -> Tensor:
    r""":math:`\sum_{\text{entries}} (h_{\mathrm{col}} + e_{\mathrm{edge\_id}})` per pair row, two gather-reduces."""
    out = gather_reduce(h, csr.rowptr, csr.col, "sum", validate=False)
    if edge_attr is not None:
        out = out + gather_reduce(edge_attr.to(h.dtype), csr.rowptr, csr.edge_id, "sum", validate=False)
    return out


def local_atom_gine(h: Tensor, csr: PairCSR, edge_attr: Tensor | None) -> Tensor:
    r"""GINE-form local atom :math:`\sum (\mathrm{ReLU}(h_{\mathrm{col}} + e_{\mathrm{edge\_id}}))`: a segment sum
    over materialised ``[entries, F]`` messages (the nonlinearity needs them); without ``edge_attr``,
    :math:`\sum \mathrm{ReLU}(h_{\mathrm{col}})` as one gather-reduce of :math:`\mathrm{ReLU}(h)`."""
    if edge_attr is None:
        return gather_reduce(torch.relu(h), csr.rowptr, csr.col, "sum", validate=False)
    msg = torch.relu(h.index_select(0, csr.col) + edge_attr.to(h.dtype).index_select(0, csr.edge_id))
    return segment_reduce(msg, csr.rowptr, "sum", validate=False)


def pair_atom(h: Tensor, index: PairIndex, atom: Atom, edge_attr: Tensor | None = None,
              edge_mode: EdgeMode = "add") -> Tensor:
    r"""One aggregation atom of Zhang et al. (2023) on the pair states ``h`` ``[R, F]`` (module docstring).

    Args:
        h: ``[R, F]`` pair states, rows as in :func:`pair_index`.
        index: the batch's :class:`PairIndex`.
        atom: one of ``uv, vu, uu, vv, uL, vL, uG, vG``.
        edge_attr: optional ``[E, F]`` edge vectors (original edge order) added to the messages of ``uL``/``vL``.
        edge_mode: ``"add"`` sums :math:`h + e` (two fused gather-reduces, :func:`local_atom`); ``"gine"`` sums
            :math:`\mathrm{ReLU}(h + e)`, or :math:`\mathrm{ReLU}(h)` without ``edge_attr``, as the official SWL
            code does (:func:`local_atom_gine`). Only the local atoms read it.

    Returns:
        ``[R, F]``.
    """
    if atom not in ATOMS:
        raise ValueError(f"unknown atom {atom!r}; valid atoms are {', '.join(ATOMS)}")
    if edge_mode not in EDGE_MODES:
        raise ValueError(f"edge_mode must be one of {', '.join(EDGE_MODES)}, got {edge_mode!r}")
    _check_h(h, index)
    if edge_attr is not None and (edge_attr.dim() != 2 or edge_attr.size(1) != h.size(1)):
        raise ValueError(f"edge_attr must be [E, F] with F = {h.size(1)} (embed the edge features first), "
                         f"got {tuple(edge_attr.shape)}")
    if edge_attr is not None:
        check_edge_attr_rows(edge_attr, index)
    if atom in ROOTED_ATOMS and not index.node_rooted:
        raise ValueError(f"atom {atom!r} needs one subgraph per node (a root); edge-deleted subgraphs support "
                         f"uv, uL, uG, vG")
    if atom == "uv":
        return h
    if atom == "vu":
        return h.index_select(0, index.transpose)
    if atom == "uu":
        return h.index_select(0, index.root_diag)
    if atom == "vv":
        return h.index_select(0, index.node_diag)
    if atom == "uG":
        return segment_reduce(h, index.root_ptr, "sum", validate=False).index_select(0, index.root)
    if atom == "vG":
        return column_sum(h, index).index_select(0, index.node)
    csr = index.uL if atom == "uL" else index.vL
    if edge_mode == "gine":
        return local_atom_gine(h, csr, edge_attr)
    return local_atom(h, csr, edge_attr)


def column_sum(h: Tensor, index: PairIndex) -> Tensor:
    r"""``[N, F]``: :math:`\sum_{u} h(u, v)` for every node :math:`v` of the batch (the vG atom before its
    broadcast)."""
    _check_h(h, index)
    return segment_reduce(h.index_select(0, index.by_node), index.by_node_ptr, "sum", validate=False)


def pool_pairs(h: Tensor, index: PairIndex, reduce: Literal["sum", "mean"] = "mean") -> tuple[Tensor, Tensor]:
    r"""Pool over :math:`v` then over :math:`u`: per-subgraph ``[S, F]`` (:math:`\bigoplus_v h(u, v)`) and
    per-graph ``[B, F]`` (:math:`\bigoplus_u \bigoplus_v h(u, v)`); ``mean`` divides by :math:`n_g` and by the
    number of subgraphs."""
    _check_h(h, index)
    per_root = segment_reduce(h, index.root_ptr, reduce, validate=False)
    per_graph = segment_reduce(per_root, index.subgraph_ptr, reduce, validate=False)
    return per_root, per_graph
