"""Evaluation inputs trained on without their labels (DANN, semi-supervised steps): a transductive
``info``, not data.train-test-leakage; labelled copies of evaluation rows are still leakage."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer, Schedule
from nndoctor.monitor.checks.data.leakage import TrainEvalLeakage
from nndoctor.monitor.checks.data.sample import DataCollector
from nndoctor.monitor.checks.data.unlabelled import UnlabelledBatches, reached

CHECKS = [DataCollector, UnlabelledBatches, TrainEvalLeakage]
LEAK, TRANSDUCTIVE = "data.train-test-leakage", "data.transductive-evaluation"


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return -0.1 * g


def _domains(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)

    def make(shift):
        y = torch.randint(0, 2, (n,), generator=g)
        x = torch.randn(n, 8, generator=g) + (2 * y[:, None] - 1) * 0.8
        x[:, 4:] += shift
        return x, y
    return make(0.0), make(1.5)


def _nets():
    torch.manual_seed(0)
    feat = nn.Sequential(nn.Linear(8, 32), nn.ReLU())
    return feat, nn.Linear(32, 2), nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 2))


def _run(step_fn, x_eval, y_eval, steps=150):
    feat, clf, dom = _nets()
    params = list(feat.parameters()) + list(clf.parameters()) + list(dom.parameters())
    opt = torch.optim.Adam(params, 1e-3)
    with Observer(checks=CHECKS, schedule=Schedule(dense=10, every=3)) as obs:
        for step in range(steps):
            opt.zero_grad()
            step_fn(step, feat, clf, dom).backward()
            opt.step()
        with torch.no_grad():
            (clf(feat(x_eval)).argmax(1) == y_eval).float().mean()
    return obs.report()


def _codes(report):
    return {f.code: f for f in report.findings}


def test_dann_with_one_domain_loss_over_both_batches_is_transductive_not_leakage():
    (xs, ys), (xt, yt) = _domains()

    def step(i, feat, clf, dom):
        a, b = torch.randint(0, 600, (32,)), torch.randint(0, 400, (32,))
        fs, ft = feat(xs[a]), feat(xt[b])
        d = dom(_Reverse.apply(torch.cat([fs, ft])))
        return F.cross_entropy(clf(fs), ys[a]) + F.cross_entropy(d, torch.cat([torch.zeros(32), torch.ones(32)]).long())
    codes = _codes(_run(step, xt[300:], yt[300:]))  # a third of it adapted to
    assert LEAK not in codes
    f = codes[TRANSDUCTIVE]
    assert f.severity.value == "info" and f.evidence["shared_without_labels"] >= 3


def test_domain_losses_per_batch_and_a_label_free_loss_are_transductive():
    (xs, ys), (xt, yt) = _domains(seed=1)

    def per_batch(i, feat, clf, dom):  # separate domain losses, one constant target each
        a, b = torch.randint(0, 600, (32,)), torch.randint(0, 400, (32,))
        fs, ft = feat(xs[a]), feat(xt[b])
        return (F.cross_entropy(clf(fs), ys[a]) + F.cross_entropy(dom(_Reverse.apply(fs)), torch.zeros(32).long())
                + F.cross_entropy(dom(_Reverse.apply(ft)), torch.ones(32).long()))

    def entropy(i, feat, clf, dom):  # semi-supervised: entropy minimisation on the unlabelled batch
        a, b = torch.randint(0, 600, (32,)), torch.randint(0, 400, (32,))
        p = clf(feat(xt[b])).softmax(1)
        return F.cross_entropy(clf(feat(xs[a])), ys[a]) - 0.1 * (p * p.clamp_min(1e-8).log()).sum(1).mean()
    for fn in (per_batch, entropy):
        codes = _codes(_run(fn, xt[300:], yt[300:]))  # a third of it adapted to
        assert LEAK not in codes and TRANSDUCTIVE in codes, fn.__name__


def test_labelled_copies_of_evaluation_rows_are_still_leakage():
    (xs, ys), (xt, yt) = _domains(seed=2)
    x_eval, y_eval = torch.cat([xt[:300], xs[:300]]), torch.cat([yt[:300], ys[:300]])  # 300 labelled training rows

    def dann(i, feat, clf, dom):  # the source (labelled) rows are the ones in the evaluation set
        a, b = torch.randint(0, 300, (32,)), torch.randint(300, 600, (32,))
        fs, ft = feat(xs[a]), feat(xt[b])
        d = dom(_Reverse.apply(torch.cat([fs, ft])))
        return F.cross_entropy(clf(fs), ys[a]) + F.cross_entropy(d, torch.cat([torch.zeros(32), torch.ones(32)]).long())

    def two_labelled(i, feat, clf, dom):  # two labelled batches a step: both labelled
        a, b = torch.randint(0, 300, (32,)), torch.randint(300, 600, (32,))
        return F.cross_entropy(clf(feat(xs[a])), ys[a]) + F.cross_entropy(clf(feat(xt[b])), yt[b])
    for fn in (dann, two_labelled):
        codes = _codes(_run(fn, x_eval, y_eval))
        assert codes[LEAK].severity.value == "warning" and TRANSDUCTIVE not in codes, fn.__name__


def test_graph_walk_finds_only_the_outputs_behind_a_loss():
    a, b = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    oa, ob = a * 2, b * 3
    loss = (oa + 1).sum()
    assert reached(loss.grad_fn, [oa.grad_fn, ob.grad_fn]) == {0}
    assert reached((oa * ob).sum().grad_fn, [oa.grad_fn, ob.grad_fn]) == {0, 1}
    assert reached(None, [oa.grad_fn]) == set()
