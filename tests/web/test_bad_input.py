"""Bad input on the pages: clear messages, nothing half-written."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from engine.models import SignInFailure, Ticket, TransitionLog
from tests.web.conftest import build_app, csrf, post_action, sign_in


def _count(db_session, model) -> int:
    n = db_session.execute(select(func.count()).select_from(model)).scalar_one()
    db_session.rollback()
    return n


def test_public_submit_empty_text_is_refused(client, db_session):
    token = csrf(client, "/submit")
    r = client.post("/submit", data={"csrf_token": token, "text": "   "})
    assert r.status_code == 422
    assert "Write what you want to tell us." in r.get_data(as_text=True)
    assert _count(db_session, Ticket) == 0


def test_public_submit_oversized_fields_are_refused(client, db_session):
    token = csrf(client, "/submit")
    r = client.post("/submit", data={"csrf_token": token, "text": "x" * 10_001, "area": "y" * 101})
    body = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "At most 10000 characters." in body
    assert "Field cannot be longer than 100 characters." in body
    assert _count(db_session, Ticket) == 0


def test_forged_csrf_token_changes_nothing(client, db_session):
    csrf(client, "/submit")
    r = client.post("/submit", data={"csrf_token": "forged", "text": "hello"})
    assert r.status_code == 400
    assert "security token" in r.get_data(as_text=True)
    r = client.post("/submit", data={"text": "no token at all"})
    assert r.status_code == 400
    assert _count(db_session, Ticket) == 0


def test_forged_csrf_on_a_ticket_action(login_as, make_ticket, ticket_version):
    number, _ = make_ticket("assigned")
    before = ticket_version(number)
    client = login_as("officer")
    r = client.post(
        f"/tickets/{number}/fire/rectify",
        data={"rectify-csrf_token": "forged", "rectify-measures": "done"},
    )
    assert r.status_code == 400
    assert ticket_version(number) == before


def test_receipt_wrong_secret_and_unknown_number_look_the_same(client, make_ticket):
    number, secret = make_ticket("received")
    token = csrf(client, "/status")
    wrong = client.post("/status", data={"csrf_token": token, "number": number, "secret": "nope"})
    unknown = client.post(
        "/status", data={"csrf_token": token, "number": "2005-9999", "secret": "nope"}
    )
    assert wrong.status_code == unknown.status_code == 404
    strip = lambda html: re.sub(r'value="[^"]*"', "", html)  # noqa: E731 - the form echoes input
    assert strip(wrong.get_data(as_text=True)) == strip(unknown.get_data(as_text=True))
    right = client.post("/status", data={"csrf_token": token, "number": number, "secret": secret})
    assert right.status_code == 200
    assert "Received" in right.get_data(as_text=True)


def test_empty_required_action_field(login_as, make_ticket, ticket_version):
    number, _ = make_ticket("assigned")
    version, _ = ticket_version(number)
    client = login_as("officer")
    r = post_action(client, number, "rectify", {"measures": ""}, version=version)
    assert r.status_code == 422
    assert "Rectification measures taken is required." in r.get_data(as_text=True)
    assert ticket_version(number) == (version, "assigned")


def test_oversized_action_field(login_as, make_ticket, ticket_version):
    number, _ = make_ticket("assigned")
    version, _ = ticket_version(number)
    client = login_as("officer")
    r = post_action(client, number, "rectify", {"measures": "m" * 4001}, version=version)
    assert r.status_code == 422
    assert "At most 4000 characters." in r.get_data(as_text=True)
    assert ticket_version(number) == (version, "assigned")


def test_stale_form_tells_the_user_and_shows_the_current_state(
    app, login_as, make_ticket, ticket_version, db_session
):
    number, _ = make_ticket("assigned")
    seen, _ = ticket_version(number)
    # Meanwhile the unit leader rectifies it from another browser.
    other = app.test_client()
    sign_in(other, "luohe.leader")
    r = post_action(other, number, "rectify", {"measures": "Leader fixed it."}, version=seen)
    assert r.status_code == 302
    logs = _count(db_session, TransitionLog)
    client = login_as("officer")
    r = post_action(client, number, "rectify", {"measures": "Officer too."}, version=seen)
    body = r.get_data(as_text=True)
    assert r.status_code == 409
    assert "moved on while you had the page open" in body
    assert "rectified" in body  # the current state is on the page
    assert ticket_version(number) == (seen + 1, "rectified")
    assert _count(db_session, TransitionLog) == logs


def test_stale_version_same_state(app, login_as, make_ticket, ticket_version):
    number, _ = make_ticket("assigned")
    seen, _ = ticket_version(number)
    sup = app.test_client()
    sign_in(sup, "supervisor")
    data = {"unit": "luohe-station", "officer": "luohe.leader", "reason": "leave"}
    assert post_action(sup, number, "reassign", data, version=seen).status_code == 302
    client = login_as("unit_leader")
    data = {"unit": "luohe-station", "officer": "luohe.officer", "reason": "back"}
    r = post_action(client, number, "reassign", data, version=seen)
    assert r.status_code == 409
    assert "moved on" in r.get_data(as_text=True)
    assert ticket_version(number) == (seen + 1, "assigned")


def test_xss_in_ticket_text_is_shown_as_text(login_as, make_ticket):
    number, _ = make_ticket("assigned", text="<script>alert('x')</script> & <b>bold</b>")
    body = login_as("officer").get(f"/tickets/{number}").get_data(as_text=True)
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;" in body


def test_sign_in_slowdown_holds_across_processes(app, clock, db_session):
    first = app.test_client()
    for _ in range(5):
        r = sign_in(first, "supervisor", "wrong")
        assert r.status_code == 401
        assert "Wrong username or password." in r.get_data(as_text=True)
    # A second app on the same database (another process) sees the failures.
    second_app = build_app(app.config["DB_URL"], clock)
    second = second_app.test_client()
    r = sign_in(second, "supervisor", "demo")
    assert r.status_code == 429
    assert "Too many failed sign-ins" in r.get_data(as_text=True)
    from datetime import timedelta

    clock.advance(timedelta(seconds=3))
    r = sign_in(second, "supervisor", "demo")
    assert r.status_code == 302
    assert _count(db_session, SignInFailure) == 0
    second_app.extensions["rectiflow.engine"].dispose()


def test_unknown_user_gets_the_same_message(client):
    r = sign_in(client, "nobody", "demo")
    assert r.status_code == 401
    assert "Wrong username or password." in r.get_data(as_text=True)


def test_citizen_account_cannot_sign_in_to_staff_pages(client):
    assert sign_in(client, "citizen", "demo").status_code == 401


def test_session_cookie_flags_and_sign_out(client):
    r = sign_in(client, "clerk")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/desk/intake").status_code == 200
    assert client.get("/signout").status_code == 405  # a link cannot sign you out
    r = client.post("/signout", data={"csrf_token": csrf(client)})
    assert r.status_code == 302
    assert client.get("/desk/intake").status_code == 302


def test_sign_in_never_redirects_off_site(client):
    token = csrf(client)
    r = client.post(
        "/signin",
        data={
            "username": "clerk",
            "password": "demo",
            "csrf_token": token,
            "next": "//evil.example/x",
        },
    )
    assert r.status_code == 302
    assert "evil" not in r.headers["Location"]


def test_unsatisfied_answer_needs_a_reason(client, make_ticket, db_session):
    number, secret = make_ticket("fed_back")
    token = csrf(client, "/status")
    r = client.post(
        "/status/answer",
        data={"csrf_token": token, "number": number, "secret": secret, "satisfied": "no"},
    )
    assert r.status_code == 422
    assert "say what is still wrong" in r.get_data(as_text=True)
    from engine.models import ReopenRequest

    assert _count(db_session, ReopenRequest) == 0


def test_stale_escalate_form(app, login_as, make_ticket, ticket_version):
    number, _ = make_ticket("assigned")
    seen, _ = ticket_version(number)
    other = app.test_client()
    sign_in(other, "luohe.officer")
    post_action(other, number, "rectify", {"measures": "Done."}, version=seen)
    client = login_as("supervisor")
    r = client.post(
        f"/tickets/{number}/escalate",
        data={
            "escalate-csrf_token": csrf(client),
            "escalate-reason": "Slow.",
            "escalate-expected_version": str(seen),
        },
    )
    assert r.status_code == 409 and "moved on" in r.get_data(as_text=True)
    assert ticket_version(number) == (seen + 1, "rectified")
