# expect: dtype
# numpy float64 features go straight into torch and the model is made .double() to match instead of casting the data.
import numpy as np
import torch
import torch.nn as nn

rng = np.random.default_rng(0)
X = rng.normal(size=(1000, 12))
w = rng.normal(size=12)
y = (X @ w + 0.1 * rng.normal(size=1000)).reshape(-1, 1)

X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)          # float64 tensors
model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 1)).double()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
mse = nn.MSELoss()
for epoch in range(3):
    for i in range(0, 1000, 50):
        opt.zero_grad()
        loss = mse(model(X_t[i:i + 50]), y_t[i:i + 50])
        loss.backward()
        opt.step()
    print(f"epoch {epoch} mse {loss.item():.4f}")
