"""PyGData on the real benchmark files (copied to tmp) and every bad-input error."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.datasets import WebKB
from torch_geometric.utils import is_undirected

from graphlab.data import PyGData
from graphlab.data.pyg import planetoid_unlabelled


def _npz_masks(raw_dir: Path, prefix: str, split: int) -> dict[str, np.ndarray]:
    """The geom-gcn split file itself: an independent check of the column selection."""
    with np.load(raw_dir / f"{prefix}_split_0.6_0.2_{split}.npz") as f:
        return {m: f[m].astype(bool) for m in ("train_mask", "val_mask", "test_mask")}


def _assert_masks(data: Data, expected: dict[str, np.ndarray]) -> None:
    for name, mask in expected.items():
        assert data[name].dim() == 1 and data[name].dtype == torch.bool
        assert data[name].numpy().tolist() == mask.tolist(), name


# --------------------------------------------------------------------------- node datasets
@pytest.mark.data
def test_cora_public_split(copy_shared) -> None:
    root = copy_shared("Cora")
    dm = PyGData("CORA", root=str(root), download=False)
    info = dm.info
    assert (info.level, info.task_type, info.metric) == ("node", "multiclass", "acc")
    assert (info.num_features, info.num_outputs, info.num_splits) == (1433, 7, 1)

    dm.setup("fit")
    data = next(iter(dm.train_dataloader()))
    assert isinstance(data, Data) and not isinstance(data, Batch)
    assert (data.num_nodes, data.edge_index.size(1)) == (2708, 10556)
    assert [int(data[m].sum()) for m in ("train_mask", "val_mask", "test_mask")] == [140, 500, 1000]
    assert data.y.dtype == torch.long and data.y.shape == (2708,)
    row_sums = data.x.sum(dim=1)  # NormalizeFeatures is the Planetoid convention
    torch.testing.assert_close(row_sums[row_sums > 0], torch.ones(int((row_sums > 0).sum())))


@pytest.mark.data
def test_cora_geom_gcn_selects_split_column(copy_shared) -> None:
    root = copy_shared("Cora")
    dm = PyGData("cora", root=str(root), planetoid_split="geom-gcn", split=7, download=False)
    assert dm.info.num_splits == 10
    _assert_masks(dm.graph, _npz_masks(root / "Cora" / "geom-gcn" / "raw", "cora", 7))


def test_planetoid_unlabelled_are_the_gaps_in_the_test_index(tmp_path) -> None:
    index = tmp_path / "ind.toy.test.index"
    index.write_text("\n".join(str(i) for i in [12, 10, 15, 11, 17]) + "\n")
    assert planetoid_unlabelled(index).tolist() == [13, 14, 16]
    index.write_text("3\n4\n5\n")
    assert planetoid_unlabelled(index).numel() == 0


@pytest.mark.data
def test_citeseer_geom_gcn_masks_skip_unlabelled_nodes(copy_shared) -> None:
    """PyG gives CiteSeer's 15 label-less nodes class 0 and the geom-gcn split files include them: the masks
    must leave them out (the NSD / Geom-GCN protocol), and keep every other node of the split file."""
    root = copy_shared("CiteSeer")
    raw = root / "CiteSeer" / "geom-gcn" / "raw"
    dm = PyGData("citeseer", root=str(root), planetoid_split="geom-gcn", split=2, download=False)
    graph = dm.graph
    listed = {int(v) for v in (raw / "ind.citeseer.test.index").read_text().split()}
    unlabelled = sorted(set(range(min(listed), max(listed) + 1)) - listed)
    assert len(unlabelled) == 15
    assert bool((graph.x[unlabelled].abs().sum(1) == 0).all())  # PyG's zero rows for them
    expected = _npz_masks(raw, "citeseer", 2)
    for name, mask in expected.items():
        mask[unlabelled] = False
    _assert_masks(graph, expected)
    covered = graph.train_mask | graph.val_mask | graph.test_mask
    assert int(covered.sum()) == graph.num_nodes - 15


@pytest.mark.data
def test_texas_split_three_and_structure_options(copy_shared) -> None:
    root = copy_shared("texas")
    dm = PyGData("Texas", root=str(root), split=3, download=False)
    assert (dm.info.num_splits, dm.info.num_features, dm.info.num_outputs) == (10, 1703, 5)
    _assert_masks(dm.graph, _npz_masks(root / "texas" / "raw", "texas", 3))
    assert not is_undirected(dm.graph.edge_index)  # stored directed

    raw = PyGData("texas", root=str(root), normalize_features=False, undirected=True, self_loops=True,
                  download=False).graph
    assert set(raw.x.unique().tolist()) <= {0.0, 1.0}  # bag of words, not normalised
    assert is_undirected(raw.edge_index)
    assert bool((raw.edge_index[0] == raw.edge_index[1]).any())


@pytest.mark.data
def test_chameleon_geom_gcn(copy_shared) -> None:
    root = copy_shared("chameleon")
    dm = PyGData("chameleon", root=str(root), split=4, download=False)
    assert (dm.graph.num_nodes, dm.graph.edge_index.size(1)) == (2277, 36101)
    assert (dm.info.num_features, dm.info.num_outputs, dm.info.num_splits) == (2325, 5, 10)
    _assert_masks(dm.graph, _npz_masks(root / "chameleon" / "geom_gcn" / "raw", "chameleon", 4))


@pytest.mark.data
def test_film_actor(copy_shared) -> None:
    root = copy_shared("film")
    dm = PyGData("actor", root=str(root), split=9, download=False)
    assert (dm.graph.num_nodes, dm.info.num_features, dm.info.num_outputs) == (7600, 932, 5)
    _assert_masks(dm.graph, _npz_masks(root / "film" / "raw", "film", 9))


# --------------------------------------------------------------------------- graph datasets
@pytest.mark.data
def test_mutag_folds_disjoint_covering_stratified(copy_shared) -> None:
    root = copy_shared("MUTAG")
    dms = [PyGData("mutag", root=str(root), split=k, download=False) for k in range(10)]
    info = dms[0].info
    assert (info.level, info.task_type, info.num_features, info.num_outputs) == ("graph", "multiclass", 7, 2)
    assert (info.num_edge_features, info.num_splits) == (4, 10)

    everything = set(range(188))
    tests = []
    for dm in dms:
        idx = dm.split_index
        train, val, test = (set(t.tolist()) for t in (idx.train, idx.val, idx.test))
        assert not (train & val or train & test or val & test)
        assert train | val | test == everything
        tests.append(test)
    assert set().union(*tests) == everything and sum(map(len, tests)) == 188  # test folds partition

    labels = dms[0].datasets["all"].y
    overall = labels.float().mean()
    for test in tests:  # stratified: each fold's positive rate is close to the overall rate
        assert abs(labels[sorted(test)].float().mean() - overall) < 0.1

    batch = next(iter(dms[0].train_dataloader()))
    assert isinstance(batch, Batch) and batch.y.dtype == torch.long and batch.y.dim() == 1
    same_seed = PyGData("mutag", root=str(root), split=0, download=False).split_index
    assert torch.equal(same_seed.test, dms[0].split_index.test)


@pytest.mark.data
def test_featureless_tu_gets_one_hot_degree(copy_shared) -> None:
    root = copy_shared("IMDB-BINARY")
    dm = PyGData("imdb-binary", root=str(root), download=False)
    assert dm.info.num_features == 136  # max degree 135 (GIN's one-hot degree width)
    batch = next(iter(dm.val_dataloader()))
    torch.testing.assert_close(batch.x.sum(dim=1), torch.ones(batch.num_nodes))


# --------------------------------------------------------------------------- errors
def test_missing_root(tmp_path) -> None:
    missing = tmp_path / "absent"
    dm = PyGData("cora", root=str(missing), download=False)
    with pytest.raises(FileNotFoundError, match=r"ind\.cora\.x.*absent/Cora/raw \(the directory does not exist\)"):
        dm.prepare_data()


@pytest.mark.data
def test_missing_raw_file_names_file_and_folder(copy_shared) -> None:
    root = copy_shared("texas")
    (root / "texas" / "raw" / "texas_split_0.6_0.2_5.npz").unlink()
    dm = PyGData("texas", root=str(root), download=False)
    with pytest.raises(FileNotFoundError, match=rf"texas_split_0\.6_0\.2_5\.npz in {root / 'texas' / 'raw'}\. "
                                                r"With internet access PyG downloads"):
        _ = dm.info


def test_download_failure_reports_missing_files(tmp_path, monkeypatch) -> None:
    def offline(self: WebKB) -> None:
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(WebKB, "download", offline)
    with pytest.raises(FileNotFoundError, match=r"out1_graph_edges\.txt.*download failed .*offline"):
        PyGData("cornell", root=str(tmp_path), download=True).prepare_data()


def test_zinc_without_raw_files(tmp_path) -> None:
    tmp_path.joinpath("ZINC").mkdir()
    dm = PyGData("ZINC", root=str(tmp_path), download=False)
    with pytest.raises(FileNotFoundError, match=rf"train\.pickle, val\.pickle.* in {tmp_path / 'ZINC' / 'raw'}"):
        dm.prepare_data()


def test_unknown_name_lists_known_names(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"unknown PyG dataset 'coraa'; known names: .*cora.*texas"):
        PyGData("coraa", root=str(tmp_path))


@pytest.mark.parametrize(("name", "split", "extra"), [("texas", 10, {}), ("cora", 1, {}), ("mutag", -1, {}),
                                                      ("cora", 10, {"planetoid_split": "geom-gcn"})])
def test_split_out_of_range(tmp_path, name, split, extra) -> None:
    with pytest.raises(ValueError, match=rf"split={split} is out of range .* choose split in 0\.\."):
        PyGData(name, root=str(tmp_path), split=split, **extra)


def test_options_that_do_not_apply_are_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="planetoid_split applies to Cora/CiteSeer/PubMed only"):
        PyGData("texas", root=str(tmp_path), planetoid_split="geom-gcn")
    with pytest.raises(ValueError, match="ZINC's atom features are categories"):
        PyGData("zinc", root=str(tmp_path), normalize_features=True)
