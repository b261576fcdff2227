"""Headless Chromium for report tests (Debian packages chromium + chromium-driver).

Installed on first use when missing and running as root; otherwise the caller skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess


class BrowserUnavailable(RuntimeError):
    pass


def ensure_chromium() -> tuple[str, str]:
    chrome, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if (not chrome or not driver) and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=600, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"], capture_output=True,
                       timeout=1200, env=env)
        chrome, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chrome or not driver:
        raise BrowserUnavailable("chromium / chromedriver missing (apt-get install chromium chromium-driver)")
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
