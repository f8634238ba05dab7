"""A writer killed (SIGKILL) at random points never leaves a store that opens corrupt: it opens as the old state
or the new one, and a store opened for writing afterwards removes the dead writer's temporaries."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch

from graphlab.data import DiskFeatureStore

ROWS, COLS = 3000, 16


def _writer(folder: str, commits) -> None:
    """Commit versions 1, 2, 3, ... of ``x`` (put whole) and ``z`` (streamed in chunks) forever, counting commits
    in the shared ``commits``."""
    # A forked child must not enter the parent's OpenMP thread pool (GNU libgomp deadlocks there once the parent has
    # run a parallel region): one thread, as torch's DataLoader workers do.
    torch.set_num_threads(1)
    store = DiskFeatureStore(folder, mode="a")
    version = int(store.get_tensor(None, "x", index=torch.tensor([0]))[0, 0]) + 1
    while True:
        store.put_tensor(torch.full((ROWS, COLS), float(version)), group_name=None, attr_name="x", index=None)
        commits.value += 1
        with store.writer(None, "z", shape=(ROWS, COLS), dtype=torch.float64) as writer:
            for _ in range(0, ROWS, 500):
                writer.append(torch.full((500, COLS), float(version), dtype=torch.float64))
        commits.value += 1
        version += 1


def _version(store: DiskFeatureStore, name: str) -> int:
    tensor = store.get_tensor(None, name, index=None)
    assert tensor.shape == (ROWS, COLS)
    values = torch.unique(tensor)
    assert values.numel() == 1, f"{name} mixes versions {values.tolist()}"
    return int(values[0])


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
@pytest.mark.parametrize("kills", [8, pytest.param(30, marks=pytest.mark.slow)])
def test_sigkilled_writer_leaves_old_or_new_state(tmp_path: Path, kills: int) -> None:
    folder = tmp_path / "s"
    initial = DiskFeatureStore(folder, mode="w")
    initial.put_tensor(torch.zeros(ROWS, COLS), group_name=None, attr_name="x", index=None)
    initial.put_tensor(torch.zeros(ROWS, COLS, dtype=torch.float64), group_name=None, attr_name="z", index=None)
    rng = random.Random(0)
    context = multiprocessing.get_context("fork")
    last = {"x": 0, "z": 0}
    for _ in range(kills):
        commits = context.Value("i", 0)
        process = context.Process(target=_writer, args=(str(folder), commits), daemon=True)
        process.start()
        target = rng.randint(0, 3)  # let the writer commit 0-3 tensors, then kill it a random moment later
        deadline = time.monotonic() + 30
        while commits.value < target and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(process.pid, signal.SIGKILL)
        process.join()
        assert process.exitcode == -signal.SIGKILL
        store = DiskFeatureStore(folder, verify="full")  # raises if any named file is truncated or corrupt
        for name in ("x", "z"):
            version = _version(store, name)
            assert version >= last[name]  # committed versions never go back
            last[name] = version
        assert last["z"] <= last["x"]  # z is written after x
    assert last["x"] > 0  # some kills landed after commits (the test exercised new states, not only old ones)
    DiskFeatureStore(folder, mode="a")  # collects the dead writers' garbage
    names = sorted(p.name for p in folder.iterdir())
    assert len([n for n in names if n.endswith(".bin")]) == 2 and not [n for n in names if ".tmp" in n]
