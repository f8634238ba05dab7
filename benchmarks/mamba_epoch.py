"""Time per full-batch training epoch (forward + backward + Adam step) and per evaluation pass of graphlab's
GMN and Graph-Mamba on tolokers (11,758 nodes, 1.04M directed edges), beside graphlab's GraphSAGE (the strongest
message-passing row of Platonov et al. on tolokers) in the same run, with the peak extra heap of one training step.

    OMP_NUM_THREADS=1 GRAPHLAB_DATA=<copy of shared/data> python benchmarks/mamba_epoch.py [--hidden 64] [--repeats 3]

The one-sequence Graph-Mamba runs a single Mamba scan over all 11,758 nodes; ``--buckets`` adds the bucketed
variant. Everything runs on the CPU (no mamba-ssm): the scan is :func:`graphlab.ops.selective_scan`'s CPU path,
the native C kernel when graphlab's native library builds (the header says which), else the chunked torch scan.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aggregate import median_ms, peak_extra_mib  # noqa: E402 - one measuring method for every benchmark


def models(in_channels: int, hidden: int, buckets: int) -> dict[str, torch.nn.Module]:
    from graphlab.models import GMN, GraphMamba, GraphSAGE

    out = {
        "GraphSAGE (2 layers)": GraphSAGE(in_channels, 1, hidden_channels=hidden, num_layers=2, dropout=0.2),
        "Graph-Mamba (2 layers)": GraphMamba(in_channels, 1, hidden_channels=hidden, num_layers=2, dropout=0.2),
        "GMN (2 layers, m=2 M=4 s=2)": GMN(in_channels, 1, hidden_channels=hidden, num_layers=2, walk_length=2,
                                           num_walks=4, repeats=2, dropout=0.2),
    }
    if buckets > 1:
        out[f"Graph-Mamba ({buckets} buckets)"] = GraphMamba(in_channels, 1, hidden_channels=hidden, num_layers=2,
                                                              dropout=0.2, num_buckets=buckets)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--buckets", type=int, default=0, help="also time the bucketed Graph-Mamba (0: skip)")
    parser.add_argument("--dataset", default="tolokers")
    args = parser.parse_args(argv)
    from graphlab.data import PyGData

    data = PyGData(args.dataset, split=0, download=False).graph
    mask, y = data.train_mask, data.y
    from graphlab.ops import _native, _native_scan

    scan = "native C kernel" if _native_scan.available() else f"chunked torch ({_native.unavailable_reason()})"
    print(f"# selective_scan CPU path: {scan}")
    print(f"# {args.dataset}: {data.num_nodes} nodes, {data.edge_index.size(1)} edges, hidden {args.hidden}, "
          f"torch threads {torch.get_num_threads()}, median of {args.repeats}")
    rows = []
    for name, model in models(data.x.size(1), args.hidden, args.buckets).items():
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def train_step() -> torch.Tensor:
            model.train()
            optimizer.zero_grad()
            loss = F.binary_cross_entropy_with_logits(model(data.x, data.edge_index)[mask], y[mask])
            loss.backward()
            optimizer.step()
            return loss.detach()

        def evaluate() -> torch.Tensor:
            model.eval()
            with torch.no_grad():
                return model(data.x, data.edge_index)

        train_ms = median_ms(train_step, args.repeats, 1)
        eval_ms = median_ms(evaluate, max(1, args.repeats // 2), 0)
        peak = peak_extra_mib(train_step)
        rows.append((name, train_ms / 1e3, eval_ms / 1e3, peak))
        print(f"  measured {name}", file=sys.stderr, flush=True)
    base = rows[0][1]
    print(f"| model | train epoch s | x GraphSAGE | eval pass s | peak extra MiB (train step) |")
    print("|---|---|---|---|---|")
    for name, train_s, eval_s, peak in rows:
        peak_s = "n/a" if peak is None else f"{peak:.0f}"
        print(f"| {name} | {train_s:.2f} | {train_s / base:.1f} | {eval_s:.2f} | {peak_s} |")


if __name__ == "__main__":
    main()
