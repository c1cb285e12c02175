"""The main journeys in a real browser (Chromium), with screenshots of the pages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import db
from engine.context import build_context
from engine.tickets import create_ticket, fire, get_actor
from tests.browser.conftest import shot, sign_in
from tests.conftest import CAMPAIGN

pytestmark = pytest.mark.browser


def _ticket(server, text="Thefts at the bus station at night.", state="assigned") -> str:
    engine = db.make_engine(server.db_url)
    try:
        with build_context(engine=engine).unit_of_work() as uow:
            s = uow.session
            now = server.clock()
            c = create_ticket(
                uow,
                campaign=CAMPAIGN,
                text=text,
                area="Luohe",
                actor=get_actor(s, "clerk"),
                now=now,
            )
            if state in ("categorized", "assigned"):
                fire(
                    uow,
                    c.number,
                    "categorize",
                    actor=get_actor(s, "clerk"),
                    data={"category": "law_enforcement", "kind": "criticism"},
                    now=now,
                )
            if state == "assigned":
                fire(
                    uow,
                    c.number,
                    "assign",
                    actor=get_actor(s, "supervisor"),
                    data={"unit": "luohe-station", "officer": "luohe.officer"},
                    now=now,
                )
            uow.commit()
            return c.number
    finally:
        engine.dispose()


def test_citizen_to_satisfied_feedback(page, live_server):
    base = live_server.url
    page.goto(base + "/")
    shot(page, "01-home")
    page.click("text=Give an opinion >> nth=0")
    page.fill("#text", "The lamps by the Luohe market are out; two bikes were stolen.")
    page.select_option("#kind", "criticism")
    page.fill("#area", "Luohe")
    page.fill("#citizen_contact", "138 0000 0000")
    shot(page, "02-submit")
    page.click("#opinion-form button[type=submit]")
    number = page.inner_text("#receipt-number")
    secret = page.inner_text("#receipt-secret")
    shot(page, "03-receipt")

    sign_in(page, base, "clerk")
    page.goto(f"{base}/desk/categorize")
    assert number in page.content()
    shot(page, "04-categorize-queue")
    page.click(f"text={number}")
    page.select_option("#categorize-category", "public_security_management")
    page.select_option("#categorize-kind", "criticism")
    shot(page, "05-ticket-categorize")
    page.click("#action-categorize button[type=submit]")
    assert page.get_attribute("#state", "data-state") == "categorized"

    sign_in(page, base, "supervisor")
    page.goto(f"{base}/tickets/{number}")
    page.select_option("#assign-unit", "luohe-station")
    page.select_option("#assign-officer", "luohe.officer")
    page.click("#action-assign button[type=submit]")
    assert page.get_attribute("#state", "data-state") == "assigned"

    sign_in(page, base, "luohe.officer")
    page.goto(f"{base}/my/queue")
    shot(page, "06-my-queue")
    page.click(f"text={number}")
    page.fill("#rectify-measures", "Lamps repaired; night patrols at the market.")
    page.click("#action-rectify button[type=submit]")
    assert page.get_attribute("#state", "data-state") == "rectified"
    page.select_option("#feed_back-method", "visit")
    page.fill("#feed_back-text", "We repaired the lamps and patrol the market at night.")
    shot(page, "07-ticket-feedback")
    page.click("#action-feed_back button[type=submit]")
    assert page.get_attribute("#state", "data-state") == "fed_back"
    shot(page, "08-ticket-closed")

    page.context.clear_cookies()
    page.goto(f"{base}/status")
    page.fill("#number", number)
    page.fill("#secret", secret)
    page.click("#check-form button[type=submit]")
    assert "We repaired the lamps" in page.inner_text("#feedback")
    shot(page, "09-status")
    page.check("#satisfied-0")
    page.click("#answer-form button[type=submit]")
    assert page.inner_text("#public-satisfied").startswith("satisfied")


def test_supervisor_escalates_an_overdue_ticket(page, live_server):
    number = _ticket(live_server)
    live_server.clock.advance(timedelta(days=20))
    base = live_server.url
    sign_in(page, base, "supervisor")
    page.goto(f"{base}/supervisor/board")
    assert number in page.inner_text("#board-filters ~ form")
    assert "overdue" in page.inner_text("tr.overdue")
    shot(page, "10-overdue-board")
    page.click(f"text={number}")
    page.fill("#escalate-reason", "Three weeks without progress.")
    page.click("#action-escalate button[type=submit]")
    assert "escalated to level" in page.content()
    assert "Three weeks without progress." in page.inner_text("#history")
    shot(page, "11-escalated")


def test_inspector_verifies_the_log(page, live_server):
    _ticket(live_server)
    base = live_server.url
    sign_in(page, base, "inspector")
    page.goto(f"{base}/inspector/log")
    assert "Assign" in page.inner_text("#log-rows")
    shot(page, "12-log")
    page.click("#verify-form button[type=submit]")
    assert "The log is intact" in page.inner_text("#verify-result")
    shot(page, "13-verified")


def test_officer_of_another_unit_is_refused(page, live_server):
    number = _ticket(live_server)
    base = live_server.url
    sign_in(page, base, "legal.officer")
    response = page.goto(f"{base}/tickets/{number}")
    assert response.status == 403
    assert "belongs to Luohe Police Station" in page.content()
    shot(page, "14-refused")


def test_script_in_ticket_text_is_shown_as_text(page, live_server):
    number = _ticket(live_server, text="<script>window.__pwned = 1</script><b>bold?</b>")
    base = live_server.url
    sign_in(page, base, "luohe.officer")
    page.goto(f"{base}/tickets/{number}")
    assert page.inner_text("#ticket-text") == "<script>window.__pwned = 1</script><b>bold?</b>"
    assert page.evaluate("typeof window.__pwned") == "undefined"
    page.goto(f"{base}/workflow")
    shot(page, "15-workflow")


def test_pages_fit_a_phone_and_work_by_keyboard(browser, live_server):
    number = _ticket(live_server)
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    try:
        base = live_server.url
        page.goto(f"{base}/submit")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        overflow = "document.documentElement.scrollWidth - window.innerWidth"
        assert page.evaluate(overflow) <= 0
        shot(page, "16-phone-submit")
        sign_in(page, base, "luohe.officer")
        page.goto(f"{base}/tickets/{number}")
        assert page.evaluate(overflow) <= 0
        shot(page, "17-phone-ticket")
    finally:
        context.close()
