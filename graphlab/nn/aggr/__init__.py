"""graphlab's aggregations (``torch_geometric.nn.aggr.Aggregation`` subclasses, usable as ``aggr=`` in any
``MessagePassing``): :class:`LCMAggregation` (learnable commutative monoids, exact per-neighbourhood tree
reduction) and :class:`RecurrentAggregation` (GRU / LSTM over each neighbourhood)."""

from graphlab.nn.aggr.lcm import LCMAggregation
from graphlab.nn.aggr.recurrent import RecurrentAggregation

__all__ = ["LCMAggregation", "RecurrentAggregation"]
