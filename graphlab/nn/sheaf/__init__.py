r"""Cellular sheaves on graphs: Laplacian builders, restriction-map learners, orthogonal maps, layers.

A cellular sheaf :math:`(G, \mathcal{F})` gives every node :math:`u` and edge :math:`e` a stalk
:math:`\mathbb{R}^d` and every incidence :math:`u \trianglelefteq e` a restriction map
:math:`\mathcal{F}_{u \trianglelefteq e} \in \mathbb{R}^{d \times d}`. Its Laplacian has the blocks

.. math::
    L_{\mathcal{F}, uu} = \sum_{e \ni u} \mathcal{F}_{u \trianglelefteq e}^\top \mathcal{F}_{u \trianglelefteq e},
    \qquad
    L_{\mathcal{F}, uv} = -\mathcal{F}_{u \trianglelefteq e}^\top \mathcal{F}_{v \trianglelefteq e}
    \quad (e = (u, v)),

and the normalised Laplacian of Bodnar et al. (2022) is
:math:`\Delta_{\mathcal{F}} = \tilde D^{-1/2} L_{\mathcal{F}} \tilde D^{-1/2}` with
:math:`\tilde D = D + I` (``normalisation="augmented"``), :math:`D` the block diagonal of :math:`L_\mathcal{F}`.

Conventions: graphs are undirected, stored with both directions of every edge (no self-loops). The map of
the directed edge ``e = (u, v)`` (``edge_index[:, e]``) is :math:`\mathcal{F}_{u \trianglelefteq e}`; the map
of the other end is the one of the reverse edge ``rev[e] = (v, u)``. A batch of graphs (PyG ``Batch``) is one
block-diagonal graph, so every builder works on many graphs at once. Cochains are ``[N, d, F]`` tensors:
``d`` stalk dimensions times ``F`` channels per node. Symbols: ``N`` nodes, ``E`` directed edges, ``d``
stalk dimension, ``F`` channels.

References:
    C. Bodnar, F. Di Giovanni, B. P. Chamberlain, P. Liò, M. M. Bronstein. *Neural Sheaf Diffusion: A
    Topological Perspective on Heterophily and Oversmoothing in GNNs.* NeurIPS 2022.
    J. Hansen, T. Gebhart. *Sheaf Neural Networks.* NeurIPS 2020 TDA workshop.
    F. Barbero, C. Bodnar, H. Sáez de Ocáriz Borde, M. Bronstein, P. Veličković, P. Liò. *Sheaf Neural
    Networks with Connection Laplacians.* ICML 2022 TAG workshop.

Modules, one concern each:

* :mod:`~graphlab.nn.sheaf.graph`: :class:`SheafGraph` (sorted edges, reverse-edge index, block index), its cache;
* :mod:`~graphlab.nn.sheaf.orthogonal`: O(d) parametrisations;
* :mod:`~graphlab.nn.sheaf.laplacian`: the Laplacian builders and :class:`SheafLaplacian`;
* :mod:`~graphlab.nn.sheaf.learners`: restriction-map learners and :class:`SheafLaplacianLearner`;
* :mod:`~graphlab.nn.sheaf.layers`: :class:`DiscreteSheafDiffusionLayer`, :class:`SheafConv`;
* :mod:`~graphlab.nn.sheaf.connection`: local PCA and Procrustes transports of connection sheaves.

The SPD inverse square root of the general normaliser is the op :func:`graphlab.ops.spd_inv_sqrt` (re-exported).
"""

from graphlab.nn.sheaf.connection import local_pca_bases, procrustes_transports
from graphlab.nn.sheaf.graph import SheafGraph, SheafGraphCache, canonical_edge_index
from graphlab.nn.sheaf.laplacian import (
    Normalisation,
    SheafLaplacian,
    append_fixed_dims,
    bundle_sheaf_laplacian,
    connection_sheaf_laplacian,
    diag_sheaf_laplacian,
    general_sheaf_laplacian,
)
from graphlab.nn.sheaf.layers import DiscreteSheafDiffusionLayer, SheafConv, stalk_linear
from graphlab.nn.sheaf.learners import (
    EdgeWeightLearner,
    FixedRestrictionMaps,
    LocalConcatSheafLearner,
    LocalConcatSheafLearnerVariant,
    SheafAct,
    SheafLaplacianLearner,
    SheafType,
    concat_linear,
)
from graphlab.nn.sheaf.orthogonal import (
    OrthMap,
    Orthogonal,
    cayley_orthogonal,
    euler_orthogonal,
    householder_orthogonal,
    matrix_exp_orthogonal,
)
from graphlab.ops import spd_inv_sqrt

__all__ = [
    "SheafGraph", "SheafGraphCache", "canonical_edge_index", "SheafLaplacian", "spd_inv_sqrt",
    "householder_orthogonal", "cayley_orthogonal", "matrix_exp_orthogonal", "euler_orthogonal", "Orthogonal",
    "LocalConcatSheafLearner", "LocalConcatSheafLearnerVariant", "EdgeWeightLearner", "FixedRestrictionMaps",
    "concat_linear", "diag_sheaf_laplacian", "bundle_sheaf_laplacian", "general_sheaf_laplacian",
    "connection_sheaf_laplacian", "append_fixed_dims", "SheafLaplacianLearner", "DiscreteSheafDiffusionLayer",
    "SheafConv", "stalk_linear", "local_pca_bases", "procrustes_transports",
    "Normalisation", "SheafType", "OrthMap", "SheafAct",
]
