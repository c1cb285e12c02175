"""Administration services: users, units, campaigns, routing, tokens; each change in the
hash-chained admin log; bad input refused with nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine import admin, adminlog
from engine.context import EngineContext
from engine.creating import create_ticket
from engine.errors import NotPermitted, ValidationError
from engine.models import AdminLog, Unit, User
from engine.security import check_password
from engine.tickets import Actor, get_actor
from tests.conftest import CAMPAIGN

STRONG = "Harbour-lights-42"


@pytest.fixture
def actor(ctx: EngineContext):  # type: ignore[no-untyped-def]
    """``actor('admin')``: a sample user, read in a transaction of its own."""

    def _actor(username: str) -> Actor:
        with ctx.unit_of_work() as uow:
            return get_actor(uow.session, username)

    return _actor


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_create_user_logs_it_and_forces_a_password_change(ctx: EngineContext, actor) -> None:  # type: ignore[no-untyped-def]
    root = actor("admin")
    with ctx.unit_of_work() as uow:
        info = admin.create_user(
            uow, root, username="zhang.wei", display_name="Zhang Wei", role="officer",
            unit="luohe-station", password=STRONG,
        )  # fmt: skip
    assert info.must_change_password and info.active and info.unit == "luohe-station"
    with ctx.unit_of_work() as uow:
        row = uow.session.scalars(select(AdminLog)).one()
        assert (row.action, row.target, row.actor) == ("user.create", "zhang.wei", "admin")
        assert STRONG not in row.data
        assert adminlog.verify(uow.session, key=ctx.audit_key) == []


@pytest.mark.parametrize(
    ("username", "password", "field"),
    [
        ("admin", STRONG, "username"),  # taken
        ("Bad Name!", STRONG, "username"),
        ("new.user", "short1", "password"),
        ("new.user", "password123", "password"),
        ("new.user", "onlyletterslong", "password"),
        ("new.user", "new.user-2024", "password"),  # contains the name
    ],
)
def test_bad_users_are_refused_and_nothing_is_written(
    ctx: EngineContext,
    actor,
    username: str,
    password: str,
    field: str,  # type: ignore[no-untyped-def]
) -> None:
    root = actor("admin")
    with ctx.unit_of_work() as uow:
        users_before = _count(uow.session, User)
    with pytest.raises(ValidationError) as caught, ctx.unit_of_work() as uow:
        admin.create_user(
            uow, root, username=username, display_name="x", role="officer", password=password
        )
    assert field in caught.value.fields
    assert caught.value.message_id
    with ctx.unit_of_work() as uow:
        assert _count(uow.session, User) == users_before
        assert _count(uow.session, AdminLog) == 0


def test_only_admin_may_administer(ctx: EngineContext, actor) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotPermitted), ctx.unit_of_work() as uow:
        admin.create_user(
            uow, actor("supervisor"), username="x.y", display_name="x", role="officer",
            password=STRONG,
        )  # fmt: skip


def test_deactivate_reset_and_change_own_password(ctx: EngineContext, actor) -> None:  # type: ignore[no-untyped-def]
    root = actor("admin")
    officer = actor("luohe.officer")
    with ctx.unit_of_work() as uow:
        admin.reset_password(uow, root, "luohe.officer", STRONG)
    with ctx.unit_of_work() as uow:
        assert admin.must_change_password(uow, officer.id)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as wrong, ctx.unit_of_work() as uow:
        admin.change_own_password(
            uow, officer, current_password="nope", new_password="Another-pass-77"
        )
    assert "current_password" in wrong.value.fields
    with ctx.unit_of_work() as uow:
        admin.change_own_password(
            uow, officer, current_password=STRONG, new_password="Another-pass-77"
        )
    with ctx.unit_of_work() as uow:
        user = uow.session.scalars(select(User).where(User.username == "luohe.officer")).one()
        assert not user.must_change_password
        assert check_password(user.password_hash, "Another-pass-77")
    with pytest.raises(ValidationError), ctx.unit_of_work() as uow:
        admin.set_active(uow, root, "admin", False)  # not oneself
    with ctx.unit_of_work() as uow:
        admin.set_active(uow, root, "luohe.officer", False)
    with ctx.unit_of_work() as uow:
        actions = [r.action for r in uow.session.scalars(select(AdminLog).order_by(AdminLog.seq))]
        assert actions == ["user.reset_password", "user.change_own_password", "user.deactivate"]


def test_a_unit_cannot_move_under_its_own_descendant(ctx: EngineContext, actor) -> None:  # type: ignore[no-untyped-def]
    root = actor("admin")
    with ctx.unit_of_work() as uow:
        admin.create_unit(
            uow,
            root,
            code="luohe-east",
            name="East post",
            name_zh="东区",
            kind="office",
            parent="luohe-station",
        )
    with pytest.raises(ValidationError) as loop, ctx.unit_of_work() as uow:
        admin.update_unit(uow, root, "luohe-station", parent="luohe-east")
    assert loop.value.message_id == "admin.unit_loop"
    with pytest.raises(ValidationError), ctx.unit_of_work() as uow:
        admin.update_unit(uow, root, "luohe-station", parent="luohe-station")
    with ctx.unit_of_work() as uow:
        luohe = uow.session.scalars(select(Unit).where(Unit.code == "luohe-station")).one()
        assert luohe.parent is not None and luohe.parent.code == "bureau"
        admin.update_unit(uow, root, "luohe-east", parent="bureau")
    with ctx.unit_of_work() as uow:
        assert adminlog.verify(uow.session, key=ctx.audit_key) == []


def test_campaign_file_with_a_deadline_before_its_start_is_refused(
    ctx: EngineContext,
    actor,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'code = "c2026"\nname = { zh_CN = "x", en = "x" }\ntimezone = "Asia/Shanghai"\nstarts_on = 2026-03-01\n'
        'ends_on = 2026-04-01\nrectification_deadline = 2026-02-01\nnumber_prefix = "C26"\n'
    )
    with pytest.raises(ValidationError) as caught, ctx.unit_of_work() as uow:
        admin.load_campaign_file(uow, actor("admin"), bad)
    assert caught.value.message_id == "admin.deadline_before_start"
    with ctx.unit_of_work() as uow:
        assert (
            uow.session.execute(text("select count(*) from campaigns where code='c2026'")).scalar()
            == 0
        )


def test_closed_intake_refuses_new_opinions(ctx: EngineContext, actor) -> None:  # type: ignore[no-untyped-def]
    with ctx.unit_of_work() as uow:
        admin.close_intake(uow, actor("admin"), CAMPAIGN)
    with pytest.raises(NotPermitted) as caught, ctx.unit_of_work() as uow:
        create_ticket(uow, campaign=CAMPAIGN, text="late", actor=actor("clerk"))
    assert caught.value.message_id == "campaign.intake_closed"


def test_routing_and_tokens_are_logged(ctx: EngineContext, actor) -> None:  # type: ignore[no-untyped-def]
    root = actor("admin")
    with ctx.unit_of_work() as uow:
        rule = admin.add_routing_rule(
            uow, root, unit="luohe-station", area="Luohe town", category="law_enforcement"
        )
        issued = admin.issue_token(uow, root, "clerk", name="hotline")
    with ctx.unit_of_work() as uow:
        admin.delete_routing_rule(uow, root, rule.id)
        admin.revoke_token(uow, root, issued.id)
    with ctx.unit_of_work() as uow:
        rows = list(uow.session.scalars(select(AdminLog).order_by(AdminLog.seq)))
        assert [r.action for r in rows] == [
            "routing.add",
            "token.issue",
            "routing.delete",
            "token.revoke",
        ]
        assert all(issued.token not in r.data for r in rows)


def test_the_admin_log_is_append_only_and_verified(ctx: EngineContext, actor) -> None:  # type: ignore[no-untyped-def]
    root = actor("admin")
    for code in ("u1", "u2", "u3"):
        with ctx.unit_of_work() as uow:
            admin.create_unit(uow, root, code=code, name=code, name_zh=code, kind="office")
    with pytest.raises(DBAPIError), ctx.unit_of_work() as uow:
        uow.session.execute(text("UPDATE admin_log SET target = 'forged' WHERE seq = 2"))
    with pytest.raises(DBAPIError), ctx.unit_of_work() as uow:
        uow.session.execute(text("DELETE FROM admin_log WHERE seq = 2"))
    # Someone who drops the guard (the database owner) is still found out.
    with ctx.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER admin_log_no_update"))
            conn.execute(text("DROP TRIGGER admin_log_no_delete"))
        else:
            conn.execute(text("ALTER TABLE admin_log DISABLE TRIGGER admin_log_no_change"))
        conn.execute(text("UPDATE admin_log SET target = 'forged' WHERE seq = 3"))
        conn.execute(text("DELETE FROM admin_log WHERE seq = 2"))
    with ctx.unit_of_work() as uow:
        kinds = {p.kind for p in adminlog.verify(uow.session, key=ctx.audit_key)}
    assert {"edited", "deleted"} <= kinds
