"""Shared input handling of the graphlab aggregations: turn PyG's ``(x, index, ptr, dim_size, dim)`` into
validated rows ``[E, F]`` and CSR segment boundaries ``ptr`` ``[S + 1]``."""

from __future__ import annotations

from torch import Tensor

from graphlab.ops import IdentityCache, rowptr_from_sorted

# ptr built from a sorted index, kept per index tensor. PyG's MessagePassing passes a fresh view ``edge_index[1]``
# on every call, so the key is the view's base tensor plus the view's geometry (the version counter is shared,
# so an in-place edit of edge_index invalidates the entry). A hit also reuses the tree schedule cached on ptr.
PTR_CACHE = IdentityCache()


def check_rows(name: str, x: Tensor, dim: int, in_channels: int) -> None:
    """``x`` must be ``[E, in_channels]`` floating, aggregated along ``dim`` in ``(0, -2)``."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} expects a floating-point tensor x, got "
                        f"{x.dtype if isinstance(x, Tensor) else type(x).__name__}")
    if x.dim() != 2 or dim not in (0, -2):
        raise ValueError(f"{name} aggregates 2-D inputs [E, F] along dim 0 (dim=-2); got x of shape "
                         f"{tuple(x.shape)} and dim={dim}")
    if x.size(1) != in_channels:
        raise ValueError(f"{name} was built with in_channels={in_channels} but x has {x.size(1)} features; "
                         f"pass in_channels={x.size(1)} or fix the input")


def segment_ptr(name: str, x: Tensor, index: Tensor | None, ptr: Tensor | None, dim_size: int | None) -> Tensor:
    """CSR boundaries ``[S + 1]`` from ``ptr`` (checked) or from a sorted ``index`` (checked)."""
    if ptr is not None:
        if ptr.dim() != 1 or ptr.numel() == 0 or int(ptr[0]) != 0 or int(ptr[-1]) != x.size(0):
            raise ValueError(f"{name}: ptr must be [S + 1] boundaries from 0 to {x.size(0)} (the number of rows "
                             f"of x), got {ptr.tolist() if ptr.numel() < 10 else tuple(ptr.shape)}")
        if bool((ptr[1:] < ptr[:-1]).any()):
            raise ValueError(f"{name}: ptr is not non-decreasing; segments must be consecutive and sorted")
        return ptr.long()
    if index is None:
        raise ValueError(f"{name} needs index or ptr")
    base = index if index._base is None else index._base
    key = ("ptr", index.storage_offset(), tuple(index.shape), tuple(index.stride()), index.dtype,
           x.size(0), dim_size)
    return PTR_CACHE.get_or_build([base], key, lambda: _ptr_from_index(name, x, index, dim_size))


def _ptr_from_index(name: str, x: Tensor, index: Tensor, dim_size: int | None) -> Tensor:
    if index.dim() != 1 or index.numel() != x.size(0):
        raise ValueError(f"{name}: index must be [E] with one entry per row of x ({x.size(0)}), got shape "
                         f"{tuple(index.shape)}")
    if index.numel() > 1 and bool((index[1:] < index[:-1]).any()):
        raise ValueError(
            f"{name} needs a sorted index (the rows of one neighbourhood must be consecutive) but index is not "
            f"sorted; sort the edges by target first, e.g. data.sort(sort_by_row=False) or "
            f"torch_geometric.utils.sort_edge_index(edge_index, sort_by_row=False), or pass ptr"
        )
    size = (int(index.max()) + 1 if index.numel() else 0) if dim_size is None else int(dim_size)
    if index.numel() and (int(index[0]) < 0 or int(index[-1]) >= size):
        raise ValueError(f"{name}: index has entries outside [0, dim_size={size}); pass the right dim_size")
    return rowptr_from_sorted(index.long(), size)
