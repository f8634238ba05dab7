"""Complete models, as a config's ``model.init_args.model.class_path`` names them."""

from graphlab.models.gnn import GCN, GIN, GraphSAGE, LinkGNN
from graphlab.models.mamba import GMN, GraphMamba
from graphlab.models.multiset import MultisetModel, NeighbourhoodModel
from graphlab.models.ncn import NCN, NCNC, NCNEncoder
from graphlab.models.sheaf import (
    BundleNSD,
    ConnectionNSD,
    ContinuousNSD,
    DiagNSD,
    GeneralNSD,
    NeuralSheafDiffusion,
    Sheaf4Rec,
    SheafNN,
)
from graphlab.models.subgraph import DSGNN, DSSGNN, GNNAK, PSWL, SUN, SSWL, SWLSV, SWLVS, GNNSSWLPlus, SubgraphWL

__all__ = [
    "GCN", "GIN", "GMN", "GraphMamba", "GraphSAGE", "LinkGNN", "MultisetModel", "NCN", "NCNC", "NCNEncoder", "NeighbourhoodModel",
    "NeuralSheafDiffusion", "DiagNSD", "BundleNSD", "GeneralNSD", "ContinuousNSD", "ConnectionNSD",
    "SheafNN", "Sheaf4Rec",
    "DSGNN", "DSSGNN", "GNNAK", "GNNSSWLPlus", "PSWL", "SSWL", "SUN", "SWLSV", "SWLVS", "SubgraphWL",
]
