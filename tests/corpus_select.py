"""Which tests/corpus scripts run in the fast suite (``make test``), chosen by a written rule.

Every corpus script runs under ``pytest -m slow tests/test_corpus.py``; the fast suite runs a subset
that keeps what the corpus protects. The rule reads tests/corpus_index.json (one row per script: the
file's digest, the CPU seconds of its ``nndoctor run`` and the finding codes that run reported) and the
scripts' own text. A script is FAST when any of these holds:

1. it has no row in the index, or its digest changed since the index was written: a new or edited
   script is run until ``python tests/corpus_select.py --refresh`` has measured it;
2. it is the cheapest script of its ``# expect:`` category (every category, ``healthy`` included);
3. it is the cheapest faulty script that reports a code at warning or error (every such code), or,
   for a code reported only at info, the cheapest script that reports it;
4. it is a healthy script on which some check reported a finding at info: a detector stirred without
   warning there, so the run sits near a calibrated threshold (a healthy lookalike);
5. it is the healthy script whose source is most alike (Jaccard over identifiers) to a faulty script
   picked by 2-3: the quiet twin that keeps that detector from firing on sound code of the same kind;
6. it is the cheapest faulty, and the cheapest healthy, script written in a coding style (see STYLES)
   that no script picked so far is written in.

"Cheapest" is the fewest CPU seconds in the index (ties: file name). Run this file to see the
subset and why each script is in it; ``--refresh`` re-measures every script (about 10 CPU minutes,
``-j 2`` to use two cores) and rewrites the index.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["INDEX", "STYLES", "Selection", "digest", "load_index", "select", "styles_of"]

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
CORPUS = TESTS / "corpus"
INDEX = TESTS / "corpus_index.json"
REFRESH = "python tests/corpus_select.py --refresh"
_RANK = {"info": 0, "warning": 1, "error": 2}
_HEADER = re.compile(r"#\s*(expect|args|slow):\s*(.*)")

# Coding styles a detector must work in (house rule "generalise, do not fit"): a regular expression
# over the script's text for each.
STYLES: dict[str, str] = {
    "module-subclass": r"class \w+\((?:torch\.)?nn\.Module\)",
    "sequential": r"nn\.Sequential\(",
    "functional-loss": r"\bF\.(?:cross_entropy|nll_loss|mse_loss|l1_loss|binary_cross_entropy\w*|smooth_l1_loss|kl_div)\(",
    "module-loss": r"\bnn\.\w+Loss\(",
    "main-function": r"^def main\(",
    "top-level-loop": r"^for \w+",
    "sgd": r"optim\.SGD\(",
    "adam": r"optim\.Adam\w*\(",
    "other-optimizer": r"optim\.(?:RMSprop|Adagrad|LBFGS|Adadelta)\(",
    "dataloader": r"\bDataLoader\(",
    "scheduler": r"lr_scheduler\.",
    "recurrent": r"nn\.(?:LSTM|GRU|RNN)\w*\(",
    "conv": r"nn\.Conv\dd\(",
    "attention": r"nn\.(?:MultiheadAttention|TransformerEncoder\w*)\(",
    "autocast": r"\bautocast\(",
}


def header(path: Path) -> dict[str, str]:
    meta: dict[str, str] = {}
    for line in path.read_text().splitlines()[:10]:
        m = _HEADER.match(line)
        if m:
            meta[m.group(1)] = m.group(2).strip()
    return meta


def scripts() -> list[Path]:
    return sorted(p for p in CORPUS.glob("*.py") if "expect" in header(p))


def digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12]


def styles_of(path: Path) -> set[str]:
    text = path.read_text()
    return {name for name, rx in STYLES.items() if re.search(rx, text, re.MULTILINE)}


def _identifiers(path: Path) -> set[str]:
    body = "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#"))
    return set(re.findall(r"[A-Za-z_][A-Za-z_0-9.]*", body))


def load_index(path: Path = INDEX) -> dict[str, dict]:
    if not path.exists():
        return {}
    return json.loads(path.read_text())["scripts"]


@dataclass
class Selection:
    """The fast subset: script name -> the reasons it was picked (empty for the slow ones)."""

    reasons: dict[str, list[str]] = field(default_factory=dict)
    covers: dict[str, dict[str, str]] = field(default_factory=dict)  # script -> {code: severity} it keeps

    def fast(self) -> set[str]:
        return {name for name, why in self.reasons.items() if why}

    def add(self, name: str, why: str) -> None:
        self.reasons.setdefault(name, []).append(why)


def select(paths: Iterable[Path] | None = None, index: dict[str, dict] | None = None) -> Selection:
    """Apply the rule of the module docstring to ``paths`` (default: every corpus script)."""
    paths = list(scripts() if paths is None else paths)
    index = load_index() if index is None else index
    sel = Selection(reasons={p.name: [] for p in paths})
    meta = {p.name: header(p) for p in paths}
    rows: dict[str, dict] = {}
    for p in paths:
        row = index.get(p.name)
        if row is None or row.get("digest") != digest(p):
            sel.add(p.name, "not measured yet (new or edited since the index was written)")
        else:
            rows[p.name] = row

    def cost(name: str) -> tuple[float, str]:
        return (rows[name]["cpu_s"] if name in rows else 0.0, name)

    faulty = [n for n in sel.reasons if meta[n]["expect"] != "healthy"]
    healthy = [n for n in sel.reasons if meta[n]["expect"] == "healthy"]
    picked_faulty: set[str] = set()
    for category in sorted({m["expect"] for m in meta.values()}):
        best = min((n for n in sel.reasons if meta[n]["expect"] == category), key=cost)
        sel.add(best, f"cheapest '{category}' script")
        if category != "healthy":
            picked_faulty.add(best)
    all_codes: dict[str, int] = {}
    for row in rows.values():
        for code, severity in row["codes"].items():
            all_codes[code] = max(all_codes.get(code, 0), _RANK[severity])
    for code, rank in sorted(all_codes.items()):
        pool = [n for n in rows if _RANK[rows[n]["codes"].get(code, "info")] >= rank and code in rows[n]["codes"]]
        if rank:
            pool = [n for n in pool if n in faulty] or pool
        best = min(pool, key=cost)
        sel.add(best, f"cheapest script reporting {code} at {'warning+' if rank else 'info'}")
        sel.covers.setdefault(best, {})[code] = "warning" if rank else "info"
        if best in faulty:
            picked_faulty.add(best)
    for n in healthy:
        stirred = sorted(rows.get(n, {}).get("codes", {}))
        if stirred:
            sel.add(n, f"healthy lookalike: {', '.join(stirred)} reported at info")
    by_name = {p.name: p for p in paths}
    words = {n: _identifiers(by_name[n]) for n in sel.reasons}
    for n in sorted(picked_faulty):
        if healthy:
            twin = max(healthy, key=lambda h: (len(words[n] & words[h]) / len(words[n] | words[h]), h))
            sel.add(twin, f"healthy script most alike to {n}")
    style = {n: styles_of(by_name[n]) for n in sel.reasons}
    for group, label in ((faulty, "faulty"), (healthy, "healthy")):
        for name in sorted(STYLES):
            if any(name in style[n] for n in group) and not any(name in style[n] for n in group if n in sel.fast()):
                best = min((n for n in group if name in style[n]), key=cost)
                sel.add(best, f"cheapest {label} script in the '{name}' style")
    return sel


def measure(path: Path) -> dict:
    """One ``nndoctor run`` of a corpus script as tests/test_corpus.py runs it: CPU seconds and codes."""
    import shlex

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "report.json")
        argv = [sys.executable, "-m", "nndoctor", "run", "--json", out, "--quiet", str(path),
                *shlex.split(header(path).get("args", ""))]
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONPATH=str(ROOT))
        proc = subprocess.Popen(argv, cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        codes: dict[str, str] = {}
        if os.path.exists(out):
            with open(out, encoding="utf-8") as fh:
                for f in json.load(fh)["findings"]:
                    if _RANK[f["severity"]] >= _RANK.get(codes.get(f["code"], "info"), 0):
                        codes[f["code"]] = f["severity"]
    return {"digest": digest(path), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "codes": dict(sorted(codes.items()))}


def refresh(jobs: int = 1, only: Iterable[str] = ()) -> None:
    """Measure the scripts (all, or those named in ``only``); the index is rewritten after each one."""
    index = load_index()
    wanted = set(only)
    todo = [p for p in scripts() if not wanted or p.name in wanted]
    names = {p.name for p in scripts()}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(measure, p): p for p in todo}
        for future in as_completed(futures):
            p, row = futures[future], future.result()
            index[p.name] = row
            print(f"{row['cpu_s']:6.1f}s  {p.name}  {' '.join(row['codes'])}", flush=True)
            rows = {k: v for k, v in sorted(index.items()) if k in names}
            INDEX.write_text(json.dumps({"written_by": REFRESH, "scripts": rows}, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refresh", action="store_true", help="re-measure the scripts and rewrite the index")
    ap.add_argument("-j", "--jobs", type=int, default=1)
    ap.add_argument("--stale", action="store_true", help="with --refresh: only new or edited scripts")
    args = ap.parse_args(argv)
    if args.refresh:
        index = load_index()
        only = [p.name for p in scripts() if index.get(p.name, {}).get("digest") != digest(p)] if args.stale else []
        if args.stale and not only:
            print("index up to date")
        else:
            refresh(args.jobs, only)
    sel = select()
    for name, why in sorted(sel.reasons.items()):
        if why:
            print(f"FAST  {name}: {'; '.join(why)}")
    rows = load_index()
    fast_s = sum(rows.get(n, {}).get("cpu_s", 0.0) for n in sel.fast())
    all_s = sum(r["cpu_s"] for r in rows.values())
    print(f"{len(sel.fast())} of {len(sel.reasons)} scripts fast; {fast_s:.0f} of {all_s:.0f} CPU seconds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
