"""The report tests' browser is installed once, even when test workers ask for it at the same time."""

from __future__ import annotations

import threading
import time

import browser
import pytest


def test_concurrent_workers_install_once_then_all_find_it(monkeypatch, tmp_path):
    installed: list[int] = []
    monkeypatch.setattr(browser, "LOCK", str(tmp_path / "install.lock"))
    monkeypatch.setattr(browser.os, "geteuid", lambda: 0)
    monkeypatch.setattr(browser.shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    monkeypatch.setattr(browser, "_found", lambda: ("/c", "/d") if installed else (None, None))

    def install() -> str:  # slow, and an error if two run at once (as apt's own lock would make it)
        assert not installed, "a second installation ran"
        time.sleep(0.3)
        installed.append(1)
        return ""

    monkeypatch.setattr(browser, "_install", install)
    results: list[object] = []

    def worker() -> None:
        try:
            results.append(browser.ensure_chromium())
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert installed == [1]
    assert results == [("/c", "/d")] * 4


def test_missing_browser_fails_under_make_test(monkeypatch):
    monkeypatch.setattr(browser, "_found", lambda: (None, None))
    monkeypatch.setattr(browser.os, "geteuid", lambda: 1000)  # not root: nothing is installed
    with pytest.raises(browser.BrowserUnavailable):
        browser.ensure_chromium()
    monkeypatch.setenv("NNDOCTOR_REQUIRE_BROWSER", "1")
    assert browser.required()
    monkeypatch.setenv("NNDOCTOR_REQUIRE_BROWSER", "0")
    assert not browser.required()
