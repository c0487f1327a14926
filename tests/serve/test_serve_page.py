"""The page in a real browser: Debian's chromium and chromedriver, driven by Selenium.

``MLFER_SERVE_SCREENSHOT=FILE`` also saves the page with its result (docs/images/serve_page.png).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import Server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,1000",
    "--use-fake-device-for-media-stream",  # a generated test pattern stands in for the webcam
    "--use-fake-ui-for-media-stream",
)
PHOTO = "multi_face.jpg"


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Headless Chromium with a fresh profile."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip("chromium and chromium-driver are not installed (.ci/run installs them with apt-get)")
    webdriver = pytest.importorskip("selenium.webdriver")
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look for a driver online
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def test_a_chosen_photo_shows_each_face_with_its_expressions(browser, server: Server, shared_data: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    expected = server.client().predict([(PHOTO, (shared_data / "faces" / PHOTO).read_bytes())]).json()
    browser.get(f"{server.url}/?token={server.token}")
    assert browser.title == "mlfer: facial expressions"
    browser.find_element(By.ID, "file").send_keys(str(shared_data / "faces" / PHOTO))
    WebDriverWait(browser, 60).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".face"))
    cards = browser.find_elements(By.CSS_SELECTOR, ".face")
    assert browser.find_element(By.ID, "status").text == f"{len(expected)} faces found."
    assert len(cards) == len(expected)
    for card, row in zip(cards, expected):
        bars = card.find_elements(By.CSS_SELECTOR, ".bar")
        assert [bar.get_attribute("data-expression") for bar in bars] == [
            "surprise",
            "fear",
            "disgust",
            "happiness",
            "sadness",
            "anger",
        ]
        on = [bar.get_attribute("data-expression") for bar in bars if "on" in bar.get_attribute("class").split()]
        assert "|".join(on) == row["predicted"]
        assert card.find_element(By.CSS_SELECTOR, ".predicted").text == (
            " + ".join(row["predicted"].split("|")) if row["predicted"] else "no expression"
        )
        assert bars[3].find_element(By.CSS_SELECTOR, ".value").text == f"{row['happiness']:.2f}"
    width = browser.execute_script("return document.getElementById('picture').width")
    assert width > 0, "the photo was not drawn"
    if os.environ.get("MLFER_SERVE_SCREENSHOT"):
        browser.set_window_size(1200, browser.execute_script("return document.documentElement.scrollHeight") + 160)
        browser.save_screenshot(os.environ["MLFER_SERVE_SCREENSHOT"])


def test_a_page_without_the_token_asks_for_it(browser, server: Server, shared_data: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url + "/")
    browser.find_element(By.ID, "file").send_keys(str(shared_data / "faces" / "0-f1-su-ph.jpg"))
    WebDriverWait(browser, 60).until(lambda driver: "needs a token" in driver.find_element(By.ID, "status").text)
    assert not browser.find_elements(By.CSS_SELECTOR, ".face")


def test_a_webcam_photo_is_sent(browser, server: Server) -> None:
    """Chromium's fake camera (a test pattern, no face): the page takes a frame and shows the answer."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server.url}/?token={server.token}")
    browser.find_element(By.ID, "camera").click()
    capture = browser.find_element(By.ID, "capture")
    WebDriverWait(browser, 30).until(
        lambda driver: (
            capture.is_displayed() and driver.execute_script("return document.getElementById('video').videoWidth") > 0
        )
    )
    capture.click()
    WebDriverWait(browser, 60).until(lambda driver: "found" in driver.find_element(By.ID, "status").text)
    assert browser.find_element(By.ID, "status").text == "No face found in this photo."
    assert browser.execute_script("return document.getElementById('picture').width") > 0
