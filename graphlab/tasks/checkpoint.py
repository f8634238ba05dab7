"""Resume after a crash: an atomically written ``last.ckpt`` that also holds the random-number states.

Lightning restores the weights, the optimiser, the LR schedulers, the loop counters and every callback's state
from a checkpoint, but not the random-number generators: a resumed run would draw other dropout masks, other
negative samples and another shuffling order than the run it continues. :class:`LastCheckpoint` stores the
torch (CPU and CUDA), numpy and Python generator states in the checkpoint and puts them back at the start of
the first epoch after the restore, so a resumed run draws exactly what the uninterrupted run drew there, data
order included: loaders draw their shuffling and worker seeds from torch's generator when their iterator is created,
which Lightning does after ``on_train_epoch_start`` in every epoch but a run's first; for that one the iterator is
created again right after the restore.

**When it saves.** At the end of every ``every_n_epochs``-th epoch and when training ends. It is a
:class:`~lightning.pytorch.callbacks.Checkpoint`, so Lightning runs its ``on_train_epoch_end`` with the monitoring
callbacks, after early stopping and the best-checkpoint callback have updated their state, and so the file holds
that state too (a resumed run picks the same best epoch and stops at the same epoch). Resuming from it is
Lightning's "resumed on epoch end" path: training goes on with the next epoch. ``every_n_train_steps`` adds saves
inside an epoch, for long epochs; a mid-epoch checkpoint resumes with Lightning's own rule (the epoch's loader
starts over unless it is stateful), so the exact-replay guarantee holds for the epoch-end saves.

**Why it writes the file itself.** Lightning's checkpoint IO (``lightning.fabric.utilities.cloud_io._atomic_save``)
writes through an fsspec transaction: on a local disk the bytes go to a file made by ``tempfile.mkstemp`` in the
*system* temporary folder, which ``shutil.move`` then moves over the target. When the temporary folder is on
another filesystem (``/tmp`` on tmpfs, a scratch disk) that move is a copy into the target, not a rename, and
nothing is fsynced, so a crash during the copy or before the page cache is flushed can leave a truncated
``last.ckpt``. :func:`save_atomic` lets Lightning write a temporary file beside the target, fsyncs it and renames
it over the target (``os.replace``, atomic on POSIX and Windows), then fsyncs the folder.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Optional

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint

from graphlab._io import fsync_dir

LAST_NAME = "last.ckpt"


def collect_rng_states() -> dict[str, Any]:
    """The torch (CPU and every CUDA device), numpy and Python generator states, as tensors and plain lists
    (loadable with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "state": list(py_state), "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`collect_rng_states` returned."""
    torch.set_rng_state(states["torch"])
    np_state = states["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["gauss"]))
    py = states["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_atomic(trainer: L.Trainer, path: Path) -> None:
    """``trainer.save_checkpoint(path)`` via a temporary file in the same folder, fsync and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_dir(path.parent)
    except BaseException:
        if trainer.is_global_zero:
            tmp.unlink(missing_ok=True)
        raise
    trainer.strategy.barrier("graphlab_last_checkpoint")


class LastCheckpoint(Checkpoint):
    """Keep ``<run>/checkpoints/last.ckpt``: everything needed to resume, random-number states included.

    Every graphlab task adds one (see :meth:`graphlab.tasks.GraphTask.configure_callbacks`); the CLI exposes its
    arguments as ``--last_checkpoint.every_n_epochs`` / ``--last_checkpoint.every_n_train_steps`` (or a
    ``last_checkpoint:`` block in YAML). ``graphlab fit --ckpt_path last`` resumes from the newest such file of
    the same config.

    Args:
        every_n_epochs: save at the end of every n-th epoch (1: every epoch; 0: only when training ends).
        every_n_train_steps: also save after every n-th optimiser step (0: never); see the module docstring
            for what a mid-epoch resume replays.
        dirpath: where to write ``last.ckpt`` (default: ``<trainer.log_dir>/checkpoints``, beside the best one).
    """

    def __init__(self, every_n_epochs: int = 1, every_n_train_steps: int = 0, dirpath: Optional[str] = None) -> None:
        for name, value in (("every_n_epochs", every_n_epochs), ("every_n_train_steps", every_n_train_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"LastCheckpoint: {name} must be an int >= 0 (0 disables it), got {value!r}")
        self.every_n_epochs, self.every_n_train_steps = every_n_epochs, every_n_train_steps
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self._restored: Optional[dict[str, Any]] = None
        self._trainer_should_stop = False

    @property
    def state_key(self) -> str:
        return "graphlab.LastCheckpoint"

    @property
    def path(self) -> Path:
        if self.dirpath is None:
            raise RuntimeError("LastCheckpoint.path is known once training has started (setup resolves it)")
        return self.dirpath / LAST_NAME

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints"

    # ------------------------------------------------------------------ state in the checkpoint
    def state_dict(self) -> dict[str, Any]:
        return {"rng": collect_rng_states(), "should_stop": self._trainer_should_stop}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = state_dict

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._restored is not None and self._restored.get("should_stop"):
            trainer.should_stop = True  # the run had stopped early: resuming it must not train further

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._restored is not None:
            set_rng_states(self._restored["rng"])
            self._restored = None
            # On the first epoch of a (resumed) run Lightning creates the train iterator before this hook (in
            # FitLoop.setup_data), in later epochs after it. Creating it again now draws its shuffling and worker
            # seeds from the restored generators, as the uninterrupted run did at this epoch.
            fetcher = getattr(trainer.fit_loop, "_data_fetcher", None)
            if fetcher is not None:
                iter(fetcher)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1  # epochs done, this one included
        if self.every_n_epochs and epoch % self.every_n_epochs == 0:
            self._save(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if self.every_n_train_steps and step > 0 and step % self.every_n_train_steps == 0:
            self._save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)

    def _save(self, trainer: L.Trainer) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        # Early stopping has run by now (it is a monitoring callback listed before this one): keep its decision.
        self._trainer_should_stop = bool(trainer.should_stop)
        try:
            save_atomic(trainer, self.path)
        finally:
            self._trainer_should_stop = False


def load_model_weights(model: torch.nn.Module, path: str, prefix: str = "model.") -> tuple[list[str], list[str]]:
    """Warm-start ``model`` from the weights in ``path`` (e.g. NCNC from a trained NCN, the official ``--loadmod``).

    ``path`` is a Lightning checkpoint of a graphlab task (its ``state_dict`` keys start with ``prefix``, the task's
    attribute holding the model) or a plain ``model.state_dict()`` saved with ``torch.save``. Every parameter and
    buffer the two share by name is copied in place (the optimiser's references stay valid); names only the model
    has keep their initial values, names only the file has are ignored, as the official ``strict=False`` load.

    Returns:
        ``(missing, unexpected)``: the model's names the file lacks, and the file's names the model lacks.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a shared name has another shape (a different architecture or width), or no name is shared.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"init_from={path!r}: no such file; give a checkpoint of the model to start from "
                                "(e.g. <run>/checkpoints/best-epoch=N.ckpt of the NCN run)")
    blob = torch.load(file, map_location="cpu", weights_only=True)
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"init_from={path!r} holds {type(blob).__name__}, not a checkpoint or a state_dict")
    if any(k.startswith(prefix) for k in state):
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    own = model.state_dict()
    shared = [k for k in state if k in own]
    if not shared:
        raise ValueError(f"init_from={path!r}: none of its {len(state)} weights has a name of "
                         f"{type(model).__name__} (e.g. file {sorted(state)[:3]}, model {sorted(own)[:3]}); "
                         "is it a checkpoint of the same model family?")
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in shared
             if tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise ValueError(f"init_from={path!r}: {len(wrong)} weights have other shapes than the model's ("
                         + "; ".join(wrong[:5]) + "): build the model with the widths and layers of the run "
                         "that wrote the checkpoint")
    with torch.no_grad():
        for k in shared:
            own[k].copy_(state[k])
    return [k for k in own if k not in state], [k for k in state if k not in own]
