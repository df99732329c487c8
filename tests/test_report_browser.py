"""The leaderboard page in a real headless Chromium: sorting, the sample browser, and model output that tries to
run script (it must show as text and never run). Skips where Chromium is absent, except under CI, where it fails.
Saves a screenshot to the test's tmp dir (and to $WAFERSAGE_SCREENSHOT when set, e.g. for the docs)."""
from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from report_factory import INJECTED, make_runs, tamper
from wafersage.reports.cli import write_report

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.browser


def _chrome(tmp_path: Path):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    webdriver = None
    try:
        from selenium import webdriver
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    if missing:
        reason = f"headless browser test needs {', '.join(missing)} (install with 'make browser')"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {reason}")
        pytest.skip(reason)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                f"--user-data-dir={tmp_path / 'chrome-profile'}", "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def full_page_png(driver) -> bytes:
    """The whole page (not just the window) as PNG, through the DevTools protocol."""
    width, height = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 0.8}})
    return base64.b64decode(shot["data"])


@pytest.fixture
def page(tmp_path):
    runs = make_runs(tmp_path / "data")
    evil = tamper(runs["oracle"], tmp_path / "data" / "runs" / "evil", lambda s, i: INJECTED,
                  model_name="evil<script>window.__pwned=3</script>")
    out = tmp_path / "leaderboard.html"
    write_report([runs["constant"], runs["oracle"], runs["random"], runs["worse"], evil], out)
    return out


def test_sort_open_sample_and_injected_script_stays_text(page, tmp_path):
    from selenium.webdriver.common.by import By

    driver = _chrome(tmp_path)
    try:
        driver.get(page.as_uri())
        models = lambda: [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#board tbody td.model")]
        before = models()
        assert before[0] in ("oracle", "evil<script>window.__pwned=3</script>")  # both score 10; evil is text
        header = driver.find_element(By.XPATH, "//table[@id='board']//th[normalize-space()='model']")
        header.click()
        ascending = models()
        assert ascending != before and ascending == sorted(before, key=str.lower)
        header.click()
        assert models() == sorted(before, key=str.lower, reverse=True)
        score = driver.find_element(By.CSS_SELECTOR, "#board th.headline")
        score.click()  # ascending: lowest score first
        scores = [float(td.get_attribute("data-sort"))
                  for td in driver.find_elements(By.CSS_SELECTOR, "#board tbody td.headline")]
        assert scores == sorted(scores) and scores[0] < scores[-1] and models()[-1] in before[:2]
        assert header.get_attribute("aria-sort") is None and score.get_attribute("aria-sort") == "ascending"

        driver.find_element(By.ID, "sample-filter").send_keys("spatial")
        visible = [b for b in driver.find_elements(By.CSS_SELECTOR, "#sample-list button") if b.is_displayed()]
        assert visible and all("spatial" in b.text for b in visible)
        visible[0].click()
        detail = driver.find_element(By.ID, "sample-detail")
        assert "Question:" in detail.text and "Reference:" in detail.text
        assert detail.find_element(By.TAG_NAME, "img").get_attribute("src").startswith("data:image/png;base64,")
        cards = detail.find_elements(By.CSS_SELECTOR, ".answer")
        assert len(cards) == 5
        evil = next(c for c in cards if "evil" in c.find_element(By.TAG_NAME, "h4").text)
        assert "<script>window.__pwned=1</script>" in evil.text and "onerror" in evil.text
        assert not evil.find_elements(By.CSS_SELECTOR, ".text script, .text img")
        oracle = next(c for c in cards if c.find_element(By.TAG_NAME, "h4").text.startswith("oracle "))
        assert oracle.find_elements(By.CSS_SELECTOR, "mark.hit, .term.hit")  # must-hit terms found, in green
        assert driver.execute_script("return typeof window.__pwned") == "undefined"

        tmp_shot = tmp_path / "leaderboard.png"
        tmp_shot.write_bytes(full_page_png(driver))
        assert tmp_shot.stat().st_size > 10_000
        if os.environ.get("WAFERSAGE_SCREENSHOT"):
            shutil.copyfile(tmp_shot, os.environ["WAFERSAGE_SCREENSHOT"])
    finally:
        driver.quit()
