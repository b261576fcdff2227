# expect: healthy
# half: tune
# source: lookalike of preprocessing_standardised_per_row; per-sample (instance) normalisation of 1-D signals, as in audio / spectroscopy pipelines where each recording has its own gain and offset
# fault: none. Each signal is standardised over its own time steps on purpose: gain and offset are per-recording nuisances, the class is the waveform's frequency, which the per-row scaling keeps.
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))

rng = np.random.default_rng(SEED)
torch.manual_seed(SEED)
n, T = 1200, 48
y = rng.integers(0, 3, size=n)
t = np.arange(T)[None, :]
freq = np.array([2.0, 3.0, 5.0])[y][:, None]
phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
gain = rng.uniform(0.1, 50.0, size=(n, 1))
offset = rng.uniform(-100, 100, size=(n, 1))
X = offset + gain * (np.sin(2 * np.pi * freq * t / T + phase) + 0.3 * rng.normal(size=(n, T)))
X = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y)

model = nn.Sequential(nn.Linear(T, 64), nn.ReLU(), nn.Linear(64, 3))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(15):
    order = torch.randperm(900)
    for i in range(0, 900, 32):
        b = order[i:i + 32]
        opt.zero_grad()
        F.cross_entropy(model(X[b]), y[b]).backward()
        opt.step()

with torch.no_grad():
    acc = (model(X[900:]).argmax(1) == y[900:]).float().mean().item()
print(f"final: acc={acc:.4f}")
