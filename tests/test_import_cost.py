"""Start-up cost: ``import nndoctor``, ``nndoctor.watch`` and ``nndoctor run`` import only what a run needs.

Each case runs in a fresh interpreter and lists ``sys.modules``: the report renderers, ``nndoctor fix``,
tune, the evaluate workflow, the other commands and rich's progress bars are imported when used, not
at start-up (a short script pays for every module imported before its first step).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import nndoctor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(nndoctor.__file__)))

#: never imported by a run that writes no HTML and shows no progress bar
NOT_FOR_A_RUN = ("nndoctor.fix", "nndoctor.tune", "nndoctor.improve", "nndoctor.start", "nndoctor.evaluate.workflow",
                 "nndoctor.report.html", "nndoctor.catalogue.docs", "nndoctor.diagnose", "nndoctor.cli.evaluate",
                 "nndoctor.cli.fix", "nndoctor.cli.tune", "nndoctor.cli.merge", "rich.progress", "rich.live")


def _modules(code: str) -> dict[str, list[str]]:
    """The modules a fresh interpreter holds at each ``snap("name")`` of ``code``."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    script = ("import json, sys\nSNAPS = {}\ndef snap(name):\n    SNAPS[name] = sorted(sys.modules)\n"
              + textwrap.dedent(code) + "\nprint(json.dumps(SNAPS))\n")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _imported(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


def test_import_nndoctor_imports_neither_torch_nor_renderers() -> None:
    mods = _modules("import nndoctor\nsnap('import')")["import"]
    assert _imported(mods, ("torch", "rich", "nndoctor.monitor", "nndoctor.report", "nndoctor.cli", "nndoctor.debug",
                            "nndoctor.distributed", *NOT_FOR_A_RUN)) == []


def test_watch_and_run_import_only_what_a_run_needs(tmp_path: os.PathLike[str]) -> None:
    """One interpreter (torch is imported once): ``nndoctor.watch``, then ``nndoctor run`` of a script."""
    script = os.path.join(str(tmp_path), "train.py")
    with open(script, "w") as f:
        f.write(textwrap.dedent("""
            import torch
            torch.manual_seed(0)
            model = torch.nn.Linear(4, 2)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
            for _ in range(3):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
        """))
    snaps = _modules(f"""
        import contextlib, io
        import nndoctor
        nndoctor.watch
        snap("watch")
        from nndoctor.cli import main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["run", {script!r}]) == 0
        snap("run")
    """)
    watch, run = snaps["watch"], snaps["run"]
    assert "nndoctor.monitor.observer" in watch  # (the test sees what it claims to)
    assert _imported(watch, ("rich", "nndoctor.cli", "nndoctor.report.terminal", *NOT_FOR_A_RUN)) == []
    # the run happened, with its checks registered and its summary rendered
    assert "nndoctor.monitor.checks.gradients" in run and "nndoctor.debug.shape" in run
    assert "nndoctor.report.terminal" in run
    assert _imported(run, NOT_FOR_A_RUN) == []
