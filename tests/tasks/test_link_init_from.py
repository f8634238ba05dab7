"""Warm start (``LinkPrediction(init_from=...)``, the official NCNC ``--loadmod``): the shared weights of a trained
NCN are copied into NCNC by name when fit starts; NCNC-only weights keep their initialisation; a shape mismatch,
an unrelated file or a missing file fail with a message naming the problem."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from graphlab.data import RandomLinkData
from graphlab.models import NCN, NCNC
from graphlab.tasks import LinkPrediction
from graphlab.tasks.checkpoint import load_model_weights

KW = dict(hidden_channels=8, conv="puresum", use_xlin=True, ln=True, predictor_ln=True)


def _trained_ncn() -> NCN:
    torch.manual_seed(1)
    ncn = NCN(4, **KW)
    with torch.no_grad():  # any values other than NCNC's initialisation
        for p in ncn.parameters():
            p.add_(torch.randn_like(p))
    return ncn


def test_ncnc_gets_every_ncn_weight_from_a_lightning_checkpoint(tmp_path) -> None:
    ncn = _trained_ncn()
    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in ncn.state_dict().items()}, "epoch": 3}, path)
    torch.manual_seed(2)
    ncnc = NCNC(4, **KW, learnable_pt=True)  # ptlin: weights NCN does not have
    before = {k: v.clone() for k, v in ncnc.state_dict().items()}
    missing, unexpected = load_model_weights(ncnc, str(path))
    after, source = ncnc.state_dict(), ncn.state_dict()
    assert unexpected == [] and missing and all(k.startswith("predictor.ptlin") for k in missing)
    for k in source:
        assert torch.equal(after[k], source[k]), k
    for k in missing:
        assert torch.equal(after[k], before[k]), k


def test_plain_state_dict_and_errors(tmp_path) -> None:
    ncn = _trained_ncn()
    plain = tmp_path / "ncn.pt"
    torch.save(ncn.state_dict(), plain)
    ncnc = NCNC(4, **KW)
    load_model_weights(ncnc, str(plain))
    assert torch.equal(ncnc.predictor.beta, ncn.predictor.beta)
    with pytest.raises(ValueError, match=r"other shapes than the model's \(.*file \(8, 4\) vs model \(16, 4\)"):
        load_model_weights(NCNC(4, **{**KW, "hidden_channels": 16}), str(plain))
    other = tmp_path / "other.pt"
    torch.save({"lin.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(ValueError, match="none of its 1 weights has a name of NCNC"):
        load_model_weights(ncnc, str(other))
    with pytest.raises(FileNotFoundError, match="init_from='.*missing.ckpt': no such file"):
        load_model_weights(ncnc, str(tmp_path / "missing.ckpt"))


class _Snapshot(L.Callback):
    def on_train_start(self, trainer, module) -> None:
        self.state = {k: v.clone() for k, v in module.model.state_dict().items()}


def test_fit_starts_from_init_from(tmp_path) -> None:
    dm = RandomLinkData(num_nodes=40, num_features=4)
    ncn = _trained_ncn()
    path = tmp_path / "ncn.pt"
    torch.save(ncn.state_dict(), path)
    task = LinkPrediction(NCNC(4, **KW), init_from=str(path))
    snap = _Snapshot()
    L.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False, callbacks=[snap]).fit(task, datamodule=dm)
    for k, v in ncn.state_dict().items():
        assert torch.equal(snap.state[k], v), k
