"""graphlab DataModules: OGB, PyG benchmark datasets and built-in synthetic benchmarks; the out-of-core disk store."""

from graphlab.data.base import DatasetInfo, GraphDataModule, resolve_root
from graphlab.data.ogb import OGBGraphData, OGBLinkData, OGBNodeData
from graphlab.data.movielens import MovieLens100K
from graphlab.data.planetoid_link import PlanetoidLinkData
from graphlab.data.multiset import SecondMinimumData, SecondMinimumGraphData
from graphlab.data.pyg import PyGData
from graphlab.data.store import DiskFeatureStore, DiskGraphStore, StoreCorruptedError, open_store, write_store
from graphlab.data.synthetic import CSBMData, CSLData, RandomLinkData

__all__ = [
    "CSBMData",
    "CSLData",
    "DatasetInfo",
    "DiskFeatureStore",
    "DiskGraphStore",
    "GraphDataModule",
    "MovieLens100K",
    "OGBGraphData",
    "OGBLinkData",
    "OGBNodeData",
    "PlanetoidLinkData",
    "PyGData",
    "RandomLinkData",
    "SecondMinimumData",
    "SecondMinimumGraphData",
    "StoreCorruptedError",
    "open_store",
    "resolve_root",
    "write_store",
]
