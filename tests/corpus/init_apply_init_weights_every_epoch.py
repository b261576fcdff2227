# expect: init
# A Sequential classifier whose init_weights is applied at the start of every epoch (meant once before training): each epoch starts again from fresh random weights and the loss saw-tooths back to its starting level.
import torch
import torch.nn as nn


def init_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)


torch.manual_seed(0)
centers = torch.randn(6, 24) * 1.5
labels = torch.randint(0, 6, (2400,))
data = centers[labels] + torch.randn(2400, 24)
model = nn.Sequential(nn.Linear(24, 64), nn.ReLU(), nn.Linear(64, 6))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
criterion = nn.CrossEntropyLoss()
for epoch in range(8):
    model.apply(init_weights)
    perm = torch.randperm(2400)
    for start in range(0, 2400, 40):
        idx = perm[start:start + 40]
        optimizer.zero_grad()
        loss = criterion(model(data[idx]), labels[idx])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
