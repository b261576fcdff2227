"""loss_floor: the reduction of a loss call (legacy arguments included) and the soft-target BCE floor."""

from __future__ import annotations

import math

import torch

from nndoctor.monitor.events import reduction_of
from nndoctor.monitor.loss_floor import SoftTargetFloor


def test_reduction_of_reads_the_legacy_arguments_first():
    # (the keyword arguments a loss hook sees carry the defaults filled in: reduction='mean')
    assert reduction_of({"size_average": False, "reduce": None, "reduction": "mean"}) == "sum"
    assert reduction_of({"size_average": None, "reduce": False, "reduction": "mean"}) is None
    assert reduction_of({"size_average": True, "reduce": None, "reduction": "sum"}) == "mean"
    assert reduction_of({"size_average": None, "reduce": None, "reduction": "sum"}) == "sum"
    assert reduction_of({}) == "mean"


def test_soft_targets_floor_in_the_calls_reduction_and_none_for_hard_targets():
    soft = torch.full((4, 10), 0.5)
    f = SoftTargetFloor()
    f.see("binary_cross_entropy", soft, {"size_average": False, "reduce": None, "reduction": "mean"}, True)
    assert math.isclose(f.floor(100.0, 200.0), 40 * math.log(2), rel_tol=1e-4)  # summed: 40 elements
    # a loss below the batch total: the summed BCE divided by the batch (4 examples of 10 elements each)
    assert math.isclose(f.floor(20.0, 200.0), 10 * math.log(2), rel_tol=1e-4)
    assert f.floor(5.0, 200.0) == 0.0  # below the per-example floor too: the recorded loss is not this BCE
    hard = SoftTargetFloor()
    hard.see("binary_cross_entropy_with_logits", torch.randint(0, 2, (4, 10)).float(), {}, True)
    assert hard.floor(0.3, 0.7) == 0.0
    ignored = SoftTargetFloor()
    ignored.see("binary_cross_entropy", soft, {}, False)  # an evaluation
    ignored.see("mse_loss", soft, {}, True)
    assert ignored.floor(1.0, 2.0) == 0.0
