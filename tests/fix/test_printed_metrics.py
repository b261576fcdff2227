"""Scripts that score their evaluation with numpy only (no torch loss on the evaluation data): the verdict on a
remedy reads the script's own last printed metric, whatever its wording, and judges it the right way (accuracy
up, error down). Three styles, printed by real runs: the PyTorch tutorial's accuracy sentence with a percentage,
a numpy RMSE printed per epoch after a parenthesis, a printed dict of numpy scalars."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.fix.metrics import figures_of, judge, script_yardstick
from nndoctor.fix.printed import direction, script_metrics


def _classify(lr: float, style: str) -> str:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 8, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for epoch in range(5):
            for i in range(0, 400, 40):
                opt.zero_grad()
                F.cross_entropy(model(x[i:i + 40]), y[i:i + 40]).backward()
                opt.step()
            with torch.no_grad():
                pred = model(x[400:]).numpy()
            acc = np.mean(pred.argmax(1) == y[400:].numpy())
            if style == "tutorial":
                print(f"[{epoch + 1}] done")
            else:
                print({"epoch": epoch, "val_acc": acc, "n": 200})
        if style == "tutorial":
            print(f"Accuracy of the network on the {200} test rows: {100 * acc:.1f} %")
    return out.getvalue()


def _regress(lr: float) -> str:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(500, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(500, 1, generator=g)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for epoch in range(10):
            for i in range(0, 400, 50):
                opt.zero_grad()
                F.mse_loss(model(x[i:i + 50]), y[i:i + 50]).backward()
                opt.step()
            pred = model(x[400:]).detach().numpy()
            rmse = float(np.sqrt(np.mean((pred - y[400:].numpy()) ** 2)))
            print(epoch, "val RMSE (numpy):", round(rmse, 4))
    return out.getvalue()


def _figures(stdout: str):  # (no nndoctor report: the printed line is the only yardstick)
    return figures_of({"exit_code": 0, "report": None}, stdout)


def test_the_printed_metric_is_read_and_judged_the_right_way_in_three_styles() -> None:
    runs = {"tutorial": (_classify(0.001, "tutorial"), _classify(0.1, "tutorial"), "Accuracy"),
            "dict": (_classify(0.001, "dict"), _classify(0.1, "dict"), "val_acc"),
            "rmse": (_regress(0.001), _regress(0.05), "RMSE")}
    for style, (bad, good, name) in runs.items():
        before, after = _figures(bad), _figures(good)
        assert script_yardstick(before.script) == name, (style, before.script)
        assert before.eval_loss is None
        v = judge(before, after, before)
        assert v.metric == f"script:{name}" and v.verdict == "verified", (style, v)
        assert judge(after, before, after).verdict == "worse", style
    assert 0 < _figures(runs["tutorial"][1]).script["Accuracy"] <= 1  # (a percentage read as a share)


def test_metric_words_and_wrapped_scalars() -> None:
    got = script_metrics("Accuracy at epoch 12: 0.93\ntest acc tensor(0.9100)\nepoch 3 mape 12.5%\n"
                         "accumulating over 4 batches\n")
    assert got["Accuracy"] == 0.93 and got["acc"] == 0.91 and got["mape"] == 0.125
    assert direction("mape") == -1 and direction("val_wer") == -1 and direction("top1") == 1
    assert direction("answer") == 0 and "accumulating" not in got
    assert script_metrics("loss 0.2, acc 0.9 (n=500)") == {"loss": 0.2, "acc": 0.9, "n": 500.0}
