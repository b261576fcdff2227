"""Source edits of ``nndoctor fix``: a unified diff at file:line on real corpus scripts where the
finding's location is known, the instruction alone where it is not."""

from __future__ import annotations

import ast

import pytest
from helpers import ROOT, apply_diff

from nndoctor.fix.edits import source_edit
from nndoctor.fix.remedies import remedy_for
from nndoctor.fix.source import Patch, Source

CORPUS = ROOT / "tests" / "corpus"

# (script, finding as nndoctor reports it (evidence trimmed to what the edit reads), removed, added)
CASES = [
    ("loss_input_softmax_module.py",
     {"code": "loss-input.probabilities-into-logit-loss", "location": "model.3",
      "evidence": {"activation": "softmax", "site": "loss_input_softmax_module.py:12"}},
     "nn.Softmax(dim=1))", "nn.Identity())"),
    ("loss_input_nll_raw_logits.py",
     {"code": "loss-input.logits-into-nll-loss", "location": "loss_input_nll_raw_logits.py:30",
      "evidence": {"site": "loss_input_nll_raw_logits.py:30"}},
     "F.nll_loss(out", "F.cross_entropy(out"),
    ("lr_sgd_too_high.py",
     {"code": "lr.too-high", "location": "optimizer",
      "evidence": {"optimizer": "optimizer", "lr": "5", "suggest_low": "0.05", "suggest_high": "0.5"}},
     "lr=5.0", "lr=0."),
    ("optimizer_adam_eps_one.py",
     {"code": "optimizer.adam-eps", "location": "optimizer",
      "evidence": {"optimizer": "optimizer (Adam)", "setting": "eps", "value": 1.0}},
     "eps=1.0", "eps=1e-08"),
    ("regularization_dropout_keep_prob.py",
     {"code": "regularization.dropout-too-strong", "location": "model.2", "evidence": {"p": 0.9}},
     "nn.Dropout(0.9)", "nn.Dropout(0.2)"),
    ("regularization_sgd_weight_decay.py",
     {"code": "regularization.weight-decay-too-strong", "location": "opt",
      "evidence": {"optimizer": "opt (SGD)", "weight_decay": 0.1, "suggested": "7.38e-03"}},
     "weight_decay=0.1", "weight_decay=0.00738"),
    ("shape_mse_column_vs_flat.py",
     {"code": "shape.broadcast-in-loss", "location": "shape_mse_column_vs_flat.py:21",
      "evidence": {"site": "shape_mse_column_vs_flat.py:21"}},
     "loss_fn(pred, y[i:i + 40])", "loss_fn(pred, y[i:i + 40].view_as(pred))"),
    ("zero_grad_missing_loop.py",
     {"code": "zero-grad.not-cleared", "location": "optimizer", "evidence": {"optimizer": "optimizer"}},
     None, "optimizer.zero_grad()"),
    ("data_unshuffled_sorted_batches.py",
     {"code": "data.unshuffled-batches", "location": "training batches", "evidence": {}},
     "shuffle=False)", "shuffle=True)"),
    ("data_class_imbalance_fraud.py",
     {"code": "data.class-imbalance", "location": "training targets",
      "evidence": {"counts": {"0": 1230, "1": 50}}},
     "cross_entropy(model(xb), yb)", "weight=torch.tensor([0.52, 12.8])"),
    ("dtype_numpy_float64_double_model.py",
     {"code": "dtype.float64-model", "location": "model", "evidence": {"model": "model"}},
     ".double()", ".float()"),
    ("train_mode_eval_never_reset.py",
     {"code": "train-mode.training-in-eval-mode", "location": "model", "evidence": {"model": "model"}},
     None, "model.train()"),
    ("lr_exponential_stepped_per_batch.py",
     {"code": "lr.schedule-collapses", "location": "opt", "evidence": {"optimizer": "opt"}},
     "sched.step()", "sched.step()"),
    ("loss_input_softmax_batch_dim.py",
     {"code": "loss-input.softmax-over-batch-dim", "location": "model",
      "evidence": {"activation": "softmax", "dim": 0, "input_shape": (20, 3)}},
     "torch.softmax(self.net(x), 0)", "torch.softmax(self.net(x), 1)"),
    ("loss_input_softmax_one_unit.py",
     {"code": "loss-input.softmax-over-one-unit", "location": "model",
      "evidence": {"activation": "softmax", "dim": 1, "input_shape": (40, 1)}},
     "F.softmax(self.body(x), dim=1)", "torch.sigmoid(self.body(x))"),
]


@pytest.mark.parametrize("script,finding,removed,added", CASES, ids=[c[0][:-3] for c in CASES])
def test_diff_at_the_located_line_of_a_real_script(script, finding, removed, added):
    remedy = remedy_for(finding)
    assert remedy is not None
    path = str(CORPUS / script)
    edit = source_edit([(remedy.name, finding)], remedy.edit(finding), path)
    assert edit.diff and edit.file == path and edit.line, edit
    minus = [ln for ln in edit.diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln for ln in edit.diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    if removed:
        assert any(removed in ln for ln in minus), edit.diff
    assert any(added in ln for ln in plus), edit.diff
    original = (CORPUS / script).read_text()
    patched = apply_diff(edit.diff, original)
    ast.parse(patched)  # the edited script is still Python
    assert patched != original and len(patched.splitlines()) - len(original.splitlines()) in (0, 1)
    assert edit.to_dict()["line"] == edit.line and edit.to_dict()["instruction"]


def test_diff_covers_at_least_five_remedy_kinds():
    kinds = {remedy_for(f).name for _, f, _, _ in CASES}  # type: ignore[union-attr]
    assert len(kinds) >= 5


def test_no_diff_when_the_location_is_unknown(tmp_path):
    lr = CASES[2][1]
    remedy = remedy_for(lr)
    assert remedy is not None
    # no script, a script that does not parse, and two optimizers neither of which has the finding's name
    two = tmp_path / "two.py"
    two.write_text("import torch\na = torch.optim.SGD([], lr=1.0)\nb = torch.optim.SGD([], lr=2.0)\n")
    bad = tmp_path / "bad.py"
    bad.write_text("def (:\n")
    for script in (None, str(bad), str(two)):
        edit = source_edit([(remedy.name, lr)], remedy.edit(lr), script)
        assert edit.diff is None and edit.line is None and edit.instruction == remedy.edit(lr)
    # a site in another file: located nowhere in this one
    site = {"code": "shape.broadcast-in-loss", "evidence": {"site": "other.py:3"}}
    edit = source_edit([("reshape-target", site)], "x", str(two))
    assert edit.diff is None and edit.line is None


def test_line_without_diff_when_no_transform_is_safe():
    f = {"code": "init.constant-weights", "location": "model.fc1", "evidence": {}}
    remedy = remedy_for(f)
    edit = source_edit([(remedy.name, f)], remedy.edit(f), str(CORPUS / "init_constant_fill_all_layers.py"))
    assert edit.diff is None and edit.line and "fill_" in edit.instruction


def test_patch_edits_one_node_once():
    src = Source.load(str(CORPUS / "lr_sgd_too_high.py"))
    assert src is not None
    call = src.calls("SGD")[0]
    p = Patch(src)
    assert p.replace(call.keywords[0].value, "0.1") and p.replace(call.keywords[0].value, "0.1")
    assert p.diff().count("lr=0.1") == 1


def test_kl_div_edits_on_a_distillation_script(tmp_path):
    script = tmp_path / "distil.py"
    script.write_text("import torch\nimport torch.nn.functional as F\n"
                      "def step(s, t):\n"
                      "    return F.kl_div(F.softmax(s, -1), F.softmax(t, -1), reduction='batchmean')\n"
                      "kl = torch.nn.KLDivLoss(reduction='batchmean')\n")
    probs = {"code": "loss-input.probabilities-into-kl-div", "evidence": {"site": "distil.py:4"}}
    edit = source_edit([("kl-div-log-inputs", probs)], "x", str(script))
    assert edit.line == 4 and "+    return F.kl_div(F.log_softmax(s, -1), F.softmax(t, -1)" in edit.diff
    target = {"code": "loss-input.log-probabilities-as-kl-div-target", "evidence": {"site": "other.py:9"}}
    edit = source_edit([("kl-div-log-inputs", target)], "x", str(script))
    assert edit.line == 5 and "KLDivLoss(reduction='batchmean', log_target=True)" in edit.diff


def test_site_edits_view_to_permute_and_uint8_float_first(tmp_path):
    script = tmp_path / "tag.py"
    script.write_text("import torch\n"
                      "def f(out, img):\n"
                      "    logits = out.view(out.size(0), out.size(2), out.size(1))\n"
                      "    x = (img - 128) / 128.0\n"
                      "    return logits, x\n")
    view = {"code": "shape.view-scrambles-axes",
            "evidence": {"op": "view", "before": [8, 5, 3], "after": [8, 3, 5], "site": "tag.py:3"}}
    edit = source_edit([("permute-not-view", view)], "x", str(script))
    assert edit.line == 3 and "+    logits = out.permute(0, 2, 1)" in edit.diff
    wrap = {"code": "dtype.uint8-wraparound", "evidence": {"op": "sub", "symbol": "-", "site": "tag.py:4"}}
    edit = source_edit([("float-before-arithmetic", wrap)], "x", str(script))
    assert edit.line == 4 and "+    x = (img.float() - 128) / 128.0" in edit.diff
    ambiguous = {**view, "evidence": {**view["evidence"], "before": [4, 4, 3], "after": [4, 3, 4]}}
    assert source_edit([("permute-not-view", ambiguous)], "x", str(script)).diff is None


def test_debug_slice_edit_removes_the_slice_of_the_measured_size(tmp_path):
    script = tmp_path / "small.py"
    script.write_text("import torch\n"
                      "X_train, y_train = X_train[:256], y_train[:256]\n"
                      "X_val = X[:100]\n")
    f = {"code": "data.training-on-small-slice", "evidence": {"train_rows": 256, "source_rows": 5000}}
    edit = source_edit([("full-training-set", f)], "x", str(script))
    assert edit.line == 2 and "+X_train, y_train = X_train, y_train" in edit.diff and "-X_val" not in edit.diff


def test_edits_for_a_detach_cut_padding_and_half_precision(tmp_path):
    script = tmp_path / "tagger.py"
    script.write_text("import torch\nimport torch.nn as nn\n"
                      "model = nn.Linear(4, 3).half()\n"
                      "loss_fn = nn.CrossEntropyLoss()\n"
                      "def step(x, y):\n"
                      "    return loss_fn(model(x).detach(), y)\n")
    cut = {"code": "grad-flow.loss-detached", "evidence": {"cuts": [{"op": ".detach()", "site": "tagger.py:6"}]}}
    assert "+    return loss_fn(model(x), y)" in source_edit([("keep-gradient-path", cut)], "x", str(script)).diff
    pad = {"code": "labels.padding-not-ignored", "evidence": {"pad_target": 0}}
    assert "+loss_fn = nn.CrossEntropyLoss(ignore_index=0)" in source_edit([("ignore-padding", pad)], "x",
                                                                          str(script)).diff
    half = {"code": "dtype.half-precision-weights", "evidence": {"dtype": "float16"}}
    assert "+model = nn.Linear(4, 3).float()" in source_edit([("float32-weights", half)], "x", str(script)).diff


def test_edits_for_dampening_and_an_identity_leaky_relu(tmp_path):
    script = tmp_path / "net.py"
    script.write_text("import torch\nimport torch.nn as nn\n"
                      "model = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(True), nn.Linear(8, 8),\n"
                      "                      nn.LeakyReLU(1.0), nn.Linear(8, 2), nn.LeakyReLU(0.2, True))\n"
                      "opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, dampening=0.9)\n")
    damp = {"code": "optimizer.dampening-cancels-momentum", "location": "opt",
            "evidence": {"optimizer": "opt (SGD)", "momentum": 0.9, "dampening": 0.9}}
    diff = source_edit([("no-dampening", damp)], "x", str(script)).diff
    assert "+opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, dampening=0)" in diff, diff
    flat = {"code": "activation.identity-activation", "location": "model.1", "evidence": {"model": "model"}}
    diff = source_edit([("bend-activation", flat)], "x", str(script)).diff
    assert "nn.LeakyReLU(inplace=True), nn.Linear(8, 8)," in diff and "nn.LeakyReLU(0.01), nn.Linear(8, 2), " \
        "nn.LeakyReLU(0.2, True))" in diff, diff
    assert remedy_for(damp).name == "no-dampening" and remedy_for(flat).name == "bend-activation"  # type: ignore[union-attr]


def test_edit_resizes_masks_with_nearest(tmp_path):
    script = tmp_path / "seg.py"
    script.write_text("import torch.nn.functional as F\n"
                      "x = F.interpolate(img, size=(64, 64), mode='bilinear', align_corners=False)\n"
                      "m = F.interpolate(mask[:, None].float(), size=(64, 64), mode='bilinear', align_corners=False)\n"
                      "m2 = F.interpolate(mask[:, None].float(), (64, 64)).long()\n")
    f = {"code": "labels.mask-interpolated", "evidence": {"site": "seg.py:3", "mode": "bilinear"}}
    diff = source_edit([("nearest-mask-resize", f)], "x", str(script)).diff
    assert "+m = F.interpolate(mask[:, None].float(), size=(64, 64), mode=\"nearest\", align_corners=None)" in diff
    assert "-x = " not in diff  # the image's resize (another line) is left alone
    f["evidence"]["site"] = "seg.py:4"
    assert "+m2 = F.interpolate(mask[:, None].float(), (64, 64), mode=\"nearest\").long()" in \
        source_edit([("nearest-mask-resize", f)], "x", str(script)).diff
