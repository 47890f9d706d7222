"""The report in a real headless browser: Debian's Chromium driven by Selenium through Debian's
chromium-driver (nothing downloaded: selenium-manager is bypassed by naming the driver).

Builds a report from small fixtures, opens it from file:// and checks: no console errors, every
section present, the t-SNE maps rendered points; saves a screenshot and prints its path.
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
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "reports" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000"]


def inspect_report(index: Path, screenshot: Path | None = None, max_height: int = 16000) -> dict:
    """Open `index` from file:// in headless Chromium; return {errors, warnings, sections, points, maps,
    external, fetched, title}; save a full-page screenshot when asked."""
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
    shot = SCREENSHOTS / "report.png"
    result = inspect_report(index, shot)
    print(f"\nscreenshot: {shot}")
    assert result["errors"] == []
    assert result["external"] == [] and result["fetched"] == []
    assert set(SECTIONS) <= set(result["sections"])
    assert result["maps"] == 4  # two word maps (pretrained skipped) and two document maps in the fixture
    assert result["points"] >= 4 * 20
    # label, prediction and the first words, entities decoded ("&" in the text, "&amp;" in the HTML)
    assert re.match(r"label (neg|pos) · predicted (neg|pos) · \w+Doc \d+ is (great|awful) & word0", result["hover"])
    assert shot.is_file() and shot.stat().st_size > 10_000


if __name__ == "__main__":
    out = inspect_report(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None,
                         *(int(a) for a in sys.argv[3:4]))
    print({k: v for k, v in out.items()})
    sys.exit(1 if out["errors"] else 0)
