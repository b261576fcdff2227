"""Detection benchmark: every corpus script through ``nndoctor run``, scored by category.

Each script in ``tests/corpus`` starts with ``# expect: <category>`` (or ``# expect: healthy``)
and optionally ``# args: ...`` and ``# half: tune|holdout`` (the ported corpus, tests/corpus_ported, whose
fixed twins live in its ``fixed/`` folder and are discovered too). The script runs as ``python -m nndoctor run --json ...`` in a
subprocess (two at a time at most); the row shows the categories found at warning or
error, and for a buggy script the optimizer step of the first warning/error of the expected
category (that finding's ``first_step``).

Scoring:
  recall X/Y           buggy scripts whose expected category was found at warning+
  false alarms Z       healthy scripts with any warning or error
  other categories W   (script, category) pairs at warning+ on buggy scripts, not the expected one
  first warning within 50 steps: A/B
                       buggy scripts whose expected category was first reported at an
                       optimizer step <= 50, out of all buggy scripts
  headline right H/B   buggy scripts whose headline (the report's root cause: its first
                       warning/error) is in the expected category, out of all buggy scripts

    python benchmarks/detection.py
    python benchmarks/detection.py --filter healthy --json detection.json
    python benchmarks/detection.py --corpus tests/corpus_ported --half holdout
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from nndoctor.findings import CATEGORIES

__all__ = ["Row", "Summary", "discover", "format_row", "main", "parse_header", "row_from_report",
           "run_script", "summarise"]

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
HEALTHY = "healthy"
EARLY_STEPS = 50
_RANKS = {"info": 0, "warning": 1, "error": 2}
_HEADER = re.compile(r"#\s*(expect|args|slow|half):\s*(.*)")


@dataclass
class Row:
    """One script's result."""

    script: str
    expected: str
    half: str = ""                                     # tune / holdout in the ported corpus, else ""
    found: list[str] = field(default_factory=list)   # categories at warning or error, sorted
    first_step: int | None = None                      # first_step of the expected category
    headline: str | None = None                        # category of the headline (first warning+)
    exit_code: int | None = None
    seconds: float = 0.0                               # wall time of the whole subprocess
    script_seconds: float | None = None                # the script's own run time (facts.duration_s)
    internal_errors: int = 0
    problem: str = ""                                  # NO REPORT, TIMEOUT, EXIT n, BAD HEADER; "" if fine
    detail: str = ""                                   # what went wrong (last stderr line)

    @property
    def healthy(self) -> bool:
        return self.expected == HEALTHY

    @property
    def detected(self) -> bool:
        return not self.healthy and self.expected in self.found

    @property
    def headline_right(self) -> bool:
        return not self.healthy and self.headline == self.expected

    @property
    def other(self) -> list[str]:
        """Categories at warning+ that the script was not written to show."""
        return [c for c in self.found if c != self.expected]

    @property
    def verdict(self) -> str:
        if self.problem:
            return self.problem
        if self.healthy:
            return "FALSE ALARM" if self.found else "ok"
        return "ok" if self.detected else "MISSED"


@dataclass
class Summary:
    buggy: int = 0
    detected: int = 0
    healthy: int = 0
    false_alarms: int = 0
    other_categories: int = 0
    early: int = 0
    problems: int = 0
    headline_right: int = 0

    def lines(self) -> list[str]:
        head = [f"problems: {self.problems} script(s) without a usable run (see the verdict column)"]
        return head * bool(self.problems) + [
            f"headline right {self.headline_right}/{self.buggy}",
            f"first warning within {EARLY_STEPS} steps: {self.early}/{self.buggy}",
            f"recall {self.detected}/{self.buggy}, false alarms {self.false_alarms} "
            f"(of {self.healthy} healthy), other categories {self.other_categories}",
        ]


def parse_header(path: Path) -> dict[str, str]:
    """``expect``/``args``/``slow``/``half`` from the comment lines at the top of a corpus script."""
    meta: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for _, line in zip(range(10), fh):
            m = _HEADER.match(line)
            if m:
                meta[m.group(1)] = m.group(2).strip()
    return meta


def discover(corpus: Path, filters: Sequence[str] = (), half: str | None = None) -> list[tuple[Path, dict[str, str]]]:
    """Corpus scripts (and fixed twins in ``corpus/fixed``) with an ``# expect:`` header whose file name
    contains any filter and, when ``half`` is given, whose ``# half:`` header is that half."""
    out = []
    for path in sorted(corpus.glob("*.py")) + sorted(corpus.glob("fixed/*.py")):
        if filters and not any(f in path.name for f in filters):
            continue
        meta = parse_header(path)
        if "expect" in meta and (half is None or meta.get("half") == half):
            out.append((path, meta))
    return out


def row_from_report(script: str, expected: str, report: dict[str, Any] | None) -> Row:
    """Score one JSON report (schema 1) against the script's expected category."""
    row = Row(script=script, expected=expected)
    if expected != HEALTHY and expected not in CATEGORIES:
        row.problem = "BAD HEADER"
        row.detail = f"'# expect: {expected}' is not one of the 18 categories nor 'healthy'"
    if report is None:
        row.problem = "NO REPORT"
        return row
    counted = [f for f in report.get("findings", []) if _RANKS.get(f.get("severity"), 0) >= 1]
    row.found = sorted({f["category"] for f in counted})
    head = report.get("headline") or (counted[0] if counted else None)   # findings come root cause first
    row.headline = head.get("category") if isinstance(head, dict) else None
    steps = [f.get("first_step") for f in counted if f["category"] == expected]
    steps = [s for s in steps if isinstance(s, int)]
    row.first_step = min(steps) if steps else None
    facts = report.get("facts", {})
    row.exit_code = facts.get("exit_code")
    row.script_seconds = facts.get("duration_s")
    row.internal_errors = len(report.get("internal_errors", []))
    if row.healthy and row.exit_code not in (0, None) and not row.problem:
        row.problem = f"EXIT {row.exit_code}"          # a healthy script must run to the end
    return row


def run_script(path: Path, meta: dict[str, str], timeout: float = 300.0, name: str | None = None) -> Row:
    """``python -m nndoctor run --json TMP --quiet SCRIPT ARGS`` in a subprocess, scored."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "report.json")
        cmd = [sys.executable, "-m", "nndoctor", "run", "--json", out, "--quiet", str(path),
               *shlex.split(meta.get("args", ""))]
        report = None
        stderr = ""
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT), env=env)
            exit_code: int | None = proc.returncode
            stderr = proc.stderr
        except subprocess.TimeoutExpired:
            exit_code = None
        try:
            with open(out, encoding="utf-8") as fh:
                report = json.load(fh)
        except (OSError, ValueError):
            report = None
    row = row_from_report(name or path.name, meta["expect"], report)
    row.half = meta.get("half", "")
    row.seconds = round(time.perf_counter() - start, 2)
    if exit_code is None:
        row.problem = f"TIMEOUT ({timeout:.0f} s)"
    elif row.exit_code is None:
        row.exit_code = exit_code
    if row.problem and not row.detail:
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        row.detail = lines[-1].strip() if lines else ""
    return row


def summarise(rows: Sequence[Row]) -> Summary:
    s = Summary()
    for row in rows:
        s.problems += bool(row.problem)
        if row.healthy:
            s.healthy += 1
            s.false_alarms += bool(row.found)
            continue
        s.buggy += 1
        s.detected += row.detected
        s.other_categories += len(row.other)
        s.early += row.detected and row.first_step is not None and row.first_step <= EARLY_STEPS
        s.headline_right += row.headline_right
    return s


_COLUMNS = ("script", "expected", "found (warning+)", "first", "secs", "verdict")


def format_row(row: Row, width: int = 40) -> str:
    found = ",".join(row.found) or "-"
    first = "-" if row.first_step is None else str(row.first_step)
    verdict = row.verdict + (f" ({row.internal_errors} internal errors)" if row.internal_errors else "")
    return f"{row.script:<{width}} {row.expected:<14} {found:<30} {first:>5} {row.seconds:>6.1f}  {verdict}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run every corpus script through nndoctor and score detection.")
    p.add_argument("--filter", action="append", default=[], metavar="SUBSTR",
                   help="only scripts whose file name contains SUBSTR (repeatable: any of them)")
    p.add_argument("--json", metavar="PATH", help="also write the rows and the summary as JSON to PATH")
    p.add_argument("--corpus", type=Path, default=CORPUS, help=f"folder of scripts (default {CORPUS})")
    p.add_argument("--half", choices=("tune", "holdout"),
                   help="only scripts with this '# half:' header (the ported corpus); totals per half are printed")
    p.add_argument("--jobs", type=int, default=2, choices=(1, 2), help="scripts run at once (default 2)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per script (default 300)")
    ns = p.parse_args(argv)

    scripts = discover(ns.corpus, ns.filter, ns.half)
    names = {path: str(path.relative_to(ns.corpus)) for path, _ in scripts}
    if not scripts:
        print(f"no corpus script with an '# expect:' header matches {ns.filter or 'anything'} in {ns.corpus}")
        return 0
    width = max(len(name) for name in names.values())
    print(f"{_COLUMNS[0]:<{width}} {_COLUMNS[1]:<14} {_COLUMNS[2]:<30} {_COLUMNS[3]:>5} "
          f"{_COLUMNS[4]:>6}  {_COLUMNS[5]}", flush=True)
    rows: list[Row] = []
    with ThreadPoolExecutor(max_workers=ns.jobs) as pool:
        futures = [pool.submit(run_script, path, meta, ns.timeout, names[path]) for path, meta in scripts]
        for fut in futures:                    # in corpus order, printed as they complete
            row = fut.result()
            rows.append(row)
            print(format_row(row, width), flush=True)
            if row.detail:
                print(f"{'':<{width}} ^ {row.detail}", flush=True)
    summary = summarise(rows)
    for line in summary.lines():
        print(line)
    for half in sorted({row.half for row in rows} - {""}, reverse=True):     # tune first, then holdout
        for line in summarise([row for row in rows if row.half == half]).lines():
            print(f"half {half}: {line}")
    if ns.json:
        payload = {"rows": [dict(asdict(r), verdict=r.verdict) for r in rows], "summary": asdict(summary)}
        with open(ns.json, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
