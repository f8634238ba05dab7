"""Dropout on CPU: graphlab's native Philox dropout against torch's ``F.dropout``, forward and forward + backward.

    python benchmarks/dropout.py                                  # N = 200,000 rows, F in 64 128 256, p = 0.5
    python benchmarks/dropout.py --rows 2000 --features 8 --repeats 1   # smoke run

Methods (same input, same ``p``, in the same run; rows take their repeats round-robin so load drift hits all alike):

* ``torch``: ``torch.nn.functional.dropout`` (mask from ``bernoulli_``, one thread on CPU; the saved mask for the
  backward is the float ``mask * 1/(1-p)`` tensor);
* ``uniform``: :func:`graphlab.nn.dropout.uniform_dropout` (``rand_like`` threshold; the earlier graphlab path);
* ``graphlab``: :func:`graphlab.ops.dropout` as called by default (``save_mask=True``: a bit mask of ``N F / 8``
  bytes saved for the backward);
* ``graphlab-regen``: :func:`graphlab.ops.dropout` with ``save_mask=False`` (the mask drawn again in the backward).

``fwd+bwd`` is ``y = dropout(x); y.backward(g)``. ``x torch`` is torch's median time over this row's; ``peak MiB``
is the heap above what was in use before one ``fwd+bwd`` call (``benchmarks/aggregate.py``'s sampler; ``x`` and
``g`` preallocated), i.e. output, saved mask and gradient.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

import graphlab.ops as ops
from graphlab.nn.dropout import uniform_dropout

HERE = Path(__file__).resolve().parent
METHODS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "torch": lambda x, p: F.dropout(x, p, training=True),
    "uniform": lambda x, p: uniform_dropout(x, p, training=True),
    "graphlab": lambda x, p: ops.dropout(x, p),
    "graphlab-regen": lambda x, p: ops.dropout(x, p, save_mask=False),
}
MODES = ("fwd", "fwd+bwd")


def _load_sibling(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def step(method: str, mode: str, x: torch.Tensor, g: torch.Tensor, p: float) -> Callable[[], object]:
    run = METHODS[method]
    if mode == "fwd":
        def fwd() -> object:
            with torch.no_grad():
                return run(x, p)
        return fwd

    def fwd_bwd() -> object:
        x.grad = None
        y = run(x, p)
        y.backward(g)
        return x.grad
    return fwd_bwd


def measure(rows: int, features: int, p: float, methods: list[str], repeats: int, warmup: int) -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(rows, features, generator=gen).requires_grad_()
    g = torch.randn(rows, features, generator=gen)
    out = []
    for mode in MODES:
        runs = {m: step(m, mode, x, g, p) for m in methods}
        times: dict[str, list[float]] = {m: [] for m in methods}
        for i in range(warmup + repeats):
            for m, run in runs.items():
                start = time.perf_counter()
                run()
                if i >= warmup:
                    times[m].append(time.perf_counter() - start)
        medians = {m: 1e3 * statistics.median(t) for m, t in times.items()}
        base = medians.get("torch")
        for m in methods:
            mib = AGGREGATE.peak_extra_mib(runs[m]) if mode == "fwd+bwd" else None
            out.append({"N": rows, "F": features, "mode": mode, "method": m, "ms": medians[m],
                        "ratio": (base / medians[m]) if base else None, "mib": mib})
    return out


def format_rows(rows: list[dict]) -> list[str]:
    lines = [f"{'N':>8} {'F':>4} {'mode':<8} {'method':<15} {'ms':>9} {'x torch':>8} {'peak MiB':>9}"]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
        mib = f"{r['mib']:.0f}" if r["mib"] is not None else ""
        lines.append(f"{r['N']:>8} {r['F']:>4} {r['mode']:<8} {r['method']:<15} {r['ms']:>9.2f} {ratio:>8} {mib:>9}")
    return lines


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              check=False).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--p", type=float, default=0.5)
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> list[str]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    header = [f"# python benchmarks/dropout.py {' '.join(argv if argv is not None else sys.argv[1:])}",
              f"# commit {commit()}, torch {torch.__version__}, {args.threads} threads, p = {args.p}, "
              f"median of {args.repeats} after {args.warmup} warm-up"]
    rows = []
    for features in args.features:
        rows += measure(args.rows, features, args.p, args.methods, args.repeats, args.warmup)
    lines = header + format_rows(rows)
    print("\n".join(lines))
    return lines


AGGREGATE = _load_sibling("aggregate")  # peak_extra_mib

if __name__ == "__main__":
    main()
