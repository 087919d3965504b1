"""The chat in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`)
driven by Selenium. Opens the page, types a wish, clicks answers until a list comes, opens the
reasons, picks an item; then runs a comparison in the policy lab tab. Each test saves a screenshot
in its folder (and in $CRS_SCREENSHOT_DIR when set, which is how docs/images/chat.png and lab.png
are made)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
)

OUTERMOST_CARDS = (
    "//*[@id='cards']//*[contains(@class, 'film-card')][not(ancestor::*[contains(@class, 'film-card')])]"
)


@pytest.fixture
def browser() -> Iterator[Any]:
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "the browser test needs Debian's chromium and chromium-driver: "
        "apt-get install -y chromium chromium-driver (see the README)"
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("the page did not get there in time")


def test_find_a_movie_in_the_browser(app_url: str, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def options() -> list[Any]:
        return [b for b in browser.find_elements(By.CSS_SELECTOR, "#chat button.option") if b.is_displayed()]

    def option_texts() -> list[str]:
        return [b.text for b in options()]

    browser.get(app_url)
    wait_for(lambda: "Tell me what you are in the mood for" in browser.page_source)
    box = browser.find_element(By.CSS_SELECTOR, "#message textarea")
    box.send_keys("something funny, but no horror please")
    box.send_keys(Keys.ENTER)
    wait_for(lambda: "funny" in browser.find_element(By.ID, "understood").text)

    answers = ["Yes", "No", "Don't care"]
    for turn in range(14):
        texts = wait_for(option_texts)
        if "None of these" in texts:
            break
        before = len(browser.find_elements(By.CSS_SELECTOR, "#chat .message"))
        # A multiple-choice question ("Which decade?") has one button per value: pick the first.
        wanted = answers[turn % 3] if answers[turn % 3] in texts else texts[0]
        next(b for b in options() if b.text == wanted).click()
        wait_for(lambda before=before: len(browser.find_elements(By.CSS_SELECTOR, "#chat .message")) > before)
    assert "None of these" in option_texts(), "no list of items after 14 answers"

    # The reasons are folded under each of the system's messages: open the last one.
    folds = [e for e in browser.find_elements(By.XPATH, "//*[contains(text(), 'Why?')]") if e.is_displayed()]
    assert folds
    folds[-1].click()
    wait_for(lambda: "Recommending" in browser.find_element(By.ID, "chat").text)

    first = options()[0]
    title = first.text.split(". ", 1)[1]
    first.click()
    wait_for(lambda: "Your pick" in browser.find_element(By.ID, "understood").text)
    assert title in browser.find_element(By.ID, "understood").text

    shot = tmp_path / "chat.png"
    browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:4] == b"\x89PNG"
    if os.environ.get("CRS_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["CRS_SCREENSHOT_DIR"]) / "chat.png")


def test_policy_lab_in_the_browser(app_url: str, browser: Any, tmp_path: Path) -> None:
    """The lab tab: run the default against the second preset, read the table, see the plot and
    the replay with what the policy weighed."""
    from selenium.webdriver.common.by import By

    browser.set_window_size(1280, 1500)
    browser.get(app_url)
    wait_for(lambda: "Tell me what you are in the mood for" in browser.page_source)
    tab = next(
        b for b in browser.find_elements(By.CSS_SELECTOR, "button[role='tab']") if "Policy lab" in b.text
    )
    tab.click()
    count = wait_for(lambda: [e for e in browser.find_elements(By.CSS_SELECTOR, "input[type='number']")])
    count[0].clear()
    count[0].send_keys("40")
    browser.find_element(By.ID, "lab-run").click()
    wait_for(lambda: "McNemar" in browser.find_element(By.ID, "lab-summary").text, timeout=180)
    text = browser.find_element(By.ID, "lab-summary").text
    assert "40 conversations" in text and "belief" in text
    wait_for(lambda: "considered:" in browser.find_element(By.ID, "lab-replay").text)
    wait_for(lambda: [i for i in browser.find_elements(By.CSS_SELECTOR, "img") if i.is_displayed()])

    shot = tmp_path / "lab.png"
    browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:4] == b"\x89PNG"
    if os.environ.get("CRS_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["CRS_SCREENSHOT_DIR"]) / "lab.png")


def test_people_s_wishes_and_film_cards_in_the_browser(app_url: str, browser: Any, tmp_path: Path) -> None:
    """Two wishes from the scenarios, typed as a person would: "something like The Matrix but less
    violent" gives film cards without The Matrix, and "Not this one" takes one card away; "like
    King Kong" asks which one with a button per film, and the click is what is understood."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def cards() -> list[Any]:
        from selenium.common.exceptions import StaleElementReferenceException

        try:  # the cards are drawn anew after every click: an element may go while being read
            # Gradio puts a Group's class on its inner block too: the outermost one is the card.
            return [c for c in browser.find_elements(By.XPATH, OUTERMOST_CARDS) if c.is_displayed()]
        except StaleElementReferenceException:
            return []

    def say(text: str) -> None:
        box = browser.find_element(By.CSS_SELECTOR, "#message textarea")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    browser.set_window_size(1280, 1700)
    browser.get(app_url)
    wait_for(lambda: "Tell me what you are in the mood for" in browser.page_source)
    say("something like The Matrix but less violent")
    shown = wait_for(lambda: len(cards()) >= 5 and cards())
    texts = [card.text for card in shown]
    assert not any("Matrix, The (1999)" in text for text in texts)
    assert sum("Sci-Fi" in text or "Action" in text for text in texts) >= len(texts) // 2
    assert any("Directed by" in text for text in texts)  # the cards say who made the films
    shot = tmp_path / "cards.png"
    browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:4] == b"\x89PNG"
    if os.environ.get("CRS_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["CRS_SCREENSHOT_DIR"]) / "cards.png")

    second = texts[1].splitlines()[0]
    next(b for b in shown[1].find_elements(By.TAG_NAME, "button") if b.text == "Not this one").click()
    wait_for(lambda: len(cards()) == len(texts) - 1)
    wait_for(lambda: not any(second in card.text for card in cards()) and cards())

    browser.find_element(By.ID, "restart").click()
    wait_for(lambda: not cards())
    say("something like King Kong")
    offered = wait_for(
        lambda: [
            b for b in browser.find_elements(By.CSS_SELECTOR, "#chat button.option") if "King Kong" in b.text
        ]
    )
    assert sorted(b.text for b in offered) == ["King Kong (1933)", "King Kong (2005)"]
    next(b for b in offered if b.text == "King Kong (2005)").click()
    wait_for(lambda: "King Kong (2005)" in browser.find_element(By.ID, "understood").text)
