"""Shared test helpers: run the CLI in a subprocess and read its JSON report."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None

    def categories(self, min_severity: str = "warning") -> set[str]:
        ranks = {"info": 0, "warning": 1, "error": 2}
        if not self.report:
            return set()
        return {f["category"] for f in self.report["findings"]
                if ranks[f["severity"]] >= ranks[min_severity]}

    def codes(self, min_severity: str = "info") -> set[str]:
        ranks = {"info": 0, "warning": 1, "error": 2}
        if not self.report:
            return set()
        return {f["code"] for f in self.report["findings"] if ranks[f["severity"]] >= ranks[min_severity]}

    def findings(self, prefix: str = "") -> list[dict[str, Any]]:
        if not self.report:
            return []
        return [f for f in self.report["findings"] if f["code"].startswith(prefix)]


def run_cli(*args: str, timeout: float = 180, cwd: Path | None = None) -> CliResult:
    """``python -m nndoctor ARGS --json <tmp>`` (the json flag is added when ``run`` is used)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "report.json")
        argv = list(args)
        if argv and argv[0] in ("run",) and "--json" not in argv:
            argv = [argv[0], "--json", out, "--quiet", *argv[1:]]
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, "-m", "nndoctor", *argv], capture_output=True,
                              text=True, timeout=timeout, cwd=str(cwd or ROOT), env=env)
        report = None
        if os.path.exists(out):
            with open(out, encoding="utf-8") as fh:
                report = json.load(fh)
        return CliResult(proc.returncode, proc.stdout, proc.stderr, report)


def run_script(directory: Path, source: str) -> CliResult:
    """Write ``source`` to ``directory/train.py`` and run it under ``nndoctor run`` (its report must exist)."""
    script = directory / "train.py"
    script.write_text(source)
    result = run_cli("run", str(script))
    assert result.report is not None, result.stderr
    return result


def assert_script_headline(result: CliResult, code: str, expected: bool, quiet_category: str = "") -> None:
    """A script run under ``nndoctor run`` headlines ``code`` (``expected``), or does not find it at all and
    reports nothing of ``quiet_category`` (its healthy twin)."""
    assert (code in result.codes()) is expected, result.codes()
    if expected:
        assert result.report["headline"]["code"] == code, result.report["headline"]
    elif quiet_category:
        assert quiet_category not in result.categories(), result.categories()


def corpus_header(path: Path) -> dict[str, str]:
    """``# expect: <category>|healthy`` and optional ``# args: ...`` lines at the top of a script."""
    meta: dict[str, str] = {}
    for line in path.read_text().splitlines()[:10]:
        m = re.match(r"#\s*(expect|args|slow):\s*(.*)", line)
        if m:
            meta[m.group(1)] = m.group(2).strip()
    return meta


def corpus_scripts() -> list[Path]:
    return sorted(p for p in CORPUS.glob("*.py") if "expect" in corpus_header(p))


def apply_remedy(code: str, location: str = "", **evidence: Any) -> contextlib.ExitStack:
    """Install the runtime remedy of a finding ``code`` (with its ``evidence``) as ``nndoctor fix``
    does in a re-run; closing the returned stack removes it."""
    from nndoctor.fix.remedies import remedy_for

    finding = {"code": code, "location": location, "evidence": evidence}
    remedy = remedy_for(finding)
    assert remedy is not None, code
    stack = contextlib.ExitStack()
    remedy.install(finding, stack)
    return stack


def remedied(finding: dict[str, Any]) -> contextlib.ExitStack:
    """A finding (as ``nndoctor fix`` receives it: code, location, evidence) with its runtime
    remedy installed; closing the stack removes it."""
    return apply_remedy(finding["code"], finding.get("location", ""), **finding["evidence"])


def assert_early_stopping_trains_like_the_twin(script: Callable[[int], float], steps: int = 300) -> None:
    """``script(steps)`` (returns its test error) over-fits: fit.overfitting names a best step, the
    fixed twin (trained only that long) ends better, and the early-stopping remedy's re-run reaches
    >= 90% of the twin's gain."""
    from nndoctor.monitor import Observer
    from nndoctor.monitor.checks.fit import Fit

    with Observer(checks=[Fit]) as obs:
        bug = script(steps)
    hits = [f.to_dict() for f in obs.findings if f.code == "fit.overfitting"]
    assert hits, [f.code for f in obs.findings]
    best = hits[0]["evidence"]["best_step"]
    assert isinstance(best, int) and 0 < best < steps
    twin = script(best)                       # the fixed twin: trained only as long as validation improved
    assert twin < 0.95 * bug, (bug, twin)
    with remedied(hits[0]):
        fixed = script(steps)
    assert bug - fixed >= 0.9 * (bug - twin), (bug, fixed, twin)


def finding_of(run: Any, checks: list[Any], code: str, **observer: Any) -> dict[str, Any]:
    """The first finding ``code`` of ``run()`` under an in-process Observer with ``checks`` (seed 0),
    as a dict like the one ``nndoctor fix`` receives."""
    import torch

    from nndoctor.monitor import Observer

    torch.manual_seed(0)
    with Observer(checks=checks, **observer) as obs:
        run()
    hits = [f.to_dict() for f in obs.findings if f.code == code]
    assert hits, [f.code for f in obs.findings]
    return hits[0]


def apply_diff(diff: str, original: str) -> str:
    """The new text from a one-context-line unified diff (test helper: '+'/' ' lines per hunk)."""
    lines, out, i = original.splitlines(), [], 0
    for hunk in diff.split("\n@@")[1:]:
        start = int(hunk.split("-", 1)[1].split(",", 1)[0].split(" ", 1)[0]) - 1
        out.extend(lines[i:start])
        body = hunk.splitlines()[1:]
        out.extend(ln[1:] for ln in body if ln[:1] in (" ", "+"))
        i = start + sum(1 for ln in body if ln[:1] in (" ", "-"))
    return "\n".join(out + lines[i:])


@contextlib.contextmanager
def spy(owner: Any, name: str, record: Callable[..., Any] | None = None) -> Iterator[list[Any]]:
    """Record every call of ``owner.name`` (a module function or a class's method: ``self`` comes first)
    while the block runs: its arguments, or what ``record(*args, **kwargs)`` makes of them at the time
    of the call (None: not recorded); the original is put back after the block."""
    calls: list[Any] = []
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        seen = args if record is None else record(*args, **kwargs)
        if seen is not None:
            calls.append(seen)
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)
    try:
        yield calls
    finally:
        setattr(owner, name, original)


def sgd_run_with_checks(make_model: Any, data: Any, checks: list[Any], steps: int = 120, lr: float = 0.01) -> Any:
    """A seeded plain-SGD cross-entropy loop over index batches of 32, watched by an Observer with ``checks``:
    (model, observer, the next random draw), to compare a run with and without a probe (the weights and RNG
    must come out the same)."""
    import torch
    import torch.nn.functional as F

    from nndoctor.monitor import Observer

    torch.manual_seed(0)
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    x, y = data()
    with Observer(checks=checks) as obs:
        for s in range(steps):
            j = (s * 32) % (len(x) - 32)
            opt.zero_grad()
            F.cross_entropy(model(x[j:j + 32]), y[j:j + 32]).backward()
            opt.step()
    return model, obs, torch.randn(3)
