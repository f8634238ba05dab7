"""Training from Python through graphlab's task and DataModule, without the CLI or a config file.

What ``graphlab fit --config configs/quickstart.yaml`` does, written out: a DataModule (graphlab.data.CSBMData,
the built-in contextual stochastic block model) describes the dataset (feature count, classes, metric); the
network (graphlab.models.GCN) is built from those counts; the task (graphlab.tasks.NodeClassification) owns the
loss, the optimiser, the metrics and the best-validation checkpoint; a plain lightning.Trainer runs it. The run's
metrics.csv and checkpoint go to ``--out`` (draw its curves with ``graphlab plot OUT/lightning_logs``).

    python examples/train_from_python.py                     # 1000 nodes, 100 epochs
    python examples/train_from_python.py --tiny --out /tmp/r  # 200 nodes, 15 epochs (what the tests run)
"""

from __future__ import annotations

import argparse
from typing import Optional

import lightning as L
from lightning.pytorch.loggers import CSVLogger

from graphlab.data import CSBMData
from graphlab.models import GCN
from graphlab.tasks import NodeClassification


def main(argv: Optional[list[str]] = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="200 nodes and 15 epochs (a smoke run)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default="runs/examples/train_from_python", help="logs and checkpoints")
    args = parser.parse_args(argv)
    L.seed_everything(0, verbose=False)
    data = CSBMData(num_nodes=200 if args.tiny else 1000, num_classes=3, homophily=0.7, feature_signal=0.3)
    model = GCN(in_channels=data.num_features, out_channels=data.num_outputs, hidden_channels=32)
    task = NodeClassification(model, lr=0.01, weight_decay=5e-4)
    trainer = L.Trainer(max_epochs=args.epochs or (15 if args.tiny else 100), logger=CSVLogger(args.out),
                        default_root_dir=args.out, log_every_n_steps=1, enable_progress_bar=not args.tiny,
                        enable_model_summary=False)
    trainer.fit(task, datamodule=data)
    best = trainer.checkpoint_callback.best_model_path
    metric = data.info.metric
    test = trainer.test(task, datamodule=data, ckpt_path=best, verbose=False)[0]
    result = {f"best_val_{metric}": float(trainer.checkpoint_callback.best_model_score),
              f"test_{metric}": float(test[f"test_{metric}"]), "epochs": trainer.current_epoch}
    print(f"best validation {metric} {result[f'best_val_{metric}']:.3f}, test {metric} at that checkpoint "
          f"{result[f'test_{metric}']:.3f}; checkpoint {best}, metrics in {trainer.logger.log_dir}")
    return result


if __name__ == "__main__":
    main()
