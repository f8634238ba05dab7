"""Leaderboard records: fingerprints, code versions, aggregation over seeds, and the Markdown tables.

The multi-seed runner (:mod:`graphlab.runner`, ``graphlab leaderboard``) fits and tests one config per seed and
stores the results here, per config in ``leaderboards/<dataset>/<config-id>.json`` (written atomically after
every seed, so an interrupted run resumes where it stopped). The table ``leaderboards/<dataset>.md`` is
regenerated from all configs of the dataset, as is ``leaderboards/<family>-summary.md`` (models × datasets of
the config family ``configs/<family>/...``). Published numbers to compare with live in the hand-written
``leaderboards/references.yaml`` (each with its citation); tables show them beside ours with the gap in
published standard deviations. This module imports nothing of graphlab's training stack (no CLI, no tasks).

**Fingerprint and resume.** A record's ``fingerprint`` hashes the config file's bytes and the extra
command-line arguments that can change a result: :data:`DISPLAY_ONLY_TRAINER_FLAGS` (progress bar, model
summary, logging cadence) are dropped first, so the README's command resumes a record made with those flags.
A run resumes a record only when the fingerprints match; otherwise it refuses and changes nothing, unless
``--force``, which moves the old record to ``<dataset>/superseded/<config-id>.<fingerprint>.json`` (never
deleted) and starts a new one.

**Code version.** Each seed's run stores ``commit``: the git commit of graphlab's checkout (``-dirty`` when
tracked files differ, the leaderboard's own folder excepted), or ``src-<sha256 of the package's sources>`` for
an installed copy. A resume at another code version warns on the console and goes on; the table's commit column
lists every commit the row's seeds came from.

**Migration of records written before fingerprint scheme 2** (no ``fingerprint_scheme`` key, no per-seed
``commit``): such a record still resumes when the config file is byte-identical to the one it was made from (its
old fingerprint, recomputed from the arguments in its ``command``, matches) and its arguments agree once the
display-only flags are dropped. Its seeds' code versions are unknown: the table shows the record's ``commit``
as before, or ``unknown`` beside the commits of seeds added later; a missing code version never forces a rerun.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Optional

from graphlab._io import atomic_write_text
from graphlab.eval.figures import write_family_figure

FINGERPRINT_SCHEME = 2
DISPLAY_ONLY_TRAINER_FLAGS = ("enable_progress_bar", "enable_model_summary", "log_every_n_steps")
"""Trainer arguments that change what is printed or how often it is logged, never a result: ignored by the
fingerprint (given as ``--trainer.<flag>=v`` or ``--trainer.<flag> v``)."""
SOURCE_SUFFIXES = (".py", ".c", ".h", ".cpp", ".cu")
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
    """One seed's result. ``test`` is the headline test metric (the first test set); ``extra_tests`` the same
    metric on the DataModule's further test sets, by name (e.g. ``{"64": 0.48}`` for 2nd-minimum at size 64),
    evaluated at the same best-validation checkpoint."""

    seed: int
    split: Optional[int]
    val: float
    test: float
    epochs: int
    wall_time_s: float
    num_params: int
    extra_tests: dict[str, float] = field(default_factory=dict)


def config_id(config: Path) -> str:
    """The config's path below ``configs/`` without suffix, e.g. ``baselines/gcn/cora``."""
    parts = config.resolve().with_suffix("").parts
    if "configs" in parts:
        return "/".join(parts[len(parts) - parts[::-1].index("configs"):])
    return config.stem


def result_args(extra: list[str]) -> list[str]:
    """``extra`` without the display-only trainer flags (:data:`DISPLAY_ONLY_TRAINER_FLAGS`) and their values."""
    display = {f"--trainer.{flag}" for flag in DISPLAY_ONLY_TRAINER_FLAGS}
    out, i = [], 0
    while i < len(extra):
        key, has_value = extra[i].split("=", 1)[0], "=" in extra[i]
        if key not in display:
            out.append(extra[i])
        elif not has_value and i + 1 < len(extra) and not extra[i + 1].startswith("--"):
            i += 1  # ``--trainer.flag value``: skip the value too
        i += 1
    return out


def _hash_config(config: Path, args: list[str]) -> str:
    digest = hashlib.sha256(config.read_bytes())
    digest.update("\0".join(args).encode())
    return digest.hexdigest()[:16]


def fingerprint(config: Path, extra: list[str]) -> str:
    """Hash of the config file's bytes and the result-changing arguments of ``extra`` (display flags dropped)."""
    return _hash_config(config, result_args(extra))


def git_commit(ignore: Optional[Path] = None, cwd: Optional[Path] = None) -> str:
    """``HEAD``'s sha of the checkout around ``cwd`` (default: the working directory), with ``-dirty`` when
    tracked files differ from it, except under ``ignore`` (the leaderboard's own output folder, which every run
    rewrites); ``"unknown"`` outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=cwd).stdout.strip()

    status = ["status", "--porcelain", "--untracked-files=no"]
    try:
        sha, top = git("rev-parse", "HEAD"), git("rev-parse", "--show-toplevel")
        if ignore is not None and ignore.resolve().is_relative_to(Path(top).resolve()):
            status += ["--", top, f":(exclude){ignore.resolve()}"]
        dirty = git(*status)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def _package_dirs() -> list[Path]:
    """The folders graphlab's code is imported from (the package and, when installed apart, its kernels)."""
    dirs = [Path(__file__).resolve().parents[1]]
    kernels = find_spec("graphlab.kernels")
    if kernels is not None and kernels.submodule_search_locations:
        dirs += [Path(p).resolve() for p in kernels.submodule_search_locations]
    return [d for i, d in enumerate(dirs) if not any(d.is_relative_to(e) for e in dirs[:i])]


def source_hash() -> str:
    """``src-<sha256>`` (12 hex digits) of graphlab's source files, for an installed copy outside git."""
    digest = hashlib.sha256()
    for folder in _package_dirs():
        for path in sorted(p for p in folder.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file()):
            digest.update(f"{folder.name}/{path.relative_to(folder).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return "src-" + digest.hexdigest()[:12]


def code_version(ignore: Optional[Path] = None) -> str:
    """The version of the graphlab code that runs: the git commit (``-dirty`` flag as :func:`git_commit`) when
    graphlab is imported from a git checkout of itself, else :func:`source_hash`."""
    package = _package_dirs()[0]
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True,
                             cwd=package).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        top = ""
    if top and Path(top).resolve() / package.name == package:  # the checkout holds this very package
        commit = git_commit(ignore=ignore, cwd=package)
        if commit != "unknown":
            return commit
    return source_hash()


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
    extra = _summarise_extra_tests(runs)
    if extra:
        summary["extra_tests"] = extra
    rest = {k: v for k, v in record.items() if k not in summary and k not in ("runs", "extra_tests")}
    return {**summary, **rest, "runs": runs}


def _summarise_extra_tests(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{name: {mean, std, seeds}}`` of every further test set, over the seeds that report it."""
    names: list[str] = []
    for r in runs:
        names += [n for n in r.get("extra_tests") or {} if n not in names]
    out = {}
    for name in names:
        have = [r for r in runs if name in (r.get("extra_tests") or {})]
        values = [r["extra_tests"][name] for r in have]
        out[name] = {"mean": statistics.fmean(values), "std": _std(values), "seeds": [r["seed"] for r in have]}
    return out


def format_mean_std(mean: float, std: Optional[float], scale: float) -> str:
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


def seed_range(seeds: list[int]) -> str:
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
        row = f"| {r['config_id']} | {_metric_label(r)} | {format_mean_std(r['test_mean'], r['test_std'], scale)} | " \
              f"{format_mean_std(r['val_mean'], r['val_std'], scale)} |"
        if compared:
            ref = references.get(r["config_id"])
            row += f" {ref.text()} | {ref.verdict(r['test_mean'] * scale)} |" if ref else " | |"
        extra = r.get("extra_tests") or {}
        if extra:  # the headline row names its own test set too
            row = row.replace(f"| {r['config_id']} |", f"| {r['config_id']} {_test_label(r, 0)} |", 1)
        lines.append(
            row + f" {r['num_params']:,} | {seed_range(r['seeds'])} | {r['wall_time_s']:.0f} | `{r['command']}` | "
                  f"{commits_text(r)} |"
        )
        for name, stats in extra.items():  # one row per further test set: same runs, same checkpoints
            row = f"| {r['config_id']} [test: {name}] | {_metric_label(r)} | " \
                  f"{format_mean_std(stats['mean'], stats['std'], scale)} | same runs |"
            row += " | |" if compared else ""
            lines.append(row + f" {r['num_params']:,} | {seed_range(stats['seeds'])} | (same runs) | "
                               f"`{r['command']}` | {commits_text(r)} |")
    sources = sorted({references[r["config_id"]].source for r in records if r["config_id"] in references})
    if sources:
        lines += ["", "Published results (from `references.yaml`): " + "; ".join(sources) + "."]
    return "\n".join(lines) + "\n"


def _test_label(record: dict[str, Any], index: int) -> str:
    """``[test: <name>]`` of the record's test set ``index`` (names from the DataModule's ``test_names``)."""
    names = record.get("test_names") or []
    return f"[test: {names[index]}]" if index < len(names) else "[test: first]"


def _metric_label(record: dict[str, Any]) -> str:
    q = record.get("negatives_per_positive")
    return record["metric"] if q is None else f"{record['metric']} ({q} neg/pos)"


def _short(commit: str) -> str:
    """A 12-digit commit, keeping the ``-dirty`` flag (``src-`` source hashes are short already)."""
    base, dirty = commit.removesuffix("-dirty"), commit.endswith("-dirty")
    return (base if base.startswith("src-") else base[:12]) + ("-dirty" if dirty else "")


def commits_text(record: dict[str, Any]) -> str:
    """Every code version the record's seeds came from: ``"<commit>"`` when one, else ``"<commit> (seeds 0-2);
    <commit> (seed 3)"``; seeds stored without one are ``unknown``; a record with none at all (written before
    per-seed commits) shows its record-level ``commit``."""
    runs = sorted(record.get("runs", []), key=lambda r: r["seed"])
    if not any(r.get("commit") for r in runs):
        return _short(str(record.get("commit", "unknown")))
    by_commit: dict[str, list[int]] = {}
    for r in runs:
        by_commit.setdefault(_short(r.get("commit") or "unknown"), []).append(r["seed"])
    if len(by_commit) == 1:
        return next(iter(by_commit))
    return "; ".join(f"{c} (seed {seeds[0]})" if len(seeds) == 1 else f"{c} (seeds {seed_range(seeds)})"
                     for c, seeds in by_commit.items())


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
        text = f"{format_mean_std(r['test_mean'], r['test_std'], scale)} (n={len(r['seeds'])})"
        ref = references.get(r["config_id"])
        if ref is not None:
            text += f"<br>paper {ref.text()}<br>{ref.verdict(r['test_mean'] * scale)}"
        extra = r.get("extra_tests") or {}
        if extra:
            text = f"{_test_label(r, 0)} {text}" + "".join(
                f"<br>[test: {name}] {format_mean_std(s['mean'], s['std'], scale)} (n={len(s['seeds'])})"
                for name, s in extra.items())
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
    """Every leaderboard record under ``out_dir/<dataset>/`` (records of other tools kept there, such as the
    expressivity suite's ``expressivity/<config>.json``, carry no ``dataset`` and are skipped)."""
    records = (json.loads(p.read_text()) for p in sorted(out_dir.glob("*/*.json")))
    return [r for r in records if isinstance(r, dict) and "dataset" in r and "config_id" in r]


def write_table(out_dir: Path, dataset: str) -> Path:
    references = load_references(out_dir)
    records = [json.loads(p.read_text()) for p in sorted((out_dir / dataset).glob("*.json"))]
    path = out_dir / f"{dataset}.md"
    atomic_write_text(path, render_table(dataset, records, references))
    return path


def write_summary(out_dir: Path, family: str) -> Path:
    records = [r for r in _all_records(out_dir) if r["config_id"].split("/")[0] == family]
    path = out_dir / f"{family}-summary.md"
    references = load_references(out_dir)
    atomic_write_text(path, render_summary(family, records, references))
    write_family_figure(out_dir / f"{family}-summary.png", family, records, references, _scale)
    return path


def render_all(out_dir: Path) -> list[Path]:
    """Regenerate every dataset table and family summary from the stored records."""
    records = _all_records(out_dir)
    written = [write_table(out_dir, d) for d in sorted({r["dataset"] for r in records})]
    families = sorted({r["config_id"].split("/")[0] for r in records if "/" in r["config_id"]})
    return written + [write_summary(out_dir, f) for f in families]


# --------------------------------------------------------------------------- records: resume, migrate, archive
class RecordConflict(RuntimeError):
    """An existing record was made from another config or other arguments; nothing was run or changed."""


def record_path(out_dir: Path, dataset: str, cid: str) -> Path:
    return out_dir / dataset / f"{cid.replace('/', '__')}.json"


def _command_extra(command: str) -> list[str]:
    """The arguments after ``--`` in a record's ``command``."""
    words = shlex.split(command)
    return words[words.index("--") + 1:] if "--" in words else []


def resumable(record: dict[str, Any], config: Path, extra: list[str]) -> bool:
    """Whether ``record`` was made from this config and these result-changing arguments (see the module
    docstring for the rule that admits records written before fingerprint scheme 2)."""
    fp = fingerprint(config, extra)
    if record.get("fingerprint_scheme") == FINGERPRINT_SCHEME:
        return record.get("fingerprint") == fp
    old_extra = _command_extra(record.get("command", ""))
    same_file = record.get("fingerprint") == _hash_config(config, old_extra)  # the scheme-1 hash
    return same_file and fingerprint(config, old_extra) == fp


def load_record(path: Path) -> Optional[dict[str, Any]]:
    """The stored record, or ``None`` when there is none."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); fix it or move it away to rerun every seed") from err


def archive_record(path: Path, record: dict[str, Any]) -> Path:
    """Move a superseded record to ``<dataset>/superseded/<name>.<fingerprint>[.<n>].json``; never overwrites."""
    folder = path.parent / "superseded"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{path.stem}.{record.get('fingerprint', 'unknown')}"
    target, n = folder / f"{stem}.json", 1
    while target.exists():
        target, n = folder / f"{stem}.{n}.json", n + 1
    os.replace(path, target)
    return target


def open_record(path: Path, config: Path, extra: list[str], force: bool) -> dict[str, Any]:
    """The record to resume, or a fresh one. A record made from another config or other arguments is never
    overwritten: :class:`RecordConflict` without ``force``; with it, the old one is archived first."""
    record = load_record(path)
    if record is None:
        return {"runs": []}
    if resumable(record, config, extra):
        return record
    seeds = sorted(r["seed"] for r in record.get("runs", []))
    if not force:
        raise RecordConflict(
            f"{path} holds seeds {seeds} made from a different config file or different arguments "
            f"(fingerprint {record.get('fingerprint')}, now {fingerprint(config, extra)}; display-only flags "
            f"{', '.join(DISPLAY_ONLY_TRAINER_FLAGS)} do not count). Nothing was run and the record is unchanged. "
            "Restore the config / arguments it was made with (its `command` and `config` fields), or pass --force "
            "to keep it under superseded/ and start a new record."
        )
    moved = archive_record(path, record)
    print(f"[leaderboard] --force: the config changed since {path} was written; kept its seeds {seeds} as {moved} "
          "and starting a new record", file=sys.stderr)
    return {"runs": []}


def code_mix_warning(record: dict[str, Any], version: str) -> Optional[str]:
    """A console warning when the stored seeds ran at another code version than ``version`` (or an unknown one)."""
    others = sorted({r.get("commit") or "unknown" for r in record.get("runs", [])} - {version})
    if not others:
        return None
    return (f"[leaderboard] WARNING: {record.get('config_id', 'this record')} resumes seeds run at code version(s) "
            f"{', '.join(others)}; this run is at {version}. The record keeps each seed's commit and the table lists "
            "them all; rerun with a new --out-dir (or move the record) for a single-version result.")


def versions() -> dict[str, str]:
    """Installed versions of graphlab and the libraries whose behaviour a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("graphlab", "torch", "torch-geometric", "lightning", "ogb"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
