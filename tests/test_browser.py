"""The HTML reports as a reader sees them: the run report, the grant report and the replication
report opened in headless Chromium (Debian packages ``chromium`` and ``chromium-driver``, driven by
selenium) in a window 1,280 px wide.

Checked on whatever the reports contain, so the test keeps its meaning as they change: nothing
makes the page scroll sideways (``document.documentElement.scrollWidth <= 1280``, with every
collapsed section opened), nothing inside it has to be scrolled sideways either (except the
appendix's full machine-readable tables, each in a region labelled as scrolling), every image has
loaded (``naturalWidth > 0``), and the browser console has no errors (a script from a CDN that
cannot load offline is one). Full-page screenshots, collapsed and with every section open, are
written to ``$TRIALKIT_SCREENSHOTS`` (default ``build/screenshots/``) for a person to look at.

Marked ``slow`` (it builds three reports: about a minute) and started first (tests/conftest.py).
Chromium missing is a failure that says how to install it, not a skip; ``.ci/run`` installs it.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_PLAN, REPO

pytestmark = pytest.mark.slow

WIDTH = 1280
CHROMIUM = ("/usr/bin/chromium", "chromium")
CHROMEDRIVER = ("/usr/bin/chromedriver", "chromedriver")
INSTALL = ("install them with `sudo apt-get install -y chromium chromium-driver` (Debian/Ubuntu; "
           ".ci/run does this when they are missing)")
PUBLISHED_PLAN = REPO / "data" / "studies" / "precision-release-2023.yaml"
CHROME_ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--window-size={WIDTH},1000")


def _find(candidates: tuple[str, str]) -> str | None:
    path, name = candidates
    return path if Path(path).is_file() else shutil.which(name)


def _screenshots() -> Path:
    folder = Path(os.environ.get("TRIALKIT_SCREENSHOTS") or REPO / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """Build the example run, its grant report and the published-results replication side by side."""
    root = tmp_path_factory.mktemp("browser")
    commands = {
        "run": (["run", str(EXAMPLE_PLAN), "--out", str(root / "run")], root / "run" / "report.html"),
        "grant": (["grant-report", str(EXAMPLE_PLAN), "--period-end", "2023-12-31", "--out", str(root / "grant")],
                  root / "grant" / "report.html"),
        "replication": (["replicate", str(PUBLISHED_PLAN), "--out", str(root / "replication")],
                        root / "replication" / "replication.html"),
    }
    started = {name: subprocess.Popen([sys.executable, "-m", "analysis", *argv], cwd=root, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
               for name, (argv, _) in commands.items()}
    for name, process in started.items():
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, f"trialkit {commands[name][0][0]} failed:\n{output}"
    return {name: html for name, (_, html) in commands.items()}


def _require_chromium() -> tuple[str, str]:
    chromium, chromedriver = _find(CHROMIUM), _find(CHROMEDRIVER)
    if not (chromium and chromedriver):
        missing = " and ".join(name for name, found in (("chromium", chromium), ("chromedriver", chromedriver)) if not found)
        pytest.fail(f"the browser test needs {missing}: {INSTALL}", pytrace=False)
    return chromium, chromedriver


def test_chromium_and_its_driver_are_installed():
    """A failure, not a skip: without them the reports are not checked at all."""
    _require_chromium()


@pytest.fixture(scope="module")
def browser():
    chromium, chromedriver = _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="trialkit-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (*CHROME_ARGUMENTS, f"--user-data-dir={profile}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _full_page_png(driver, path: Path) -> None:
    """The whole page, not the window: Chrome's DevTools screenshot beyond the viewport."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 30000), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip})
    path.write_bytes(base64.b64decode(shot["data"]))


# Elements a reader would have to scroll sideways: wider than their own box with their overflow
# clipped or scrollable (the notebook's output areas scroll a wide table instead of the page).
SIDEWAYS = """
const out = [];
for (const el of document.querySelectorAll('body *')) {
  const style = getComputedStyle(el);
  if (!['auto', 'scroll', 'hidden'].includes(style.overflowX) || el.clientWidth === 0) continue;
  // the appendix's full tidy tables scroll inside a region labelled as scrolling (by design)
  if (el.matches('.trialkit-scroll[role=region]')) continue;
  if (el.scrollWidth > el.clientWidth + 1) {
    // where it is: the nearest heading before it, the collapsed section around it, its first column
    let heading = '', node = el;
    while (node && !heading) {
      let prev = node.previousElementSibling;
      while (prev && !heading) { const h = prev.matches('h1,h2,h3,h4') ? prev : prev.querySelector('h1,h2,h3,h4');
        if (h) heading = h.textContent.trim(); prev = prev.previousElementSibling; }
      node = node.parentElement;
    }
    const section = el.closest('details');
    const summary = section && section.querySelector('summary') ? section.querySelector('summary').textContent.trim() : '';
    const inner = el.querySelector('table, img, pre') || el;
    const first = inner.querySelector('th, td');
    out.push(`${inner.tagName.toLowerCase()} ${el.scrollWidth} px wide in a ${el.clientWidth} px box ` +
             `(under "${heading.slice(0, 80)}"` + (summary ? `, in "${summary.slice(0, 80)}"` : '') +
             (first ? `, first column "${first.textContent.trim().slice(0, 40)}"` : '') + ')');
  }
}
return out;
"""


def _look(driver, html: Path, name: str, folder: Path) -> list[str]:
    """Open one report, write its screenshots, and say what is wrong with it (nothing: [])."""
    driver.get_log("browser")  # start each page with an empty console
    driver.get(html.as_uri())
    _full_page_png(driver, folder / f"{name}.png")
    # every collapsed section opened, so that what it holds is laid out and checked too
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    _full_page_png(driver, folder / f"{name}-expanded.png")
    problems = []
    width = driver.execute_script("return document.documentElement.scrollWidth")
    if width > WIDTH:
        problems.append(f"the page is {width} px wide (scrollWidth), wider than the {WIDTH} px window")
    problems += [f"has to be scrolled sideways: {where}" for where in driver.execute_script(SIDEWAYS)]
    images = driver.execute_script("return [...document.images].map(i => ({complete: i.complete, "
                                   "natural: i.naturalWidth, alt: i.alt || i.src.slice(0, 60)}))")
    if not images:
        problems.append("shows no image")
    problems += [f"image not loaded: {i['alt']}" for i in images if not (i["complete"] and i["natural"] > 0)]
    problems += [f"console error: {entry['message']}" for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    for stem in (name, f"{name}-expanded"):
        data = (folder / f"{stem}.png").read_bytes()
        if data[:8] != b"\x89PNG\r\n\x1a\n" or int.from_bytes(data[16:20], "big") < WIDTH - 20:
            problems.append(f"screenshot {stem}.png is not a full-width PNG")
    return [f"{name} report ({html.name}): {problem}" for problem in problems]


def test_the_reports_read_well_at_1280_px(browser, reports):
    """One test (so that pytest-xdist builds the reports once), every problem of every report listed."""
    folder = _screenshots()
    problems = [problem for name, html in reports.items() for problem in _look(browser, html, name, folder)]
    assert not problems, f"screenshots in {folder}\n" + "\n".join(problems)
