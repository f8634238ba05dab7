"""graphlab DataModules: OGB, PyG benchmark datasets and built-in synthetic benchmarks, the neighbour sampler and the
out-of-core disk store."""

from graphlab.data.base import DatasetInfo, GraphDataModule, resolve_root
from graphlab.data.counting import SubstructureCountData
from graphlab.data.ogb import OGBGraphData, OGBLinkData, OGBNodeData
from graphlab.data.movielens import MovieLens100K
from graphlab.data.planetoid_link import PlanetoidLinkData
from graphlab.data.multiset import SecondMinimumData, SecondMinimumGraphData
from graphlab.data.pyg import PyGData
from graphlab.data.sampled import SampledNodeData
from graphlab.data.sampler import GraphlabNeighborSampler, SamplingGraph, neighbor_loader, sample_neighbors
from graphlab.data.store import (
    DiskFeatureStore,
    DiskGraphStore,
    DiskStoreData,
    StoreCorruptedError,
    open_store,
    write_store,
)
from graphlab.data.synthetic import CSBMData, CSLData, RandomLinkData
from graphlab.data.expressivity import EXPData

__all__ = [
    "CSBMData",
    "CSLData",
    "DatasetInfo",
    "DiskFeatureStore",
    "DiskGraphStore",
    "DiskStoreData",
    "EXPData",
    "GraphDataModule",
    "GraphlabNeighborSampler",
    "MovieLens100K",
    "OGBGraphData",
    "OGBLinkData",
    "OGBNodeData",
    "PlanetoidLinkData",
    "PyGData",
    "RandomLinkData",
    "SampledNodeData",
    "SamplingGraph",
    "SecondMinimumData",
    "SecondMinimumGraphData",
    "StoreCorruptedError",
    "SubstructureCountData",
    "neighbor_loader",
    "open_store",
    "resolve_root",
    "sample_neighbors",
    "write_store",
]
