"""Headless Chromium for report tests (Debian packages chromium + chromium-driver).

Installed when missing and running as root (apt-get, a package registry). The installation runs
once: ``make test`` calls ``python tests/report/browser.py`` before pytest starts its workers, and
inside pytest a file lock makes concurrent workers wait for the one that installs instead of
racing it for apt's lock. Under ``make test`` (``NNDOCTOR_REQUIRE_BROWSER=1``) a missing browser
fails the browser tests; elsewhere they skip.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile

__all__ = ["BrowserUnavailable", "ensure_chromium", "open_browser", "required"]

LOCK = os.path.join(tempfile.gettempdir(), "nndoctor-chromium-install.lock")


class BrowserUnavailable(RuntimeError):
    pass


def required() -> bool:
    """Whether a missing browser is a failure (``make test``) rather than a skip."""
    return os.environ.get("NNDOCTOR_REQUIRE_BROWSER", "") not in ("", "0")


def _found() -> tuple[str | None, str | None]:
    return shutil.which("chromium"), shutil.which("chromedriver")


def _install() -> str:
    """apt-get install chromium chromium-driver; returns what went wrong, or ''."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait = ["-o", "DPkg::Lock::Timeout=600"]  # another apt run (not ours) holds the lock: wait for it
    subprocess.run(["apt-get", *wait, "update", "-q"], capture_output=True, timeout=900, env=env)
    res = subprocess.run(["apt-get", *wait, "install", "-y", "-q", "chromium", "chromium-driver"],
                         capture_output=True, text=True, timeout=1800, env=env)
    return "" if res.returncode == 0 else (res.stderr or res.stdout)[-400:].strip()


def ensure_chromium() -> tuple[str, str]:
    chrome, driver = _found()
    problem = ""
    if (not chrome or not driver) and os.geteuid() == 0 and shutil.which("apt-get"):
        with open(LOCK, "w") as fh:  # one installer at a time; the others wait, then find it installed
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                chrome, driver = _found()
                if not chrome or not driver:
                    problem = _install()
                    chrome, driver = _found()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    if not chrome or not driver:
        raise BrowserUnavailable("chromium / chromedriver missing (apt-get install chromium chromium-driver)"
                                 + (f": {problem}" if problem else ""))
    return chrome, driver


def open_browser(width: int, height: int = 1000):  # type: ignore[no-untyped-def]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise BrowserUnavailable("pip install selenium") from exc
    chrome, driver = ensure_chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    browser = webdriver.Chrome(service=Service(driver), options=opts)
    browser.set_window_size(width, height)
    return browser


if __name__ == "__main__":  # `make test`: install once, before the test workers start
    try:
        print("browser for the report tests:", " + ".join(ensure_chromium()))
    except BrowserUnavailable as exc:
        print(f"warning: {exc}; the browser tests will fail under make test", file=sys.stderr)
