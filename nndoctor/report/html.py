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
import os
from html import escape
from typing import Any

from nndoctor import __version__
from nndoctor.catalogue import CATALOGUE
from nndoctor.findings import Finding, Report, Severity, Step
from nndoctor.report.svg import hbars, line_chart, stacked_bar

__all__ = ["render_html", "write_html"]

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


def _curves(facts: dict[str, Any], findings: list[Finding]) -> str:
    curves = facts.get("curves") or {}
    out = []
    series = {}
    for name in ("loss", "eval_loss"):
        c = curves.get(name)
        if c and c.get("steps"):
            series["training loss" if name == "loss" else "evaluation loss"] = (c["steps"], c["values"])
    if series:
        marks = [(float(f.first_step), f.code.split(".", 1)[1]) for f in findings
                 if f.category in ("loss-curve", "lr", "numerics", "fit") and f.first_step is not None][:4]
        vals = [v for _, ys in series.values() for v in ys if isinstance(v, (int, float)) and v > 0]
        log_y = bool(vals) and max(vals) / max(min(vals), 1e-12) > 50
        out.append(line_chart(series, title="Loss" + (" (log scale)" if log_y else ""), log_y=log_y,
                              markers=marks, y_label="loss"))
    lr = curves.get("lr")
    if lr and lr.get("steps") and len(set(lr["values"])) > 1:
        out.append(line_chart({"learning rate": (lr["steps"], lr["values"])}, title="Learning rate", log_y=True))
    grads = facts.get("grad_norms") or {}
    if grads:
        s = {k: (v["steps"], v["values"]) for k, v in list(grads.items())[:8] if v.get("steps")}
        if s:
            out.append(line_chart(s, title="Gradient norm per layer (log scale)", log_y=True, y_label="|grad|"))
    acts = facts.get("activation_health") or {}
    if acts:
        out.append(hbars(sorted(acts.items(), key=lambda kv: -kv[1])[:12], title="Dead or saturated units per layer",
                         unit="", max_value=1.0))
    return "".join(out)


def _evaluation(ev: dict[str, Any]) -> str:
    d = ev.get("decomposition") or {}
    out = []
    terms = {t["name"]: t["value"] for t in d.get("terms", [])}
    if terms:
        parts = [("irreducible", d.get("irreducible", 0.0))] + [
            (name.replace("_", " "), terms[name]) for name in
            ("avoidable_bias", "variance", "distribution_shift", "val_overfitting") if name in terms]
        out.append(stacked_bar(parts, title="Error decomposition (field guide step 3)"))
        rows = "".join(
            f"<tr><td>{escape(t['name'].replace('_', ' '))}</td><td>{t['value']:+.4f}</td><td>"
            + (f"{t['low']:+.4f} .. {t['high']:+.4f}" if t.get("low") is not None else "")
            + f"</td><td>{'yes' if t.get('significant') else 'within noise'}</td></tr>" for t in d["terms"])
        errs = ", ".join(f"{k.replace('_', '-')} {v:.4f}" for k, v in d.get("errors", {}).items())
        out.append(f'<p class="small">Errors: {escape(errs)}. Dominant: <strong>{escape(str(d.get("dominant")))}'
                   f'</strong>.</p><div class="scroll"><table><tr><th>term</th><th>value</th><th>95% interval</th>'
                   f"<th>outside noise</th></tr>{rows}</table></div>")
        for note in d.get("notes", []):
            out.append(f'<p class="muted small">{escape(note)}</p>')
    table = ev.get("error_analysis") or []
    if table:
        rows = "".join(
            f"<tr><td>{escape(str(r['slice']))}</td><td>{_f(r['train_val_error'])}</td><td>{_f(r['test_val_error'])}"
            f"</td><td>{r['contribution']:.0%}</td><td>{'<strong>shift</strong>' if r['shifted'] else ''}</td></tr>"
            for r in table[:20])
        out.append('<h3>Error analysis</h3><div class="scroll"><table><tr><th>slice</th><th>train-val</th>'
                   f"<th>test-val</th><th>share of errors</th><th></th></tr>{rows}</table></div>")
    plan = ev.get("plan") or []
    if plan:
        items = "".join(f"<li>{'<strong>[blocking]</strong> ' if p['blocking'] else ''}{escape(p['action'])}"
                        f'<div class="muted small">because: {escape(p["because"])}</div></li>' for p in plan[:10])
        out.append(f"<h3>Improvement plan</h3><ol>{items}</ol>")
    return "".join(out)


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _lr_find(lf: dict[str, Any]) -> str:
    if not lf.get("lrs"):
        return ""
    marks = [(lf["suggested_lr"], f"suggested {lf['suggested_lr']:.2g}")] if lf.get("suggested_lr") else []
    return line_chart({"loss": (lf["lrs"], lf["losses"])}, title="LR range test", x_label="learning rate",
                      log_x=True, markers=marks)


def _tune(t: dict[str, Any]) -> str:
    out = []
    hist = t.get("history") or []
    if hist:
        xs = list(range(1, len(hist) + 1))
        best, b = [], float("inf")
        for v in hist:
            b = min(b, v) if v is not None else b
            best.append(b)
        out.append(line_chart({"trial value": (xs, hist), "best so far": (xs, best)}, title="Tuning history",
                              x_label="trial"))
    imp = t.get("importance") or {}
    if imp:
        out.append(hbars(sorted(imp.items(), key=lambda kv: -kv[1]), title="Hyperparameter importance"))
    return "".join(out)


def render_html(report: Report, *, title: str | None = None) -> str:
    """The whole report as one HTML string."""
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
    pictures = _curves(facts, findings)
    for step in _STEP_ORDER:
        fs = by_step.get(step, [])
        extra = ""
        if step is Step.DEBUG and pictures:
            extra = pictures
        if step is Step.EVALUATE and facts.get("evaluation"):
            extra = _evaluation(facts["evaluation"])
        if step is Step.TUNE:
            extra = (_lr_find(facts["lr_find"]) if facts.get("lr_find") else "") + (
                _tune(facts["tune"]) if facts.get("tune") else "")
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
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>nndoctor report: {escape(name)}</title><style>{_CSS}</style></head><body><main>"
        f'<h1>nndoctor report: {escape(name)}</h1><p class="muted small">{escape(" · ".join(run_bits))}</p>'
        f"{_headline(report)}{''.join(sections)}"
        + (f'<section><h2>nndoctor internal errors</h2><ul class="small">{internal}</ul>'
           "<p class=\"muted small\">These probes were switched off; your training was not affected.</p></section>"
           if internal else "")
        + f"<footer>nndoctor {__version__} · {now}</footer></main></body></html>"
    )


def write_html(report: Report, path: str, *, title: str | None = None) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render_html(report, title=title))
