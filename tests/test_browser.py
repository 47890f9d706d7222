"""The report in a real headless browser: Debian's Chromium driven by Selenium through Debian's
chromium-driver (nothing downloaded: selenium-manager is bypassed by naming the driver).

Builds a report from small fixtures, opens it from file:// and checks: no console errors, every
section present, the t-SNE maps rendered points, the first screen (1,400x900) shows the verdict and the
claims tally, no table is wider than the window; saves a screenshot of the page and one of the first
screen (/tmp/report_top.png) and prints their paths.
Also a script: `python tests/test_browser.py reports/index.html shot.png` checks a real report.
"""
from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from test_report import report_fixture, report_inputs  # noqa: F401 (fixtures)

CHROMIUM = Path("/usr/bin/chromium")
TOP_SCREENSHOT = Path(tempfile.gettempdir()) / "report_top.png"
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "reports" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,900"]
FIRST_SCREEN = (1400, 900)   # what a newcomer sees before scrolling: the verdict and the claims tally must be in it


def inspect_report(index: Path, screenshot: Path | None = None, max_height: int = 16000,
                   top_screenshot: Path | None = None) -> dict:
    """Open `index` from file:// in headless Chromium; return {errors, warnings, sections, points, maps,
    external, fetched, title, first_screen, wide, page_width, viewport}; save a full-page screenshot and
    one of the first screen (1,400x900) when asked."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(120)
        driver.set_window_size(*FIRST_SCREEN)
        driver.get(Path(index).resolve().as_uri())
        WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")
        # plotly draws after load; wait until every t-SNE chart has its points (or there is none).
        WebDriverWait(driver, 60).until(lambda d: d.execute_script(
            "const maps = document.querySelectorAll('#tsne .js-plotly-plot');"
            "return [...maps].every(m => m.querySelectorAll('.scatterlayer .point').length > 0);"))
        result = driver.execute_script(
            "return {sections: [...document.querySelectorAll('section[id]')].map(s => s.id),"
            " points: document.querySelectorAll('#tsne .scatterlayer .point').length,"
            " maps: document.querySelectorAll('#tsne .js-plotly-plot').length,"
            " external: [...document.querySelectorAll('script[src], link[href], img[src]')]"
            "   .map(e => e.src || e.href).filter(u => !u.startsWith('data:')),"
            " fetched: performance.getEntriesByType('resource').map(e => e.name),"
            " title: document.title};")
        # Hover over the first point of the last map (a document map when there is one) as a mouse would.
        result["hover"] = driver.execute_script(
            "const maps = document.querySelectorAll('#tsne .js-plotly-plot');"
            "if (!maps.length) return '';"
            "const m = maps[maps.length - 1]; Plotly.Fx.hover(m, [{curveNumber: 0, pointNumber: 0}]);"
            "const t = m.querySelector('.hoverlayer .hovertext'); return t ? t.textContent : '';")
        # The first screen: the ids of the summary's parts that lie wholly inside it; and every table (and
        # the page itself) within the window's width, so nothing needs a sideways scroll.
        driver.execute_script("window.scrollTo(0, 0)")
        result.update(driver.execute_script(
            "const h = window.innerHeight, w = document.documentElement.clientWidth;"
            "const inside = id => { const e = document.getElementById(id);"
            "  return !!e && e.getBoundingClientRect().bottom <= h; };"
            "return {first_screen: ['verdict', 'claims-tally', 'served'].filter(inside),"
            " viewport: [w, h], page_width: document.documentElement.scrollWidth,"
            " wide: [...document.querySelectorAll('table')].filter(t => t.getBoundingClientRect().right > w)"
            "   .map(t => t.closest('section').id + ': ' + t.querySelector('tr').textContent.slice(0, 60))};"))
        if top_screenshot is not None:
            Path(top_screenshot).parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(top_screenshot))
            result["top_screenshot"] = str(top_screenshot)
        result["errors"] = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        result["warnings"] = [e for e in driver.get_log("browser") if e.get("level") == "WARNING"]
        if screenshot is not None:
            screenshot = Path(screenshot)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            # The whole page in one image (tall pages cut at max_height).
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1400, min(int(height) + 100, max_height))
            driver.save_screenshot(str(screenshot))
            result["screenshot"] = str(screenshot)
        return result
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


needs_chromium = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="Chromium not installed (/usr/bin/chromium, /usr/bin/chromedriver): "
           "apt-get install chromium chromium-driver (.ci/run does)")


@needs_chromium
def test_report_opens_offline_without_errors(tmp_path, report_fixture):
    pytest.importorskip("selenium", reason="selenium is in the dev extra: pip install -e '.[dev]'")
    from nlpdag.report.build import run
    from nlpdag.report.page import SECTIONS

    params, root = report_fixture
    index = tmp_path / "reports" / "index.html"
    run(params, root=root, index=index, figures=tmp_path / "reports" / "figures")
    shot, top = SCREENSHOTS / "report.png", TOP_SCREENSHOT
    result = inspect_report(index, shot, top_screenshot=top)
    print(f"\nscreenshots: {shot} (whole page), {top} (first screen)")
    assert result["errors"] == []
    assert result["external"] == [] and result["fetched"] == []
    assert set(SECTIONS) <= set(result["sections"])
    assert result["maps"] == 4  # two word maps (pretrained skipped) and two document maps in the fixture
    assert result["points"] >= 4 * 20
    # label, prediction and the first words, entities decoded ("&" in the text, "&amp;" in the HTML)
    assert re.match(r"label (negative|positive) · predicted (negative|positive) · (IMDB|Rotten Tomatoes)"
                    r"Doc \d+ is (great|awful) & word0", result["hover"])
    assert shot.is_file() and shot.stat().st_size > 10_000
    # A newcomer's first screen shows the verdict and the claims tally, and no table needs a sideways scroll.
    assert result["viewport"][0] <= 1400 and result["viewport"][1] <= 900
    assert {"verdict", "claims-tally"} <= set(result["first_screen"]), result["first_screen"]
    assert result["wide"] == [] and result["page_width"] <= result["viewport"][0]
    assert top.is_file() and top.stat().st_size > 10_000


if __name__ == "__main__":
    out = inspect_report(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None,
                         *(int(a) for a in sys.argv[3:4]), top_screenshot=TOP_SCREENSHOT)
    print({k: v for k, v in out.items()})
    sys.exit(1 if out["errors"] else 0)
