"""Whole journeys through the pages with the test client (the browser tests repeat the main one)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from engine.models import Extension, ReopenRequest
from tests.web.conftest import csrf, post_action, sign_in


def test_citizen_to_feedback_and_reopen(app, client, ticket_version, db_session):
    token = csrf(client, "/submit")
    r = client.post(
        "/submit",
        data={
            "csrf_token": token,
            "text": "Gambling in the back room of the tea house.",
            "area": "Luohe",
            "kind": "criticism",
        },
    )
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    number = re.search(r'id="receipt-number">([^<]+)<', body).group(1)
    secret = re.search(r'id="receipt-secret">([^<]+)<', body).group(1)

    staff = app.test_client()
    sign_in(staff, "clerk")
    v, _ = ticket_version(number)
    page = staff.get(f"/tickets/{number}").get_data(as_text=True)
    assert "Routing suggestions" in page and "Luohe Police Station" in page
    assert "luohe-station<" not in page  # names, not codes
    r = post_action(
        staff,
        number,
        "categorize",
        {"category": "public_security_management", "kind": "criticism"},
        version=v,
    )
    assert r.status_code == 302, r.get_data(as_text=True)

    sign_in(staff, "supervisor")
    v, _ = ticket_version(number)
    r = post_action(
        staff, number, "assign", {"unit": "luohe-station", "officer": "luohe.officer"}, version=v
    )
    assert r.status_code == 302, r.get_data(as_text=True)

    sign_in(staff, "luohe.officer")
    queue = staff.get("/my/queue").get_data(as_text=True)
    assert number in queue and "left" in queue
    v, _ = ticket_version(number)
    assert (
        post_action(
            staff, number, "rectify", {"measures": "Raided; closed."}, version=v
        ).status_code
        == 302
    )
    v, _ = ticket_version(number)
    r = post_action(
        staff,
        number,
        "feed_back",
        {"method": "visit", "text": "We closed the room.", "date": "2005-02-28"},
        version=v,
    )
    assert r.status_code == 302
    assert ticket_version(number)[1] == "fed_back"

    token = csrf(client, "/status")
    status = client.post("/status", data={"csrf_token": token, "number": number, "secret": secret})
    text = status.get_data(as_text=True)
    assert "We closed the room." in text and "Did the feedback satisfy you?" in text
    r = client.post(
        "/status/answer",
        data={
            "csrf_token": token,
            "number": number,
            "secret": secret,
            "satisfied": "no",
            "reason": "It opened again next door.",
        },
    )
    assert r.status_code == 200
    assert "a supervisor is looking at it again" in r.get_data(as_text=True)

    sign_in(staff, "supervisor")
    page = staff.get("/supervisor/reopen-requests").get_data(as_text=True)
    assert "It opened again next door." in page
    req_id = db_session.execute(select(ReopenRequest.id)).scalar_one()
    db_session.rollback()
    r = staff.post(
        f"/supervisor/reopen-requests/{req_id}",
        data={"csrf_token": csrf(staff), "decision": "reopen", "note": "Check again."},
    )
    assert r.status_code == 302
    assert ticket_version(number)[1] == "assigned"


def test_bulk_reassign_fires_once_per_ticket(app, login_as, make_ticket, clock, ticket_version):
    a, _ = make_ticket("assigned")
    b, _ = make_ticket("assigned")
    c, _ = make_ticket("categorized")
    clock.advance(timedelta(days=30))  # everything is overdue now
    client = login_as("supervisor")
    board = client.get("/supervisor/board").get_data(as_text=True)
    assert a in board and b in board and "luohe-station" in board
    before = {n: ticket_version(n) for n in (a, b)}
    r = client.post(
        "/supervisor/bulk-reassign",
        data={
            "csrf_token": csrf(client),
            "numbers": [a, b, "2005-9999"],
            "unit": "traffic-brigade",
            "officer": "traffic.officer",
            "reason": "Traffic matter.",
        },
    )
    assert r.status_code == 302
    page = client.get("/supervisor/board").get_data(as_text=True)
    assert "Reassigned 2" in page and "2005-9999" in page
    for n in (a, b):
        assert ticket_version(n) == (before[n][0] + 1, "assigned")
    assert c in page  # not selected, untouched


def test_extension_asked_and_approved(app, login_as, make_ticket, db_session, ticket_version):
    number, _ = make_ticket("assigned")
    client = login_as("unit_leader")
    r = client.post(
        f"/tickets/{number}/extension",
        data={
            "extension-csrf_token": csrf(client),
            "extension-due_on": "2005-03-16",
            "extension-reason": "Parts on order.",
        },
    )
    assert r.status_code == 302, r.get_data(as_text=True)
    sup = app.test_client()
    sign_in(sup, "supervisor")
    page = sup.get("/supervisor/extensions").get_data(as_text=True)
    assert "Parts on order." in page
    ext_id = db_session.execute(select(Extension.id)).scalar_one()
    db_session.rollback()
    r = sup.post(
        f"/supervisor/extensions/{ext_id}",
        data={"csrf_token": csrf(sup), "decision": "approve", "note": ""},
    )
    assert r.status_code == 302
    assert "approved" in sup.get("/supervisor/extensions").get_data(as_text=True)
    assert "2005-03-16 23:59" in sup.get(f"/tickets/{number}").get_data(as_text=True)
    inbox = client.get("/inbox").get_data(as_text=True)
    assert number in inbox


def test_extension_bad_date_is_explained(login_as, make_ticket, ticket_version):
    number, _ = make_ticket("assigned")
    before = ticket_version(number)
    client = login_as("unit_leader")
    r = client.post(
        f"/tickets/{number}/extension",
        data={
            "extension-csrf_token": csrf(client),
            "extension-due_on": "2005-02-01",
            "extension-reason": "Parts on order.",
        },
    )
    assert r.status_code == 422
    assert "in the past" in r.get_data(as_text=True)
    assert ticket_version(number) == before


def test_inspector_search_verify_export_sample(login_as, make_ticket):
    number, _ = make_ticket("fed_back")
    make_ticket("assigned")
    client = login_as("inspector")
    page = client.get(f"/inspector/log?ticket={number}").get_data(as_text=True)
    assert "Feed back to the citizen" in page and "Record the rectification" in page
    assert ">feed_back<" not in page and ">rectify<" not in page  # titles, not codes
    page = client.get("/inspector/log?actor=supervisor&trigger=assign").get_data(as_text=True)
    assert page.count("<td>Assign</td>") >= 2
    bad = client.get("/inspector/log?since=yesterday")
    assert bad.status_code == 422 and "not a date" in bad.get_data(as_text=True)
    r = client.post("/inspector/verify", data={"csrf_token": csrf(client), "ticket": ""})
    assert "The log is intact" in r.get_data(as_text=True)
    csv_text = client.get(f"/inspector/log.csv?ticket={number}").get_data(as_text=True)
    lines = csv_text.strip().splitlines()
    assert (
        lines[0].startswith("id,ticket,seq") and len(lines) == 6
    )  # header + create, categorize, assign, rectify, feed_back
    sample = client.get("/inspector/sample?size=5&seed=7").get_data(as_text=True)
    assert number in sample


def test_verify_shows_tampering(app, login_as, make_ticket, db_session):
    number, _ = make_ticket("assigned")
    # Tamper below the application: drop the append-only trigger and edit a row.
    from sqlalchemy import text

    conn = db_session.connection()
    triggers = [
        r[0]
        for r in conn.execute(
            text(
                "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='transition_log'"
            )
        )
    ]
    for name in triggers:
        conn.execute(text(f'DROP TRIGGER "{name}"'))
    conn.execute(text("UPDATE transition_log SET actor='nobody' WHERE seq=2"))
    db_session.commit()
    client = login_as("inspector")
    r = client.post("/inspector/verify", data={"csrf_token": csrf(client), "ticket": number})
    assert "problem" in r.get_data(as_text=True) and "found" in r.get_data(as_text=True)


def test_workflow_diagram_highlights_the_state(login_as, make_ticket):
    number, _ = make_ticket("assigned")
    client = login_as("officer")
    svg = client.get(f"/tickets/{number}/diagram.svg")
    assert svg.mimetype == "image/svg+xml"
    assert re.search(r'<g class="current" data-state="assigned">', svg.get_data(as_text=True))
    page = client.get("/workflow").get_data(as_text=True)
    assert "<svg" in page and "Escalate to government" in page


def test_clerk_intake_shows_the_receipt_once(login_as, db_session):
    client = login_as("clerk")
    r = client.post(
        "/desk/intake",
        data={
            "csrf_token": csrf(client),
            "text": "Praise for the traffic police at the school gate.",
            "source": "visit",
            "kind": "praise",
            "area": "Xiaji",
        },
    )
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="receipt-secret"' in body
    assert "secret" not in (r.headers.get("Set-Cookie") or "")
    number = re.search(r'id="receipt-number">([^<]+)<', body).group(1)
    assert number in client.get("/desk/categorize").get_data(as_text=True)


def test_inbox_lists_and_marks_read(login_as, db_session):
    from engine.notifications import notify
    from engine.tickets import get_actor
    from tests.conftest import CAMPAIGN_NOW

    officer = get_actor(db_session, "luohe.officer")
    ids = notify(
        db_session,
        user_ids=[officer.id],
        kind="reminder",
        subject="2005-0001 is overdue",
        now=CAMPAIGN_NOW,
    )
    notify(
        db_session, user_ids=[officer.id], kind="warning", subject="due tomorrow", now=CAMPAIGN_NOW
    )
    db_session.commit()
    client = login_as("officer")
    page = client.get("/inbox").get_data(as_text=True)
    assert "2005-0001 is overdue" in page and "(2 unread)" in page
    r = client.post("/inbox/read", data={"csrf_token": csrf(client), "ids": [str(ids[0])]})
    assert r.status_code == 302
    assert "(1 unread)" in client.get("/inbox").get_data(as_text=True)
    r = client.post("/inbox/read", data={"csrf_token": csrf(client), "ids": ["999999"]})
    assert "not in your inbox" in client.get("/inbox").get_data(as_text=True)
    client.post("/inbox/read", data={"csrf_token": csrf(client)})
    assert "(0 unread)" in client.get("/inbox").get_data(as_text=True)


def test_find_a_ticket_by_number(login_as, make_ticket):
    number, _ = make_ticket("assigned")
    client = login_as("supervisor")
    r = client.get(f"/tickets/find?number={number}")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/tickets/{number}")
    r = client.get("/tickets/find?number=2005-9999", follow_redirects=True)
    assert "No ticket numbered" in r.get_data(as_text=True)


def test_supervisor_sets_a_new_deadline_on_an_overdue_ticket(
    app, clock, login_as, make_ticket, ticket_version
):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    number, _ = make_ticket("assigned")  # due 2005-03-15
    officer = login_as("officer")
    assert "action-deadline" not in officer.get(f"/tickets/{number}").get_data(as_text=True)
    clock.advance(timedelta(days=18))  # 2005-03-18: overdue
    officer = login_as("officer")
    refused = officer.post(
        f"/tickets/{number}/deadline",
        data={"deadline-csrf_token": csrf(officer), "deadline-due_on": "2005-03-25"},
    )
    assert refused.status_code == 403
    before = ticket_version(number)
    sup = login_as("supervisor")
    page = sup.get(f"/tickets/{number}").get_data(as_text=True)
    assert 'id="action-deadline"' in page
    empty = sup.post(
        f"/tickets/{number}/deadline",
        data={"deadline-csrf_token": csrf(sup), "deadline-due_on": "2005-03-25"},
    )
    assert empty.status_code == 422 and ticket_version(number) == before
    done = sup.post(
        f"/tickets/{number}/deadline",
        data={
            "deadline-csrf_token": csrf(sup),
            "deadline-due_on": "2005-03-25",
            "deadline-reason": "Parts ordered from the city.",
        },
    )
    assert done.status_code == 302, done.get_data(as_text=True)
    assert ticket_version(number)[0] == before[0] + 1
    assert "2005-03-25 23:59" in sup.get(f"/tickets/{number}").get_data(as_text=True)
