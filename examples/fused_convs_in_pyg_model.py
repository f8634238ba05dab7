"""graphlab's fused GCNConv and SAGEConv inside a plain PyTorch Geometric model, trained by a hand-written loop.

graphlab.nn.GCNConv and graphlab.nn.SAGEConv subclass PyG's layers of the same name (same arguments, parameters
and state_dict keys) and only change how neighbours are aggregated (graphlab.ops.gather_reduce on a cached CSR
instead of one message row per edge). So they drop into any PyG model; no Lightning, no config file. The data is
graphlab's built-in contextual stochastic block model (no files, no network). At the end the trained weights are
loaded into PyG's own layers, which give the same logits.

    python examples/fused_convs_in_pyg_model.py            # 1000 nodes, 100 epochs, a few seconds on a CPU
    python examples/fused_convs_in_pyg_model.py --tiny     # 200 nodes, 20 epochs (what the tests run)
"""

from __future__ import annotations

import argparse
from typing import Optional

import torch
import torch.nn.functional as F
import torch_geometric.nn as pyg_nn
from torch import Tensor, nn

from graphlab.data import CSBMData
from graphlab.nn import GCNConv, SAGEConv


class Net(nn.Module):
    """GCN layer, then a GraphSAGE layer: any PyG model could use these two layers in the same way."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, conv1: type = GCNConv,
                 conv2: type = SAGEConv) -> None:
        super().__init__()
        self.conv1 = conv1(in_channels, hidden_channels)
        self.conv2 = conv2(hidden_channels, out_channels)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = F.dropout(F.relu(self.conv1(x, edge_index)), p=0.5, training=self.training)
        return self.conv2(x, edge_index)


def accuracy(logits: Tensor, y: Tensor, mask: Tensor) -> float:
    return float((logits[mask].argmax(-1) == y[mask]).float().mean())


def main(argv: Optional[list[str]] = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="200 nodes and 20 epochs (a smoke run)")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    data = CSBMData(num_nodes=200 if args.tiny else 1000, num_classes=3, homophily=0.8, feature_signal=0.3).graph
    model = Net(data.num_features, 32, 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    for epoch in range(args.epochs or (20 if args.tiny else 100)):
        model.train()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data.x, data.edge_index)[data.train_mask], data.y[data.train_mask])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(data.x, data.edge_index)
        pyg_model = Net(data.num_features, 32, 3, pyg_nn.GCNConv, pyg_nn.SAGEConv)
        pyg_model.load_state_dict(model.state_dict())  # same parameter names: the layers are interchangeable
        pyg_model.eval()
        gap = float((pyg_model(data.x, data.edge_index) - logits).abs().max())
    result = {"loss": loss.item(), "val_acc": accuracy(logits, data.y, data.val_mask),
              "test_acc": accuracy(logits, data.y, data.test_mask), "max_gap_to_pyg": gap}
    print(f"train loss {result['loss']:.3f}, val acc {result['val_acc']:.3f}, test acc {result['test_acc']:.3f} "
          f"(chance 0.33); PyG's own layers with the same weights differ by at most {gap:.1e}")
    return result


if __name__ == "__main__":
    main()
