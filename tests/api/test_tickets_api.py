"""/api/v1/tickets: create, read, list with filters, transitions, history, and each error."""

from __future__ import annotations

import pytest

from tests.api.conftest import fire_as

API = "/api/v1"


def assert_error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.json
    body = response.json
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


def test_no_token_is_401(client):
    response = client.get(f"{API}/tickets")
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_bad_and_revoked_tokens_are_401(app, client, token):
    assert_error(
        client.get(f"{API}/tickets", headers={"Authorization": "Bearer nope"}), 401, "unauthorized"
    )
    value = token("clerk")
    from engine.tokens import list_tokens, revoke_token
    from tests.conftest import CAMPAIGN_NOW

    with app.extensions["rectiflow.sessions"]() as session:
        revoke_token(session, list_tokens(session, "clerk")[0].id, now=CAMPAIGN_NOW)
        session.commit()
    error = assert_error(
        client.get(f"{API}/tickets", headers={"Authorization": f"Bearer {value}"}),
        401,
        "unauthorized",
    )
    assert "revoked" in error["message"]


def test_create_read_and_list(client, auth, new_ticket):
    created = new_ticket(
        kind="criticism",
        citizen={"name": "Wang Wei", "contact": "138 0000 0000"},
        area="Luohe",
        received_at="2005-02-27T09:00:00+08:00",
    )
    number = created["number"]
    assert created["state"] == "received"
    assert created["version"] == 1
    assert created["receipt"]
    assert created["citizen"] == {"name": "Wang Wei", "contact": "138 0000 0000"}
    assert created["received_at"].startswith("2005-02-27T01:00:00")
    assert [t["name"] for t in created["allowed_triggers"]] == ["categorize"]

    clerk = auth("clerk")
    got = client.get(f"{API}/tickets/{number}", headers=clerk).json
    for key in (
        "number",
        "state",
        "version",
        "kind",
        "category",
        "unit",
        "assignee",
        "due_at",
        "due_rule",
        "escalation_level",
        "allowed_triggers",
    ):
        assert key in got
    assert "receipt" not in got

    page = client.get(f"{API}/tickets?campaign=consultation-2005&per_page=5", headers=clerk).json
    assert page["total"] >= 1 and page["page"] == 1 and page["per_page"] == 5
    assert page["items"][0]["number"] == number
    found = client.get(f"{API}/tickets?q=school&kind=criticism", headers=clerk).json
    assert [t["number"] for t in found["items"]] == [number]
    assert client.get(f"{API}/tickets?q=nothing-like-this", headers=clerk).json["total"] == 0
    assert client.get(f"{API}/tickets?state=received", headers=clerk).json["total"] >= 1
    assert client.get(f"{API}/tickets?state=fed_back", headers=clerk).json["total"] == 0


def test_create_errors(client, auth):
    clerk = auth("clerk")
    error = assert_error(
        client.post(f"{API}/tickets", json={"campaign": "consultation-2005"}, headers=clerk),
        422,
        "invalid_data",
    )
    assert "text" in error["details"]["fields"]
    error = assert_error(
        client.post(
            f"{API}/tickets",
            json={"campaign": "consultation-2005", "text": "x", "kind": "rant", "colour": 1},
            headers=clerk,
        ),
        422,
        "invalid_data",
    )
    assert {"kind", "colour"} <= set(error["details"]["fields"])
    assert_error(
        client.post(f"{API}/tickets", json={"campaign": "nope", "text": "x"}, headers=clerk),
        404,
        "not_found",
    )
    assert_error(
        client.post(
            f"{API}/tickets",
            data="{not json",
            headers={**clerk, "Content-Type": "application/json"},
        ),
        400,
        "bad_request",
    )
    error = assert_error(
        client.post(
            f"{API}/tickets",
            json={"campaign": "consultation-2005", "text": "x", "received_at": "2006-01-01T00:00Z"},
            headers=clerk,
        ),
        422,
        "invalid_data",
    )
    assert "received_at" in error["details"]["fields"]
    assert_error(
        client.post(
            f"{API}/tickets",
            json={"campaign": "consultation-2005", "text": "a\x00b"},
            headers=clerk,
        ),
        400,
        "bad_request",
    )
    error = assert_error(
        client.post(
            f"{API}/tickets",
            json={"campaign": "consultation-2005", "text": "x"},
            headers=auth("inspector"),
        ),
        403,
        "not_permitted",
    )
    assert "clerk" in error["message"]


def test_unknown_ticket_and_bad_query(client, auth):
    clerk = auth("clerk")
    assert_error(client.get(f"{API}/tickets/1999-9999", headers=clerk), 404, "not_found")
    assert_error(client.get(f"{API}/tickets/1999-9999/history", headers=clerk), 404, "not_found")
    error = assert_error(
        client.get(f"{API}/tickets?per_page=1000&page=0", headers=clerk), 422, "invalid_data"
    )
    assert {"per_page", "page"} <= set(error["details"]["fields"])
    error = assert_error(
        client.get(f"{API}/tickets?unit=nowhere", headers=clerk), 422, "invalid_data"
    )
    assert "unit" in error["details"]["fields"]
    assert_error(client.get(f"{API}/nothing-here", headers=clerk), 404, "not_found")
    assert_error(client.delete(f"{API}/tickets", headers=clerk), 405, "method_not_allowed")


def test_whole_path_with_conflicts_and_history(client, auth, new_ticket):
    ticket = new_ticket(kind="criticism", area="Luohe")
    number = ticket["number"]
    clerk, supervisor = auth("clerk"), auth("supervisor")
    officer = auth("traffic.officer")

    moved = fire_as(
        client, clerk, number, "categorize", 1, category="traffic_management", kind="criticism"
    )
    assert moved.status_code == 200, moved.json
    assert moved.json["state"] == "categorized" and moved.json["version"] == 2

    stale = fire_as(
        client, supervisor, number, "assign", 1, unit="traffic-brigade", officer="traffic.officer"
    )
    error = assert_error(stale, 409, "conflict")
    assert error["details"]["current_version"] == 2

    wrong = fire_as(client, supervisor, number, "rectify", 2, measures="lamps")
    error = assert_error(wrong, 409, "invalid_transition")
    assert "assign" in error["details"]["allowed"]

    missing = fire_as(client, supervisor, number, "assign", 2, unit="traffic-brigade")
    error = assert_error(missing, 422, "invalid_data")
    assert "officer" in error["details"]["fields"]

    not_allowed = fire_as(
        client, clerk, number, "assign", 2, unit="traffic-brigade", officer="traffic.officer"
    )
    error = assert_error(not_allowed, 403, "not_permitted")
    assert "supervisor" in error["message"]

    assigned = fire_as(
        client, supervisor, number, "assign", 2, unit="traffic-brigade", officer="traffic.officer"
    )
    assert assigned.status_code == 200, assigned.json
    assert assigned.json["unit"] == "traffic-brigade"
    assert assigned.json["assignee"] == "traffic.officer"

    # The officer of another unit neither sees nor moves it; the right officer does.
    other = auth("legal.officer")
    error = assert_error(client.get(f"{API}/tickets/{number}", headers=other), 403, "not_permitted")
    assert "traffic-brigade" in error["message"]
    assert_error(
        fire_as(client, other, number, "rectify", 3, measures="lamps"), 403, "not_permitted"
    )
    seen = client.get(f"{API}/tickets/{number}", headers=officer).json
    assert [t["name"] for t in seen["allowed_triggers"]] == ["rectify"]
    done = fire_as(client, officer, number, "rectify", 3, measures="Four street lamps installed.")
    assert done.status_code == 200 and done.json["state"] == "rectified"

    mine = client.get(f"{API}/tickets", headers=officer).json
    assert [t["number"] for t in mine["items"]] == [number]
    assert client.get(f"{API}/tickets", headers=other).json["total"] == 0

    history = client.get(f"{API}/tickets/{number}/history", headers=clerk).json
    assert [r["trigger"] for r in history["items"]] == ["create", "categorize", "assign", "rectify"]
    assert history["items"][1]["data"]["category"] == "traffic_management"
    assert (
        client.get(
            f"{API}/tickets?assignee=traffic.officer&unit=traffic-brigade", headers=clerk
        ).json["total"]
        == 1
    )


def test_transition_body_errors(client, auth, new_ticket):
    number = new_ticket()["number"]
    clerk = auth("clerk")
    response = client.post(
        f"{API}/tickets/{number}/transitions", json={"trigger": "categorize"}, headers=clerk
    )
    error = assert_error(response, 422, "invalid_data")
    assert "expected_version" in error["details"]["fields"]
    assert_error(fire_as(client, clerk, "1999-0001", "categorize", 1), 404, "not_found")
    error = assert_error(fire_as(client, clerk, number, "fly", 1), 409, "invalid_transition")
    assert "not a trigger" in error["message"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fields"),
    [
        (b"{not json", "application/json", 400, {"body"}),
        (
            b'{"trigger": "categorize\xff", "expected_version": 1}',
            "application/json",
            400,
            {"body"},
        ),
        (b"", "application/json", 422, {"trigger", "expected_version"}),
        (b"[]", "application/json", 422, {"_schema"}),
        (
            b'{"trigger": "categorize", "expected_version": "one"}',
            "application/json",
            422,
            {"expected_version"},
        ),
        (
            b'{"trigger": "categorize", "expected_version": 1, "colour": 1}',
            "application/json",
            422,
            {"colour"},
        ),
        (
            b'{"trigger": "categorize", "expected_version": 1}',
            "text/plain",
            422,
            {"trigger", "expected_version"},
        ),
    ],
)
def test_transition_body_answers(client, auth, new_ticket, body, content_type, status, fields):
    """Every way a transition's body can be wrong gets the one error shape, names the fields
    (as webargs' parser names them), and leaves the ticket where it was."""
    number = new_ticket()["number"]
    clerk = auth("clerk")
    answer = client.post(
        f"{API}/tickets/{number}/transitions",
        data=body,
        headers={**clerk, "Content-Type": content_type},
    )
    error = assert_error(answer, status, "bad_request" if status == 400 else "invalid_data")
    assert set(error["details"]["fields"]) == fields, error
    ticket = client.get(f"{API}/tickets/{number}", headers=clerk).json
    assert (ticket["state"], ticket["version"]) == ("received", 1)


def test_citizen_token_creates_but_does_not_read(client, auth):
    citizen = auth("citizen")
    response = client.post(
        f"{API}/tickets", json={"campaign": "consultation-2005", "text": "Thanks"}, headers=citizen
    )
    assert response.status_code == 201
    assert response.json["citizen"] is None
    assert_error(client.get(f"{API}/tickets", headers=citizen), 403, "not_permitted")
    assert_error(
        client.get(f"{API}/tickets/{response.json['number']}", headers=citizen),
        403,
        "not_permitted",
    )


def test_overdue_filter(app, client, auth, new_ticket):
    from datetime import timedelta

    number = new_ticket()["number"]
    clerk = auth("clerk")
    assert client.get(f"{API}/tickets?overdue=true", headers=clerk).json["total"] == 0
    app.config["CLOCK"].advance(timedelta(days=30))
    listed = client.get(f"{API}/tickets?overdue=true", headers=clerk).json
    assert [t["number"] for t in listed["items"]] == [number]
    assert listed["items"][0]["overdue"] is True


def test_reads_record_the_tokens_time_of_use(app, client, token):
    from engine.tokens import list_tokens
    from tests.conftest import CAMPAIGN_NOW

    value = token("inspector")
    assert (
        client.get(f"{API}/campaigns", headers={"Authorization": f"Bearer {value}"}).status_code
        == 200
    )
    with app.extensions["rectiflow.sessions"]() as session:
        assert list_tokens(session, "inspector")[0].last_used_at == CAMPAIGN_NOW


def test_times_outside_the_calendar_are_422(client, auth, new_ticket):
    clerk = auth("clerk")
    body = {
        "campaign": "consultation-2005",
        "text": "x",
        "received_at": "0001-01-01T00:00:00+05:00",
    }
    error = assert_error(
        client.post(f"{API}/tickets", json=body, headers=clerk), 422, "invalid_data"
    )
    assert "received_at" in error["details"]["fields"]
    assert_error(
        client.get(f"{API}/audit?since=0001-01-01T00:00:00%2B05:00", headers=auth("inspector")),
        422,
        "invalid_data",
    )


@pytest.mark.parametrize(
    "raw",
    [
        b'{"campaign": "consultation-2005", "text": "a\\u0000b"}',  # an escaped NUL
        b'{"campaign": "consultation-2005", "text": "a\\ud800b"}',  # an escaped lone surrogate
        b'{"campaign": "consultation-2005", "text": "a\xed\xa0\x80b"}',  # one as UTF-8 bytes
        b'{"campaign": "consultation-2005", "data": {"k\\u0000": 1}, "text": "x"}',  # in a key
    ],
)
def test_text_a_database_cannot_store_is_400_in_any_spelling(client, auth, raw):
    """The body is looked through only when its bytes can spell such text (a \\u escape or
    the bytes of a surrogate); every spelling of it must still be refused, and nothing made."""
    before = client.get(f"{API}/tickets", headers=auth("clerk")).json["total"]
    answer = client.post(
        f"{API}/tickets",
        data=raw,
        headers={**auth("clerk"), "Content-Type": "application/json"},
    )
    assert_error(answer, 400, "bad_request")
    assert client.get(f"{API}/tickets", headers=auth("clerk")).json["total"] == before


def test_nul_in_the_url_is_400(client, auth):
    clerk = auth("clerk")
    assert_error(client.get(f"{API}/tickets?q=a%00b", headers=clerk), 400, "bad_request")
    assert_error(client.get(f"{API}/tickets/2005%000001", headers=clerk), 400, "bad_request")


def test_transition_answer_is_what_a_read_shows(client, auth, new_ticket):
    """Issue 15 item 3: the transition's answer is built from what fire() read and wrote
    (no second read of the ticket); it must equal what a read right after shows, at every
    step (unit, assignee, due time, closing time, allowed triggers), and a refused
    transition still answers with the error, not a ticket."""
    number = new_ticket(kind="criticism", area="Luohe")["number"]
    supervisor, officer = auth("supervisor"), auth("traffic.officer")
    steps = [
        (auth("clerk"), "categorize", {"category": "traffic_management", "kind": "criticism"}),
        (supervisor, "assign", {"unit": "traffic-brigade", "officer": "traffic.officer"}),
        (officer, "rectify", {"measures": "Four street lamps installed."}),
        (officer, "feed_back", {"method": "phone", "text": "Told them.", "date": "2005-02-28"}),
    ]
    for version, (headers, trigger, data) in enumerate(steps, start=1):
        moved = fire_as(client, headers, number, trigger, version, **data)
        assert moved.status_code == 200, moved.json
        read = client.get(f"{API}/tickets/{number}", headers=headers)
        assert moved.json == read.json, trigger
    assert moved.json["state"] == "fed_back" and moved.json["closed_at"] is not None
    assert moved.json["unit"] == "traffic-brigade" and moved.json["due_at"] is None
    stale = fire_as(client, supervisor, number, "reopen", 1, reason="again")
    assert_error(stale, 409, "conflict")


def test_a_request_refused_before_its_view_begins_no_transaction(app, client, auth, new_ticket):
    """A token found in the read cache needs no statement, so authentication begins no
    transaction: a body refused before the view (422) never took a connection's transaction,
    and on SQLite never took the write lock (BEGIN IMMEDIATE) that a writer would wait on."""
    from sqlalchemy import event

    number = new_ticket(kind="criticism")["number"]
    clerk = auth("clerk")
    assert client.get(f"{API}/tickets/{number}", headers=clerk).status_code == 200  # cached
    begun: list[int] = []

    def count(conn):  # type: ignore[no-untyped-def]
        begun.append(1)

    engine = app.extensions["rectiflow.engine"]
    event.listen(engine, "begin", count)
    try:
        refused = client.post(
            f"{API}/tickets/{number}/transitions", json={"trigger": "categorize"}, headers=clerk
        )
        assert_error(refused, 422, "invalid_data")
        assert begun == []
        data = {"category": "traffic_management", "kind": "criticism"}
        moved = fire_as(client, clerk, number, "categorize", 1, **data)
        assert moved.status_code == 200 and begun == [1]  # the view's own transaction
    finally:
        event.remove(engine, "begin", count)


def test_transition_runs_on_the_connection_alone(app, client, auth, new_ticket, monkeypatch):
    """Issue 15 item 3: an API transition (token check, fire(), commit, answer) makes no ORM
    session: the request's unit of work is one connection. A view that reads through the
    ORM still gets its session on that same connection, and a refusal leaves nothing."""
    ctx = app.extensions["rectiflow.ctx"]
    made = []
    sessions = ctx.sessions

    def counting(*args, **kwargs):
        made.append(kwargs.get("bind"))
        return sessions(*args, **kwargs)

    monkeypatch.setattr(ctx, "sessions", counting)
    number = new_ticket(kind="criticism")["number"]
    made.clear()
    clerk = auth("clerk")
    data = {"category": "traffic_management", "kind": "criticism"}
    moved = fire_as(client, clerk, number, "categorize", 1, **data)
    assert moved.status_code == 200 and moved.json["version"] == 2
    assert made == []
    refused = fire_as(client, clerk, number, "categorize", 1, **data)
    assert_error(refused, 409, "conflict")
    assert made == []
    listed = client.get(f"{API}/tickets?q={number}", headers=clerk)
    assert listed.status_code == 200 and listed.json["items"][0]["version"] == 2
    assert len(made) == 1 and made[0] is not None  # on the request's connection
