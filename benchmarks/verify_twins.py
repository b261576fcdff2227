"""Check that every fixed twin of the ported corpus trains better than its faulty script.

Each faulty script ``tests/corpus_ported/<name>.py`` and its twin ``tests/corpus_ported/fixed/<name>.py``
run WITHOUT nndoctor on several seeds (``NNDOCTOR_SEED=0,1,2``), all six runs of a pair in one python
process (torch is imported once; each run executes as ``__main__`` via runpy). Each prints a last line
``final: <metric>=<value>``; ``acc``/``auc``/``bacc``/``f1`` are higher-is-better, ``loss``/``mse``/``mae``
lower-is-better. A run that crashes or prints a non-finite value scores worst. A twin is verified
when its metric is strictly better than the faulty script's on every seed.

    python benchmarks/verify_twins.py                     # every pair, seeds 0 1 2
    python benchmarks/verify_twins.py --filter lr_ --seeds 0
    python benchmarks/verify_twins.py --corpus tests/corpus_fresh   # its healthy lookalikes are skipped

Exit status 1 when any twin is not better on every seed (or is missing).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

__all__ = ["HIGHER", "LOWER", "better", "main", "parse_final", "run_pair"]

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus_ported"
HIGHER = frozenset({"acc", "auc", "bacc", "f1"})
LOWER = frozenset({"loss", "mse", "mae"})
_FINAL = re.compile(r"^final:\s*(\w+)=(\S+)\s*$", re.MULTILINE)


def parse_final(stdout: str) -> tuple[str, float] | None:
    """The metric name and value of the last ``final: name=value`` line, or None."""
    found = _FINAL.findall(stdout)
    if not found:
        return None
    name, value = found[-1]
    try:
        return name, float(value)
    except ValueError:
        return name, math.nan


_CHILD = """
import contextlib, io, json, os, runpy, sys, time, warnings
warnings.simplefilter("ignore")
for path, seed in json.loads(sys.argv[1]):
    os.environ["NNDOCTOR_SEED"] = str(seed)
    buf, start = io.StringIO(), time.perf_counter()
    try:
        with contextlib.redirect_stdout(buf):
            runpy.run_path(path, run_name="__main__")
    except BaseException:
        pass
    print(json.dumps([path, seed, buf.getvalue()[-2000:], time.perf_counter() - start]), flush=True)
"""


def run_pair(paths: Sequence[Path], seeds: Sequence[int],
             timeout: float = 600.0) -> dict[tuple[Path, int], tuple[tuple[str, float] | None, float]]:
    """Run scripts on seeds in ONE plain python process (no nndoctor; torch imported once).

    Each run executes as ``__main__`` with ``NNDOCTOR_SEED`` set; its stdout is captured and its
    exceptions (a crash is a legitimate outcome of a faulty script) are swallowed.
    Returns ``{(path, seed): (metric or None, seconds)}``.
    """
    jobs = [[str(path), seed] for path in paths for seed in seeds]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out: dict[tuple[Path, int], tuple[tuple[str, float] | None, float]] = {
        (Path(path), seed): (None, 0.0) for path, seed in jobs}
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(jobs)], capture_output=True, text=True,
                              timeout=timeout, cwd=str(ROOT), env=env)
        lines = proc.stdout.splitlines()
    except subprocess.TimeoutExpired as exc:
        lines = (exc.stdout or b"").decode(errors="replace").splitlines() if isinstance(exc.stdout, bytes) \
            else (exc.stdout or "").splitlines()
    for line in lines:
        try:
            path, seed, stdout, seconds = json.loads(line)
        except ValueError:
            continue
        out[(Path(path), seed)] = (parse_final(stdout), seconds)
    return out


def _score(metric: tuple[str, float] | None, name: str) -> float:
    """Comparable score, larger is better; a missing or non-finite metric is -inf."""
    if metric is None or not math.isfinite(metric[1]):
        return -math.inf
    return metric[1] if name in HIGHER else -metric[1]


def better(faulty: tuple[str, float] | None, fixed: tuple[str, float] | None) -> bool:
    """Whether the twin's metric is strictly better than the faulty script's."""
    if fixed is None:
        return False
    name = fixed[0]
    if name not in HIGHER | LOWER or (faulty is not None and faulty[0] != name):
        return False
    return _score(fixed, name) > _score(faulty, name)


def _healthy(path: Path) -> bool:
    """A top-level ``# expect: healthy`` script (a lookalike without a twin, tests/corpus_fresh) is no pair."""
    with open(path, encoding="utf-8") as fh:
        return any(re.match(r"#\s*expect:\s*healthy\b", line) for _, line in zip(range(5), fh))


def _fmt(metric: tuple[str, float] | None) -> str:
    return "crash" if metric is None else f"{metric[1]:.4g}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Verify that each fixed twin trains better than its faulty script.")
    p.add_argument("--corpus", type=Path, default=CORPUS)
    p.add_argument("--filter", action="append", default=[], metavar="SUBSTR")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=2)
    ns = p.parse_args(argv)

    pairs = [(f, ns.corpus / "fixed" / f.name) for f in sorted(ns.corpus.glob("*.py"))
             if (not ns.filter or any(s in f.name for s in ns.filter)) and not _healthy(f)]
    results: dict[tuple[Path, int], tuple[tuple[str, float] | None, float]] = {}
    with ThreadPoolExecutor(max_workers=ns.jobs) as pool:
        for part in pool.map(lambda pair: run_pair([p for p in pair if p.exists()], ns.seeds), pairs):
            results.update(part)
    width = max([len(f.stem) for f, _ in pairs] + [6])
    print(f"{'script':<{width}} {'metric':<6} " + " ".join(f"{'seed ' + str(s):>17}" for s in ns.seeds)
          + "  max s  verdict")
    bad = 0
    for faulty, fixed in pairs:
        cells, ok, slowest, name = [], fixed.exists(), 0.0, "?"
        for seed in ns.seeds:
            (m_bad, t_bad) = results.get((faulty, seed), (None, 0.0))
            (m_fix, t_fix) = results.get((fixed, seed), (None, 0.0))
            name = (m_fix or m_bad or (name, 0.0))[0]
            ok = ok and better(m_bad, m_fix)
            slowest = max(slowest, t_bad, t_fix)
            cells.append(f"{_fmt(m_bad):>8}->{_fmt(m_fix):<8}")
        bad += not ok
        verdict = "ok" if ok else ("NO TWIN" if not fixed.exists() else "NOT BETTER")
        print(f"{faulty.stem:<{width}} {name:<6} " + " ".join(cells) + f"  {slowest:5.1f}  {verdict}")
    print(f"twins verified: {len(pairs) - bad}/{len(pairs)} (better on every one of seeds {ns.seeds})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
