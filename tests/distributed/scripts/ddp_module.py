"""A small DDP training script (nn.Module subclass, SGD, main()); --bug injects one fault.

Run under torchrun (gloo, CPU). Bugs: no-ddp, rank-grad, same-data, no-set-epoch, bn-tiny,
accum-sync, lr-unscaled (the healthy script scales its lr with the world size).
"""

import argparse

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset


class Net(nn.Module):
    def __init__(self, bn: bool = False) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 32)
        self.bn = nn.BatchNorm1d(32) if bn else nn.Identity()
        self.fc2 = nn.Linear(32, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.bn(self.fc1(x))))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bug", default="")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    data = TensorDataset(x, y)
    torch.manual_seed(1234)  # the same initial weights on every rank
    model = Net(bn=args.bug == "bn-tiny")
    if args.bug != "no-ddp":
        model = DDP(model)
    base_lr = 0.05
    lr = base_lr if args.bug == "lr-unscaled" else base_lr * world_size
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if args.bug == "same-data":
        loader = DataLoader(data, batch_size=args.batch, shuffle=True)
        sampler = None
    else:
        sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=True, seed=0)
        loader = DataLoader(data, batch_size=args.batch, sampler=sampler)
    accum = 2 if args.bug == "accum-sync" else 1
    for epoch in range(args.epochs):
        if sampler is not None and args.bug != "no-set-epoch":
            sampler.set_epoch(epoch)
        for i, (xb, yb) in enumerate(loader):
            loss = F.cross_entropy(model(xb), yb) / accum
            loss.backward()
            if args.bug == "rank-grad" and rank == 1:
                for p in model.parameters():
                    p.grad.mul_(1.5)
            if (i + 1) % accum == 0:
                opt.step()
                opt.zero_grad()
    if rank == 0:
        print(f"final loss {loss.item():.4f}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
