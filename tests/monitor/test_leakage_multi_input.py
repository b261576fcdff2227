"""Leakage on models with several inputs: an example is all of its inputs, not the first one.

A tabular model ``model(cats, nums)`` gets low-cardinality categorical ids first: distinct examples
share their ids by nature (3 columns of 50/12/7 levels: ~4200 combinations for 6000 rows), so
fingerprinting the ids alone made a disjoint test split look 30% copied (data.train-test-leakage).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.leakage import TrainEvalLeakage
from nndoctor.monitor.checks.data.sample import DataCollector

CARDS = (50, 12, 7)
CODE = "data.train-test-leakage"


def _tabular(n=6000, seed=0):
    g = torch.Generator().manual_seed(seed)
    cats = torch.stack([torch.randint(0, c, (n,), generator=g) for c in CARDS], 1)
    nums = torch.randn(n, 5, generator=g)
    y = cats[:, 0] % 3 + (nums[:, 0] > 0).long()
    return cats, nums, y


class TabModel(nn.Module):
    def __init__(self, style):
        super().__init__()
        self.style = style
        self.embs = nn.ModuleList(nn.Embedding(c, 4) for c in CARDS)
        self.mlp = nn.Sequential(nn.Linear(12 + 5, 32), nn.ReLU(), nn.Linear(32, 4))

    def forward(self, cats, nums):
        e = torch.cat([emb(cats[:, i]) for i, emb in enumerate(self.embs)], 1)
        return self.mlp(torch.cat([e, nums], 1))


def _call(model, style, cats, nums):
    return model(cats, nums) if style == "positional" else model(cats=cats, nums=nums)


def _fit(style, test_rows, epochs=3, use_loader=True):
    cats, nums, y = _tabular()
    torch.manual_seed(0)
    model = TabModel(style)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loader = DataLoader(TensorDataset(cats[:4000], nums[:4000], y[:4000]), batch_size=128, shuffle=True)
    with Observer(checks=[DataCollector, TrainEvalLeakage]) as obs:
        for _ in range(epochs):
            model.train()
            batches = loader if use_loader else (
                (cats[i], nums[i], y[i]) for i in torch.randperm(5000).split(128))  # the script slices itself
            for cb, nb, yb in batches:
                opt.zero_grad()
                F.cross_entropy(_call(model, style, cb, nb), yb).backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                _call(model, style, cats[test_rows], nums[test_rows]).argmax(1)
    return [f for f in obs.report().by_code(CODE) if f.severity.value != "info"]


@pytest.mark.parametrize("style,use_loader", [("positional", False), ("keywords", False), ("positional", True)])
def test_disjoint_split_of_a_categorical_plus_numeric_model_is_not_leakage(style, use_loader):
    assert _fit(style, torch.arange(5000, 6000), epochs=8, use_loader=use_loader) == []


@pytest.mark.parametrize("style", ["positional", "keywords"])
def test_test_split_overlapping_training_rows_of_a_two_input_model_is_still_leakage(style):
    # 300 of the 1000 test rows, spread through it, are training rows (both inputs identical)
    rows = torch.cat([torch.arange(3700, 4000), torch.arange(5000, 5700)])
    found = _fit(style, rows[torch.randperm(1000, generator=torch.Generator().manual_seed(2))])
    assert found and found[0].evidence["n_shared"] >= 50, found
