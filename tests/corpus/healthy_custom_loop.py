# expect: healthy
# A hand-written training loop: nn.Module subclass, F.nll_loss on log_softmax outputs, AdamW, Trainer-like class.
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self, d_in, hidden, n_classes):
        super().__init__()
        self.l1 = nn.Linear(d_in, hidden)
        self.l2 = nn.Linear(hidden, hidden)
        self.l3 = nn.Linear(hidden, n_classes)

    def forward(self, x):
        x = F.relu(self.l1(x))
        x = F.relu(self.l2(x))
        return F.log_softmax(self.l3(x), dim=1)


class Trainer:
    def __init__(self, model, lr=1e-3):
        self.model = model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)

    def training_step(self, batch):
        x, y = batch
        return F.nll_loss(self.model(x), y)

    def fit(self, loader, epochs):
        for epoch in range(epochs):
            self.model.train()
            for batch in loader:
                self.optimizer.zero_grad(set_to_none=True)
                loss = self.training_step(batch)
                loss.backward()
                self.optimizer.step()
            print(f"epoch {epoch}: loss {loss.item():.4f}")
        return loss.item()

    @torch.no_grad()
    def accuracy(self, x, y):
        self.model.eval()
        return (self.model(x).argmax(1) == y).float().mean().item()


if __name__ == "__main__":
    torch.manual_seed(0)
    X = torch.randn(1500, 20)
    w = torch.randn(20, 4)
    y = (X @ w).argmax(1)
    ds = TensorDataset(X[:1200], y[:1200])
    trainer = Trainer(Net(20, 64, 4), lr=2e-3)
    final = trainer.fit(DataLoader(ds, batch_size=32, shuffle=True), epochs=4)
    print(f"final loss {final:.4f} val accuracy {trainer.accuracy(X[1200:], y[1200:]):.3f}")
