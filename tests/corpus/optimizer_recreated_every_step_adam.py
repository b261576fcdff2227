# expect: optimizer
# A classifier subclass in main(): torch.optim.Adam is built anew inside the batch loop, so every step starts from empty moment estimates (a sign-descent step of size lr every time).
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc3 = nn.Linear(64, 4)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def main():
    torch.manual_seed(0)
    centers = torch.randn(4, 16)
    y = torch.randint(0, 4, (3000,))
    x = centers[y] + 0.8 * torch.randn(3000, 16)
    model = Net()
    for epoch in range(3):
        perm = torch.randperm(3000)
        for start in range(0, 3000, 50):
            idx = perm[start:start + 50]
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch} loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
