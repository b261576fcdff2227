# expect: labels
# Labels pushed through the same integer "normalisation" as 8-bit features (y // 255): every class id becomes 0; NLL on log_softmax, SGD.
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 64)
        self.fc2 = nn.Linear(64, 5)

    def forward(self, x):
        return F.log_softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)


def main():
    torch.manual_seed(0)
    raw = torch.randint(0, 256, (1000, 20))
    labels = raw[:, :5].float().mean(1).div(52).long().clamp(max=4)     # 5 classes
    x = raw.float() / 255.0
    y = torch.div(labels, 255, rounding_mode="floor")                     # meant for the features only
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(6):
        for i in range(0, 800, 50):
            loss = F.nll_loss(model(x[i:i + 50]), y[i:i + 50])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = (model(x[800:]).argmax(1) == labels[800:]).float().mean().item()
        print(f"epoch {epoch} loss {loss.item():.5f} accuracy on the real labels {acc:.3f}")


if __name__ == "__main__":
    main()
