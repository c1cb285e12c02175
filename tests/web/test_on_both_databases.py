"""The pages that write, once on SQLite and once on PostgreSQL (the other web tests use SQLite)."""

from __future__ import annotations

from datetime import timedelta

from engine.clock import FixedClock
from tests.conftest import CAMPAIGN_NOW
from tests.web.conftest import build_app, csrf, post_action, sign_in


def test_actions_bulk_reassign_and_stale_forms(db_url):
    clock = FixedClock(CAMPAIGN_NOW)
    app = build_app(db_url, clock)
    try:
        clerk = app.test_client()
        sign_in(clerk, "clerk")
        numbers = []
        for text in ("Thefts at the market.", "Gambling at the tea house."):
            r = clerk.post(
                "/desk/intake",
                data={"csrf_token": csrf(clerk), "text": text, "source": "visit", "area": "Luohe"},
            )
            assert r.status_code == 200
            numbers.append(r.get_data(as_text=True).split('id="receipt-number">')[1][:9])
        for n in numbers:
            r = post_action(
                clerk,
                n,
                "categorize",
                {"category": "law_enforcement", "kind": "criticism"},
                version=1,
            )
            assert r.status_code == 302, r.get_data(as_text=True)[:2000]
        stale = post_action(
            clerk,
            numbers[0],
            "categorize",
            {"category": "law_enforcement", "kind": "criticism"},
            version=1,
        )
        assert stale.status_code == 409 and "moved on" in stale.get_data(as_text=True)

        clock.advance(timedelta(days=30))
        sup = app.test_client()
        sign_in(sup, "supervisor")
        board = sup.get("/supervisor/board").get_data(as_text=True)
        assert all(n in board for n in numbers)
        r = sup.post(
            "/supervisor/bulk-reassign",
            data={
                "csrf_token": csrf(sup),
                "numbers": numbers,
                "unit": "luohe-station",
                "officer": "luohe.officer",
                "reason": "Station matter.",
            },
        )
        assert r.status_code == 302
        assert f"Reassigned 2: {numbers[0]}, {numbers[1]}" in sup.get("/supervisor/board").get_data(
            as_text=True
        )
        officer = app.test_client()
        sign_in(officer, "luohe.officer")
        queue = officer.get("/my/queue").get_data(as_text=True)
        assert all(n in queue for n in numbers) and "overdue" in queue
        log = sup.get(f"/inspector/log?ticket={numbers[0]}").get_data(as_text=True)
        assert "<td>Assign</td>" in log
    finally:
        app.extensions["rectiflow.engine"].dispose()
