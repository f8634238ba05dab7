"""Several test sets per run (e.g. 2nd-minimum at sizes 32 and 64): every seed records each, the record keeps
mean ± std per test set over the same seeds, and the table shows one row per extra test set."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest
import yaml

from graphlab import runner
from graphlab.eval import leaderboard
from graphlab.eval.leaderboard import SeedResult, render_summary, render_table
from graphlab.info import DatasetInfo


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["graphlab"])


def _config(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "configs" / "lcm" / "sum" / "second-min.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def _main(tmp_path: Path, config: Path, seeds: str) -> dict:
    return runner.main(["--config", str(config), "--seeds", seeds, "--out-dir", str(tmp_path / "lb"),
                        "--runs-dir", str(tmp_path / "runs")])


TEST64 = {0: 0.30, 1: 0.50, 2: 0.70}


def test_every_seed_records_each_test_set_and_the_table_shows_them(tmp_path, monkeypatch):
    info = DatasetInfo("second-min", "graph", "binary", 8, 8, "exact_acc")
    monkeypatch.setattr(runner, "probe", lambda config, extra: (info, None, ["32", "64"]))
    monkeypatch.setattr(runner, "run_seed", lambda config, seed, extra, run_dir, split_arg, num_splits: SeedResult(
        seed, None, 0.9, 0.8 + seed / 100, 3, 1.0, 42, {"64": TEST64[seed]}))
    monkeypatch.setattr(runner, "code_version", lambda ignore=None: "c" * 40)
    record = _main(tmp_path, _config(tmp_path, {"seed_everything": 0}), "0-2")
    assert [r["extra_tests"] for r in record["runs"]] == [{"64": TEST64[s]} for s in range(3)]
    stats = record["extra_tests"]["64"]
    assert stats["mean"] == pytest.approx(0.5) and stats["seeds"] == [0, 1, 2]
    assert stats["std"] == pytest.approx(statistics.stdev(TEST64.values()))  # 0.2
    assert record["test_mean"] == pytest.approx(0.81) and record["test_names"] == ["32", "64"]
    stored = json.loads((tmp_path / "lb" / "second-min" / "lcm__sum__second-min.json").read_text())
    assert stored["extra_tests"] == record["extra_tests"]
    table = (tmp_path / "lb" / "second-min.md").read_text()
    assert "| lcm/sum/second-min [test: 32] | exact_acc | 81.00 ± 1.00 | 90.00 ± 0.00 |" in table
    assert "| lcm/sum/second-min [test: 64] | exact_acc | 50.00 ± 20.00 | same runs | 42 | 0-2 | (same runs) |" in table
    header, rule = table.splitlines()[4:6]
    assert all(line.count("|") == header.count("|") == rule.count("|")
               for line in table.splitlines() if line.startswith("| lcm/"))
    summary = render_summary("lcm", [record])
    assert "[test: 32] 81.00 ± 1.00 (n=3)<br>[test: 64] 50.00 ± 20.00 (n=3)" in summary


def test_records_without_extra_tests_render_as_before():
    record = {"config_id": "a/b", "metric": "acc", "test_mean": 0.5, "test_std": 0.1, "val_mean": 0.6,
              "val_std": None, "num_params": 3, "seeds": [0, 1], "wall_time_s": 3.0, "command": "c", "commit": "abc",
              "runs": [{"seed": 0, "val": 0.6, "test": 0.4, "wall_time_s": 1.0, "num_params": 3},
                       {"seed": 1, "val": 0.6, "test": 0.6, "wall_time_s": 2.0, "num_params": 3}]}
    assert "extra_tests" not in leaderboard.summarise(record)
    table = render_table("ds", [record])
    assert "| a/b | acc | 50.00 ± 10.00 |" in table and "[test:" not in table


def test_a_real_run_records_the_second_test_size(tmp_path):
    """Through the CLI and Lightning: the value recorded for size 6 is the task's own test_exact_acc@6."""
    config = _config(tmp_path, {
        "seed_everything": 0,
        "trainer": {"max_epochs": 1, "enable_progress_bar": False, "enable_model_summary": False},
        "model": {"class_path": "graphlab.tasks.GraphPrediction", "init_args": {"lr": 0.01, "model": {
            "class_path": "graphlab.models.MultisetModel", "init_args": {
                "hidden_channels": 16, "aggr": {"class_path": "torch_geometric.nn.aggr.MaxAggregation"}}}}},
        "data": {"class_path": "graphlab.data.SecondMinimumData", "init_args": {
            "test_sizes": [4, 6], "num_train": 64, "num_val": 16, "num_test": 32, "batch_size": 16, "val_size": 4}},
    })
    record = _main(tmp_path, config, "0")
    run = record["runs"][0]
    assert set(run["extra_tests"]) == {"6"} and 0.0 <= run["extra_tests"]["6"] <= 1.0
    assert record["test_names"] == ["4", "6"] and record["dataset"] == "second-min"
    metrics = next((tmp_path / "runs").rglob("metrics.csv")).read_text().splitlines()
    header = metrics[0].split(",")
    row = next(line.split(",") for line in metrics[1:] if line.split(",")[header.index("test_exact_acc@6")])
    assert float(row[header.index("test_exact_acc@6")]) == pytest.approx(run["extra_tests"]["6"])
    assert float(row[header.index("test_exact_acc")]) == pytest.approx(run["test"])
