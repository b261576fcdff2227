# expect: shape
# DataLoader regression: the target is reshaped to a column (N, 1) while the squeezed prediction is (N,), F.l1_loss.
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X = torch.rand(800, 4)
y = (X @ torch.tensor([1.0, -2.0, 0.5, 3.0])).reshape(-1, 1)   # column targets
loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)

model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(3):
    for xb, yb in loader:
        pred = model(xb).squeeze()
        loss = F.l1_loss(pred, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch} l1 {loss.item():.4f}")
