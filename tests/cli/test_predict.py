"""`graphlab predict` writes each task's predictions for the chosen split to a file (.pt, .csv, .parquet)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import yaml

from graphlab.cli import build_cli
from graphlab.eval.predictions import write_predictions

QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
TASKS = {
    "node": ("NodeClassification", {"class_path": "graphlab.models.GCN", "init_args": {"hidden_channels": 8}},
             {"class_path": "graphlab.data.CSBMData", "init_args": {"num_nodes": 120, "num_classes": 3}}),
    "graph": ("GraphPrediction", {"class_path": "graphlab.models.GIN", "init_args": {"hidden_channels": 8,
                                                                                   "num_layers": 2}},
              {"class_path": "graphlab.data.CSLData", "init_args": {"positional_encoding": "rwse", "batch_size": 16}}),
    "link": ("LinkPrediction", {"class_path": "graphlab.models.LinkGNN", "init_args": {"hidden_channels": 8}},
             {"class_path": "graphlab.data.RandomLinkData", "init_args": {"num_nodes": 100}}),
}


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["graphlab"])


def _trained(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    task, model, data = TASKS[kind]
    config = {"seed_everything": 0, "trainer": {"max_epochs": 2},
              "model": {"class_path": f"graphlab.tasks.{task}", "init_args": {"model": model}}, "data": data}
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(config))
    build_cli(["fit", "--config", str(path), f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}", *QUIET])
    return path, tmp_path / "runs"


def _predict(config: Path, runs: Path, *extra: str):
    return build_cli(["predict", "--config", str(config), f"--trainer.logger.init_args.save_dir={runs}",
                      "--ckpt_path", "best", *QUIET, *extra])


@pytest.mark.parametrize("kind", ["node", "graph", "link"])
def test_predict_writes_ids_probabilities_and_split_beside_the_run(tmp_path, kind):
    config, runs = _trained(tmp_path, kind)
    cli = _predict(config, runs, "--predict_split", "val")
    out = runs / kind / "version_0" / "predictions.pt"  # the checkpoint's run folder
    table = torch.load(out, weights_only=True)
    assert table["split"] == "val"
    dm = cli.datamodule
    if kind == "node":
        graph = dm.graph
        assert table["node_id"].tolist() == graph.val_mask.nonzero().view(-1).tolist()
        assert table["prob"].shape == (int(graph.val_mask.sum()), 3)
        assert torch.allclose(table["prob"].sum(dim=1), torch.ones(len(table["node_id"])))
        assert torch.equal(table["label"], graph.y[graph.val_mask])
    elif kind == "graph":
        n_val = len(dm.split_index.val)
        assert table["graph_id"].tolist() == list(range(n_val))
        assert table["prob"].shape == (n_val, dm.num_outputs)
    else:
        val = dm.parts["val"]
        pos, neg = val.pos_edge_index, val.neg_edge_index
        assert torch.equal(table["src"], torch.cat([pos[0], neg[0]]))
        assert torch.equal(table["dst"], torch.cat([pos[1], neg[1]]))
        assert table["label"].tolist() == [1.0] * pos.size(1) + [0.0] * neg.size(1)
        assert ((table["prob"] >= 0) & (table["prob"] <= 1)).all()


def test_predict_out_csv_has_one_column_per_class(tmp_path):
    pd = pytest.importorskip("pandas")
    config, runs = _trained(tmp_path, "node")
    _predict(config, runs, "--predict_out", str(tmp_path / "p.csv"))
    frame = pd.read_csv(tmp_path / "p.csv")
    assert list(frame.columns) == ["split", "node_id", "prob_0", "prob_1", "prob_2", "label"]
    assert set(frame["split"]) == {"test"}
    pt = tmp_path / "p.pt"
    _predict(config, runs, "--predict_out", str(pt))
    assert frame["node_id"].tolist() == torch.load(pt, weights_only=True)["node_id"].tolist()


def test_parquet_round_trips(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow", reason="Parquet output needs pyarrow")
    table = {"node_id": torch.tensor([4, 7]), "prob": torch.tensor([[0.25, 0.75], [1.0, 0.0]])}
    write_predictions(tmp_path / "p.parquet", table, "test")
    frame = pd.read_parquet(tmp_path / "p.parquet")
    assert frame["prob_1"].tolist() == [0.75, 0.0] and frame["node_id"].tolist() == [4, 7]


def test_parquet_without_pyarrow_says_how_to_fix(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match="pip install pyarrow"):
        write_predictions(tmp_path / "p.parquet", {"node_id": torch.tensor([1])}, "test")
    assert not (tmp_path / "p.parquet").exists()


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown suffix '.txt'"):
        write_predictions(tmp_path / "p.txt", {"node_id": torch.tensor([1])}, "test")
