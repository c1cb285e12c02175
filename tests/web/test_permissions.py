"""Role × action × own unit / other unit: who may do what, and a refusal says why.

The ticket belongs to luohe-station; ``luohe.*`` users are of its unit,
``legal.*`` users of another. A refused action leaves the ticket untouched.
"""

from __future__ import annotations

import pytest

from tests.web.conftest import csrf, post_action


def _do(client, action: str, number: str):
    if action == "view":
        return client.get(f"/tickets/{number}")
    if action == "rectify":
        return post_action(client, number, "rectify", {"measures": "Lamps fixed."}, version=None)
    if action == "reassign":
        data = {"unit": "luohe-station", "officer": "luohe.leader", "reason": "leave"}
        return post_action(client, number, "reassign", data, version=None)
    token = csrf(client)
    if action == "extension":
        return client.post(
            f"/tickets/{number}/extension",
            data={
                "extension-csrf_token": token,
                "extension-due_on": "2005-03-16",
                "extension-reason": "The lamps must be ordered.",
            },
        )
    if action == "escalate":
        return client.post(
            f"/tickets/{number}/escalate",
            data={"escalate-csrf_token": token, "escalate-reason": "No progress."},
        )
    if action == "verify":
        return client.post("/inspector/verify", data={"csrf_token": token, "ticket": number})
    paths = {
        "board": "/supervisor/board",
        "log": "/inspector/log",
        "intake": "/desk/intake",
        "categorize_queue": "/desk/categorize",
        "my_queue": "/my/queue",
        "unit_queue": "/unit/queue",
        "sample": "/inspector/sample",
        "reopen_requests": "/supervisor/reopen-requests",
    }
    return client.get(paths[action])


OK, REDIRECT, REFUSED = 200, 302, 403
CASES = [
    # the ticket page
    ("luohe.officer", "view", OK),
    ("legal.officer", "view", REFUSED),
    ("luohe.leader", "view", OK),
    ("legal.leader", "view", REFUSED),
    ("clerk", "view", OK),
    ("supervisor", "view", OK),
    ("inspector", "view", OK),
    # rectify: officers and unit leaders of the ticket's unit
    ("luohe.officer", "rectify", REDIRECT),
    ("legal.officer", "rectify", REFUSED),
    ("luohe.leader", "rectify", REDIRECT),
    ("legal.leader", "rectify", REFUSED),
    ("clerk", "rectify", REFUSED),
    ("supervisor", "rectify", REFUSED),
    ("inspector", "rectify", REFUSED),
    # reassign: unit leader inside the unit, supervisor anywhere
    ("luohe.leader", "reassign", REDIRECT),
    ("legal.leader", "reassign", REFUSED),
    ("luohe.officer", "reassign", REFUSED),
    ("supervisor", "reassign", REDIRECT),
    ("inspector", "reassign", REFUSED),
    # extension: the unit's officer or leader, a supervisor
    ("luohe.leader", "extension", REDIRECT),
    ("legal.leader", "extension", REFUSED),
    ("clerk", "extension", REFUSED),
    ("inspector", "extension", REFUSED),
    # escalate: supervisors only
    ("supervisor", "escalate", REDIRECT),
    ("luohe.leader", "escalate", REFUSED),
    ("inspector", "escalate", REFUSED),
    ("clerk", "escalate", REFUSED),
    # pages per role
    ("supervisor", "board", OK),
    ("clerk", "board", REFUSED),
    ("luohe.officer", "board", REFUSED),
    ("inspector", "board", REFUSED),
    ("inspector", "log", OK),
    ("supervisor", "log", OK),
    ("luohe.officer", "log", REFUSED),
    ("clerk", "log", REFUSED),
    ("inspector", "verify", OK),
    ("luohe.officer", "verify", REFUSED),
    ("clerk", "verify", REFUSED),
    ("inspector", "sample", OK),
    ("luohe.leader", "sample", REFUSED),
    ("clerk", "intake", OK),
    ("luohe.officer", "intake", REFUSED),
    ("inspector", "intake", REFUSED),
    ("clerk", "categorize_queue", OK),
    ("luohe.officer", "categorize_queue", REFUSED),
    ("luohe.officer", "my_queue", OK),
    ("clerk", "my_queue", REFUSED),
    ("luohe.leader", "unit_queue", OK),
    ("supervisor", "unit_queue", REFUSED),
    ("supervisor", "reopen_requests", OK),
    ("luohe.leader", "reopen_requests", REFUSED),
]


@pytest.mark.parametrize(
    ("who", "action", "expected"), CASES, ids=[f"{w}-{a}" for w, a, _ in CASES]
)
def test_matrix(who, action, expected, login_as, make_ticket, ticket_version):
    number, _ = make_ticket("assigned")
    version = ticket_version(number)
    client = login_as(who)
    response = _do(client, action, number)
    body = response.get_data(as_text=True)
    assert response.status_code == expected, body[:3000]
    if expected == REFUSED:
        # The refusal names what is wrong: another unit, or the roles that may.
        assert any(
            w in body
            for w in (
                "another unit",
                "own unit",
                "role",
                "only a supervisor",
                "may ask",
                "belongs to",
            )
        ), body[:3000]
        assert ticket_version(number) == version


def test_anonymous_is_sent_to_sign_in(client, make_ticket):
    number, _ = make_ticket("assigned")
    response = client.get(f"/tickets/{number}")
    assert response.status_code == 302
    assert "/signin" in response.headers["Location"]
