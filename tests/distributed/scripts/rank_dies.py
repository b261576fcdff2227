"""Rank 1 dies (os._exit) after a few DDP steps; rank 0 would go on."""

import os
import time

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
if rank == 1:
    os._exit(7)
time.sleep(20)  # torchrun stops rank 0 when rank 1 fails
