"""The report opened in a real browser: headless Chromium draws a non-blank page holding the key numbers.

Chromium is the Debian package (``/usr/bin/chromium``, installed by ``.ci/run``); it runs offline with
networking features off, so a page that needed the network would show gaps, not fetch them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import pytest
from PIL import Image

from models.registry import builtin_registry
from models.settings import load_segmentation_settings
from publishing.report import build_report_data, render_report

try:
    from tests.test_report import D, make_report_warehouse
except ImportError:  # pytest's rootdir-relative import mode
    from test_report import D, make_report_warehouse

CHROMIUM = Path("/usr/bin/chromium")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM.is_file(), "headless Chromium is needed: apt-get install -y chromium (.ci/run does it)"
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    con = duckdb.connect()
    make_report_warehouse(con)
    folder = tmp_path_factory.mktemp("report")
    from segments.config import settings_from_dict

    settings = settings_from_dict({"sources": {"orders": {"glob": "orders/*"}}}, base_dir=folder)
    data = build_report_data(con, D, builtin_registry(load_segmentation_settings({})), settings)
    con.close()
    path = folder / "segment_report.html"
    path.write_text(render_report(data, "en"), encoding="utf-8")
    return path


def test_screenshot_is_not_blank(page: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    _chromium(tmp_path, "--window-size=1200,1600", "--hide-scrollbars", f"--screenshot={png}", page.as_uri())
    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    assert pixels.shape == (1600, 1200)
    assert pixels.std() > 20  # text, bars and tables; a blank or failed page is one flat colour
    dark = (pixels < 128).mean()
    assert 0.005 < dark < 0.5  # some ink, not a black page


def test_dom_holds_the_key_numbers_and_no_external_reference(page: Path, tmp_path: Path) -> None:
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    assert re.search(r'id="total-customers">4<', dom)
    assert re.search(r'id="total-revenue">¥1,234,567<', dom)
    champions = re.search(r'<tr data-segment="champions"><td>Champions</td><td class="n">(\d+)</td>', dom)
    assert champions and champions.group(1) == "2"
    assert dom.count("<svg") >= 2  # charts drawn inline
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", dom, re.IGNORECASE)
