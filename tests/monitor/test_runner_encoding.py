"""Scripts and experiment files are read the way Python reads them: coding cookie, BOM, UTF-8."""

from __future__ import annotations

from pathlib import Path

import pytest

from nndoctor.experiment import load_experiment
from nndoctor.monitor.runner import ScriptError, run_script

BODY = 'import sys\nNAME = "caf\u00e9"\nsys.modules[__name__].RESULT = NAME\nopen(sys.argv[1], "w", encoding="utf-8").write(NAME)\n'


@pytest.mark.parametrize("encoding, header", [
    ("latin-1", "# -*- coding: latin-1 -*-\n"),
    ("cp1252", "#!/usr/bin/env python\n# vim: set fileencoding=cp1252 :\n"),
    ("utf-8-sig", ""),  # a UTF-8 file with a byte-order mark
    ("utf-8", ""),
])
def test_script_encodings_accepted(tmp_path: Path, encoding, header):
    script = tmp_path / "train.py"
    script.write_bytes((header + BODY).encode(encoding))
    out = tmp_path / "out.txt"
    result = run_script(str(script), [str(out)])
    assert result.exit_code == 0 and result.exception is None
    assert out.read_text(encoding="utf-8") == "caf\u00e9"


def test_undecodable_script_is_one_clear_error(tmp_path: Path):
    script = tmp_path / "train.py"
    script.write_bytes(b'NAME = "caf\xe9"\n')  # latin-1 bytes without a cookie: Python refuses it too
    with pytest.raises(ScriptError, match="cannot read script"):
        run_script(str(script))
    script.write_bytes(b"# -*- coding: no-such-codec -*-\nx = 1\n")
    with pytest.raises(ScriptError, match="cannot read script"):
        run_script(str(script))


EXPERIMENT = '''# -*- coding: latin-1 -*-
import torch
from torch import nn
import nndoctor

LABEL = "r\xe9sum\xe9"


def experiment(lr: float = 0.1) -> nndoctor.Experiment:
    model = nn.Linear(2, 2)
    x, y = torch.randn(8, 2), torch.randint(0, 2, (8,))
    return nndoctor.Experiment(model=model, loss=nn.CrossEntropyLoss(), train=[(x, y)], name=LABEL)
'''


@pytest.mark.parametrize("encoding", ["latin-1", "utf-8-sig"])
def test_experiment_file_encodings(tmp_path: Path, encoding):
    path = tmp_path / "exp.py"
    text = EXPERIMENT if encoding == "latin-1" else EXPERIMENT.split("\n", 1)[1]
    path.write_bytes(text.encode(encoding))
    assert load_experiment(str(path)).name == "r\xe9sum\xe9"
