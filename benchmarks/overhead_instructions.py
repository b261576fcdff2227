"""Noise-free overhead figure: instructions nndoctor adds per unsampled training step.

Timing ratios on a shared machine move by more than the effect (see overhead.py). This
script counts instructions instead, with valgrind's callgrind (``apt install valgrind``):
a tiny MLP (so that the fixed per-step cost is what shows) runs ``--short`` and ``--long``
steps bare and under ``nndoctor.watch`` with sampling off after the dense start; the
difference of the two counts divided by the extra steps is the per-step cost of each mode,
start-up and import cancelled out. ``PYTHONHASHSEED=0`` makes the counts repeatable.
It takes about 10 minutes (Python under valgrind)::

    python benchmarks/overhead_instructions.py [--short 100] [--long 2100]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

__all__ = ["main"]

CHILD = r"""
import contextlib, sys, torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, {root!r})
import nndoctor
torch.set_num_threads(1)
torch.manual_seed(0)
m = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
opt = torch.optim.Adam(m.parameters(), 1e-3)
x, y = torch.randn(16, 8), torch.randint(0, 3, (16,))
ctx = nndoctor.watch(m, opt, sample_every=10**9) if {mode!r} == "watch" else contextlib.nullcontext()
with ctx:
    for _ in range({steps}):
        opt.zero_grad()
        F.cross_entropy(m(x), y).backward()
        opt.step()
"""


def _count(mode: str, steps: int) -> int:
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                           "-c", CHILD.format(root=root, mode=mode, steps=steps)],
                          capture_output=True, text=True, env=env, check=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if not found:
        raise RuntimeError(f"no instruction count in valgrind's output: {proc.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--short", type=int, default=100)
    p.add_argument("--long", type=int, default=2100)
    ns = p.parse_args(argv)
    if not shutil.which("valgrind"):
        print("overhead_instructions: valgrind is not installed (apt install valgrind)", file=sys.stderr)
        return 2
    if ns.long <= ns.short:
        print(f"overhead_instructions: --long must exceed --short, got {ns.long} and {ns.short}", file=sys.stderr)
        return 2
    jobs = [(mode, steps) for mode in ("bare", "watch") for steps in (ns.short, ns.long)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = dict(zip(jobs, pool.map(lambda job: _count(*job), jobs)))
    per_step = {mode: (counts[(mode, ns.long)] - counts[(mode, ns.short)]) / (ns.long - ns.short)
                for mode in ("bare", "watch")}
    extra = per_step["watch"] - per_step["bare"]
    print(f"instructions per step, tiny MLP, {ns.long - ns.short} unsampled steps: bare {per_step['bare']:,.0f}, "
          f"watch {per_step['watch']:,.0f}: nndoctor adds {extra:,.0f} ({extra / per_step['bare']:.1%} of this "
          f"tiny step)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
