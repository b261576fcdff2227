"""Tiny inline-SVG charts for the HTML report: no plotting library, no network, no JavaScript.

Every chart scales to its container (``viewBox`` + ``width: 100%``) so it stays legible
on a phone and on a laptop.
"""

from __future__ import annotations

import math
from html import escape
from typing import Sequence

__all__ = ["hbars", "line_chart", "stacked_bar"]

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04")


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-2:
        return f"{v:.0e}"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def _finite(xs: Sequence[float], ys: Sequence[float], log_y: bool) -> list[tuple[float, float]]:
    out = []
    for x, y in zip(xs, ys):
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
            continue
        if log_y and y <= 0:
            continue
        out.append((float(x), math.log10(y) if log_y else float(y)))
    return out


def line_chart(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str = "",
    x_label: str = "step",
    y_label: str = "",
    log_x: bool = False,
    log_y: bool = False,
    markers: Sequence[tuple[float, str]] = (),
    width: int = 640,
    height: int = 260,
) -> str:
    """Lines for each named series; vertical markers (x, label) for events such as a symptom."""
    pts = {name: _finite([math.log10(x) if log_x and x > 0 else (x if not log_x else float("nan")) for x in xs],
                         ys, log_y) for name, (xs, ys) in series.items()}
    allp = [p for v in pts.values() for p in v]
    if not allp:
        return f'<p class="muted">{escape(title)}: no data</p>'
    x0, x1 = min(p[0] for p in allp), max(p[0] for p in allp)
    y0, y1 = min(p[1] for p in allp), max(p[1] for p in allp)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    pad_l, pad_r, pad_t, pad_b = 56, 12, 28, 36
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def sx(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * w

    def sy(y: float) -> float:
        return pad_t + h - (y - y0) / (y1 - y0) * h

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{pad_l}" y="16" class="ct">{escape(title)}</text>',
             f'<rect x="{pad_l}" y="{pad_t}" width="{w}" height="{h}" class="frame"/>']
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        label = _fmt(10**yv if log_y else yv)
        parts.append(f'<line x1="{pad_l}" x2="{pad_l + w}" y1="{sy(yv):.1f}" y2="{sy(yv):.1f}" class="grid"/>')
        parts.append(f'<text x="{pad_l - 4}" y="{sy(yv) + 4:.1f}" class="tick" text-anchor="end">{label}</text>')
    for i in range(5):
        xv = x0 + (x1 - x0) * i / 4
        label = _fmt(10**xv if log_x else (round(xv) if x1 - x0 >= 8 else xv))
        parts.append(f'<text x="{sx(xv):.1f}" y="{pad_t + h + 14}" class="tick" text-anchor="middle">{label}</text>')
    parts.append(f'<text x="{pad_l + w / 2:.0f}" y="{height - 4}" class="tick" text-anchor="middle">'
                 f'{escape(x_label)}</text>')
    if y_label:
        parts.append(f'<text x="12" y="{pad_t + h / 2:.0f}" class="tick" transform="rotate(-90 12 '
                     f'{pad_t + h / 2:.0f})" text-anchor="middle">{escape(y_label)}</text>')
    for i, (name, p) in enumerate(pts.items()):
        if not p:
            continue
        color = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{'M' if j == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for j, (x, y) in enumerate(p))
        parts.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        parts.append(f'<text x="{pad_l + w - 4}" y="{pad_t + 14 + 14 * i}" class="legend" text-anchor="end" '
                     f'fill="{color}">{escape(name)}</text>')
    for x, label in markers:
        xv = math.log10(x) if log_x and x > 0 else x
        if not (x0 <= xv <= x1):
            continue
        parts.append(f'<line x1="{sx(xv):.1f}" x2="{sx(xv):.1f}" y1="{pad_t}" y2="{pad_t + h}" class="marker"/>')
        parts.append(f'<text x="{sx(xv) + 3:.1f}" y="{pad_t + h - 6}" class="mlabel">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_bar(parts: Sequence[tuple[str, float]], *, title: str = "", width: int = 640, height: int = 96) -> str:
    """One horizontal bar split into named parts (the decomposition: irreducible, bias, ...)."""
    vals = [(n, max(v, 0.0)) for n, v in parts]
    total = sum(v for _, v in vals) or 1.0
    pad = 8
    w = width - 2 * pad
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f'<text x="{pad}" y="16" class="ct">{escape(title)}</text>']
    x = float(pad)
    for i, (name, v) in enumerate(vals):
        bw = v / total * w
        color = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x:.1f}" y="26" width="{bw:.1f}" height="28" fill="{color}"><title>{escape(name)}: '
                   f'{v:.4f}</title></rect>')
        x += bw
    lx = float(pad)
    for i, (name, v) in enumerate(vals):
        color = PALETTE[i % len(PALETTE)]
        label = f"{name} {v:.3f}"
        out.append(f'<rect x="{lx:.1f}" y="66" width="10" height="10" fill="{color}"/>'
                   f'<text x="{lx + 14:.1f}" y="75" class="tick">{escape(label)}</text>')
        lx += 14 + 7 * len(label) + 12
    out.append("</svg>")
    return "".join(out)


def hbars(items: Sequence[tuple[str, float]], *, title: str = "", unit: str = "", width: int = 640,
          max_value: float | None = None) -> str:
    """Labelled horizontal bars (per-layer dead share, hyperparameter importance...)."""
    if not items:
        return ""
    row = 22
    height = 30 + row * len(items)
    top = max_value or max(v for _, v in items) or 1.0
    label_w = min(220, 8 + 7 * max(len(n) for n, _ in items))
    w = width - label_w - 70
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f'<text x="4" y="16" class="ct">{escape(title)}</text>']
    for i, (name, v) in enumerate(items):
        y = 26 + i * row
        bw = max(0.0, min(v / top, 1.0)) * w
        out.append(f'<text x="{label_w - 6}" y="{y + 14}" class="tick" text-anchor="end">{escape(name[:32])}</text>'
                   f'<rect x="{label_w}" y="{y + 3}" width="{bw:.1f}" height="15" fill="{PALETTE[0]}"/>'
                   f'<text x="{label_w + bw + 4:.1f}" y="{y + 14}" class="tick">{_fmt(v)}{escape(unit)}</text>')
    out.append("</svg>")
    return "".join(out)
