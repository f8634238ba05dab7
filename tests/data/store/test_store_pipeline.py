"""DiskGNNLoader: every combination of offline sampling, packing, the hot cache and prefetching yields exactly the
features of a plain in-memory index, and the switches do what they claim (rows served from cache / packed file)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from graphlab.data import DiskFeatureStore, sample_neighbors, write_store
from graphlab.data.store import DiskGNNLoader
from graphlab.data.store.cache import HotNodeCache
from torch_geometric.data import Data

N, F = 600, 6


@pytest.fixture
def stores(tmp_path: Path):
    g = torch.Generator().manual_seed(0)
    data = Data(x=torch.randn(N, F, generator=g), edge_index=torch.randint(0, N, (2, 4000), generator=g),
                num_nodes=N)
    features, graph = write_store(tmp_path / "s", data)
    return data, features, graph


def _sampler(graph, seed: int = 0):
    rowptr, col, _ = graph.csr()
    generator = torch.Generator().manual_seed(seed)
    return lambda seeds: sample_neighbors(rowptr, col, seeds, [4, 3], generator=generator)


FLAGS = [(o, p, c, f) for o, p, c, f in itertools.product([False, True], repeat=4) if o or not p]


@pytest.mark.parametrize("offline,pack,cache,prefetch", FLAGS)
def test_every_switch_combination_matches_plain_indexing(stores, offline, pack, cache, prefetch) -> None:
    data, features, graph = stores
    degree = graph.csr()[0].diff()
    loader = DiskGNNLoader(features, torch.arange(0, N, 3), 32, _sampler(graph), offline=offline, pack=pack,
                           cache_bytes=(100 * F * 4 if cache else 0), prefetch=2 if prefetch else 0, degree=degree,
                           scan_rows=64, pack_buffer_bytes=1024, generator=torch.Generator().manual_seed(1))
    for epoch in range(2):
        seen = []
        for batch in loader:
            assert torch.equal(batch.n_id[:batch.seeds.numel()], batch.seeds)  # graphlab's sampler: seeds first
            assert torch.equal(batch.x, data.x[batch.n_id])
            seen.append(batch.seeds)
        assert torch.equal(torch.sort(torch.cat(seen)).values, torch.arange(0, N, 3))
        stats = loader.stats
        assert stats.batches == len(loader) and stats.rows_needed == stats.rows_from_cache + stats.rows_from_packed \
            + stats.rows_from_store
        assert (stats.rows_from_cache > 0) == cache and (stats.rows_from_packed > 0) == pack
    assert not list((features.path).glob("*.epoch"))  # the packed files are deleted after their epochs


def test_cache_selects_the_most_frequent_nodes_within_budget() -> None:
    cache = HotNodeCache(10, (2,), torch.float32, budget_bytes=3 * 8 + 7)  # room for 3 rows
    score = torch.tensor([0, 5, 1, 9, 0, 5, 2, 0, 0, 7])
    assert cache.select(score).tolist() == [1, 3, 9]
    assert HotNodeCache(10, (2,), torch.float32, 10**6).select(score).tolist() == [1, 2, 3, 5, 6, 9]  # score > 0
    with pytest.raises(ValueError, match="one entry per node"):
        cache.select(torch.ones(3))


def test_loader_rejects_bad_switches(stores) -> None:
    _, features, graph = stores
    with pytest.raises(ValueError, match="pack=True needs offline=True"):
        DiskGNNLoader(features, torch.arange(5), 2, _sampler(graph), offline=False, pack=True)
    with pytest.raises(ValueError, match="pass degree="):
        DiskGNNLoader(features, torch.arange(5), 2, _sampler(graph), offline=False, pack=False, cache_bytes=100)
    with pytest.raises(IndexError, match=r"seeds must lie in \[0, 600\)"):
        DiskGNNLoader(features, torch.tensor([600]), 2, _sampler(graph))
    loader = DiskGNNLoader(features, torch.arange(5), 2, lambda seeds: "nope")
    with pytest.raises(TypeError, match="must return node ids"):
        list(loader)


def test_prefetch_thread_forwards_errors(stores) -> None:
    _, features, _ = stores

    def failing(seeds):
        if int(seeds[0]) >= 4:
            raise RuntimeError("sampler failed")
        return seeds

    loader = DiskGNNLoader(features, torch.arange(8), 2, failing, offline=False, pack=False, prefetch=2,
                           shuffle=False)
    with pytest.raises(RuntimeError, match="sampler failed"):
        list(loader)
