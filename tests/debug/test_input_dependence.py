"""shape.samples-mixed-across-batch and shape.prediction-from-one-time-step: the backprop dependence probe.

Faults in three coding styles each (a Keras-like Sequential with a Lambda module, a plain nn.Module forward, a
functional cell loop); healthy lookalikes quiet: batch-norm in train mode, attention over the batch on purpose,
an in-batch contrastive loss, a sequence-first LSTM, a GNN whose batch is the node set, mixup in the data
pipeline; a bidirectional LSTM read at step 0, a Transformer's CLS token, a last-step readout, mean pooling, a
causal LM, packed sequences. The user's training is bit-identical with and without the probe."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nndoctor.debug.input_dependence import InputDependence
from nndoctor.monitor import Observer, Schedule

MIXED = "shape.samples-mixed-across-batch"
ONE_STEP = "shape.prediction-from-one-time-step"


class Lambda(nn.Module):
    """Keras' Lambda layer, as ports write it."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _observe(model: nn.Module, xs: torch.Tensor, ys: torch.Tensor, *, batch: int = 32, batch_dim: int = 0,
             loss=F.cross_entropy, extra=(), steps: int = 6) -> list:
    batches = []
    for i in range(steps):
        idx = torch.arange(i * batch, (i + 1) * batch) % xs.shape[batch_dim]
        batches.append((xs.index_select(batch_dim, idx), ys.index_select(batch_dim if ys.dim() > 1 else 0, idx)))
    return _observe_batches(model, batches, loss=loss, extra=extra)


def _observe_batches(model: nn.Module, batches, *, loss=F.cross_entropy, extra=()) -> list:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[InputDependence], schedule=Schedule(dense=4, every=2)) as obs:
        for x, y in batches:
            opt.zero_grad()
            out = model(x.clone(), *extra)
            loss(out, y).backward()
            opt.step()
    assert not obs.internal_errors, obs.internal_errors
    return [f for f in obs.findings if f.code in (MIXED, ONE_STEP)]


_G = torch.Generator().manual_seed(0)
TAB = torch.randn(256, 20, generator=_G)
TAB_Y = (TAB[:, 0] > 0).long()
IMG = torch.rand(256, 1, 8, 8, generator=_G)
SEQ = torch.randn(256, 12, 3, generator=_G)
SEQ_Y = (SEQ[:, -3:, 0].sum(1) > 0).long()


# -- samples mixed across the batch ---------------------------------------------------------------------------
class _Cnn(nn.Module):
    def __init__(self, bug: bool) -> None:
        super().__init__()
        self.bug = bug
        self.conv, self.pool, self.fc = nn.Conv2d(1, 8, 3, padding=1), nn.MaxPool2d(2), nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))
        x = x.reshape(8 * 4 * 4, -1).t() if self.bug else x.reshape(x.size(0), -1)
        return self.fc(x)


class _CellLoop(nn.Module):
    """A GRU cell loop over (N, T, F) that stacks its states time-major and flattens them for the head."""

    def __init__(self, bug: bool) -> None:
        super().__init__()
        self.bug = bug
        self.cell, self.fc = nn.GRUCell(3, 8), nn.Linear(12 * 8, 2)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], 8)
        states = []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
            states.append(h)
        hs = torch.stack(states)                                   # (T, N, H)
        flat = hs.reshape(x.shape[0], -1) if self.bug else hs.transpose(0, 1).reshape(x.shape[0], -1)
        return self.fc(flat)


def _keras_mlp(bug: bool) -> nn.Module:
    flatten = Lambda(lambda h: h.view(h.shape[1], -1).t()) if bug else Lambda(lambda h: h.view(h.shape[0], -1))
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), flatten, nn.Linear(32, 2))


@pytest.mark.parametrize("style", ["keras-lambda-view", "module-reshape-t", "cell-loop-time-major-flatten"])
def test_a_reshape_that_mixes_samples_is_named_and_its_twin_is_quiet(style):
    for bug in (True, False):
        torch.manual_seed(0)
        if style == "keras-lambda-view":
            found = _observe(_keras_mlp(bug), TAB, TAB_Y)
        elif style == "module-reshape-t":
            found = _observe(_Cnn(bug), IMG, TAB_Y)
        else:
            found = _observe(_CellLoop(bug), SEQ, SEQ_Y)
        if not bug:
            assert found == [], found
            continue
        assert [f.code for f in found] == [MIXED], found
        ev = found[0].evidence
        assert found[0].category == "shape" and ev["leak_share"] >= 0.05 and ev["batch_dim"] == 0
        assert found[0].first_step <= 2
        mixed_at = {"keras-lambda-view": ("model.1", "model.2"), "module-reshape-t": ("model.pool", "model.fc"),
                    "cell-loop-time-major-flatten": ("model.cell", "model.fc")}[style]
        assert (ev["mixed_after"], ev["mixed_before"]) == mixed_at, ev


class _BatchAttention(nn.Module):
    """Attention over the samples of the batch on purpose (a set model): symmetric in the samples."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.fc = nn.Linear(20, 16), nn.Linear(16, 2)

    def forward(self, x):
        h = self.inp(x)
        att = torch.softmax(h @ h.t() / 4.0, dim=1)
        return self.fc(h + att @ h)


class _Gcn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(20, 16), nn.Linear(16, 2)

    def forward(self, x, adj):
        return self.l2(adj @ F.relu(self.l1(adj @ x)))


def test_legitimate_mixing_of_samples_is_quiet():
    torch.manual_seed(0)
    bn = nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))
    assert _observe(bn, TAB, TAB_Y) == []
    assert _observe(_BatchAttention(), TAB, TAB_Y) == []

    encoder = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16))     # in-batch contrastive loss

    def info_nce(z, _y):
        z = F.normalize(z, dim=1)
        return F.cross_entropy(z @ z.roll(1, 0).t() / 0.1, torch.arange(len(z)))
    assert _observe(encoder, TAB, TAB_Y, loss=info_nce) == []

    class _TimeMajor(nn.Module):                       # sequence-first LSTM: the batch is dim 1
        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.fc = nn.LSTM(3, 8), nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.lstm(x)[0][-1])
    assert _observe(_TimeMajor(), SEQ.transpose(0, 1).contiguous(), SEQ_Y, batch_dim=1) == []

    adj = (torch.rand(32, 32, generator=_G) < 0.2).float() + torch.eye(32)     # one graph: the batch is its nodes
    adj = adj / adj.sum(1, keepdim=True)
    assert _observe(_Gcn(), TAB[:32], TAB_Y[:32], extra=(adj,)) == []


def test_mixup_in_the_data_pipeline_is_quiet():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Observer(checks=[InputDependence], schedule=Schedule(dense=4, every=2)) as obs:
        for i in range(6):
            x, y = TAB[i * 32:(i + 1) * 32], F.one_hot(TAB_Y[i * 32:(i + 1) * 32], 2).float()
            lam, perm = 0.7, torch.randperm(32)
            x, y = lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    assert [f for f in obs.findings if f.code in (MIXED, ONE_STEP)] == []


# -- prediction from one time step ----------------------------------------------------------------------------
class _Rnn(nn.Module):
    def __init__(self, read, rnn: nn.RNNBase | None = None) -> None:
        super().__init__()
        self.rnn = rnn or nn.GRU(3, 8, batch_first=True)
        self.read = read
        self.fc = nn.Linear(self.rnn.hidden_size * (2 if self.rnn.bidirectional else 1), 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(self.read(out))


class _LstmLSequential(nn.Module):
    """Keras' LSTM(return_sequences=True): the output sequence only."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 8, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


class _Cells(nn.Module):
    def __init__(self, bug: bool) -> None:
        super().__init__()
        self.bug = bug
        self.cell, self.fc = nn.LSTMCell(3, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = c = x.new_zeros(x.shape[0], 8)
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, 0] if self.bug else x[:, t], (h, c))
        return self.fc(h)


class _Tokens(nn.Module):
    def __init__(self, bug: bool) -> None:
        super().__init__()
        self.bug = bug
        self.emb, self.gru, self.fc = nn.Embedding(20, 8), nn.GRU(8, 8, batch_first=True), nn.Linear(8, 2)

    def forward(self, x):
        out, _ = self.gru(self.emb(x))
        return self.fc(out[:, 0] if self.bug else out[:, -1])


TOK = torch.randint(0, 20, (256, 10), generator=_G)
TOK_Y = (TOK[:, -1] > 9).long()


@pytest.mark.parametrize("style", ["keras-sequential-lambda", "module-time-major-out0", "cell-loop-x0",
                                   "tokens-embedding"])
def test_a_prediction_read_from_the_first_time_step_is_named_and_its_twin_is_quiet(style):
    for bug in (True, False):
        torch.manual_seed(0)
        xs, ys, batch_dim = SEQ, SEQ_Y, 0
        if style == "keras-sequential-lambda":
            model = nn.Sequential(_LstmLSequential(), Lambda((lambda o: o[:, 0]) if bug else (lambda o: o[:, -1])),
                                  nn.Linear(8, 2))
        elif style == "module-time-major-out0":
            model = _Rnn((lambda o: o[0]) if bug else (lambda o: o[-1]), nn.LSTM(3, 8))
            xs, batch_dim = SEQ.transpose(0, 1).contiguous(), 1
        elif style == "cell-loop-x0":
            model = _Cells(bug)
        else:
            model, xs, ys = _Tokens(bug), TOK, TOK_Y
        found = _observe(model, xs, ys, batch_dim=batch_dim)
        if not bug:
            assert found == [], found
            continue
        assert [f.code for f in found] == [ONE_STEP], found
        ev = found[0].evidence
        assert found[0].category == "shape" and ev["time_step"] == 0 and ev["seq_len"] == xs.shape[1 - batch_dim]


class _Cls(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(3, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
        self.enc, self.fc = nn.TransformerEncoder(layer, 1), nn.Linear(16, 2)

    def forward(self, x):
        return self.fc(self.enc(self.inp(x))[:, 0])


class _Packed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm, self.fc = nn.LSTM(3, 8, batch_first=True), nn.Linear(8, 2)

    def forward(self, x, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return self.fc(h[-1])


class _CausalLm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.gru, self.fc = nn.Embedding(20, 8), nn.GRU(8, 8, batch_first=True), nn.Linear(8, 20)

    def forward(self, x):
        return self.fc(self.gru(self.emb(x))[0])


def test_sequence_readouts_that_see_every_step_are_quiet():
    torch.manual_seed(0)
    bi = nn.LSTM(3, 8, batch_first=True, bidirectional=True)
    assert _observe(_Rnn(lambda o: o[:, 0], bi), SEQ, SEQ_Y) == []            # BiLSTM read at step 0
    assert _observe(_Cls(), SEQ, SEQ_Y) == []                                  # Transformer CLS
    assert _observe(_Rnn(lambda o: o.mean(1)), SEQ, SEQ_Y) == []               # mean pooling
    lengths = torch.randint(2, 13, (256,), generator=_G)
    assert _observe(_Packed(), SEQ, SEQ_Y, extra=(lengths[:32],)) == []        # packed sequences
    lm = _CausalLm()

    def per_token(out, y):
        return F.cross_entropy(out.reshape(-1, 20), y.reshape(-1))
    assert _observe(lm, TOK[:, :-1], TOK[:, 1:], loss=per_token) == []         # causal LM, per-token loss


def test_the_probe_leaves_the_users_training_bit_identical():
    def train(watch: bool) -> tuple[list[float], list[torch.Tensor]]:
        torch.manual_seed(0)
        model = nn.Sequential(_LstmLSequential(), Lambda(lambda o: o[:, 0]), nn.Dropout(0.2), nn.Linear(8, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        losses = []
        ctx = Observer(checks=[InputDependence], schedule=Schedule(dense=4, every=2)) if watch else None
        if ctx is not None:
            ctx.__enter__()
        try:
            for i in range(5):
                opt.zero_grad()
                loss = F.cross_entropy(model(SEQ[i * 32:(i + 1) * 32]), SEQ_Y[i * 32:(i + 1) * 32])
                loss.backward()
                grads = [p.grad.clone() for p in model.parameters()]
                opt.step()                                   # (the probe runs in its post hook)
                assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
                losses.append(loss.item())
                assert model.training and all(m.training for m in model.modules())
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)
                assert any(f.code == ONE_STEP for f in ctx.findings)
        return losses + [torch.rand(1).item()], [p.detach().clone() for p in model.parameters()]

    plain, watched = train(False), train(True)
    assert plain[0] == watched[0]
    assert all(torch.equal(a, b) for a, b in zip(plain[1], watched[1]))


def test_wrapped_models_are_probed_through_their_eager_module():
    from nndoctor.debug.dependence_probe import eager, probe

    model = _keras_mlp(True)
    assert eager(nn.DataParallel(model)) is model
    assert eager(torch.compile(model)) is model                  # (never called: nothing is compiled)
    found = probe(nn.DataParallel(model), (TAB[:32],), 0, 0, False)
    assert found is not None and found.leak > 0.05 and found.equivariant is False


def test_a_view_with_a_hard_coded_batch_size_is_probed_on_the_whole_batch():
    batch = 32

    class _Fixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.l2 = nn.Linear(20, 16), nn.Linear(16, 2)

        def forward(self, x):
            h = F.relu(self.l1(x))
            return self.l2(h.view(-1, batch).t())          # (32, 16) -> (16, 32) -> (32, 16): rows mixed

    torch.manual_seed(0)
    found = _observe(_Fixed(), TAB, TAB_Y)
    assert [f.code for f in found] == [MIXED] and found[0].evidence["rows_probed"] == 32, found


def test_one_graph_or_one_sequence_as_the_batch_is_quiet():
    torch.manual_seed(0)
    adj = (torch.rand(32, 32, generator=_G) < 0.2).float() + torch.eye(32)
    adj = adj / adj.sum(1, keepdim=True)

    class _GlobalAdj(nn.Module):                         # the adjacency out of sight: a global of the script
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.l2 = nn.Linear(20, 16), nn.Linear(16, 2)

        def forward(self, x):
            return self.l2(adj @ F.relu(self.l1(adj @ x)))

    x, y = TAB[:32], TAB_Y[:32]
    assert _observe(_GlobalAdj(), x, y, steps=4, batch=32) == []

    class _AttrAdj(_GlobalAdj):                          # kept as a plain tensor attribute
        def __init__(self) -> None:
            super().__init__()
            self.adj = adj

        def forward(self, x):
            return self.l2(self.adj @ F.relu(self.l1(self.adj @ x)))
    assert _observe(_AttrAdj(), x, y, steps=4, batch=32) == []

    class _OneSequence(nn.Module):                       # hello-rnn: one (1, T, F) sequence, a target per step
        def __init__(self) -> None:
            super().__init__()
            self.rnn, self.fc = nn.RNN(3, 8, batch_first=True), nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.rnn(x)[0][0])
    seq = SEQ[:1].repeat(1, 3, 1)                        # (1, 36, 3)
    assert _observe_batches(_OneSequence(), [(seq, SEQ_Y[:36])] * 5) == []

    class _HandRnn(nn.Module):                           # time-major hand-written RNN, a target per step
        def __init__(self) -> None:
            super().__init__()
            self.i2h, self.h2h, self.out = nn.Linear(3, 8), nn.Linear(8, 8), nn.Linear(8, 2)

        def forward(self, x):
            h, outs = x.new_zeros(x.shape[1], 8), []
            for t in range(x.shape[0]):
                h = torch.tanh(self.i2h(x[t]) + self.h2h(h))
                outs.append(self.out(h))
            return torch.stack(outs)                     # (T, N, 2)

    def per_step(out, y):
        return F.cross_entropy(out.reshape(-1, 2), y.reshape(-1))
    steps_y = (SEQ[..., 0] > 0).long().t().contiguous()          # (T, N)
    assert _observe(_HandRnn(), SEQ.transpose(0, 1).contiguous(), steps_y, batch_dim=1, loss=per_step) == []


def test_a_recurrence_over_the_batch_is_left_to_its_own_finding():
    from nndoctor.debug.sequence import RecurrentBatchTimeSwapped

    torch.manual_seed(0)
    model = _Rnn(lambda o: o[:, -1], nn.LSTM(3, 8))              # batch_first=False fed (N, T, F)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Observer(checks=[RecurrentBatchTimeSwapped, InputDependence], schedule=Schedule(dense=4, every=2)) as obs:
        for i in range(5):
            opt.zero_grad()
            F.cross_entropy(model(SEQ[i * 32:(i + 1) * 32]), SEQ_Y[i * 32:(i + 1) * 32]).backward()
            opt.step()
    assert [f.code for f in obs.findings] == ["shape.rnn-batch-time-swapped"], obs.findings
    torch.manual_seed(0)
    assert [f.code for f in _observe(_Rnn(lambda o: o[:, -1], nn.LSTM(3, 8)), SEQ, SEQ_Y)] == [MIXED]   # (alone)


def test_a_model_of_one_token_per_sample_is_probed_through_its_embedding():
    from nndoctor.debug.dependence_probe import probe

    torch.manual_seed(0)
    emb = nn.Embedding(50, 8)
    found = probe(emb, (torch.arange(32) % 50,), 0, 0, False)
    assert found is not None and found.leak == 0.0
