# expect: optimizer
# Adam built with eps=1.0 (meant as a "safe" value): eps dwarfs sqrt(v), so every update shrinks ~30x and the MLP barely trains.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1.0)
criterion = nn.CrossEntropyLoss()

for epoch in range(1):
    for i in range(0, len(X), 64):
        optimizer.zero_grad()
        loss = criterion(model(X[i:i + 64]), y[i:i + 64])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.4f}")
