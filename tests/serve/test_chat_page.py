"""The chat page in a real browser: Debian's chromium, headless, driven by selenium."""

from __future__ import annotations

import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# The machine has no internet: these flags keep chromium from stalling on network features.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")


def chromium(profile: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def test_typed_message_gets_a_streamed_reply(live_server):
    with tempfile.TemporaryDirectory() as profile:
        browser = chromium(profile)
        try:
            browser.get(live_server.url + "/")
            wait = WebDriverWait(browser, 90)
            wait.until(lambda b: b.find_element(By.ID, "model").text == live_server.served.name)
            browser.execute_script("document.getElementById('temperature').value = '0';")
            browser.find_element(By.ID, "max-tokens").send_keys("24")
            box = browser.find_element(By.ID, "input")
            box.send_keys("Tell me about Bath.")
            browser.find_element(By.ID, "send").click()
            reply = wait.until(lambda b: b.find_element(
                By.CSS_SELECTOR, ".msg.assistant[data-done='1'], .msg.error[data-done='1']"))
            assert "error" not in reply.get_attribute("class"), reply.text
            assert browser.find_element(By.CSS_SELECTOR, ".msg.user").text == \
                "Tell me about Bath."
            assert reply.text.strip(), "the reply is empty"
            assert int(reply.get_attribute("data-chunks")) >= 2, "the reply was not streamed"
            # Regenerate replaces the reply (greedy: with the same text) and keeps the turn.
            first = reply.text
            browser.find_element(By.ID, "regenerate").click()
            wait.until(lambda b: b.find_element(By.ID, "regenerate").is_enabled())
            replies = browser.find_elements(By.CSS_SELECTOR, ".msg.assistant")
            assert len(replies) == 1 and replies[0].text == first
        finally:
            browser.quit()
