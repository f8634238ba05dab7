"""Subgraph GNN layers on pair tensors ``h(u, v)`` (one row per root ``u`` and node ``v`` of each graph).

:mod:`graphlab.nn.subgraph.swl` holds the SWL family (Zhang et al. 2023: DS/DSS-GNN, SWL(VS/SV), PSWL, SSWL,
GNN-SSWL+) on the aggregation atoms of :func:`graphlab.ops.pair_atom`; the pair index helpers and the pair
embedding are shared by every model of the family. :mod:`graphlab.nn.subgraph.ak` holds GNN-AK / GNN-AK+
(:class:`GNNAKConv`), :mod:`graphlab.nn.subgraph.sun` holds SUN (:class:`SUNConv`).
"""
from graphlab.nn.subgraph.swl import (
    DSConv,
    DSSConv,
    PairEmbedding,
    SSWLPlusConv,
    batch_pair_index,
    pair_index_from_batch,
    reset_children,
    subgraph_readout,
)
from graphlab.nn.subgraph.ak import GNNAKConv
from graphlab.nn.subgraph.sun import SUNConv

__all__ = [
    "DSConv", "DSSConv", "PairEmbedding", "SSWLPlusConv", "batch_pair_index", "pair_index_from_batch",
    "reset_children", "subgraph_readout",
    "GNNAKConv", "SUNConv",
]
