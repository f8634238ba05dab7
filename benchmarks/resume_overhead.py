"""Resume overhead: the time to write ``last.ckpt`` each epoch, as a fraction of the epoch's time.

    python benchmarks/resume_overhead.py --root /tmp/gdata --epochs 30
    python benchmarks/resume_overhead.py --root /tmp/gdata --configs configs/baselines/gcn/cora.yaml --epochs 5

``--root`` must hold the raw dataset folders in a writable place (PyG writes ``processed/`` beside them): copy
``../shared/data/Cora`` and ``../shared/data/chameleon`` there first. Each config trains ``--epochs`` epochs
(``graphlab fit``'s settings, early stopping off) with :class:`graphlab.tasks.LastCheckpoint` saving every epoch;
the save (serialise, write to a temp file, fsync, rename, fsync the folder) is timed inside the callback, the
epoch from one ``on_train_epoch_start`` to the next (training, validation, best checkpoint and the save). The
first epoch is dropped (warm-up); the table reports medians and the checkpoint's size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback, EarlyStopping

from graphlab.cli import build_cli
from graphlab.entry import quiet_third_party
from graphlab.tasks import checkpoint as ckpt_module
from graphlab.tasks.checkpoint import LastCheckpoint

DEFAULT_CONFIGS = ("configs/baselines/gcn/cora.yaml", "configs/sheaf/diag-nsd/chameleon.yaml")


class EpochClock(Callback):
    """Wall time between consecutive epoch starts (the last epoch ends at ``on_train_end``)."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.starts.append(time.perf_counter())

    def epochs(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:])]


def measure(config: str, root: Path, epochs: int, runs: Path) -> dict[str, Any]:
    saves: list[float] = []
    original = ckpt_module.save_atomic

    def timed(trainer: Any, path: Path) -> None:
        start = time.perf_counter()
        original(trainer, path)
        saves.append(time.perf_counter() - start)

    sys_argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        cli = build_cli(["--config", config, f"--data.init_args.root={root}", f"--trainer.max_epochs={epochs}",
                         "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
                         f"--trainer.logger.init_args.save_dir={runs}"], run=False)
    finally:
        sys.argv = sys_argv
    trainer = cli.trainer
    trainer.callbacks[:] = [c for c in trainer.callbacks if not isinstance(c, EarlyStopping)]
    clock = EpochClock()
    trainer.callbacks.append(clock)
    ckpt_module.save_atomic = timed
    try:
        trainer.fit(cli.model, datamodule=cli.datamodule)
    finally:
        ckpt_module.save_atomic = original
    last = next(c for c in trainer.callbacks if isinstance(c, LastCheckpoint)).path
    epoch_times = clock.epochs()[1:]
    save_times = saves[1:] if len(saves) > 1 else saves
    return {"config": config, "epoch_s": statistics.median(epoch_times), "save_s": statistics.median(save_times),
            "size_mb": last.stat().st_size / 2**20, "epochs": len(epoch_times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="writable data root with the raw dataset folders")
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    quiet_third_party()
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for config in args.configs:
            rows.append(measure(config, args.root, args.epochs, Path(runs)))
    print("| config | epoch (ms, median) | save last.ckpt (ms, median) | save / epoch | last.ckpt (MB) | epochs |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['epoch_s'] * 1e3:.1f} | {r['save_s'] * 1e3:.1f} | "
              f"{100 * r['save_s'] / r['epoch_s']:.1f}% | {r['size_mb']:.2f} | {r['epochs']} |")


if __name__ == "__main__":
    main()
