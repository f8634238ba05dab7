"""The expressivity pair benchmarks: counts against the papers, each pair non-isomorphic (and 1-WL-equivalent where
the benchmark says so, by networkx's own WL hash), pinned checksums, clear errors, and the EXP DataModule's folds."""

from __future__ import annotations

import shutil
from pathlib import Path

import networkx as nx
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_networkx

from graphlab.data.expressivity import (
    BREC_COUNTS,
    BREC_FILES,
    EXPData,
    brec_pairs,
    csl_pairs,
    exp_pairs,
    from_graph6,
    load_pair_benchmarks,
    sr25_pairs,
)


def _nx(graph: Data) -> nx.Graph:
    g = to_networkx(graph, to_undirected=True)
    nx.set_node_attributes(g, {i: str(int(v)) for i, v in enumerate(graph.x.view(-1).tolist())}, "x")
    return g


def _wl(graph: Data) -> str:
    """networkx's 1-WL colour-refinement hash, starting from the node feature (constant or EXP's label)."""
    return nx.weisfeiler_lehman_graph_hash(_nx(graph), node_attr="x", iterations=5)


def test_csl_pairs_are_45_one_wl_equivalent_non_isomorphic_pairs():
    bench = csl_pairs()
    assert bench.total == 45
    for g, h in bench.pairs:
        assert _wl(g) == _wl(h)
        assert all(d == 4 for _, d in _nx(g).degree())
    assert not nx.is_isomorphic(_nx(bench.pairs[0][0]), _nx(bench.pairs[0][1]))


def test_from_graph6_matches_networkx():
    graph = nx.petersen_graph()
    text = nx.to_graph6_bytes(graph, header=False).strip()
    ours = from_graph6(text)
    assert ours.num_nodes == 10 and ours.x.shape == (10, 1)
    assert nx.is_isomorphic(_nx(ours), graph)
    both_ways = {(u, v) for u, v in graph.edges()} | {(v, u) for u, v in graph.edges()}
    assert {tuple(e) for e in ours.edge_index.t().tolist()} == both_ways  # same labels, both directions


@pytest.mark.data
def test_sr25_is_105_pairs_of_srg_25_12_5_6(shared_data):
    bench = sr25_pairs(shared_data)
    assert bench.total == 105
    graphs = {id(g): g for pair in bench.pairs for g in pair}
    assert len(graphs) == 15
    for graph in graphs.values():
        g = _nx(graph)
        assert g.number_of_nodes() == 25 and all(d == 12 for _, d in g.degree())
        u, v = next(iter(g.edges()))
        assert len(set(g[u]) & set(g[v])) == 5  # lambda
    g, h = bench.pairs[0]
    assert not nx.is_isomorphic(_nx(g), _nx(h))


@pytest.mark.data
def test_exp_is_600_one_wl_equivalent_pairs_with_different_labels(shared_data):
    bench = exp_pairs(shared_data)
    assert bench.total == 600
    for g, h in bench.pairs[:100]:
        assert int(g.y) != int(h.y)
        assert _wl(g) == _wl(h)
        assert g.x.shape[1] == 1 and set(g.x.view(-1).tolist()) <= {0.0, 1.0}


@pytest.mark.slow  # ~7 s: parses every BREC graph (CFI graphs have up to 198 nodes)
@pytest.mark.data
def test_brec_has_the_papers_400_pairs(shared_data):
    counts = {c: brec_pairs(shared_data, c).total for c in BREC_FILES}
    assert counts == BREC_COUNTS
    assert sum(counts.values()) == 400
    # the paper's "Regular" group: simple regular + strongly regular + 4-vertex condition + distance regular
    assert counts["regular"] + counts["strongly_regular"] + counts["4vertex"] + counts["distance_regular"] == 140
    assert [b.category for b in load_pair_benchmarks("brec", str(shared_data))] == list(BREC_FILES)


@pytest.mark.data
@pytest.mark.parametrize("category", ["basic", "regular", "extension"])
def test_brec_small_pairs_are_non_isomorphic(shared_data, category):
    bench = brec_pairs(shared_data, category)
    assert bench.total == BREC_COUNTS[category]
    for g, h in bench.pairs:
        assert not nx.is_isomorphic(_nx(g), _nx(h))


@pytest.mark.data
def test_brec_basic_pairs_are_one_wl_equivalent(shared_data):
    # BREC, Section 3.1: basic graphs are 1-WL-indistinguishable pairs of 10-node graphs
    for g, h in brec_pairs(shared_data, "basic").pairs:
        assert g.num_nodes == 10 and _wl(g) == _wl(h)


@pytest.mark.data
def test_a_file_that_is_not_the_pinned_one_is_refused(shared_data, tmp_path):
    target = tmp_path / "SR25" / "raw"
    target.mkdir(parents=True)
    shutil.copy(shared_data / "SR25" / "raw" / "sr251256.g6", target)
    (target / "sr251256.g6").write_bytes((target / "sr251256.g6").read_bytes() + b"\n")
    with pytest.raises(ValueError, match="not the pinned"):
        sr25_pairs(tmp_path)


def test_missing_files_name_the_data_folder_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)EXP: missing file\(s\) GRAPHSAT.pkl.*GRAPHLAB_DATA.*--download"):
        exp_pairs(tmp_path)
    with pytest.raises(ValueError, match="unknown BREC category"):
        brec_pairs(tmp_path, "cycles")


@pytest.mark.data
def test_expdata_has_ten_disjoint_stratified_folds(shared_data):
    dm = EXPData(root=str(shared_data), fold=3)
    dm.setup("fit")
    split = dm.split_index
    parts = [split.train, split.val, split.test]
    assert [len(p) for p in parts] == [960, 120, 120]
    assert len(torch.cat(parts).unique()) == 1200
    labels = torch.cat([g.y for g in dm.graphs])
    assert int(labels[split.test].sum()) == 60  # stratified: half satisfiable
    batch = next(iter(dm.train_dataloader()))
    assert batch.x.shape[1] == dm.info.num_features == 1 and dm.info.num_outputs == 2
    with pytest.raises(ValueError, match="choose split in 0..9"):
        EXPData(root=str(shared_data), fold=10)
