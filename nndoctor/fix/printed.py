"""The metrics a script prints itself, read from its last lines: ``name=value`` pairs, and metrics named
by a word that is not right before its number.

A script that scores its evaluation outside torch (``np.mean(pred.argmax(1) == y)``, a numpy RMSE,
scikit-learn) shows nndoctor no evaluation loss: its printed line is the only yardstick a remedy can be
judged by, so it must be read whatever its wording:

* ``acc=0.91``, ``val_rmse: 0.53``, ``'val_acc': 0.91`` (a printed dict), ``loss 0.2``: the name right
  before the number;
* ``Accuracy of the network on the 10000 test images: 93 %``, ``val RMSE (numpy): 0.5321``,
  ``Accuracy at epoch 12: 0.93``: a metric word (:data:`METRIC_WORDS`) with no number of its own names
  the numbers after it up to the next metric: the one with a ``%``, else the last;
* numpy / torch scalars printed by their repr (``np.float64(0.91)``, ``tensor(0.9100)``) are their value.

A percentage is read as a share (``93 %`` -> 0.93). Direction: :func:`direction` (accuracy up, error down).
"""

from __future__ import annotations

import re

__all__ = ["METRIC_WORDS", "direction", "script_metrics"]

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PAIR = re.compile(rf"([A-Za-z][A-Za-z0-9_@]*)['\"]?\s*[=:]?\s*({_NUMBER})(\s?%)?(?![A-Za-z0-9_])")
_BARE = re.compile(rf"(?<![A-Za-z0-9_.])({_NUMBER})(\s?%)?(?![A-Za-z0-9_.])")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_@]*")
_WRAPPED = re.compile(rf"\b(?:np\.|numpy\.)?(?:float(?:16|32|64)|tensor|array)\(\s*({_NUMBER})[^()]*\)")
_HIGHER = ("acc", "f1", "auc", "r2", "precision", "recall", "score", "iou", "dice", "bleu")
_LOWER = ("loss", "error", "err", "mse", "rmse", "mae", "perplexity", "ppl", "nll", "bpc", "cost")
#: whole words (or ``_``-separated parts of a name) of a known direction: substrings would be too loose
_HIGHER_WORDS = frozenset({"top1", "top5", "correct", "psnr", "ssim", "ndcg", "hits", "map"})
_LOWER_WORDS = frozenset({"mape", "smape", "msle", "rmsle", "wer", "cer"})
#: words that name a metric by themselves (what a number printed after them measures)
METRIC_WORDS = frozenset({"accuracy", "acc", "error", "err", "loss", "mse", "rmse", "mae", "f1", "auc", "r2",
                          "precision", "recall", "iou", "dice", "bleu", "perplexity", "ppl", "nll"}
                         | _HIGHER_WORDS | _LOWER_WORDS)


def _parts(name: str) -> list[str]:
    return [p for p in re.split(r"[_\W]+", name.lower()) if p]


def direction(name: str) -> int:
    """+1 when a higher value is better, -1 when lower is, 0 when unknown."""
    parts = _parts(name)
    if any(p in _LOWER_WORDS for p in parts):
        return -1
    if any(p in _HIGHER_WORDS for p in parts):
        return 1
    low = name.lower()
    if any(k in low for k in _LOWER):
        return -1
    if any(k in low for k in _HIGHER):
        return 1
    return 0


def _metric_word(word: str) -> bool:
    return any(p in METRIC_WORDS or p.rstrip("s") in METRIC_WORDS for p in _parts(word))


def _value(number: str, pct: str) -> float:
    return float(number) / (100.0 if pct and pct.strip() else 1.0)


def _line_metrics(line: str) -> dict[str, float]:
    line = _WRAPPED.sub(r"\1", line)
    out: dict[str, float] = {}
    pairs = list(_PAIR.finditer(line))
    for m in pairs:
        out[m.group(1)] = _value(m.group(2), m.group(3))
    named = {m.start(1) for m in pairs if direction(m.group(1))}  # metric names with their own number
    free = [w for w in _WORD.finditer(line) if w.start() not in named and _metric_word(w.group())]
    if not free:
        return out
    ends = [w.start() for w in free[1:]] + [len(line)]
    stops = sorted(named)
    for word, end in zip(free, ends):
        end = min([end] + [s for s in stops if s > word.start()])
        numbers = [n for n in _BARE.finditer(line, word.end(), end)]
        if numbers:
            pick = next((n for n in numbers if n.group(2) and n.group(2).strip()), numbers[-1])
            out[word.group()] = _value(pick.group(1), pick.group(2))
    return out


def script_metrics(stdout: str, lines: int = 5) -> dict[str, float]:
    """The metrics of the script's last printed lines (last wins)."""
    tail = [ln for ln in stdout.splitlines() if ln.strip()][-lines:]
    out: dict[str, float] = {}
    for line in tail:
        out.update(_line_metrics(line))
    return out
