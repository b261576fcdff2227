# expect: dtype
# Class labels built as a float tensor (torch.tensor of a float array) are passed to CrossEntropyLoss: crashes.
import numpy as np
import torch
import torch.nn as nn

rng = np.random.default_rng(0)
features = rng.normal(size=(600, 10)).astype(np.float32)
labels = np.argmax(features[:, :3], axis=1).astype(np.float32)   # stored as float in the CSV

X = torch.tensor(features)
y = torch.tensor(labels)
model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(5):
    for i in range(0, 600, 60):
        optimizer.zero_grad()
        loss = criterion(model(X[i:i + 60]), y[i:i + 60])
        loss.backward()
        optimizer.step()
