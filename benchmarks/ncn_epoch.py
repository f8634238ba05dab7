"""Time per training epoch and peak RSS of graphlab's NCN / NCNC on Cora (README hyperparameters), one process
per model, against the official implementation's figures measured on this machine (anchors-measured.md).

    OMP_NUM_THREADS=1 GRAPHLAB_DATA=<copy of shared/data> python benchmarks/ncn_epoch.py [--epochs 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

OFFICIAL = {"ncn": (0.52, 736), "ncnc": (0.95, 975)}  # s/epoch, peak RSS MiB (official code, torch_sparse)
REPO = Path(__file__).resolve().parents[1]


def measure(model: str, epochs: int) -> dict[str, float]:
    """Train ``epochs`` epochs (validation off) in this process; median epoch time and peak RSS."""
    import resource
    import time

    import lightning as L
    import torch
    from lightning.pytorch.callbacks import Callback

    from graphlab.cli import build_cli

    class Timer(Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_train_epoch_start(self, trainer, module) -> None:  # noqa: ANN001
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module) -> None:  # noqa: ANN001
            self.times.append(time.perf_counter() - self.start)

    cli = build_cli(["--config", str(REPO / "configs" / "ncn" / model / "cora.yaml"), "--trainer.logger=false",
                     "--trainer.enable_checkpointing=false", "--trainer.limit_val_batches=0"], run=False)
    timer = Timer()
    trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, limit_val_batches=0,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
    trainer.fit(cli.model, datamodule=cli.datamodule)
    times = sorted(timer.times[1:] or timer.times)
    return {"s_per_epoch": times[len(times) // 2],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "threads": torch.get_num_threads()}


def epoch_table(epochs: int) -> list[str]:
    """Markdown rows: each model measured in its own subprocess (a fresh peak RSS), against the official figures."""
    rows = ["| model | ours s/epoch | official s/epoch | speed-up | ours peak RSS MiB | official MiB | RSS ratio |",
            "|---|---|---|---|---|---|---|"]
    for model, (t_off, rss_off) in OFFICIAL.items():
        out = subprocess.run([sys.executable, __file__, "--child", model, "--epochs", str(epochs)],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        rows.append(f"| {model} | {r['s_per_epoch']:.3f} | {t_off:.2f} | {t_off / r['s_per_epoch']:.2f}x | "
                    f"{r['peak_rss_mib']:.0f} | {rss_off} | {r['peak_rss_mib'] / rss_off:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--child", choices=sorted(OFFICIAL))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.epochs)))
        return
    print("\n".join(epoch_table(args.epochs)))


if __name__ == "__main__":
    main()
