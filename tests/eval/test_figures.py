"""Pictures: `graphlab plot` curves read back from the figure equal the logged CSV, benchmark charts switch to log
axes on wide ranges, and the leaderboard's family figure shows each record's mean ± std beside the published one."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.image import imread

from graphlab import entry
from graphlab.eval import figures
from graphlab.eval.figures import BenchPoint, benchmark_figure, curves_figure, load_run, plot_runs
from graphlab.eval.leaderboard import render_all, write_summary

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# What Lightning's CSVLogger writes: one row per logging call, blanks for the other columns; train_loss logged
# per step (two steps per epoch) and per epoch, validation once per epoch.
LIGHTNING_CSV = """epoch,step,train_acc,train_loss_epoch,train_loss_step,val_acc,val_loss
0,0,,,1.0,,
0,1,,,0.8,,
0,1,,,,0.5,0.95
0,1,0.4,0.9,,,
1,2,,,0.7,,
1,3,,,0.5,,
1,3,,,,0.75,0.6
1,3,0.6,0.6,,,
2,4,,,0.4,,
2,5,,,0.2,,
2,5,,,,0.8,0.4
2,5,0.9,0.3,,,
"""


def _version(folder: Path, text: str = LIGHTNING_CSV) -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text(text)
    return folder


def _lines(fig, title: str) -> dict[str, tuple[list[float], list[float]]]:
    ax = next(a for a in fig.axes if a.get_title() == title)
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()}


def _assert_png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.01  # something was drawn, not a blank canvas
    return image


def test_plotted_curves_equal_the_csv(tmp_path):
    run = _version(tmp_path / "runs" / "gcn" / "version_0")
    fig, path = plot_runs([run], tmp_path / "out.png")
    _assert_png(path)
    name = "version_0"  # a single run: its path is the title
    assert fig.get_suptitle() == str(run)
    loss = _lines(fig, "loss")
    assert loss == {f"{name} train": ([0, 1, 2], [0.9, 0.6, 0.3]),  # the *_epoch column, not the step average
                    f"{name} val": ([0, 1, 2], [0.95, 0.6, 0.4])}
    acc = _lines(fig, "acc")
    assert acc == {f"{name} train": ([0, 1, 2], [0.4, 0.6, 0.9]), f"{name} val": ([0, 1, 2], [0.5, 0.75, 0.8])}
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["loss", "acc"]


def test_values_logged_per_step_are_averaged_per_epoch(tmp_path):
    run = _version(tmp_path / "v", "epoch,step,train_loss\n0,0,1.0\n0,1,0.5\n1,2,0.25\n1,3,0.75\n")
    assert load_run(run).curves == {"train_loss": ([0, 1], [0.75, 0.5])}


def test_several_runs_are_overlaid_and_a_run_folder_means_its_newest_version(tmp_path):
    first = _version(tmp_path / "a" / "version_0")
    _version(tmp_path / "b" / "version_2", LIGHTNING_CSV.replace("0.95", "9.0"))
    _version(tmp_path / "b" / "version_10", LIGHTNING_CSV.replace("0.95", "2.0"))  # 10 > 2, not "1" < "2"
    fig, path = plot_runs([first, tmp_path / "b"], tmp_path / "both.png", metrics=["loss"])
    _assert_png(path)
    loss = _lines(fig, "loss")
    assert set(loss) == {"a/version_0 train", "a/version_0 val", "b/version_10 train", "b/version_10 val"}
    assert loss["b/version_10 val"][1][0] == 2.0 and loss["a/version_0 val"][1][0] == 0.95
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 1


def test_legend_names_drop_the_shared_folders():
    assert figures.legend_names(["runs/gcn/cora/version_0", "runs/sage/cora/version_0"]) == [
        "gcn/cora/version_0", "sage/cora/version_0"]
    assert figures.legend_names(["/tmp/r/version_0"]) == ["version_0"]
    assert figures.legend_names(["a", "a"]) == ["a", "a"]


def test_console_script_routes_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["graphlab"])
    run = _version(tmp_path / "version_0")
    entry.main(["plot", str(run)])
    assert f"wrote {run / 'curves.png'}" in capsys.readouterr().out
    _assert_png(run / "curves.png")


def _tiny_fit(folder: Path, *extra: str) -> None:
    from graphlab.cli import build_cli

    build_cli(["fit", "--config", str(Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml"),
               "--trainer.max_epochs=3", *extra, f"--trainer.default_root_dir={folder}",
               f"--trainer.logger.init_args.save_dir={folder}", "--trainer.enable_progress_bar=false",
               "--trainer.enable_model_summary=false", "--data.init_args.num_nodes=120"])


def test_curves_of_a_real_fit(tmp_path, monkeypatch):
    """A tiny `graphlab fit`'s own metrics.csv: the figure holds one point per epoch for train and val loss."""
    monkeypatch.setattr(sys, "argv", ["graphlab"])
    _tiny_fit(tmp_path)
    csv_files = list(tmp_path.rglob("metrics.csv"))
    assert len(csv_files) == 1
    rows = [line.split(",") for line in csv_files[0].read_text().splitlines()]
    header, rows = rows[0], rows[1:]
    val_loss = [float(r[header.index("val_loss")]) for r in rows if r[header.index("val_loss")]]
    fig, path = plot_runs([tmp_path], tmp_path / "fit.png")
    _assert_png(path)
    lines = _lines(fig, "loss")
    val = next(v for k, v in lines.items() if k.endswith(" val"))
    assert val == ([0, 1, 2], val_loss)
    assert {"loss", "acc"} <= {ax.get_title() for ax in fig.axes}


def test_tensorboard_logs_of_a_real_fit_give_the_csv_curves(tmp_path, monkeypatch):
    """The same seeded fit logged by TensorBoardLogger and by CSVLogger draws the same curves."""
    pytest.importorskip("tensorboard")
    monkeypatch.setattr(sys, "argv", ["graphlab"])
    _tiny_fit(tmp_path / "csv")
    _tiny_fit(tmp_path / "tb", "--trainer.logger=lightning.pytorch.loggers.TensorBoardLogger")
    assert not list((tmp_path / "tb").rglob("metrics.csv")) and list((tmp_path / "tb").rglob("events.out.*"))
    csv_run, tb_run = load_run(tmp_path / "csv"), load_run(tmp_path / "tb")
    assert set(tb_run.curves) == set(csv_run.curves) == {"train_loss", "val_loss", "train_acc", "val_acc"}
    for key, (epochs, values) in csv_run.curves.items():
        assert tb_run.curves[key][0] == epochs == [0, 1, 2]
        np.testing.assert_allclose(tb_run.curves[key][1], values, rtol=1e-6)  # TensorBoard stores float32
    fig, path = plot_runs([tmp_path / "tb"], tmp_path / "tb.png")
    _assert_png(path)


# ----------------------------------------------------------------------------------------------- errors
def test_missing_folder_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="run folder .*nope does not exist"):
        load_run(tmp_path / "nope")
    with pytest.raises(SystemExit) as exit_info:
        figures.main([str(tmp_path / "nope")])
    assert exit_info.value.code == 2
    assert "graphlab plot: error: run folder" in capsys.readouterr().err


def test_folder_without_metrics_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no metrics.csv \(or TensorBoard event file\) in .*empty"):
        load_run(tmp_path / "empty")


def test_tensorboard_logs_without_epochs_or_without_tensorboard_are_clear_errors(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    tb = tmp_path / "tb" / "version_0"
    tb.mkdir(parents=True)
    (tb / "events.out.tfevents.123.host").write_bytes(b"")
    with pytest.raises(ValueError, match="have no `epoch` scalar"):
        load_run(tmp_path / "tb")
    monkeypatch.setitem(sys.modules, "tensorboard.backend.event_processing.event_accumulator", None)
    with pytest.raises(ValueError, match="needs the tensorboard package: pip install tensorboard"):
        load_run(tmp_path / "tb")


def test_a_folder_of_several_runs_asks_for_one(tmp_path):
    _version(tmp_path / "x" / "gcn" / "version_0")
    _version(tmp_path / "x" / "sage" / "version_0")
    with pytest.raises(FileNotFoundError, match="holds the logs of 2 runs"):
        load_run(tmp_path / "x")


def test_header_only_csv_and_unknown_metric_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="holds no metric values yet"):
        load_run(_version(tmp_path / "a", "epoch,step,train_loss\n"))
    run = load_run(_version(tmp_path / "b"))
    with pytest.raises(ValueError, match="--metrics f1: not logged by these runs; they logged loss, acc"):
        curves_figure([run], ["f1"])


def test_figure_path_must_be_png(tmp_path):
    with pytest.raises(ValueError, match="must end in .png"):
        plot_runs([_version(tmp_path / "v")], tmp_path / "out.pdf")


# ----------------------------------------------------------------------------------------------- benchmarks
def test_benchmark_chart_draws_every_method_and_uses_log_axes_for_wide_ranges():
    points = [BenchPoint("F=16", m, size, t, mem) for m, size, t, mem in [
        ("graphlab", 1e3, 0.1, 1.0), ("graphlab", 1e5, 5.0, 2.0),
        ("pyg", 1e3, 0.2, 1.5), ("pyg", 1e5, 20.0, 2.5),
    ]]
    fig = benchmark_figure(points, "edges", "ms", "MiB", "test")
    time_ax, memory_ax = fig.axes
    assert time_ax.get_xscale() == "log" and time_ax.get_yscale() == "log"  # 100x sizes, 200x times
    assert memory_ax.get_yscale() == "linear"  # 1.0 .. 2.5 MiB
    data = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in time_ax.get_lines()}
    assert data == {"graphlab": ([1e3, 1e5], [0.1, 5.0]), "pyg": ([1e3, 1e5], [0.2, 20.0])}


def test_benchmark_chart_says_when_memory_was_not_measured():
    fig = benchmark_figure([BenchPoint("p", "graphlab", 1.0, 1.0, None)], "E", "ms", "MiB", "t")
    assert [t.get_text() for t in fig.axes[1].texts] == ["memory not measured"]
    with pytest.raises(ValueError, match="no benchmark results"):
        benchmark_figure([], "E", "ms", "MiB", "t")


# ----------------------------------------------------------------------------------------------- leaderboard
def _record(out: Path, cid: str, dataset: str, tests: list[float], metric: str = "acc") -> None:
    mean = sum(tests) / len(tests)
    std = math.sqrt(sum((t - mean) ** 2 for t in tests) / (len(tests) - 1)) if len(tests) > 1 else None
    record = {"config_id": cid, "dataset": dataset, "metric": metric, "test_mean": mean, "test_std": std,
              "val_mean": mean, "val_std": std, "seeds": list(range(len(tests))), "wall_time_s": 1.0,
              "num_params": 10, "command": "graphlab leaderboard", "commit": "abc",
              "runs": [{"seed": i, "val": t, "test": t, "wall_time_s": 1.0} for i, t in enumerate(tests)]}
    (out / dataset).mkdir(parents=True, exist_ok=True)
    (out / dataset / f"{cid.replace('/', '__')}.json").write_text(json.dumps(record))


def test_family_figure_shows_ours_beside_published(tmp_path):
    out = tmp_path / "lb"
    _record(out, "sheaf/diag-nsd/texas", "texas", [0.80, 0.90])  # 85 ± 7.07 %
    _record(out, "sheaf/bundle-nsd/texas", "texas", [0.70])  # one seed: no std
    _record(out, "sheaf/diag-nsd/film", "film", [0.30, 0.40, 0.35])  # 35 ± 5 %
    _record(out, "baselines/gcn/cora", "cora", [0.8, 0.82])
    (out / "references.yaml").write_text(yaml.safe_dump({
        "sources": {"paper": "A paper"},
        "results": {"sheaf/diag-nsd/texas": {"mean": 86.0, "std": 6.0, "source": "paper"}}}))
    written = render_all(out)
    assert out / "sheaf-summary.md" in written
    _assert_png(out / "sheaf-summary.png")
    _assert_png(out / "baselines-summary.png")

    from graphlab.eval.figures import family_figure
    from graphlab.eval.leaderboard import _scale, load_references

    records = [json.loads(p.read_text()) for p in sorted(out.glob("*/*.json"))]
    fig = family_figure("sheaf", [r for r in records if r["config_id"].startswith("sheaf/")],
                        load_references(out), _scale)
    texas = next(ax for ax in fig.axes if ax.get_title() == "texas")
    by_label = {c.get_label(): c for c in texas.containers}
    ours, published = by_label["ours"], by_label["published"]
    # models sorted: bundle-nsd (x=0), diag-nsd (x=1); ours is drawn just left of the tick, published just right
    np.testing.assert_allclose(np.asarray(ours.lines[0].get_xdata(), float), [-0.12, 0.88])
    np.testing.assert_allclose(np.asarray(ours.lines[0].get_ydata(), float), [70.0, 85.0])
    bars = [seg.tolist() for seg in ours.lines[2][0].get_segments()]
    assert bars[0] == []  # one seed: no error bar
    np.testing.assert_allclose(bars[1], [[0.88, 85.0 - 100 * math.sqrt(0.005)], [0.88, 85.0 + 100 * math.sqrt(0.005)]])
    np.testing.assert_allclose(np.asarray(published.lines[0].get_xdata(), float), [1.12])
    np.testing.assert_allclose(np.asarray(published.lines[0].get_ydata(), float), [86.0])
    np.testing.assert_allclose(published.lines[2][0].get_segments()[0], [[1.12, 80.0], [1.12, 92.0]])
    assert [t.get_text() for t in texas.get_xticklabels()] == ["bundle-nsd\n(n=1)", "diag-nsd\n(n=2)"]
    film = next(ax for ax in fig.axes if ax.get_title() == "film")
    np.testing.assert_allclose(np.asarray(film.containers[0].lines[0].get_ydata(), float), [35.0])
    assert [c.get_label() for c in film.containers] == ["ours"]  # nothing published for film


def test_write_summary_regenerates_the_figure(tmp_path):
    out = tmp_path / "lb"
    _record(out, "sheaf/diag-nsd/texas", "texas", [0.8, 0.9])
    write_summary(out, "sheaf")
    first = (out / "sheaf-summary.png").read_bytes()
    _record(out, "sheaf/diag-nsd/film", "film", [0.3, 0.4])
    write_summary(out, "sheaf")
    assert (out / "sheaf-summary.png").read_bytes() != first
    assert not list(out.glob(".*.png"))  # no temp file left behind
