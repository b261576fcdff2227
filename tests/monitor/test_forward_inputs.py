"""monitor/tensors.ForwardInputs: the last training forward's inputs, as the padding and target-leak checks keep them."""

from __future__ import annotations

import gc

import torch

from nndoctor.monitor.tensors import ForwardInputs


def test_inputs_are_given_back_only_for_the_step_they_were_kept_at():
    kept = ForwardInputs()
    assert kept.at(0) is None
    x, y = torch.zeros(3), torch.ones(2)
    kept.keep(5, "model", [x, y], extra=[0])
    assert kept.model == "model" and kept.extra == [0]
    got = kept.at(5)
    assert got is not None and got[0] is x and got[1] is y
    assert kept.at(6) is None
    kept.clear()
    assert kept.at(5) is None and kept.extra is None


def test_at_most_four_tensors_are_kept_and_none_is_kept_alive():
    kept = ForwardInputs()
    tensors = [torch.full((2,), float(i)) for i in range(6)]
    kept.keep(1, "m", tensors)
    assert len(kept.at(1)) == 4
    del tensors
    gc.collect()
    assert kept.at(1) == [None, None, None, None]
