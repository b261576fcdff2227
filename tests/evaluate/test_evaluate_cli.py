from __future__ import annotations

from pathlib import Path

from helpers import run_cli

EXP = str(Path(__file__).with_name("exp_digits.py"))


def test_evaluate_cli_shift(tmp_path):
    out = tmp_path / "ev.json"
    r = run_cli("evaluate", EXP, "--set", "invert_test=true", "--human-error", "0.01", "--json", str(out))
    assert r.code == 0, r.stderr[-2000:]
    import json

    data = json.loads(out.read_text())
    ev = data["evaluation"]
    assert ev["decomposition"]["dominant"] == "distribution_shift"
    assert ev["decomposition"]["irreducible"] == 0.01
    assert ev["plan"][0]["code"].startswith(("fit.distribution-shift", "data.distribution-shift"))
    assert "distribution shift" in r.stderr


def test_data_cli_and_bad_inputs(tmp_path):
    r = run_cli("data", EXP)
    assert r.code == 0, r.stderr[-2000:]
    assert "examples per split" in r.stderr
    bad = run_cli("evaluate", str(tmp_path / "missing.py"))
    assert bad.code == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_cli("evaluate", EXP, "--set", "nope=1")
    assert bad.code == 2 and "no hyperparameter 'nope'" in bad.stderr
    bad = run_cli("evaluate", EXP, "--human-error", "2")
    assert bad.code == 2 and "expected a number in [0, 1)" in bad.stderr
