"""Tuning strategy on Optuna: samplers, storage, coarse-to-fine narrowing, importance.

All search, pruning and storage is Optuna's. nndoctor adds the strategy (coarse-to-fine
stages computed from the study itself, so workers on many machines agree on them without
talking to each other), safe defaults (heartbeats and retries on shared RDB storage, a
journal file locally whose dead workers' trials are failed and retried, see storage.py)
and the reading of the result against the field guide.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from nndoctor.tune.interrupt import check as check_interrupt
from nndoctor.tune.space import Choice, Dimension, IntUniform, LogUniform, Uniform, describe, narrow, suggest
from nndoctor.tune.storage import fail_dead_workers, make_storage, optuna_experimental, worker_attrs

try:
    import optuna
    from optuna.trial import TrialState
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("nndoctor tune needs Optuna: pip install 'nndoctor[tune]'") from exc

__all__ = ["METHODS", "Diverged", "TuneResult", "compare_with_guide", "importance", "make_storage", "make_study",
           "narrowed_space", "run_trials"]

logger = logging.getLogger("nndoctor")

METHODS = ("bayes", "coarse-to-fine", "random", "grid")
#: the default method, chosen by benchmarks/tune_efficiency.py (see docs/tune.md)
DEFAULT_METHOD = "bayes"

#: field guide sensitivity of the usual hyperparameter names
SENSITIVITY = {
    "high": ("lr", "learning_rate", "init_lr", "lr_schedule", "schedule", "loss", "hidden", "hidden_size", "width",
             "units", "n_units", "n_units_1", "n_units_2", "channels", "d_model"),
    "medium": ("init", "depth", "layers", "num_layers", "n_layers", "kernel_size", "weight_decay", "wd", "dropout",
               "dropout_1", "dropout_2", "l2"),
    "low": ("optimizer", "beta1", "beta2", "momentum", "batch_size", "activation", "activation_fn_1",
            "activation_fn_2", "nonlinearity"),
}


class Diverged(RuntimeError):
    """Training diverged (NaN/Inf loss): the trial is recorded as failed with this reason."""


def _grid(space: Mapping[str, Dimension], points: int = 5) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for name, dim in space.items():
        if isinstance(dim, Choice):
            grid[name] = list(dim.options)
        elif isinstance(dim, LogUniform):
            grid[name] = [float(f"{dim.low * (dim.high / dim.low) ** (i / (points - 1)):.4g}") for i in range(points)]
        elif isinstance(dim, Uniform):
            grid[name] = [dim.low + (dim.high - dim.low) * i / (points - 1) for i in range(points)]
        elif isinstance(dim, IntUniform):
            if dim.log:
                vals = {int(round(dim.low * (dim.high / dim.low) ** (i / (points - 1)))) for i in range(points)}
            else:
                vals = {int(round(dim.low + (dim.high - dim.low) * i / (points - 1))) for i in range(points)}
            grid[name] = sorted(vals)
    return grid


def make_study(
    name: str, storage: Any, method: str, space: Mapping[str, Dimension], *, seed: int | None = None,
    direction: str = "minimize", n_startup: int = 10,
) -> optuna.Study:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if method == "bayes":
        # chosen on purpose (benchmarks/tune_efficiency.py): Optuna still calls some of these experimental
        with optuna_experimental("``multivariate``", "``group``", "``constant_liar``"):
            sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=n_startup, multivariate=True, group=True, constant_liar=True)
        pruner: optuna.pruners.BasePruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    elif method == "grid":
        sampler = optuna.samplers.GridSampler(_grid(space), seed=seed)
        pruner = optuna.pruners.NopPruner()
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                direction=direction, load_if_exists=True)
    study.set_user_attr("method", method)
    return study


def narrowed_space(
    study: optuna.Study, space: Mapping[str, Dimension], budget: int, *, stages: int = 3, keep: float = 0.2,
) -> tuple[int, dict[str, Dimension]]:
    """Coarse-to-fine: the stage this trial belongs to and the space narrowed around the best trials.

    Stage ``s`` starts after ``s * budget / stages`` finished trials; its space is the
    original one narrowed ``s`` times, each time around the top ``keep`` share of the
    trials finished so far. Computed from the study alone, so every worker agrees.
    """
    trials = study.get_trials(deepcopy=False)
    n_finished = sum(1 for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    done = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    stage = min(stages - 1, n_finished * stages // max(budget, 1)) if len(done) >= 3 else 0
    sp = dict(space)
    if stage == 0:
        return 0, sp
    sign = 1 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1
    ranked = sorted(done, key=lambda t: sign * t.value)
    for s in range(1, stage + 1):
        top = ranked[: max(3, int(len(ranked) * keep / s))]
        sp = {k: _narrow_same_kind(dim, [t.params.get(k) for t in top], 0.25 / s) for k, dim in sp.items()}
    return stage, sp


def _narrow_same_kind(dim: Dimension, values: list[Any], margin: float) -> Dimension:
    """``narrow`` that keeps the Optuna distribution kind and choices of a parameter.

    Optuna lets a numeric range change between trials of one study, but not a parameter's
    kind (int -> categorical) nor a categorical's options: choices stay whole, and an
    integer range that collapses to one value keeps a neighbour.
    """
    if isinstance(dim, Choice):
        return dim
    new = narrow(dim, values, margin=margin)
    if isinstance(new, Choice) and isinstance(dim, IntUniform):
        a = int(new.options[0])
        return IntUniform(a, a + 1, dim.log) if a + 1 <= dim.high else IntUniform(a - 1, a, dim.log)
    return new


@dataclass
class TuneResult:
    study: optuna.Study
    funnel: list[dict[str, str]] = field(default_factory=list)

    @property
    def best(self) -> optuna.trial.FrozenTrial | None:
        try:
            return self.study.best_trial
        except ValueError:
            return None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.study.get_trials(deepcopy=False):
            out[t.state.name.lower()] = out.get(t.state.name.lower(), 0) + 1
        return out


class _OwnFailures(logging.Filter):
    """Drops Optuna's warning and traceback for trials whose failure nndoctor reports itself."""

    def __init__(self) -> None:
        super().__init__()
        self.numbers: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.startswith(f"Trial {n} failed") for n in self.numbers)


def run_trials(
    study: optuna.Study,
    objective: Callable[[dict[str, Any], Callable[[float, int], bool]], float],
    space: Mapping[str, Dimension],
    *,
    n_trials: int,
    method: str,
    fixed: Mapping[str, Any] | None = None,
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None,
) -> TuneResult:
    """Run trials until the study holds ``n_trials`` finished ones (complete, pruned or failed).

    ``objective(params, report)`` trains and returns the value to minimise; it calls
    ``report(value, step)`` with intermediate values, which returns True when the trial
    should stop early (pruned). Several processes may run this on one shared study.
    """
    funnel: list[dict[str, str]] = []
    quiet = _OwnFailures()  # diverged and interrupted trials: reported by their user attrs, not a traceback

    worker = worker_attrs()

    def wrapped(trial: optuna.Trial) -> float:
        for key, val in worker.items():
            trial.set_user_attr(key, val)
        sp: Mapping[str, Dimension] = space
        if method == "coarse-to-fine":
            stage, sp = narrowed_space(study, space, n_trials)
            trial.set_user_attr("stage", stage)
            if len(funnel) <= stage:
                funnel.append({k: describe(v) for k, v in sp.items()})
        params = {k: suggest(trial, k, dim) for k, dim in sp.items()}
        params.update(fixed or {})

        def report(value: float, step: int) -> bool:
            if not math.isfinite(value):
                raise Diverged(f"training diverged: validation value {value} at step {step}")
            trial.report(value, step)
            prune = trial.should_prune()
            check_interrupt()  # a Ctrl-C/SIGTERM held back while the report was written
            return prune

        try:
            check_interrupt()
            value = objective(params, report)
        except Diverged as exc:
            quiet.numbers.add(trial.number)
            trial.set_user_attr("fail_reason", str(exc))
            raise
        except KeyboardInterrupt:  # Optuna fails the trial; say why (not counted as finished, not retried)
            quiet.numbers.add(trial.number)
            trial.set_user_attr("stopped", "interrupted (Ctrl-C or SIGTERM)")
            raise
        if value is None or not math.isfinite(value):
            quiet.numbers.add(trial.number)
            trial.set_user_attr("fail_reason", f"training diverged: final value {value}")
            raise Diverged(f"training diverged: final value {value}")
        return float(value)

    def notify(study_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None:
            on_trial(trial)
        check_interrupt()

    fail_dead_workers(study)  # a resumed local study may hold the running trial of a killed worker
    optuna_log = logging.getLogger("optuna.study._optimize")
    optuna_log.addFilter(quiet)
    try:
        _loop(study, wrapped, notify, n_trials)
    finally:
        optuna_log.removeFilter(quiet)
    if method == "coarse-to-fine" and funnel:
        study.set_user_attr("funnel", funnel)
    return TuneResult(study=study, funnel=funnel)


def _loop(study: optuna.Study, wrapped: Callable[[optuna.Trial], float], notify: Callable[..., None],
          n_trials: int) -> None:
    import time

    waited: set[int] = set()
    while True:
        check_interrupt()
        trials = study.get_trials(deepcopy=False)
        # a FAIL without our reason is a worker that died or was interrupted: not counted as finished
        # (a dead worker's trial is re-queued by the heartbeat callback, or fail_dead_workers locally)
        n_done = sum(1 for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
                     or (t.state is TrialState.FAIL and "fail_reason" in t.user_attrs))
        n_running = sum(1 for t in trials if t.state is TrialState.RUNNING)
        n_waiting = sum(1 for t in trials if t.state is TrialState.WAITING)
        if n_done >= n_trials:
            break
        if n_done + n_running >= n_trials and not n_waiting:
            # the rest are running on other workers; fail those whose worker stopped beating or died
            fail_dead_workers(study)
            for t in trials:
                if t.state is TrialState.RUNNING and t.number not in waited:
                    waited.add(t.number)
                    logger.info("waiting for trial %d running on worker %s", t.number,
                                t.user_attrs.get("worker", "(starting)"))
            time.sleep(1.0)
            continue
        study.optimize(wrapped, n_trials=1, catch=(Diverged,), callbacks=[notify],
                       gc_after_trial=False, show_progress_bar=False)


def _distribution(dim: Dimension) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(dim, LogUniform):
        return FloatDistribution(dim.low, dim.high, log=True)
    if isinstance(dim, Uniform):
        return FloatDistribution(dim.low, dim.high)
    if isinstance(dim, IntUniform):
        return IntDistribution(dim.low, dim.high, log=dim.log)
    return CategoricalDistribution(list(dim.options))


def importance(study: optuna.Study, space: Mapping[str, Dimension]) -> dict[str, float]:
    """Hyperparameter importance: fANOVA when scikit-learn is installed, else PED-ANOVA.

    Trials are re-expressed on ``space`` (the widest ranges) first, so that the narrowed
    ranges of coarse-to-fine stages can be compared; pruned trials count at their last
    reported value.
    """
    done = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if t.state is TrialState.PRUNED:
            if not t.intermediate_values:
                continue
            # a pruned trial was bad: keep it, at its last reported value, so the sample is not biased
            t = optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                          value=t.intermediate_values[max(t.intermediate_values)],
                                          user_attrs=t.user_attrs)
        done.append(t)
    first_stage = [t for t in done if t.user_attrs.get("stage") == 0]
    if len(first_stage) >= 8:  # coarse-to-fine: the unnarrowed stage is the unbiased sample
        done = first_stage
    if len(done) < 4:
        return {}
    varying = {k for t in done for k in t.params if len({str(u.params.get(k)) for u in done}) > 1}
    if not varying:
        return {}
    dists = {k: _distribution(d) for k, d in space.items() if k in varying}
    flat = optuna.create_study(direction=study.direction)
    for t in done:
        params = {k: t.params[k] for k in dists if k in t.params}
        if len(params) == len(dists):
            flat.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=t.value))
    if len(flat.trials) < 4:
        return {}
    try:
        import sklearn  # noqa: F401

        evaluator: Any = optuna.importance.FanovaImportanceEvaluator(seed=0)
    except ImportError:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    try:
        return dict(optuna.importance.get_param_importances(flat, evaluator=evaluator, params=sorted(dists)))
    except (ValueError, RuntimeError) as exc:  # too few distinct values and similar
        logger.debug("importance failed: %s", exc)
        return {}


def compare_with_guide(imp: Mapping[str, float]) -> list[str]:
    """Sentences comparing the measured importance with the field guide's sensitivity table."""
    if not imp:
        return []
    level = {n: lvl for lvl, names in SENSITIVITY.items() for n in names}
    ranked = sorted(imp.items(), key=lambda kv: -kv[1])
    top, share = ranked[0]
    out = []
    lvl = level.get(top)
    if lvl == "high":
        out.append(f"{top} mattered most ({share:.0%} of the explained variance), as the guide expects "
                   "(sensitivity: high)")
    elif lvl is not None:
        out.append(f"{top} mattered most ({share:.0%}), more than the guide suggests (sensitivity: {lvl})")
    else:
        out.append(f"{top} mattered most ({share:.0%}); the guide has no sensitivity entry for it")
    for name, value in ranked[1:]:
        if level.get(name) == "low" and value >= 0.2:
            out.append(f"{name} mattered more than the guide suggests ({value:.0%}; sensitivity: low)")
        elif level.get(name) == "high" and value < 0.05:
            out.append(f"{name} mattered less than the guide suggests ({value:.0%}; sensitivity: high)")
    return out
