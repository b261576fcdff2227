"""``nndoctor merge DIR``, and the distributed ends of ``nndoctor run`` (``--nproc N``, and a rank under
the user's own torchrun)."""

from __future__ import annotations

import argparse
import functools
import glob
import logging
import os
from typing import Any, Callable

from rich.console import Console

from nndoctor.cli.common import render, write_report
from nndoctor.cli.options import UsageError, add_fail_on, fail_on_exit
from nndoctor.distributed.merge import merge_results
from nndoctor.distributed.rankinfo import RankInfo
from nndoctor.findings import Report

__all__ = ["cmd_merge", "finish_run", "register", "run_nproc"]

logger = logging.getLogger("nndoctor")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "merge",
        help="merge the per-rank results of a distributed run into one report",
        usage="nndoctor merge [OPTIONS] PATH [PATH...]",
        description=(
            "Each rank of 'nndoctor run' under torchrun writes rank-NNNNN.json into $NNDOCTOR_RUN_DIR (or a "
            "folder under the temporary folder). On one machine rank 0 merges them itself; for a multi-node "
            "run without a shared folder, copy every node's rank-*.json files into one folder and merge "
            "them here: one summary, JSON and HTML report, each finding saying on which ranks it was seen."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders holding rank-*.json files, or the files")
    p.add_argument("--json", metavar="PATH", help="write the merged findings as JSON to PATH ('-' for stdout)")
    p.add_argument("--html", metavar="PATH", help="write the merged HTML report to PATH")
    add_fail_on(p)
    p.set_defaults(func=cmd_merge)


def _render(console: Console, title: str) -> Callable[[Report], None]:
    return functools.partial(render, console=console, title=title)


def cmd_merge(ns: argparse.Namespace) -> int:
    from nndoctor.distributed.rankrun import show_merged
    from nndoctor.distributed.results import read_results
    from nndoctor.report.output import check_outputs

    check_outputs({"--json": ns.json, "--html": ns.html})
    files: list[str] = []
    for path in ns.paths:
        if os.path.isdir(path):
            files += sorted(glob.glob(os.path.join(path, "rank-*.json")))
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise UsageError(f"{path!r} does not exist: give the folder of the rank-*.json result files")
    payloads = read_results(files)
    if not payloads:
        raise UsageError(f"no rank result (rank-*.json written by 'nndoctor run' under torchrun) in {', '.join(ns.paths)}")
    report = merge_results(payloads, run_dir=", ".join(ns.paths))
    console = Console(stderr=True)
    script = os.path.basename(str(report.facts.get("script", "run")))
    show_merged(report, console, _render(console, f"nndoctor: {script} (merged)"))
    write_report(report, ns.json, ns.html)
    codes = [p.get("exit_code") for _, p in sorted(payloads.items())]
    return fail_on_exit(report, ns.fail_on, next((c for c in codes if isinstance(c, int) and c), 0))


def finish_run(rank: RankInfo, result: Any, ns: Any, console: Console, started: float) -> int:
    """A rank under torchrun: write its result; rank 0 merges, prints and writes the reports."""
    from nndoctor.distributed.rankrun import finish_rank

    show = _render(console, f"nndoctor: {os.path.basename(ns.script)}")
    try:
        merged = finish_rank(rank, result, ns, console, started, show)
    except Exception as exc:  # a bug of ours must not cost the script's exit code: rank 0 shows its own report
        logger.warning("nndoctor could not merge the ranks' results (%s: %s)", type(exc).__name__, exc,
                       exc_info=logger.isEnabledFor(logging.DEBUG))
        if not rank.is_main:
            return result.exit_code
        merged = result.report
        show(merged)
    if merged is None:
        return result.exit_code
    write_report(merged, ns.json, ns.html)
    return fail_on_exit(merged, ns.fail_on, result.exit_code)


def run_nproc(ns: Any, script_args: list[str], console: Console) -> int:
    """``nndoctor run --nproc N``: launch the ranks, then print and write the merged report."""
    from nndoctor.distributed.launch import launch
    from nndoctor.distributed.rankrun import show_merged
    from nndoctor.monitor.runner import ScriptError, check_script
    from nndoctor.signals import terminate_as_interrupt

    try:
        check_script(ns.script)
    except ScriptError as exc:
        raise UsageError(str(exc)) from None
    args: list[str] = []
    if ns.max_steps:
        args += ["--max-steps", str(ns.max_steps)]
    args += ["--sample-every", str(ns.sample_every), "--dense-steps", str(ns.dense_steps)]
    if ns.quiet:
        args.append("--quiet")
    with terminate_as_interrupt():
        launched = launch(ns.nproc, args, ns.script, script_args)
    if not launched.payloads:
        console.print(f"nndoctor: no rank wrote a result (torch.distributed.run exited with {launched.returncode})")
        return launched.returncode or 1
    try:
        report = merge_results(launched.payloads, world_size=ns.nproc, missing=launched.missing,
                               run_dir=launched.run_dir)
    except Exception as exc:  # a bug of ours: say so, keep the script's exit code
        logger.warning("nndoctor could not merge the ranks' results (%s: %s)", type(exc).__name__, exc,
                       exc_info=logger.isEnabledFor(logging.DEBUG))
        return launched.exit_code
    show_merged(report, console, _render(console, f"nndoctor: {os.path.basename(ns.script)}"))
    write_report(report, ns.json, ns.html)
    return fail_on_exit(report, ns.fail_on, launched.exit_code)
