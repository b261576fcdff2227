# expect: data
# Training batches come from class-sorted data without shuffling: every batch holds one class.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
digits = load_digits()
order = digits.target.argsort(kind="stable")
x = torch.tensor(digits.data[order], dtype=torch.float32) / 16.0
y = torch.tensor(digits.target[order])
loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=False)  # bug: shuffle=False on sorted data
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(3):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: last loss {loss.item():.3f}")
