"""The console in a real browser: Debian's Chromium, headless, driven by Playwright,
against the system started as `make run` starts it, in a folder and on a vhost of its
own. Screenshots
of every page walked are kept under tests/artifacts/screenshots/ (git-ignored)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from bersinar.clock import write_clock
from harness import infra
from harness.system import System
from tests.e2e.conftest import wait_for_partner_model
from tests.support.console import signed_in_session  # noqa: F401  (the browser tests' own)
from tests.support.fixtures import TEST_HMAC_KEY
from tests.support.logs import check_log_folder

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parents[1] / "artifacts" / "screenshots"
PASSWORD = "sandi-uji-konsol-1"
# the month the tests report on: referrals are placed in it, reported after it ends
PERIOD = "2027-03"


def staff_pages(referral_id: str) -> list[str]:
    """An officer's pages: every menu entry, a partner's and a report's page, and the
    page of one referral."""
    return [
        "/console/monev",
        "/console/rujukan",
        "/console/rujukan/baru",
        f"/console/rujukan/{referral_id}",
        "/console/mitra",
        "/console/mitra/yayasan-kipas",
        f"/console/laporan?periode={PERIOD}",
        f"/console/laporan/yayasan-kipas/{PERIOD}",
        "/console/notifikasi",
        "/console/sandi",
    ]


def set_clock(system, moment: str) -> None:
    """``moment`` as ISO local time in WIB, e.g. ``2027-03-15T10:00``."""
    local = datetime.fromisoformat(moment + "+07:00")
    write_clock(system.clock_file, local.astimezone(UTC))


@pytest.fixture(scope="package")
def console_vhost(test_run_id):
    with infra.own_vhost(f"bersinar-browser-{test_run_id}") as amqp_uri:
        yield amqp_uri


@pytest.fixture(scope="package")
def system(console_vhost, encryption_keys, var_dirs):
    var = var_dirs("browser")
    clock = var / "clock"
    system = System(
        console_vhost,
        encryption_keys,
        TEST_HMAC_KEY,
        var,
        extra_env={
            "CLOCK_FILE": str(clock),
            "REPORT_START_PERIOD": PERIOD,
            "REPORT_CHECK_INTERVAL": "0.5",
            "CONSOLE_LOCK_AFTER": "3",
        },
    )
    system.clock_file = clock
    set_clock(system, f"{PERIOD}-15T10:00")
    try:
        system.start_all()
        # the first admin, made by `bersinar setup` as on a fresh install
        admin_file = (var / "console-admin.txt").read_text()
        system.console_admin_password = re.search(r"password=(\S+)", admin_file).group(1)
        wait_for_partner_model(system)
        yield system
    finally:
        system.terminate_all()
    # what the console's system wrote, as every run's: JSON lines only (docs/runbook.md)
    assert check_log_folder(var / "log")["gateway.log"] > 0


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run deploy/browser/install-chromium.sh")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Person:
    """One person's browser (its own cookies), with the addresses it visited."""

    def __init__(self, browser, system, name: str, viewport=None):
        self.context = browser.new_context(
            locale="id-ID", viewport=viewport or {"width": 1280, "height": 900}
        )
        self.page = self.context.new_page()
        self.page.set_default_timeout(15000)
        self.system = system
        self.name = name
        self.visited: list[str] = []
        self.page.on("request", lambda request: self.visited.append(request.url))

    def go(self, path: str):
        return self.page.goto(self.system.base_url + path)

    def shot(self, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def submit(self, target):
        """Click a button (a selector or a locator) and wait for the page it leads to."""
        with self.page.expect_navigation():
            if isinstance(target, str):
                self.page.click(target)
            else:
                target.click()

    def sign_in(self, username: str, password: str):
        self.go("/console/masuk")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.submit("button[type=submit]")

    def close(self):
        self.context.close()


def status_of(system, referral_id: str) -> str:
    """A referral's status as the API answers it."""
    return system.get(f"/api/v1/referrals/{referral_id}").json()["status"]


def csrf_of(session: requests.Session, url: str) -> str:
    """The CSRF token of a signed-in session, read from a page's form."""
    page = session.get(url, timeout=10)
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
