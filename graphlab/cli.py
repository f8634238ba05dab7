"""The Lightning CLI behind the ``graphlab`` command's training subcommands.

    graphlab fit --config configs/quickstart.yaml
    graphlab test --config CFG --ckpt_path best.ckpt
    graphlab fit --config CFG --print_config

(``graphlab leaderboard ...`` is the multi-seed runner, :mod:`graphlab.runner`, which drives this CLI; the
console script :mod:`graphlab.entry` routes to it, so this module never imports the runner.)

Tasks (``model:``) and data (``data:``) are chosen by ``class_path`` in YAML; the data's
feature and output counts are linked into the network's ``in_channels`` and
``out_channels``, so they are never typed twice.
"""

from __future__ import annotations

import sys
from typing import Any, Optional, Union

from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI

# Imported so that configs may name classes by their short names (``NodeClassification``).
import graphlab.data  # noqa: F401
import graphlab.models  # noqa: F401
from graphlab.data.base import GraphDataModule
from graphlab.tasks.base import GraphTask

TRAINER_DEFAULTS: dict[str, Any] = {
    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs"}},
    "log_every_n_steps": 1,
}


class GraphLabCLI(LightningCLI):
    """LightningCLI with graphlab's argument links and defaults."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments(
            "data.num_features", "model.init_args.model.init_args.in_channels", apply_on="instantiate"
        )
        parser.link_arguments(
            "data.num_outputs", "model.init_args.model.init_args.out_channels", apply_on="instantiate"
        )


def build_cli(args: ArgsType = None, run: bool = True) -> GraphLabCLI:
    """The LightningCLI behind ``graphlab``; ``run=False`` instantiates without running."""
    return GraphLabCLI(
        GraphTask,
        GraphDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        trainer_defaults=TRAINER_DEFAULTS,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"description": "graphlab: expressive GNNs on PyG. Also: `graphlab leaderboard --help`."},
        args=args,
        run=run,
    )


def main(args: Optional[Union[list[str], dict[str, Any]]] = None) -> None:
    """Run a Lightning CLI subcommand (``fit``, ``validate``, ``test``, ``predict``).

    Args:
        args: command-line arguments (default: ``sys.argv[1:]``); a dict is passed to
            LightningCLI as a config.
    """
    argv = sys.argv[1:] if args is None else args
    if isinstance(argv, list) and argv[:1] == ["leaderboard"]:
        raise ValueError("`leaderboard` is not a Lightning subcommand: call graphlab.entry.main(['leaderboard', ...]) "
                         "or graphlab.runner.main([...]) (the `graphlab` console script routes it)")
    build_cli(args)  # None: LightningCLI reads sys.argv itself


if __name__ == "__main__":
    main()
