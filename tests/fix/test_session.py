"""The ``fix`` loop with the re-runs faked: order, noise run, combined run, Ctrl-C keeps the table."""

from __future__ import annotations

import pytest

import nndoctor.fix.session as session_mod
from nndoctor.fix.metrics import Figures
from nndoctor.fix.session import RunOutput, run_fix

FINDINGS = [
    {"code": "loss-input.probabilities-into-logit-loss", "severity": "error", "location": "model.3",
     "evidence": {"activation": "softmax"}},
    {"code": "loss-curve.plateaus", "severity": "warning", "caused_by": ["loss-input.probabilities-into-logit-loss"]},
    {"code": "zero-grad.not-cleared", "severity": "error", "location": "opt", "evidence": {"optimizer": "opt"}},
]


def _fake(accuracy_by_remedies, calls, interrupt_on=None):
    def run_child(script, args, remedies, max_steps, timeout=None):
        key = tuple(sorted(f["code"] for f in remedies))
        calls.append(key)
        if interrupt_on is not None and key == interrupt_on:
            raise KeyboardInterrupt
        acc = accuracy_by_remedies.get(key, 0.5)
        result = {"exit_code": 0, "report": {"findings": [] if remedies else FINDINGS, "facts": {}},
                  "remedy_errors": []}
        return RunOutput(result, f"final: accuracy={acc}", 1.0, Figures(script={"accuracy": acc}, exit_code=0))
    return run_child


def test_each_root_cause_remedy_then_the_verified_ones_together(monkeypatch):
    calls: list[tuple[str, ...]] = []
    soft, zero = ("loss-input.probabilities-into-logit-loss",), ("zero-grad.not-cleared",)
    both = tuple(sorted(soft + zero))
    monkeypatch.setattr(session_mod, "run_child", _fake({soft: 0.8, zero: 0.7, both: 0.9}, calls))
    s = run_fix("train.py", [])
    assert calls == [(), soft, zero, (), both]          # diagnosis, each remedy, noise run, together
    assert [a.remedy for a in s.attempts] == ["drop-output-activation", "zero-grad-each-step"]
    assert [a.verdict.verdict for a in s.attempts] == ["verified", "verified"]
    assert s.combined is not None and s.combined.after.script["accuracy"] == 0.9
    assert all(a.finding_gone for a in s.attempts)
    d = s.to_dict()
    assert d["runs"] == 5 and d["remedies"][0]["code"] == soft[0] and d["combined"]["verdict"] == "verified"
    assert d["remedies"][0]["apply"] is True and d["combined"]["apply"] is True


def test_no_noise_run_when_a_remedy_repeats_the_diagnosis_first_losses(monkeypatch):
    """A remedy acting late (or on evaluation only) whose re-run noted the diagnosis's first training
    losses bit for bit shows what the noise run would: the script repeats itself (noise 0)."""
    calls: list[tuple[str, ...]] = []
    soft, zero = ("loss-input.probabilities-into-logit-loss",), ("zero-grad.not-cleared",)
    fake = _fake({soft: 0.8, zero: 0.5}, calls)
    prefix = [1.0 / (i + 1) for i in range(64)]

    def run_child(script, args, remedies, max_steps, timeout=None, repeat_of=None):
        out = fake(script, args, remedies, max_steps, timeout)
        key = tuple(sorted(f["code"] for f in remedies))
        out.result["loss_prefix"] = prefix if key in ((), zero) else [2.0] + prefix[1:]
        return out

    monkeypatch.setattr(session_mod, "run_child", run_child)
    s = run_fix("train.py", [])
    assert calls == [(), soft, zero]                     # no noise run: zero-grad's re-run repeated the start
    assert [a.verdict.verdict for a in s.attempts] == ["verified", "no-effect"]
    d = s.to_dict()
    assert d["noise_run_skipped_for"] == "zero-grad-each-step" and d["runs"] == 3
    calls.clear()
    prefix_other = [p + 1e-9 for p in prefix]           # one bit off: the noise run is made
    monkeypatch.setattr(session_mod, "run_child", lambda *a, **k: (lambda o: (
        o.result.update(loss_prefix=prefix if not a[2] else prefix_other), o)[1])(fake(*a[:4])))
    run_fix("train.py", [])
    assert calls == [(), soft, zero, ()]


def test_a_symptom_gets_no_remedy_of_its_own(monkeypatch):
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(session_mod, "run_child", _fake({}, calls))
    s = run_fix("train.py", [])
    assert "loss-curve.plateaus" not in {f["code"] for a in s.attempts for f in a.findings}
    assert [a.verdict.verdict for a in s.attempts] == ["no-effect", "no-effect"] and s.combined is None
    assert [r["apply"] for r in s.to_dict()["remedies"]] == [False, False]  # nothing to apply


def test_ctrl_c_keeps_the_remedies_measured_so_far(monkeypatch):
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(session_mod, "run_child",
                        _fake({}, calls, interrupt_on=("zero-grad.not-cleared",)))
    s = run_fix("train.py", [])
    assert s.interrupted and isinstance(s.interrupt, KeyboardInterrupt)
    assert len(s.attempts) == 1 and s.to_dict()["interrupted"] is True


@pytest.mark.parametrize("remedy_error", ["drop-output-activation: ValueError: boom"])
def test_a_remedy_that_cannot_install_is_failed_not_fatal(monkeypatch, remedy_error):
    calls: list[tuple[str, ...]] = []
    fake = _fake({}, calls)

    def run_child(script, args, remedies, max_steps, timeout=None):
        out = fake(script, args, remedies, max_steps, timeout)
        if remedies and remedies[0]["code"].startswith("loss-input"):
            out.result.update(exit_code=None, report=None, remedy_errors=[remedy_error])
            out.figures.exit_code = None
        return out

    monkeypatch.setattr(session_mod, "run_child", run_child)
    s = run_fix("train.py", [])
    assert s.attempts[0].verdict.verdict == "failed" and "boom" in s.attempts[0].verdict.reason
    assert s.attempts[1].verdict.verdict == "no-effect"


def test_a_verified_remedy_of_a_symptom_is_demoted_when_the_root_remedy_clears_its_finding(monkeypatch):
    mode = {"code": "train-mode.training-in-eval-mode", "severity": "error", "location": "model"}
    lr = {"code": "lr.too-high", "severity": "warning", "location": "opt",
          "evidence": {"suggest_low": "1e-3", "suggest_high": "1e-2"}}
    calls: list[tuple[str, ...]] = []

    def run_child(script, args, remedies, max_steps, timeout=None):
        key = tuple(sorted(f["code"] for f in remedies))
        calls.append(key)
        acc = {(): 0.5, ("lr.too-high",): 0.6, ("train-mode.training-in-eval-mode",): 0.9}.get(key, 0.9)
        left = {(): [mode, lr], ("lr.too-high",): [mode]}.get(key, [])  # the mode fix clears lr.too-high too
        result = {"exit_code": 0, "report": {"findings": left, "facts": {}}, "remedy_errors": []}
        return RunOutput(result, f"final: acc={acc}", 1.0, Figures(script={"acc": acc}, exit_code=0))

    monkeypatch.setattr(session_mod, "run_child", run_child)
    s = run_fix("train.py", [])
    verdicts = {a.remedy: a.verdict.verdict for a in s.attempts}
    assert verdicts == {"train-mode-while-training": "verified", "learning-rate": "symptom"}
    assert "train-mode-while-training" in s.attempts[1].verdict.reason
    # each helped alone, so they were tried together: no better than the root cause's remedy alone
    assert s.combined is not None and s.combined.verdict.verdict == "symptom"
    assert "train-mode-while-training alone" in s.combined.verdict.reason


def _reinit_and_lr(monkeypatch, together: float):
    """Re-initialisation goes part of the way (0.93) and clears the lr finding, a lower lr helps
    less (0.90); ``together`` is both at once."""
    init = {"code": "init.activation-scale", "severity": "warning", "location": "model",
            "evidence": {"activation": "tanh"}}
    lr = {"code": "lr.too-high", "severity": "warning", "location": "opt",
          "evidence": {"suggest_low": "1e-3", "suggest_high": "1e-2"}}
    calls: list[tuple[str, ...]] = []

    def run_child(script, args, remedies, max_steps, timeout=None):
        key = tuple(sorted(f["code"] for f in remedies))
        calls.append(key)
        acc = {(): 0.875, ("init.activation-scale",): 0.93, ("lr.too-high",): 0.90}.get(key, together)
        left = {(): [init, lr], ("lr.too-high",): [init]}.get(key, [])
        result = {"exit_code": 0, "report": {"findings": left, "facts": {}}, "remedy_errors": []}
        return RunOutput(result, f"final: acc={acc}", 1.0, Figures(script={"acc": acc}, exit_code=0))

    monkeypatch.setattr(session_mod, "run_child", run_child)
    return run_fix("train.py", []), calls


def test_a_re_initialisation_and_the_measured_lr_are_tried_together_when_each_helps_alone(monkeypatch):
    s, calls = _reinit_and_lr(monkeypatch, together=0.96)
    assert calls[-1] == ("init.activation-scale", "lr.too-high")
    assert {a.remedy: a.verdict.verdict for a in s.attempts} == {"reinitialise": "verified", "learning-rate": "symptom"}
    assert s.combined is not None and s.combined.verdict.verdict == "verified"
    assert s.combined.remedy == "reinitialise + learning-rate"
    s, _ = _reinit_and_lr(monkeypatch, together=0.935)        # within the 2% noise floor of 0.93: not worth it
    assert s.combined is not None and s.combined.verdict.verdict == "symptom"


def _alternatives(monkeypatch, together: float, clip: float = 0.18, lr_value: float = 0.1825):
    """Clipping and a lower lr both stop an explosion (mse); ``together`` is both at once."""
    boom = {"code": "grad.exploding-through-time", "severity": "warning", "location": "model.rnn"}
    lr = {"code": "lr.too-high", "severity": "warning", "location": "opt",
          "evidence": {"suggest_low": "1e-3", "suggest_high": "1e-2"}}

    def run_child(script, args, remedies, max_steps, timeout=None):
        key = tuple(sorted(f["code"] for f in remedies))
        mse = {(): 1e9, ("grad.exploding-through-time",): clip, ("lr.too-high",): lr_value}.get(key, together)
        left = [] if remedies else [boom, lr]
        result = {"exit_code": 0, "report": {"findings": left, "facts": {}}, "remedy_errors": []}
        return RunOutput(result, f"final: mse={mse}", 1.0, Figures(script={"mse": mse}, exit_code=0))

    monkeypatch.setattr(session_mod, "run_child", run_child)
    return run_fix("train.py", [])


def test_remedies_that_do_worse_together_are_alternatives_and_the_first_stays_verified(monkeypatch):
    s = _alternatives(monkeypatch, together=0.57, clip=0.1842, lr_value=0.1825)   # lr 0.9% better: a tie
    verdicts = {a.remedy: a.verdict.verdict for a in s.attempts}
    assert verdicts == {"clip-gradients": "verified", "learning-rate": "symptom"}
    assert "clip-gradients" in s.attempts[1].verdict.reason and s.combined is not None


def test_a_clearly_better_alternative_is_the_one_kept_and_complements_are_left_alone(monkeypatch):
    s = _alternatives(monkeypatch, together=0.57, clip=0.3, lr_value=0.18)
    assert {a.remedy: a.verdict.verdict for a in s.attempts} == {"clip-gradients": "symptom",
                                                                 "learning-rate": "verified"}
    s = _alternatives(monkeypatch, together=0.1, clip=0.3, lr_value=0.18)        # better together: both kept
    assert {a.verdict.verdict for a in s.attempts} == {"verified"}


def test_root_causes_without_a_runtime_remedy_are_listed_with_the_edit_to_make():
    from nndoctor.fix.session import without_remedy

    findings = [
        {"code": "labels.unrelated-to-inputs", "severity": "warning", "location": "targets",
         "fixes": ["Check that the labels are paired with their inputs."], "caused_by": []},
        {"code": "fit.underfitting", "severity": "warning", "location": "training", "fixes": ["Use a bigger model."],
         "caused_by": [{"code": "labels.unrelated-to-inputs", "location": "targets"}]},   # a consequence
        {"code": "zero-grad.not-cleared", "severity": "error", "location": "opt", "fixes": ["x"], "caused_by": []},
        {"code": "fit.overfitting", "severity": "info", "location": "training", "fixes": ["y"], "caused_by": []},
    ]
    listed = without_remedy(findings)
    assert [{k: u[k] for k in ("code", "location", "edit")} for u in listed] == [
        {"code": "labels.unrelated-to-inputs", "location": "targets",
         "edit": "Check that the labels are paired with their inputs."}]


# -- robustness: a remedy's own bug is reported and skipped, never the session's end ---------------------
def test_a_remedy_whose_texts_raise_keeps_its_measured_verdict(monkeypatch):
    import dataclasses

    from nndoctor.fix.remedies import remedy_for

    def boom(f):
        raise KeyError("evidence")

    def broken(f):
        r = remedy_for(f)
        return r if r is None or r.name != "drop-output-activation" else dataclasses.replace(r, describe=boom, edit=boom)

    calls: list[tuple[str, ...]] = []
    soft = ("loss-input.probabilities-into-logit-loss",)
    monkeypatch.setattr(session_mod, "remedy_for", broken)
    monkeypatch.setattr(session_mod, "run_child", _fake({soft: 0.8}, calls))
    s = run_fix("train.py", [])
    a = s.attempts[0]
    assert a.remedy == "drop-output-activation" and a.verdict.verdict == "verified"
    assert a.description == "drop-output-activation" and "nndoctor explain" in a.edit
    assert s.attempts[1].verdict.verdict == "no-effect" and s.to_dict()["remedies"][0]["verdict"] == "verified"


def test_a_re_run_past_the_timeout_is_failed_and_not_fatal(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import time\ntime.sleep(60)\n")
    out = session_mod.run_child(str(script), [], [], None, timeout=1.0)
    assert out.result["report"] is None and "--timeout" in out.error and out.seconds < 30


def test_a_remedy_that_raises_during_the_run_is_reported_as_the_remedy_failing(monkeypatch, tmp_path):
    import json

    import torch.nn.functional as F

    import nndoctor.fix.child as child
    import nndoctor.fix.remedies as remedies_mod
    from nndoctor.fix.loss_arg_remedies import _ev
    from nndoctor.fix.remedies import Remedy, _patch

    bad = Remedy("broken", ("test.broken",), lambda f: "", lambda f: "",
                 lambda f, stack: _patch(stack, F, "relu", lambda original: _ev))  # _ev(tensor) raises inside nndoctor/fix
    monkeypatch.setattr(remedies_mod, "remedy_for", lambda f: bad)
    script = tmp_path / "train.py"
    script.write_text("import torch\nimport torch.nn.functional as F\nprint(F.relu(torch.ones(2)).sum())\n")
    spec, out = tmp_path / "spec.json", tmp_path / "out.json"
    spec.write_text(json.dumps({"script": str(script), "args": [], "max_steps": None,
                                "remedies": [{"code": "test.broken"}], "out": str(out)}))
    child.main([str(spec)])
    result = json.loads(out.read_text())
    assert result["exit_code"] == 1
    assert result["remedy_errors"] and "a remedy raised during the run: AttributeError" in result["remedy_errors"][0]
    assert F.relu is not _ev  # undone
    # a crash of the script's own code is not blamed on the remedy
    script.write_text("raise ValueError('the script')\n")
    child.main([str(spec)])
    assert json.loads(out.read_text())["remedy_errors"] == []


def test_every_fix_run_gets_an_ample_end_of_run_budget(monkeypatch, tmp_path):
    import json

    import nndoctor.fix.child as child
    from nndoctor.monitor import ending

    seen: list[float] = []
    real = ending.run_end_checks

    def spy(checks, step, reason, elapsed, dispatch):
        seen.append(ending.end_budget(elapsed))
        return real(checks, step, reason, elapsed, dispatch)

    monkeypatch.setattr("nndoctor.monitor.observer.core.run_end_checks", spy)
    script = tmp_path / "train.py"
    script.write_text("print('final: acc=0.5')\n")
    spec, out = tmp_path / "spec.json", tmp_path / "out.json"
    spec.write_text(json.dumps({"script": str(script), "args": [], "max_steps": None, "remedies": [], "out": str(out)}))
    child.main([str(spec)])
    assert seen == [child.FIX_END_BUDGET_S] and ending.end_budget(0.0) == ending.END_BUDGET_S


# -- a symptom's own remedy, once no remedy of its cause helped -------------------------------
_SLICE = {"code": "data.training-on-small-slice", "severity": "warning", "location": "training data",
          "evidence": {"train_rows": 100, "source_rows": 800}}
_OVERFIT = {"code": "fit.overfitting", "severity": "warning", "location": "validation",
            "caused_by": [{"code": "data.training-on-small-slice", "location": "training data"}],
            "evidence": {"best_step": 36}}


def _overfit_session(monkeypatch, mse_by_remedies, findings=(_SLICE, _OVERFIT)):
    calls: list[tuple[str, ...]] = []

    def run_child(script, args, remedies, max_steps, timeout=None):
        key = tuple(sorted(f["code"] for f in remedies))
        calls.append(key)
        mse = mse_by_remedies.get(key, 0.41)
        result = {"exit_code": 0, "report": {"findings": [] if remedies else list(findings), "facts": {}},
                  "remedy_errors": []}
        return RunOutput(result, f"final: mse={mse}", 1.0, Figures(script={"mse": mse}, exit_code=0))

    monkeypatch.setattr(session_mod, "run_child", run_child)
    return run_fix("train.py", []), calls


def test_a_symptoms_own_remedy_is_tried_when_its_causes_remedy_does_nothing(monkeypatch):
    """Overfitting caused by a small training slice that cannot be widened: stop at the best step."""
    s, calls = _overfit_session(monkeypatch, {("fit.overfitting",): 0.31})
    assert calls == [(), ("data.training-on-small-slice",), (), ("fit.overfitting",)]
    assert {a.remedy: a.verdict.verdict for a in s.attempts} == {"full-training-set": "no-effect",
                                                                  "early-stopping": "verified"}


def test_a_symptom_whose_cause_has_no_runtime_remedy_gets_its_own(monkeypatch):
    cause = {"code": "labels.unrelated-to-inputs", "severity": "warning", "location": "labels"}
    symptom = {**_OVERFIT, "caused_by": [{"code": cause["code"], "location": "labels"}]}
    s, calls = _overfit_session(monkeypatch, {("fit.overfitting",): 0.31}, findings=(cause, symptom))
    assert calls == [(), (), ("fit.overfitting",)]
    assert [a.remedy for a in s.attempts] == ["early-stopping"]


def test_a_symptom_is_left_alone_when_its_causes_remedy_helps(monkeypatch):
    s, calls = _overfit_session(monkeypatch, {("data.training-on-small-slice",): 0.2})
    assert calls == [(), ("data.training-on-small-slice",), ()]
    assert [a.remedy for a in s.attempts] == ["full-training-set"]


# -- a remedy tried only with evidence that its finding hurts this run ----------------------------------
_RAW = {"code": "preprocessing.unnormalised-features", "severity": "warning", "location": "net",
        "evidence": {"rms": 860.0}, "caused_by": []}


def test_inputs_on_a_large_scale_are_rescaled_only_where_the_run_shows_harm():
    """The breast-cancer fault's diagnosis (tanh units saturated and the model underfitting, both
    caused by the raw features) tries the rescaling; a model that trains well on the same raw scale
    (a fixed twin whose other bug was fixed) gets the warning but no re-run."""
    from nndoctor.fix.session import candidates, without_remedy

    harmed = [_RAW, {"code": "activation.saturated", "severity": "warning", "location": "net.0",
                     "caused_by": [{"code": "preprocessing.unnormalised-features", "location": "net"}]},
              {"code": "fit.underfitting", "severity": "warning", "location": "training",
               "caused_by": ["preprocessing.unnormalised-features"]}]
    assert [name for name, _ in candidates(harmed)] == ["normalise-inputs"]
    assert candidates([_RAW]) == [] and without_remedy([_RAW]) == []   # untried, and not 'no runtime remedy'
    info_only = [_RAW, {**harmed[1], "severity": "info"}]
    assert candidates(info_only) == []                                   # an info is no evidence of harm
