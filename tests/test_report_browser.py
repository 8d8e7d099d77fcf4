"""The HTML report in a real headless browser (Debian's chromium): it opens offline and
shows the tables and the plots. Skips when chromium is not installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecls.atomic import write_text_atomic
from edgecls.bench.render_html import render_html
from edgecls.bench.report import merge_reports

FIXTURES = Path(__file__).parent / "fixtures" / "reports"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless chromium installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    merged = merge_reports([FIXTURES / "x86_laptop.json", FIXTURES / "raspberry_pi_4.json",
                            FIXTURES / "broken.json"])
    path = tmp_path_factory.mktemp("html") / "report.html"
    write_text_atomic(path, render_html(merged))
    return path


def _chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    # No network at all: a self-contained page must render without it.
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_dom_holds_tables_rows_and_plots(browser: str, page: Path, tmp_path: Path) -> None:
    proc = _chromium(browser, tmp_path / "profile", "--dump-dom", page.as_uri())
    dom = proc.stdout
    assert proc.returncode == 0 and "<table" in dom, proc.stderr[-2000:]
    assert len(re.findall(r"<table class=\"bench\"", dom)) == 2
    assert len(re.findall(r"<tr class=\"(passed|failed|below_floor)\"", dom)) == 10
    assert len(re.findall(r"<svg\b", dom)) >= 13
    assert "Accuracy vs latency: raspberry-pi-4" in dom and "Size per artifact" in dom
    assert "skipped" in dom and "broken.json" in dom


def test_screenshot_shows_a_rendered_page(browser: str, page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    proc = _chromium(browser, tmp_path / "profile", "--window-size=1400,2400",
                     f"--screenshot={shot}", page.as_uri())
    assert shot.is_file(), proc.stderr[-2000:]
    image = cv2.imread(str(shot))
    assert image.shape[:2] == (2400, 1400)
    # A blank or unstyled page is nearly all white; the report has tables, bars and heat maps.
    not_white = (image < 235).any(axis=2).mean()
    assert not_white > 0.05
    blue = (image[..., 0] > 150) & (image[..., 2] < 120)  # plot bars and confusion matrices
    assert blue.mean() > 0.005
    colors = np.unique(image.reshape(-1, 3) // 32, axis=0)
    assert len(colors) > 20
