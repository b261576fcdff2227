# expect: preprocessing
# Star ratings 0..4 regressed with MSE, but the targets were divided by 255 with the 8-bit features: {0, 1/255, ..., 4/255}.
import torch
import torch.nn as nn
import torch.nn.functional as F


def main():
    torch.manual_seed(0)
    feats = torch.randint(0, 256, (900, 8)).float()
    ratings = (feats[:, :3].mean(1) / 52).floor().clamp(max=4)
    data = torch.cat([feats, ratings.unsqueeze(1)], dim=1) / 255.0      # the whole table "normalised"
    x, y = data[:, :8], data[:, 8:]
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for epoch in range(4):
        for i in range(0, 900, 60):
            loss = F.mse_loss(model(x[i:i + 60]), y[i:i + 60])
            opt.zero_grad()
            loss.backward()
            opt.step()
    print(f"final mse {loss.item():.6f}")


if __name__ == "__main__":
    main()
