"""graphlab DataModules: OGB, PyG benchmark datasets and built-in synthetic benchmarks."""

from graphlab.data.base import DatasetInfo, GraphDataModule, resolve_root
from graphlab.data.ogb import OGBGraphData, OGBLinkData, OGBNodeData
from graphlab.data.pyg import PyGData

__all__ = [
    "DatasetInfo",
    "GraphDataModule",
    "OGBGraphData",
    "OGBLinkData",
    "OGBNodeData",
    "PyGData",
    "resolve_root",
]
