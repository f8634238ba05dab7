"""Multi-seed evaluation in the OGB leaderboard style.

``graphlab leaderboard --config CFG --seeds 0-9`` runs ``fit`` then evaluates the
checkpoint with the best validation score, once per seed (seed ``i`` also uses the
dataset's fixed split ``i`` when it has several), and reports mean ± unbiased std over
seeds. Results are stored per config in ``leaderboards/<dataset>/<config-id>.json``
(written atomically after every seed, so an interrupted run resumes where it stopped)
and the table ``leaderboards/<dataset>.md`` is regenerated from all configs of the
dataset, as is ``leaderboards/<family>-summary.md`` (models × datasets of the config
family ``configs/<family>/...``). Published numbers to compare with live in the
hand-written ``leaderboards/references.yaml`` (each with its citation); tables show
them beside ours with the gap in published standard deviations.
``graphlab leaderboard --render-only`` regenerates every table without running.
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


def git_commit(ignore: Optional[Path] = None) -> str:
    """``HEAD``'s sha, with ``-dirty`` when tracked files differ from it, except under ``ignore`` (the
    leaderboard's own output folder, which every run rewrites)."""
    status = ["git", "status", "--porcelain", "--untracked-files=no"]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                             check=True).stdout.strip()
        if ignore is not None and ignore.resolve().is_relative_to(Path(top).resolve()):
            status += ["--", top, f":(exclude){ignore.resolve()}"]
        dirty = subprocess.run(status, capture_output=True, text=True, check=True).stdout.strip()
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


def _scale(metric: str) -> float:
    return 1.0 if metric in ("rmse", "mae") else 100.0


@dataclass(frozen=True)
class Reference:
    """A published result for one config, in the table's units (percent for accuracy-like metrics)."""

    mean: float
    std: Optional[float]
    source: str

    def text(self) -> str:
        return f"{self.mean:.2f}" if self.std is None else f"{self.mean:.2f} ± {self.std:.2f}"

    def verdict(self, ours: float) -> str:
        """How our (scaled) mean sits against the published mean ± std."""
        gap = ours - self.mean
        if self.std is None or self.std <= 0:
            return f"{gap:+.2f} (no std published)"
        where = "within 1 std" if abs(gap) <= self.std else ("above" if gap > 0 else "below")
        return f"{gap:+.2f} = {gap / self.std:+.1f} std ({where})"


def load_references(out_dir: Path) -> dict[str, Reference]:
    """``<out_dir>/references.yaml``: ``{sources: {key: citation}, results: {config-id: {mean, std, source}}}``.

    The only hand-written file under the leaderboard folder: published numbers to compare with, each naming its
    source. Missing file → no comparison columns."""
    import yaml

    path = out_dir / "references.yaml"
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML ({err}); fix or delete it") from err
    sources, results = raw.get("sources", {}), raw.get("results", {})
    if not isinstance(sources, dict) or not isinstance(results, dict):
        raise ValueError(f"{path}: expected mappings `sources: {{key: citation}}` and `results: {{config-id: ...}}`")
    refs = {}
    for cid, entry in results.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("mean"), (int, float)):
            raise ValueError(f"{path}: results[{cid!r}] needs a numeric `mean` (and optional `std`, `source`)")
        std, source = entry.get("std"), entry.get("source", "")
        if std is not None and not isinstance(std, (int, float)):
            raise ValueError(f"{path}: results[{cid!r}].std must be a number or null, got {std!r}")
        if source not in sources:
            raise ValueError(f"{path}: results[{cid!r}].source {source!r} is not a key of `sources` "
                             f"({sorted(sources)}); add the citation there")
        refs[cid] = Reference(float(entry["mean"]), None if std is None else float(std), str(sources[source]))
    return refs


def _seed_range(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else ",".join(map(str, seeds))


def render_table(dataset: str, records: list[dict[str, Any]],
                 references: Optional[dict[str, Reference]] = None) -> str:
    """Markdown table of every config's record for one dataset (with the published result where one is known)."""
    references = references or {}
    compared = any(r["config_id"] in references for r in records)
    head = "| config | metric | test | val |" + (" published | test vs published |" if compared else "")
    lines = [
        f"# {dataset}",
        "",
        "Written by `graphlab leaderboard`; do not edit by hand. Test and validation: mean ± unbiased std over "
        "seeds, each evaluated at its best-validation checkpoint. Percentages for accuracy / ROC-AUC / hits / MRR.",
        "",
        head + " #params | seeds | wall time (s) | command | commit |",
        "|---" * (head.count("|") + 4) + "|",
    ]
    for r in sorted(records, key=lambda r: r["config_id"]):
        scale = _scale(r["metric"])
        row = f"| {r['config_id']} | {r['metric']} | {_fmt(r['test_mean'], r['test_std'], scale)} | " \
              f"{_fmt(r['val_mean'], r['val_std'], scale)} |"
        if compared:
            ref = references.get(r["config_id"])
            row += f" {ref.text()} | {ref.verdict(r['test_mean'] * scale)} |" if ref else " | |"
        lines.append(
            row + f" {r['num_params']:,} | {_seed_range(r['seeds'])} | {r['wall_time_s']:.0f} | `{r['command']}` | "
                  f"{r['commit'][:12]} |"
        )
    sources = sorted({references[r["config_id"]].source for r in records if r["config_id"] in references})
    if sources:
        lines += ["", "Published results (from `references.yaml`): " + "; ".join(sources) + "."]
    return "\n".join(lines) + "\n"


def render_summary(family: str, records: list[dict[str, Any]],
                   references: Optional[dict[str, Reference]] = None) -> str:
    """One grid per config family (``<family>/<model>/<dataset>``): models × datasets, test mean ± std next to
    the published result and whether it lies within one published std."""
    references = references or {}
    cells: dict[str, dict[str, str]] = {}
    datasets: list[str] = []
    for r in sorted(records, key=lambda r: r["config_id"]):
        model = "/".join(r["config_id"].split("/")[1:-1]) or r["config_id"]
        scale = _scale(r["metric"])
        text = f"{_fmt(r['test_mean'], r['test_std'], scale)} (n={len(r['seeds'])})"
        ref = references.get(r["config_id"])
        if ref is not None:
            text += f"<br>paper {ref.text()}<br>{ref.verdict(r['test_mean'] * scale)}"
        cells.setdefault(model, {})[r["dataset"]] = text
        if r["dataset"] not in datasets:
            datasets.append(r["dataset"])
    datasets.sort()
    lines = [
        f"# {family}: summary",
        "",
        "Written by `graphlab leaderboard` from the per-config records under this folder; do not edit by hand. "
        "Test metric, mean ± unbiased std over n seeds/splits; `paper` is the published mean ± std from "
        "`references.yaml` and the last line our gap to it.",
        "",
        "| model | " + " | ".join(datasets) + " |",
        "|---" * (len(datasets) + 1) + "|",
    ]
    for model in sorted(cells):
        lines.append(f"| {model} | " + " | ".join(cells[model].get(d, "") for d in datasets) + " |")
    sources = sorted({references[r["config_id"]].source for r in records if r["config_id"] in references})
    if sources:
        lines += ["", "Published results: " + "; ".join(sources) + "."]
    return "\n".join(lines) + "\n"


def _all_records(out_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(out_dir.glob("*/*.json"))]


def write_table(out_dir: Path, dataset: str) -> Path:
    references = load_references(out_dir)
    records = [json.loads(p.read_text()) for p in sorted((out_dir / dataset).glob("*.json"))]
    path = out_dir / f"{dataset}.md"
    atomic_write_text(path, render_table(dataset, records, references))
    return path


def write_summary(out_dir: Path, family: str) -> Path:
    records = [r for r in _all_records(out_dir) if r["config_id"].split("/")[0] == family]
    path = out_dir / f"{family}-summary.md"
    atomic_write_text(path, render_summary(family, records, load_references(out_dir)))
    return path


def render_all(out_dir: Path) -> list[Path]:
    """Regenerate every dataset table and family summary from the stored records."""
    records = _all_records(out_dir)
    written = [write_table(out_dir, d) for d in sorted({r["dataset"] for r in records})]
    families = sorted({r["config_id"].split("/")[0] for r in records if "/" in r["config_id"]})
    return written + [write_summary(out_dir, f) for f in families]


def run_leaderboard(config: Path, seeds: list[int], extra: list[str], out_dir: Path, runs_dir: Path,
                    json_out: Optional[Path] = None) -> dict[str, Any]:
    """Run (or resume) every seed of ``config`` and write the record and the table."""
    if not config.is_file():
        raise FileNotFoundError(f"config {config} does not exist; configs live under configs/<family>/<dataset>.yaml")
    info, split_arg = probe(config, extra)
    cid, fp = config_id(config), fingerprint(config, extra)
    record_path = out_dir / info.name / f"{cid.replace('/', '__')}.json"
    record = _load_record(record_path, fp)
    command = shlex.join(["graphlab", "leaderboard", "--config", str(config), "--seeds", _seed_range(seeds), *(
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
        record["commit"] = git_commit(ignore=out_dir)
        record = summarise(record)
        atomic_write_json(record_path, record)
        print(f"[leaderboard] {cid} seed {seed}: val {result.val:.4f} test {result.test:.4f}")
    if not record["runs"]:
        raise RuntimeError(f"no seed finished for {config}")
    record = summarise(record)
    record.setdefault("commit", git_commit(ignore=out_dir))
    atomic_write_json(record_path, record)
    table = write_table(out_dir, info.name)
    if "/" in cid:
        write_summary(out_dir, cid.split("/")[0])
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
    parser.add_argument("--config", type=Path, default=None, help="a config under configs/")
    parser.add_argument("--seeds", default="0-9", help="seeds to run, e.g. 0-9 or 0,2,4 (default 0-9)")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON record here")
    parser.add_argument("--out-dir", type=Path, default=Path("leaderboards"), help="where tables go")
    parser.add_argument("--render-only", action="store_true",
                        help="run nothing: regenerate every table and family summary in --out-dir from its records "
                             "(e.g. after editing references.yaml)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/leaderboard"), help="checkpoints and logs")
    return parser


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.render_only:
        for path in render_all(args.out_dir):
            print(f"[leaderboard] wrote {path}")
        return {}
    if args.config is None:
        parser.error("--config is required (or pass --render-only)")
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as err:
        parser.error(str(err))
    return run_leaderboard(args.config, seeds, extra, args.out_dir, args.runs_dir, args.json)
