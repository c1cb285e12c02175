"""Browser fixtures: Debian's Chromium driven by Playwright, against a live server in a thread.

Playwright's own browser download does not work here, so the tests use
``/usr/bin/chromium``. The test command never installs system packages: without
Chromium the browser tests are skipped with a message saying how to get it
(``.ci/run`` installs it), and under ``CI=true`` they fail instead. Each test gets a server
on 127.0.0.1 at a random port with its own fresh SQLite database and a fixed,
movable clock; the browser is launched once per session.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from engine.clock import FixedClock
from tests.conftest import CAMPAIGN_NOW
from tests.web.conftest import build_app

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
SCREENSHOTS = Path(__file__).parent / "screenshots"


INSTALL_HINT = (
    "Chromium is not installed at /usr/bin/chromium; install it with "
    "`sudo apt-get install -y chromium` (Debian/Ubuntu), or run `.ci/run`, which does"
)


def _ensure_chromium() -> str:
    """The Chromium binary; the tests skip without it (fail under CI=true), never install it."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true: {INSTALL_HINT}")
    pytest.skip(INSTALL_HINT)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = _ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@dataclass
class LiveServer:
    url: str
    app: Any
    clock: FixedClock
    db_url: str


@pytest.fixture
def live_server(sqlite_template: Path, tmp_path: Path) -> Iterator[LiveServer]:
    path = tmp_path / "browser.db"
    shutil.copyfile(sqlite_template, path)
    db_url = f"sqlite:///{path}"
    clock = FixedClock(CAMPAIGN_NOW)
    app = build_app(db_url, clock)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app, clock, db_url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        app.extensions["rectiflow.engine"].dispose()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, base: str, username: str, password: str = "demo") -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/signin")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#signin-form button[type=submit]")
    page.wait_for_load_state()
    assert "Signed in as" in page.content(), page.content()[:2000]
