"""The Lightning callback: a real ``lightning.Trainer`` on CPU, diagnosed by nndoctor."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.modules.module as module_hooks
import torch.optim.optimizer as optimizer_hooks


def test_import_error_names_the_extra(monkeypatch):
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "nndoctor.integrations.lightning"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "lightning", None)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)
    with pytest.raises(ImportError, match=r"pip install 'nndoctor\[lightning\]'"):
        importlib.import_module("nndoctor.integrations.lightning")
    monkeypatch.delitem(sys.modules, "nndoctor.integrations.lightning", raising=False)


pl = pytest.importorskip("lightning.pytorch")


class Digitsish(pl.LightningModule):
    def __init__(self, lr: float, opt: str = "sgd"):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
        self.lr, self.opt = lr, opt

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        if self.opt == "adam":
            return torch.optim.Adam(self.parameters(), lr=self.lr)
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def _loaders(seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(4, 16, generator=g) * 2
    y = torch.randint(0, 4, (1280,), generator=g)
    x = centers[y] + torch.randn(1280, 16, generator=g)
    ds = torch.utils.data.TensorDataset(x, y)
    train = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(1024)), batch_size=32)
    val = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(1024, 1280)), batch_size=64)
    return train, val


def _fit(module, epochs=3):
    from nndoctor.integrations.lightning import NNDoctorCallback

    doctor = NNDoctorCallback()
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, callbacks=[doctor], logger=False,
                         enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False)
    train, val = _loaders()
    trainer.fit(module, train, val)
    return doctor


def _hook_counts():
    return (len(module_hooks._global_forward_hooks), len(module_hooks._global_forward_pre_hooks),
            len(optimizer_hooks._global_optimizer_pre_hooks), len(optimizer_hooks._global_optimizer_post_hooks))


def test_healthy_lightning_fit_is_quiet_and_cleans_up():
    torch.manual_seed(0)
    before = _hook_counts()
    doctor = _fit(Digitsish(lr=0.1))
    report = doctor.report()
    assert report.facts["steps"] == 96
    assert report.facts["api"] == "lightning"
    assert not report.at_least("warning"), [f.message for f in report.at_least("warning")]
    assert not report.internal_errors
    assert _hook_counts() == before
    assert not torch._C._is_torch_function_mode_enabled()


def test_lightning_fit_with_lr_far_too_high_is_diagnosed():
    torch.manual_seed(0)
    doctor = _fit(Digitsish(lr=5.0), epochs=2)
    report = doctor.report()
    assert "lr" in report.categories("warning"), [(f.code, f.message) for f in report.findings]
    (finding,) = report.by_code("lr.too-high")
    assert finding.evidence["lr"] == "5" and finding.evidence["update_ratio_median"] > 0.1
    assert not report.internal_errors


class TwoPart(pl.LightningModule):
    """training_step calls its parts (``self.encoder``, ``self.head``), never ``self(x)``: the common
    Lightning style; optionally distilled from a frozen teacher run under no_grad on the batch."""

    def __init__(self, distill: bool = False):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(16, 64), nn.ReLU())
        self.head = nn.Linear(64, 4)
        self.teacher = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4)).requires_grad_(False)
        self.distill = distill

    def training_step(self, batch, batch_idx):
        x, y = batch
        out = self.head(self.encoder(x))
        loss = F.cross_entropy(out, y)
        if self.distill:
            self.teacher.eval()
            with torch.no_grad():
                soft = F.softmax(self.teacher(x) / 2, -1)
            loss = loss + F.kl_div(F.log_softmax(out / 2, -1), soft, reduction="batchmean")
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=1e-3)


def _fit_loader(module, x, y, epochs=3):
    from nndoctor.integrations.lightning import NNDoctorCallback

    doctor = NNDoctorCallback()
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, callbacks=[doctor], logger=False,
                         enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    trainer.fit(module, loader)
    return doctor.report()


def test_a_training_step_that_calls_submodules_is_observed_like_nndoctor_run():
    """The batch goes to ``self.encoder(x)``, not to the LightningModule's forward: the input checks
    still see it (raw inputs ~1000 +- 300 are named), and a frozen teacher run under no_grad on the
    training batch is part of the step, not an evaluation pass (it read as train/test leakage)."""
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 16, generator=g) * 2
    y = torch.randint(0, 4, (1024,), generator=g)
    x = centers[y] + torch.randn(1024, 16, generator=g)
    torch.manual_seed(0)
    report = _fit_loader(TwoPart(), x * 300 + 1000, y)
    (found,) = report.by_code("preprocessing.unnormalised-features")
    assert found.severity.value == "warning" and found.location == "pl_module.encoder", found.location
    torch.manual_seed(0)
    report = _fit_loader(TwoPart(distill=True), x, y)
    assert not report.at_least("warning"), [(f.code, f.message) for f in report.at_least("warning")]
    assert not report.internal_errors


def test_lightning_gradient_clip_val_that_clips_every_step_is_the_root_cause():
    """``Trainer(gradient_clip_val=...)`` clips inside the optimizer's closure (after the step's
    pre-hook ran): a threshold thousands of times below the gradient norm is named as the cause of
    the plateau it makes; a normal threshold is quiet."""
    from nndoctor.integrations.lightning import NNDoctorCallback

    def fit(clip):
        torch.manual_seed(0)
        doctor = NNDoctorCallback()
        trainer = pl.Trainer(max_epochs=3, accelerator="cpu", devices=1, callbacks=[doctor], logger=False,
                             gradient_clip_val=clip, enable_progress_bar=False, enable_checkpointing=False,
                             enable_model_summary=False)
        trainer.fit(Digitsish(lr=0.05), _loaders()[0])
        return doctor.report()

    report = fit(5e-4)
    (clip,) = report.by_code("optimizer.clip-too-tight")
    assert clip.severity.value == "warning"
    assert all(f.code == "optimizer.clip-too-tight" or f.caused_by for f in report.at_least("warning"))
    assert not fit(1.0).at_least("warning")
