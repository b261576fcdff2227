# expect: healthy
# half: holdout
# source: lookalike of train_mode_training_attribute_set_on_root; model.train(False) / model.train(True) used instead of eval() / train() (kaijuan.co/qa/60018578: eval() is "equivalent to model.train(False)")
# fault: none. model.train(False) is exactly model.eval(): it switches every BatchNorm and Dropout child to inference mode for the evaluation, and model.train(True) switches them back.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))

torch.manual_seed(SEED)
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
perm = torch.randperm(len(X))
tr, te = perm[:1400], perm[1400:]

model = nn.Sequential(nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
for epoch in range(10):
    model.train(True)
    order = tr[torch.randperm(len(tr))]
    for i in range(0, len(order), 32):
        b = order[i:i + 32]
        opt.zero_grad()
        F.cross_entropy(model(X[b]), y[b]).backward()
        opt.step()
    model.train(False)
    with torch.no_grad():
        val_acc = sum((model(X[te][i:i + 4]).argmax(1) == y[te][i:i + 4]).sum().item()
                      for i in range(0, len(te), 4)) / len(te)
print(f"final: acc={val_acc:.4f}")
