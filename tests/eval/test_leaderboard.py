"""The multi-seed runner and its records: seeds and splits, aggregation, atomic resumable records, fingerprints
that ignore display flags, records that are never destroyed, per-seed code versions, the table."""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
from pathlib import Path

import pytest
import yaml

from graphlab import runner
from graphlab.eval import leaderboard
from graphlab.eval.leaderboard import SeedResult, config_id, parse_seeds, render_table
from graphlab.info import DatasetInfo

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
    return runner.main(args)


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
    # GCN 32 -> 8 -> 2 (CSBMData's 32 features, 2 classes): (32 * 8 + 8) + (8 * 2 + 2) weights and biases
    assert record["num_params"] == runs[0]["num_params"] == (32 * 8 + 8) + (8 * 2 + 2)
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
    real = runner.run_seed

    def counting(config, seed, *args, **kwargs):
        calls.append(seed)
        return real(config, seed, *args, **kwargs)

    monkeypatch.setattr(runner, "run_seed", counting)
    record = _run(tmp_path, config, "0-2")
    assert calls == [2]
    assert record["seeds"] == [0, 1, 2]


# ---------------------------------------------------------------------------------------------- fake runner
# The resume / fingerprint / code-version rules do not depend on training: a fake ``run_seed`` returns fixed numbers
# and records its calls, ``probe`` returns a fixed DatasetInfo, and ``code_version`` is set by each test.
COMMIT_A, COMMIT_B = "a" * 40, "b" * 40 + "-dirty"
DISPLAY = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary", "false",
           "--trainer.log_every_n_steps=5"]


@pytest.fixture
def fake(monkeypatch):
    calls: list[tuple[int, tuple[str, ...]]] = []
    info = DatasetInfo("toy", "node", "multiclass", 4, 2, "acc")
    monkeypatch.setattr(runner, "probe", lambda config, extra: (info, None, []))

    def run_seed(config, seed, extra, run_dir, split_arg, num_splits):
        calls.append((seed, tuple(extra)))
        return SeedResult(seed, None, 0.5 + seed / 100, 0.4 + seed / 100, 3, 0.1, 42)

    monkeypatch.setattr(runner, "run_seed", run_seed)
    monkeypatch.setattr(runner, "code_version", lambda ignore=None: COMMIT_A)
    return calls


def _fake_run(tmp_path: Path, config: Path, seeds: str, *extra: str, force: bool = False) -> dict:
    args = ["--config", str(config), "--seeds", seeds, "--out-dir", str(tmp_path / "lb"),
            "--runs-dir", str(tmp_path / "runs"), *(["--force"] if force else []), *(["--", *extra] if extra else [])]
    return runner.main(args)


def _record_file(tmp_path: Path) -> Path:
    return tmp_path / "lb" / "toy" / "baselines__gcn__tiny.json"


def test_display_only_flags_do_not_change_the_fingerprint(tmp_path, fake):
    config = _write_config(tmp_path)
    assert leaderboard.result_args(DISPLAY + ["--trainer.max_epochs=3"]) == ["--trainer.max_epochs=3"]
    assert leaderboard.fingerprint(config, DISPLAY) == leaderboard.fingerprint(config, [])
    assert leaderboard.fingerprint(config, ["--trainer.max_epochs=3"]) != leaderboard.fingerprint(config, [])
    _fake_run(tmp_path, config, "0-1", *DISPLAY)
    record = _fake_run(tmp_path, config, "0-2")  # the README's form, without the display flags
    assert [seed for seed, _ in fake] == [0, 1, 2]  # seeds 0 and 1 were resumed, not rerun
    assert record["seeds"] == [0, 1, 2]


@pytest.mark.parametrize("change", ["config", "arguments"])
def test_changed_config_or_arguments_refuses_and_keeps_the_record(tmp_path, fake, capsys, change):
    config = _write_config(tmp_path)
    _fake_run(tmp_path, config, "0-1")
    before = _record_file(tmp_path).read_bytes()
    extra = ["--trainer.max_epochs=3"] if change == "arguments" else []
    if change == "config":
        config.write_text(yaml.safe_dump({**TINY, "trainer": {**TINY["trainer"], "max_epochs": 3}}))
    with pytest.raises(SystemExit) as exit_info:
        _fake_run(tmp_path, config, "0-2", *extra)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "refused" in err and "Nothing was run and the record is unchanged" in err and "--force" in err
    assert _record_file(tmp_path).read_bytes() == before
    assert [seed for seed, _ in fake] == [0, 1]  # only the first run's seeds


def test_force_keeps_the_old_record_beside_the_new_one(tmp_path, fake, capsys):
    config = _write_config(tmp_path)
    old = _fake_run(tmp_path, config, "0-1")
    config.write_text(yaml.safe_dump({**TINY, "trainer": {**TINY["trainer"], "max_epochs": 3}}))
    new = _fake_run(tmp_path, config, "0", force=True)
    archived = tmp_path / "lb" / "toy" / "superseded" / f"baselines__gcn__tiny.{old['fingerprint']}.json"
    assert json.loads(archived.read_text()) == old
    assert new["seeds"] == [0] and new["fingerprint"] != old["fingerprint"]
    assert "kept its seeds [0, 1]" in capsys.readouterr().err
    assert (tmp_path / "lb" / "toy.md").read_text().count("| baselines/gcn/tiny |") == 1  # archives are not rows
    config.write_text(yaml.safe_dump({**TINY, "trainer": {**TINY["trainer"], "max_epochs": 2}}))
    _fake_run(tmp_path, config, "0", force=True)
    assert len(list(archived.parent.glob("*.json"))) == 2  # a second archive never overwrites the first


def test_code_version_change_warns_and_the_table_shows_every_commit(tmp_path, fake, monkeypatch, capsys):
    config = _write_config(tmp_path)
    _fake_run(tmp_path, config, "0-1")
    assert "WARNING" not in capsys.readouterr().err
    monkeypatch.setattr(runner, "code_version", lambda ignore=None: COMMIT_B)
    record = _fake_run(tmp_path, config, "0-2")
    err = capsys.readouterr().err
    assert "WARNING" in err and COMMIT_A in err and COMMIT_B in err
    assert [r["commit"] for r in record["runs"]] == [COMMIT_A, COMMIT_A, COMMIT_B]
    row = next(line for line in (tmp_path / "lb" / "toy.md").read_text().splitlines() if "baselines/gcn/tiny" in line)
    assert row.endswith("| aaaaaaaaaaaa (seeds 0-1); bbbbbbbbbbbb-dirty (seed 2) |")
    _fake_run(tmp_path, config, "0-2")  # nothing left to run: no mixing, no warning
    assert "WARNING" not in capsys.readouterr().err


def _legacy_record(config: Path, extra: list[str]) -> dict:
    """A record as graphlab wrote it before fingerprint scheme 2 (cf. leaderboards/ogbg-molbace/*.json): the
    fingerprint hashes the config bytes and every extra argument, joined by NUL; no per-seed commit."""
    old_fp = hashlib.sha256(config.read_bytes() + "\0".join(extra).encode()).hexdigest()[:16]
    runs = [{"seed": s, "split": None, "val": 0.7, "test": 0.6 + s / 10, "epochs": 50, "wall_time_s": 9.0,
             "num_params": 42} for s in range(3)]
    command = "graphlab leaderboard --config x.yaml --seeds 0-2" + (" -- " + " ".join(extra) if extra else "")
    return leaderboard.summarise({"metric": "acc", "config": str(config), "config_id": "baselines/gcn/tiny",
                                  "fingerprint": old_fp, "dataset": "toy", "higher_is_better": True,
                                  "command": command, "commit": "1739b5c9cf1c86f8512aeb0f7931b4cb46973e8b",
                                  "runs": runs})


def test_old_records_resume_without_rerunning_and_show_unknown_commits(tmp_path, fake, capsys):
    config = _write_config(tmp_path)
    legacy = _legacy_record(config, ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"])
    _record_file(tmp_path).parent.mkdir(parents=True)
    _record_file(tmp_path).write_text(json.dumps(legacy))
    assert leaderboard.commits_text(legacy) == "1739b5c9cf1c"  # as the tables showed it before
    record = _fake_run(tmp_path, config, "0-3")
    assert [seed for seed, _ in fake] == [3]
    assert [r["test"] for r in record["runs"][:3]] == [0.6, 0.7, 0.8]  # the old seeds are kept as they were
    assert record["legacy_commit"] == legacy["commit"]
    assert "WARNING" in capsys.readouterr().err  # the old seeds' code version is unknown
    assert leaderboard.commits_text(record) == "unknown (seeds 0-2); aaaaaaaaaaaa (seed 3)"


def test_old_record_of_a_changed_config_is_refused(tmp_path, fake):
    config = _write_config(tmp_path)
    legacy = _legacy_record(config, [])
    _record_file(tmp_path).parent.mkdir(parents=True)
    _record_file(tmp_path).write_text(json.dumps(legacy))
    config.write_text(config.read_text() + "# edited\n")
    with pytest.raises(SystemExit):
        _fake_run(tmp_path, config, "0-3")
    assert json.loads(_record_file(tmp_path).read_text()) == legacy


def test_committed_records_still_load_and_render():
    root = Path(__file__).resolve().parents[2]
    path = root / "leaderboards" / "ogbg-molbace" / "baselines__gin__ogbg-molbace.json"
    record = json.loads(path.read_text())
    config = root / record["config"]
    assert leaderboard.resumable(record, config, [])  # the README's command resumes it
    table = render_table("ogbg-molbace", [record])
    assert "| baselines/gin/ogbg-molbace | rocauc | 72.91 ± 3.58 | 70.81 ± 0.44 |" in table
    assert table.rstrip().endswith("| 1739b5c9cf1c |")


def test_source_hash_follows_the_sources(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(leaderboard, "_package_dirs", lambda: [tmp_path / "pkg"])
    first = leaderboard.source_hash()
    assert first.startswith("src-") and len(first) == 16
    (tmp_path / "pkg" / "notes.txt").write_text("not code")
    assert leaderboard.source_hash() == first
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert leaderboard.source_hash() != first


def test_code_version_is_the_checkouts_commit():
    import subprocess

    package = Path(leaderboard.__file__).resolve().parents[1]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("graphlab is not imported from a git checkout here")
    assert leaderboard.code_version().removesuffix("-dirty") == head.stdout.strip()


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
    runner.main(["--render-only", "--out-dir", str(out)])
    assert "fam/m1/ds1" in (out / "ds1.md").read_text()
    assert "paper 50.00 ± 1.00" in (out / "fam-summary.md").read_text()


def test_render_only_skips_the_expressivity_records(tmp_path):
    """``leaderboards/expressivity/<config>.json`` (the expressivity suite's records) is not a dataset table."""
    out = tmp_path / "lb"
    _write_references(out, REFS)
    rec = _record("fam/m1/ds1", "ds1", 0.815)
    (out / "ds1").mkdir(parents=True)
    (out / "ds1" / "fam__m1__ds1.json").write_text(json.dumps(rec))
    (out / "expressivity").mkdir()
    (out / "expressivity" / "expressivity__gin.json").write_text(json.dumps({"config_id": "expressivity/gin",
                                                                            "results": {}}))
    runner.main(["--render-only", "--out-dir", str(out)])
    assert "fam/m1/ds1" in (out / "ds1.md").read_text()
    assert not (out / "expressivity.md").exists()


def test_config_is_required_unless_render_only(capsys):
    with pytest.raises(SystemExit):
        runner.main([])
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


def test_table_shows_the_negatives_per_positive_beside_the_metric():
    record = {**_record("fam/m1/ds1", "ds1", 0.5), "metric": "mrr", "negatives_per_positive": 50}
    assert "| fam/m1/ds1 | mrr (50 neg/pos) | 50.00 ± 2.00 |" in render_table("ds1", [record])


def test_parallel_processes_on_one_record_keep_each_others_seeds(tmp_path, fake, monkeypatch):
    """Two processes running different seeds of one config into one out-dir: each write merges (under a lock) what
    the other wrote meanwhile, and a seed the other already finished is skipped, not rerun."""
    config = _write_config(tmp_path)
    _fake_run(tmp_path, config, "0")  # "process B" wrote seed 0 first
    b_record = json.loads(_record_file(tmp_path).read_text())
    seen = []
    real = runner.run_seed

    def interleaved(config, seed, *args):
        seen.append(seed)
        result = real(config, seed, *args)
        if seed == 1:  # meanwhile "process B" finishes seed 3 and rewrites the record
            other = {**b_record}
            other["runs"] = b_record["runs"] + [{**b_record["runs"][0], "seed": 3}]
            _record_file(tmp_path).write_text(json.dumps(other))
        return result

    monkeypatch.setattr(runner, "run_seed", interleaved)
    record = _fake_run(tmp_path, config, "0-3")
    assert seen == [1, 2]  # 0 was on disk at the start, 3 appeared before its turn
    assert record["seeds"] == [0, 1, 2, 3]
    assert [r["seed"] for r in json.loads(_record_file(tmp_path).read_text())["runs"]] == [0, 1, 2, 3]


# ------------------------------------------------------------------ which checkpoint a seed resumes from
def _fake_last_ckpt(run_dir, version=0):
    folder = run_dir / f"version_{version}" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "last.ckpt").write_bytes(b"weights")
    return folder / "last.ckpt"


def test_a_fresh_seed_folder_starts_over_and_records_its_fingerprint(tmp_path):
    from graphlab.runner import RUN_FINGERPRINT, claim_run_dir

    run_dir = tmp_path / "seed_0"
    assert claim_run_dir(run_dir, Path("configs/x.yaml"), "abc") is None
    assert json.loads((run_dir / RUN_FINGERPRINT).read_text()) == {"fingerprint": "abc", "config": "configs/x.yaml"}


def test_a_killed_run_of_the_same_config_is_resumed(tmp_path):
    from graphlab.runner import claim_run_dir

    run_dir = tmp_path / "seed_0"
    claim_run_dir(run_dir, Path("configs/x.yaml"), "abc")
    last = _fake_last_ckpt(run_dir)
    assert claim_run_dir(run_dir, Path("configs/x.yaml"), "abc") == last


@pytest.mark.parametrize("earlier", ["other", None])  # another config's run, or one from before the marker file
def test_a_run_of_another_config_is_moved_aside_not_resumed(tmp_path, capsys, earlier):
    from graphlab.runner import RUN_FINGERPRINT, claim_run_dir

    run_dir = tmp_path / "seed_0"
    if earlier is not None:
        claim_run_dir(run_dir, Path("configs/x.yaml"), earlier)
    _fake_last_ckpt(run_dir)
    assert claim_run_dir(run_dir, Path("configs/x.yaml"), "abc") is None
    aside = tmp_path / f"seed_0.superseded.{earlier or 'unknown'}.0"
    assert (aside / "version_0" / "checkpoints" / "last.ckpt").read_bytes() == b"weights"  # kept, not deleted
    assert "moved it to" in capsys.readouterr().err
    assert sorted(p.name for p in run_dir.iterdir()) == [RUN_FINGERPRINT]
    # a second change of config moves the new folder aside under the next free name
    _fake_last_ckpt(run_dir)
    assert claim_run_dir(run_dir, Path("configs/x.yaml"), "def") is None
    assert (tmp_path / "seed_0.superseded.abc.0" / "version_0" / "checkpoints" / "last.ckpt").is_file()
