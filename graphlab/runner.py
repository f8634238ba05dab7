"""``graphlab leaderboard``: multi-seed evaluation in the OGB leaderboard style, above the CLI.

``graphlab leaderboard --config CFG --seeds 0-9`` runs ``fit`` then evaluates the checkpoint with the best
validation score, once per seed (seed ``i`` also uses the dataset's fixed split ``i`` when it has several), and
reports mean ± unbiased std over seeds. Records, fingerprints, code versions and tables are
:mod:`graphlab.eval.leaderboard`'s; this module drives the CLI (:func:`graphlab.cli.build_cli`) once per seed.
``graphlab leaderboard --render-only`` regenerates every table without running.

Import direction: ``graphlab.entry`` → this runner → ``graphlab.cli`` and ``graphlab.eval.leaderboard``; the CLI
never imports the runner.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Optional

from graphlab._io import atomic_write_json, file_lock
from graphlab.cli import CheckpointNotFound, build_cli, find_checkpoint, keep_checkpoint_dir
from graphlab.eval.leaderboard import (
    DISPLAY_ONLY_TRAINER_FLAGS,
    FINGERPRINT_SCHEME,
    RecordConflict,
    SeedResult,
    code_mix_warning,
    code_version,
    config_id,
    fingerprint,
    format_mean_std,
    load_record,
    open_record,
    parse_seeds,
    record_path,
    render_all,
    result_args,
    seed_range,
    summarise,
    versions,
    write_summary,
    write_table,
)

SPLIT_ARGS = ("split", "fold")


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


RUN_FINGERPRINT = "fingerprint.json"


def claim_run_dir(run_dir: Path, config: Path, run_fingerprint: str) -> Optional[Path]:
    """The ``last.ckpt`` to resume this seed from, or ``None`` to start over; ``run_dir`` then holds
    ``fingerprint.json`` naming the config and arguments its checkpoints come from.

    A checkpoint is resumed only when that file matches ``run_fingerprint``: a killed run of another config (or
    of other arguments, or from before this file existed) would otherwise be continued silently under the new
    config whenever its parameters happen to fit. Such a folder is moved aside, with a message, to
    ``<run_dir>.superseded.<its fingerprint>.<n>``; nothing is deleted.
    """
    marker = run_dir / RUN_FINGERPRINT
    try:
        stored = json.loads(marker.read_text()).get("fingerprint") if marker.is_file() else None
    except (ValueError, AttributeError):
        stored = None  # unreadable: treated as unknown
    if stored == run_fingerprint:
        try:
            return find_checkpoint(run_dir, "last")
        except CheckpointNotFound:
            return None
    if run_dir.is_dir() and any(run_dir.iterdir()):
        n = 0
        while (aside := run_dir.with_name(f"{run_dir.name}.superseded.{stored or 'unknown'}.{n}")).exists():
            n += 1
        run_dir.rename(aside)
        print(f"[leaderboard] {run_dir} came from another config or other arguments (fingerprint "
              f"{stored or 'unknown'}, this run {run_fingerprint}); moved it to {aside} and starting this seed over",
              file=sys.stderr)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(marker, {"fingerprint": run_fingerprint, "config": str(config)})
    return None


def run_seed(config: Path, seed: int, extra: list[str], run_dir: Path, split_arg: Optional[str],
             num_splits: int) -> SeedResult:
    """Fit with ``seed`` (and split ``seed``), then validate and test the best checkpoint.

    Logs and checkpoints go to ``run_dir/version_N``. When an earlier, killed attempt of this seed with the same
    config and arguments left a ``last.ckpt`` there, the fit resumes from it (epoch, optimiser, scheduler,
    callbacks and random-number states; see :class:`graphlab.tasks.LastCheckpoint`) instead of starting over; a
    folder left by another config is moved aside (:func:`claim_run_dir`).
    """
    args = ["--config", str(config), *extra, f"--seed_everything={seed}",
            "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
            f"--trainer.logger.init_args.save_dir={run_dir.parent}", f"--trainer.logger.init_args.name={run_dir.name}",
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
    resume = claim_run_dir(run_dir, config, fingerprint(config, extra))
    if resume is not None:
        print(f"[leaderboard] seed {seed}: resuming from {resume}")
        keep_checkpoint_dir(trainer, resume.parent)
    trainer.fit(task, datamodule=datamodule, ckpt_path=resume)
    ckpt = trainer.checkpoint_callback
    best = getattr(ckpt, "best_model_path", "") if ckpt is not None else ""
    if not best:
        raise RuntimeError(f"seed {seed}: no best checkpoint was saved (is validation running? "
                           f"check trainer.limit_val_batches / check_val_every_n_epoch in {config})")
    key = task.monitor.removeprefix("val_")
    val = trainer.validate(task, datamodule=datamodule, ckpt_path=best, verbose=False)[0][f"val_{key}"]
    tested: dict[str, float] = {}
    for per_loader in trainer.test(task, datamodule=datamodule, ckpt_path=best, verbose=False):
        tested.update(per_loader)  # one dict per test loader; the split metrics carry no loader suffix
    extra = {name: float(tested[f"test_{key}@{name}"])
             for name in test_names(datamodule)[1:] if f"test_{key}@{name}" in tested}
    num_params = sum(p.numel() for p in task.model.parameters())
    return SeedResult(seed, split, float(val), float(tested[f"test_{key}"]), int(trainer.current_epoch),
                      time.perf_counter() - start, num_params, extra)


def test_names(datamodule: Any) -> list[str]:
    """The names of the DataModule's test sets (``test_names``, e.g. ``["32", "64"]``); ``[]`` when it has one."""
    return [str(n) for n in (getattr(datamodule, "test_names", None) or [])]


def probe(config: Path, extra: list[str]) -> tuple[Any, Optional[str], list[str]]:
    """Instantiate once to learn the dataset description and its split argument."""
    with _plain_argv():
        cli = build_cli(["--config", str(config), *extra, "--trainer.logger=false"], run=False)
    return cli.datamodule.info, _split_arg(cli.datamodule), test_names(cli.datamodule)


def run_leaderboard(config: Path, seeds: list[int], extra: list[str], out_dir: Path, runs_dir: Path,
                    json_out: Optional[Path] = None, force: bool = False) -> dict[str, Any]:
    """Run (or resume) every seed of ``config`` and write the record and the table.

    Raises:
        RecordConflict: the stored record was made from another config or other arguments (and ``force`` is
            off); nothing was run or written.
    """
    if not config.is_file():
        raise FileNotFoundError(f"config {config} does not exist; configs live under configs/<family>/<dataset>.yaml")
    info, split_arg, names = probe(config, extra)
    cid = config_id(config)
    path = record_path(out_dir, info.name, cid)
    record = open_record(path, config, extra, force)
    if record["runs"] and record.get("fingerprint_scheme") != FINGERPRINT_SCHEME:
        record.setdefault("legacy_commit", record.get("commit"))  # the old record-level commit, kept as written
    version = code_version(ignore=out_dir)
    todo = [s for s in seeds if s not in {r["seed"] for r in record["runs"]}]
    warning = code_mix_warning({**record, "config_id": cid}, version) if todo else None
    if warning:
        print(warning, file=sys.stderr)
    known = {record.get("fingerprint"), fingerprint(config, extra)}  # the record as opened (maybe an older scheme)
    command = shlex.join(["graphlab", "leaderboard", "--config", str(config), "--seeds", seed_range(seeds), *(
        ["--", *extra] if extra else [])])
    record.update(config=str(config), config_id=cid, fingerprint=fingerprint(config, extra),
                  fingerprint_scheme=FINGERPRINT_SCHEME, fingerprint_args=result_args(extra), dataset=info.name,
                  metric=info.metric, negatives_per_positive=info.negatives_per_positive,
                  higher_is_better=info.higher_is_better, command=command, versions=versions())
    if len(names) > 1:
        record["test_names"] = names
    for seed in seeds:
        if seed not in todo or seed in _stored_seeds(path):
            print(f"[leaderboard] {cid} seed {seed}: already done, skipped")
            continue
        result = run_seed(config, seed, extra, runs_dir / cid / f"seed_{seed}", split_arg, info.num_splits)
        record = _write_merged(path, record, known, {**result.__dict__, "commit": version})
        more = "".join(f" test@{name} {value:.4f}" for name, value in result.extra_tests.items())
        print(f"[leaderboard] {cid} seed {seed}: val {result.val:.4f} test {result.test:.4f}{more} (code {version})")
    if not record["runs"]:
        raise RuntimeError(f"no seed finished for {config}")
    record.setdefault("commit", version)
    record = _write_merged(path, record, known)
    table = write_table(out_dir, info.name)
    if "/" in cid:
        write_summary(out_dir, cid.split("/")[0])
    if json_out is not None:
        atomic_write_json(json_out, record)
    print(f"[leaderboard] {info.metric_label}: test {format_mean_std(record['test_mean'], record['test_std'], 1.0)}, "
          f"val {format_mean_std(record['val_mean'], record['val_std'], 1.0)} over seeds {record['seeds']}; table {table}")
    return record


def _stored_seeds(path: Path) -> set[int]:
    """Seeds in the record on disk now: another process may be running other seeds of the same config into the
    same out-dir (``graphlab leaderboard --seeds 0-4`` and ``--seeds 5-9`` side by side)."""
    return {r["seed"] for r in (load_record(path) or {}).get("runs", [])}


def _write_merged(path: Path, record: dict[str, Any], known: set[Optional[str]],
                  run: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Add ``run`` (one seed's result, if given) and write the record, merging under a lock the seeds another
    process wrote since this one opened it, so parallel runs never drop each other's seeds. Refuses to merge into a
    record rewritten meanwhile from another config or other arguments (a fingerprint not in ``known``)."""
    with file_lock(path):
        on_disk = load_record(path) or {"runs": []}
        if on_disk.get("runs") and on_disk.get("fingerprint") not in known:
            raise RecordConflict(f"{path} was rewritten from another config or other arguments while this run was "
                                 f"going (fingerprint {on_disk.get('fingerprint')}, this run {record['fingerprint']}); "
                                 "nothing more was written")
        runs = {r["seed"]: r for r in on_disk.get("runs", [])}
        runs.update({r["seed"]: r for r in record["runs"]})
        if run is not None:
            if run["seed"] in runs:
                print(f"[leaderboard] seed {run['seed']} was written meanwhile by another process; keeping that one",
                      file=sys.stderr)
            else:
                runs[run["seed"]] = run
                record["commit"] = run["commit"]
        record["runs"] = [runs[s] for s in sorted(runs)]
        record = summarise(record)
        atomic_write_json(path, record)
    return record


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphlab leaderboard",
        description="Multi-seed fit + best-checkpoint test; writes leaderboards/<dataset>.md and a JSON record. "
                    "Arguments after `--` are passed to every run (e.g. -- --trainer.max_epochs=50). A run resumes "
                    "the stored record of the config when the config file and those arguments are unchanged "
                    f"(display-only flags {', '.join('--trainer.' + f for f in DISPLAY_ONLY_TRAINER_FLAGS)} do not "
                    "count); seeds run at another code version are kept, with a warning, and the table lists every "
                    "commit.",
    )
    parser.add_argument("--config", type=Path, default=None, help="a config under configs/")
    parser.add_argument("--seeds", default="0-9", help="seeds to run, e.g. 0-9 or 0,2,4 (default 0-9)")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON record here")
    parser.add_argument("--out-dir", type=Path, default=Path("leaderboards"), help="where tables go")
    parser.add_argument("--render-only", action="store_true",
                        help="run nothing: regenerate every table and family summary in --out-dir from its records "
                             "(e.g. after editing references.yaml)")
    parser.add_argument("--force", action="store_true",
                        help="when the stored record was made from a different config or arguments, move it to "
                             "<out-dir>/<dataset>/superseded/<config-id>.<fingerprint>.json and start a new record "
                             "(without --force such a run refuses and changes nothing; a record is never deleted)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/leaderboard"), help="checkpoints and logs")
    return parser


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    """``graphlab leaderboard ...`` (``argv`` without the word ``leaderboard``; default ``sys.argv[1:]``)."""
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
    try:
        return run_leaderboard(args.config, seeds, extra, args.out_dir, args.runs_dir, args.json, args.force)
    except RecordConflict as err:
        parser.exit(2, f"graphlab leaderboard: refused: {err}\n")
