"""``diagnose EXP --fix``: remedies on an experiment file, as --set overrides, module rewrites
or runtime hooks, each judged by a fresh training run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nndoctor.fix.experiment import fix_experiment, set_override

EXP = str(Path(__file__).with_name("exp_blobs.py"))
HPARAMS = {"lr": 0.05, "dropout": 0.0, "softmax": False, "epochs": 4, "hidden": 32}


def _warning(code: str, location: str = "", **evidence: object) -> dict:
    return {"code": code, "severity": "warning", "location": location, "evidence": evidence, "caused_by": []}


def test_softmax_layer_is_rewritten_to_identity_and_verified():
    fix = fix_experiment(EXP, [_warning("loss-input.probabilities-into-logit-loss", "model.4", activation="softmax")],
                         overrides={"softmax": "true"}, epochs=3, hparams={**HPARAMS, "softmax": True})
    (a,) = fix.attempts
    assert a.how.startswith("module rewrite") and a.verdict.verdict == "verified"
    assert a.after is not None and fix.before is not None and a.after > fix.before + 0.1


def test_dropout_and_learning_rate_are_tried_as_set_overrides():
    fix = fix_experiment(EXP, [_warning("regularization.dropout-too-strong", "model.2")],
                         overrides={"dropout": "0.95"}, epochs=3, hparams={**HPARAMS, "dropout": 0.95})
    assert fix.attempts[0].how == "--set dropout=0.2" and fix.attempts[0].verdict.verdict == "verified"
    lr = _warning("lr.too-low", suggest_low="0.01", suggest_high="0.1")
    assert set_override(lr, {**HPARAMS, "lr": 1e-4}) == {"lr": "0.0316"}
    assert set_override(lr, {"hidden": 32}) is None           # no lr hyperparameter: no --set


def test_a_remedy_without_a_hyperparameter_runs_as_a_hook_and_healthy_gets_nothing():
    fix = fix_experiment(EXP, [_warning("grad.exploding-gradients")], epochs=2, hparams=HPARAMS)
    (a,) = fix.attempts
    assert a.how.startswith("runtime hook") and a.verdict.verdict != "failed"
    assert fix_experiment(EXP, [], epochs=2, hparams=HPARAMS).attempts == []
    info = {**_warning("lr.too-low", suggest_low="0.01", suggest_high="0.1"), "severity": "info"}
    assert fix_experiment(EXP, [info], epochs=2, hparams=HPARAMS).attempts == []


@pytest.mark.slow
def test_diagnose_fix_on_the_command_line_verifies_the_rewrite_and_writes_it_to_json(tmp_path):
    from nndoctor.cli import main

    out = tmp_path / "d.json"
    assert main(["diagnose", EXP, "--set", "softmax=true", "--set", "epochs=3", "--fix", "--json", str(out)]) == 0
    fix = json.loads(out.read_text())["facts"]["fix"]
    tried = {r["remedy"]: r for r in fix["remedies"]}
    assert tried["drop-output-activation"]["verdict"] == "verified"
    assert tried["drop-output-activation"]["how"].startswith("module rewrite")
