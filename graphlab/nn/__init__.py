"""graphlab's layers, importable from one place: ``from graphlab.nn import GCNConv, SheafConv, ...``.

The convolutions are drop-ins for PyG's (:mod:`graphlab.nn.conv`), the sheaf layers implement Neural Sheaf
Diffusion and sheaf convolutions (:mod:`graphlab.nn.sheaf`), and :class:`DropoutLinear` is input dropout plus a
linear map computed from the non-zeros of sparse features (:mod:`graphlab.nn.sparse_input`),
:mod:`graphlab.nn.aggr` holds the learnable aggregations (LCM, recurrent), and :mod:`graphlab.nn.mamba` the Mamba
block and its bidirectional variant over padded sequences, :mod:`graphlab.nn.mamba_graph` the GatedGCN,
Graph-Mamba and GMN layers, :mod:`graphlab.nn.subgraph` the subgraph-GNN layers on pair tensors (SWL family /
GNN-SSWL+, DS-GNN, DSS-GNN).
"""

from graphlab.nn.aggr import LCMAggregation, RecurrentAggregation
from graphlab.nn.conv import GCNConv, GINConv, GINEConv, SAGEConv
from graphlab.nn.dropout import Dropout, UniformDropout
from graphlab.nn.mamba import BiMamba, Mamba
from graphlab.nn.mamba_graph import GatedGCNConv, GMNLayer, GraphMambaLayer
from graphlab.nn.ncn import NCNCPredictor, NCNPredictor
from graphlab.nn.sheaf import (
    DiscreteSheafDiffusionLayer,
    EdgeWeightLearner,
    FixedRestrictionMaps,
    LocalConcatSheafLearner,
    LocalConcatSheafLearnerVariant,
    Orthogonal,
    SheafConv,
    SheafLaplacianLearner,
)
from graphlab.nn.sparse_input import DropoutLinear
from graphlab.nn.subgraph import DSConv, DSSConv, GNNAKConv, PairEmbedding, SSWLPlusConv, SUNConv

__all__ = [
    "BiMamba",
    "DiscreteSheafDiffusionLayer",
    "Dropout",
    "DropoutLinear",
    "DSConv",
    "GNNAKConv",
    "SUNConv",
    "DSSConv",
    "EdgeWeightLearner",
    "FixedRestrictionMaps",
    "GCNConv",
    "GatedGCNConv",
    "GMNLayer",
    "GraphMambaLayer",
    "GINConv",
    "GINEConv",
    "LCMAggregation",
    "LocalConcatSheafLearner",
    "Mamba",
    "NCNCPredictor",
    "NCNPredictor",
    "LocalConcatSheafLearnerVariant",
    "Orthogonal",
    "PairEmbedding",
    "RecurrentAggregation",
    "SAGEConv",
    "SheafConv",
    "SSWLPlusConv",
    "UniformDropout",
    "SheafLaplacianLearner",
]
