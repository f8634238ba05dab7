"""``DiskGraphStore``: PyG's :class:`~torch_geometric.data.GraphStore` with the topology in memory-mapped files.

Each ``(edge_type, layout)`` the user puts is kept as given: COO ``(row, col)``, CSR ``(rowptr, col)`` or CSC
``(row, colptr)``, plus optional per-edge arrays in the same order: ``perm`` (the original edge id of each stored
edge, what samplers report as ``e_id``), ``weight``, ``time``. CSR is PyG's: ``rowptr`` indexes the source
(``edge_index[0]``), so ``col[rowptr[v]:rowptr[v+1]]`` are the out-neighbours of ``v``; CSC indexes the target, so
``row[colptr[v]:colptr[v+1]]`` are its in-neighbours (the nodes whose messages ``v`` aggregates, what
``NeighborLoader`` samples).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import EdgeAttr, GraphStore
from torch_geometric.data.graph_store import EdgeLayout

from graphlab.data.store import manifest as mf
from graphlab.data.store.folder import Mode, StoreFolder, Verify

_PARTS = {EdgeLayout.COO: ("row", "col"), EdgeLayout.CSR: ("rowptr", "col"), EdgeLayout.CSC: ("row", "colptr")}
EXTRAS = ("perm", "weight", "time")


def _edge_key(edge_type: Any, layout: EdgeLayout) -> str:
    return json.dumps([list(edge_type) if isinstance(edge_type, tuple) else edge_type, layout.value])


def _parse_edge_key(key: str) -> tuple[Any, EdgeLayout]:
    edge_type, layout = json.loads(key)
    return (tuple(edge_type) if isinstance(edge_type, list) else edge_type), EdgeLayout(layout)


class DiskGraphStore(GraphStore):
    """Graph topology (CSR / CSC / COO, edge ids, weights, times) in memory-mapped files of a store folder.

    Shares the folder and manifest format of :class:`~graphlab.data.store.DiskFeatureStore` (the ``"edges"``
    section). ``get_edge_index`` and :meth:`csr` / :meth:`csc` return zero-copy tensors over the maps when the
    requested layout is stored; otherwise PyG's conversion runs in memory.

    Args:
        path, mode, verify, verify_bytes, chunk_bytes: as :class:`~graphlab.data.store.DiskFeatureStore`.
    """

    def __init__(self, path: str | os.PathLike[str], mode: Mode = "r", verify: Verify = "auto",
                 verify_bytes: int = mf.VERIFY_AUTO_BYTES, chunk_bytes: int = mf.CHUNK_BYTES) -> None:
        super().__init__()
        self.folder = StoreFolder(path, mode, verify, verify_bytes, chunk_bytes)

    @property
    def path(self):
        return self.folder.path

    def verify(self) -> None:
        self.folder.verify()

    # ---- PyG contract
    def _put_edge_index(self, edge_index: Tuple[Tensor, Tensor], edge_attr: EdgeAttr) -> bool:
        return self.put_edges(edge_index, edge_attr)

    def put_edges(self, edge_index: Tuple[Tensor, Tensor], edge_attr: EdgeAttr, perm: Optional[Tensor] = None,
                  weight: Optional[Tensor] = None, time: Optional[Tensor] = None) -> bool:
        """Store ``edge_index`` in ``edge_attr.layout`` with optional per-edge ``perm`` / ``weight`` / ``time`` (in
        the stored edge order). ``edge_attr.size`` is required for CSR/CSC and recorded (PyG's loaders read the
        node count from it)."""
        self.folder.require_writable()
        layout = EdgeLayout(edge_attr.layout)
        if not isinstance(edge_index, (tuple, list)) or len(edge_index) != 2:
            raise TypeError("edge_index must be a pair of 1-D tensors (row, col) / (rowptr, col) / (row, colptr)")
        first, second = (torch.as_tensor(t) for t in edge_index)
        size = edge_attr.size
        parts: Dict[str, Tensor] = dict(zip(_PARTS[layout], (first, second)))
        num_edges = (second if layout == EdgeLayout.CSR else first).numel()
        self._check(layout, parts, size, num_edges)
        for name, value in (("perm", perm), ("weight", weight), ("time", time)):
            if value is not None:
                value = torch.as_tensor(value)
                if value.dim() == 0 or value.shape[0] != num_edges:
                    raise ValueError(f"{name} has {value.shape[0] if value.dim() else 0} rows, the graph has "
                                     f"{num_edges} edges; pass one value per stored edge")
                parts[name] = value
        entries: Dict[str, mf.Entry] = {}
        moves = []
        stem = "edges" if edge_attr.edge_type is None else "__".join(edge_attr.edge_type)
        try:
            for name, tensor in parts.items():
                entries[name], tmp = self.folder.stage(f"{stem}.{layout.value}.{name}", tensor)
                moves.append((tmp, entries[name].file))
        except BaseException:
            for tmp, _ in moves:
                tmp.unlink(missing_ok=True)
            raise
        key = _edge_key(edge_attr.edge_type, layout)
        record = {"edge_type": list(edge_attr.edge_type) if isinstance(edge_attr.edge_type, tuple) else None,
                  "layout": layout.value, "is_sorted": bool(edge_attr.is_sorted),
                  "size": None if size is None else [int(s) for s in size],
                  "parts": {name: entry.to_json() for name, entry in entries.items()}}
        self.folder.commit(lambda manifest: manifest["edges"].__setitem__(key, record), moves=moves)
        return True

    @staticmethod
    def _check(layout: EdgeLayout, parts: Dict[str, Tensor], size: Optional[Tuple[int, int]], num_edges: int) -> None:
        for name, tensor in parts.items():
            if tensor.dim() != 1 or tensor.dtype not in (torch.int32, torch.int64):
                raise TypeError(f"{name} must be a 1-D int32/int64 tensor, got {tensor.dtype} of shape "
                                f"{list(tensor.shape)}")
        if layout != EdgeLayout.COO and size is None:
            raise ValueError(f"a {layout.value.upper()} edge index needs EdgeAttr.size=(num_src, num_dst)")
        if layout == EdgeLayout.COO and parts["row"].numel() != parts["col"].numel():
            raise ValueError(f"row has {parts['row'].numel()} entries, col {parts['col'].numel()}; COO needs equal")
        for ptr_name, dim in (("rowptr", 0), ("colptr", 1)):
            if ptr_name in parts:
                ptr = parts[ptr_name]
                if ptr.numel() != size[dim] + 1 or int(ptr[0]) != 0 or int(ptr[-1]) != num_edges or (
                        ptr.numel() > 1 and bool((ptr[1:] < ptr[:-1]).any())):
                    raise ValueError(f"{ptr_name} must be non-decreasing, of length size[{dim}] + 1 = "
                                     f"{size[dim] + 1}, from 0 to the edge count {num_edges}")
        if size is not None and num_edges:
            for name, dim in (("row", 0), ("col", 1)):
                if name in parts and (int(parts[name].min()) < 0 or int(parts[name].max()) >= size[dim]):
                    raise ValueError(f"{name} has ids outside [0, {size[dim]}) (EdgeAttr.size={tuple(size)})")

    def _record(self, edge_type: Any, layout: EdgeLayout) -> Optional[dict[str, Any]]:
        return self.folder.manifest["edges"].get(_edge_key(edge_type, EdgeLayout(layout)))

    def _part(self, record: dict[str, Any], name: str) -> Optional[Tensor]:
        obj = record["parts"].get(name)
        if obj is None:
            return None
        return self.folder.tensor(mf.Entry.from_json(obj, f"{self.path} edges {name}"))

    def _get_edge_index(self, edge_attr: EdgeAttr) -> Optional[Tuple[Tensor, Tensor]]:
        layout = EdgeLayout(edge_attr.layout)
        record = self._record(edge_attr.edge_type, layout)
        if record is None:
            return None
        first, second = _PARTS[layout]
        return self._part(record, first), self._part(record, second)

    def _remove_edge_index(self, edge_attr: EdgeAttr) -> bool:
        self.folder.require_writable()
        key = _edge_key(edge_attr.edge_type, EdgeLayout(edge_attr.layout))
        if key not in self.folder.manifest["edges"]:
            return False
        self.folder.commit(lambda manifest: manifest["edges"].pop(key, None))
        return True

    def get_all_edge_attrs(self) -> List[EdgeAttr]:
        out = []
        for key, record in self.folder.manifest["edges"].items():
            edge_type, layout = _parse_edge_key(key)
            size = None if record["size"] is None else tuple(record["size"])
            out.append(EdgeAttr(edge_type, layout, is_sorted=record["is_sorted"] and layout != EdgeLayout.CSR,
                                size=size))
        return out

    def _edge_to_layout(self, attr: EdgeAttr, layout: EdgeLayout, store: bool = False):
        """Stored layout: the maps and the stored ``perm`` (zero-copy); otherwise PyG's in-memory conversion,
        composed with the stored ``perm`` when there is one."""
        record = self._record(attr.edge_type, attr.layout)
        stored_perm = None if record is None else self._part(record, "perm")
        if EdgeLayout(attr.layout) == EdgeLayout(layout):
            first, second = self.get_edge_index(attr)
            return first, second, stored_perm
        first, second, perm = super()._edge_to_layout(attr, layout, store)
        if stored_perm is not None:
            perm = stored_perm if perm is None else stored_perm[perm]
        return first, second, perm

    def _edges_to_layout(self, layout: EdgeLayout, edge_types: Optional[List[Any]] = None, store: bool = False):
        """PyG's, except that a homogeneous graph reads the stored attribute of the requested layout when there is
        one (PyG's takes the first attribute and converts it)."""
        attrs = self.get_all_edge_attrs()
        if not attrs:
            raise KeyError(f"{self.path} holds no edges; put them first (put_edge_index or write_store)")
        if all(attr.edge_type is None for attr in attrs):
            preferred = [a for a in attrs if a.layout == layout] or attrs
            return self._edge_to_layout(preferred[0], layout, store)
        return super()._edges_to_layout(layout, edge_types, store)

    # ---- extras
    def edge_data(self, name: str, edge_type: Any = None, layout: str = "csr") -> Optional[Tensor]:
        """A stored per-edge array (``"perm"``, ``"weight"``, ``"time"``) of ``(edge_type, layout)``, or ``None``."""
        if name not in EXTRAS:
            raise ValueError(f"edge data is one of {EXTRAS}, got {name!r}")
        record = self._record(edge_type, EdgeLayout(layout))
        if record is None:
            raise KeyError(f"{self.path} holds no {layout} edges of type {edge_type!r}")
        return self._part(record, name)

    def num_nodes(self, edge_type: Any = None) -> int:
        """The node count of a homogeneous graph (``max(size)`` of its first edge attribute)."""
        for attr in self.get_all_edge_attrs():
            if attr.edge_type == edge_type and attr.size is not None:
                return max(attr.size)
        raise KeyError(f"{self.path} records no size for edges of type {edge_type!r}")

    def __repr__(self) -> str:
        layouts = [f"{a.edge_type}:{a.layout.value}" for a in self.get_all_edge_attrs()]
        return f"{type(self).__name__}({str(self.path)!r}, {layouts})"
