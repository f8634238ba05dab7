"""Benchmark ``graphlab.ops.selective_scan`` on the CPU against the sequential reference and mambapy's parallel scan.

Methods, same inputs (input-dependent ``B``/``C`` shared by the channels, ``D``, no gate, ``delta`` positive):

* ``graphlab``: :func:`graphlab.ops.selective_scan` on the CPU path: the native C kernel
  (``kernels/csrc/selective_scan.c``, sequential per (batch, channel) on ``torch.get_num_threads()`` pthreads,
  checkpointed backward), or the chunked torch scan when the native library cannot be built (the header says which);
* ``chunked``: the same op with the native kernels switched off (``use_native(False)``): the chunked torch scan;
* ``reference``: :func:`graphlab.ops.reference.selective_scan`, the Python loop over positions (autograd backward);
* ``mambapy``: mambapy's pure-PyTorch ``MambaBlock.selective_scan`` (Blelloch parallel scan over ``[B, L, E, N]``,
  its own layout, prepared outside the timing), when ``pip install --no-deps mambapy`` is installed.

For ``fwd`` and ``fwd+bwd`` (gradients w.r.t. every input) it prints the median milliseconds (wall clock, or with
``--clock thread`` the calling thread's CPU time, which leaves out the time spent waiting for a core on a loaded
machine; only with one compute thread, where every method runs on the calling thread), the speed-up of
graphlab over each other method (``x ref`` = reference ms / graphlab ms) and the peak extra heap memory of one call
(MiB above what was in use before it, sampled by ``benchmarks/aggregate.py``'s ``peak_extra_mib``).

Examples::

    OMP_NUM_THREADS=1 python benchmarks/scan.py                     # L 256 1024 4096, d_inner 64 256, batch 4, N 16
    python benchmarks/scan.py --L 1024 --d-inner 64 --methods graphlab mambapy --repeats 5
    OMP_NUM_THREADS=1 python benchmarks/scan.py --L 4096 --modes fwd   # the reference's fwd+bwd takes minutes here
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from graphlab import ops
from graphlab.ops import _native, _native_scan, reference


sys.path.insert(0, str(Path(__file__).resolve().parent))
from aggregate import median_ms, peak_extra_mib  # noqa: E402 - one measuring method for every benchmark

METHODS = ("graphlab", "chunked", "reference", "mambapy")
MODES = ("fwd", "fwd+bwd")
Run = Callable[[], object]


def thread_median_ms(run: Run, repeats: int, warmup: int) -> float:
    """Median CPU milliseconds of the calling thread per call (``time.thread_time``)."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        run()
        times.append(time.thread_time() - start)
    return statistics.median(times) * 1e3


def make_inputs(batch: int, d_inner: int, length: int, state: int, seed: int) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "u": torch.randn(batch, d_inner, length, generator=gen),
        "delta": torch.nn.functional.softplus(torch.randn(batch, d_inner, length, generator=gen) - 3),
        "A": -torch.arange(1, state + 1, dtype=torch.float32).expand(d_inner, state).contiguous(),
        "B": torch.randn(batch, state, length, generator=gen),
        "C": torch.randn(batch, state, length, generator=gen),
        "D": torch.ones(d_inner),
    }


def _runs(fn: Callable[..., Tensor], args: list[Tensor]) -> tuple[Run, Run]:
    """``(forward, forward+backward)`` closures of ``fn(*args)`` (gradients w.r.t. every argument)."""
    leaves = [a.clone().requires_grad_() for a in args]

    def forward() -> Tensor:
        with torch.no_grad():
            return fn(*args)

    def forward_backward() -> tuple[Tensor, ...]:
        out = fn(*leaves)
        return torch.autograd.grad(out.sum(), leaves)

    return forward, forward_backward


def method_runs(name: str, x: dict[str, Tensor]) -> tuple[Run, Run] | None:
    args = [x[k] for k in ("u", "delta", "A", "B", "C", "D")]
    if name == "graphlab":
        def ours(u, delta, A, B, C, D):
            with ops.set_backend("cpu"):
                return ops.selective_scan(u, delta, A, B, C, D)
        return _runs(ours, args)
    if name == "chunked":
        def chunked(u, delta, A, B, C, D):
            with ops.set_backend("cpu"), _native.use_native(False):
                return ops.selective_scan(u, delta, A, B, C, D)
        return _runs(chunked, args)
    if name == "reference":
        return _runs(lambda u, delta, A, B, C, D: reference.selective_scan(u, delta, A, B, C, D), args)
    if importlib.util.find_spec("mambapy") is None:
        return None
    from mambapy.mamba import MambaBlock  # its selective_scan uses only its arguments

    native = [x["u"].transpose(1, 2).contiguous(), x["delta"].transpose(1, 2).contiguous(), x["A"],
              x["B"].transpose(1, 2).contiguous(), x["C"].transpose(1, 2).contiguous(), x["D"]]
    return _runs(lambda *a: MambaBlock.selective_scan(None, *a), native)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--L", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--d-inner", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--d-state", type=int, default=16)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-repeats", type=int, default=1, help="the loop is slow: fewer repeats")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clock", choices=("wall", "thread"), default="wall",
                        help="thread: this thread's CPU time (needs one compute thread: OMP_NUM_THREADS=1)")
    args = parser.parse_args(argv)
    if args.clock == "thread" and torch.get_num_threads() != 1:
        parser.error(f"--clock thread needs one compute thread, torch uses {torch.get_num_threads()}: "
                     "set OMP_NUM_THREADS=1")
    timer = thread_median_ms if args.clock == "thread" else median_ms

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent).stdout.strip()
    print(f"# python {' '.join(sys.argv)}  (commit {commit}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), batch {args.batch}, d_state {args.d_state}, float32, "
          f"{args.clock} clock)")
    methods = list(args.methods)
    if "graphlab" in methods:
        if _native_scan.available():
            vectorised = getattr(_native_scan, "vectorised_forward", lambda: False)()
            vectors = "on 16-lane vectors" if vectorised else "generic loop"
            impl = f"native C kernel (float32 N = 16 forward: {vectors})"
        else:
            impl = f"chunked torch ({_native.unavailable_reason()})"
        print(f"# graphlab row: {impl}")
    if "mambapy" in methods and importlib.util.find_spec("mambapy") is None:
        print("# mambapy is not installed (pip install --no-deps mambapy): its column is left out")
        methods.remove("mambapy")
    header = f"{'L':>5} {'d_inner':>7} {'mode':>7} " + " ".join(f"{m + ' ms':>13} {'MiB':>7}" for m in methods)
    others = [m for m in methods if m != "graphlab"]
    if "graphlab" in methods:
        header += " " + " ".join(f"{'x ' + m[:4]:>7}" for m in others)
    print(header)
    for length in args.L:
        for d_inner in args.d_inner:
            x = make_inputs(args.batch, d_inner, length, args.d_state, args.seed)
            cells: dict[tuple[str, str], tuple[float, float | None]] = {}
            for name in methods:
                forward, forward_backward = method_runs(name, x)
                repeats = args.reference_repeats if name == "reference" else args.repeats
                warmup = 0 if name == "reference" else args.warmup
                for mode, run in (("fwd", forward), ("fwd+bwd", forward_backward)):
                    if mode not in args.modes:
                        continue
                    cells[(name, mode)] = (timer(run, repeats, warmup), peak_extra_mib(run))
            for mode in args.modes:
                row = f"{length:>5} {d_inner:>7} {mode:>7} "
                row += " ".join(f"{cells[(m, mode)][0]:>13.1f} {_mib(cells[(m, mode)][1]):>7}" for m in methods)
                if "graphlab" in methods:
                    ours = cells[("graphlab", mode)][0]
                    row += " " + " ".join(f"{cells[(m, mode)][0] / ours:>7.1f}" for m in others)
                print(row, flush=True)


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    main()
