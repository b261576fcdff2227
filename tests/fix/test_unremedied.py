"""Labels shifted by one row against their inputs (a header line read as a data row into the labels
only) have no runtime remedy: ``nndoctor fix`` re-runs nothing for them and says so plainly, with the
edit to make at file:line (the line that reads the labels) and the evidence the diagnosis measured."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from nndoctor.cli.fix import render
from nndoctor.fix.metrics import figures_of
from nndoctor.fix.session import FixSession, RunOutput, candidates, without_remedy
from nndoctor.fix.unremedied import describe_unremedied

SCRIPT = '''import io
import numpy as np
import torch

X = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
text = "label\\n" + "\\n".join(str(int(v > 0)) for v in X[:, 0])
labels = np.nan_to_num(np.genfromtxt(io.StringIO(text)))[:200]   # the header row became label 0
ds = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(labels).long())
'''

FINDING = {"code": "labels.unrelated-to-inputs", "severity": "warning", "location": "training data",
           "message": "the training loss stays at the class priors' 0.693 and no probe predicts the labels",
           "evidence": {"train_loss": 0.693, "prior_loss": 0.693, "probe_accuracy": 0.51, "pairs": 4096},
           "fixes": ["Check how labels are read: the right column or file, the order after filtering."],
           "caused_by": []}


def test_labels_without_a_runtime_remedy_point_at_the_line_that_reads_them(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    assert candidates([FINDING]) == []                       # nothing to re-run
    u = describe_unremedied(FINDING, str(script))
    assert (u["file"], u["line"]) == (str(script), 7) and "genfromtxt" in u["source_line"]
    assert "probe_accuracy=0.51" in u["evidence"] and u["message"] == FINDING["message"]


def test_fix_says_no_runtime_remedy_with_the_place_and_the_evidence(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    result = {"exit_code": 0, "report": {"findings": [FINDING]}}
    session = FixSession(str(script), [], before=RunOutput(result, "final: acc=0.51\n", 1.0,
                                                          figures_of(result, "final: acc=0.51\n")))
    console = Console(record=True, width=300)
    render(session, console)
    text = console.export_text()
    assert f"no runtime remedy: edit {script}:7" in text and "genfromtxt" in text
    assert "Evidence: the training loss stays at the class priors" in text
    assert session.to_dict()["no_runtime_remedy"][0]["line"] == 7 and session.runs == 1


def test_labels_split_apart_from_their_inputs_point_at_the_split(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("import numpy as np\n"
                      "X, y = np.zeros((10, 3)), np.zeros(10)\n"
                      "idx = np.random.permutation(10)\n"
                      "X_train, y_train = X[idx[:8]], y[:8]\n"
                      "ds = list(zip(X_train, y_train))\n")
    u = describe_unremedied(FINDING, str(script))
    assert u["line"] == 4 and u["source_line"].startswith("X_train, y_train")


def test_a_finding_with_its_own_call_site_is_located_there_and_others_stay_unplaced() -> None:
    f = {**FINDING, "code": "fit.model-too-small", "evidence": {"site": "train.py:42"}}
    assert without_remedy([f])[0]["line"] == 42
    g = {**FINDING, "code": "fit.model-too-small", "evidence": {}}
    assert without_remedy([g], None)[0]["file"] is None
