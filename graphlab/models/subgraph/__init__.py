"""Subgraph GNN models on pair tensors (:mod:`graphlab.models.subgraph.swl`: DS/DSS-GNN and the SWL family;
:mod:`graphlab.models.subgraph.ak`: GNN-AK(+) and SUN)."""

from graphlab.models.subgraph.ak import GNNAK, SUN
from graphlab.models.subgraph.swl import DSGNN, DSSGNN, PSWL, SSWL, SWLSV, SWLVS, GNNSSWLPlus, SubgraphWL

__all__ = ["DSGNN", "DSSGNN", "GNNAK", "GNNSSWLPlus", "SUN", "PSWL", "SSWL", "SWLSV", "SWLVS", "SubgraphWL"]
