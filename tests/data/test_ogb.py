"""OGB DataModules: real ogbg-molbace, OGB-layout node/link fixtures, and every error path."""

from __future__ import annotations

import math
import shutil
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from graphlab.data import OGBGraphData, OGBLinkData, OGBNodeData
from graphlab.data import _ogb_compat
from graphlab.data import ogb as ogb_module


def _edges_as_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.t().tolist()))


# --------------------------------------------------------------------------- graph (real data)
@pytest.mark.data
def test_graph_molbace_split_metadata_and_batches(copy_shared) -> None:
    root = copy_shared("ogbg_molbace")
    dm = OGBGraphData("OGBG-MOLBACE", root=str(root), batch_size=16, download=False)

    info = dm.info  # from master.csv + the first raw rows, before processing
    assert not (root / "ogbg_molbace" / "processed").exists()
    assert (info.level, info.task_type, info.metric, info.ogb_name) == ("graph", "binary", "rocauc", "ogbg-molbace")
    assert (info.num_features, info.num_edge_features, info.num_outputs) == (9, 3, 1)
    assert info.categorical_features and info.higher_is_better

    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.dataset) == 1513
    assert {k: len(v) for k, v in dm.split_index.items()} == {"train": 1210, "valid": 151, "test": 152}
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, Batch) and batch.num_graphs == 16
    assert batch.y.shape == (16, 1) and batch.y.dtype == torch.float
    assert batch.x.dtype == torch.long and batch.x.size(1) == 9
    assert batch.edge_attr.dtype == torch.long and batch.edge_attr.size(1) == 3
    assert sum(b.num_graphs for b in dm.test_dataloader()) == 152


@pytest.mark.data
def test_graph_regression_keeps_float_targets(copy_shared) -> None:
    root = copy_shared("ogbg_molfreesolv")
    dm = OGBGraphData("ogbg_molfreesolv", root=str(root), batch_size=64, download=False)
    assert (dm.info.task_type, dm.info.metric, dm.info.higher_is_better) == ("regression", "rmse", False)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert batch.y.shape == (64, 1) and batch.y.dtype == torch.float
    assert {k: len(v) for k, v in dm.split_index.items()} == {"train": 513, "valid": 64, "test": 65}


@pytest.mark.data
def test_link_ddi_real_split(copy_shared) -> None:
    root = copy_shared("ogbl_ddi")
    dm = OGBLinkData("ogbl-ddi", root=str(root), download=False, featureless="degree")
    assert (dm.info.metric, dm.info.num_features) == ("hits@20", 1)
    parts = dm.parts
    assert parts["train"].num_nodes == 4267 and parts["train"].edge_index.size(1) == 2135822
    assert parts["train"].pos_edge_index.size(1) == 1067911
    assert (parts["val"].pos_edge_index.size(1), parts["val"].neg_edge_index.size(1)) == (133489, 101882)
    assert (parts["test"].pos_edge_index.size(1), parts["test"].neg_edge_index.size(1)) == (133489, 95599)


# --------------------------------------------------------------------------- node (fixture)
def test_fixtures_match_ogb_master_csv() -> None:
    """The fixtures copy the layout that ogb's master.csv prescribes for these names."""
    arxiv = ogb_module.OGBMeta.lookup("ogbn-arxiv", "node")
    assert (arxiv.flag("add_inverse_edge"), arxiv.flag("has_node_attr"), arxiv.flag("has_edge_attr")) == (
        False, True, False)
    assert (arxiv.split_name, arxiv.files_list("additional node files"), arxiv.version) == ("time", ["node_year"], "1")
    assert not arxiv.flag("binary") and not arxiv.flag("is hetero")
    ddi = ogb_module.OGBMeta.lookup("ogbl-ddi", "link")
    assert (ddi.flag("add_inverse_edge"), ddi.flag("has_node_attr"), ddi.split_name) == (True, False, "target")
    assert ddi.files_list("additional edge files") == [] and ddi.metric == "hits@20"


def test_node_fixture_graph_split_and_metadata(ogb_fixture) -> None:
    fx = ogb_fixture.node_arxiv()
    dm = OGBNodeData("ogbn-arxiv", root=str(fx.root), download=False, undirected=False)

    info = dm.info
    assert (info.level, info.task_type, info.metric, info.ogb_name) == ("node", "multiclass", "acc", "ogbn-arxiv")
    assert (info.num_features, info.num_outputs, info.num_edge_features) == (4, 40, 0)
    assert not info.categorical_features

    dm.setup("fit")
    data = next(iter(dm.train_dataloader()))
    assert isinstance(data, Data) and not isinstance(data, Batch)
    assert data.num_nodes == 6
    assert _edges_as_set(data.edge_index) == set(map(tuple, fx.arrays["edge"].tolist()))
    torch.testing.assert_close(data.x, torch.from_numpy(fx.arrays["node_feat"]).float())
    assert data.y.dtype == torch.long and data.y.tolist() == fx.arrays["node_label"].tolist()
    assert data.node_year.view(-1).tolist() == fx.arrays["node_year"].tolist()
    for mask, part in (("train_mask", "train"), ("val_mask", "valid"), ("test_mask", "test")):
        assert data[mask].dtype == torch.bool and data[mask].dim() == 1
        assert data[mask].nonzero().view(-1).tolist() == fx.arrays[part].tolist()
    for loader in (dm.val_dataloader(), dm.test_dataloader(), dm.predict_dataloader()):
        assert next(iter(loader)) is data


def test_node_undirected_adds_reverse_edges(ogb_fixture) -> None:
    fx = ogb_fixture.node_arxiv()
    data = OGBNodeData("ogbn-arxiv", root=str(fx.root), download=False).graph
    expected = {(u, v) for u, v in fx.arrays["edge"].tolist()} | {(v, u) for u, v in fx.arrays["edge"].tolist()}
    assert _edges_as_set(data.edge_index) == expected


# --------------------------------------------------------------------------- link (fixture)
def test_link_fixture_parts_match_split_files(ogb_fixture) -> None:
    fx = ogb_fixture.link_ddi()
    dm = OGBLinkData("ogbl-ddi", root=str(fx.root), download=False)

    info = dm.info
    assert (info.level, info.task_type, info.metric, info.ogb_name) == ("link", "link", "hits@20", "ogbl-ddi")
    assert (info.num_features, info.num_outputs) == (8, 1)  # one-hot identity over 8 nodes

    dm.setup("fit")
    train = next(iter(dm.train_dataloader()))
    written = fx.arrays["train"].tolist()
    # message graph: the training edges with their inverses (master.csv add_inverse_edge True)
    assert _edges_as_set(train.edge_index) == {(u, v) for u, v in written} | {(v, u) for u, v in written}
    assert train.pos_edge_index.tolist() == fx.arrays["train"].T.tolist()
    assert "neg_edge_index" not in train
    torch.testing.assert_close(train.x, torch.eye(8))
    for part, loader in (("valid", dm.val_dataloader()), ("test", dm.test_dataloader())):
        data = next(iter(loader))
        assert data.edge_index is train.edge_index
        assert data.pos_edge_index.tolist() == fx.arrays[part].T.tolist()
        assert data.neg_edge_index.tolist() == fx.arrays[f"{part}_neg"].T.tolist()
        assert data.pos_edge_index.dtype == data.neg_edge_index.dtype == torch.long


def test_link_degree_features(ogb_fixture) -> None:
    fx = ogb_fixture.link_ddi()
    dm = OGBLinkData("ogbl-ddi", root=str(fx.root), download=False, featureless="degree")
    assert dm.info.num_features == 1
    x = dm.parts["train"].x
    degrees = torch.tensor([1, 2, 2, 2, 2, 2, 2, 1], dtype=torch.float)  # path graph 0-1-...-7
    torch.testing.assert_close(x, torch.log1p(degrees).view(-1, 1))


def test_link_one_hot_refuses_large_graphs(ogb_fixture, monkeypatch) -> None:
    fx = ogb_fixture.link_ddi()
    monkeypatch.setattr(ogb_module, "MAX_ONE_HOT_NODES", 5)
    with pytest.raises(ValueError, match="8 nodes.*featureless='degree'"):
        _ = OGBLinkData("ogbl-ddi", root=str(fx.root), download=False).info


def test_split_files_load_weights_only(ogb_fixture) -> None:
    """A split file holding anything but tensors/numeric arrays is refused, not unpickled."""
    fx = ogb_fixture.link_ddi()
    bad = fx.folder / "split" / "target" / "valid.pt"
    torch.save({"edge": np.array([[0, 1]]), "note": Path("x")}, bad)
    with pytest.raises(Exception, match="Weights only load failed"):
        _ogb_compat.load_split_file(str(bad))


# --------------------------------------------------------------------------- errors
def test_missing_release_file_raises_instead_of_prompting(ogb_fixture) -> None:
    fx = ogb_fixture.link_ddi(release=False)
    dm = OGBLinkData("ogbl-ddi", root=str(fx.root), download=False)
    with pytest.raises(FileNotFoundError, match=r"has no RELEASE_v1\.txt.*input\(\)"):
        dm.prepare_data()


def test_missing_root_names_directory(tmp_path) -> None:
    missing = tmp_path / "nowhere"
    dm = OGBGraphData("ogbg-molbace", root=str(missing), download=False)
    with pytest.raises(FileNotFoundError, match=r"ogbg_molbace \(the directory does not exist\).*download=True"):
        dm.prepare_data()


def test_missing_raw_file_names_file_and_folder(ogb_fixture) -> None:
    fx = ogb_fixture.node_arxiv()
    (fx.folder / "raw" / "node_year.csv.gz").unlink()
    dm = OGBNodeData("ogbn-arxiv", root=str(fx.root), download=False)
    with pytest.raises(FileNotFoundError, match=rf"raw/node_year\.csv\.gz in {fx.folder}"):
        dm.prepare_data()


def test_offline_download_failure_is_reported_clearly(tmp_path, monkeypatch) -> None:
    def offline(url: str, folder: str) -> str:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(_ogb_compat, "download_url", offline)
    dm = OGBLinkData("ogbl-ddi", root=str(tmp_path), download=True)
    with pytest.raises(FileNotFoundError, match=r"download failed \(<urlopen error no network>\).*copy the unzipped"):
        dm.prepare_data()


def test_download_path_fetches_and_unpacks(ogb_fixture, tmp_path, monkeypatch) -> None:
    """With files missing and download=True the OGB archive is fetched, unpacked and loaded."""
    fx = ogb_fixture.link_ddi()
    archive = Path(shutil.make_archive(str(tmp_path / "ddi"), "zip", root_dir=fx.root, base_dir="ogbl_ddi"))
    fetched: list[str] = []

    def fake_download(url: str, folder: str) -> str:
        fetched.append(url)
        with zipfile.ZipFile(archive) as src, zipfile.ZipFile(Path(folder) / "ddi.zip", "w") as dst:
            for item in src.infolist():  # the OGB archive's top folder is the download_name
                dst.writestr(item.filename.replace("ogbl_ddi", "ddi", 1), src.read(item))
        return str(Path(folder) / "ddi.zip")

    monkeypatch.setattr(_ogb_compat, "download_url", fake_download)
    root = tmp_path / "fresh"
    dm = OGBLinkData("ogbl-ddi", root=str(root), download=True)
    dm.prepare_data()
    assert fetched == ["http://snap.stanford.edu/ogb/data/linkproppred/ddi.zip"]
    assert (root / "ogbl_ddi" / "RELEASE_v1.txt").is_file() and not (root / "ddi").exists()
    assert dm.parts["test"].neg_edge_index.tolist() == fx.arrays["test_neg"].T.tolist()


@pytest.mark.parametrize(
    ("cls", "name", "match"),
    [
        (OGBGraphData, "ogbg-molfoo", "unknown OGB graph dataset 'ogbg-molfoo'; known names: .*ogbg-molbace"),
        (OGBNodeData, "ogbl-ddi", "unknown OGB node dataset 'ogbl-ddi'; known names: .*ogbn-arxiv"),
        (OGBLinkData, "ogbl-wikikg2", "knowledge graph"),
        (OGBNodeData, "ogbn-mag", "heterogeneous"),
        (OGBGraphData, "ogbg-code2", "subtoken prediction"),
    ],
)
def test_unknown_or_unsupported_names(tmp_path, cls, name, match) -> None:
    with pytest.raises(ValueError, match=match):
        cls(name, root=str(tmp_path), download=False)


def test_nan_labels_survive_as_float(tmp_path) -> None:
    transform = ogb_module.OGBGraphTargets("binary", constant_x=True)
    data = transform(Data(y=torch.tensor([[1.0, math.nan]]), num_nodes=3))
    assert data.y.shape == (1, 2) and torch.isnan(data.y[0, 1])
    assert data.x.shape == (3, 1)
