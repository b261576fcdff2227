# expect: train-mode
# The model is put in eval mode right after construction ("to check the output") and trained that way: dropout is never active.
import torch
import torch.nn as nn

torch.manual_seed(0)
X = torch.randn(800, 20)
y = X[:, :5].sum(1, keepdim=True) + 0.1 * torch.randn(800, 1)


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Linear(128, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 1))

    def forward(self, x):
        return self.net(x)


model = Regressor()
model.eval()
print("initial output", model(X[:2]).detach().squeeze().tolist())
opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
loss_fn = nn.MSELoss()
for epoch in range(5):
    for i in range(0, 800, 64):
        loss = loss_fn(model(X[i:i + 64]), y[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
