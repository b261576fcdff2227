"""Experiment file: tabular regression (Friedman #1) with an MLP and a custom step.

The custom ``step(model, batch) -> loss`` shows the hook for models that need more than
``loss(model(x), y)``; here it only reshapes the target.

    nndoctor start examples/experiment_regression.py
    nndoctor baseline examples/experiment_regression.py --set hidden=32
"""

import torch
from sklearn.datasets import make_friedman1
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nndoctor


def experiment(lr: float = 1e-3, hidden: int = 64, batch_size: int = 64, custom_step: bool = False) -> nndoctor.Experiment:
    x, y = make_friedman1(n_samples=2000, noise=0.5, random_state=0)
    x = torch.tensor(x, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.float32)
    x = (x - x[:1600].mean(0)) / x[:1600].std(0)
    y = ((y - y[:1600].mean()) / y[:1600].std()).unsqueeze(1)
    model = nn.Sequential(nn.Linear(10, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def step(model: nn.Module, batch) -> torch.Tensor:
        inputs, target = batch
        return nn.functional.mse_loss(model(inputs), target.reshape(-1, 1))

    return nndoctor.Experiment(
        model=model,
        loss=nn.MSELoss(),
        step=step if custom_step else None,
        optimizer=torch.optim.Adam(model.parameters(), lr=lr),
        train=DataLoader(TensorDataset(x[:1600], y[:1600]), batch_size=batch_size, shuffle=True),
        train_val=DataLoader(TensorDataset(x[1600:], y[1600:]), batch_size=400),
    )
