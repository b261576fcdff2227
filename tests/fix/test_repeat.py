"""The noise run of ``nndoctor fix`` stops once it repeats the diagnosis run's first training losses
bit for bit (a seeded script: noise 0, as the whole second run would say), and runs to the end
otherwise (an unseeded script: the noise is measured)."""

from __future__ import annotations

import math

import pytest

from nndoctor.fix.repeat import MIN_PREFIX, PREFIX, RepeatWatch
from nndoctor.fix.session import _noise_run, run_child

_SCRIPT = """
import torch{seed}
x = torch.randn(256, 4)
y = (x.sum(1) > 0).long()
net = torch.nn.Linear(4, 2)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
for step in range(200):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
print("the end")
print(f"final: acc={{(net(x).argmax(1) == y).float().mean().item():.4f}}")
"""


def _script(tmp_path, seeded: bool):
    path = tmp_path / ("seeded.py" if seeded else "unseeded.py")
    path.write_text(_SCRIPT.format(seed="\ntorch.manual_seed(0)" if seeded else ""))
    return str(path)


@pytest.mark.slow  # two child runs (~3 s each on a quiet machine)
def test_a_seeded_scripts_noise_run_stops_as_a_repeat_of_the_diagnosis(tmp_path):
    script = _script(tmp_path, seeded=True)
    before = run_child(script, [], [], None)
    assert len(before.result["loss_prefix"]) == PREFIX and before.figures.script["acc"] > 0.9
    raw = run_child(script, [], [], None, repeat_of=before.result["loss_prefix"])
    assert raw.result.get("repeat_of_diagnosis") and "the end" not in raw.stdout  # stopped before the end
    noise = _noise_run(before, script, [], None, None)
    assert noise.figures.script == before.figures.script and noise.result["repeat_of_diagnosis"]
    # each run reports its own CPU time (imports included): the stopped one's is its own, and less
    assert before.cpu_seconds > 0 and 0 < noise.cpu_seconds <= before.cpu_seconds * 1.5


@pytest.mark.slow
def test_an_unseeded_scripts_noise_run_runs_to_the_end(tmp_path):
    script = _script(tmp_path, seeded=False)
    before = run_child(script, [], [], None)
    noise = _noise_run(before, script, [], None, None)
    assert not noise.result.get("repeat_of_diagnosis") and "the end" in noise.stdout
    assert noise.figures.script.get("acc") is not None


def test_the_watch_gives_up_at_the_first_difference_and_needs_enough_values():
    hits: list[int] = []
    expected = [float(i) for i in range(PREFIX)]
    w = RepeatWatch(expected, lambda: hits.append(1))
    for v in expected:
        w.note(v)
    assert hits == [1]
    w = RepeatWatch(expected, lambda: hits.append(2))
    for v in [0.0, 1.0, 2.5] + expected[3:]:
        w.note(v)
    assert hits == [1] and w.expected is None
    w = RepeatWatch([1.0] * (MIN_PREFIX - 1), lambda: hits.append(3))  # too short a run to call a repeat
    for _ in range(MIN_PREFIX - 1):
        w.note(1.0)
    assert hits == [1]
    w = RepeatWatch([math.nan] * PREFIX, lambda: hits.append(4))       # NaN never equals itself: not a repeat
    for _ in range(PREFIX):
        w.note(math.nan)
    assert hits == [1]
