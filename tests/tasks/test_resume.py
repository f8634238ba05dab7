"""Resume after a crash: a `graphlab fit` SIGKILLed at a random point and resumed with `--ckpt_path last` ends with
the same weights and validation metric as an uninterrupted run (exact equality: CPU, deterministic kernels); a
killed `graphlab leaderboard` resumes its seed from the seed's last.ckpt and writes the same record."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from graphlab.tasks.checkpoint import collect_rng_states, set_rng_states

GRAPHLAB = [sys.executable, "-c", "from graphlab.entry import main; main()"]
SLOW_CALLBACK = '''
import time
from lightning.pytorch.callbacks import Callback

class Slow(Callback):
    """Sleeps after each epoch so that a test can kill the run mid-training."""
    def on_train_epoch_end(self, trainer, pl_module):
        time.sleep(0.15)
'''
EPOCHS = 24


def _config(tmp_path: Path) -> Path:
    config = {
        "seed_everything": 3,
        "trainer": {"max_epochs": EPOCHS, "deterministic": True, "enable_progress_bar": False,
                    "enable_model_summary": False, "callbacks": [{"class_path": "slow_cb.Slow"}]},
        "model": {"class_path": "graphlab.tasks.NodeClassification",
                  "init_args": {"lr": 0.02, "lr_scheduler": "cosine",
                                "model": {"class_path": "graphlab.models.GCN",
                                          "init_args": {"hidden_channels": 8, "dropout": 0.5}}}},
        "data": {"class_path": "graphlab.data.CSBMData", "init_args": {"num_nodes": 150, "num_classes": 3}},
    }
    (tmp_path / "slow_cb.py").write_text(SLOW_CALLBACK)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


def _fit(tmp_path: Path, config: Path, runs: Path, *extra: str) -> subprocess.Popen:
    args = [*GRAPHLAB, "fit", "--config", str(config), f"--trainer.logger.init_args.save_dir={runs}", *extra]
    return subprocess.Popen(args, cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    return out


def _last_val(run_root: Path) -> float:
    rows = []
    for metrics in sorted(run_root.glob("version_*/metrics.csv")):
        rows += [r for r in csv.DictReader(metrics.read_text().splitlines()) if r.get("val_acc")]
    rows.sort(key=lambda r: int(r["epoch"]))
    assert int(rows[-1]["epoch"]) == EPOCHS - 1
    return float(rows[-1]["val_acc"])


def test_killed_fit_resumes_to_the_uninterrupted_result(tmp_path):
    config = _config(tmp_path)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    reference = _fit(tmp_path, config, whole)
    proc = _fit(tmp_path, config, killed)
    last = killed / "tiny" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 180
    while not last.is_file():  # at least one checkpoint, then a random moment within the next epochs
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before writing last.ckpt"
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 1.5))
    assert proc.poll() is None, "the run finished before it could be killed: make it slower"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()  # reap it and close its pipe
    killed_at = torch.load(last, weights_only=False)["epoch"]
    assert 0 <= killed_at < EPOCHS - 1
    out = _finish(_fit(tmp_path, config, killed, "--ckpt_path", "last"))
    assert f"--ckpt_path last: {last}" in out
    _finish(reference)

    final_whole = torch.load(whole / "tiny" / "version_0" / "checkpoints" / "last.ckpt", weights_only=False)
    final_resumed = torch.load(last, weights_only=False)
    assert final_resumed["epoch"] == final_whole["epoch"]
    for key, value in final_whole["state_dict"].items():
        assert torch.equal(final_resumed["state_dict"][key], value), key  # exact: tolerance 0
    assert _last_val(killed / "tiny") == _last_val(whole / "tiny")
    best = [c for c in final_whole["callbacks"] if c.startswith("ModelCheckpoint")][0]
    assert final_resumed["callbacks"][best]["best_model_score"] == final_whole["callbacks"][best]["best_model_score"]


def test_rng_states_round_trip_through_weights_only_load(tmp_path):
    import numpy as np

    states = collect_rng_states()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.save(states, tmp_path / "rng.pt")
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    set_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]


def test_last_checkpoint_rejects_negative_intervals():
    from graphlab.tasks import LastCheckpoint

    with pytest.raises(ValueError, match="every_n_epochs must be an int >= 0"):
        LastCheckpoint(every_n_epochs=-1)


def _leaderboard(tmp_path: Path, config: Path, name: str) -> subprocess.Popen:
    args = [*GRAPHLAB, "leaderboard", "--config", str(config), "--seeds", "0", "--out-dir", str(tmp_path / name / "lb"),
            "--runs-dir", str(tmp_path / name / "runs")]
    return subprocess.Popen(args, cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _record(tmp_path: Path, name: str) -> dict:
    (path,) = (tmp_path / name / "lb").glob("*/tiny.json")
    return json.loads(path.read_text())


@pytest.mark.slow
def test_killed_leaderboard_resumes_the_seed_from_its_checkpoint(tmp_path):
    config = _config(tmp_path)
    whole = _leaderboard(tmp_path, config, "whole")
    proc = _leaderboard(tmp_path, config, "killed")
    last = tmp_path / "killed" / "runs" / "tiny" / "seed_0" / "version_0" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.is_file():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before writing last.ckpt"
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    killed_at = torch.load(last, weights_only=False)["epoch"]
    assert 0 < killed_at + 1 < EPOCHS  # the restart begins after epoch 0
    resumed = _leaderboard(tmp_path, config, "killed")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert f"seed 0: resuming from {last}" in out
    out_whole, _ = whole.communicate(timeout=300)
    assert whole.returncode == 0, out_whole
    a, b = _record(tmp_path, "whole")["runs"][0], _record(tmp_path, "killed")["runs"][0]
    for key in ("seed", "val", "test", "epochs", "num_params"):
        assert a[key] == b[key], key


class _FakeTrainer:
    """What save_atomic uses of a Trainer: save_checkpoint, is_global_zero, strategy.barrier."""

    is_global_zero = True

    def __init__(self, payload: bytes, fail_after: int | None = None) -> None:
        self.payload, self.fail_after = payload, fail_after
        self.strategy = self
        self.barriers = 0

    def save_checkpoint(self, path: Path) -> None:
        data = self.payload if self.fail_after is None else self.payload[: self.fail_after]
        Path(path).write_bytes(data)
        if self.fail_after is not None:
            raise OSError("disk full")

    def barrier(self, name: str) -> None:
        self.barriers += 1


def test_save_atomic_replaces_whole_files_and_never_leaves_a_torn_one(tmp_path):
    from graphlab.tasks.checkpoint import save_atomic

    target = tmp_path / "last.ckpt"
    save_atomic(_FakeTrainer(b"epoch-1" * 100), target)
    assert target.read_bytes() == b"epoch-1" * 100
    with pytest.raises(OSError, match="disk full"):
        save_atomic(_FakeTrainer(b"epoch-2" * 100, fail_after=50), target)
    assert target.read_bytes() == b"epoch-1" * 100  # the previous checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no partial file left


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty:UserWarning")  # resumed on purpose
def test_resuming_an_early_stopped_run_trains_no_further(tmp_path):
    import lightning as L
    from lightning.pytorch.callbacks import Callback, EarlyStopping

    from graphlab.data import CSBMData
    from graphlab.models import GCN
    from graphlab.tasks import NodeClassification

    class CountEpochs(Callback):
        def __init__(self) -> None:
            self.count = 0

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self.count += 1

    def fit(ckpt_path=None):
        L.seed_everything(0)
        data = CSBMData(num_nodes=60)
        task = NodeClassification(GCN(data.num_features, 4, data.num_outputs), lr=0.0)  # never improves
        counter = CountEpochs()
        trainer = L.Trainer(max_epochs=30, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                            enable_model_summary=False, callbacks=[EarlyStopping("val_acc", mode="max", patience=2),
                                                                   counter])
        trainer.fit(task, datamodule=data, ckpt_path=ckpt_path)
        return trainer, counter.count

    first, epochs = fit()
    assert 0 < epochs < 30  # early stopping ended it
    (last,) = tmp_path.glob("**/last.ckpt")
    resumed, more = fit(last)
    assert more == 0 and resumed.current_epoch == first.current_epoch
