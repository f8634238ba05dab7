"""Every PyG transform graphlab ships, under one import path: ``from graphlab.transforms import ToCSR, ...``.

Each is a ``torch_geometric.transforms.BaseTransform`` that computes something once per graph, before training, and
stores it on the ``Data`` object (so it composes with ``Compose`` and runs in a dataset's ``pre_transform`` or
``transform``). One module per kind of preprocessing:

* :mod:`~graphlab.transforms.csr`: :class:`ToCSR` / :func:`register_csr`, the CSR of ``edge_index`` and its
  transpose, primed in :mod:`graphlab.ops`' per-tensor caches;
* :mod:`~graphlab.transforms.positional`: positional encodings, :class:`AddRandomWalkPE` (PyG's, re-exported:
  graphlab's former inline RWSE was the same computation) and :class:`AddLaplacianPE` (sign-fixed, deterministic);
* :mod:`~graphlab.transforms.sheaf`: :class:`SheafConnection`, the connection-sheaf restriction maps of
  Barbero et al. (2022) from local PCA and Procrustes alignment;
* :mod:`~graphlab.transforms.reorder`: :class:`ReorderNodes`, a locality ordering of the nodes (:func:`node_order`:
  reverse Cuthill-McKee, degree-sorted BFS, community order) applied to every node- and edge-indexed attribute,
  with :func:`restore_order` to bring outputs back to the user's numbering.
* :mod:`~graphlab.transforms.subgraph`: :class:`SubgraphPairs`, shortest-path distances and subgraph policies
  (node marking, node deletion, ego nets, ego nets with root marking) over all node pairs, for subgraph GNNs.
* :mod:`~graphlab.transforms.tokens`: Mamba sequences on graphs, :func:`degree_sequences` (Graph-Mamba's
  degree-ordered node sequences) and :func:`neighbourhood_tokens` (GMN's random-walk neighbourhood tokens).

The coming families add their preprocessing here as new modules beside these (subgraph policies, shortest-path
distances, Mamba token sampling), each exported from this ``__init__``.
"""

from graphlab.transforms.csr import ToCSR, register_csr
from graphlab.transforms.positional import AddLaplacianPE, AddRandomWalkPE
from graphlab.transforms.reorder import ReorderNodes, node_order, restore_order
from graphlab.transforms.sheaf import SheafConnection
from graphlab.transforms.subgraph import SubgraphPairs, shortest_path_distances
from graphlab.transforms.tokens import (
    NeighbourhoodTokens,
    NodeSequences,
    TokenSubgraphs,
    degree_sequences,
    neighbourhood_tokens,
    out_degree,
    random_walks,
    token_subgraphs,
)

__all__ = ["AddLaplacianPE", "AddRandomWalkPE", "NeighbourhoodTokens", "NodeSequences", "ReorderNodes",
           "SheafConnection", "SubgraphPairs", "ToCSR", "TokenSubgraphs", "degree_sequences", "neighbourhood_tokens", "node_order", "out_degree",
           "random_walks", "register_csr", "restore_order", "shortest_path_distances", "token_subgraphs"]
