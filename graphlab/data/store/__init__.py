"""graphlab's out-of-core store: node features and graph topology in memory-mapped files behind PyG's
``FeatureStore`` / ``GraphStore`` interfaces, with a checksummed manifest, atomic writes and DiskGNN-style loading
(offline sampling, per-batch packing, a hot-node cache, prefetching)."""

from graphlab.data.store.convert import open_store, write_store
from graphlab.data.store.datamodule import DiskStoreData
from graphlab.data.store.feature_store import DiskFeatureStore
from graphlab.data.store.graph_store import DiskGraphStore
from graphlab.data.store.manifest import StoreCorruptedError, StoreNotFoundError
from graphlab.data.store.pipeline import DiskGNNLoader, LoadedBatch
from graphlab.data.store.writer import TensorWriter

__all__ = ["DiskFeatureStore", "DiskGNNLoader", "DiskGraphStore", "DiskStoreData", "LoadedBatch", "StoreCorruptedError",
           "StoreNotFoundError", "TensorWriter", "open_store", "write_store"]
