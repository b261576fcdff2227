"""The shared CLI helpers: one number format, one JSON encoding, one --fail-on gate."""

from __future__ import annotations

import argparse
import json
import math
import re

import pytest

from nndoctor.cli.common import fmt_num, json_text, progress, sparkline, write_json
from nndoctor.cli.options import UsageError, fail_on_exit, nonneg_int, positive_float, positive_int, rate
from nndoctor.findings import Finding, Report, Severity, Step


def test_fmt_num_matches_the_three_former_formats() -> None:
    # tune's params (floats .4g, others str), fix's figures (None '-', inf spelled out), evaluate's rates (.3f)
    assert fmt_num(0.000123456) == "0.0001235"
    assert fmt_num(64) == "64" and fmt_num(123456) == "123456" and fmt_num("adam") == "adam"
    assert fmt_num(True) == "True"
    assert fmt_num(None) == "-" and fmt_num(None, missing="None") == "None"
    assert fmt_num(math.inf) == "inf" and fmt_num(-math.inf) == "-inf" and fmt_num(math.nan) == "nan"
    assert fmt_num(0.5, ".3f") == "0.500" and fmt_num(None, ".3f") == "-"


def test_json_text_is_strict_json_with_non_finite_numbers_as_strings() -> None:
    import numpy as np

    text = json_text({"a": (1, 2), "b": np.float32(0.5), "c": math.nan, "d": np.int64(3), 4: None})
    assert text.endswith("\n")
    assert json.loads(text) == {"a": [1, 2], "b": 0.5, "c": "nan", "d": 3, "4": None}
    assert "NaN" not in text


def test_write_json_goes_through_the_atomic_writer(tmp_path, capsys) -> None:
    path = tmp_path / "out.json"
    assert write_json(str(path), lambda: {"x": 1.5}) == []
    assert json.loads(path.read_text()) == {"x": 1.5}
    assert write_json(None, {"x": 1}) == []
    assert write_json("-", {"y": 2}) == []
    assert json.loads(capsys.readouterr().out) == {"y": 2}
    assert write_json(str(tmp_path / "missing" / "deeper" / "x.json"), {"z": 1}) == []  # folders are made
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert write_json(str(blocked / "x.json"), {"z": 1}) == ["--json"]
    assert "could not write --json" in capsys.readouterr().err


def _report(severity: Severity | None) -> Report:
    findings = [] if severity is None else [Finding(code="fit.overfitting", severity=severity, step=Step.EVALUATE,
                                                    message="m")]
    return Report(findings=findings)


@pytest.mark.parametrize("severity, fail_on, code, expected", [
    (None, "info", 0, 0), (Severity.WARNING, None, 0, 0), (Severity.WARNING, "warning", 0, 1),
    (Severity.WARNING, "error", 0, 0), (Severity.INFO, "info", 0, 1), (Severity.ERROR, "warning", 0, 1),
    (Severity.ERROR, "error", 3, 3), (Severity.INFO, "error", 3, 3), (None, None, 130, 130),
])
def test_fail_on_exit(severity: Severity | None, fail_on: str | None, code: int, expected: int) -> None:
    assert fail_on_exit(_report(severity), fail_on, code) == expected


def test_argparse_types_echo_the_bad_value() -> None:
    assert positive_int("3") == 3 and nonneg_int("0") == 0 and positive_float("1e-3") == 1e-3 and rate("0.5") == 0.5
    for fn, text, message in [(positive_int, "0", "expected a number >= 1, got '0'"),
                              (positive_int, "x", "expected a whole number, got 'x'"),
                              (nonneg_int, "-1", "expected a number >= 0, got '-1'"),
                              (positive_float, "0", "expected a number > 0, got '0'"),
                              (positive_float, "nan", "expected a finite number, got 'nan'"),
                              (positive_float, "x", "expected a number, got 'x'"),
                              (rate, "1", "expected a number in [0, 1), got '1'")]:
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
            fn(text)


def test_usage_error_is_the_one_of_nndoctor_cli() -> None:
    import nndoctor.cli
    from nndoctor.report.output import check_output_path

    assert nndoctor.cli.UsageError is UsageError
    with pytest.raises(UsageError):
        check_output_path("", "--json")


def test_progress_and_sparkline() -> None:
    from rich.console import Console

    console = Console(file=open("/dev/null", "w"))
    assert len(progress(console, "label").columns) == 4
    assert len(progress(console, counts=True, transient=False).columns) == 5
    assert sparkline([1.0, 2.0, math.nan]) == "▁█×"
