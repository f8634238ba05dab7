"""Subgraph GNN models on pair tensors (:mod:`graphlab.models.subgraph.swl`: DS/DSS-GNN and the SWL family)."""

from graphlab.models.subgraph.swl import DSGNN, DSSGNN, PSWL, SSWL, SWLSV, SWLVS, GNNSSWLPlus, SubgraphWL

__all__ = ["DSGNN", "DSSGNN", "GNNSSWLPlus", "PSWL", "SSWL", "SWLSV", "SWLVS", "SubgraphWL"]
