"""Pictures: training curves of runs (``graphlab plot``), benchmark charts (``benchmarks/*.py --plot``) and the
per-family leaderboard figure (``leaderboards/<family>-summary.png``), all as PNG files.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through ``pyplot``: no screen, no global
backend switch in the caller's process (a notebook keeps its own backend), no figure registry to leak. matplotlib is
imported when a figure is drawn, so importing this module (the leaderboard does) costs nothing. Every builder
returns the :class:`~matplotlib.figure.Figure`, so tests can read back the plotted data; :func:`save_png` writes it
atomically (temp file in the same folder, then rename).

``graphlab plot RUN_DIR... [--out OUT.png] [--metrics loss acc]`` reads the ``metrics.csv`` that Lightning's
``CSVLogger`` (graphlab's default logger) writes in a run's ``version_N`` folder, or, when a run has only those,
the TensorBoard event files of Lightning's ``TensorBoardLogger`` (needs the ``tensorboard`` package). A value
logged per step is averaged over its epoch; a value logged once per epoch is drawn as logged.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import math
import os
import re
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Protocol

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 120
LOG_RANGE = 10.0
"""An axis turns logarithmic when its positive values span this factor or more (max / min): a decade."""
STAGES = ("train", "val")
STAGE_STYLE = {"train": "-", "val": "--"}
METRICS_FILE = "metrics.csv"
TENSORBOARD_GLOB = "events.out.tfevents.*"


# ------------------------------------------------------------------------------------------------ shared
def new_figure(nrows: int, ncols: int, panel_size: tuple[float, float]) -> tuple["Figure", list[list["Axes"]]]:
    """A figure of ``nrows x ncols`` panels of ``panel_size`` inches each (constrained layout)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [list(row) for row in axes]


def save_png(fig: "Figure", path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically (a crash never leaves half a picture); returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"the figure path {path} must end in .png (figures are written as PNG)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def log_if_wide(ax: "Axes", values: Iterable[float], axis: str) -> bool:
    """Make ``axis`` (``"x"`` or ``"y"``) of ``ax`` logarithmic when the values are positive and span
    :data:`LOG_RANGE` or more; returns whether it did."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite or min(finite) <= 0 or max(finite) / min(finite) < LOG_RANGE:
        return False
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    return True


# ------------------------------------------------------------------------------------------------ run curves
@dataclass
class RunMetrics:
    """The per-epoch values of one run's logged metrics: ``curves[column] = (epochs, values)``."""

    name: str
    folder: Path
    """The version folder the metrics were logged in."""
    curves: dict[str, tuple[list[int], list[float]]]


def _version_number(folder: Path) -> int:
    match = re.fullmatch(r"version_(\d+)", folder.name)
    return int(match.group(1)) if match else -1


def _has_log(folder: Path) -> bool:
    return (folder / METRICS_FILE).is_file() or any(folder.glob(TENSORBOARD_GLOB))


def find_log(run_dir: Path) -> Path:
    """The log to read: a ``metrics.csv`` given as a file, else the version folder holding one (or TensorBoard
    event files): ``run_dir`` itself, its newest ``version_N``, or, when ``run_dir`` is further up (``runs`` for
    ``runs/lightning_logs/version_N``), the newest version of the one run below it.

    Raises:
        FileNotFoundError: the folder does not exist, holds no logged metrics, or holds several runs in different
            sub-folders (ambiguous: pass them one by one).
    """
    if not run_dir.exists():
        raise FileNotFoundError(f"run folder {run_dir} does not exist; pass a run's folder or its version_N folder "
                                f"(e.g. runs/lightning_logs/version_0; `ls runs` lists them)")
    if run_dir.is_file():
        if run_dir.name.endswith(".csv"):
            return run_dir
        raise FileNotFoundError(f"{run_dir} is a file, not a run folder or a {METRICS_FILE}; pass the run's folder")
    if _has_log(run_dir):
        return run_dir
    found = sorted({p.parent for pattern in (METRICS_FILE, TENSORBOARD_GLOB) for p in run_dir.rglob(pattern)})
    runs = {folder.parent if _version_number(folder) >= 0 else folder for folder in found}
    if len(runs) == 1:
        return max(found, key=_version_number)  # the newest version_N of the one run below run_dir
    if found:
        listed = ", ".join(str(p) for p in found[:5]) + (" ..." if len(found) > 5 else "")
        raise FileNotFoundError(f"{run_dir} holds the logs of {len(runs)} runs in sub-folders ({listed}); "
                                "pass the run folders themselves")
    raise FileNotFoundError(f"no {METRICS_FILE} (or TensorBoard event file) in {run_dir} or its sub-folders: has "
                            "the run logged an epoch yet? (Lightning's CSVLogger writes it at the end of each epoch)")


def _column_key(column: str, columns: set[str]) -> Optional[str]:
    """The metric name a logged column is drawn as: ``train_loss_epoch`` -> ``train_loss``; a ``*_step`` column is
    dropped when its ``*_epoch`` twin exists; ``epoch``, ``step`` and TensorBoard's ``hp_metric`` placeholder are
    not metrics."""
    if column in ("epoch", "step", "hp_metric"):
        return None
    if column.endswith("_step") and column.removesuffix("_step") + "_epoch" in columns:
        return None
    return column.removesuffix("_epoch").removesuffix("_step")


def _per_epoch_curves(values: Iterable[tuple[str, int, float]], columns: set[str], source: Path,
                      name: Optional[str]) -> RunMetrics:
    # ``source``: the metrics.csv, or the folder of the TensorBoard event files
    """``(column, epoch, value)`` triples -> per-epoch curves (the mean of a column's values in an epoch)."""
    per_epoch: dict[str, dict[int, list[float]]] = {}
    for column, epoch, value in values:
        key = _column_key(column, columns)
        if key is not None:
            per_epoch.setdefault(key, {}).setdefault(epoch, []).append(value)
    if not per_epoch:
        raise ValueError(f"{source} holds no metric values yet (logged: {sorted(columns)}); train at least one "
                         "epoch")
    curves = {key: (sorted(v), [statistics.fmean(v[e]) for e in sorted(v)]) for key, v in per_epoch.items()}
    folder = source.parent if source.is_file() else source
    return RunMetrics(name or str(folder), folder, curves)


def read_metrics(path: Path, name: Optional[str] = None) -> RunMetrics:
    """Read a CSVLogger ``metrics.csv`` into per-epoch curves.

    Raises:
        ValueError: the file has no ``epoch`` column or no metric value at all.
    """
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        rows = [row for row in reader if (row.get("epoch") or "").strip()]
    if "epoch" not in columns:
        raise ValueError(f"{path} has no `epoch` column (columns: {columns}); is it a Lightning CSVLogger "
                         f"{METRICS_FILE}?")
    values = ((column, int(float(row["epoch"])), float(row[column])) for row in rows for column in columns
              if (row.get(column) or "").strip())
    return _per_epoch_curves(values, set(columns), path, name)


def read_tensorboard(folder: Path, name: Optional[str] = None) -> RunMetrics:
    """Read the scalars of the TensorBoard event files in ``folder`` (Lightning's ``TensorBoardLogger``) into
    per-epoch curves: each value's step is mapped to the epoch that Lightning logs beside it (scalar ``epoch``).

    Raises:
        ValueError: ``tensorboard`` is not installed, or there is no ``epoch`` scalar or no metric.
    """
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        raise ValueError(f"{folder} holds TensorBoard event files, and reading them needs the tensorboard package: "
                         f"pip install tensorboard (or view them with `tensorboard --logdir {folder}`)") from None
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags().get("scalars", []))
    if "epoch" not in tags:
        raise ValueError(f"the TensorBoard logs in {folder} have no `epoch` scalar (tags: {sorted(tags)}); "
                         "`graphlab plot` draws against epochs as Lightning logs them")
    epoch_of = {e.step: int(e.value) for e in events.Scalars("epoch")}
    steps = sorted(epoch_of)
    values = ((tag, epoch_of.get(e.step, epoch_of[steps[max(0, bisect.bisect_right(steps, e.step) - 1)]]),
               float(e.value)) for tag in sorted(tags) for e in events.Scalars(tag))
    return _per_epoch_curves(values, tags, folder, name)


def load_run(run_dir: str | os.PathLike[str]) -> RunMetrics:
    """The metrics of a run folder or version folder (CSV or TensorBoard logs; CSV when both); its name (the
    legend) is the version folder's path."""
    found = find_log(Path(run_dir))
    if found.is_file():
        return read_metrics(found, str(found.parent))
    if (found / METRICS_FILE).is_file():
        return read_metrics(found / METRICS_FILE, str(found))
    return read_tensorboard(found, str(found))


def _base_metric(key: str) -> Optional[str]:
    stage, _, base = key.partition("_")
    return base if stage in STAGES and base else None


def available_metrics(runs: Sequence[RunMetrics]) -> list[str]:
    """The metric names logged for training or validation by any run (``loss`` first, then in file order)."""
    names: list[str] = []
    for run in runs:
        for key in run.curves:
            base = _base_metric(key)
            if base is not None and base not in names:
                names.append(base)
    return sorted(names, key=lambda n: n != "loss")


def _panel_columns(metric: str) -> list[tuple[str, str]]:
    """``(column, label suffix)`` pairs drawn in a metric's panel: the train and validation curves, or a column
    of that exact name (e.g. ``lr-Adam`` from a LearningRateMonitor)."""
    return [(f"{stage}_{metric}", stage) for stage in STAGES] + [(metric, "")]


def legend_names(paths: Sequence[str]) -> list[str]:
    """The run paths without the leading folders they all share, keeping at least the last part
    (``runs/gcn/cora/version_0``, ``runs/sage/cora/version_0`` -> ``gcn/cora/version_0``, ``sage/...``)."""
    parts = [Path(p).parts for p in paths]
    common = 0
    while all(len(p) > common + 1 for p in parts) and len({p[common] for p in parts}) == 1:
        common += 1
    return ["/".join(p[common:]) for p in parts]


def curves_figure(runs: Sequence[RunMetrics], metrics: Optional[Sequence[str]] = None) -> "Figure":
    """One panel per metric, x = epoch; each run in its own colour, training solid and validation dashed; the
    legend names each run by its path below the folders all runs share (the title gives a single run's path).

    Raises:
        ValueError: a requested metric was logged by none of the runs, or there is nothing to draw.
    """
    known = available_metrics(runs)
    logged = {key for run in runs for key in run.curves}
    metrics = list(metrics) if metrics else known
    missing = [m for m in metrics if not any(col in logged for col, _ in _panel_columns(m))]
    if missing:
        raise ValueError(f"--metrics {' '.join(missing)}: not logged by these runs; they logged "
                         f"{', '.join(known) or 'no train_/val_ metrics'} (columns: {', '.join(sorted(logged))})")
    if not metrics:
        raise ValueError(f"the runs logged no train_/val_ metrics (columns: {', '.join(sorted(logged))}); "
                         "name the columns to draw with --metrics")
    ncols = min(len(metrics), 3)
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = new_figure(nrows, ncols, (4.8, 3.4))
    fig.suptitle(runs[0].name if len(runs) == 1 else f"{len(runs)} runs", fontsize="medium")
    names = legend_names([run.name for run in runs])
    for i, metric in enumerate(metrics):
        ax = axes[i // ncols][i % ncols]
        for n, (run, name) in enumerate(zip(runs, names)):
            for column, stage in _panel_columns(metric):
                if column in run.curves:
                    epochs, values = run.curves[column]
                    ax.plot(epochs, values, STAGE_STYLE.get(stage, ":"), color=f"C{n % 10}",
                            marker="." if len(epochs) < 30 else None, label=f"{name} {stage}".strip())
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for j in range(len(metrics), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    return fig


def plot_runs(run_dirs: Sequence[str | os.PathLike[str]], out: Optional[str | os.PathLike[str]] = None,
              metrics: Optional[Sequence[str]] = None) -> tuple["Figure", Path]:
    """Draw the runs' curves (:func:`curves_figure`) and write the PNG: ``out``, else ``curves.png`` in the
    version folder of a single run, else ``curves.png`` in the working directory. Returns the figure and path."""
    if not run_dirs:
        raise ValueError("give at least one run folder, e.g. graphlab plot runs/lightning_logs/version_0")
    runs = [load_run(d) for d in run_dirs]
    fig = curves_figure(runs, metrics)
    if out is None:
        out = runs[0].folder / "curves.png" if len(runs) == 1 else Path("curves.png")
    return fig, save_png(fig, out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphlab plot",
        description="Draw training (solid) and validation (dashed) curves from the metrics.csv that runs logged "
                    "(Lightning's CSVLogger; TensorBoard event files when a run has only those), several runs "
                    "overlaid, one panel per metric, x = epoch, to PNG.",
    )
    parser.add_argument("runs", nargs="+", type=Path,
                        help="run folders or their version_N folders (a run folder means its newest version)")
    parser.add_argument("--out", type=Path, default=None,
                        help="the PNG to write (default: curves.png in the run's version folder, or in the working "
                             "directory for several runs)")
    parser.add_argument("--metrics", nargs="+", default=None,
                        help="metrics to draw, e.g. loss acc (default: every train_/val_ metric logged)")
    return parser


def main(argv: Optional[list[str]] = None) -> Path:
    """``graphlab plot ...`` (``argv`` without the word ``plot``; default ``sys.argv[1:]``)."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        _, path = plot_runs(args.runs, args.out, args.metrics)
    except (FileNotFoundError, ValueError) as err:
        parser.exit(2, f"graphlab plot: error: {err}\n")
    print(f"[plot] wrote {path}")
    return path


# ------------------------------------------------------------------------------------------------ benchmarks
@dataclass(frozen=True)
class BenchPoint:
    """One measured cell of a benchmark table."""

    panel: str
    """The sub-chart it belongs to (e.g. ``"F=64 sum fwd+bwd"``)."""
    method: str
    size: float
    time: float
    memory: Optional[float]
    size_name: str = ""
    """A tick label for categorical sizes (e.g. the dataset at that size), or empty."""


def benchmark_figure(points: Sequence[BenchPoint], size_label: str, time_label: str, memory_label: str,
                     title: str, ours: str = "graphlab") -> "Figure":
    """One row per panel: time (left) and memory (right) against size, one line per method, ``ours`` in black
    and thicker; an axis is logarithmic when its values span :data:`LOG_RANGE` or more."""
    if not points:
        raise ValueError("no benchmark results to plot")
    panels = list(dict.fromkeys(p.panel for p in points))
    fig, axes = new_figure(len(panels), 2, (5.0, 3.4))
    fig.suptitle(title)
    for row, panel in zip(axes, panels):
        mine = [p for p in points if p.panel == panel]
        methods = sorted({p.method for p in mine}, key=lambda m: (m != ours, m))
        for ax, field, label in ((row[0], "time", time_label), (row[1], "memory", memory_label)):
            _draw_methods(ax, mine, methods, field, ours)
            ax.set_title(f"{panel}: {field}", fontsize="medium")
            ax.set_xlabel(size_label)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3, which="both")
            if ax.get_lines():
                ax.legend(fontsize="small")
    return fig


def _draw_methods(ax: "Axes", points: Sequence[BenchPoint], methods: Sequence[str], field: str, ours: str) -> None:
    values: list[float] = []
    for i, method in enumerate(methods):
        line = sorted((p.size, getattr(p, field)) for p in points if p.method == method
                      and getattr(p, field) is not None)
        if not line:
            continue
        xs, ys = zip(*line)
        values += ys
        ax.plot(xs, ys, marker="o", label=method, color="black" if method == ours else f"C{i}",
                linewidth=2.2 if method == ours else 1.2)
    if not values:
        ax.text(0.5, 0.5, f"{field} not measured", transform=ax.transAxes, ha="center", va="center")
    log_if_wide(ax, [p.size for p in points], "x")
    log_if_wide(ax, values, "y")
    names = {p.size: p.size_name for p in points if p.size_name}
    if names:
        ax.set_xticks(sorted(names), [f"{names[s]}\n{s:,.0f}" for s in sorted(names)], fontsize="small")
        ax.minorticks_off()


def write_benchmark_figure(path: str | os.PathLike[str], points: Sequence[BenchPoint], size_label: str,
                           time_label: str, memory_label: str, title: str) -> Path:
    """:func:`benchmark_figure` saved as a PNG at ``path``."""
    return save_png(benchmark_figure(points, size_label, time_label, memory_label, title), path)


# ------------------------------------------------------------------------------------------------ leaderboard
class Published(Protocol):
    """A published result in table units (the leaderboard's ``Reference``)."""

    mean: float
    std: Optional[float]


def _model_of(config_id: str) -> str:
    """``sheaf/diag-nsd/texas`` -> ``diag-nsd`` (the summary table's row)."""
    return "/".join(config_id.split("/")[1:-1]) or config_id


def family_figure(family: str, records: Sequence[Mapping[str, Any]], references: Mapping[str, Published],
                  scale: Callable[[str], float]) -> "Figure":
    """One panel per dataset: per model, our test mean ± std (over seeds) beside the published mean ± std.

    Args:
        family: the config family (``configs/<family>/...``), for the title.
        records: the family's leaderboard records (``config_id``, ``dataset``, ``metric``, ``test_mean``,
            ``test_std``, ``seeds``).
        references: published results by config id, already in table units.
        scale: the table unit of a metric (100 for percentages, 1 for errors).
    """
    if not records:
        raise ValueError(f"family {family!r} has no records to draw")
    datasets = sorted({r["dataset"] for r in records})
    ncols = min(len(datasets), 3)
    nrows = math.ceil(len(datasets) / ncols)
    fig, axes = new_figure(nrows, ncols, (4.4, 3.4))
    fig.suptitle(f"{family}: test metric, ours (mean ± std over seeds) vs published (mean ± std)")
    for i, dataset in enumerate(datasets):
        ax = axes[i // ncols][i % ncols]
        _draw_dataset(ax, sorted((r for r in records if r["dataset"] == dataset), key=lambda r: r["config_id"]),
                      references, scale)
        ax.set_title(dataset)
    for j in range(len(datasets), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    handles = {label: handle for row in axes for ax in row for handle, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=len(handles))
    return fig


def _draw_dataset(ax: "Axes", records: Sequence[Mapping[str, Any]], references: Mapping[str, Published],
                  scale: Callable[[str], float]) -> None:
    positions = list(range(len(records)))
    ours = [(r["test_mean"] * scale(r["metric"]), _nan_if_none(r.get("test_std")) * scale(r["metric"]))
            for r in records]
    ax.errorbar([x - 0.12 for x in positions], [m for m, _ in ours], yerr=[s for _, s in ours], fmt="o",
                color="C0", capsize=3, label="ours")
    published = [(x, references[r["config_id"]]) for x, r in zip(positions, records) if r["config_id"] in references]
    if published:
        ax.errorbar([x + 0.12 for x, _ in published], [ref.mean for _, ref in published],
                    yerr=[_nan_if_none(ref.std) for _, ref in published], fmt="s", mfc="none", color="C3",
                    capsize=3, label="published")
    ax.set_xticks(positions, [f"{_model_of(r['config_id'])}\n(n={len(r['seeds'])})" for r in records],
                  fontsize="small", rotation=30 if len(records) > 3 else 0)
    metric = records[0]["metric"]
    ax.set_ylabel(metric + (" (%)" if scale(metric) == 100.0 else ""))
    ax.set_xlim(-0.6, len(records) - 0.4)
    ax.grid(alpha=0.3, axis="y")


def _nan_if_none(value: Optional[float]) -> float:
    return math.nan if value is None else float(value)


def write_family_figure(path: str | os.PathLike[str], family: str, records: Sequence[Mapping[str, Any]],
                        references: Mapping[str, Published], scale: Callable[[str], float]) -> Path:
    """:func:`family_figure` saved as a PNG at ``path`` (``leaderboards/<family>-summary.png``)."""
    return save_png(family_figure(family, records, references, scale), path)
