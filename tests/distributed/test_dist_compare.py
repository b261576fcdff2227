"""Cross-rank comparison of fingerprints (nndoctor/distributed/compare.py) on hand-made records."""

from __future__ import annotations

import torch

from nndoctor.distributed.compare import compare_ranks


def _params(weights: list[torch.Tensor]) -> list:
    sums = [float(w.double().sum()) for w in weights]
    return [sum(sums), sum(float(w.double().pow(2).sum()) for w in weights), sums]


def _record(trajectory: list[list[torch.Tensor]], batches: list[str] | None = None,
            grads: list[tuple[float, float]] | None = None) -> dict:
    return {"params": {f"opt:{i + 1}": _params(ws) for i, ws in enumerate(trajectory)},
            "param_names": {"opt": ["model.fc.weight", "model.fc.bias"]},
            "batches": {str(i + 1): b for i, b in enumerate(batches or [])},
            "grads": {f"opt:{i + 1}": list(g) for i, g in enumerate(grads or [])}}


def _trajectory(seed: int, steps: int = 5, drift: float = 0.0) -> list[list[torch.Tensor]]:
    torch.manual_seed(0)
    w, b = torch.randn(4, 3), torch.randn(4)
    out = []
    for step in range(steps):
        g = torch.Generator().manual_seed(100 + step)
        w = w - 0.1 * torch.randn(4, 3, generator=g) * (1 + drift * seed)
        out.append([w.clone(), b.clone()])
    return out


def codes(findings) -> set[str]:
    return {f.code for f in findings}


def test_identical_replicas_and_sharded_batches_are_quiet() -> None:
    recs = {0: _record(_trajectory(0), ["a", "b", "c"], [(1.0, 0.8), (1.2, 0.9)]),
            1: _record(_trajectory(1), ["d", "e", "f"], [(0.8, 0.8), (1.0, 0.9)])}
    assert compare_ranks(recs) == []


def test_replicas_that_drift_apart_are_an_error_naming_the_tensor() -> None:
    recs = {0: _record(_trajectory(0)), 1: _record(_trajectory(1, drift=0.01))}
    (f,) = compare_ranks(recs)
    assert f.code == "distributed.replicas-diverged" and f.severity.value == "error"
    assert f.evidence["differing_ranks"] == [1] and f.evidence["differing_tensors"] == ["model.fc.weight"]
    assert f.first_step == 1 and f.fixes


def test_one_differing_sample_among_many_is_not_enough() -> None:
    a, b = _trajectory(0), _trajectory(0)
    b[2] = [b[2][0] + 1e-3, b[2][1]]
    assert compare_ranks({0: _record(a), 1: _record(b)}) == []


def test_float_noise_is_not_divergence() -> None:
    a = _trajectory(0)
    b = [[w * (1 + 1e-9), bias] for w, bias in a]
    assert compare_ranks({0: _record(a), 1: _record(b)}) == []


def test_same_batches_on_every_rank() -> None:
    t = _trajectory(0)
    (f,) = compare_ranks({0: _record(t, ["x1", "x2", "x3"]), 1: _record(t, ["x1", "x2", "x3"]),
                          2: _record(t, ["x1", "x2", "x3"])})
    assert f.code == "distributed.same-data-every-rank" and f.evidence["steps_compared"] == 3
    # one shared step (e.g. a fixed first batch) proves nothing; nor does a single compared step
    assert compare_ranks({0: _record(t, ["x1", "x2"]), 1: _record(t, ["x1", "y2"])}) == []
    assert compare_ranks({0: _record(t, ["x1"]), 1: _record(t, ["x1"])}) == []


def _grads(reduce: str, steps: int = 4) -> dict[int, dict]:
    out: dict[int, dict] = {0: [], 1: []}
    for s in range(steps):
        g0 = torch.randn(50, generator=torch.Generator().manual_seed(s))
        g1 = g0 + 0.5 * torch.randn(50, generator=torch.Generator().manual_seed(99 + s))  # correlated
        used = {"avg": (g0 + g1) / 2, "sum": g0 + g1}.get(reduce)
        for rank, g in ((0, g0), (1, g1)):
            out[rank].append((float(g.norm()), float((used if used is not None else g).norm())))
    t = _trajectory(0)
    return {r: _record(t, grads=g) for r, g in out.items()}


def test_averaged_gradients_are_quiet_and_summed_ones_are_found() -> None:
    assert compare_ranks(_grads("avg")) == []
    (f,) = compare_ranks(_grads("sum"))
    assert f.code == "distributed.gradients-not-averaged" and f.evidence["reduction"] == "sum"
    assert 1.1 < f.evidence["ratio"] <= 2.0


def test_gradients_never_reduced() -> None:
    found = compare_ranks(_grads("none"))
    assert [(f.code, f.evidence["reduction"]) for f in found] == [("distributed.gradients-not-averaged", "none")]


def test_one_rank_is_nothing_to_compare() -> None:
    assert compare_ranks({0: _record(_trajectory(0), ["a", "b"])}) == []


def _with_buffers(rec: dict, values: list[dict[str, float]]) -> dict:
    rec["buffers"] = {f"opt:{i + 1}": v for i, v in enumerate(values)}
    return rec


def test_constant_buffers_that_differ_across_ranks_were_never_broadcast() -> None:
    t = _trajectory(0, steps=3)
    running = [{"model.bn.running_mean": 0.1 * i, "model.table": 5.0} for i in range(3)]
    other = [{"model.bn.running_mean": 0.2 * i, "model.table": 7.0} for i in range(3)]
    (f,) = compare_ranks({0: _with_buffers(_record(t), running), 1: _with_buffers(_record(t), other)})
    assert f.code == "distributed.replicas-diverged" and f.evidence["differing_buffers"] == ["model.table"]
    # running statistics differ per rank by design (each rank normalises its own batches): quiet
    same = [{"model.bn.running_mean": 0.2 * i, "model.table": 5.0} for i in range(3)]
    assert compare_ranks({0: _with_buffers(_record(t), running), 1: _with_buffers(_record(t), same)}) == []
