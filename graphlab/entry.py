"""The ``graphlab`` console script: routes ``graphlab leaderboard ...`` to the multi-seed runner, ``graphlab
expressivity ...`` to the expressivity suite (:func:`graphlab.eval.expressivity.main`), ``graphlab plot ...`` to
:func:`graphlab.eval.figures.main`, ``graphlab store ...`` to :func:`graphlab.data.store.convert.main`, and every other
subcommand (``fit``, ``validate``, ``test``, ``predict``) to the Lightning CLI.

It sits above both, so neither imports the other's caller: entry → runner → cli, and entry → cli.

A clean terminal: the known user errors (:data:`USER_ERRORS`: a missing dataset or config file, a bad value, a
refused leaderboard record) print one line, ``graphlab: error: ...``, and exit with status 2; ``--debug`` (anywhere
on the command line) shows the traceback instead. Third-party notices that say nothing about the user's run are
filtered (:func:`quiet_third_party`), each with its reason.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any, Callable, Optional, Union

from lightning.fabric.utilities.exceptions import MisconfigurationException

from graphlab import cli, runner
from graphlab.data.store import convert as store
from graphlab.eval import expressivity, figures
from graphlab.eval.leaderboard import RecordConflict

ROUTES: dict[str, Callable[[list[str]], Any]] = {
    "expressivity": lambda argv: expressivity.main(argv),
    "leaderboard": lambda argv: runner.main(argv),
    "plot": lambda argv: figures.main(argv),
    "store": lambda argv: store.main(argv),
}
"""Subcommands that are not Lightning's: ``graphlab <name> ARGS`` calls ``ROUTES[name](ARGS)``."""

USER_ERRORS = (FileNotFoundError, ValueError, ImportError, MisconfigurationException, RecordConflict)

WARNING_FILTERS = (
    # Lightning 2.6's LightningCLI calls jsonargparse APIs that jsonargparse 4.5x deprecates: not the user's code.
    ("ignore", r"", "jsonargparse._deprecated.JsonargparseDeprecationWarning"),
    # Lightning 2.6 uses an old torch.utils._pytree API that torch 2.13 deprecates: not the user's code.
    ("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", "FutureWarning"),
    # PyG 2.8 scripts a few classes with torch.jit at import; torch 2.13 deprecates torch.jit.script.
    ("ignore", r"`torch.jit.script(_method)?` is deprecated", "DeprecationWarning"),
    # Lightning notes that tensorboardX is gone and falls back: graphlab chooses its logger explicitly.
    ("ignore", r"Starting from v1.9.0, `tensorboardX` has been removed", "UserWarning"),
    # Full-batch graphs are one batch per epoch, so Lightning's "few workers" advice does not apply.
    ("ignore", r"The '.*_dataloader' does not have many workers", "UserWarning"),
    # graphlab's tasks gather every rank's predictions and drop DistributedSampler's padding duplicates before the
    # metric (graphlab.distributed), so evaluating on several devices counts each sample once, as Lightning wants.
    ("ignore", r"Using `DistributedSampler` with the dataloaders. During `trainer\.(validate|test)\(\)`",
     "lightning.fabric.utilities.warnings.PossibleUserWarning"),
)

LOG_FILTERS = (
    # (logger, text, whole): drop the logger's records whose message starts with ``text`` (is exactly ``text`` when
    # ``whole``).
    # Advertising for Lightning's cloud products, printed on every fit ("💡 Tip: For seamless cloud ...").
    ("lightning.pytorch.utilities.rank_zero", "💡 Tip", False),
    # graphlab's tasks return the CLI's LastCheckpoint from configure_callbacks on purpose (to order it last). Only
    # that one: a notice that also names another overridden callback is the user's to see.
    ("lightning.pytorch.utilities.rank_zero", "The following callbacks returned in `LightningModule.configure_callbacks`"
     " will override existing callbacks passed to Trainer: LastCheckpoint", True),
    # graphlab resumes only checkpoints its own runs wrote; the full (non weights-only) load restores callbacks.
    ("lightning.pytorch.trainer.connectors.checkpoint_connector", "`weights_only` was not set", False),
)


class _DropMessage(logging.Filter):
    def __init__(self, text: str, whole: bool) -> None:
        super().__init__()
        self.text, self.whole = text, whole

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.getMessage())
        return not (message == self.text if self.whole else message.startswith(self.text))


def _category(name: str) -> type[Warning]:
    import builtins
    import importlib

    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module) if module else builtins, attr)


def quiet_third_party() -> None:
    """Install :data:`WARNING_FILTERS` and :data:`LOG_FILTERS` (idempotent)."""
    for action, message, category in WARNING_FILTERS:
        try:
            warnings.filterwarnings(action, message=message, category=_category(category))
        except (ImportError, AttributeError):  # the library that warns is absent or renamed: nothing to filter
            continue
    for logger_name, text, whole in LOG_FILTERS:
        logger = logging.getLogger(logger_name)
        if not any(isinstance(f, _DropMessage) and (f.text, f.whole) == (text, whole) for f in logger.filters):
            logger.addFilter(_DropMessage(text, whole))


def main(args: Optional[Union[list[str], dict[str, Any]]] = None) -> None:
    """``graphlab leaderboard ...`` → :func:`graphlab.runner.main`; ``graphlab plot ...`` →
    :func:`graphlab.eval.figures.main`; anything else → :func:`graphlab.cli.main`.

    Args:
        args: command-line arguments (default: ``sys.argv[1:]``); a dict is a config for LightningCLI.
    """
    argv = sys.argv[1:] if args is None else args
    debug = isinstance(argv, list) and "--debug" in argv
    if debug:
        argv = [a for a in argv if a != "--debug"]
        if args is None:
            sys.argv = sys.argv[:1] + argv
    quiet_third_party()
    try:
        if isinstance(argv, list) and argv[:1] and argv[0] in ROUTES:
            ROUTES[argv[0]](argv[1:])
            return
        cli.main(argv if args is not None or debug else None)
    except USER_ERRORS as err:
        if debug:
            raise
        print(f"graphlab: error: {err}\n(run with --debug for the traceback)", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
