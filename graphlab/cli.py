"""The ``graphlab`` command: Lightning CLI subcommands plus the multi-seed leaderboard.

    graphlab fit --config configs/quickstart.yaml
    graphlab test --config CFG --ckpt_path best.ckpt
    graphlab fit --config CFG --print_config
    graphlab leaderboard --config CFG --seeds 0-9 [--json OUT.json]

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
    """Entry point of the ``graphlab`` console script.

    Args:
        args: command-line arguments (default: ``sys.argv[1:]``); a dict is passed to
            LightningCLI as a config.
    """
    argv = sys.argv[1:] if args is None else args
    if isinstance(argv, list) and argv and argv[0] == "leaderboard":
        from graphlab.eval.leaderboard import main as leaderboard_main

        leaderboard_main(argv[1:])
        return
    build_cli(args)  # None: LightningCLI reads sys.argv itself


if __name__ == "__main__":
    main()
