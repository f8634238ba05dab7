"""Subgraph GNN layers on pair tensors ``h(u, v)`` (one row per root ``u`` and node ``v`` of each graph).

:mod:`graphlab.nn.subgraph.swl` holds the SWL family (Zhang et al. 2023: DS/DSS-GNN, SWL(VS/SV), PSWL, SSWL,
GNN-SSWL+) on the aggregation atoms of :func:`graphlab.ops.pair_atom`; the pair index helpers and the pair
embedding are shared by every model of the family.
"""
from graphlab.nn.subgraph.swl import (
    DSConv,
    DSSConv,
    PairEmbedding,
    SSWLPlusConv,
    batch_pair_index,
    pair_index_from_batch,
    subgraph_readout,
)

__all__ = [
    "DSConv", "DSSConv", "PairEmbedding", "SSWLPlusConv", "batch_pair_index", "pair_index_from_batch",
    "subgraph_readout",
]
