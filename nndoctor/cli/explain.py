"""``nndoctor explain [CODE]``: a finding code's page, or every code by category."""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Any

from nndoctor.catalogue import CATALOGUE, by_category
from nndoctor.catalogue.docs import page
from nndoctor.cli.options import UsageError
from nndoctor.findings import CATEGORIES

__all__ = ["cmd_explain", "listing", "register"]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain", help="what a finding code means, why it matters and how to fix it",
        description="Print the page of a finding code (what it means, why it matters, how nndoctor detects "
                    "it, the fixes, a wrong/right example). Without CODE, list every code by category; with a "
                    "category (e.g. loss-input), list that category's codes.")
    p.add_argument("code", nargs="?", help="a finding code such as loss-input.probabilities-into-logit-loss, "
                                           "or a category")
    p.set_defaults(func=cmd_explain)


def listing(category: str | None = None) -> str:
    """Every code (or one category's) with its severity and title, by category."""
    lines = []
    for cat, infos in by_category().items():
        if category is not None and cat != category:
            continue
        lines.append(f"{cat}: {CATEGORIES[cat]}")
        width = max(len(i.code) for i in infos)
        lines += [f"  {i.code:<{width}}  {i.severity.value:<7}  {i.title}" for i in infos]
        lines.append("")
    lines.append("nndoctor explain CODE prints a code's page.")
    return "\n".join(lines)


def cmd_explain(ns: argparse.Namespace) -> int:
    code = (ns.code or "").strip()
    if not code:
        text = listing()
    elif code in CATALOGUE:
        text = page(CATALOGUE[code], header=False)
    elif code in CATEGORIES and any(c.startswith(code + ".") for c in CATALOGUE):
        text = listing(code)
    else:
        close = difflib.get_close_matches(code, list(CATALOGUE), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `nndoctor explain` lists them"
        raise UsageError(f"unknown finding code {code!r}{hint}")
    sys.stdout.write(text.rstrip("\n") + "\n")
    return 0
