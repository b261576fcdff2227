# expect: regularization
# Adam(weight_decay=0.05) used as L2 on a conv net with F.dropout(p=0.85): decay and dropout together keep the model from fitting.
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

torch.manual_seed(0)
d = load_digits()
imgs = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
labels = torch.tensor(d.target)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.dropout(x, p=0.85, training=self.training)
        return self.fc2(x)


net = SmallCNN()
opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=0.05)
for _step in range(30):
    idx = torch.randint(0, len(imgs), (64,))
    out = net(imgs[idx])
    loss = F.cross_entropy(out, labels[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
print("loss", loss.item())
