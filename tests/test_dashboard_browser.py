"""The dashboard in a real headless Chromium: live text and a tool's progress appear.

Everything runs for real: the ``serve`` command's sessions on the embedded
emulator over loopback, the websocket feed, the static page, and Debian's
``chromium`` driven by Selenium through ``chromedriver`` (``make test``
installs both when it runs as root; elsewhere the test says what is missing).
Selenium is blocking, so it runs in a worker thread while trio serves.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest
import trio

from runtime._cli.serve import ServeOptions, serve_sessions
from runtime._cli.tools import demo_tools

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

# On CI (CI=true) a missing browser is a failure, not a skip: ``make test`` installs it.
pytestmark = pytest.mark.skipif(
    (CHROMIUM is None or CHROMEDRIVER is None) and not os.environ.get("CI"),
    reason="needs Debian's chromium and chromium-driver (make test installs them as root)",
)


def _drive(url: str, wrong_token_url: str) -> dict[str, Any]:
    """Open the page, follow a session, and read what the page shows."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        wait = WebDriverWait(driver, 30, poll_frequency=0.1)
        driver.get(url)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sessions tr"))
        driver.find_elements(By.CSS_SELECTOR, "#sessions tr")[0].click()

        def tool_progress(d: Any) -> bool:
            return any(
                int(li.get_attribute("data-progress") or 0) > 0
                for li in d.find_elements(By.CSS_SELECTOR, "#tools li")
            )

        wait.until(tool_progress)
        wait.until(lambda d: d.find_element(By.ID, "text").text.strip())
        seen = {
            "connection": driver.find_element(By.ID, "connection").get_attribute("data-state"),
            "text": driver.find_element(By.ID, "text").text,
            "tools": [
                (li.get_attribute("data-name"), int(li.get_attribute("data-progress") or 0))
                for li in driver.find_elements(By.CSS_SELECTOR, "#tools li")
            ],
            "followed": driver.find_element(By.ID, "session-panel").get_attribute("data-session"),
            "page_source": driver.page_source,
        }
        driver.get("about:blank")  # a new load: a fragment change alone would not reconnect
        driver.get(wrong_token_url)
        WebDriverWait(driver, 30, poll_frequency=0.1).until(
            lambda d: (
                d.find_element(By.ID, "connection").get_attribute("data-state") == "unauthorized"
            )
        )
        seen["wrong_token_state"] = "unauthorized"
        return seen
    finally:
        driver.quit()


async def test_live_text_and_tool_progress_appear_in_a_real_browser() -> None:
    options = ServeOptions(port=0, sessions=3, interval=0.2, token_delay=0.02, concurrency=3)
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            served = await nursery.start(serve_sessions, options, demo_tools(20, 0.05))
            wrong = f"{served.address.url}#token=not-the-token"
            seen = await trio.to_thread.run_sync(_drive, served.open_url, wrong)
            nursery.cancel_scope.cancel()
    assert seen["followed"].startswith("run_")
    assert seen["text"].strip()
    names = {name for name, _ in seen["tools"]}
    assert "scan_table" in names
    assert any(progress > 0 for _, progress in seen["tools"])
    assert served.token not in seen["page_source"]
    assert seen["wrong_token_state"] == "unauthorized"
