"""Sparse inputs (a graph's adjacency as ``torch.sparse``) beside dense node features.

A full-batch GCN is called ``model(features, adj)`` with a sparse adjacency of as many rows as
nodes (tkipf/pygcn). Example fingerprints take every tensor input with the batch's rows, and
``reshape`` has no sparse kernel: the data collector failed with an internal error and switched off.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.monitor import Observer
from nndoctor.monitor.checks.data.sample import MAX_DENSIFIED, row_hashes

N, D, C = 120, 16, 3


def _graph(layout: str):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, C, (N,), generator=g)
    x = torch.randn(N, D, generator=g) + F.one_hot(y, C).float().repeat(1, D // C + 1)[:, :D]
    same = (y[:, None] == y[None, :]).float()
    a = (torch.rand(N, N, generator=g) < 0.05 + 0.1 * same).float() + torch.eye(N)
    a = a / a.sum(1, keepdim=True)
    adj = a.to_sparse() if layout == "coo" else a.to_sparse_csr()
    return x, adj, y


class GCN(nn.Module):
    def __init__(self):
        super().__init__()
        self.w1, self.w2 = nn.Linear(D, 32), nn.Linear(32, C)

    def forward(self, x, adj):
        x = x.to_dense() if x.layout != torch.strided else x
        h = F.relu(torch.sparse.mm(adj, self.w1(x)) if adj.layout == torch.sparse_coo else adj @ self.w1(x))
        return F.log_softmax(adj @ self.w2(h) if adj.layout != torch.sparse_coo else torch.sparse.mm(adj, self.w2(h)), 1)


@pytest.mark.parametrize("style", ["coo-positional", "csr-keyword", "sparse-features"])
def test_a_gcn_with_a_sparse_adjacency_is_observed_without_internal_error(style):
    x, adj, y = _graph("csr" if style == "csr-keyword" else "coo")
    if style == "sparse-features":
        x = x.to_sparse()
    torch.manual_seed(0)
    model = GCN()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    train, val = torch.arange(0, 80), torch.arange(80, N)
    with Observer() as obs:
        for _ in range(60):
            model.train()
            opt.zero_grad()
            out = model(x, adj=adj) if style == "csr-keyword" else model(x, adj)
            F.nll_loss(out[train], y[train]).backward()
            opt.step()
            model.eval()
            with torch.no_grad():
                out = model(x, adj=adj) if style == "csr-keyword" else model(x, adj)
                acc = (out[val].argmax(1) == y[val]).float().mean().item()
    report = obs.report()
    assert report.internal_errors == [], report.internal_errors
    assert acc > 0.8
    assert [f.code for f in report.findings if f.severity.value != "info"] == []


def test_rows_with_no_dense_form_get_fingerprints_that_match_nothing():
    big = torch.sparse_coo_tensor(torch.zeros(2, 1, dtype=torch.long), torch.ones(1), (4, MAX_DENSIFIED))
    first, constant = row_hashes(big)
    again, _ = row_hashes(big)
    assert len(first) == 4 and not constant.any()
    assert not set(first) & set(again)  # the same object read twice is no evidence of shared examples
    small = torch.eye(4).to_sparse()
    assert row_hashes(small)[0] == row_hashes(torch.eye(4))[0]
