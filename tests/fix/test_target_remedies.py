"""The remedies of nndoctor.fix.target_remedies: a softmax over the batch, over one unit or against
multi-hot targets, and BCE targets outside [0, 1]; each injected bug trains exactly like its fixed
twin with the remedy, and healthy code is untouched."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import apply_remedy as _apply


def _train(head, loss_fn, y: torch.Tensor, out: int, steps: int = 40) -> list[float]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(y.shape[0], 6, generator=g) + (y.float().reshape(y.shape[0], -1)[:, :1] > 0).float()
    body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, out))
    opt = torch.optim.Adam(body.parameters(), lr=1e-2)
    losses = []
    for i in range(steps):
        xb, yb = x[i % 4 * 30:(i % 4 + 1) * 30], y[i % 4 * 30:(i % 4 + 1) * 30]
        loss = loss_fn(head(body(xb)), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_softmax_over_the_batch_is_taken_over_the_classes_like_the_twin():
    y = torch.arange(120) % 3
    nll = lambda p, t: F.nll_loss(torch.log(p), t)  # noqa: E731
    twin = _train(lambda z: torch.softmax(z, 1), nll, y, 3)
    bug = _train(lambda z: torch.softmax(z, 0), nll, y, 3)
    with _apply("loss-input.softmax-over-batch-dim", "model", input_shape=(30, 3), dim=0):
        fixed = _train(lambda z: torch.softmax(z, 0), nll, y, 3)
        module = _train(nn.Softmax(dim=0), nll, y, 3)
        method = _train(lambda z: z.softmax(0), nll, y, 3)
        healthy = _train(lambda z: torch.softmax(z, 1), nll, y, 3)
        attention = torch.softmax(torch.ones(4, 5), 0)     # another shape: left alone
    assert fixed == twin and module == twin and method == twin and healthy == twin and bug[-1] > twin[-1]
    assert torch.allclose(attention, torch.full((4, 5), 0.25))


def test_softmax_over_one_unit_becomes_a_sigmoid_like_the_twin():
    y = (torch.arange(120) % 2).float().unsqueeze(1)
    twin = _train(torch.sigmoid, F.binary_cross_entropy, y, 1)
    bug = _train(lambda z: F.softmax(z, dim=1), F.binary_cross_entropy, y, 1)
    with _apply("loss-input.softmax-over-one-unit", "model", input_shape=(30, 1), dim=1, activation="softmax"):
        fixed = _train(lambda z: F.softmax(z, dim=1), F.binary_cross_entropy, y, 1)
        healthy = _train(torch.sigmoid, F.binary_cross_entropy, y, 1)
        classes = F.softmax(torch.zeros(30, 4), dim=1)     # a real class softmax (4 units): left alone
    assert fixed == twin and healthy == twin and len(set(bug)) <= 2
    assert torch.allclose(classes, torch.full((30, 4), 0.25))


def test_softmax_against_multi_hot_targets_becomes_a_sigmoid_like_the_twin():
    y = torch.stack([torch.arange(120) % 2, torch.arange(120) % 3 == 0, torch.ones(120)], 1).float()
    twin = _train(torch.sigmoid, F.binary_cross_entropy, y, 3)
    bug = _train(lambda z: F.softmax(z, dim=-1), F.binary_cross_entropy, y, 3)
    with _apply("loss-input.softmax-multi-label-targets", "model", input_shape=(30, 3), dim=1):
        fixed = _train(lambda z: F.softmax(z, dim=-1), F.binary_cross_entropy, y, 3)
    assert fixed == twin and bug[-1] > twin[-1]


def test_bce_targets_of_0_and_255_are_mapped_onto_0_and_1_like_the_twin():
    y = (torch.arange(120) % 2).float().unsqueeze(1)
    bce = nn.BCEWithLogitsLoss()
    twin = _train(lambda z: z, bce, y, 1)
    bug = _train(lambda z: z, bce, y * 255, 1)
    with _apply("preprocessing.bce-target-out-of-range", "train.py:9", target_min=0.0, target_max=255.0):
        fixed = _train(lambda z: z, bce, y * 255, 1)
        healthy = _train(lambda z: z, bce, y, 1)
        soft = F.binary_cross_entropy_with_logits(torch.zeros(4), torch.full((4,), 0.3))
    assert fixed == twin and healthy == twin and min(bug) < 0 < min(twin)
    assert torch.equal(soft, F.binary_cross_entropy_with_logits(torch.zeros(4), torch.full((4,), 0.3)))


def _distil(student_out, target_of, log_target: bool = False, steps: int = 60) -> float:
    """A student matches a fixed teacher distribution; returns the true KL(teacher || student)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(64, 5, generator=g)
    teacher = torch.softmax(x @ torch.randn(5, 4, generator=g), -1)
    student = nn.Linear(5, 4)
    opt = torch.optim.Adam(student.parameters(), lr=5e-2)
    kl = nn.KLDivLoss(reduction="batchmean", log_target=log_target)
    for _ in range(steps):
        loss = kl(student_out(student(x)), target_of(teacher))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((teacher * (teacher.log() - torch.log_softmax(student(x), -1))).sum(-1).mean())


def test_probabilities_into_kl_div_get_their_log_like_the_twin():
    logsm, sm = (lambda z: torch.log_softmax(z, -1)), (lambda z: torch.softmax(z, -1))
    twin, bug = _distil(logsm, lambda t: t), _distil(sm, lambda t: t)
    with _apply("loss-input.probabilities-into-kl-div", "train.py:12", input_shape=(64, 4)):
        fixed = _distil(sm, lambda t: t)
        healthy = _distil(logsm, lambda t: t)
    assert healthy == twin and abs(fixed - twin) < 1e-3 < bug - twin


def test_log_probability_target_of_kl_div_is_read_with_log_target_like_the_twin():
    logsm = lambda z: torch.log_softmax(z, -1)  # noqa: E731
    twin = _distil(logsm, torch.log, log_target=True)
    bug = _distil(logsm, torch.log)
    with _apply("loss-input.log-probabilities-as-kl-div-target", "train.py:12"):
        fixed = _distil(logsm, torch.log)
        healthy = _distil(logsm, lambda t: t)
    assert fixed == twin and bug > twin + 1e-2 and healthy == _distil(logsm, lambda t: t)


def _fit_tagger(ignore: int, module: bool = False) -> list[float]:
    """A tagger over padded sequences (token 0 pads, its target 0); the losses on real positions."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(4)
    tokens = torch.randint(1, 9, (16, 10), generator=g)
    tokens[:, 6:] = 0
    tags = torch.where(tokens > 0, tokens % 3 + 1, torch.zeros_like(tokens))
    emb, head = nn.Embedding(9, 8, padding_idx=0), nn.Linear(8, 4)
    opt = torch.optim.Adam([*emb.parameters(), *head.parameters()], lr=1e-2)
    loss_fn = nn.CrossEntropyLoss(ignore_index=ignore) if module else (
        lambda z, t: F.cross_entropy(z, t, ignore_index=ignore))
    out = []
    for _ in range(20):
        loss = loss_fn(head(emb(tokens)).reshape(-1, 4), tags.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(float(loss))
    return out


def test_padding_target_is_ignored_like_the_twin():
    twin, bug = _fit_tagger(0), _fit_tagger(-100)
    with _apply("labels.padding-not-ignored", "model", pad_target=0, pad_value=0, loss="F.cross_entropy"):
        fixed, module = _fit_tagger(-100), _fit_tagger(-100, module=True)
        healthy = _fit_tagger(0)
    assert fixed == twin and module == twin and healthy == twin and bug != twin


def _fit_segmenter(mode: str, steps: int = 12) -> list[float]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(5)
    masks = torch.zeros(16, 24, 24, dtype=torch.long)
    for i in range(16):
        r, c = torch.randint(2, 14, (2,), generator=g).tolist()
        masks[i, r:r + 8, c:c + 8] = 1 + i % 3
    images = F.interpolate(masks[:, None].float() / 3 + 0.1 * torch.randn(16, 1, 24, 24, generator=g),
                           size=(12, 12), mode="bilinear")  # an image: resized bilinearly in both runs
    small = F.interpolate(masks[:, None].float(), size=(12, 12), mode=mode).long()[:, 0]
    model = nn.Conv2d(1, 4, 3, padding=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(F.interpolate(model(images), size=(12, 12), mode="bilinear"), small)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_interpolated_masks_are_resized_nearest_like_the_twin():
    twin, bug = _fit_segmenter("nearest"), _fit_segmenter("bilinear")
    with _apply("labels.mask-interpolated", "", mode="bilinear", in_shape=[16, 1, 24, 24]):
        fixed, area = _fit_segmenter("bilinear"), _fit_segmenter("area")
        healthy = _fit_segmenter("nearest")
    assert fixed == twin and area == twin and healthy == twin and bug != twin
