"""The admin in a real headless Chromium against a live server, as an auditor would use it.

Needs Debian's `chromium` and `chromium-driver` (scripts/test installs them). There is no skip:
without a browser this test fails, because the admin is only proven when a browser renders it.
Screenshots of each step are written to the test's temporary directory (printed on failure;
`pytest --basetemp=DIR` keeps them where you want to look).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.audit.conftest import AUDITOR_PASSWORD, AUDITOR_USERNAME
from testutils.admin_rows import remediation_chain

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Headless, no sandbox (we run as root in a container), and nothing that phones home.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1600",
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's chromium and chromium-driver (scripts/test)"
    assert CHROMEDRIVER.exists(), f"{CHROMEDRIVER} is missing: install Debian's chromium-driver (scripts/test)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for(browser: WebDriver, css: str) -> None:
    WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


def _shot(browser: WebDriver, directory: Path, name: str) -> None:
    directory.mkdir(exist_ok=True)
    browser.save_screenshot(str(directory / f"{name}.png"))


@pytest.mark.django_db(transaction=True)
def test_an_auditor_follows_a_remediation_through_the_admin_and_can_change_nothing(live_server, browser, tmp_path):
    call_command(
        "create_auditor",
        AUDITOR_USERNAME,
        "--password-stdin",
        stdin=io.StringIO(AUDITOR_PASSWORD + "\n"),
        stdout=io.StringIO(),
    )
    chain = remediation_chain()
    remediation_chain()  # another incident, so there is something similar to find
    shots = tmp_path / "screenshots"
    print(f"screenshots in {shots}")  # shown with -s, or on failure

    # Log in.
    browser.get(live_server.url + reverse("admin:index"))
    _wait_for(browser, "#id_username")
    browser.find_element(By.ID, "id_username").send_keys(AUDITOR_USERNAME)
    browser.find_element(By.ID, "id_password").send_keys(AUDITOR_PASSWORD + Keys.ENTER)
    _wait_for(browser, "#content-main")
    assert "Kubernaut audit trail" in browser.title
    index = browser.find_element(By.ID, "content-main").text
    assert "Remediation audits" in index
    assert "Users" not in index  # auditors see the audit trail only
    assert not browser.find_elements(By.CSS_SELECTOR, "a.addlink, a.changelink")
    _shot(browser, shots, "1-index")

    # Find the remediation by its correlation id.
    browser.get(live_server.url + reverse("admin:audit_remediationaudit_changelist"))
    _wait_for(browser, "#searchbar")
    browser.find_element(By.ID, "searchbar").send_keys(chain["correlation_id"] + Keys.ENTER)
    _wait_for(browser, "#result_list")
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 1
    assert chain["remediation"].name in rows[0].text
    assert not browser.find_elements(By.CSS_SELECTOR, "a.addlink, select[name=action], .action-checkbox")
    _shot(browser, shots, "2-search")

    # Follow it through its AI analysis, workflow and executions on the timeline.
    rows[0].find_element(By.LINK_TEXT, chain["correlation_id"]).click()
    _wait_for(browser, "#timeline")
    timeline = browser.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")
    kinds = [row.find_elements(By.TAG_NAME, "td")[2].text for row in timeline]
    assert kinds == [
        "Remediation request",
        "AI analysis",
        "Workflow execution",
        "Kubernetes execution",
        "Kubernetes execution",
    ]
    assert chain["workflow"].name in browser.find_element(By.ID, "timeline").text
    _shot(browser, shots, "3-timeline")

    # Open the remediation: its similar incidents, and no way to change it.
    timeline[0].find_element(By.LINK_TEXT, chain["remediation"].name).click()
    _wait_for(browser, ".audit-similar")
    assert "View remediation audit" in browser.find_element(By.ID, "content").text
    similar = browser.find_elements(By.CSS_SELECTOR, ".audit-similar tbody tr")
    assert similar
    distances = [float(row.find_element(By.CSS_SELECTOR, ".audit-distance").text) for row in similar]
    assert distances == sorted(distances)
    page = browser.find_element(By.ID, "content").text
    assert re.search(r"all-MiniLM-L6-v2 embeddings \(384 dimensions\)", page)
    assert "app.kubernetes.io/name" in page
    assert not browser.find_elements(By.CSS_SELECTOR, "input[type=submit], a.deletelink, a.addlink")
    _shot(browser, shots, "4-record")
    browser.execute_script("document.querySelector('.audit-similar').scrollIntoView()")
    _shot(browser, shots, "5-similar-incidents")

    # The change and delete URLs themselves refuse.
    delete_url = reverse("admin:audit_remediationaudit_delete", args=[chain["remediation"].id])
    browser.get(live_server.url + delete_url)
    assert "Not allowed" in browser.page_source or "403" in browser.page_source
