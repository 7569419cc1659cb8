"""The web page in a real headless browser (Debian's chromium, driven through chromedriver by
Selenium): a pipeline created through the API appears, its lag and rates move, and pause and
resume work from its page."""
from __future__ import annotations

import re
import shutil

import pytest

from tests.serve.helpers import Service, datagen_toml, request, wait_for

webdriver = pytest.importorskip("selenium.webdriver")

pytestmark = [pytest.mark.serve, pytest.mark.e2e]

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium "
                    "chromium-driver)")
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=DriverService(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _number(text: str) -> float | None:
    text = text.replace(",", "").strip()
    return float(text) if re.fullmatch(r"[\d.]+", text) else None


def test_page_shows_pipelines_live_and_pauses_and_resumes(tmp_path, browser):
    from selenium.webdriver.common.by import By

    svc = Service(str(tmp_path / "service"), str(tmp_path / "service.log"))
    try:
        browser.get(svc.url + "/")
        assert browser.find_element(By.ID, "empty")
        status, body = request("POST", f"{svc.url}/pipelines", datagen_toml("web", rps=3000))
        assert status == 201, body
        # the page notices the new pipeline by itself (it polls the API every second)
        wait_for(lambda: browser.find_elements(By.ID, "row-web"), 20, "the pipeline's row")
        cell = lambda field: browser.find_element(By.ID, f"{field}-web").text  # noqa: E731
        wait_for(lambda: cell("state") == "RUNNING", 20, "RUNNING on the page")
        wait_for(lambda: _number(cell("lag")) is not None, 20, "a lag")
        first = wait_for(lambda: _number(cell("out")), 20, "rows out")
        wait_for(lambda: (_number(cell("out")) or 0) > first, 20, "rows out to grow")
        wait_for(lambda: (_number(cell("rate")) or 0) > 0, 20, "a rate")
        wait_for(lambda: cell("checkpoint").startswith("#"), 20, "a checkpoint")

        browser.find_element(By.LINK_TEXT, "web").click()
        wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#subtasks tr")) == 2, 20,
                 "two subtasks on the detail page")
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#checkpoints tr"), 20,
                 "the checkpoint history")
        browser.find_element(By.ID, "pause").click()
        wait_for(lambda: cell("state") == "PAUSED", 30, "PAUSED on the page")
        assert request("GET", f"{svc.url}/pipelines/web/status")[1]["state"] == "PAUSED"
        paused = _number(cell("out"))
        browser.find_element(By.ID, "resume").click()
        wait_for(lambda: cell("state") == "RUNNING", 30, "RUNNING again on the page")
        wait_for(lambda: (_number(cell("out")) or 0) > 0 and cell("out") != "-" and
                 request("GET", f"{svc.url}/pipelines/web/status")[1]["checkpoints"][
                     "restored_from"] is not None, 30, "the resumed run")
        assert paused is not None
        assert browser.find_element(By.ID, "message").text == ""
    finally:
        svc.stop()
