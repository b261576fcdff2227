"""History: bounded memory over very long runs, order kept, newest values exact."""

from __future__ import annotations

import tracemalloc

import pytest
import torch

from nndoctor.monitor.history import History


def test_100k_steps_keep_memory_flat():
    h = History("loss")
    t = torch.tensor(1.0)
    tracemalloc.start()
    for i in range(10_000):
        h.record(i, t * 0.5)
    h.flush()
    after_10k, _ = tracemalloc.get_traced_memory()
    for i in range(10_000, 110_000):
        h.record(i, t * 0.5)
    h.flush()
    after_110k, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert h.total == 110_000
    assert len(h.values) <= h.capacity and len(h.steps) == len(h.values)
    assert not h._pending
    # flat: 100k more steps cost (almost) nothing more than the first 10k
    assert after_110k - after_10k < 0.1 * after_10k + 50_000


def test_order_and_newest_exact_after_thinning():
    h = History("loss", capacity=64, flush_every=8)
    for i in range(1000):
        h.record(i, float(i))
    steps, values = h.series()
    assert steps == sorted(steps) and len(steps) <= 64
    assert steps[-32:] == list(range(968, 1000))
    assert values[-1] == 999.0 and steps[0] == 0


def test_mixed_tensor_and_float_values_and_nonfinite():
    h = History("loss", flush_every=4)
    h.record(1, torch.tensor(2.0))
    h.record(2, 3.0)
    h.record(3, torch.tensor(float("nan")))
    assert h.last(3)[:2] == [2.0, 3.0]
    assert h.first_nonfinite()[0] == 3
    with pytest.raises(ValueError):
        History("x", capacity=4)


def test_floats_go_straight_in_unless_tensors_wait_and_stay_bounded():
    h = History("loss", capacity=64, flush_every=8)
    h.record_float(1, 1.0)
    assert h.values == [1.0] and not h._pending  # no batch to wait for
    h.record(2, torch.tensor(2.0))
    h.record_float(3, 3.0)  # after a waiting tensor: keeps its place
    assert h.series() == ([1, 2, 3], [1.0, 2.0, 3.0])
    for i in range(4, 10_000):
        h.record_float(i, float(i))
    steps, values = h.series()
    assert h.total == 9_999 and len(values) <= 64 and steps == sorted(steps)
    assert steps[-32:] == list(range(9_968, 10_000)) and values[-1] == 9_999.0 and steps[0] == 1
