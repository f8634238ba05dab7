"""One training step of the 2nd-minimum set model (``MultisetModel`` + ``LCMAggregation``, GRU operator), as
``graphlab fit`` runs it: a fresh mini-batch per step (so a fresh tree schedule), Adam, BCE.

Rows, same run, same batches and weights:

* ``torch schedule``: the tree schedule built with the per-level torch pairing step (the CPU path before);
* ``numpy schedule``: the CPU path now (:func:`graphlab.ops.tree_reduce_schedule`, NumPy);
* ``+ aux no-grad``: as the task runs with no ``aux_loss_weights``: the associativity loss is still computed and
  logged each step, but without autograd (before: with a graph, then dropped);
* ``+ aux with grad``: the regulariser trained on (``aux_loss_weights: {associativity: w}``).

It prints median ms per step, the ratio to the first row, and the schedule's own ms per batch.

Example::

    OMP_NUM_THREADS=1 python benchmarks/lcm_train_step.py --batch 128 --hidden 64 --steps 40
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import time

import torch
import torch.nn.functional as F

from graphlab.data import SecondMinimumData
from graphlab.models import MultisetModel
from graphlab.nn.aggr import LCMAggregation

tr = importlib.import_module("graphlab.ops.tree_reduce")  # the module (graphlab.ops.tree_reduce is also the function)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    torch.manual_seed(0)
    dm = SecondMinimumData(num_train=args.batch * (args.steps + 5), batch_size=args.batch)
    batches = list(dm.train_dataloader())
    d = args.hidden
    model = MultisetModel(8, 8, LCMAggregation(d, d, project=False), hidden_channels=d)
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def step(batch, aux: str) -> None:
        tr.SCHEDULE_CACHE._entries.clear()  # a fresh batch every step: never a cached schedule
        out = model(batch.x, batch.edge_index, batch=batch.batch)
        loss = F.binary_cross_entropy_with_logits(out, batch.y)
        with torch.set_grad_enabled(aux != "nograd"):  # "dropped": built with a graph, not trained on (before)
            assoc = model.aggr.auxiliary_losses()["associativity"]
        if aux == "grad":
            loss = loss + 1e-3 * assoc
        opt.zero_grad()
        loss.backward()
        opt.step()

    def run(aux: str) -> float:
        for b in batches[:3]:
            step(b, aux)
        times = []
        for b in batches[3:]:
            t = time.perf_counter()
            step(b, aux)
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e3

    numpy_build = tr._build_schedule_numpy
    torch_build = lambda ptr: tr._build_schedule(ptr, tr.pair_level_torch)  # noqa: E731
    ptrs = [b.ptr for b in batches]
    rows = []
    for name, build, aux in (("torch schedule, aux graph dropped (before)", torch_build, "dropped"),
                             ("numpy schedule, aux graph dropped", numpy_build, "dropped"),
                             ("numpy schedule, aux no-grad (now, weight 0)", numpy_build, "nograd"),
                             ("numpy schedule, aux trained on (weight > 0)", numpy_build, "grad")):
        tr._build_schedule_numpy = build
        try:
            t0 = time.perf_counter()
            for p in ptrs:
                tr.tree_reduce_schedule(p.clone(), cache=False)
            sched_ms = (time.perf_counter() - t0) / len(ptrs) * 1e3
            rows.append((name, run(aux), sched_ms))
        finally:
            tr._build_schedule_numpy = numpy_build
    print(f"batch {args.batch}, d={d}, {args.steps} steps, torch threads {torch.get_num_threads()}")
    print(f"| {'setting':45s} | ms/step | vs before | schedule ms |")
    print("|---|---|---|---|")
    for name, ms, sched in rows:
        print(f"| {name:45s} | {ms:7.2f} | {rows[0][1] / ms:8.2f}x | {sched:6.2f} |")


if __name__ == "__main__":
    main()
