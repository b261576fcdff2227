"""Healthy DDP steps, then the script exits with code 3 on every rank."""

import sys

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
model = DDP(nn.Linear(4, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x, y = torch.randn(64, 4), torch.randn(64, 1)
for _ in range(4):
    opt.zero_grad()
    nn.functional.mse_loss(model(x[rank::2]), y[rank::2]).backward()
    opt.step()
dist.destroy_process_group()
sys.exit(3)
