"""A tiny blobs classifier as an experiment file for the ``diagnose --fix`` tests (not a test module).

``softmax=True`` puts an nn.Softmax before CrossEntropyLoss; ``dropout`` and ``lr`` are plain
hyperparameters, so remedies can be tried as ``--set`` overrides.
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nndoctor.experiment as ne


def experiment(lr: float = 0.05, dropout: float = 0.0, softmax: bool = False, epochs: int = 4,
               hidden: int = 32) -> ne.Experiment:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (480,), generator=g)
    x = torch.randn(4, 8, generator=g)[y] * 1.5 + torch.randn(480, 8, generator=g)
    layers = [nn.Linear(8, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 4)]
    if softmax:
        layers.append(nn.Softmax(dim=1))
    model = nn.Sequential(*layers)

    def dl(a, b, shuffle=False):
        return DataLoader(TensorDataset(a, b), batch_size=32, shuffle=shuffle,
                          generator=torch.Generator().manual_seed(0))

    return ne.Experiment(model=model, loss=nn.CrossEntropyLoss(),
                         optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                         train=dl(x[:360], y[:360], True), train_val=dl(x[360:], y[360:]))
