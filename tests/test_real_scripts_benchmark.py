"""benchmarks/real_scripts.py: the manifest and the harness logic, on a fake local git mirror."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.real_scripts import (
    DATA,
    Entry,
    RunResult,
    checkout,
    judge,
    load_manifest,
    metric_lines,
    run_entry,
)

SCRIPT = """\
import sys
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
for i in range(steps):
    print(f"step {i} | loss {1.0 / (i + 1):.4f} | step time 12.5ms")
print("data says", open("data.txt").read().strip())
"""


def _mirror(tmp_path: Path) -> tuple[Path, str]:
    """A mirror laid out like /work/.mirror: DIR/<owner>+<name>/repo, a bare git directory."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "sub").mkdir()
    (work / "sub" / "train.py").write_text(SCRIPT)
    (work / "sub" / "data.txt").write_text("shipped\n")

    def git(*args: str, cwd: Path = work) -> str:
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    commit = git("rev-parse", "HEAD").strip()
    repos = tmp_path / "mirror"
    repos.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(repos / "someone+thing" / "repo")], check=True)
    return repos, commit


def _entry(commit: str, **kw) -> Entry:
    d = {"name": "fake", "repo": "someone/thing", "commit": commit, "path": "train.py", "cwd": "sub",
         "args": ["4"], "data": "shipped in the repository (data.txt)", **kw}
    return Entry.from_dict(d)


def test_committed_manifest_is_complete_and_pinned():
    entries = load_manifest()
    assert len(entries) >= 20
    assert len({e.repo for e in entries}) >= 5
    for e in entries:
        assert re.fullmatch(r"[0-9a-f]{40}", e.commit), e.name
        assert e.expect == "healthy" and e.data and "/" in e.repo
        assert "download" not in " ".join(e.args).lower()


def test_manifest_rejects_missing_fields_and_buggy_scripts(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"scripts": [{"name": "x", "repo": "a/b", "commit": "0" * 40, "path": "t.py"}]}))
    with pytest.raises(ValueError, match="data"):
        load_manifest(bad)
    bad.write_text(json.dumps({"scripts": [{"name": "x", "repo": "a/b", "commit": "0" * 40, "path": "t.py",
                                            "data": "d", "expect": "lr"}]}))
    with pytest.raises(ValueError, match="healthy"):
        load_manifest(bad)


def test_metric_lines_drop_timings():
    a = "step 1 | loss 2.0 | step time 10.20ms\nnoise\nstep 2 | loss 1.5 | step time 9.1ms\n"
    b = "step 1 | loss 2.0 | step time 31.00ms\nstep 2 | loss 1.5 | step time 40.0ms\n"
    got = metric_lines(a)
    assert got == metric_lines(b) and len(got) == 2 and "loss 1.5" in got[-1]
    assert not any(re.search(r"\d+(\.\d+)?ms", line) for line in got)
    (line,) = metric_lines("iter_dt 3.2ms; iter 10: train loss 0.5", last=1)
    assert "3.2" not in line and "train loss 0.5" in line


def test_checkout_extracts_the_pinned_tree(tmp_path):
    repos, commit = _mirror(tmp_path)
    dest = tmp_path / "tree"
    assert checkout(_entry(commit), repos, dest) == []
    assert (dest / "sub" / "train.py").read_text() == SCRIPT
    with pytest.raises(FileNotFoundError):
        checkout(_entry(commit, repo="nobody/none"), repos, tmp_path / "x")


def _res(code=0, out="loss 1.0\n", report=None):
    return RunResult(code, 1.0, out, "", report)


def test_judge_counts_crashes_alarms_and_identity():
    e = _entry("0" * 40)
    rep = {"findings": [{"code": "fit.underfitting", "severity": "warning"},
                        {"code": "lr.too-low", "severity": "info"}], "internal_errors": [{"check": "x"}]}
    o = judge(e, [_res()], [_res(report=rep)])
    assert not o.crash and o.alarms == ["fit.underfitting"] and o.infos == ["lr.too-low"]
    assert o.internal_errors == 1 and o.identical is True
    assert judge(e, [_res()], [_res(code=1, report=rep)]).crash
    assert judge(e, [_res()], [_res(report=None)]).crash
    assert judge(e, [_res()], [_res(out="loss 2.0\n", report={"findings": []})]).identical is False
    assert judge(e, [_res(code=2)], [_res(report=rep)]).error  # the script itself fails: not run
    nondet = _entry("0" * 40, deterministic=False)
    assert judge(nondet, [_res()], [_res(out="loss 9\n", report={"findings": []})]).identical is None


@pytest.mark.slow
def test_run_entry_end_to_end_on_a_fake_mirror(tmp_path):
    repos, commit = _mirror(tmp_path)
    setup = [[sys.executable, "-c", "open('made.txt', 'w').write('x')"]]
    o = run_entry(_entry(commit, setup=setup), repos)
    assert not o.error and not o.crash and not o.alarms and o.internal_errors == 0
    assert o.identical is True and o.ratio > 0


def test_git_dir_of_a_snapshot_that_is_a_clone_with_a_work_tree(tmp_path):
    entry = _entry("0" * 40)
    bare = entry.git_dir(tmp_path)
    assert bare == tmp_path / entry.repo.replace("/", "+") / "repo"
    (bare / ".git").mkdir(parents=True)
    assert entry.git_dir(tmp_path) == bare / ".git"


def test_citation_graph_has_the_cora_format_and_label_structure(tmp_path):
    from benchmarks.real_data.citation_graph import main as citation_graph

    assert citation_graph([str(tmp_path), "--nodes", "120", "--features", "50", "--edges", "200"]) == 0
    content = [ln.split("\t") for ln in (tmp_path / "cora.content").read_text().splitlines()]
    cites = [ln.split("\t") for ln in (tmp_path / "cora.cites").read_text().splitlines()]
    assert len(content) == 120 and {len(r) for r in content} == {52} and len(cites) == 200
    label = {r[0]: r[-1] for r in content}
    assert all(set(r[1:-1]) <= {"0", "1"} for r in content)
    assert all(a in label and b in label and a != b for a, b in cites)
    same = sum(label[a] == label[b] for a, b in cites) / len(cites)
    assert same > 0.6  # citations mostly within a class, as in Cora


def _stub_torchvision(monkeypatch):
    import importlib

    stubs = str(Path(__file__).resolve().parent.parent / "benchmarks" / "real_data" / "vision_stubs")
    monkeypatch.syspath_prepend(stubs)
    monkeypatch.setenv("NND_STUB_TRAIN_SIZE", "200")
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, name)
    return importlib.import_module("torchvision")


def test_torchvision_stub_makes_learnable_mnist_and_cifar_like_data(monkeypatch):
    before = set(sys.modules)
    try:
        _check_torchvision_stub(_stub_torchvision(monkeypatch))
    finally:  # the stub must not stay importable for the tests that run after this one
        for name in set(sys.modules) - before:
            if name == "torchvision" or name.startswith("torchvision."):
                del sys.modules[name]


def test_stand_ins_that_other_packages_probe_for_are_opt_in():
    """torchmetrics (so Lightning) imports torchvision.models once it finds a torchvision: the stub is put
    on the path only of the entries that name its folder."""
    from benchmarks.real_scripts import DATA, STUBS

    assert not any((STUBS / name).exists() for name in ("torchvision", "pandas", "h5py"))
    e = _entry("0" * 40, stubs=["vision_stubs"])
    from benchmarks.real_scripts import _env

    assert str(DATA / "vision_stubs") in _env(e, Path("/tree"))["PYTHONPATH"].split(":")
    assert str(DATA / "vision_stubs") not in _env(_entry("0" * 40), Path("/tree"))["PYTHONPATH"]
    for entry in load_manifest():
        assert all((DATA / s).is_dir() for s in entry.stubs), entry.name


def _check_torchvision_stub(tv):
    assert tv.__version__.endswith("stub")
    tf = tv.transforms.Compose([tv.transforms.ToTensor(), tv.transforms.Normalize((0.1307,), (0.3081,))])
    train = tv.datasets.MNIST("../data", train=True, download=True, transform=tf)
    test = tv.datasets.MNIST("../data", train=False, transform=tv.transforms.ToTensor())
    assert len(train) == 200 and train.data.shape == (200, 28, 28) and train.train_labels is train.targets
    x, y = train[0]
    assert x.shape == (1, 28, 28) and isinstance(y, int) and 0 <= y < 10
    x0, _ = test[0]
    assert 0.0 <= float(x0.min()) and float(x0.max()) <= 1.0 and float(x0.max()) > 0.5
    assert set(test.targets.tolist()) == set(range(10))  # every class, held out from training
    cifar = tv.datasets.CIFAR10("d", train=True, transform=tv.transforms.Compose(
        [tv.transforms.Pad(4), tv.transforms.RandomCrop(32), tv.transforms.ToTensor()]))
    img, _ = cifar[3]
    assert cifar.data.shape == (200, 32, 32, 3) and img.shape == (3, 32, 32)
    big = tv.transforms.Compose([tv.transforms.Resize(64), tv.transforms.CenterCrop(64), tv.transforms.ToTensor()])
    assert big(train.data[0]).shape == (1, 64, 64)
    assert tv.utils.save_image(x, "nowhere.png") is None


def test_notebook_export_keeps_every_code_cell_and_only_neutralises_ipython_lines(tmp_path):
    from benchmarks.real_data.nb_export import export

    cells = [{"cell_type": "markdown", "source": ["# title\n"]},
             {"cell_type": "code", "source": ["%matplotlib inline\n", "import math\n", "x = 2"]},
             {"cell_type": "code", "source": "for i in range(2):\n    !echo hi\n    x += i"},
             {"cell_type": "code", "source": ["x?"]}]
    nb = tmp_path / "n.ipynb"
    nb.write_text(json.dumps({"cells": cells}))
    text = export(nb)
    assert "# title" not in text and "x = 2" in text and "    x += i" in text
    assert "pass  # IPython: %matplotlib inline" in text and "    pass  # IPython: !echo hi" in text
    namespace: dict = {}
    exec(compile(text, "nb", "exec"), namespace)  # parses and runs: the loop body kept its indentation
    assert namespace["x"] == 3


def test_notebook_export_keeps_a_modulo_that_continues_a_statement(tmp_path):
    """``%(a, b)`` on the line after an open bracket, a backslash or inside a string over several
    lines is Python (rasbt/deeplearning-models' logging: ``print('%03d' \\n %(epoch, n))``), not a magic."""
    from benchmarks.real_data.nb_export import export

    src = ("n = 7\n"
           "print ('Epoch: %03d | Cost: %.4f' \n"
           "       %(n, 0.5))\n"
           "s = 'a %d' \\\n"
           "    % n\n"
           "doc = \"\"\"\n"
           "%not a magic inside a string\n"
           "\"\"\"\n"
           "d = {'k': (1,\n"
           "           2)}\n"
           "%time n += 1\n")
    nb = tmp_path / "n.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "source": src}]}))
    text = export(nb)
    assert "       %(n, 0.5))" in text and "    % n" in text and "%not a magic" in text
    assert "pass  # IPython: %time n += 1" in text  # a magic at the start of a statement still is one
    namespace: dict = {}
    exec(compile(text, "nb", "exec"), namespace)
    assert namespace["s"] == "a 7" and namespace["d"] == {"k": (1, 2)} and namespace["n"] == 7


def test_entry_that_needs_an_uninstalled_package_is_not_run(tmp_path):
    repos, commit = _mirror(tmp_path)
    o = run_entry(_entry(commit, requires=["json", "no_such_module_xq7"]), repos)
    assert o.error.startswith("needs no_such_module_xq7") and not o.plain_s


def test_setup_commands_may_name_the_mirror_folder(tmp_path):
    from benchmarks.real_scripts import _prepare

    (tmp_path / "tree").mkdir()
    e = _entry("0" * 40, cwd=".", setup=[[sys.executable, "-c", "import sys; open('r.txt', 'w').write(sys.argv[1])",
                                          "{repos}/x"]])
    _prepare(e, tmp_path / "tree", tmp_path / "mirror")
    assert (tmp_path / "tree" / "r.txt").read_text() == f"{tmp_path / 'mirror'}/x"


def test_plot_and_compat_stand_ins_accept_what_plotting_code_does(monkeypatch):
    """Subclassing a matplotlib class, seaborn calls, a DataFrame built only to plot, six.moves, imageio."""
    for sub in ("stubs", "compat_stubs", "vision_stubs"):
        monkeypatch.syspath_prepend(str(DATA / sub))
    names = ("matplotlib", "mpl_toolkits", "seaborn", "pandas", "six", "imageio", "torchvision")
    saved = {k: m for k, m in sys.modules.items() if k.split(".")[0] in names}
    for k in saved:
        del sys.modules[k]
    try:
        from matplotlib import collections  # noqa: F401
        from matplotlib.patches import FancyArrowPatch

        class Arrow(FancyArrowPatch):
            def __init__(self, *args, **kwargs):
                FancyArrowPatch.__init__(self, (0, 0), (0, 0), *args, **kwargs)

        Arrow(mutation_scale=20).draw(None)
        import imageio
        import pandas as pd
        import seaborn as sns
        from six.moves import urllib

        sns.lmplot(x="x", data=pd.DataFrame.from_dict({0: {"x": 1}}, orient="index").head(3)).savefig("f.png")
        assert urllib.request.build_opener is not None
        imageio.mimsave("a.gif", [])
        with pytest.raises(OSError):
            imageio.imread("a.png")
        with pytest.raises(ImportError):
            pd.DataFrame({"x": [1]})  # reading data with the pandas stand-in still fails loudly
    finally:
        for k in [k for k in sys.modules if k.split(".")[0] in names]:
            del sys.modules[k]
        sys.modules.update(saved)
