"""Multi-seed evaluation in the OGB leaderboard style.

``graphlab leaderboard --config CFG --seeds 0-9`` runs ``fit`` then evaluates the
checkpoint with the best validation score, once per seed (seed ``i`` also uses the
dataset's fixed split ``i`` when it has several), and reports mean ± unbiased std over
seeds. Results are stored per config in ``leaderboards/<dataset>/<config-id>.json``
(written atomically after every seed, so an interrupted run resumes where it stopped)
and the table ``leaderboards/<dataset>.md`` is regenerated from all configs of the
dataset.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import inspect
import json
import math
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from graphlab._io import atomic_write_json, atomic_write_text

SPLIT_ARGS = ("split", "fold")


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` → 0..9, ``"0,3,5"`` → [0, 3, 5], ``"4"`` → [4]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(p) for p in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            elif part:
                seeds.append(int(part))
    except ValueError:
        raise ValueError(f"--seeds {text!r} is not a seed list: use e.g. '0-9' or '0,1,2'") from None
    if not seeds or min(seeds) < 0:
        raise ValueError(f"--seeds {text!r} gives no non-negative seeds: use e.g. '0-9'")
    return sorted(set(seeds))


@dataclass
class SeedResult:
    seed: int
    split: Optional[int]
    val: float
    test: float
    epochs: int
    wall_time_s: float
    num_params: int


def config_id(config: Path) -> str:
    """The config's path below ``configs/`` without suffix, e.g. ``baselines/gcn/cora``."""
    parts = config.resolve().with_suffix("").parts
    if "configs" in parts:
        return "/".join(parts[len(parts) - parts[::-1].index("configs"):])
    return config.stem


def fingerprint(config: Path, extra: list[str]) -> str:
    digest = hashlib.sha256(config.read_bytes())
    digest.update("\0".join(extra).encode())
    return digest.hexdigest()[:16]


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


@contextlib.contextmanager
def _plain_argv() -> Iterator[None]:
    """Drive LightningCLI through ``args=`` only (the leaderboard's own argv is not its input)."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def _split_arg(datamodule: Any) -> Optional[str]:
    params = inspect.signature(type(datamodule).__init__).parameters
    return next((name for name in SPLIT_ARGS if name in params), None)


def run_seed(config: Path, seed: int, extra: list[str], run_dir: Path, split_arg: Optional[str],
             num_splits: int) -> SeedResult:
    """Fit with ``seed`` (and split ``seed``), then validate and test the best checkpoint."""
    from graphlab.cli import build_cli

    args = ["--config", str(config), *extra, f"--seed_everything={seed}",
            "--trainer.logger=lightning.pytorch.loggers.CSVLogger", f"--trainer.logger.init_args.save_dir={run_dir}",
            f"--trainer.default_root_dir={run_dir}"]
    split = None
    if split_arg is not None and num_splits > 1:
        if seed >= num_splits:
            raise ValueError(f"seed {seed} needs split {seed}, but the dataset has only {num_splits} fixed splits: "
                             f"use --seeds 0-{num_splits - 1}")
        split = seed
        args.append(f"--data.init_args.{split_arg}={split}")
    start = time.perf_counter()
    with _plain_argv():
        cli = build_cli(args, run=False)
    trainer, task, datamodule = cli.trainer, cli.model, cli.datamodule
    trainer.fit(task, datamodule=datamodule)
    ckpt = trainer.checkpoint_callback
    best = getattr(ckpt, "best_model_path", "") if ckpt is not None else ""
    if not best:
        raise RuntimeError(f"seed {seed}: no best checkpoint was saved (is validation running? "
                           f"check trainer.limit_val_batches / check_val_every_n_epoch in {config})")
    key = task.monitor.removeprefix("val_")
    val = trainer.validate(task, datamodule=datamodule, ckpt_path=best, verbose=False)[0][f"val_{key}"]
    test = trainer.test(task, datamodule=datamodule, ckpt_path=best, verbose=False)[0][f"test_{key}"]
    num_params = sum(p.numel() for p in task.model.parameters())
    return SeedResult(seed, split, float(val), float(test), int(trainer.current_epoch),
                      time.perf_counter() - start, num_params)


def probe(config: Path, extra: list[str]) -> tuple[Any, Optional[str]]:
    """Instantiate once to learn the dataset description and its split argument."""
    from graphlab.cli import build_cli

    with _plain_argv():
        cli = build_cli(["--config", str(config), *extra, "--trainer.logger=false"], run=False)
    return cli.datamodule.info, _split_arg(cli.datamodule)


def _std(values: list[float]) -> Optional[float]:
    return statistics.stdev(values) if len(values) > 1 else None


def summarise(record: dict[str, Any]) -> dict[str, Any]:
    """Aggregate the per-seed runs; returns the record with the summary keys first."""
    runs = sorted(record["runs"], key=lambda r: r["seed"])
    vals, tests = [r["val"] for r in runs], [r["test"] for r in runs]
    summary = dict(
        metric=record["metric"], val_mean=statistics.fmean(vals), val_std=_std(vals),
        test_mean=statistics.fmean(tests), test_std=_std(tests),
        seeds=[r["seed"] for r in runs], wall_time_s=sum(r["wall_time_s"] for r in runs),
        num_params=runs[-1]["num_params"],
    )
    rest = {k: v for k, v in record.items() if k not in summary and k != "runs"}
    return {**summary, **rest, "runs": runs}


def _fmt(mean: float, std: Optional[float], scale: float) -> str:
    if std is None or math.isnan(std):
        return f"{mean * scale:.2f} ± n/a"
    return f"{mean * scale:.2f} ± {std * scale:.2f}"


def render_table(dataset: str, records: list[dict[str, Any]]) -> str:
    """Markdown table of every config's record for one dataset."""
    lines = [
        f"# {dataset}",
        "",
        "Written by `graphlab leaderboard`; do not edit by hand. Test and validation: mean ± unbiased std over "
        "seeds, each evaluated at its best-validation checkpoint. Percentages for accuracy / ROC-AUC / hits / MRR.",
        "",
        "| config | metric | test | val | #params | seeds | wall time (s) | command | commit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(records, key=lambda r: r["config_id"]):
        scale = 1.0 if r["metric"] in ("rmse", "mae") else 100.0
        seeds = r["seeds"]
        seed_text = f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else ",".join(map(str, seeds))
        lines.append(
            f"| {r['config_id']} | {r['metric']} | {_fmt(r['test_mean'], r['test_std'], scale)} | "
            f"{_fmt(r['val_mean'], r['val_std'], scale)} | {r['num_params']:,} | {seed_text} | "
            f"{r['wall_time_s']:.0f} | `{r['command']}` | {r['commit'][:12]} |"
        )
    return "\n".join(lines) + "\n"


def write_table(out_dir: Path, dataset: str) -> Path:
    records = [json.loads(p.read_text()) for p in sorted((out_dir / dataset).glob("*.json"))]
    path = out_dir / f"{dataset}.md"
    atomic_write_text(path, render_table(dataset, records))
    return path


def run_leaderboard(config: Path, seeds: list[int], extra: list[str], out_dir: Path, runs_dir: Path,
                    json_out: Optional[Path] = None) -> dict[str, Any]:
    """Run (or resume) every seed of ``config`` and write the record and the table."""
    if not config.is_file():
        raise FileNotFoundError(f"config {config} does not exist; configs live under configs/<family>/<dataset>.yaml")
    info, split_arg = probe(config, extra)
    cid, fp = config_id(config), fingerprint(config, extra)
    record_path = out_dir / info.name / f"{cid.replace('/', '__')}.json"
    record = _load_record(record_path, fp)
    command = shlex.join(["graphlab", "leaderboard", "--config", str(config), "--seeds", _seed_text(seeds), *(
        ["--", *extra] if extra else [])])
    record.update(config=str(config), config_id=cid, fingerprint=fp, dataset=info.name, metric=info.metric,
                  higher_is_better=info.higher_is_better, command=command, versions=_versions())
    done = {r["seed"] for r in record["runs"]}
    for seed in seeds:
        if seed in done:
            print(f"[leaderboard] {cid} seed {seed}: already done, skipped")
            continue
        result = run_seed(config, seed, extra, runs_dir / cid / f"seed_{seed}", split_arg, info.num_splits)
        record["runs"].append(result.__dict__)
        record["commit"] = git_commit()
        record = summarise(record)
        atomic_write_json(record_path, record)
        print(f"[leaderboard] {cid} seed {seed}: val {result.val:.4f} test {result.test:.4f}")
    if not record["runs"]:
        raise RuntimeError(f"no seed finished for {config}")
    record = summarise(record)
    record.setdefault("commit", git_commit())
    atomic_write_json(record_path, record)
    table = write_table(out_dir, info.name)
    if json_out is not None:
        atomic_write_json(json_out, record)
    print(f"[leaderboard] {info.metric}: test {_fmt(record['test_mean'], record['test_std'], 1.0)}, "
          f"val {_fmt(record['val_mean'], record['val_std'], 1.0)} over seeds {record['seeds']}; table {table}")
    return record


def _load_record(path: Path, fp: str) -> dict[str, Any]:
    if path.is_file():
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}); delete it to rerun every seed") from err
        if record.get("fingerprint") == fp:
            return record
        print(f"[leaderboard] {path}: the config changed since it was written; rerunning every seed")
    return {"runs": []}


def _seed_text(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("graphlab", "torch", "torch-geometric", "lightning", "ogb"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphlab leaderboard",
        description="Multi-seed fit + best-checkpoint test; writes leaderboards/<dataset>.md and a JSON record. "
                    "Arguments after `--` are passed to every run (e.g. -- --trainer.max_epochs=50).",
    )
    parser.add_argument("--config", required=True, type=Path, help="a config under configs/")
    parser.add_argument("--seeds", default="0-9", help="seeds to run, e.g. 0-9 or 0,2,4 (default 0-9)")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON record here")
    parser.add_argument("--out-dir", type=Path, default=Path("leaderboards"), help="where tables go")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/leaderboard"), help="checkpoints and logs")
    return parser


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as err:
        build_parser().error(str(err))
    return run_leaderboard(args.config, seeds, extra, args.out_dir, args.runs_dir, args.json)
