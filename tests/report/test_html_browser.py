"""A report from a real diagnose run, rendered in headless Chromium at laptop and phone widths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser import BrowserUnavailable, open_browser, required

from nndoctor.diagnose import diagnose
from nndoctor.report.html import write_html

EXP = str(Path(__file__).parent.parent / "evaluate" / "exp_digits.py")
ARTIFACTS = Path(os.environ.get("NNDOCTOR_ARTIFACTS", Path(__file__).parent.parent.parent / "out" / "artifacts"))


@pytest.fixture(scope="module")
def report_path(tmp_path_factory):
    from rich.console import Console

    result = diagnose(EXP, overrides={"n_train": "400"}, epochs=4, console=Console(file=open(os.devnull, "w")))
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_html(result.report, str(path))
    assert result.report.findings, "the diagnose run should report something to show"
    return path, result.report


@pytest.mark.parametrize("width", [1280, 390])
def test_report_renders_in_chromium(report_path, width):
    path, report = report_path
    try:
        browser = open_browser(width)
    except BrowserUnavailable as exc:
        if required():  # make test: the browser test must run, never skip
            pytest.fail(f"NNDOCTOR_REQUIRE_BROWSER is set but no browser: {exc}")
        pytest.skip(str(exc))
    try:
        browser.get(path.as_uri())
        js = browser.execute_script
        # every image loaded (inline SVG charts and any <img>)
        assert js("return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        n_svg = js("return document.querySelectorAll('svg.chart').length")
        assert n_svg >= 2
        # the per-layer pictures the checks record: gradient norms and activation health
        labels = js("return Array.from(document.querySelectorAll('svg.chart')).map(s => s.getAttribute('aria-label'))")
        assert any(a.startswith("Gradient norm per layer") for a in labels), labels
        assert any(a.startswith("Dead or saturated units per layer") for a in labels), labels
        assert js("return Array.from(document.querySelectorAll('svg.chart'))"
                  ".every(s => s.getBoundingClientRect().width > 100 && s.getBoundingClientRect().height > 20)")
        # nothing overflows horizontally
        assert js("return document.documentElement.scrollWidth") <= js("return window.innerWidth"), width
        # the headline and every finding are visible
        assert js("const h = document.querySelector('.headline'); return !!h && h.getBoundingClientRect().height > 0")
        cards = js("return Array.from(document.querySelectorAll('.finding')).map(c => "
                   "[c.querySelector('code').textContent, c.getBoundingClientRect().height > 0, "
                   "getComputedStyle(c).visibility])")
        assert len(cards) == len(report.findings)
        assert all(visible and vis == "visible" for _, visible, vis in cards)
        assert {c for c, _, _ in cards} == {f.code for f in report.findings}
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        height = js("return document.documentElement.scrollHeight")
        browser.set_window_size(width, min(int(height) + 100, 8000))
        browser.save_screenshot(str(ARTIFACTS / f"report-{width}.png"))
    finally:
        browser.quit()
