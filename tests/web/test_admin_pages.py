"""The administration pages: the policy matrix (each role x each admin page = the policy's
answer), creating users with bad input refused in place, the forced password change, the unit
tree, campaigns and the admin log."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.actors import get_actor
from engine.models import AdminLog, Campaign, Unit, User
from tests.web.conftest import ROLE_USERS, csrf, sign_in
from web.admin.routes import SECTIONS

ROLES = ("clerk", "officer", "unit_leader", "supervisor", "inspector", "admin")
PAGES = [(endpoint, permission) for endpoint, permission, _title in SECTIONS]
STRONG = "Harbour-lights-42"


@pytest.mark.parametrize("role", ROLES)
def test_every_admin_page_answers_as_the_policy_says(
    app: Flask, login_as: Callable[[str], FlaskClient], db_session: Session, role: str
) -> None:
    client = login_as(role)
    actor = get_actor(db_session, ROLE_USERS[role])
    db_session.rollback()
    policy = app.extensions["rectiflow.ctx"].policy
    with app.test_request_context():
        from flask import url_for

        paths = {endpoint: url_for(endpoint) for endpoint, _p in PAGES}
    for endpoint, permission in PAGES:
        status = client.get(paths[endpoint]).status_code
        assert status == (200 if policy.can(actor, permission) else 403), (role, endpoint, status)
    index = client.get("/admin").status_code
    expected = any(policy.can(actor, p) for _e, p in PAGES)
    assert index == (200 if expected else 403), (role, index)
    # Writing is refused the same way (no form needed to find out).
    token = csrf(client, "/")
    post = client.post(
        "/admin/users", data={"csrf_token": token, "username": "x.y", "password": STRONG}
    )
    assert post.status_code == (422 if policy.can(actor, "admin.users") else 403)


def _count(db: Session, model: type) -> int:
    db.rollback()
    value = int(db.scalar(select(func.count()).select_from(model)) or 0)
    db.rollback()  # SQLite: a held read transaction would block the app's writes
    return value


def test_create_user_bad_input_is_shown_and_nothing_written(
    login_as: Callable[[str], FlaskClient], db_session: Session
) -> None:
    client = login_as("admin")
    before = _count(db_session, User)
    token = csrf(client, "/admin/users")
    taken = client.post(
        "/admin/users",
        data={"csrf_token": token, "username": "clerk", "role": "clerk", "password": STRONG},
    )
    assert taken.status_code == 422
    assert "The username clerk is taken; choose another." in taken.get_data(as_text=True)
    weak = client.post(
        "/admin/users",
        data={"csrf_token": token, "username": "li.na", "role": "clerk", "password": "abc"},
    )
    assert weak.status_code == 422
    assert "This password is too weak" in weak.get_data(as_text=True)
    assert 'value="li.na"' in weak.get_data(as_text=True)  # the form keeps what was typed
    assert _count(db_session, User) == before
    assert _count(db_session, AdminLog) == 0


def test_a_new_user_must_change_the_password_first(
    client: FlaskClient, login_as: Callable[[str], FlaskClient], db_session: Session
) -> None:
    admin = login_as("admin")
    token = csrf(admin, "/admin/users")
    made = admin.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "wang.fang",
            "display_name": "Wang Fang",
            "role": "officer",
            "unit": "luohe-station",
            "password": STRONG,
        },
    )
    assert made.status_code == 302
    with client.session_transaction() as s:
        s.clear()
    assert sign_in(client, "wang.fang", STRONG).status_code == 302
    queue = client.get("/my/queue")
    assert queue.status_code == 302 and queue.headers["Location"].endswith("/account/password")
    token = csrf(client, "/account/password")
    same = client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": STRONG,
            "new_password": STRONG,
            "confirm_password": STRONG,
        },
    )
    assert same.status_code == 422
    changed = client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": STRONG,
            "new_password": "Quiet-river-2026",
            "confirm_password": "Quiet-river-2026",
        },
    )
    assert changed.status_code == 302
    assert client.get("/my/queue").status_code == 200
    db_session.rollback()
    actions = list(db_session.scalars(select(AdminLog.action).order_by(AdminLog.seq)))
    assert actions == ["user.create", "user.change_own_password"]


def test_deactivated_user_is_signed_out(
    app: Flask, client: FlaskClient, login_as: Callable[[str], FlaskClient]
) -> None:
    officer_client = app.test_client()
    admin = login_as("admin")
    token = csrf(admin, "/admin/users")
    out = admin.post(
        "/admin/users/luohe.officer", data={"csrf_token": token, "action": "deactivate"}
    )
    assert out.status_code == 302
    assert sign_in(officer_client, "luohe.officer").status_code == 401
    self_off = admin.post("/admin/users/admin", data={"csrf_token": token, "action": "deactivate"})
    assert self_off.status_code == 422
    assert "You cannot deactivate your own account." in self_off.get_data(as_text=True)


def test_unit_moved_under_its_own_child_is_refused(
    login_as: Callable[[str], FlaskClient], db_session: Session
) -> None:
    client = login_as("admin")
    token = csrf(client, "/admin/units")
    made = client.post(
        "/admin/units",
        data={"csrf_token": token, "action": "create", "code": "east", "name": "East post", "name_zh": "东区警务室",
              "kind": "office", "parent": "luohe-station"},
    )  # fmt: skip
    assert made.status_code == 302
    loop = client.post(
        "/admin/units",
        data={"csrf_token": token, "action": "update", "code": "luohe-station", "parent": "east"},
    )
    assert loop.status_code == 422
    assert "cannot move under east" in loop.get_data(as_text=True)
    db_session.rollback()
    parent = db_session.scalar(select(Unit.parent_id).where(Unit.code == "luohe-station"))
    assert parent == db_session.scalar(select(Unit.id).where(Unit.code == "bureau"))


def test_campaign_from_a_file_and_from_the_form(
    login_as: Callable[[str], FlaskClient], db_session: Session
) -> None:
    client = login_as("admin")
    token = csrf(client, "/admin/campaigns")
    bad = client.post(
        "/admin/campaigns",
        data={
            "csrf_token": token,
            "file": (
                BytesIO(
                    b'code = "c26"\nname = { zh_CN = "x", en = "x" }\ntimezone = "Asia/Shanghai"\nstarts_on = 2026-03-01\n'
                    b'ends_on = 2026-04-01\nrectification_deadline = 2026-02-01\nnumber_prefix = "C26"\n'
                ),
                "c26.toml",
            ),
        },
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422
    assert "is before the campaign starts" in bad.get_data(as_text=True)
    good = client.post(
        "/admin/campaigns",
        data={
            "csrf_token": token,
            "code": "spring-2026",
            "name": "Spring 2026",
            "name_zh": "2026年春季活动",
            "timezone": "Asia/Shanghai",
            "starts_on": "2026-03-01",
            "ends_on": "2026-04-30",
            "rectification_deadline": "2026-04-15",
            "number_prefix": "S26",
            "workflow": "consultation",
            "categories": "traffic_management = 交通管理 | Traffic\n"
            "law_enforcement = 执法执勤 | Law enforcement",
        },
    )
    assert good.status_code == 302, good.get_data(as_text=True)
    closed = client.post(
        "/admin/campaigns/spring-2026/intake", data={"csrf_token": token, "action": "close"}
    )
    assert closed.status_code == 302
    db_session.rollback()
    row = db_session.scalars(select(Campaign).where(Campaign.code == "spring-2026")).one()
    assert row.intake_closed_at is not None and len(row.categories) == 2
    assert (
        db_session.scalar(select(func.count()).select_from(Campaign).where(Campaign.code == "c26"))
        == 0
    )
    db_session.rollback()
    page = client.get("/admin/log").get_data(as_text=True)
    assert "The chain is intact." in page and "campaign.close_intake" in page


def test_tokens_and_routing_pages(login_as: Callable[[str], FlaskClient]) -> None:
    client = login_as("admin")
    token = csrf(client, "/admin/tokens")
    issued = client.post(
        "/admin/tokens", data={"csrf_token": token, "username": "clerk", "name": "hotline"}
    )
    assert issued.status_code == 200 and "Shown this once" in issued.get_data(as_text=True)
    empty = client.post(
        "/admin/routing", data={"csrf_token": token, "action": "add", "unit": "luohe-station"}
    )
    assert empty.status_code == 422
    assert "needs a category, an area or both" in empty.get_data(as_text=True)
    assert client.get("/admin/workflows").status_code == 200
