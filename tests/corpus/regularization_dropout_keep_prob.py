# expect: regularization
# nn.Dropout(0.9) written as if it were TensorFlow's keep_prob: 90% of hidden units are dropped in every training step.
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)
X_train, y_train, X_val, y_val = X[:1400], y[:1400], X[1400:], y[1400:]

model = nn.Sequential(
    nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.9),
    nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.9),
    nn.Linear(128, 10),
)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
criterion = nn.CrossEntropyLoss()
for epoch in range(2):
    model.train()
    for i in range(0, len(X_train), 64):
        optimizer.zero_grad()
        loss = criterion(model(X_train[i:i + 64]), y_train[i:i + 64])
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        val_loss = criterion(model(X_val), y_val)
    print(f"epoch {epoch} train {loss.item():.3f} val {val_loss.item():.3f}")
