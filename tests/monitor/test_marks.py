"""TensorMarks: tags read back only for the very tensor they were put on, bounded size."""

from __future__ import annotations

import torch

from nndoctor.monitor.marks import TensorMarks


def test_tags_follow_identity_and_die_with_the_tensor() -> None:
    marks: TensorMarks[str] = TensorMarks(limit=4)
    a, b = torch.zeros(2), torch.zeros(2)
    marks.put(a, "a")
    assert marks.get(a) == "a" and marks.get(b) is None and marks.get(3) is None
    del a
    c = torch.zeros(2)  # may reuse the id of the dead tensor: not tagged
    assert marks.get(c) is None


def test_full_map_prunes_dead_tags_then_drops_new_ones() -> None:
    marks: TensorMarks[int] = TensorMarks(limit=2)
    live = [torch.zeros(1), torch.zeros(1)]
    for i in range(2):
        marks.put(live[i], i)
    extra = torch.zeros(1)
    marks.put(extra, 9)  # full of live tags: dropped
    assert marks.get(extra) is None
    live.pop()
    marks.put(extra, 9)  # one tag dead: pruned, room made
    assert marks.get(extra) == 9 and marks.get(live[0]) == 0
