"""LightningModules that train any graph model on node, graph and link tasks."""

from graphlab.tasks.base import GraphTask
from graphlab.tasks.checkpoint import LastCheckpoint
from graphlab.tasks.graph import GraphPrediction
from graphlab.tasks.link import LinkPrediction, bpr_loss, remove_target_links
from graphlab.tasks.node import NodeClassification
from graphlab.tasks.precise_bn import PreciseBatchNorm, recompute_batch_norm_stats

__all__ = ["GraphTask", "NodeClassification", "GraphPrediction", "LinkPrediction", "bpr_loss", "remove_target_links", "LastCheckpoint",
           "PreciseBatchNorm", "recompute_batch_norm_stats"]
