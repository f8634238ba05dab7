r"""Connection sheaves from local PCA and orthogonal Procrustes alignment (Barbero et al. 2022).

The maps are computed from the input features once, before training (:class:`graphlab.transforms.SheafConnection`
stores them on a ``Data`` object; :class:`graphlab.models.ConnectionNSD` computes and caches them itself).
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphlab.nn.sheaf.graph import SheafGraph

__all__ = ["local_pca_bases", "procrustes_transports"]

# torch has no CPU cdist / SVD for these: the maps are computed in float32 and returned in the input's dtype.
_HALF = (torch.float16, torch.bfloat16)


@torch.no_grad()
def local_pca_bases(x: Tensor, graph: SheafGraph, d: int, num_neighbours: int, chunk_size: int = 1024) -> Tensor:
    r"""Orthonormal tangent-space estimates :math:`O_u \in \mathbb{R}^{p \times d}` by local PCA.

    The neighbourhood of ``u`` is the ``num_neighbours`` points closest to :math:`\mathbf{x}_u` (``u``
    itself included) among ``u`` and its graph neighbours, topped up with the nearest other points in feature
    space when the graph neighbourhood is smaller (graph-aware neighbourhoods). :math:`O_u` spans the top
    ``d`` right singular vectors of the centred differences :math:`[\mathbf{x}_v - \mathbf{x}_u]_v`.

    Shapes: ``x [N, p]`` -> ``[N, p, d]``. Needs ``d <= p``. Half-precision ``x`` is processed in float32 and the
    bases are returned in ``x``'s dtype.
    """
    if x.dtype in _HALF:
        return local_pca_bases(x.float(), graph, d, num_neighbours, chunk_size).to(x.dtype)
    if x.dim() != 2 or x.size(0) != graph.num_nodes:
        raise ValueError(f"x must have shape [N, p] with N = {graph.num_nodes} (the graph's nodes), got {tuple(x.shape)}")
    n, k = graph.num_nodes, min(num_neighbours, graph.num_nodes)
    if d > x.size(1) or d > k:
        raise ValueError(f"local PCA needs d <= feature dimension ({x.size(1)}) and d <= min(num_neighbours, N) "
                         f"({k}), got d={d}; lower d or raise num_neighbours")
    bases = []
    for start in range(0, n, chunk_size):  # chunks of nodes bound the [chunk, N] distance matrix
        rows = torch.arange(start, min(start + chunk_size, n), device=x.device)
        dist = torch.cdist(x[rows], x).pow(2)
        far = torch.ones_like(dist, dtype=torch.bool)
        lo, hi = int(graph.index.rowptr[start]), int(graph.index.rowptr[rows[-1] + 1])
        far[graph.row[lo:hi] - start, graph.col[lo:hi]] = False
        far[rows - start, rows] = False
        score = dist + far.to(dist.dtype) * (dist.max() + 1.0)
        nbrs = torch.topk(score, k, dim=1, largest=False).indices
        diffs = x[nbrs] - x[rows].unsqueeze(1)
        _, _, vh = torch.linalg.svd(diffs, full_matrices=False)
        basis = vh[:, :d].transpose(1, 2)
        bases.append(basis)
    return torch.cat(bases)


@torch.no_grad()
def procrustes_transports(bases: Tensor, graph: SheafGraph, chunk_size: int = 65536) -> Tensor:
    r"""Orthogonal Procrustes alignment of neighbouring tangent spaces:
    :math:`O_{uv} = \arg\min_{O \in O(d)} \lVert O_u^\top O_v - O \rVert_F = U V^\top` where
    :math:`O_u^\top O_v = U \Sigma V^\top`. Computed for ``u < v`` and transposed for the reverse edge, so
    :math:`O_{vu} = O_{uv}^\top` exactly. Shapes: ``bases [N, p, d]`` -> ``[E, d, d]`` (half precision computed in
    float32, returned in ``bases``' dtype)."""
    if bases.dtype in _HALF:
        return procrustes_transports(bases.float(), graph, chunk_size).to(bases.dtype)
    if bases.dim() != 3 or bases.size(0) != graph.num_nodes:
        raise ValueError(f"bases must have shape [N, p, d] with N = {graph.num_nodes}, got {tuple(bases.shape)}; "
                         f"pass the output of local_pca_bases")
    out = []
    for start in range(0, graph.edge_index.size(1), chunk_size):  # chunks of edges bound the [chunk, p, d] gathers
        row, col = graph.row[start:start + chunk_size], graph.col[start:start + chunk_size]
        u, _, vh = torch.linalg.svd(bases[row].transpose(1, 2) @ bases[col])
        out.append(u @ vh)
    transports = torch.cat(out) if out else bases.new_zeros(0, bases.size(-1), bases.size(-1))
    upper = (graph.row < graph.col).view(-1, 1, 1)
    return torch.where(upper, transports, transports[graph.rev].transpose(1, 2))
