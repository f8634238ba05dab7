"""Every config in configs/ parses, links and runs one training and one validation batch."""

from __future__ import annotations

import os
import shutil
import sys
import stat
from pathlib import Path

import pytest
import yaml

from graphlab.cli import build_cli

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))
SYNTHETIC = ("CSBMData", "CSLData", "RandomLinkData")
# OGB link sets are large (ogbl-ddi: 235k validation pairs; NCN's 24576 positives per step, NCNC's completion on
# top): one batch of each would take minutes. The run is cut to 32 training positives and 32 validation positives
# (with their negatives) per batch; the config still parses, links, builds its data and model, and runs one
# training and one validation step through the same code (link_train_loader, link_eval_loader, the task).
SMALL_LINK_BATCH = 32


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    """The CLI is driven through `args=`; pytest's own argv must not look like CLI input."""
    monkeypatch.setattr(sys, "argv", ["graphlab"])


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A writable copy of ../shared/data (loaders write processed/ beside raw/)."""
    source = Path(os.environ.get("GRAPHLAB_SHARED_DATA") or REPO.parent / "shared" / "data")
    if not source.is_dir():
        pytest.skip(f"real datasets not found in {source} (set $GRAPHLAB_SHARED_DATA)")
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(source, root, dirs_exist_ok=True)
    for path in root.rglob("*"):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return root


def test_configs_exist():
    assert (REPO / "configs" / "quickstart.yaml") in CONFIGS
    for name in ("gcn/cora", "gin/csl", "gin/ogbg-molbace", "gin/ogbg-molesol", "sage/texas"):
        assert (REPO / "configs" / "baselines" / f"{name}.yaml") in CONFIGS


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_config_runs_one_batch(config, request, tmp_path, monkeypatch):
    data = yaml.safe_load(config.read_text())["data"]
    data_class = data["class_path"]
    if not data_class.endswith(SYNTHETIC):
        root = request.getfixturevalue("data_root")
        name = str(data.get("init_args", {}).get("name", ""))
        if name.startswith("ogb") and not (root / name.replace("-", "_")).is_dir():
            pytest.skip(f"{name} is not in the offline data copy (a config for users who have its files)")
        if name.lower() == "zinc" and not (root / "ZINC").is_dir():
            pytest.skip("ZINC is not in the offline data copy (a config for users who have its files)")
        monkeypatch.setenv("GRAPHLAB_DATA", str(root))
    cli = build_cli(["fit", "--config", str(config), "--trainer.fast_dev_run=1",
                     f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
                     "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
                     *_small_link_batches(data)])
    assert cli.trainer.state.finished
    assert cli.trainer.global_step == 1


def _small_link_batches(data: dict) -> list[str]:
    """For OGB link configs, the arguments that cut fast_dev_run's batches to ``SMALL_LINK_BATCH`` positives."""
    if not data["class_path"].endswith("OGBLinkData"):
        return []
    args = [f"--data.init_args.eval_batch_positives={SMALL_LINK_BATCH}"]
    if data.get("init_args", {}).get("batch_size") is not None:
        args.append(f"--data.init_args.batch_size={SMALL_LINK_BATCH}")
    return args
