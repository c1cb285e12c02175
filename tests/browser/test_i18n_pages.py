"""Every role's main pages in both languages, a phone-sized screen, the printable receipt and the
API docs under the site's CSP, in Chromium. Screenshots go to ``artifacts/browser-i18n/``
(gitignored): ``<language>-<role>-<page>.png``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from engine import db
from engine.citizen import answer_feedback
from engine.context import build_context
from engine.extensions import request_extension
from engine.settings import PROJECT_ROOT
from engine.tickets import create_ticket, fire, get_actor
from tests.conftest import CAMPAIGN

pytestmark = pytest.mark.browser
ARTIFACTS = PROJECT_ROOT / "artifacts" / "browser-i18n"
BROWSER_LOCALE = {"zh_CN": "zh-CN", "en": "en-US"}
# Raw codes that must never reach a reader: categories, units, states, triggers, roles.
CODES = re.compile(
    r"public_security_management|law_enforcement|traffic_management|team_building|"
    r"service_economy|outside_duties|luohe-station|security-brigade|\bfed_back\b|"
    r"\bfeed_back\b|escalate_to_government|\bunit_leader\b"
)
# What each language's pages must say (the navigation), and must not (the other language's).
MARKERS = {"zh_CN": ("收件箱", "Inbox"), "en": ("Inbox", "收件箱")}
PUBLIC_MARKERS = {"zh_CN": ("查询回执", "Check a receipt"), "en": ("Check a receipt", "查询回执")}
ROLE_PAGES = {
    "clerk": ["/desk/intake", "/desk/categorize", "/tickets/{assigned}", "/reports/" + CAMPAIGN],
    "luohe.officer": ["/my/queue", "/unit/queue", "/tickets/{assigned}", "/inbox"],
    "luohe.leader": ["/unit/queue", "/tickets/{assigned}", "/inbox"],
    "supervisor": [
        "/supervisor/board",
        "/supervisor/extensions",
        "/supervisor/reopen-requests",
        "/tickets/{closed}",
        "/reports/" + CAMPAIGN,
        "/inbox",
    ],
    "inspector": ["/inspector/log", "/inspector/sample", "/tickets/{closed}"],
    "admin": ["/supervisor/board", "/workflow", "/imports"],
}


def _seed(server: Any) -> dict[str, str]:
    """An overdue assigned ticket with an extension asked, and a closed one the citizen
    did not accept (a reopen request), through the engine as users would."""
    engine = db.make_engine(server.db_url)
    try:
        with build_context(engine=engine).unit_of_work() as uow:
            s = uow.session
            now = server.clock()
            clerk, sup = get_actor(s, "clerk"), get_actor(s, "supervisor")
            officer = get_actor(s, "luohe.officer")
            out = {}
            for index, key in enumerate(("assigned", "closed", "extended"), start=1):
                c = create_ticket(
                    uow,
                    campaign=CAMPAIGN,
                    text=f"路灯不亮，市场附近夜间多次发生盗窃（第{index}处）。",
                    area="Luohe",
                    actor=clerk,
                    now=now,
                )
                fire(
                    uow,
                    c.number,
                    "categorize",
                    actor=clerk,
                    now=now,
                    data={"category": "public_security_management", "kind": "request"},
                )
                fire(
                    uow,
                    c.number,
                    "assign",
                    actor=sup,
                    now=now,
                    data={"unit": "luohe-station", "officer": "luohe.officer"},
                )
                out[key], out[key + "_secret"] = c.number, c.secret
            fire(
                uow,
                out["closed"],
                "rectify",
                actor=officer,
                now=now,
                data={"measures": "修复路灯，市场夜间加强巡逻。"},
            )
            fire(
                uow,
                out["closed"],
                "feed_back",
                actor=officer,
                now=now,
                data={"method": "visit", "text": "已登门告知整改情况。", "date": "2005-02-28"},
            )
            answer_feedback(
                uow,
                number=out["closed"],
                secret=out["closed_secret"],
                satisfied=False,
                reason="晚上还是很暗。",
                now=now,
            )
            request_extension(
                uow,
                out["extended"],
                actor=officer,
                reason="需要供电部门配合。",
                due_at=now + timedelta(days=18),
                now=now,
            )
            uow.commit()
            return out
    finally:
        engine.dispose()


def _context(browser: Any, language: str, width: int = 1100) -> Any:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, locale=BROWSER_LOCALE[language]
    )
    context.set_default_timeout(10_000)
    # Collects every CSP violation, whatever the page's own policy allows.
    context.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    return context


def _watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


def _sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/signin")
    page.fill("#username", username)
    page.fill("#password", "demo")
    page.click("#signin-form button[type=submit]")
    page.wait_for_load_state()
    assert page.locator(".flash-success").count() == 1, page.content()[:1500]


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _check_page(
    page: Any, language: str, name: str, problems: list[str], markers: dict = MARKERS
) -> None:
    assert page.get_attribute("html", "lang") == BROWSER_LOCALE[language].split("-US")[0]
    text = page.inner_text("body")
    wanted, unwanted = markers[language]
    assert wanted in text and unwanted not in text, f"{name}: not in {language}"
    main = page.inner_text("main")
    leaked = [main[max(0, m.start() - 60) : m.end() + 20] for m in CODES.finditer(main)]
    assert not leaked, f"{name}: codes on the page: {leaked}"
    assert page.evaluate("window.__csp") == [], f"{name}: CSP violations"
    assert not problems, f"{name}: console errors {problems}"
    _shot(page, name)


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_every_roles_main_pages(browser, live_server, language):
    tickets = _seed(live_server)
    live_server.clock.advance(timedelta(days=20))  # the assigned ticket is now overdue
    base = live_server.url
    for username, paths in ROLE_PAGES.items():
        context = _context(browser, language)
        page = context.new_page()
        problems = _watch(page)
        _sign_in(page, base, username)
        for path in paths:
            response = page.goto(base + path.format(**tickets))
            assert response.status == 200, (username, path, response.status)
            slug = re.sub(r"[{}]", "", path.strip("/").replace("/", "-")) or "home"
            _check_page(page, language, f"{language}-{username}-{slug}", problems)
        if username == "supervisor":
            # The board shows the overdue ticket's unit by name and the level as a word.
            board = page.goto(base + "/supervisor/board")
            assert board.status == 200
            assert (
                "罗河派出所" if language == "zh_CN" else "Luohe Police Station"
            ) in page.inner_text("#board-counts")
        context.close()


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_citizen_gives_an_opinion_and_checks_it_on_a_phone(browser, live_server, language):
    base = live_server.url
    context = _context(browser, language, width=360)
    page = context.new_page()
    problems = _watch(page)
    page.goto(base + "/")
    _check_page(page, language, f"{language}-citizen-home-360", problems, PUBLIC_MARKERS)
    page.goto(base + "/submit")
    page.fill("#text", "派出所门口晚上没有路灯。")
    page.select_option("#kind", "suggestion")
    page.fill("#area", "Luohe")
    page.click("#opinion-form button[type=submit]")
    number = page.inner_text("#receipt-number")
    secret = page.inner_text("#receipt-secret")
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{5}(-[2-9A-HJKMNP-Z]{5}){2}", secret), secret
    for selector in ("#receipt-number", "#receipt-secret"):
        box = page.locator(selector).bounding_box()
        line = page.evaluate(
            f"parseFloat(getComputedStyle(document.querySelector('{selector}')).lineHeight)"
        )
        assert box["height"] <= line * 1.2, f"{selector} wraps at 360 px"
        assert box["x"] + box["width"] <= 360
    assert page.locator(".print-button").is_visible()  # print.js ran under the CSP
    _check_page(page, language, f"{language}-citizen-receipt-360", problems, PUBLIC_MARKERS)
    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible()
    assert page.locator("#receipt-secret").is_visible()
    _shot(page, f"{language}-citizen-receipt-print")
    page.emulate_media(media="screen")

    page.goto(base + "/status")
    page.fill("#number", number)
    page.fill("#secret", secret.lower().replace("-", " "))  # typed loosely on a phone
    page.click("#check-form button[type=submit]")
    assert "派出所门口晚上没有路灯。" in page.inner_text("#public-text")
    _check_page(page, language, f"{language}-citizen-status-360", problems, PUBLIC_MARKERS)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_queues_and_board_fit_a_360_px_screen(browser, live_server, language):
    _seed(live_server)
    live_server.clock.advance(timedelta(days=20))
    base = live_server.url
    for username, path in (("supervisor", "/supervisor/board"), ("luohe.officer", "/my/queue")):
        context = _context(browser, language, width=360)
        page = context.new_page()
        problems = _watch(page)
        _sign_in(page, base, username)
        page.goto(base + path)
        rows = page.locator("table.queue tbody tr.overdue")
        assert rows.count() >= 1
        for i in range(rows.count()):
            for cell in ("td.number", "td.due", "td.left", "td.level"):
                box = rows.nth(i).locator(cell).bounding_box()
                assert box is not None and box["width"] > 0, (path, cell)
                assert box["x"] >= 0 and box["x"] + box["width"] <= 360, (path, cell, box)
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right"
            " > 361).map(e => e.tagName + '.' + e.className + '#' + e.id).slice(0, 8)"
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, (path, wide)
        name = f"{language}-{username}-{path.strip('/').replace('/', '-')}-360"
        _check_page(page, language, name, problems)
        context.close()


def test_api_docs_render_under_the_sites_csp(browser, live_server):
    context = _context(browser, "en")
    page = context.new_page()
    problems = _watch(page)
    response = page.goto(live_server.url + "/api/v1/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock", timeout=15_000)
    operations = page.locator(".opblock").count()
    assert operations >= 10, operations
    assert page.get_by_text("/api/v1/tickets").first.is_visible()
    assert page.evaluate("window.__csp") == []
    assert not [p for p in problems if "Content Security Policy" in p], problems
    _shot(page, "api-docs")
    context.close()
