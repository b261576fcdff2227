"""A tiny experiment whose epochs take a moment, so a worker can be killed mid-trial.

``NNDOCTOR_TEST_STEP_SLEEP`` (seconds per step, default 0.25) makes one worker slower, so a
test that kills it surely catches it in the middle of a trial, even on a loaded machine.
"""

import os
import time

import torch
from torch import nn

import nndoctor


def experiment(lr: float = 1e-2, hidden: int = 16, epochs: int = 3) -> nndoctor.Experiment:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x.sum(1) > 0).long()
    model = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def step(model, batch):
        time.sleep(float(os.environ.get("NNDOCTOR_TEST_STEP_SLEEP", "0.25")))
        xb, yb = batch
        return nn.functional.cross_entropy(model(xb), yb)

    batches = [(x[i:i + 32], y[i:i + 32]) for i in (0, 32)]
    return nndoctor.Experiment(model=model, step=step, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                               train=batches, train_val=batches)
