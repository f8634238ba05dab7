r"""Sheaf preprocessing: the connection-sheaf restriction maps of Barbero et al. (2022), stored on the data.

:class:`SheafConnection` runs the Conn-NSD preprocessing once per graph: every node gets an orthonormal tangent
basis :math:`O_u \in \mathbb{R}^{p \times d}` by local PCA of its graph-aware neighbourhood
(:func:`graphlab.nn.sheaf.local_pca_bases`) and every edge the Procrustes transport :math:`O_{uv} = U V^\top`,
:math:`O_u^\top O_v = U \Sigma V^\top` (:func:`graphlab.nn.sheaf.procrustes_transports`). The fixed connection
Laplacian :math:`L_{uu} = \deg(u) I`, :math:`L_{uv} = -O_{uv}` is then
``connection_sheaf_laplacian(data.sheaf_transports, SheafGraph.from_edge_index(data.sheaf_edge_index, N))``.

F. Barbero, C. Bodnar, H. Sáez de Ocáriz Borde, M. Bronstein, P. Veličković, P. Liò. *Sheaf Neural Networks with
Connection Laplacians.* ICML 2022 TAG workshop.
"""

from __future__ import annotations

from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from graphlab.nn.sheaf import SheafGraph, canonical_edge_index, local_pca_bases, procrustes_transports

__all__ = ["SheafConnection"]


class SheafConnection(BaseTransform):
    """Store the connection sheaf of ``(data.x, data.edge_index)`` on ``data``.

    Adds ``data.sheaf_edge_index`` ``[2, E]`` (self-loops dropped, reverse edges added, sorted by (row, col): the
    edges of :class:`~graphlab.nn.sheaf.SheafGraph`) and ``data.sheaf_transports`` ``[E, d, d]`` (orthogonal,
    :math:`O_{vu} = O_{uv}^\\top`), the maps :class:`~graphlab.models.ConnectionNSD` computes on its first call.

    Args:
        d: stalk dimension (``d <= `` the feature dimension).
        num_neighbours: size of the local-PCA neighbourhood (the node itself included), at least ``d + 1``.
    """

    def __init__(self, d: int = 2, num_neighbours: int = 10) -> None:
        if d < 1:
            raise ValueError(f"d must be a positive stalk dimension, got {d}")
        if num_neighbours < d + 1:
            raise ValueError(f"num_neighbours must be at least d + 1 = {d + 1}, got {num_neighbours}")
        self.d, self.num_neighbours = d, num_neighbours

    def forward(self, data: Data) -> Data:
        if data.x is None or data.edge_index is None:
            raise ValueError("SheafConnection needs node features data.x and data.edge_index")
        x = data.x.to_dense() if data.x.is_sparse else data.x
        if not x.is_floating_point():
            raise ValueError(f"data.x has dtype {x.dtype}; local PCA needs float features: apply it after "
                             f"casting, e.g. data.x = data.x.float()")
        num_nodes = int(data.num_nodes)
        graph = SheafGraph.from_edge_index(canonical_edge_index(data.edge_index, num_nodes), num_nodes)
        bases = local_pca_bases(x, graph, self.d, self.num_neighbours)
        data.sheaf_edge_index = graph.edge_index
        data.sheaf_transports = procrustes_transports(bases, graph)
        return data

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(d={self.d}, num_neighbours={self.num_neighbours})"
