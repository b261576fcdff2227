"""Real public training scripts, run unchanged, plain and under ``nndoctor run``.

Every script in ``real_scripts.json`` is healthy code from a public repository, pinned to a
commit. Nothing of those repositories is copied here: the benchmark reads each one from a
local mirror (``--repos``, one bare git directory per repository at
``DIR/<owner>+<name>/repo``), extracts the pinned tree into a temporary folder, prepares the
data (only what ships in the repository, what the script makes itself, or our generators in
``benchmarks/real_data``: nothing is downloaded), then runs the script plain and under
``python -m nndoctor run --json`` in turn (a fresh copy of the tree for every run).

Per script it prints: crash (the run under nndoctor ends differently from the plain one),
warnings/errors (codes: on healthy code every one is a false alarm), internal errors, wall
times and their ratio (and the range of the CPU-time ratios of each nndoctor run to the
plain run just before it: wall time is noisy on a shared machine), and whether the script's last metric lines are the same in both runs
(``n/a`` for scripts that seed nothing). ``--repeats`` alternates more runs; times are medians.

    python -m benchmarks.real_scripts [--repos /work/.mirror] [--only makemore] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Entry", "Outcome", "load_manifest", "metric_lines", "checkout", "run_entry", "main"]

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = Path(__file__).with_name("real_scripts.json")
DATA = Path(__file__).with_name("real_data")
STUBS = DATA / "stubs"
DEFAULT_METRIC = r"(?i)(loss|acc|score|error|mse|elbo|perplexity|ppl)"
#: tokens that measure time, not training (removed before outputs are compared)
TIMING = re.compile(r"(?i)(\d+(\.\d+)?\s*(ms|s|sec|seconds)\b|(time|dt|elapsed)[^|;,]*|ms/batch[^|]*|\d+\.\d+%?\s*mfu|mfu\s*-?\d+(\.\d+)?%)")


@dataclass(frozen=True)
class Entry:
    name: str
    repo: str
    commit: str
    path: str
    args: tuple[str, ...] = ()
    cwd: str = "."
    setup: tuple[tuple[str, ...], ...] = ()
    pythonpath: tuple[str, ...] = ()
    data: str = ""
    expect: str = "healthy"
    deterministic: bool = True
    metric: str = DEFAULT_METRIC
    timeout: float = 600.0
    env: tuple[tuple[str, str], ...] = ()  # environment settings the script needs (never its code)
    #: folders of benchmarks/real_data put on the path for this script only: stand-ins that other packages
    #: must not see (a torchvision stub makes torchmetrics, hence Lightning, import torchvision.models)
    stubs: tuple[str, ...] = ()
    #: Python packages the script needs that this project does not install (``einops``): the entry is
    #: not run, and says so, where one cannot be imported (install it, or put it on PYTHONPATH)
    requires: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Entry:
        for key in ("name", "repo", "commit", "path", "data"):
            if not d.get(key):
                raise ValueError(f"manifest entry {d.get('name')!r}: {key!r} is required")
        if d.get("expect", "healthy") != "healthy":
            raise ValueError(f"manifest entry {d['name']!r}: only healthy scripts belong here")
        return cls(name=d["name"], repo=d["repo"], commit=d["commit"], path=d["path"],
                   args=tuple(d.get("args", ())), cwd=d.get("cwd", "."),
                   setup=tuple(tuple(c) for c in d.get("setup", ())),
                   pythonpath=tuple(d.get("pythonpath", ())), data=d["data"],
                   deterministic=bool(d.get("deterministic", True)),
                   metric=d.get("metric", DEFAULT_METRIC), timeout=float(d.get("timeout", 600.0)),
                   env=tuple(sorted((str(k), str(v)) for k, v in d.get("env", {}).items())),
                   stubs=tuple(d.get("stubs", ())), requires=tuple(d.get("requires", ())))

    def git_dir(self, repos: Path) -> Path:
        repo = repos / self.repo.replace("/", "+") / "repo"
        return repo / ".git" if (repo / ".git").is_dir() else repo  # some snapshots are clones with a work tree


@dataclass
class RunResult:
    code: int
    seconds: float
    stdout: str
    stderr: str
    report: dict[str, Any] | None = None
    cpu_s: float = 0.0  # the child's user + system CPU time (robust on a shared machine)


@dataclass
class Outcome:
    entry: Entry
    error: str = ""  # the benchmark could not run the script (missing mirror, plain run fails)
    crash: bool = False
    alarms: list[str] = field(default_factory=list)  # warning/error codes
    infos: list[str] = field(default_factory=list)
    internal_errors: int = 0
    plain_s: list[float] = field(default_factory=list)
    doctor_s: list[float] = field(default_factory=list)
    plain_cpu: list[float] = field(default_factory=list)
    doctor_cpu: list[float] = field(default_factory=list)
    identical: bool | None = None
    detail: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)  # the warnings/errors, whole

    @property
    def ratio(self) -> float:
        if not self.plain_s or not self.doctor_s:
            return float("nan")
        return statistics.median(self.doctor_s) / max(statistics.median(self.plain_s), 1e-9)

    @property
    def cpu_ratios(self) -> list[float]:
        """CPU-time ratios of each nndoctor run to the plain run just before it (alternating)."""
        return [d / max(p, 1e-9) for p, d in zip(self.plain_cpu, self.doctor_cpu)]


def load_manifest(path: Path = MANIFEST) -> list[Entry]:
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    entries = [Entry.from_dict(d) for d in raw["scripts"]]
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError("manifest names must be unique")
    return entries


def metric_lines(text: str, pattern: str = DEFAULT_METRIC, last: int = 3) -> list[str]:
    """The script's last ``last`` printed metric lines, with timings taken out."""
    rx = re.compile(pattern)
    lines = [TIMING.sub("", line).strip() for line in text.splitlines() if rx.search(line)]
    return lines[-last:]


def checkout(entry: Entry, repos: Path, dest: Path) -> list[str]:
    """Extract the pinned tree of ``entry``'s repository into ``dest``; returns the paths left out.

    ``git archive | tar -x`` where the mirror holds every blob; a mirror that lacks some (the
    snapshot keeps no file of 4 MiB or more) is read file by file through ``git cat-file
    --batch``, and the missing ones are left out (a setup step may make what the script needs).
    """
    git_dir = entry.git_dir(repos)
    if not git_dir.exists():
        raise FileNotFoundError(f"no mirror of {entry.repo} at {git_dir}")
    dest.mkdir(parents=True, exist_ok=True)
    git = ["git", "--git-dir", str(git_dir)]
    archive = subprocess.run([*git, "archive", "--format=tar", entry.commit], capture_output=True)
    if archive.returncode == 0:
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
        return []
    listing = subprocess.run([*git, "ls-tree", "-r", "-z", entry.commit], capture_output=True, check=True)
    files = []  # (mode, sha, path)
    for rec in listing.stdout.split(b"\0"):
        if rec:
            meta, path = rec.split(b"\t", 1)
            mode, kind, sha = meta.split()
            if kind == b"blob":
                files.append((mode, sha, path.decode()))
    batch = subprocess.run([*git, "cat-file", "--batch"], input=b"".join(sha + b"\n" for _, sha, _ in files),
                           capture_output=True, check=True)
    out, pos, missing = batch.stdout, 0, []
    for mode, _sha, path in files:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[1] != b"blob":
            missing.append(path)
            continue
        size = int(header[2])
        body, pos = out[pos:pos + size], pos + size + 1
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == b"120000":
            target.symlink_to(body.decode())
        else:
            target.write_bytes(body)
            if mode == b"100755":
                target.chmod(0o755)
    return missing


def _env(entry: Entry, tree: Path) -> dict[str, str]:
    paths = [str(STUBS), *(str(DATA / s) for s in entry.stubs), *(str(tree / p) for p in entry.pythonpath), str(ROOT)]
    old = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths + ([old] if old else [])),
                OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", MPLBACKEND="Agg",
                CUDA_VISIBLE_DEVICES="", **dict(entry.env))


def _prepare(entry: Entry, tree: Path, repos: Path) -> None:
    """Run the entry's setup commands; ``{repos}`` is the mirror folder (a package of another mirrored
    repository, e.g. torchdiffeq, is extracted from it at its pinned commit)."""
    for cmd in entry.setup:
        argv = [a.replace("{python}", sys.executable).replace("{data}", str(DATA)).replace("{repos}", str(repos))
                for a in cmd]
        subprocess.run(argv, cwd=tree / entry.cwd, env=_env(entry, tree), check=True,
                       capture_output=True, timeout=300)


def _run(entry: Entry, base: Path, doctor: bool) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="nnd-real-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(base, tree, symlinks=True)
        report_path = Path(tmp) / "report.json"
        if doctor:
            argv = [sys.executable, "-m", "nndoctor", "run", "--quiet", "--json", str(report_path),
                    entry.path, "--", *entry.args]
        else:
            argv = [sys.executable, entry.path, *entry.args]
        t0 = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            proc = subprocess.run(argv, cwd=tree / entry.cwd, env=_env(entry, tree), capture_output=True,
                                  text=True, timeout=entry.timeout)
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            code, out, err = -9, str(exc.stdout or ""), f"timeout after {entry.timeout}s"
        seconds = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        report = None
        if report_path.exists():
            with open(report_path, encoding="utf-8") as fh:
                report = json.load(fh)
        return RunResult(code, seconds, out, err, report, cpu)


def judge(entry: Entry, plain: list[RunResult], doctor: list[RunResult]) -> Outcome:
    """Compare the plain runs with the runs under nndoctor."""
    out = Outcome(entry, plain_s=[r.seconds for r in plain], doctor_s=[r.seconds for r in doctor],
                  plain_cpu=[r.cpu_s for r in plain], doctor_cpu=[r.cpu_s for r in doctor])
    if any(r.code != 0 for r in plain):
        bad = next(r for r in plain if r.code != 0)
        out.error = f"plain run exits {bad.code}: {bad.stderr.strip().splitlines()[-1:] or ''}"
        return out
    for r in doctor:
        if r.code != 0 or r.report is None:
            out.crash = True
            errors = [ln for ln in r.stderr.splitlines() if re.match(r"\w+(Error|Exception|Interrupt)\b", ln)]
            out.detail = (errors or r.stderr.strip().splitlines() or ["no report"])[-1][:200]
            continue
        for f in r.report.get("findings", ()):
            dest = out.alarms if f["severity"] in ("warning", "error") else out.infos
            if f["code"] not in dest:
                dest.append(f["code"])
                if dest is out.alarms:
                    out.findings.append({k: f.get(k) for k in ("code", "severity", "message", "evidence")})
        out.internal_errors += len(r.report.get("internal_errors", ()))
    if entry.deterministic and not out.crash:
        want = metric_lines(plain[0].stdout, entry.metric)
        out.identical = bool(want) and all(metric_lines(r.stdout, entry.metric) == want for r in doctor)
        if not out.identical:
            got = metric_lines(doctor[0].stdout, entry.metric)
            out.detail = out.detail or f"plain {want[-1:]} vs nndoctor {got[-1:]}"
    return out


def _missing(entry: Entry) -> list[str]:
    """The packages of ``entry.requires`` that cannot be imported with the scripts' environment."""
    probe = "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))"
    if not entry.requires:
        return []
    proc = subprocess.run([sys.executable, "-c", probe, *entry.requires], env=_env(entry, Path.cwd()),
                          capture_output=True, text=True)
    return proc.stdout.split()


def run_entry(entry: Entry, repos: Path, repeats: int = 1) -> Outcome:
    missing = _missing(entry)
    if missing:
        return Outcome(entry, error=f"needs {', '.join(missing)} (not installed: pip install it, or put it on PYTHONPATH)")
    with tempfile.TemporaryDirectory(prefix="nnd-real-base-") as tmp:
        base = Path(tmp) / "tree"
        try:
            checkout(entry, repos, base)
            _prepare(entry, base, repos)
        except (FileNotFoundError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            return Outcome(entry, error=f"setup failed: {exc}")
        plain: list[RunResult] = []
        doctor: list[RunResult] = []
        for _ in range(max(1, repeats)):  # alternate, so that load changes hit both alike
            plain.append(_run(entry, base, doctor=False))
            doctor.append(_run(entry, base, doctor=True))
        return judge(entry, plain, doctor)


def _row(o: Outcome) -> str:
    if o.error:
        return f"{o.entry.name:34s} NOT RUN: {o.error}"
    ident = "n/a" if o.identical is None else ("yes" if o.identical else "NO")
    p = statistics.median(o.plain_s)
    d = statistics.median(o.doctor_s)
    alarms = ",".join(o.alarms) or "-"
    line = (f"{o.entry.name:34s} {'CRASH' if o.crash else 'ok':5s} {alarms:40s} {o.internal_errors:3d} "
            f"{p:7.1f} {d:7.1f} {o.ratio:5.2f}  {ident:4s}")
    cpu = o.cpu_ratios
    if cpu:
        line += f"  cpu {min(cpu):.2f}-{max(cpu):.2f}"
    if o.infos:
        line += f"  info: {','.join(o.infos)}"
    if o.detail:
        line += f"  [{o.detail}]"
    return line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repos", type=Path, default=Path("/work/.mirror"))
    p.add_argument("--manifest", type=Path, default=MANIFEST)
    p.add_argument("--only", default="", help="run the scripts whose name contains this text")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    ns = p.parse_args(argv)
    entries = [e for e in load_manifest(ns.manifest) if ns.only in e.name]
    print(f"{'script':34s} {'run':5s} {'warnings/errors':40s} {'int':>3s} {'plain_s':>7s} {'nnd_s':>7s} "
          f"{'ratio':>5s}  same  (cpu: CPU-time ratio range over the alternating repeats)")
    outcomes = []
    for entry in entries:
        o = run_entry(entry, ns.repos, ns.repeats)
        outcomes.append(o)
        print(_row(o), flush=True)
    ran = [o for o in outcomes if not o.error]
    ratios = sorted(o.ratio for o in ran if not o.crash)
    det = [o for o in ran if o.identical is not None]
    print(f"\nscripts run: {len(ran)}/{len(outcomes)}  crashes: {sum(o.crash for o in ran)}  "
          f"false alarms: {sum(len(o.alarms) for o in ran)} (in {sum(bool(o.alarms) for o in ran)} scripts)  "
          f"internal errors: {sum(o.internal_errors for o in ran)}  "
          f"identical outputs: {sum(bool(o.identical) for o in det)}/{len(det)}  "
          f"time ratio median {statistics.median(ratios) if ratios else float('nan'):.2f} "
          f"max {max(ratios) if ratios else float('nan'):.2f}")
    if ns.json:
        rows = [{"name": o.entry.name, "error": o.error, "crash": o.crash, "alarms": o.alarms, "infos": o.infos,
                 "internal_errors": o.internal_errors, "plain_s": o.plain_s, "nndoctor_s": o.doctor_s,
                 "identical": o.identical, "detail": o.detail, "findings": o.findings} for o in outcomes]
        ns.json.write_text(json.dumps(rows, indent=1))
    return 1 if any(o.crash or o.alarms or o.internal_errors for o in ran) else 0


if __name__ == "__main__":
    sys.exit(main())
