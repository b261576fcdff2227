"""monitor/tensors.local: plain tensors pass through (the short path), freed storage reads as empty."""

from __future__ import annotations

import torch

from nndoctor.monitor.tensors import local


def test_plain_tensors_and_their_views_pass_through_unchanged():
    x = torch.randn(4, 6)
    param = torch.nn.Parameter(torch.randn(3, 5))
    for t in (x, x.t(), x[:, 1:3], x[1:], x[::2], param, torch.empty(0), torch.empty(2, device="meta")):
        assert local(t) is t


def test_freed_storage_reads_as_empty_contiguous_or_not():
    x = torch.randn(6, 4)
    views = (x, x[2:], x.t(), x[:, 1:])
    x.untyped_storage().resize_(0)  # (what FSDP2 does to gathered weights after their forward)
    for t in views:
        assert local(t).numel() == 0
