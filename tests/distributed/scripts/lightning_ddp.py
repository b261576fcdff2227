"""A Lightning run under the DDP strategy on CPU (2 processes, gloo), watched by NNDoctorCallback;
rank 0 writes the callback's report (the merged one) to --out. Bugs: rank-weights (rank 1 changes
its weights after DDP broadcast them: the replicas differ); same-data (Lightning told not to add
its DistributedSampler: every rank trains on the same batches)."""

import argparse
import json

import lightning.pytorch as pl
import torch
import torch.nn as nn
import torch.nn.functional as F
from lightning.pytorch.strategies import DDPStrategy

from nndoctor.integrations.lightning import NNDoctorCallback


class Net(pl.LightningModule):
    def __init__(self, bug: str) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
        self.bug = bug

    def on_train_start(self) -> None:
        if self.bug == "rank-weights" and self.global_rank == 1:
            with torch.no_grad():
                self.net[0].weight.add_(0.05)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bug", default="")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    doctor = NNDoctorCallback()
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy=DDPStrategy(process_group_backend="gloo"),
                         max_epochs=2, callbacks=[doctor], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         use_distributed_sampler=args.bug != "same-data")
    trainer.fit(Net(args.bug), loader)
    if trainer.global_rank == 0:
        with open(args.out, "w") as fh:
            json.dump(doctor.report().to_dict(), fh)


if __name__ == "__main__":
    main()
