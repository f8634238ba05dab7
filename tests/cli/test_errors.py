"""The errors a new user meets first: one readable message (no traceback unless --debug), non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from graphlab import entry
from graphlab.data.base import copy_command

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["graphlab"])


def _cora_config(tmp_path: Path) -> Path:
    config = yaml.safe_load((REPO / "configs" / "baselines" / "gcn" / "cora.yaml").read_text())
    config["data"]["init_args"].update(root=str(tmp_path / "data"), download=False)
    path = tmp_path / "cora.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_missing_dataset_prints_the_copy_command_and_url_without_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GRAPHLAB_SHARED_DATA", "/srv/graph data")
    with pytest.raises(SystemExit) as exit_info:
        entry.main(["fit", "--config", str(_cora_config(tmp_path))])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    raw = tmp_path / "data" / "Cora" / "raw"
    assert err.startswith("graphlab: error: Cora: missing file(s) ind.cora.x")
    assert f"mkdir -p {raw} && cp -r '/srv/graph data/Cora/raw'/. {raw}/" in err
    assert "Download address: https://github.com/kimiyoung/planetoid/raw/master/data" in err
    assert "Traceback" not in err and "--debug" in err


def test_debug_shows_the_exception(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing file"):
        entry.main(["fit", "--config", str(_cora_config(tmp_path)), "--debug"])


def test_copy_command_without_an_offline_copy_names_the_placeholder(tmp_path, monkeypatch):
    monkeypatch.delenv("GRAPHLAB_SHARED_DATA", raising=False)
    cmd = copy_command(tmp_path / "root" / "texas" / "raw", tmp_path / "root")
    assert cmd == (f'mkdir -p {tmp_path}/root/texas/raw && cp -r "<your copy of the data folder>/texas/raw"/. '
                   f"{tmp_path}/root/texas/raw/")


def test_fit_without_config_lists_the_shipped_configs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        entry.main(["fit"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"graphlab fit needs --config FILE. Configs shipped in {REPO / 'configs'}:" in err
    lines = [line.strip() for line in err.splitlines()[1:]]
    assert lines[0] == "configs/quickstart.yaml"
    assert "configs/baselines/gcn/cora.yaml" in err or lines[-1].startswith("... and")


def test_unknown_class_path_suggests_the_nearest_name(tmp_path, capsys):
    config = yaml.safe_load((REPO / "configs" / "quickstart.yaml").read_text())
    config["model"]["init_args"]["model"]["class_path"] = "graphlab.models.GNC"
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as exit_info:
        entry.main(["fit", "--config", str(path)])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert "graphlab.models.GNC is not a graphlab class; did you mean " in err
    hint = err.split("did you mean ")[1].splitlines()[0]
    assert "graphlab.models.GCN" in hint.rstrip("?").split(" or ")  # GIN is one edit away too: both offered


def test_ckpt_path_last_without_a_run_says_what_to_do(tmp_path, capsys):
    config = REPO / "configs" / "quickstart.yaml"
    with pytest.raises(SystemExit) as exit_info:
        entry.main(["fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={tmp_path}",
                    "--ckpt_path", "last"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"no last.ckpt under {tmp_path}/quickstart/version_*/checkpoints/" in err and "Traceback" not in err


def test_console_script_prints_no_lightning_tips(tmp_path):
    args = [sys.executable, "-c", "from graphlab.entry import main; main()", "fit", "--config",
            str(REPO / "configs" / "quickstart.yaml"), "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
            f"--trainer.logger.init_args.save_dir={tmp_path}"]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    printed = done.stdout + done.stderr
    for noise in ("💡 Tip", "litlogger", "LeafSpec", "JsonargparseDeprecationWarning", "weights_only",
                  "will override existing callbacks"):
        assert noise not in printed, noise
    assert (tmp_path / "quickstart" / "version_0" / "checkpoints" / "last.ckpt").is_file()


def test_log_filters_drop_only_the_notices_they_name():
    import logging

    entry.quiet_third_party()
    entry.quiet_third_party()  # idempotent: one filter per entry
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    texts = [f.text for f in logger.filters if isinstance(f, entry._DropMessage)]
    assert len(texts) == len(set(texts)) == 2

    def shown(message: str) -> bool:
        record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, message, None, None)
        return all(f.filter(record) for f in logger.filters)

    override = ("The following callbacks returned in `LightningModule.configure_callbacks` will override existing "
                "callbacks passed to Trainer: ")
    assert not shown("💡 Tip: For seamless cloud uploads and versioning, try ...")
    assert not shown(override + "LastCheckpoint")
    assert shown(override + "EarlyStopping, LastCheckpoint")  # the user's own callback is named: keep the notice
    assert shown(override + "LastCheckpointer")
    assert shown("an unrelated notice")
