"""Learning-rate range test with a suggestion that survives noisy curves and early spikes.

The sweep is the classic one: the learning rate grows exponentially from ``start_lr`` to
``end_lr`` over ``num_steps`` training steps; the loss is smoothed with a debiased EMA
(beta 0.98) and the test stops when the smoothed loss exceeds 4x its best. Model,
optimizer and RNG state are restored afterwards.

Today's rules read the EMA curve: steepest negative gradient (Lightning,
torch-lr-finder) or the longest valley (fastai). Both are fooled by noise (a steep bit of
noise wins), by early spikes, and by the EMA's lag. :func:`suggest_lr` instead works on
the raw losses: a centred running median then a centred mean (no lag, spikes removed),
finds the lr from which the loss stays well above its minimum until the end of the sweep
(where it turns up for good: a noisy dip or an early spike cannot be that point; "well
above" is 10% of the starting loss or 5 noise standard deviations of the smoothed curve,
whichever is larger, so that noise alone never makes the curve "turn up") and
returns a point a safe factor below it. It still answers when the loss barely falls
during the short sweep (LSTMs, plain SGD), where the minimum-based rules see only noise.
The factor was calibrated with ``benchmarks/lr_find.py``. A single sweep is one noisy
training run, so :func:`lr_range_test` runs ``REPEATS`` sweeps from the same start and
averages their suggestions in log space (:func:`combine_sweeps`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch

from nndoctor import catalogue
from nndoctor.experiment import Experiment, compute_loss, preserved
from nndoctor.findings import Finding, Report

__all__ = [
    "LRFindResult",
    "NOISE_SIGMAS",
    "REPEATS",
    "RISE_FRACTION",
    "SAFETY_FACTOR",
    "centred_smooth",
    "combine_sweeps",
    "ema_smooth",
    "fastai_valley",
    "geometric_mean",
    "lightning_steepest",
    "lr_find",
    "lr_findings",
    "lr_range_test",
    "suggest_lr",
]

logger = logging.getLogger("nndoctor")

#: suggestion = lr where the loss turns up for good / SAFETY_FACTOR (calibrated with
#: benchmarks/lr_find.py: the median ratio turn-up / grid-best over its 30 reference
#: task-seed cases is 6.8; 7 and 8 score alike, 6 and 10 one or two cases fewer)
SAFETY_FACTOR = 7.0
#: the loss "turns up" once it stays this fraction of its starting level above its minimum ...
RISE_FRACTION = 0.1
#: ... and at least this many noise standard deviations (of the smoothed curve, at the loss
#: level of the minimum) above it: the minimum of a noisy curve sits a few sigmas low, and
#: noise must not pass for a rise
#: (benchmarks/lr_find.py: 5 moved the noisy LayerNorm/SGD sweeps from 1/3 to 3/3 within 3x)
NOISE_SIGMAS = 5.0
#: sweeps per range test, combined by the geometric mean of their suggestions (benchmarks/lr_find.py,
#: cases within 3x of the grid-best: one sweep 32/39, two 34/39, three 35/39; see combine_sweeps)
REPEATS = 3


@dataclass
class LRFindResult:
    """The sweep and the suggestion; ``losses`` are the EMA-smoothed ones (as plotted)."""

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggested_lr: float | None
    reason: str
    lr_min: float | None = None
    stopped: str = "end"  # "end", "diverged", "non-finite"
    details: dict[str, Any] = field(default_factory=dict)
    #: every sweep (lrs, losses, raw_losses, stopped, suggested_lr, reason); the fields above
    #: hold the first one's curve and the combined suggestion
    sweeps: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"suggested_lr": self.suggested_lr, "reason": self.reason, "lr_min": self.lr_min,
                "stopped": self.stopped, "lrs": self.lrs, "losses": self.losses,
                "raw_losses": self.raw_losses, "details": self.details,
                "sweeps": [{k: sw[k] for k in ("suggested_lr", "stopped", "lrs", "raw_losses")}
                           for sw in self.sweeps]}


# ---------------------------------------------------------------------------------- smoothing
def ema_smooth(values: Sequence[float], beta: float = 0.98) -> list[float]:
    """Debiased exponential moving average (the curve today's finders plot)."""
    out, avg = [], 0.0
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def centred_smooth(values: Sequence[float], window: int) -> list[float]:
    """Centred running median (drops spikes) then centred running mean (no lag)."""
    n = len(values)
    h = max(1, window // 2)
    med = []
    for i in range(n):
        seg = sorted(values[max(0, i - h): i + h + 1])
        med.append(seg[len(seg) // 2] if len(seg) % 2 else 0.5 * (seg[len(seg) // 2 - 1] + seg[len(seg) // 2]))
    out = []
    for i in range(n):
        seg = med[max(0, i - h): i + h + 1]
        out.append(sum(seg) / len(seg))
    return out


# ---------------------------------------------------------------------------------- suggestion
def suggest_lr(lrs: Sequence[float], raw_losses: Sequence[float], *,
               safety: float = SAFETY_FACTOR,
               noise_sigmas: float = NOISE_SIGMAS) -> tuple[float | None, str, dict[str, Any]]:
    """Suggested lr from a sweep's raw losses: ``(lr or None, reason, details)``.

    The anchor is the lr where the loss turns up for good: after the minimum of the
    centred smooth, the first point from which the loss stays above that minimum by more
    than 10% of its starting level and more than ``noise_sigmas`` times the noise of the
    smoothed curve, until the end of the sweep. An early spike or a noisy dip cannot be
    that point, because the curve comes back below the threshold; on a noisy plateau the
    noise term keeps the threshold above the noise (whose level, measured at the start of
    the sweep, is scaled to the loss level at the minimum).
    """
    cut = next((i for i, v in enumerate(raw_losses) if not math.isfinite(v)), len(raw_losses))
    xs = [float(v) for v in lrs[:cut]]
    ys = [float(v) for v in raw_losses[:cut]]
    n = len(ys)
    if n < 10:
        return None, f"only {n} finite losses: the sweep diverged almost at once (lower --start-lr)", {}
    window = max(5, (n // 10) | 1)
    s = centred_smooth(ys, window)
    i_min = min(range(n), key=lambda i: s[i])
    head = sorted(s[: max(3, n // 10)])
    start = head[len(head) // 2]
    resid = sorted(abs(y - v) for y, v in zip(ys[: max(5, n // 5)], s))
    noise = resid[len(resid) // 2] * 1.4826 / math.sqrt(window)
    drop = start - s[i_min]
    # batch-loss noise scales with the loss level (per-sample squared errors and
    # cross-entropies have a spread of the order of their mean): the noise measured at the
    # start of the sweep, rescaled to the level of the minimum
    noise_at_min = noise * abs(s[i_min]) / abs(start) if start else noise
    threshold = s[i_min] + max(RISE_FRACTION * abs(start), noise_sigmas * noise_at_min)
    fell = drop > max(3 * noise, 0.02 * abs(start), 1e-12)
    rose = s[-1] > threshold or cut < len(raw_losses)
    details: dict[str, Any] = {"lr_min": xs[i_min], "loss_start": start, "loss_min": s[i_min],
                               "noise": noise, "window": window, "threshold": threshold,
                               "fell": fell, "rose": rose}
    if not fell and not rose:
        return None, ("the loss neither fell nor blew up anywhere in the sweep "
                      f"(from {start:.4g} to at best {s[i_min]:.4g}, noise {noise:.2g})"), details
    i_rise = n - 1
    if s[-1] > threshold:
        while i_rise > i_min and s[i_rise - 1] > threshold:
            i_rise -= 1
    details["lr_rise"] = xs[i_rise]
    lr = xs[i_rise] / safety
    if s[-1] > threshold:
        reason = f"{safety:g}x below lr {xs[i_rise]:.2g}, where the loss turns up for good"
    elif cut < len(raw_losses):
        reason = f"{safety:g}x below lr {xs[i_rise]:.2g}, where the loss became non-finite"
    else:
        reason = (f"{safety:g}x below the end of the sweep ({xs[i_rise]:.2g}): the loss never turned up "
                  "(a larger --end-lr may allow more)")
    if not fell:
        reason += "; the loss barely fell during the sweep, so confirm with a short run"
    return float(lr), reason, details


def lightning_steepest(lrs: Sequence[float], smoothed: Sequence[float],
                       skip_begin: int = 10, skip_end: int = 1) -> float | None:
    """PyTorch Lightning's rule: steepest negative gradient d(loss)/d(lr) of the EMA curve.

    Same computation as ``pytorch_lightning.tuner.lr_finder._LRFinder.suggestion`` (2.6):
    identical answers on all 30 curves of ``benchmarks/lr_find.py``.
    """
    lr_t = torch.tensor(list(lrs[skip_begin:-skip_end]))  # float32, as Lightning does
    loss_t = torch.tensor(list(smoothed[skip_begin:-skip_end]))
    finite = torch.isfinite(loss_t)
    lr_t, loss_t = lr_t[finite], loss_t[finite]
    if len(loss_t) < 2:
        return None
    grads = torch.gradient(loss_t, spacing=[lr_t])[0]
    kept = torch.arange(len(lrs))[skip_begin:-skip_end][finite]
    return float(lrs[int(kept[int(torch.argmin(grads))])])


def fastai_valley(lrs: Sequence[float], smoothed: Sequence[float], num_it: int = 100) -> float | None:
    """fastai's ``valley`` rule: the longest run of decreasing loss, ~2/3 of the way down it."""
    lrs = list(lrs[num_it // 10: -5])
    losses = list(smoothed[num_it // 10: -5])
    nan = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    if nan is not None:
        lrs, losses = lrs[:nan], losses[:nan]
    n = len(losses)
    if n < 2:
        return None
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx])


# ---------------------------------------------------------------------------------- the sweep
def _cycle(loader: Iterable[Any]) -> Iterable[Any]:
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            return


def _one_sweep(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               loss_of_batch: Callable[[Any], torch.Tensor], batches: Iterator[Any], scales: list[float], *,
               start_lr: float, ratio: float, num_steps: int, beta: float, diverge_factor: float,
               on_step: Callable[[int, float, float], None] | None, offset: int) -> dict[str, Any]:
    lrs: list[float] = []
    raw: list[float] = []
    smooth: list[float] = []
    stopped, avg, best = "end", 0.0, math.inf
    model.train()
    for i in range(num_steps):
        lr = start_lr * ratio ** i
        for g, sc in zip(optimizer.param_groups, scales):
            g["lr"] = lr * sc
        try:
            batch = next(batches)
        except StopIteration:
            break
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of_batch(batch)
        value = float(loss.detach())
        lrs.append(lr)
        raw.append(value)
        if not math.isfinite(value):
            smooth.append(value)
            stopped = "non-finite"
            break
        avg = beta * avg + (1 - beta) * value
        sm = avg / (1 - beta ** (i + 1))
        smooth.append(sm)
        if on_step is not None:
            on_step(offset + i, lr, sm)
        best = min(best, sm)
        if best > 0 and sm > diverge_factor * best:
            stopped = "diverged"
            break
        loss.backward()
        optimizer.step()
    lr_s, reason, details = suggest_lr(lrs, raw)
    return {"lrs": lrs, "losses": smooth, "raw_losses": raw, "stopped": stopped,
            "suggested_lr": lr_s, "reason": reason, "details": details}


def geometric_mean(values: Iterable[float | None]) -> float | None:
    """Geometric mean of the positive values given (``None`` / 0 left out); None if there are none."""
    found = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in found) / len(found)) if found else None


def combine_sweeps(sweeps: Sequence[dict[str, Any]]) -> tuple[float | None, str]:
    """One suggestion from several sweeps: the geometric mean of their suggestions.

    A single range test is one noisy training run: its turn-up point moves by a factor of
    a few from run to run (data order, a lucky or unlucky batch near the turn: 1.7x to 28x
    the grid-best lr over the non-BatchNorm tasks of ``benchmarks/lr_find.py``). Averaging
    in log space divides that spread's variance by the number of sweeps. Sweeps that found
    nothing (a flat curve) are left out.
    """
    found = [sw for sw in sweeps if sw["suggested_lr"]]
    if not found:
        return None, sweeps[0]["reason"] if sweeps else "no sweep ran"
    if len(found) == 1:
        extra = (f" (the other {len(sweeps) - 1} sweep(s) gave none)" if len(sweeps) > 1 else "")
        return float(found[0]["suggested_lr"]), found[0]["reason"] + extra
    lr = geometric_mean(sw["suggested_lr"] for sw in found)
    each = ", ".join(f"{sw['suggested_lr']:.2g}" for sw in found)
    spread = max(sw["suggested_lr"] for sw in found) / min(sw["suggested_lr"] for sw in found)
    reason = f"geometric mean of {len(found)} sweeps' suggestions ({each}); first sweep: {found[0]['reason']}"
    if spread > 9:
        reason += (f"; the sweeps disagree by {spread:.0f}x (a noisy loss near the turn): "
                   "confirm with a short run, or repeat with more --steps")
    return lr, reason


def lr_range_test(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_of_batch: Callable[[Any], torch.Tensor],
    loader: Iterable[Any],
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    beta: float = 0.98,
    diverge_factor: float = 4.0,
    repeats: int = REPEATS,
    on_step: Callable[[int, float, float], None] | None = None,
) -> LRFindResult:
    """Sweep the lr exponentially and record the loss; everything is restored afterwards.

    ``repeats`` sweeps start from the same weights and optimizer state, on successive batches
    of the loader; the suggestion is the geometric mean of theirs (:func:`combine_sweeps`).
    The result's curve is the first sweep's; ``sweeps`` holds all of them. ``on_step`` gets
    the step index counted over all sweeps (``num_steps * repeats`` at most).
    """
    if not (0 < start_lr < end_lr):
        raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr!r}, {end_lr!r}")
    if num_steps < 10:
        raise ValueError(f"num_steps must be >= 10, got {num_steps!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats!r}")
    base = [float(g["lr"]) for g in optimizer.param_groups]
    top = max(base) if max(base) > 0 else 1.0
    scales = [b / top if top else 1.0 for b in base]
    ratio = (end_lr / start_lr) ** (1 / (num_steps - 1))
    sweeps: list[dict[str, Any]] = []
    with preserved(model, optimizer):
        batches = iter(_cycle(loader))
        for r in range(repeats):
            # each sweep from the same start (weights, optimizer state); the RNG and the
            # batches run on, so that the sweeps see different batches and dropout masks
            with preserved(model, optimizer, rng=False):
                sweeps.append(_one_sweep(model, optimizer, loss_of_batch, batches, scales, start_lr=start_lr,
                                         ratio=ratio, num_steps=num_steps, beta=beta,
                                         diverge_factor=diverge_factor, on_step=on_step, offset=r * num_steps))
            if not sweeps[-1]["lrs"]:
                break  # the loader is empty
    first = sweeps[0]
    lr, reason = combine_sweeps(sweeps)
    details = dict(first["details"])
    details["sweeps"] = [{"suggested_lr": sw["suggested_lr"], "stopped": sw["stopped"],
                          "lr_end": sw["lrs"][-1] if sw["lrs"] else None} for sw in sweeps]
    diverged = [sw["lrs"][-1] for sw in sweeps if sw["stopped"] != "end" and sw["lrs"]]
    stopped = first["stopped"]
    if diverged and stopped == "end":
        stopped = next(sw["stopped"] for sw in sweeps if sw["stopped"] != "end")
    if diverged:
        details["diverged_at"] = min(diverged)
    return LRFindResult(lrs=first["lrs"], losses=first["losses"], raw_losses=first["raw_losses"],
                        suggested_lr=lr, reason=reason, lr_min=details.get("lr_min"), stopped=stopped,
                        details=details, sweeps=sweeps)


def lr_find(exp: Experiment, *, start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 100,
            repeats: int = REPEATS,
            on_step: Callable[[int, float, float], None] | None = None) -> LRFindResult:
    """The range test on an :class:`Experiment` (its own loss or custom step)."""
    assert exp.optimizer is not None
    return lr_range_test(exp.model, exp.optimizer, lambda b: compute_loss(exp, b), exp.train,
                         start_lr=start_lr, end_lr=end_lr, num_steps=num_steps, repeats=repeats,
                         on_step=on_step)


def lr_findings(result: LRFindResult, current_lr: float) -> Report:
    """Findings comparing the optimizer's current lr with the range test."""
    findings: list[Finding] = []
    ev = {"current_lr": current_lr, "suggested_lr": result.suggested_lr, "lr_min": result.lr_min,
          "stopped": result.stopped}
    diverged_at = result.details.get("diverged_at")
    if diverged_at is None and result.stopped in ("diverged", "non-finite") and result.lrs:
        diverged_at = result.lrs[-1]
    if diverged_at is not None:
        ev["diverged_at"] = diverged_at
    if result.suggested_lr is None:
        findings.append(catalogue.finding(
            "lr.range-test-no-decrease",
            message=f"the range test found no learning rate at which the loss falls: {result.reason}",
            evidence=ev))
    elif diverged_at is not None and current_lr >= diverged_at:
        findings.append(catalogue.finding(
            "lr.above-divergence",
            message=(f"the current lr {current_lr:.3g} is at or above {diverged_at:.3g}, where the range "
                     "test's loss blew up: training will diverge"),
            evidence=ev))
    elif current_lr > 10 * result.suggested_lr or current_lr < result.suggested_lr / 30:
        findings.append(catalogue.finding(
            "lr.range-test-suggestion",
            message=(f"the current lr {current_lr:.3g} is "
                     f"{'above' if current_lr > result.suggested_lr else 'below'} the range test's "
                     f"suggestion {result.suggested_lr:.3g}"),
            evidence=ev))
    return Report(findings=findings, facts={"command": "lr-find", **ev})
