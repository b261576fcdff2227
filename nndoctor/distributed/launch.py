"""``nndoctor run --nproc N train.py``: launch ``torch.distributed.run`` with N ranks on this machine,
each running ``nndoctor run``, then merge their results into one report."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Sequence

from nndoctor.distributed.rankinfo import MERGE_BY_LAUNCHER, RUN_DIR_ENV
from nndoctor.distributed.results import collect

__all__ = ["LaunchResult", "launch", "torchrun_command"]


class LaunchResult:
    def __init__(self, payloads: dict[int, dict], missing: list[int], returncode: int, run_dir: str) -> None:
        self.payloads = payloads
        self.missing = missing
        self.returncode = returncode
        self.run_dir = run_dir

    @property
    def exit_code(self) -> int:
        """The script's exit code: the first non-zero one of a rank, else the launcher's when a rank
        wrote no result (it died), else 0."""
        for rank in sorted(self.payloads):
            code = self.payloads[rank].get("exit_code")
            if isinstance(code, int) and code != 0:
                return code
        return self.returncode if self.missing else 0


def torchrun_command(nproc: int, nndoctor_args: Sequence[str], script: str, script_args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "nndoctor", "run", *nndoctor_args, "--", script, *script_args]


def launch(nproc: int, nndoctor_args: Sequence[str], script: str, script_args: Sequence[str],
           *, grace: float = 5.0) -> LaunchResult:
    """Run the ranks and collect their results (a Ctrl-C or SIGTERM stops them, then collects)."""
    given = os.environ.get(RUN_DIR_ENV)
    run_dir = given or tempfile.mkdtemp(prefix="nndoctor-ranks-")
    env = dict(os.environ, **{RUN_DIR_ENV: run_dir, MERGE_BY_LAUNCHER: "1"})
    started = time.time()
    proc = subprocess.Popen(torchrun_command(nproc, nndoctor_args, os.path.abspath(script), script_args), env=env)
    interrupted: BaseException | None = None
    try:
        rc = proc.wait()
    except KeyboardInterrupt as exc:  # (SIGTERM arrives as one under terminate_as_interrupt)
        interrupted = exc
        proc.terminate()
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    payloads, missing = collect(run_dir, list(range(nproc)), timeout=grace if rc == 0 else 0.5,
                                since=started - 60)
    result = LaunchResult(payloads, missing, rc, run_dir if given else "")
    if not given:
        shutil.rmtree(run_dir, ignore_errors=True)
    if interrupted is not None and not payloads:
        raise interrupted
    return result
