r"""Positional encodings as PyG transforms.

* :class:`AddRandomWalkPE` is PyG's own transform (re-exported): the random-walk return probabilities
  :math:`[(P^k)_{ii}]_{k=1..K}`, :math:`P = D^{-1} A` (Dwivedi et al. 2022). graphlab's CSL datamodule used to compute
  the same numbers inline; tests check PyG's transform against a dense matrix-power computation.
* :class:`AddLaplacianPE`: the ``k`` eigenvectors of the symmetric normalised Laplacian
  :math:`L = I - D^{-1/2} A D^{-1/2}` after the trivial one, with a *deterministic* sign (each vector's
  largest-magnitude entry positive). PyG's ``AddLaplacianEigenvectorPE`` flips signs at random on every call, which
  is a training-time augmentation; a benchmark that fixes its features once needs the deterministic variant.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import AddRandomWalkPE, BaseTransform

__all__ = ["AddLaplacianPE", "AddRandomWalkPE", "laplacian_eigenvectors"]


def laplacian_eigenvectors(edge_index: Tensor, num_nodes: int, k: int) -> Tensor:
    r"""Eigenvectors ``2..k+1`` (ascending eigenvalues) of :math:`I - D^{-1/2} A D^{-1/2}` of an undirected graph,
    signs fixed so that each column's largest-magnitude entry is positive. Isolated nodes have a zero row in
    :math:`D^{-1/2} A D^{-1/2}`. Eigenvectors of a repeated eigenvalue (common in symmetric graphs) are one
    orthonormal basis of their eigenspace, as LAPACK returns it.

    Returns:
        ``[num_nodes, k]`` float32.
    """
    if not 1 <= k < num_nodes:
        raise ValueError(f"k={k} Laplacian eigenvectors need 1 <= k < num_nodes, but the graph has {num_nodes} "
                         f"nodes; lower k (pe_dim) or drop the encoding for graphs this small")
    adj = torch.zeros(num_nodes, num_nodes, dtype=torch.float64)
    adj[edge_index[0], edge_index[1]] = 1.0
    deg = adj.sum(dim=-1)
    inv_sqrt = torch.where(deg > 0, deg.clamp(min=1e-12).rsqrt(), torch.zeros_like(deg))
    laplacian = torch.eye(num_nodes, dtype=adj.dtype) - inv_sqrt[:, None] * adj * inv_sqrt[None, :]
    _, vectors = np.linalg.eigh(laplacian.numpy())  # LAPACK syevd; faster than torch's for small N
    pe = torch.from_numpy(vectors)[:, 1 : k + 1]
    peak = pe.abs().argmax(dim=0, keepdim=True)
    return (pe * torch.sign(pe.gather(0, peak))).to(torch.float)


class AddLaplacianPE(BaseTransform):
    """Add :func:`laplacian_eigenvectors` of ``data.edge_index`` (undirected, both directions) to ``data``.

    Args:
        k: number of eigenvectors (after the trivial one); the graph needs more than ``k`` nodes.
        attr_name: attribute to store them in, or ``None`` to concatenate them to ``data.x`` (as PyG's
            positional-encoding transforms do).
    """

    def __init__(self, k: int, attr_name: Optional[str] = "laplacian_pe") -> None:
        if k < 1:
            raise ValueError(f"k must be a positive number of eigenvectors, got {k}")
        self.k, self.attr_name = k, attr_name

    def forward(self, data: Data) -> Data:
        if data.edge_index is None or data.num_nodes is None:
            raise ValueError("AddLaplacianPE needs data.edge_index and data.num_nodes")
        pe = laplacian_eigenvectors(data.edge_index, int(data.num_nodes), self.k)
        if self.attr_name is not None:
            data[self.attr_name] = pe
        elif data.x is None:
            data.x = pe
        else:
            data.x = torch.cat([data.x.view(-1, 1) if data.x.dim() == 1 else data.x, pe.to(data.x.dtype)], dim=-1)
        return data

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(k={self.k}, attr_name={self.attr_name!r})"
