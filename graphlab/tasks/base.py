"""Shared machinery of graphlab's LightningModules.

A task owns the loss, the optimiser and the metrics; the model is any ``torch.nn.Module``
given by ``class_path`` in the config. The dataset description (:class:`DatasetInfo`)
comes from the attached DataModule, so a task never hard-codes a metric.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Literal, Optional

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from graphlab.distributed import (batch_items, gather_objects, is_distributed, loader_item_indices, row_keys,
                                  unique_by_key)
from graphlab.data.subgraph import PAIR_FIELDS
from graphlab.eval.metrics import evaluate
from graphlab.info import DatasetInfo
from graphlab.tasks.checkpoint import LastCheckpoint

# Batch fields passed to a model whose ``forward`` names them: the usual PyG ones, and the pair fields of
# graphlab.transforms.SubgraphPairs (with ``ptr``) that the subgraph models read.
BATCH_FIELDS = ("edge_weight", "edge_attr", "batch", "ptr") + PAIR_FIELDS


class GraphTask(L.LightningModule):
    r"""Base task: optimiser, metric bookkeeping and best-checkpoint selection.

    Args:
        model: the network. If it defines ``optimizer_param_groups(weight_decay)``, those
            parameter groups are used (e.g. a separate decay for sheaf learners).
        lr: learning rate.
        weight_decay: L2 weight decay (Adam) or decoupled decay (AdamW).
        optimizer: ``adam``, ``adamw`` or ``sgd``.
        lr_scheduler: ``none``, ``plateau`` (on the monitored validation metric) or
            ``cosine`` (over ``trainer.max_epochs``).
        info: the dataset description. Normally left out: it is read from the attached
            DataModule's ``info``. Give it to use the task without a graphlab DataModule.
        aux_loss_weights: weights :math:`\lambda_k` of the auxiliary losses that modules of the model report
            (e.g. ``{associativity: 0.1}`` for :class:`graphlab.nn.aggr.LCMAggregation`'s regulariser). The
            training loss is :math:`\mathcal L = \mathcal L_{task} + \sum_k \lambda_k \mathcal L_k`; see
            :meth:`add_auxiliary_losses`. Empty (default): the auxiliary losses are logged but not trained on.
    """

    def __init__(
        self,
        model: nn.Module,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        optimizer: Literal["adam", "adamw", "sgd"] = "adam",
        lr_scheduler: Literal["none", "plateau", "cosine"] = "none",
        info: Optional[DatasetInfo] = None,
        aux_loss_weights: Optional[dict[str, float]] = None,
    ) -> None:
        super().__init__()
        self.aux_loss_weights = check_aux_loss_weights(aux_loss_weights)
        self.save_hyperparameters(ignore=["model", "info"])
        self.model = model
        self._info = info
        self._forward_params = set(inspect.signature(model.forward).parameters)
        # (stage, dataloader index) -> one (y_true, y_pred, keys) per batch; keys: see collect
        self._outputs: dict[tuple[str, int], list[tuple[Tensor, Tensor, Optional[Tensor]]]] = {}
        self._eval_dataloader_idx = 0
        self._batch_idx = 0
        self._item_indices: dict[tuple[str, int], Optional[Tensor]] = {}  # this rank's sampler order (DDP)

    # ------------------------------------------------------------------ dataset info
    @property
    def info(self) -> DatasetInfo:
        if self._info is None:
            datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
            info = getattr(datamodule, "info", None)
            if not isinstance(info, DatasetInfo):
                raise RuntimeError(
                    f"{type(self).__name__} needs a DatasetInfo: train it with a graphlab DataModule "
                    "(trainer.fit(task, datamodule=...)) or pass `info=` to the task"
                )
            self._info = info
        return self._info

    @property
    def monitor(self) -> str:
        """The logged key of the headline validation metric (checkpoint selection)."""
        return f"val_{self.info.metric}"

    @property
    def monitor_mode(self) -> Literal["min", "max"]:
        return "max" if self.info.higher_is_better else "min"

    def configure_callbacks(self) -> list[Callback]:
        """Keep the checkpoint with the best validation metric (unless the user set one) and ``last.ckpt``
        (:class:`~graphlab.tasks.checkpoint.LastCheckpoint`, to resume after a crash).

        Nothing when checkpointing is off (``Trainer(enable_checkpointing=False)`` and no checkpoint callback).
        A ``LastCheckpoint`` the trainer already has (the CLI's ``--last_checkpoint.*``) is returned again: Lightning
        then moves it behind the best-checkpoint callback, so ``trainer.checkpoint_callback`` (what
        ``ckpt_path="best"`` reads) stays the best-validation one.
        """
        trainer_callbacks = self.trainer.callbacks if self._trainer is not None else []
        if self._trainer is not None and not any(isinstance(c, Checkpoint) for c in trainer_callbacks):
            return []  # Lightning adds a default ModelCheckpoint unless enable_checkpointing=False
        callbacks: list[Callback] = []
        last = next((c for c in trainer_callbacks if isinstance(c, LastCheckpoint)), None)
        if not any(isinstance(c, ModelCheckpoint) and c.monitor is not None for c in trainer_callbacks):
            dirpath = str(last.dirpath) if last is not None and last.dirpath is not None else None  # a resumed run
            callbacks.append(ModelCheckpoint(dirpath=dirpath, monitor=self.monitor, mode=self.monitor_mode,
                                             filename="best-{epoch}", save_last=False))
        return callbacks + [last if last is not None else LastCheckpoint()]

    # ------------------------------------------------------------------ model calling
    def call_model(self, batch: Any, **extra: Any) -> Tensor:
        """Call the model with the batch fields its ``forward`` accepts (:data:`BATCH_FIELDS`)."""
        kwargs = {}
        for key in BATCH_FIELDS:
            if key in self._forward_params and getattr(batch, key, None) is not None:
                kwargs[key] = getattr(batch, key)
        kwargs.update({k: v for k, v in extra.items() if k in self._forward_params})
        return self.model(batch.x, batch.edge_index, **kwargs)

    @property
    def predict_split(self) -> str:
        """The split ``predict`` covers: the attached DataModule's ``predict_split`` (default ``test``)."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        return str(getattr(datamodule, "predict_split", "test"))

    # ------------------------------------------------------------------ auxiliary losses
    def auxiliary_losses(self) -> dict[str, Tensor]:
        """Every auxiliary loss the model's modules report for the last forward pass, summed per name.

        A module takes part by defining ``auxiliary_losses() -> dict[str, Tensor]`` (as
        :class:`graphlab.nn.aggr.LCMAggregation` does); calling it lets the module drop what it kept from the
        forward pass.
        """
        totals: dict[str, Tensor] = {}
        # Unweighted losses are only logged (detached): with no weight set at all, build them without autograd, so
        # the module's extra operator calls cost a forward pass only (no graph, no backward).
        with torch.set_grad_enabled(torch.is_grad_enabled() and bool(self.aux_loss_weights)):
            for module in self.model.modules():
                report = getattr(module, "auxiliary_losses", None)
                if not callable(report):
                    continue
                for name, value in report().items():
                    totals[name] = totals[name] + value if name in totals else value
        return totals

    def add_auxiliary_losses(self, loss: Tensor, batch_size: int) -> Tensor:
        r"""The training loss :math:`\mathcal L_{task} + \sum_k \lambda_k \mathcal L_k`, logging each term.

        Every training step of every task ends here, right after its forward pass. The model's auxiliary losses
        are collected every step, whether or not a weight is set: a module may hold tensors of its forward pass
        until it is asked (so asking frees them at once), and each ``train_<name>_loss`` is logged so a regulariser
        can be watched before it is switched on. Unweighted ones are logged detached and add nothing to the graph.

        Raises:
            ValueError: a name in ``aux_loss_weights`` that no module of the model reported.
        """
        aux = self.auxiliary_losses()
        missing = sorted(set(self.aux_loss_weights) - set(aux))
        if missing:
            available = ", ".join(sorted(aux)) or "none (no module of the model defines auxiliary_losses())"
            raise ValueError(f"aux_loss_weights names {missing}, but the model reports no such auxiliary loss; "
                             f"available: {available}. Fix the names in aux_loss_weights or remove them")
        total = loss
        for name, value in aux.items():
            self.log(f"train_{name}_loss", value.detach(), batch_size=batch_size)
            weight = self.aux_loss_weights.get(name, 0.0)
            if weight:
                total = total + weight * value
        return total

    # ------------------------------------------------------------------ metrics
    def log_loss(self, stage: str, loss: Tensor, batch_size: int) -> None:
        """Log ``<stage>_loss``: per step in training, averaged over the epoch (and over the ranks under DDP,
        ``sync_dist``) in validation and test."""
        self.log(f"{stage}_loss", loss, prog_bar=stage != "test", batch_size=batch_size, sync_dist=stage != "train")

    def collect(self, stage: str, y_true: Tensor, y_pred: Tensor, index: Optional[Tensor] = None,
                item_rows: Optional[Tensor] = None) -> None:
        """Keep a batch's labels and predictions for the split metric, per stage and per evaluation dataloader
        (a DataModule may give several test loaders, e.g. one per test size).

        Under DDP each row is also keyed, so that :meth:`_log_epoch_metric` can gather every rank's rows, drop the
        duplicates a ``DistributedSampler`` pads with and order them as one process would: by ``index`` when given
        (``[n]`` global row ids, e.g. the node ids of sampled seed nodes; also the order in one process), else by
        the batch's dataset items: one row per item, or many rows of one item (:func:`graphlab.distributed.row_keys`),
        or, for batches of several items that each give several rows (node tasks on batches of graphs),
        ``item_rows`` ``[n, 2]``: each row's item position within the batch and its id within that item.
        """
        idx = self._eval_dataloader_idx if stage in ("val", "test") else 0
        keys = None
        if index is not None:
            index = index.detach().view(-1).long().cpu()
            if index.numel() != y_true.size(0):
                raise ValueError(f"collect: index has {index.numel()} entries for {y_true.size(0)} rows; give one "
                                 "global id per collected row")
            keys = torch.stack([index, torch.zeros_like(index)], dim=1)
        elif is_distributed():
            keys = self._item_keys(stage, idx, y_true.size(0), item_rows)
        self._outputs.setdefault((stage, idx), []).append((y_true.detach().cpu(), y_pred.detach().cpu(), keys))

    def _stage_loader(self, stage: str, dataloader_idx: int) -> Any:
        if self._trainer is None:
            return None
        loaders = {"train": self.trainer.train_dataloader, "val": self.trainer.val_dataloaders,
                   "test": self.trainer.test_dataloaders}.get(stage)
        if isinstance(loaders, (list, tuple)):
            return loaders[dataloader_idx] if dataloader_idx < len(loaders) else None
        return loaders if dataloader_idx == 0 else None

    def _item_keys(self, stage: str, dataloader_idx: int, num_rows: int,
                   item_rows: Optional[Tensor] = None) -> Optional[Tensor]:
        """Row keys ``(dataset item, row within item)`` of the current batch, from this rank's sampler order."""
        loader = self._stage_loader(stage, dataloader_idx)
        if (stage, dataloader_idx) not in self._item_indices:
            self._item_indices[(stage, dataloader_idx)] = loader_item_indices(loader)
        indices = self._item_indices[(stage, dataloader_idx)]
        items = None if indices is None else batch_items(loader, indices, self._batch_idx)
        if items is None:
            return None
        if item_rows is not None:
            item_rows = item_rows.detach().long().cpu()
            if item_rows.shape != (num_rows, 2) or (num_rows and int(item_rows[:, 0].max()) >= items.numel()):
                return None  # not the loader's items (e.g. a custom batch layout): left unkeyed, with a warning
            return torch.stack([items[item_rows[:, 0]], item_rows[:, 1]], dim=1)
        return row_keys(items, num_rows)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._batch_idx = batch_idx

    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_dataloader_idx, self._batch_idx = dataloader_idx, batch_idx

    def on_test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_dataloader_idx, self._batch_idx = dataloader_idx, batch_idx

    def eval_names(self, stage: str) -> list[str]:
        """Names of the ``stage`` (``val``/``test``) dataloaders: the attached DataModule's ``<stage>_names``
        (e.g. :class:`graphlab.data.SecondMinimumData`'s ``test_names = ["32", "64"]``), else ``[]``."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        return [str(n) for n in (getattr(datamodule, f"{stage}_names", None) or [])]

    def metric_key(self, stage: str, dataloader_idx: int = 0) -> str:
        """The logged key of a split metric: ``<stage>_<metric>`` for the first dataloader of the stage (the
        headline, e.g. ``test_exact_acc``), ``<stage>_<metric>@<name>`` for the others (``test_exact_acc@64``),
        ``<name>`` from :meth:`eval_names` or the dataloader index."""
        key = f"{stage}_{self.info.metric}"
        if dataloader_idx == 0:
            return key
        names = self.eval_names(stage)
        return f"{key}@{names[dataloader_idx] if dataloader_idx < len(names) else dataloader_idx}"

    def compute_metric(self, y_true: Tensor, y_pred: Tensor) -> float:
        """The headline metric of a whole split (OGB ``Evaluator`` or torchmetrics)."""
        return evaluate(self.info, y_true, y_pred)

    def _split_outputs(self, stage: str) -> dict[int, tuple[Tensor, Tensor]]:
        """``{dataloader index: (y_true, y_pred)}`` of the whole split, as one process sees it.

        One process: the batches' rows in loader order (ordered by ``index`` where :meth:`collect` got one).
        Under DDP: every rank's rows (one ``all_gather_object`` per stage and epoch, called by every rank), one row
        per key, in key order. Rows without keys (a loader graphlab cannot key: not a ``DistributedSampler``, or
        batches of several items giving a different number of rows) are gathered as they are, with a warning that
        padded duplicates may remain.
        """
        local: dict[int, tuple[Tensor, Tensor, Optional[Tensor]]] = {}
        for key in sorted(k for k in self._outputs if k[0] == stage):
            outputs = self._outputs.pop(key)
            if not outputs:
                continue
            keys = [k for _, _, k in outputs]
            local[key[1]] = (torch.cat([t for t, _, _ in outputs]), torch.cat([p for _, p, _ in outputs]),
                             None if any(k is None for k in keys) else torch.cat(keys))
        self._item_indices = {k: v for k, v in self._item_indices.items() if k[0] != stage}
        ranks = gather_objects(local)
        out: dict[int, tuple[Tensor, Tensor]] = {}
        for idx in sorted({i for part in ranks for i in part}):
            parts = [part[idx] for part in ranks if idx in part]
            y_true = torch.cat([t for t, _, _ in parts])
            y_pred = torch.cat([p for _, p, _ in parts])
            if any(k is None for _, _, k in parts):
                if len(ranks) > 1:
                    rank_zero_warn(f"{self.metric_key(stage, idx)}: the rows of this loader carry no dataset index, "
                                   "so the metric is computed on every rank's rows as they are, including the "
                                   "duplicates a DistributedSampler pads with. Pass `index=` to collect(), or use "
                                   "loaders whose batches give one row per item")
                out[idx] = (y_true, y_pred)
                continue
            _, y_true, y_pred = unique_by_key(torch.cat([k for _, _, k in parts]), y_true, y_pred)
            out[idx] = (y_true, y_pred)
        return out

    def _log_epoch_metric(self, stage: str) -> None:
        if self._trainer is not None and (self.trainer.sanity_checking or self.trainer.fast_dev_run):
            # The sanity check and fast_dev_run see a few batches only: a split metric is meaningless.
            self._outputs = {k: v for k, v in self._outputs.items() if k[0] != stage}
            self._item_indices = {k: v for k, v in self._item_indices.items() if k[0] != stage}
            return
        for idx, (y_true, y_pred) in self._split_outputs(stage).items():
            value = self.compute_metric(y_true, y_pred)
            # Every rank computed the same value from the same gathered rows; the max over ranks is that value,
            # exactly, and keeps Lightning's epoch-level logging in step across ranks.
            self.log(self.metric_key(stage, idx), value, prog_bar=stage != "test" and idx == 0,
                     batch_size=y_true.size(0), add_dataloader_idx=False, sync_dist=True, reduce_fx="max")

    def on_train_epoch_end(self) -> None:
        self._log_epoch_metric("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metric("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metric("test")

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        groups_fn = getattr(self.model, "optimizer_param_groups", None)
        params = groups_fn(hp.weight_decay) if callable(groups_fn) else self.model.parameters()
        if hp.optimizer == "adam":
            optimizer = torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay)
        elif hp.optimizer == "adamw":
            optimizer = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay)
        else:
            optimizer = torch.optim.SGD(params, lr=hp.lr, weight_decay=hp.weight_decay, momentum=0.9)
        if hp.lr_scheduler == "none":
            return optimizer
        if hp.lr_scheduler == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=self.monitor_mode, factor=0.5, patience=10)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": self.monitor}}
        max_epochs = max(int(self.trainer.max_epochs or 1), 1)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def check_aux_loss_weights(weights: Optional[dict[str, float]]) -> dict[str, float]:
    """``weights`` as a plain dict of finite, non-negative floats (``None`` → ``{}``), or a clear error."""
    if weights is None:
        return {}
    if not isinstance(weights, dict):
        raise TypeError(f"aux_loss_weights must be a mapping name -> weight, e.g. {{associativity: 0.1}}; "
                        f"got {type(weights).__name__}")
    out = {}
    for name, weight in weights.items():
        numeric = isinstance(weight, (int, float)) and not isinstance(weight, bool)
        if not numeric or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"aux_loss_weights[{name!r}] must be a finite number >= 0, got {weight!r}")
        out[str(name)] = float(weight)
    return out
