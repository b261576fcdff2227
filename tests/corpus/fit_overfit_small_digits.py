# expect: fit
# A wide MLP trained for many epochs on only 120 digits images; the per-epoch validation loss rises while training loss falls.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
y = torch.tensor(digits.target)
X_train, y_train = X[:120], y[:120]
X_val, y_val = X[1000:1400], y[1000:1400]

model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
criterion = nn.CrossEntropyLoss()

for epoch in range(40):
    model.train()
    for i in range(0, 120, 40):
        optimizer.zero_grad()
        loss = criterion(model(X_train[i:i + 40]), y_train[i:i + 40])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        val_loss = criterion(model(X_val), y_val).item()
    if epoch % 5 == 0:
        print(f"epoch {epoch}: train {loss.item():.4f} val {val_loss:.4f}")
