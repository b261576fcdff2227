"""The self-contained HTML report: inline CSS and SVG, no network, readable without JavaScript.

Organised by field-guide step, headline first (what is wrong, how sure we are, what to
do first), then each finding with its evidence and fixes, and pictures where people would
rather look than read: loss curves with the symptom marked, per-layer gradient norms,
activation health, the LR range test, the decomposition bar, error analysis, tuning.
The renderer only reads a :class:`~nndoctor.findings.Report` (and the plain data in its
``facts``).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from html import escape
from typing import Any

from nndoctor import __version__
from nndoctor.catalogue import CATALOGUE
from nndoctor.findings import Finding, Report, Severity, Step
from nndoctor.report.sections import Section, sections_of

__all__ = ["render_fragment", "render_html", "write_html"]

logger = logging.getLogger("nndoctor")

_CSS = """
:root{--fg:#111827;--muted:#6b7280;--bg:#f9fafb;--card:#fff;--err:#b91c1c;--warn:#b45309;--info:#0369a1;
--line:#e5e7eb}
*{box-sizing:border-box}
body{margin:0;font:16px/1.55 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:var(--fg);background:var(--bg);overflow-wrap:anywhere}
main{max-width:980px;margin:0 auto;padding:16px}
h1{font-size:1.6rem;margin:.4rem 0}h2{font-size:1.25rem;margin:1.6rem 0 .6rem;border-bottom:1px solid var(--line);
padding-bottom:.3rem}h3{font-size:1.05rem;margin:.2rem 0 .4rem}
.muted{color:var(--muted)}.small{font-size:.88rem}
.headline{background:var(--card);border-left:6px solid var(--err);padding:14px 16px;border-radius:8px;
box-shadow:0 1px 2px rgba(0,0,0,.06)}
.headline.ok{border-left-color:#15803d}.headline.warning{border-left-color:var(--warn)}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin:10px 0}
.sev{display:inline-block;font-size:.75rem;font-weight:700;text-transform:uppercase;padding:1px 8px;
border-radius:999px;color:#fff;margin-right:6px}
.sev.error{background:var(--err)}.sev.warning{background:var(--warn)}.sev.info{background:var(--info)}
code{font:0.9em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f3f4f6;padding:0 4px;border-radius:4px}
ol.fixes{margin:.4rem 0 0 1.2rem;padding:0}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.9rem;min-width:0}
td,th{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
svg.chart{width:100%;height:auto;display:block;margin:8px 0;background:#fff}
svg .ct{font:600 13px sans-serif;fill:#111827}svg .tick{font:11px sans-serif;fill:#4b5563}
svg .legend{font:600 11px sans-serif}svg .frame{fill:none;stroke:#d1d5db}svg .grid{stroke:#f1f5f9}
svg .marker{stroke:#b91c1c;stroke-dasharray:4 3}svg .mlabel{font:11px sans-serif;fill:#b91c1c}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:10px}
footer{margin:2rem 0 1rem;color:var(--muted);font-size:.85rem}
.card[data-symptom-of]{margin-left:24px;border-left:3px solid var(--line)}.cause{margin:.2rem 0}
"""

_STEP_ORDER = [Step.START, Step.DEBUG, Step.EVALUATE, Step.IMPROVE, Step.TUNE]


def _section_html(section: Section, findings: list[Finding]) -> str:
    """One section's pictures; a fault in one renderer leaves the rest of the report whole."""
    try:
        return section.html(findings)
    except Exception:
        logger.warning("nndoctor could not draw the report section %r", section.key, exc_info=True)
        return f'<p class="muted small">The {escape(section.key)} section could not be drawn.</p>'


def _evidence_table(evidence: dict[str, Any]) -> str:
    if not evidence:
        return ""
    rows = []
    for k, v in evidence.items():
        if isinstance(v, float):
            text = f"{v:.4g}"
        elif isinstance(v, (list, tuple)) and len(v) > 12:
            text = ", ".join(str(x) for x in v[:12]) + ", ..."
        else:
            text = str(v)
        rows.append(f"<tr><th>{escape(str(k))}</th><td><code>{escape(text)}</code></td></tr>")
    return f'<div class="scroll"><table class="evidence">{"".join(rows)}</table></div>'


def _anchor(key: tuple[str, str]) -> str:
    return f"{key[0]}-{abs(hash(key)) % 10**6}"


def _links(label: str, keys: list[tuple[str, str]]) -> str:
    """``symptom of: <a>code</a> (location)``: links to the other findings' cards."""
    if not keys:
        return ""
    items = ", ".join(f'<a href="#{escape(_anchor(k))}"><code>{escape(k[0])}</code></a>'
                      + (f" ({escape(k[1])})" if k[1] else "") for k in keys)
    return f'<div class="small cause">{label}: {items}</div>'


def _finding_card(f: Finding, explains: list[tuple[str, str]] | None = None) -> str:
    where = " · ".join(x for x in (f.location, f"step {f.first_step}" if f.first_step is not None else "",
                                   f"seen {f.count}x" if f.count > 1 else "") if x)
    fixes = "".join(f"<li>{escape(x)}</li>" for x in f.fixes)
    cause = f' data-symptom-of="{escape(" ".join(_anchor(k) for k in f.caused_by))}"' if f.caused_by else ""
    return (f'<div class="card finding" id="{escape(_anchor(f.key))}"{cause}>'
            f'<h3><span class="sev {f.severity.value}">{f.severity.value}</span><code>{escape(f.code)}</code></h3>'
            f'<div class="muted small">{escape(where)}</div>'
            + _links("Symptom of", list(f.caused_by)) + _links("Root cause of", explains or [])
            + f"<p>{escape(f.message)}</p>"
            f"{_evidence_table(dict(f.evidence))}"
            + (f'<strong class="small">What to do</strong><ol class="fixes">{fixes}</ol>' if fixes else "")
            + _about(f) + "</div>")


def _about(f: Finding) -> str:
    """What the code means and why it matters (from the catalogue), with a link to its page."""
    info = CATALOGUE.get(f.code)
    text = (f"<p><strong>{escape(info.title)}.</strong> {escape(info.meaning)}</p><p>{escape(info.why)}</p>"
            if info is not None else "")
    return (f'<details class="small about"><summary>About <code>{escape(f.code)}</code></summary>{text}'
            f'<p><a href="{escape(f.docs)}">{escape(f.docs)}</a> · <code>nndoctor explain {escape(f.code)}</code>'
            "</p></details>")


def _headline(report: Report) -> str:
    findings = report.sorted()
    top = report.headline()                       # the root cause, not one of its symptoms
    if top is None:
        return ('<section class="headline ok"><h2 style="border:0;margin:0">No problems found</h2>'
                '<p>No warning or error in what nndoctor observed. Compare with a known result next '
                "(nndoctor baseline), then evaluate (nndoctor evaluate).</p></section>")
    n_err = sum(f.severity is Severity.ERROR for f in findings)
    n_warn = sum(f.severity is Severity.WARNING for f in findings)
    sure = ("a definite bug" if top.severity is Severity.ERROR else "a likely problem") + (
        f", seen {top.count} times" if top.count > 1 else "")
    first_fix = escape(top.fixes[0]) if top.fixes else "see the finding below"
    return (f'<section class="headline {top.severity.value}">'
            f'<div class="muted small">{n_err} error(s), {n_warn} warning(s)</div>'
            f'<h2 style="border:0;margin:.2rem 0">What is wrong</h2><p><strong>{escape(top.message)}</strong></p>'
            f'<p class="small"><strong>How sure:</strong> {escape(sure)} '
            f'(<code>{escape(top.code)}</code>{", " + escape(top.location) if top.location else ""}).</p>'
            + _links("It explains", [f.key for f in findings if top.key in f.caused_by]) +
            f'<p><strong>Do this first:</strong> {first_fix}</p></section>')


def _body(report: Report, title: str | None) -> tuple[str, str]:
    """``(name, the report's content)``: everything inside ``<main>``, for a page or a fragment."""
    facts = report.facts or {}
    name = title or os.path.basename(str(facts.get("script") or facts.get("experiment") or "training run"))
    findings = report.sorted()                    # root causes first, each followed by its symptoms
    explains: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for f in findings:
        for key in f.caused_by:
            explains.setdefault(key, []).append(f.key)
    by_step: dict[Step, list[Finding]] = {}
    for f in findings:
        by_step.setdefault(f.step, []).append(f)
    sections = []
    for step in _STEP_ORDER:
        fs = by_step.get(step, [])
        extra = "".join(_section_html(sec, findings) for sec in sections_of(facts, step))
        if not fs and not extra:
            continue
        cards = "".join(_finding_card(f, explains.get(f.key)) for f in fs)
        sections.append(f'<section><h2>{escape(step.value.capitalize())}</h2>{extra}{cards}</section>')
    run_bits = []
    if "steps" in facts:
        run_bits.append(f"{facts['steps']} optimizer steps")
    for m in facts.get("models", []) or []:
        run_bits.append(f"model {m['name']} ({m['class']}, {m['parameters']:,} parameters)")
    for o in facts.get("optimizers", []) or []:
        run_bits.append(f"optimizer {o['name']} ({o['class']}, lr {o['lr']})")
    if facts.get("duration_s") is not None:
        run_bits.append(f"{facts['duration_s']:.1f} s")
    internal = "".join(f"<li>{escape(e.probe)}: {escape(e.error)}</li>" for e in report.internal_errors)
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return name, (
        f'<h1>nndoctor report: {escape(name)}</h1><p class="muted small">{escape(" · ".join(run_bits))}</p>'
        f"{_headline(report)}{''.join(sections)}"
        + (f'<section><h2>nndoctor internal errors</h2><ul class="small">{internal}</ul>'
           "<p class=\"muted small\">These probes were switched off; your training was not affected.</p></section>"
           if internal else "")
        + f"<footer>nndoctor {__version__} · {now}</footer>"
    )


def render_html(report: Report, *, title: str | None = None) -> str:
    """The whole report as one HTML string."""
    name, body = _body(report, title)
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>nndoctor report: {escape(name)}</title><style>{_CSS}</style></head><body><main>"
        f"{body}</main></body></html>"
    )


def _scoped_css(scope: str) -> str:
    """The page's CSS limited to ``scope`` (a notebook's own styles stay untouched)."""
    rules = []
    for rule in _CSS.replace("\n", " ").split("}"):
        if "{" not in rule:
            continue
        selectors, decls = rule.split("{", 1)
        scoped = []
        for sel in selectors.split(","):
            sel = sel.strip()
            if sel in (":root", "body", "main"):
                scoped.append(scope)
            elif sel == "*":
                scoped.append(f"{scope},{scope} *")
            else:
                scoped.append(f"{scope} {sel}")
        rules.append(f"{','.join(scoped)}{{{decls}}}")
    return "".join(rules)


def render_fragment(report: Report, *, title: str | None = None) -> str:
    """The report as a self-contained HTML fragment (``<div>`` + scoped ``<style>``) for Jupyter."""
    _, body = _body(report, title)
    return (f'<div class="nndoctor-report"><style>{_scoped_css(".nndoctor-report")}'
            ".nndoctor-report{max-width:980px;padding:8px}</style>"
            f"{body}</div>")


def write_html(report: Report, path: str, *, title: str | None = None) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render_html(report, title=title))
