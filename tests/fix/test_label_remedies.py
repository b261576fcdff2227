"""The small-loss remedy for randomly wrong labels: injected noise -> the re-run trains closer to
the clean twin; evaluation passes, other losses and clean training are left as they were."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy as _apply

from nndoctor.fix.label_remedies import drop_share, noise_share
from nndoctor.fix.remedies import remedy_for

EPOCHS, N, BATCH = 15, 800, 64
STEPS = EPOCHS * (N // BATCH + 1)
EVIDENCE = {"confident_disagreement": 0.3, "noise_rate": 0.35}


def _run(noise: float, style: str) -> float:
    """Held-out accuracy of an MLP trained on 4 blobs whose labels are replaced at random with probability ``noise``."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    centers = torch.randn(4, 10, generator=g) * 1.2

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 4, (n,), generator=g)
        return centers[y] + torch.randn(n, 10, generator=g), y

    x, y = make(N)
    xv, yv = make(800)
    flip = torch.rand(N, generator=g) < noise
    y = torch.where(flip, torch.randint(0, 4, (N,), generator=g), y)
    model = nn.Sequential(nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 4))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    criterion = nn.CrossEntropyLoss()
    for _ in range(EPOCHS):
        perm = torch.randperm(N)
        for i in range(0, N, BATCH):
            idx = perm[i:i + BATCH]
            out = model(x[idx])
            loss = criterion(out, y[idx]) if style == "module" else F.nll_loss(F.log_softmax(out, 1), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return float((model(xv).argmax(1) == yv).float().mean())


@pytest.mark.parametrize("style", ["module", "functional-nll"])
def test_noisy_labels_small_loss_trains_closer_to_the_clean_twin_and_clean_labels_lose_nothing(style: str) -> None:
    twin, bug = _run(0.0, style), _run(0.4, style)
    finding = {"code": "labels.noisy", "first_step": STEPS, "evidence": EVIDENCE}
    remedy = remedy_for(finding)
    assert remedy is not None and remedy.name == "drop-high-loss-examples"
    with _apply("labels.noisy", "training labels", **EVIDENCE) as stack:
        stack  # noqa: B018 - installed for the block
        fixed = _run(0.4, style)
        clean = _run(0.0, style) if style == "module" else twin     # (one style is enough for the cost)
    assert twin - bug > 0.03, (twin, bug)
    assert fixed - bug >= 0.5 * (twin - bug), (bug, fixed, twin)
    assert clean >= twin - 0.01, (clean, twin)


def test_evaluation_soft_targets_and_other_reductions_are_untouched() -> None:
    torch.manual_seed(0)
    logits = torch.randn(32, 5, requires_grad=True)
    y = torch.randint(0, 5, (32,))
    soft = torch.softmax(torch.randn(32, 5), 1)
    plain = {"summed": F.cross_entropy(logits, y, reduction="sum"), "soft": F.cross_entropy(logits, soft),
             "weighted": F.cross_entropy(logits, y, weight=torch.ones(5))}
    with torch.no_grad():
        plain["eval"] = F.cross_entropy(logits, y)
    first = F.cross_entropy(logits, y)
    with _apply("labels.noisy", "training labels", **EVIDENCE):
        # the first training call leaves out nothing: the same mean
        assert torch.allclose(F.cross_entropy(logits, y), first)
        assert torch.equal(F.cross_entropy(logits, y, reduction="sum"), plain["summed"])
        assert torch.equal(F.cross_entropy(logits, soft), plain["soft"])
        assert torch.equal(F.cross_entropy(logits, y, weight=torch.ones(5)), plain["weighted"])
        with torch.no_grad():
            assert torch.equal(F.cross_entropy(logits, y), plain["eval"])
    assert torch.equal(F.cross_entropy(logits, y), first)           # gone with its stack


def test_after_the_ramp_the_highest_misclassified_losses_are_left_out_never_right_ones() -> None:
    logits = torch.zeros(10, 2, requires_grad=True)
    with torch.no_grad():
        logits[:, 0] = torch.arange(10.0)                  # example i: class 0 is ever more likely
    y = torch.ones(10, dtype=torch.long)                   # so the loss of class 1 grows with i
    y[0] = -100                                            # ignored
    per = F.cross_entropy(logits, y, reduction="none")
    # a batch the model gets right (clean labels, late in training): nothing is left out
    right = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [0.5, 0.0, 0.0]], requires_grad=True)
    labels = torch.tensor([0, 1, 2, 0])
    with _apply("labels.noisy", "training labels", confident_disagreement=0.5, noise_rate=0.5):
        for _ in range(60):
            out = F.cross_entropy(logits, y)
            kept = F.cross_entropy(right, labels)
    # 9 valid examples, all misclassified, 50% (4) left out: the mean of examples 1..5
    assert torch.allclose(out, per[1:6].mean())
    assert torch.allclose(kept, F.cross_entropy(right, labels))
    assert drop_share(0.3, 0, 10) == 0 and drop_share(0.3, 5, 10) == pytest.approx(0.15)
    assert noise_share({"evidence": {"confident_disagreement": 0.9}}) == 0.5 and noise_share({"evidence": {}}) == 0
    assert remedy_for({"code": "labels.noisy", "evidence": {}}) is None
