"""``graphlab store convert|info|verify`` from PyG datasets, OGB node datasets and raw numpy / CSV files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from graphlab.data import DiskFeatureStore, DiskGraphStore, StoreCorruptedError
from graphlab.entry import main


def _run(capsys: pytest.CaptureFixture, *argv: str) -> str:
    main(["store", *argv])
    return capsys.readouterr().out


def _edge_set(graph: DiskGraphStore) -> set[tuple[int, int]]:
    rowptr, col, _ = graph.csr()
    row = torch.repeat_interleave(torch.arange(rowptr.numel() - 1), rowptr.diff())
    return set(zip(row.tolist(), col.tolist()))


@pytest.mark.data
def test_convert_cora_matches_the_datamodule(copy_shared, tmp_path: Path, capsys) -> None:
    from graphlab.data import PyGData

    root = copy_shared("Cora")
    out = _run(capsys, "convert", "--source", "cora", "--root", str(root), "--out", str(tmp_path / "cora"),
               "--chunk-rows", "1000", "--no-progress")
    assert "tensor x" in out and "[2708, 1433]" in out
    data = PyGData("cora", root=str(root)).graph
    features, graph = DiskFeatureStore(tmp_path / "cora"), DiskGraphStore(tmp_path / "cora")
    for name in ("x", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(features.get_tensor(None, name, index=None), data[name]), name
    assert _edge_set(graph) == set(map(tuple, data.edge_index.t().tolist()))
    assert "OK" in _run(capsys, "verify", str(tmp_path / "cora"))
    with pytest.raises(SystemExit):  # refuses to overwrite: a one-line user error
        _run(capsys, "convert", "--source", "cora", "--root", str(root), "--out", str(tmp_path / "cora"))
    assert "already exists and is not empty; choose another --out or pass --overwrite" in capsys.readouterr().err


def test_convert_ogbn_fixture(ogb_fixture, tmp_path: Path, capsys) -> None:
    fx = ogb_fixture.node_arxiv()
    _run(capsys, "convert", "--source", "ogbn-arxiv", "--root", str(fx.root), "--out", str(tmp_path / "a"),
         "--no-progress")
    features, graph = DiskFeatureStore(tmp_path / "a"), DiskGraphStore(tmp_path / "a")
    torch.testing.assert_close(features.get_tensor(None, "x", index=None),
                               torch.from_numpy(fx.arrays["node_feat"]).float())
    assert features.get_tensor(None, "y", index=None).tolist() == fx.arrays["node_label"].tolist()
    assert features.get_tensor(None, "val_mask", index=None).nonzero().view(-1).tolist() == [3]
    edges = {tuple(e) for e in fx.arrays["edge"].tolist()}
    assert _edge_set(graph) == edges | {(v, u) for u, v in edges}  # OGBNodeData makes arxiv undirected


def test_convert_npy_in_chunks_with_edges_and_labels(tmp_path: Path, capsys) -> None:
    x = np.random.default_rng(0).standard_normal((1001, 7)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    edges = np.array([[0, 5], [5, 1000], [3, 3]], dtype=np.int64)  # [E, 2]
    np.save(tmp_path / "e.npy", edges)
    np.save(tmp_path / "y.npy", np.arange(1001) % 4)
    out = _run(capsys, "convert", "--source", f"npy:{tmp_path / 'x.npy'}", "--edges", str(tmp_path / "e.npy"),
               "--labels", str(tmp_path / "y.npy"), "--out", str(tmp_path / "s"), "--chunk-rows", "100",
               "--no-progress")
    assert "[1001, 7]" in out
    features = DiskFeatureStore(tmp_path / "s", verify="full")
    assert torch.equal(features.get_tensor(None, "x", index=None), torch.from_numpy(x))
    assert torch.equal(features.get_tensor(None, "y", index=None), torch.arange(1001) % 4)
    assert _edge_set(DiskGraphStore(tmp_path / "s")) == {(0, 5), (5, 1000), (3, 3)}


def test_convert_csv_in_chunks(tmp_path: Path, capsys) -> None:
    x = np.random.default_rng(1).standard_normal((257, 3)).astype(np.float32)
    pd.DataFrame(x, columns=["a", "b", "c"]).to_csv(tmp_path / "x.csv", index=False)
    pd.DataFrame([[0, 1], [1, 2], [256, 0]]).to_csv(tmp_path / "e.csv", index=False, header=False)
    with pytest.raises(SystemExit):  # the header line is not numeric: the error says to pass --header
        _run(capsys, "convert", "--source", f"csv:{tmp_path / 'x.csv'}", "--out", str(tmp_path / "bad"))
    assert "pass --header" in capsys.readouterr().err
    _run(capsys, "convert", "--source", f"csv:{tmp_path / 'x.csv'}", "--header", "--out", str(tmp_path / "s"),
         "--chunk-rows", "50", "--no-progress", "--overwrite")
    features = DiskFeatureStore(tmp_path / "s")
    torch.testing.assert_close(features.get_tensor(None, "x", index=None), torch.from_numpy(x))
    pd.DataFrame([[0, 1], [1, 2], [256, 0]]).to_csv(tmp_path / "e.csv", index=False)  # now with a header
    _run(capsys, "convert", "--source", f"csv:{tmp_path / 'x.csv'}", "--header", "--edges", str(tmp_path / "e.csv"),
         "--out", str(tmp_path / "s"), "--overwrite", "--no-progress")
    assert _edge_set(DiskGraphStore(tmp_path / "s")) == {(0, 1), (1, 2), (256, 0)}


def test_info_and_verify_report_corruption(tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "x.npy", np.ones((10, 2), dtype=np.float64))
    _run(capsys, "convert", "--source", f"npy:{tmp_path / 'x.npy'}", "--out", str(tmp_path / "s"), "--no-progress")
    assert "float64" in _run(capsys, "info", str(tmp_path / "s"))
    (file,) = (tmp_path / "s").glob("x.*.bin")
    data = bytearray(file.read_bytes())
    data[-1] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(SystemExit):
        _run(capsys, "verify", str(tmp_path / "s"))
    assert f"{file.name}: checksum mismatch in chunk 0" in capsys.readouterr().err
    with pytest.raises(StoreCorruptedError):
        DiskFeatureStore(tmp_path / "s", verify="full")


def test_convert_rejects_bad_sources(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        _run(capsys, "convert", "--source", f"npy:{tmp_path / 'missing.npy'}", "--out", str(tmp_path / "s"))
    assert "missing.npy does not exist" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.ones((4, 2), dtype=np.float32))
    np.save(tmp_path / "e.npy", np.array([[0, 9]]))
    with pytest.raises(SystemExit):
        _run(capsys, "convert", "--source", f"npy:{tmp_path / 'x.npy'}", "--edges", str(tmp_path / "e.npy"),
             "--out", str(tmp_path / "s2"), "--no-progress")
    assert "node ids must lie in [0, 4)" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(SystemExit):
        _run(capsys, "convert", "--source", f"npy:{tmp_path / 'x.npy'}", "--out", str(tmp_path / "other"),
             "--overwrite")
    assert "not a graphlab store; refusing to overwrite" in capsys.readouterr().err
