"""Block-sparse matrix product for sheaf Laplacians: :func:`block_spmm`.

A sheaf Laplacian on a graph with ``d``-dimensional stalks is an ``(N d) x (N d)`` matrix made of ``d x d``
blocks: one diagonal block ``D_u`` per node and one off-diagonal block ``B_e`` per directed edge
``e = (u, v)``. Applying it to a 0-cochain ``X`` (``d`` stalk values times ``F`` channels per node) is

.. math::
    \\mathrm{out}_u = D_u X_u + \\sum_{e = (u, v) \\in E} B_e X_v .

The op keeps the blocks as dense ``[E, d, d]`` / ``[N, d, d]`` tensors (or ``[E, d]`` / ``[N, d]`` for
diagonal restriction maps) over a :class:`BlockIndex` that is built once per graph, so a layer never
re-creates an ``(N d) x (N d)`` COO matrix or its indices. Gradients flow to ``X`` and to both kinds of
blocks (restriction maps are learned through it).

Three paths (see :mod:`graphlab.ops._backend`):

* ``"reference"``: :func:`block_spmm_reference`, gather + ``bmm`` + ``index_add`` from the equation, with
  PyTorch autograd;
* ``"cpu"``: ``torch.sparse`` BSR (full blocks) or CSR (diagonal blocks) products on a layout computed once
  per graph; the block gradient uses ``torch.sparse.sampled_addmm`` (no ``[E, d, F]`` gathers);
* ``"triton"``: the kernels of :mod:`graphlab.kernels.block_spmm` (CUDA, or CPU under ``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
from torch import Tensor

from graphlab.ops._backend import record_path, resolve_backend, validation_enabled

__all__ = ["BlockIndex", "block_spmm", "block_spmm_reference"]

OP_NAME = "block_spmm"


@dataclass(eq=False)
class BlockIndex:
    """The sparsity pattern of the off-diagonal blocks, in CSR order, with the layouts the fast paths need.

    Build it once per graph with :meth:`from_edge_index`; edge blocks passed to :func:`block_spmm` are
    in the order of ``edge_index`` (which must be sorted by row, then column, without duplicates: the
    output of :func:`torch_geometric.utils.coalesce`).

    Attributes:
        row, col: ``[E]`` block coordinates (``out[row] += B @ x[col]``).
        rowptr: ``[N + 1]`` CSR row pointer over ``row``.
        num_nodes: ``N``.
    """

    row: Tensor
    col: Tensor
    rowptr: Tensor
    num_nodes: int
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_nodes: int) -> "BlockIndex":
        """Index the blocks of ``edge_index`` ``[2, E]`` (row-major sorted, no duplicates) on ``num_nodes``.

        Raises:
            ValueError: if ``edge_index`` is not ``[2, E]`` int64, has an index outside ``[0, num_nodes)``,
                or is not sorted by (row, col) without duplicates.
        """
        _check_edge_index(edge_index, num_nodes)
        row, col = edge_index[0].contiguous(), edge_index[1].contiguous()
        rowptr = _pointer(row, num_nodes)
        return cls(row=row, col=col, rowptr=rowptr, num_nodes=num_nodes)

    @property
    def num_edges(self) -> int:
        return self.row.numel()

    def transpose(self) -> tuple["BlockIndex", Tensor]:
        """The pattern of the transposed matrix and the permutation ``perm`` of the edges into its order
        (edge ``perm[k]`` of this index is edge ``k`` of the transpose). Cached."""
        if "transpose" not in self._cache:
            perm = torch.argsort(self.col, stable=True)
            row_t, col_t = self.col[perm], self.row[perm]
            index_t = BlockIndex(row_t, col_t, _pointer(row_t, self.num_nodes), self.num_nodes)
            self._cache["transpose"] = (index_t, perm)
        return self._cache["transpose"]

    def scalar_layout(self, d: int, full: bool) -> tuple[Tensor, Tensor, Tensor]:
        """CSR of the scalar ``(N d) x (N d)`` pattern of the blocks: ``(crow, col, src)`` where CSR value
        ``p`` is ``blocks.reshape(-1)[src[p]]`` (``full``: ``d x d`` blocks, else diagonal blocks). Cached."""
        key = ("scalar", d, full)
        if key not in self._cache:
            self._cache[key] = _scalar_layout(self.row, self.col, self.num_nodes, d, full)
        return self._cache[key]


def _pointer(sorted_index: Tensor, size: int) -> Tensor:
    """CSR pointer ``[size + 1]`` of a sorted index vector."""
    counts = torch.bincount(sorted_index, minlength=size)
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])


def _check_edge_index(edge_index: Tensor, num_nodes: int) -> None:
    if edge_index.dim() != 2 or edge_index.size(0) != 2 or edge_index.dtype != torch.long:
        raise ValueError(
            f"edge_index must be an int64 tensor of shape [2, E], got {edge_index.dtype} {tuple(edge_index.shape)}"
        )
    if edge_index.numel() == 0:
        return
    low, high = int(edge_index.min()), int(edge_index.max())
    if low < 0 or high >= num_nodes:
        raise ValueError(
            f"edge_index has values in [{low}, {high}] but the graph has {num_nodes} nodes; "
            "pass the right num_nodes or remove the out-of-range edges"
        )
    key = edge_index[0] * num_nodes + edge_index[1]
    if key.numel() > 1 and not bool((key[1:] > key[:-1]).all()):
        raise ValueError(
            "edge_index must be sorted by (row, col) without duplicate edges; "
            "apply torch_geometric.utils.coalesce(edge_index, num_nodes=N) first"
        )


def _scalar_layout(row: Tensor, col: Tensor, num_nodes: int, d: int, full: bool) -> tuple[Tensor, Tensor, Tensor]:
    stalk = torch.arange(d, device=row.device)
    if full:  # entry (e, i, j) at scalar position (row_e d + i, col_e d + j)
        s_row = (row[:, None, None] * d + stalk[None, :, None]).expand(-1, d, d).reshape(-1)
        s_col = (col[:, None, None] * d + stalk[None, None, :]).expand(-1, d, d).reshape(-1)
    else:  # entry (e, i) at scalar position (row_e d + i, col_e d + i)
        s_row = (row[:, None] * d + stalk[None, :]).reshape(-1)
        s_col = (col[:, None] * d + stalk[None, :]).reshape(-1)
    src = torch.argsort(s_row * (num_nodes * d) + s_col)
    s_row = s_row[src]
    return _pointer(s_row, num_nodes * d), s_col[src].contiguous(), src


# ----------------------------------------------------------------------------------------------------------
# Reference
# ----------------------------------------------------------------------------------------------------------


def _apply_diag(diag: Optional[Tensor], x: Tensor, transpose: bool = False) -> Tensor:
    """``D_u x_u`` for every node (``D`` full ``[N, d, d]`` or diagonal ``[N, d]``); zeros when ``D`` is None."""
    if diag is None:
        return torch.zeros_like(x)
    if diag.dim() == 2:
        return diag.unsqueeze(-1) * x
    return torch.bmm(diag.transpose(1, 2) if transpose else diag, x)


def block_spmm_reference(
    diag_blocks: Optional[Tensor], edge_blocks: Tensor, edge_index: Tensor, x: Tensor
) -> Tensor:
    """Plain-PyTorch definition of :func:`block_spmm`: ``out[u] = D_u x[u] + sum_{e=(u,v)} B_e x[v]``.

    Same arguments as :func:`block_spmm`, but takes ``edge_index`` ``[2, E]`` in any order (duplicates are
    summed). Gradients come from PyTorch autograd.
    """
    row, col = edge_index[0], edge_index[1]
    x_col = x.index_select(0, col)
    if edge_blocks.dim() == 2:
        messages = edge_blocks.unsqueeze(-1) * x_col
    else:
        messages = torch.bmm(edge_blocks, x_col)
    return _apply_diag(diag_blocks, x).index_add(0, row, messages)


# ----------------------------------------------------------------------------------------------------------
# CPU path: torch.sparse BSR / CSR products on the cached layout
# ----------------------------------------------------------------------------------------------------------


class _QuietSparse(warnings.catch_warnings):
    """torch warns (once per process) that sparse CSR/BSR support is "beta"; the products used here are tested
    against the reference, so that notice is silenced where the tensors are built."""

    def __enter__(self) -> None:
        super().__enter__()
        warnings.filterwarnings("ignore", message="Sparse (BSR|CSR) tensor support is in beta state")


def _sparse_offdiag_mm(index: BlockIndex, blocks: Tensor, x: Tensor) -> Tensor:
    """``sum_{e=(u,v)} B_e x_v`` with a BSR (full blocks) or scalar CSR (diagonal blocks) product."""
    num_nodes, d, num_features = x.shape
    x2 = x.reshape(num_nodes * d, num_features)
    size = (num_nodes * d, num_nodes * d)
    with _QuietSparse():
        if blocks.dim() == 3:
            matrix = torch.sparse_bsr_tensor(
                index.rowptr, index.col, blocks.contiguous(), size=size, check_invariants=False
            )
        else:
            crow, col, src = index.scalar_layout(d, full=False)
            matrix = torch.sparse_csr_tensor(
                crow, col, blocks.reshape(-1).index_select(0, src), size=size, check_invariants=False
            )
        return (matrix @ x2).reshape(num_nodes, d, num_features)


def _sampled_blocks(index: BlockIndex, g: Tensor, x: Tensor, full: bool) -> Tensor:
    """``G[row_e] x[col_e]^T`` (or its diagonal) for every edge, via ``torch.sparse.sampled_addmm``."""
    num_nodes, d, num_features = x.shape
    crow, col, src = index.scalar_layout(d, full=full)
    with _QuietSparse():
        pattern = torch.sparse_csr_tensor(
            crow, col, x.new_zeros(col.numel()), size=(num_nodes * d, num_nodes * d), check_invariants=False
        )
        sampled = torch.sparse.sampled_addmm(
            pattern, g.reshape(num_nodes * d, num_features), x.reshape(num_nodes * d, num_features).t(), beta=0.0
        )
    flat = x.new_empty(col.numel())
    flat.index_copy_(0, src, sampled.values())
    return flat.view(-1, d, d) if full else flat.view(-1, d)


def _diag_grad(g: Tensor, x: Tensor, full: bool) -> Tensor:
    return torch.bmm(g, x.transpose(1, 2)) if full else (g * x).sum(-1)


class _BlockSpmmCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, diag: Optional[Tensor], blocks: Tensor, index: BlockIndex, x: Tensor) -> Tensor:
        ctx.save_for_backward(diag, blocks, x)
        ctx.index = index
        out = _sparse_offdiag_mm(index, blocks, x) if index.num_edges > 0 else torch.zeros_like(x)
        return out + _apply_diag(diag, x) if diag is not None else out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g: Tensor) -> tuple[Optional[Tensor], ...]:
        diag, blocks, x = ctx.saved_tensors
        index: BlockIndex = ctx.index
        g = g.contiguous()
        grad_diag = grad_blocks = grad_x = None
        if ctx.needs_input_grad[3]:
            grad_x = _apply_diag(diag, g, transpose=True) if diag is not None else torch.zeros_like(g)
            if index.num_edges > 0:
                index_t, perm = index.transpose()
                blocks_t = blocks.index_select(0, perm)
                if blocks.dim() == 3:
                    blocks_t = blocks_t.transpose(1, 2)
                grad_x = grad_x + _sparse_offdiag_mm(index_t, blocks_t, g)
        if ctx.needs_input_grad[1]:
            grad_blocks = _sampled_blocks(index, g, x, full=blocks.dim() == 3)
        if diag is not None and ctx.needs_input_grad[0]:
            grad_diag = _diag_grad(g, x, full=diag.dim() == 3)
        record_path(OP_NAME + ".backward", "cpu")
        return grad_diag, grad_blocks, None, grad_x


# ----------------------------------------------------------------------------------------------------------
# Triton path
# ----------------------------------------------------------------------------------------------------------


class _BlockSpmmTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, diag: Optional[Tensor], blocks: Tensor, index: BlockIndex, x: Tensor) -> Tensor:
        from graphlab.kernels.block_spmm import block_spmm_csr

        ctx.save_for_backward(diag, blocks, x)
        ctx.index = index
        return block_spmm_csr(index.rowptr, index.col, blocks, diag, x)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g: Tensor) -> tuple[Optional[Tensor], ...]:
        from graphlab.kernels.block_spmm import block_sddmm, block_spmm_csr

        diag, blocks, x = ctx.saved_tensors
        index: BlockIndex = ctx.index
        g = g.contiguous()
        grad_diag = grad_blocks = grad_x = None
        if ctx.needs_input_grad[3]:
            index_t, perm = index.transpose()
            grad_x = block_spmm_csr(index_t.rowptr, index_t.col, blocks, diag, g, eperm=perm, transpose=True)
        if ctx.needs_input_grad[1]:
            grad_blocks = block_sddmm(index.row, index.col, g, x, full=blocks.dim() == 3)
        if diag is not None and ctx.needs_input_grad[0]:
            grad_diag = block_sddmm(None, None, g, x, full=diag.dim() == 3)
        record_path(OP_NAME + ".backward", "triton")
        return grad_diag, grad_blocks, None, grad_x


# ----------------------------------------------------------------------------------------------------------
# Public op
# ----------------------------------------------------------------------------------------------------------


def _check_inputs(diag: Optional[Tensor], blocks: Tensor, index: BlockIndex, x: Tensor) -> None:
    if x.dim() != 3:
        raise ValueError(f"x must be [N, d, F], got shape {tuple(x.shape)}; reshape it with x.view(N, d, -1)")
    num_nodes, d, _ = x.shape
    if num_nodes != index.num_nodes:
        raise ValueError(f"x has {num_nodes} nodes but the BlockIndex was built for {index.num_nodes}")
    expected = [(index.num_edges, d, d), (index.num_edges, d)]
    if tuple(blocks.shape) not in expected:
        raise ValueError(
            f"edge_blocks must be [E, d, d] or [E, d] = {expected}, got {tuple(blocks.shape)}; "
            "pass one block per edge of the BlockIndex, in its (sorted) edge order"
        )
    if diag is not None and tuple(diag.shape) not in [(num_nodes, d, d), (num_nodes, d)]:
        raise ValueError(f"diag_blocks must be [N, d, d] or [N, d] with N={num_nodes}, d={d}; got {tuple(diag.shape)}")
    for name, t in (("diag_blocks", diag), ("edge_blocks", blocks)):
        if t is not None and (t.dtype != x.dtype or t.device != x.device):
            raise ValueError(f"{name} is {t.dtype} on {t.device} but x is {x.dtype} on {x.device}; cast one of them")


def block_spmm(
    diag_blocks: Optional[Tensor],
    edge_blocks: Tensor,
    index: Union[BlockIndex, Tensor],
    x: Tensor,
) -> Tensor:
    """Block-sparse product ``out[u] = D_u x[u] + sum_{e=(u,v)} B_e x[v]`` (a sheaf Laplacian times a cochain).

    Args:
        diag_blocks: ``[N, d, d]`` diagonal blocks ``D_u``, ``[N, d]`` for diagonal ``D_u``, or ``None``.
        edge_blocks: ``[E, d, d]`` off-diagonal blocks ``B_e`` in the edge order of ``index``, or ``[E, d]``
            for diagonal blocks.
        index: a :class:`BlockIndex` (build it once per graph), or a sorted, coalesced ``edge_index``
            ``[2, E]`` (the index is then rebuilt on every call).
        x: ``[N, d, F]`` cochain: ``d`` stalk dimensions times ``F`` channels per node.

    Returns:
        ``[N, d, F]``. Differentiable in ``diag_blocks``, ``edge_blocks`` and ``x``.

    Raises:
        ValueError: if the shapes, dtypes or devices do not match (checked while validation is on).
    """
    if isinstance(index, Tensor):
        index = BlockIndex.from_edge_index(index, x.size(0))
    if validation_enabled():
        _check_inputs(diag_blocks, edge_blocks, index, x)
    path = resolve_backend(diag_blocks, edge_blocks, x)
    record_path(OP_NAME, path)
    if path == "reference":
        return block_spmm_reference(diag_blocks, edge_blocks, torch.stack([index.row, index.col]), x)
    if path == "triton":
        return _BlockSpmmTriton.apply(diag_blocks, edge_blocks, index, x)
    return _BlockSpmmCPU.apply(diag_blocks, edge_blocks, index, x)
