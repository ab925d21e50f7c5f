"""The review page in a real browser (Debian's chromium + chromium-driver, driven by selenium; no
browser download): open with the token, sort by chosen rating, filter to audit-flagged records,
open one, change a rating with the keyboard, mark a different chosen, then check the edits log
and that binarize with the edits changes that prompt's chosen response. Saves a 1280x800
screenshot of the record view (tmp folder, or NOTOS_SCREENSHOT_DIR)."""

import inspect
import os
import shutil
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from notos.data.edits import read_edits
from notos.data.records import read_completions
from notos.review import server
from notos.review.marks import binarize_with_edits
from notos.review.session import open_session

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def ensure_browser():
    """Install Debian's chromium and chromium-driver where missing (the README's test command must
    work on a fresh machine); skip only where apt cannot."""
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip("chromium / chromium-driver missing and apt-get is not available as root to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
        if done.returncode != 0:
            pytest.skip(f"could not install chromium with apt ({' '.join(command)}: {done.stderr.strip()[-200:]})")


@pytest.fixture
def browser():
    pytest.importorskip("selenium", reason="the browser test needs selenium (pip install selenium)")
    ensure_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # selenium-manager must not download a driver or a browser
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800",
                "--disable-gpu", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    # the page itself at 1280x800, whatever the headless window's frame takes
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = driver.execute_script(condition)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {condition}")


def choose(driver, element_id: str, value: str):
    """Pick an option the way a person does; the list reloads (body data-list changes)."""
    from selenium.webdriver.support.ui import Select

    before = driver.execute_script("return document.body.dataset.list")
    Select(driver.find_element("id", element_id)).select_by_value(value)
    wait_for(driver, f"return document.body.dataset.list !== '{before}'")


def press(driver, *keys):
    from selenium.webdriver.common.action_chains import ActionChains

    for key in keys:
        ActionChains(driver).send_keys(key).perform()


def test_review_in_a_browser_end_to_end(browser, review_data, tmp_path, cli):
    from selenium.webdriver.common.keys import Keys

    session = open_session(review_data)
    session.log.folder.mkdir(parents=True, exist_ok=True)
    running = server.start(session, log_path=session.log.folder / "access.log")
    try:
        browser.get(running.url)
        wait_for(browser, "return document.body.dataset.ready === '1'")
        choose(browser, "sort", "chosen")
        choose(browser, "desc", "1")
        unfiltered = [e.get_attribute("data-id") for e in browser.find_elements("css selector", "tr.rec")]
        assert unfiltered[:2] == ["u0", "u1"]
        choose(browser, "flag", "any")
        rows = [e.get_attribute("data-id") for e in browser.find_elements("css selector", "tr.rec")]
        assert rows == ["f2", "f1", "f3"]
        browser.find_element("css selector", "tr.rec[data-id='f2']").click()
        wait_for(browser, "return document.body.dataset.record === 'f2'")
        text = browser.find_element("id", "record").text
        assert "critique_disagrees" in text and "chosen" in text and "model-1" in text
        # Completion 1, aspect honesty (one right, one down), rated 1 from the keyboard.
        press(browser, Keys.ARROW_RIGHT, Keys.ARROW_DOWN, "1")
        wait_for(browser, "return document.body.dataset.edits === '1'")
        # Completion 2 marked chosen with "c".
        press(browser, Keys.ARROW_RIGHT, "c")
        wait_for(browser, "return document.body.dataset.edits === '2'")
        badge = browser.find_element("css selector", ".card[data-index='2'] .badge-chosen")
        assert badge.text == "chosen"
        shot = Path(os.environ.get("NOTOS_SCREENSHOT_DIR") or tmp_path) / "review_record.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        summary = browser.find_element("id", "summary").text
        assert "reviewed 1" in summary and "edited 1" in summary
        # Back to completion 0: accept the audit's flag (a); enter: reviewed, on to the next record
        # (f3: f2's chosen score fell to 3.0, so the list, re-sorted, reads f1 f2 f3); d discards it;
        # k goes back to f2.
        press(browser, Keys.ARROW_LEFT, Keys.ARROW_LEFT, "a")
        wait_for(browser, "return document.body.dataset.edits === '3'")
        press(browser, Keys.ENTER)
        wait_for(browser, "return document.body.dataset.record === 'f3'")
        press(browser, "d")
        wait_for(browser, "return document.body.dataset.edits === '5'")
        summary = browser.find_element("id", "summary").text
        assert "discarded 1" in summary and "flags confirmed 1" in summary and "audit precision 100%" in summary
        press(browser, "k")
        wait_for(browser, "return document.body.dataset.record === 'f2'")
    finally:
        running.stop()

    edits = read_edits(session.log.path)
    assert [(e["prompt_id"], e["completion_index"], e["field"], e["old"], e["new"]) for e in edits] == [
        ("f2", 1, "rating_honesty", 5.0, 1), ("f2", 2, "chosen", 1, 2), ("f2", 0, "flag", None, "confirmed"),
        ("f2", None, "reviewed", True, True), ("f3", None, "discard", False, True)]
    assert all(e["time"] and e["origin"] == "review" for e in edits)
    assert running.token not in (session.log.folder / "access.log").read_text()

    before = {r["prompt_id"]: r["index_chosen"] for r in
              pq.read_table(binarize_out(cli, review_data, tmp_path / "before")).to_pylist()}
    after = {r["prompt_id"]: r["index_chosen"] for r in
             pq.read_table(binarize_out(cli, review_data, tmp_path / "after", session.log.folder)).to_pylist()}
    assert before["f2"] == 1 and after["f2"] == 2
    assert "f3" in before and "f3" not in after  # discarded
    assert {k: v for k, v in after.items() if k != "f2"} == {k: v for k, v in before.items() if k not in ("f2", "f3")}


def test_the_page_says_the_audit_is_pending_until_it_is_in(browser, review_data, gate):
    session = open_session(review_data, wait=False)
    running = server.start(session)
    try:
        browser.get(running.url)
        wait_for(browser, "return document.body.dataset.ready === '1'")
        assert "audit flags are still being computed" in browser.find_element("id", "notice").text
        assert browser.execute_script("return document.body.dataset.audit") == "pending"
        first = browser.find_element("css selector", "tr.rec[data-id='f1'] td[title='audit severity']")
        assert first.text == "–"  # unknown, not 0
        gate.set()  # the page polls /api/meta and reloads the list when the audit is in
        wait_for(browser, "return document.body.dataset.audit === 'done'")
        assert browser.find_element("id", "notice").text == ""
        assert browser.find_element("css selector", "tr.rec[data-id='f1'] td[title='audit severity']").text == "3.94"
        assert "1 flag" in browser.find_element("css selector", "tr.rec[data-id='f1']").text
    finally:
        running.stop()


def binarize_out(cli, data: Path, out: Path, edits: Path | None = None) -> Path:
    """`notos curate binarize [--edits]` where the CLI takes --edits; else the same through this
    package's function (the curate side of --edits may not have landed yet)."""
    from notos.curate.cli import binarize

    if edits is None or "edits" in inspect.signature(binarize).parameters:
        result = cli("curate", "binarize", data, "--out", out, *(["--edits", edits] if edits else []))
        assert result.returncode == 0, result.stderr
        return out / "data.parquet"
    pairs, _ = binarize_with_edits(read_completions(data), edits, "mean", 0)
    out.mkdir(parents=True)
    pq.write_table(pairs, out / "data.parquet")
    return out / "data.parquet"
