"""The ``graphlab`` console script: routes ``graphlab leaderboard ...`` to the multi-seed runner and every other
subcommand (``fit``, ``validate``, ``test``, ``predict``) to the Lightning CLI.

It sits above both, so neither imports the other's caller: entry → runner → cli, and entry → cli.
"""

from __future__ import annotations

import sys
from typing import Any, Optional, Union

from graphlab import cli, runner
from graphlab.eval import figures


def main(args: Optional[Union[list[str], dict[str, Any]]] = None) -> None:
    """``graphlab leaderboard ...`` → :func:`graphlab.runner.main`; ``graphlab plot ...`` →
    :func:`graphlab.eval.figures.main`; anything else → :func:`graphlab.cli.main`.

    Args:
        args: command-line arguments (default: ``sys.argv[1:]``); a dict is a config for LightningCLI.
    """
    argv = sys.argv[1:] if args is None else args
    if isinstance(argv, list) and argv[:1] == ["leaderboard"]:
        runner.main(argv[1:])
        return
    if isinstance(argv, list) and argv[:1] == ["plot"]:
        figures.main(argv[1:])
        return
    cli.main(args)


if __name__ == "__main__":
    main()
