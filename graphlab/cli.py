"""The Lightning CLI behind the ``graphlab`` command's training subcommands.

    graphlab fit --config configs/quickstart.yaml                      # runs/quickstart/version_N/
    graphlab fit --config configs/quickstart.yaml --ckpt_path last     # resume the newest run of this config
    graphlab test --config configs/quickstart.yaml --ckpt_path best    # its best-validation checkpoint
    graphlab predict --config configs/quickstart.yaml --ckpt_path best --predict_out preds.csv
    graphlab fit --config CFG --print_config

(``graphlab leaderboard ...`` is the multi-seed runner, :mod:`graphlab.runner`, which drives this CLI; the
console script :mod:`graphlab.entry` routes to it, so this module never imports the runner.)

Tasks (``model:``) and data (``data:``) are chosen by ``class_path`` in YAML; the data's
feature and output counts are linked into the network's ``in_channels`` and
``out_channels``, so they are never typed twice. Each run's logs and checkpoints go to
``runs/<config id>/version_N`` (``configs/baselines/gcn/cora.yaml`` → ``runs/baselines/gcn/cora/version_N``).
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any, Literal, Optional, Union

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI

# Imported so that configs may name classes by their short names (``NodeClassification``).
import graphlab.data  # noqa: F401
import graphlab.models  # noqa: F401
from graphlab.data.base import GraphDataModule
from graphlab.eval.leaderboard import config_id
from graphlab.eval.predictions import PredictionFileWriter
from graphlab.tasks.base import GraphTask
from graphlab.tasks.checkpoint import LAST_NAME, LastCheckpoint

RUNS_DIR = "runs"
LOGGER_DEFAULT_NAME = "lightning_logs"  # CSVLogger's and TensorBoardLogger's default ``name``
TRAINER_DEFAULTS: dict[str, Any] = {
    # Explicit: Lightning's own default logger is TensorBoard whenever tensorboard happens to be importable.
    "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": RUNS_DIR}},
    "log_every_n_steps": 1,
}


class CheckpointNotFound(FileNotFoundError):
    """``--ckpt_path last`` / ``best`` found no checkpoint of this config."""


class GraphLabParser(LightningArgumentParser):
    """jsonargparse's parser, whose errors add a "did you mean" for a misspelt graphlab ``class_path``."""

    def error(self, message: str, ex: Optional[Exception] = None) -> Any:
        hint = class_path_hint(message)
        return super().error(f"{message}\n{hint}" if hint else message, ex)


class GraphLabCLI(LightningCLI):
    """LightningCLI with graphlab's argument links, defaults, run folders and prediction files."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments(
            "data.num_features", "model.init_args.model.init_args.in_channels", apply_on="instantiate"
        )
        parser.link_arguments(
            "data.num_outputs", "model.init_args.model.init_args.out_channels", apply_on="instantiate"
        )
        # ``--last_checkpoint.every_n_epochs`` / ``.every_n_train_steps`` or a ``last_checkpoint:`` YAML block.
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "predict":
            parser.add_argument("--predict_split", type=Literal["train", "val", "test"], default="test",
                                help="the split to predict (default: test)")
            parser.add_argument("--predict_out", type=Optional[str], default=None,
                                help="output file: .pt (default: predictions.pt beside the checkpoint's run), "
                                     ".csv (pandas) or .parquet (pyarrow)")
        return parser

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        logger = cfg.get("trainer", {}).get("logger")
        configs = cfg.get("config") or []
        if configs and _is_class_config(logger) and logger.init_args.get("name") == LOGGER_DEFAULT_NAME:
            logger.init_args.name = config_id(Path(str(configs[-1])))
        if _is_class_config(logger) and logger.init_args.get("save_dir"):
            # Absolute: checkpoint callbacks store their folder, and a resume compares it (see keep_checkpoint_dir).
            logger.init_args.save_dir = os.path.realpath(str(logger.init_args.save_dir))
        ckpt = cfg.get("ckpt_path")
        if ckpt in ("last", "best"):
            cfg.ckpt_path = str(find_checkpoint(run_root(cfg), ckpt))
            print(f"[graphlab] --ckpt_path {ckpt}: {cfg.ckpt_path}", file=sys.stderr)

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        if config.get("enable_checkpointing") is False:  # Lightning refuses checkpoint callbacks then
            callbacks = [c for c in callbacks if not isinstance(c, LastCheckpoint)]
        return super()._instantiate_trainer(config, callbacks)

    def _continue_checkpoint_dir(self) -> None:
        ckpt = self.config[self.subcommand].get("ckpt_path")
        if ckpt:
            keep_checkpoint_dir(self.trainer, Path(ckpt).parent)

    before_fit = before_validate = before_test = _continue_checkpoint_dir

    def before_predict(self) -> None:
        if self.trainer.world_size > 1:
            raise ValueError(
                f"graphlab predict writes one file from one process, but the trainer would run "
                f"{self.trainer.world_size} processes (devices x num_nodes), each predicting its own shard of the "
                "split: the file would hold one shard. Run predict with --trainer.devices=1 --trainer.num_nodes=1 "
                "(and no --trainer.strategy=ddp)")
        self._continue_checkpoint_dir()
        cfg = self.config["predict"]
        split = cfg.get("predict_split", "test")
        if isinstance(self.datamodule, GraphDataModule):
            self.datamodule.predict_split = split
        out = cfg.get("predict_out")
        if out is None:
            ckpt = cfg.get("ckpt_path")
            base = Path(ckpt).parent.parent if ckpt else Path(self.trainer.log_dir or self.trainer.default_root_dir)
            out = str(base / "predictions.pt")
        self.trainer.callbacks.append(PredictionFileWriter(out, split))


def keep_checkpoint_dir(trainer: Trainer, folder: Path) -> None:
    """Make a resumed run write its checkpoints where the run it resumes wrote them (its new logs go to a new
    ``version_N``): ModelCheckpoint restores its best score and top-k only when its folder is unchanged, so the
    best-validation checkpoint is chosen exactly as in an uninterrupted run.

    Also silences ModelCheckpoint's "Checkpoint directory ... exists and is not empty" warning: the resumed run
    writes into the folder of the run it continues, on purpose."""
    folder = Path(os.path.realpath(folder))
    for callback in trainer.callbacks:
        if isinstance(callback, LastCheckpoint) or (isinstance(callback, ModelCheckpoint) and callback.dirpath is None):
            callback.dirpath = folder if isinstance(callback, LastCheckpoint) else str(folder)
    warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")


def _is_class_config(value: Any) -> bool:
    return value is not None and not isinstance(value, (bool, list)) and "init_args" in value


def run_root(cfg: Any) -> Path:
    """``<save_dir>/<name>``: the folder holding this config's ``version_N`` runs."""
    logger = cfg.get("trainer", {}).get("logger")
    if _is_class_config(logger):
        args = logger.init_args
        return Path(str(args.get("save_dir") or RUNS_DIR)) / str(args.get("name") or "")
    return Path(str(cfg.get("trainer", {}).get("default_root_dir") or os.getcwd()))


def _version(path: Path) -> int:
    match = re.fullmatch(r"version_(\d+)", path.name)
    return int(match.group(1)) if match else -1


def find_checkpoint(root: Path, which: Literal["last", "best"]) -> Path:
    """The ``last.ckpt`` (or best-validation checkpoint) of the newest ``root/version_N`` that has one.

    Raises:
        CheckpointNotFound: naming the folder searched and how to make one.
    """
    runs = sorted((p for p in root.glob("version_*") if p.is_dir()), key=_version, reverse=True)
    for run in runs:
        folder = run / "checkpoints"
        if which == "last" and (folder / LAST_NAME).is_file():
            return folder / LAST_NAME
        if which == "best":
            found = sorted(folder.glob("best-*.ckpt"), key=os.path.getmtime) or sorted(
                (p for p in folder.glob("*.ckpt") if p.name != LAST_NAME), key=os.path.getmtime)
            if found:
                return found[-1]
    raise CheckpointNotFound(
        f"--ckpt_path {which}: no {'last.ckpt' if which == 'last' else 'best-validation checkpoint'} under "
        f"{root}/version_*/checkpoints/ (searched {len(runs)} run folder(s)). Train this config first "
        "(graphlab fit --config ...), or pass the checkpoint's path.")


def shipped_configs(limit: int = 12) -> tuple[Path, list[str]]:
    """Where graphlab's ``configs/`` folder is (the repository beside the package, else ``./configs``) and up to
    ``limit`` of its YAML files, quickstart first."""
    for root in (Path(__file__).resolve().parents[1] / "configs", Path.cwd() / "configs"):
        if root.is_dir():
            files = sorted(p.relative_to(root.parent).as_posix() for p in root.rglob("*.yaml"))
            files.sort(key=lambda f: (not f.endswith("quickstart.yaml"), f))
            return root, files[:limit] + ([f"... and {len(files) - limit} more"] if len(files) > limit else [])
    return Path.cwd() / "configs", []


def missing_config_message(subcommand: str) -> str:
    root, files = shipped_configs()
    if not files:
        return (f"graphlab {subcommand} needs --config FILE. graphlab's configs/ folder was not found (looked beside "
                f"the package and in {root}); a source checkout of graphlab has it at its top level.")
    listed = "\n  ".join(files)
    return f"graphlab {subcommand} needs --config FILE. Configs shipped in {root}:\n  {listed}"


def _known_class_paths() -> list[str]:
    import inspect

    import graphlab.tasks as tasks

    names = []
    for module in (graphlab.models, graphlab.data, tasks):
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and not name.startswith("_"):
                names += [f"{module.__name__}.{name}", f"{obj.__module__}.{name}"]
    return sorted(set(names))


def class_path_hint(message: str) -> Optional[str]:
    """``did you mean ...`` for a ``class_path`` in jsonargparse's error ``message`` that graphlab lacks."""
    known = _known_class_paths()
    for word in re.findall(r"graphlab(?:\.\w+)+", message):
        if word in known:
            continue
        same_depth = [k for k in known if k.count(".") == word.count(".")]  # models.GCN, not models.gcn.GCN
        best = difflib.get_close_matches(word, same_depth, n=5, cutoff=0.6)
        if best:
            return f"{word} is not a graphlab class; did you mean {' or '.join(best)}?"
    return None


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
        parser_class=GraphLabParser,
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
    if isinstance(argv, list) and argv[:1] in (["fit"], ["validate"], ["test"], ["predict"]) and not any(
            a.startswith(("-c", "--config", "--model", "--data", "-h", "--help", "--print_config")) for a in argv):
        print(missing_config_message(argv[0]), file=sys.stderr)
        raise SystemExit(2)
    build_cli(args)  # None: LightningCLI reads sys.argv itself


if __name__ == "__main__":
    main()
