# expect: grad-flow
# Predictions go through numpy (clipping with np.clip) and back with torch.from_numpy(...).requires_grad_(): the graph is cut.
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.rand(600, 6)
y = (X.sum(1, keepdim=True) / 6.0).clamp(0, 1)


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 24)
        self.fc2 = nn.Linear(24, 1)

    def forward(self, x):
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(x))))


model = Regressor()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
loss_fn = nn.MSELoss()
for epoch in range(5):
    for i in range(0, 600, 40):
        out = model(X[i:i + 40])
        clipped = np.clip(out.detach().numpy(), 0.01, 0.99)
        pred = torch.from_numpy(clipped).requires_grad_()
        loss = loss_fn(pred, y[i:i + 40])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
