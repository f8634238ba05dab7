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

The CPU and Triton paths share one ``autograd.Function`` (:class:`BlockSpmm`) over the kernel table
:data:`BLOCK_SPMM_KERNELS`. (:class:`BlockIndex` is not a tensor, so this op is not a ``torch.library`` custom
op; ``torch.compile`` graph-breaks around it.)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
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


_HALF = (torch.float16, torch.bfloat16)  # torch's CPU sparse products lack these: computed in float32


def _cpu_spmm(index: BlockIndex, blocks: Tensor, diag: Optional[Tensor], x: Tensor, transpose: bool) -> Tensor:
    """``D x + sum_e B_e x`` (``transpose``: with every block transposed, over the transposed pattern)."""
    if x.dtype in _HALF:
        up = [None if t is None else t.float() for t in (blocks, diag, x)]
        return _cpu_spmm(index, up[0], up[1], up[2], transpose).to(x.dtype)
    out = _apply_diag(diag, x, transpose=transpose) if diag is not None else torch.zeros_like(x)
    if index.num_edges == 0:
        return out
    if transpose:
        index, perm = index.transpose()
        blocks = blocks.index_select(0, perm)
        if blocks.dim() == 3:
            blocks = blocks.transpose(1, 2)
    return out + _sparse_offdiag_mm(index, blocks, x)


def _cpu_sddmm(index: Optional[BlockIndex], g: Tensor, x: Tensor, full: bool) -> Tensor:
    """Block gradients ``G[row_e] x[col_e]^T`` (or their diagonals); ``index=None`` pairs node ``u`` with itself
    (the gradient of the diagonal blocks)."""
    if x.dtype in _HALF:
        return _cpu_sddmm(index, g.float(), x.float(), full).to(x.dtype)
    if index is None:
        return _diag_grad(g, x, full)
    return _sampled_blocks(index, g, x, full)


def _triton_spmm(index: BlockIndex, blocks: Tensor, diag: Optional[Tensor], x: Tensor, transpose: bool) -> Tensor:
    from graphlab.kernels.block_spmm import block_spmm_csr

    if not transpose:
        return block_spmm_csr(index.rowptr, index.col, blocks, diag, x)
    index_t, perm = index.transpose()
    return block_spmm_csr(index_t.rowptr, index_t.col, blocks, diag, x, eperm=perm, transpose=True)


def _triton_sddmm(index: Optional[BlockIndex], g: Tensor, x: Tensor, full: bool) -> Tensor:
    from graphlab.kernels.block_spmm import block_sddmm

    if index is None:
        return block_sddmm(None, None, g, x, full=full)
    return block_sddmm(index.row, index.col, g, x, full=full)


@dataclass(frozen=True)
class BlockSpmmKernels:
    """Kernels of :func:`block_spmm` for one backend.

    Attributes:
        spmm: ``(index, blocks, diag | None, x, transpose) -> D x + sum_e B_e x`` (``transpose``: ``D^T`` and
            ``B_e^T`` over the transposed pattern, the gradient w.r.t. ``x``).
        sddmm: ``(index | None, g, x, full) -> G[row_e] x[col_e]^T`` per edge (``[E, d, d]``, or the diagonal
            ``[E, d]`` when not ``full``); ``index=None`` gives the per-node products (diagonal blocks).
    """

    spmm: Callable[[BlockIndex, Tensor, Optional[Tensor], Tensor, bool], Tensor]
    sddmm: Callable[[Optional[BlockIndex], Tensor, Tensor, bool], Tensor]


BLOCK_SPMM_KERNELS = {
    "cpu": BlockSpmmKernels(spmm=_cpu_spmm, sddmm=_cpu_sddmm),
    "triton": BlockSpmmKernels(spmm=_triton_spmm, sddmm=_triton_sddmm),
}


class BlockSpmm(torch.autograd.Function):
    """The one autograd definition of :func:`block_spmm` over :data:`BLOCK_SPMM_KERNELS` (``path`` picks)."""

    @staticmethod
    def forward(
        ctx: Any, diag: Optional[Tensor], blocks: Tensor, index: BlockIndex, x: Tensor, path: str
    ) -> Tensor:
        ctx.save_for_backward(diag, blocks, x)
        ctx.index, ctx.path = index, path
        return BLOCK_SPMM_KERNELS[path].spmm(index, blocks, diag, x.contiguous(), False)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, g: Tensor) -> tuple[Optional[Tensor], ...]:
        diag, blocks, x = ctx.saved_tensors
        kernels = BLOCK_SPMM_KERNELS[ctx.path]
        g = g.contiguous()
        grad_diag = grad_blocks = grad_x = None
        if ctx.needs_input_grad[3]:
            grad_x = kernels.spmm(ctx.index, blocks, diag, g, True)
        if ctx.needs_input_grad[1]:
            grad_blocks = kernels.sddmm(ctx.index, g, x, blocks.dim() == 3)
        if diag is not None and ctx.needs_input_grad[0]:
            grad_diag = kernels.sddmm(None, g, x, diag.dim() == 3)
        record_path(OP_NAME + ".backward", ctx.path)
        return grad_diag, grad_blocks, None, grad_x, None


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
    _check_cheap(diag, blocks, x)


def _check_cheap(diag: Optional[Tensor], blocks: Tensor, x: Tensor) -> None:
    """Types, floating dtypes and devices (every call)."""
    for name, t in (("x", x), ("diag_blocks", diag), ("edge_blocks", blocks)):
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"{name} has dtype {t.dtype}; it must be floating point (call {name}.float())")
        if t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}; move them to one device")


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

    Dtypes: ``diag_blocks`` / ``edge_blocks`` of another floating dtype than ``x``'s are cast to ``x``'s (the result
    has ``x``'s dtype); float16/bfloat16 run on the CPU path in float32 (torch's sparse CPU products lack them)
    and are rounded back. Non-contiguous and expanded inputs are accepted.

    Raises:
        ValueError: if a tensor is not floating point or on another device (every call), or the shapes do not
            match (while validation is on).
    """
    if isinstance(index, Tensor):
        index = BlockIndex.from_edge_index(index, x.size(0))
    if validation_enabled():
        _check_inputs(diag_blocks, edge_blocks, index, x)
    else:
        _check_cheap(diag_blocks, edge_blocks, x)
    diag_blocks = None if diag_blocks is None else diag_blocks.to(x.dtype)
    edge_blocks = edge_blocks.to(x.dtype)
    path = resolve_backend(diag_blocks, edge_blocks, x)
    record_path(OP_NAME, path)
    if path == "reference":
        return block_spmm_reference(diag_blocks, edge_blocks, torch.stack([index.row, index.col]), x)
    return BlockSpmm.apply(diag_blocks, edge_blocks, index, x, path)
