"""The `graphlab` command in-process: each task trains past chance; bad configs fail clearly."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from graphlab.cli import build_cli, main

REPO = Path(__file__).resolve().parents[2]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    """The CLI is driven through `args=`; pytest's own argv must not look like CLI input."""
    monkeypatch.setattr(sys, "argv", ["graphlab"])


def _fit(tmp_path: Path, config: dict, *extra: str):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    args = ["fit", "--config", str(path), f"--trainer.default_root_dir={tmp_path}",
            f"--trainer.logger.init_args.save_dir={tmp_path}", *QUIET, *extra]
    return build_cli(args)


def _config(task: str, model: dict, data: dict, epochs: int, **task_args) -> dict:
    return {
        "seed_everything": 0,
        "trainer": {"max_epochs": epochs},
        "model": {"class_path": f"graphlab.tasks.{task}", "init_args": {**task_args, "model": model}},
        "data": data,
    }


def test_node_classification_beats_chance(tmp_path):
    config = _config(
        "NodeClassification",
        {"class_path": "graphlab.models.GCN", "init_args": {"hidden_channels": 16}},
        {"class_path": "graphlab.data.CSBMData",
         "init_args": {"num_nodes": 300, "num_classes": 3, "homophily": 0.8, "feature_signal": 0.3}},
        epochs=40, lr=0.01,
    )
    cli = _fit(tmp_path, config)
    # Three balanced classes: chance is 1/3.
    assert cli.trainer.checkpoint_callback.best_model_score.item() > 0.6
    assert cli.model.model.convs[0].in_channels == cli.datamodule.num_features  # linked, not typed


def test_graph_classification_beats_chance(tmp_path):
    config = _config(
        "GraphPrediction",
        {"class_path": "graphlab.models.GIN", "init_args": {"hidden_channels": 32, "num_layers": 3, "dropout": 0.0}},
        {"class_path": "graphlab.data.CSLData", "init_args": {"positional_encoding": "rwse", "batch_size": 10}},
        epochs=25, lr=0.01,
    )
    cli = _fit(tmp_path, config)
    # CSL has 10 balanced classes (chance 0.1) that 1-WL cannot separate without the encodings.
    assert cli.trainer.checkpoint_callback.best_model_score.item() > 0.4


def test_link_prediction_beats_chance(tmp_path):
    config = _config(
        "LinkPrediction",
        {"class_path": "graphlab.models.LinkGNN", "init_args": {"hidden_channels": 32}},
        {"class_path": "graphlab.data.RandomLinkData", "init_args": {"num_nodes": 300}},
        epochs=30, lr=0.01,
    )
    cli = _fit(tmp_path, config)
    score = cli.trainer.checkpoint_callback.best_model_score.item()
    dm = cli.datamodule
    k = int(dm.info.metric.split("@")[1])
    num_neg = next(iter(dm.val_dataloader())).neg_edge_index.size(1)
    # Random scores put a positive above the K-th best of Q negatives with probability ~K/(Q+1).
    assert score > 3 * k / (num_neg + 1)


def test_quickstart_config_parses_with_linked_channels(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(REPO / "configs" / "quickstart.yaml"), "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == "graphlab.tasks.NodeClassification"
    assert printed["model"]["init_args"]["model"]["class_path"] == "graphlab.models.GCN"
    assert printed["data"]["init_args"]["num_nodes"] == 1000


def test_misspelt_key_fails_naming_it(tmp_path, capsys):
    config = _config("NodeClassification", {"class_path": "graphlab.models.GCN", "init_args": {"hiden_channels": 8}},
                     {"class_path": "graphlab.data.CSBMData"}, epochs=1)
    with pytest.raises(SystemExit) as exit_info:
        _fit(tmp_path, config)
    assert exit_info.value.code != 0
    assert "hiden_channels" in capsys.readouterr().err


def test_wrong_type_fails_naming_the_key(tmp_path, capsys):
    config = _config("NodeClassification", {"class_path": "graphlab.models.GCN"},
                     {"class_path": "graphlab.data.CSBMData", "init_args": {"num_nodes": "many"}}, epochs=1)
    with pytest.raises(SystemExit):
        _fit(tmp_path, config)
    assert "num_nodes" in capsys.readouterr().err


def test_unknown_choice_fails_at_parse_time(tmp_path, capsys):
    config = _config("NodeClassification", {"class_path": "graphlab.models.GCN", "init_args": {"pool": "median"}},
                     {"class_path": "graphlab.data.CSBMData"}, epochs=1)
    with pytest.raises(SystemExit):
        _fit(tmp_path, config)
    assert "pool" in capsys.readouterr().err


def test_console_script_routes_leaderboard_to_the_runner_and_the_rest_to_the_cli(tmp_path, monkeypatch, capsys):
    from graphlab import entry, runner

    seen = []
    monkeypatch.setattr(runner, "main", lambda argv: seen.append(("runner", argv)))
    monkeypatch.setattr("graphlab.cli.main", lambda args: seen.append(("cli", args)))
    entry.main(["leaderboard", "--render-only", "--out-dir", str(tmp_path)])
    entry.main(["fit", "--config", "x.yaml"])
    assert seen == [("runner", ["--render-only", "--out-dir", str(tmp_path)]), ("cli", ["fit", "--config", "x.yaml"])]


def test_cli_main_refuses_leaderboard_naming_the_entry_point():
    with pytest.raises(ValueError, match="graphlab.entry.main"):
        main(["leaderboard", "--seeds", "0"])


def test_installed_console_script_is_the_entry_module():
    from importlib.metadata import entry_points

    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "graphlab"]
    assert script.value == "graphlab.entry:main"


@pytest.mark.parametrize("logger", ["CSVLogger", "TensorBoardLogger"])
def test_run_folder_is_named_after_the_config(tmp_path, logger):
    if logger == "TensorBoardLogger":
        pytest.importorskip("tensorboard", reason="TensorBoard logging needs the graphlab[tensorboard] extra")
    configs = tmp_path / "configs" / "baselines" / "gcn"
    configs.mkdir(parents=True)
    config = _config("NodeClassification", {"class_path": "graphlab.models.GCN", "init_args": {"hidden_channels": 4}},
                     {"class_path": "graphlab.data.CSBMData", "init_args": {"num_nodes": 60}}, epochs=1)
    config["trainer"]["logger"] = {"class_path": f"lightning.pytorch.loggers.{logger}",
                                   "init_args": {"save_dir": str(tmp_path / "runs")}}
    path = configs / "csbm.yaml"
    path.write_text(yaml.safe_dump(config))
    build_cli(["fit", "--config", str(path), *QUIET])
    run = tmp_path / "runs" / "baselines" / "gcn" / "csbm" / "version_0"
    assert (run / "checkpoints" / "last.ckpt").is_file() and list((run / "checkpoints").glob("best-epoch=*.ckpt"))
    logged = "metrics.csv" if logger == "CSVLogger" else "events.out.tfevents.*"
    assert list(run.glob(logged))
    assert not (tmp_path / "runs" / "lightning_logs").exists()


def test_default_logger_is_csv_even_when_tensorboard_is_installed():
    from lightning.pytorch.loggers import CSVLogger

    cli = build_cli(["--config", str(REPO / "configs" / "quickstart.yaml")], run=False)
    assert type(cli.trainer.logger) is CSVLogger  # Lightning's own default would be TensorBoard when importable
    assert cli.trainer.logger.name == "quickstart"
