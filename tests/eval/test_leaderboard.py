"""The multi-seed runner: seeds and splits, aggregation, atomic resumable records, the table."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest
import yaml

from graphlab.eval import leaderboard
from graphlab.eval.leaderboard import config_id, parse_seeds, render_table

TINY = {
    "seed_everything": 0,
    "trainer": {"max_epochs": 4, "enable_progress_bar": False, "enable_model_summary": False},
    "model": {
        "class_path": "graphlab.tasks.NodeClassification",
        "init_args": {"lr": 0.05, "model": {"class_path": "graphlab.models.GCN", "init_args": {"hidden_channels": 8}}},
    },
    "data": {"class_path": "graphlab.data.CSBMData", "init_args": {"num_nodes": 120, "num_splits": 3}},
}


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["graphlab"])


def _write_config(tmp_path: Path, config: dict = TINY) -> Path:
    path = tmp_path / "configs" / "baselines" / "gcn" / "tiny.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def _run(tmp_path: Path, config: Path, seeds: str, json_out: Path | None = None) -> dict:
    args = ["--config", str(config), "--seeds", seeds, "--out-dir", str(tmp_path / "lb"),
            "--runs-dir", str(tmp_path / "runs")]
    if json_out is not None:
        args += ["--json", str(json_out)]
    return leaderboard.main(args)


@pytest.mark.parametrize("text, seeds", [("0-9", list(range(10))), ("0,3,5", [0, 3, 5]), ("4", [4]), ("2-3,1", [1, 2, 3])])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a-b", "5-2", "-1"])
def test_parse_seeds_rejects_garbage(text):
    with pytest.raises(ValueError, match="seed"):
        parse_seeds(text)


def test_config_id_is_path_below_configs(tmp_path):
    assert config_id(tmp_path / "configs" / "sheaf" / "diag-nsd" / "texas.yaml") == "sheaf/diag-nsd/texas"
    assert config_id(tmp_path / "elsewhere" / "x.yaml") == "x"


def test_runs_each_seed_on_its_split_and_aggregates(tmp_path):
    config = _write_config(tmp_path)
    record = _run(tmp_path, config, "0-2", json_out=tmp_path / "out.json")
    runs = record["runs"]
    assert [r["seed"] for r in runs] == [0, 1, 2]
    assert [r["split"] for r in runs] == [0, 1, 2]  # CSBMData has 3 fixed splits here: seed i uses split i
    tests = [r["test"] for r in runs]
    assert record["test_mean"] == pytest.approx(statistics.fmean(tests))
    assert record["test_std"] == pytest.approx(statistics.stdev(tests))  # unbiased (n - 1)
    assert record["metric"] == "acc"
    assert record["num_params"] == runs[0]["num_params"] > 0
    saved = json.loads((tmp_path / "out.json").read_text())
    assert {"metric", "val_mean", "val_std", "test_mean", "test_std", "runs"} <= saved.keys()
    assert sorted(p.name for p in (tmp_path / "lb").glob("*.md")) == ["baselines-summary.md", "csbm.md"]
    table = (tmp_path / "lb" / "csbm.md").read_text()
    assert "baselines/gcn/tiny" not in (tmp_path / "lb" / "baselines-summary.md").read_text()  # model column
    assert "| gcn |" in (tmp_path / "lb" / "baselines-summary.md").read_text()
    assert "baselines/gcn/tiny" in table and "graphlab leaderboard --config" in table
    assert f"{100 * record['test_mean']:.2f} ± {100 * record['test_std']:.2f}" in table


def test_resume_skips_finished_seeds(tmp_path, monkeypatch):
    config = _write_config(tmp_path)
    _run(tmp_path, config, "0-1")
    calls = []
    real = leaderboard.run_seed

    def counting(config, seed, *args, **kwargs):
        calls.append(seed)
        return real(config, seed, *args, **kwargs)

    monkeypatch.setattr(leaderboard, "run_seed", counting)
    record = _run(tmp_path, config, "0-2")
    assert calls == [2]
    assert record["seeds"] == [0, 1, 2]


def test_changed_config_reruns_every_seed(tmp_path, monkeypatch):
    config = _write_config(tmp_path)
    _run(tmp_path, config, "0")
    changed = {**TINY, "trainer": {**TINY["trainer"], "max_epochs": 3}}
    config.write_text(yaml.safe_dump(changed))
    calls = []
    real = leaderboard.run_seed
    monkeypatch.setattr(leaderboard, "run_seed", lambda c, s, *a, **k: calls.append(s) or real(c, s, *a, **k))
    _run(tmp_path, config, "0")
    assert calls == [0]


def test_seed_beyond_fixed_splits_is_an_error(tmp_path):
    config = _write_config(tmp_path)
    with pytest.raises(ValueError, match="only 3 fixed splits"):
        _run(tmp_path, config, "3")


def test_missing_config_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _run(tmp_path, tmp_path / "nope.yaml", "0")


def test_corrupt_record_is_reported(tmp_path):
    config = _write_config(tmp_path)
    record = _run(tmp_path, config, "0")
    path = tmp_path / "lb" / record["dataset"] / "baselines__gcn__tiny.json"
    path.write_text("{ not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        _run(tmp_path, config, "0")


def test_render_table_single_seed_has_no_std():
    record = {"config_id": "a/b", "metric": "rmse", "test_mean": 1.23456, "test_std": None, "val_mean": 1.0,
              "val_std": None, "num_params": 1234, "seeds": [0], "wall_time_s": 3.0, "command": "graphlab x",
              "commit": "abc"}
    table = render_table("ds", [record])
    assert "| a/b | rmse | 1.23 ± n/a | 1.00 ± n/a | 1,234 | 0-0 |" in table


def _record(cid: str, dataset: str, test_mean: float, test_std: float | None = 0.02) -> dict:
    return {"config_id": cid, "dataset": dataset, "metric": "acc", "test_mean": test_mean, "test_std": test_std,
            "val_mean": 0.5, "val_std": 0.01, "num_params": 10, "seeds": [0, 1, 2], "wall_time_s": 1.0,
            "command": "graphlab leaderboard", "commit": "abc"}


def _write_references(out_dir: Path, text: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "references.yaml").write_text(text)


REFS = """
sources: {p1: "Paper One, Table 1"}
results:
  fam/m1/ds1: {mean: 80.0, std: 2.0, source: p1}
  fam/m1/ds2: {mean: 50.0, std: 1.0, source: p1}
  fam/m2/ds1: {mean: 70.0, std: null, source: p1}
"""


def test_references_are_compared_in_units_of_the_published_std(tmp_path):
    _write_references(tmp_path, REFS)
    refs = leaderboard.load_references(tmp_path)
    assert refs["fam/m1/ds1"].verdict(81.5) == "+1.50 = +0.8 std (within 1 std)"
    assert refs["fam/m1/ds2"].verdict(47.0) == "-3.00 = -3.0 std (below)"
    assert refs["fam/m1/ds2"].verdict(52.5).endswith("(above)")
    assert refs["fam/m2/ds1"].verdict(71.0) == "+1.00 (no std published)"
    table = render_table("ds1", [_record("fam/m1/ds1", "ds1", 0.815), _record("other/x/ds1", "ds1", 0.6)], refs)
    header, rule = table.splitlines()[4:6]
    assert header.count("|") == rule.count("|")
    assert "| fam/m1/ds1 | acc | 81.50 ± 2.00 | 50.00 ± 1.00 | 80.00 ± 2.00 | +1.50 = +0.8 std (within 1 std) |" in table
    assert "| other/x/ds1 | acc | 60.00 ± 2.00 | 50.00 ± 1.00 | | |" in table
    assert "Paper One, Table 1" in table


def test_summary_is_a_models_by_datasets_grid(tmp_path):
    _write_references(tmp_path, REFS)
    records = [_record("fam/m1/ds1", "ds1", 0.815), _record("fam/m1/ds2", "ds2", 0.47), _record("fam/m2/ds1", "ds1", 0.7)]
    text = leaderboard.render_summary("fam", records, leaderboard.load_references(tmp_path))
    lines = text.splitlines()
    assert "| model | ds1 | ds2 |" in lines
    m1 = next(line for line in lines if line.startswith("| m1 |"))
    assert "81.50 ± 2.00 (n=3)<br>paper 80.00 ± 2.00<br>+1.50 = +0.8 std (within 1 std)" in m1
    assert "47.00 ± 2.00 (n=3)<br>paper 50.00 ± 1.00<br>-3.00 = -3.0 std (below)" in m1
    m2 = next(line for line in lines if line.startswith("| m2 |"))
    assert m2.endswith("|  |")  # m2 has no ds2 run


@pytest.mark.parametrize("text, match", [
    ("results: [1, 2", "not valid YAML"),
    ("sources: {p: x}\nresults: {a/b/c: {std: 1.0, source: p}}", "numeric `mean`"),
    ("sources: {p: x}\nresults: {a/b/c: {mean: 1.0, source: q}}", "not a key of `sources`"),
    ("sources: {p: x}\nresults: {a/b/c: {mean: 1.0, std: wide, source: p}}", "std must be a number"),
])
def test_bad_references_file_names_the_problem(tmp_path, text, match):
    _write_references(tmp_path, text)
    with pytest.raises(ValueError, match=match):
        leaderboard.load_references(tmp_path)


def test_render_only_rebuilds_tables_and_summaries_from_records(tmp_path):
    out = tmp_path / "lb"
    _write_references(out, REFS)
    for rec in (_record("fam/m1/ds1", "ds1", 0.815), _record("fam/m1/ds2", "ds2", 0.47)):
        (out / rec["dataset"]).mkdir(parents=True, exist_ok=True)
        (out / rec["dataset"] / (rec["config_id"].replace("/", "__") + ".json")).write_text(json.dumps(rec))
    leaderboard.main(["--render-only", "--out-dir", str(out)])
    assert "fam/m1/ds1" in (out / "ds1.md").read_text()
    assert "paper 50.00 ± 1.00" in (out / "fam-summary.md").read_text()


def test_config_is_required_unless_render_only(capsys):
    with pytest.raises(SystemExit):
        leaderboard.main([])
    assert "--config is required" in capsys.readouterr().err


def test_commit_is_dirty_for_code_changes_but_not_for_the_leaderboards_own_tables(tmp_path, monkeypatch):
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "lb").mkdir()
    (tmp_path / "lb" / "cora.md").write_text("old table\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lb" / "cora.md").write_text("new table\n")  # every leaderboard run rewrites its tables
    assert not leaderboard.git_commit(ignore=Path("lb")).endswith("-dirty")
    assert leaderboard.git_commit().endswith("-dirty")
    (tmp_path / "code.py").write_text("x = 2\n")
    assert leaderboard.git_commit(ignore=Path("lb")).endswith("-dirty")
