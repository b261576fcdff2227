"""The public API: each package's ``__all__`` resolves, and the functions users call are functions."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = ["nndoctor", "nndoctor.evaluate", "nndoctor.tune", "nndoctor.improve", "nndoctor.start", "nndoctor.fix",
            "nndoctor.monitor", "nndoctor.report", "nndoctor.cli"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_resolve(name: str) -> None:
    module = importlib.import_module(name)
    for attr in module.__all__:
        assert getattr(module, attr) is not None, f"{name}.{attr}"


def test_functions_not_modules() -> None:
    import nndoctor

    # importing the same-named modules first must not shadow the functions
    importlib.import_module("nndoctor.evaluate.decompose")
    importlib.import_module("nndoctor.tune.lr_find")
    for dotted in ("evaluate.decompose", "tune.lr_find", "lr_find", "watch", "overfit_batch", "load_experiment",
                   "improve.build_plan", "start.review", "evaluate.evaluate_experiment", "loguniform"):
        obj = nndoctor
        for part in dotted.split("."):
            obj = getattr(obj, part)
        assert inspect.isfunction(obj), dotted
    assert nndoctor.lr_find is nndoctor.tune.lr_find
    assert inspect.ismodule(importlib.import_module("nndoctor.evaluate.decompose"))
    from nndoctor.evaluate.decompose import decompose_errors
    from nndoctor.tune.lr_find import lr_findings

    assert callable(decompose_errors) and callable(lr_findings)


def test_decompose_call_as_documented() -> None:
    import nndoctor

    d = nndoctor.evaluate.decompose(0.05, 0.12)
    assert d.dominant is not None and d.dominant.name == "variance"
    with pytest.raises(AttributeError):
        nndoctor.no_such_name  # noqa: B018
