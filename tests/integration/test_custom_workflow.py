"""A workflow file the code has never seen, written here, works through the CLI, the API and
the web pages without code changes: its own roles (added to a policy file written here),
kinds, time limits in calendar days and hours, ladder and queues. And the bad inputs of
issue 11: a role the policy does not know, a ladder notifying an unknown role, a file that is
not UTF-8 or too large, each refused naming the file and the item."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from engine.clock import FixedClock
from engine.context import EngineContext, build_context
from engine.models import Ticket, Unit, User
from engine.settings import PROJECT_ROOT
from engine.workflow import MAX_FILE_BYTES

NOW = datetime(2005, 2, 28, 2, 0, tzinfo=UTC)

PERMITS = """
name = "permits"
version = 1
title = { zh_CN = "活动许可：申请、审查、决定", en = "Event permits: apply, check, decide" }
initial = "applied"
kinds = ["application", "renewal"]

[states.applied]
title = { zh_CN = "已申请", en = "Applied" }
time_limit = { hours = 8 }
[states.checking]
title = { zh_CN = "审查中", en = "Checking" }
time_limit = { calendar_days = 3 }
[states.decided]
title = { zh_CN = "已决定", en = "Decided" }
final = true

[fields]
decision = { type = "choice", choices = ["granted", "refused"], title = { zh_CN = "决定", en = "Decision" }, choice_titles = { granted = { zh_CN = "准予", en = "Granted" }, refused = { zh_CN = "不予", en = "Refused" } } }
note = { type = "text", max_length = 500, title = { zh_CN = "说明", en = "Note" } }

[[triggers]]
name = "take_up"
title = { zh_CN = "受理", en = "Take up" }
source = ["applied"]
dest = "checking"
roles = ["permit_clerk"]

[[triggers]]
name = "decide"
title = { zh_CN = "决定", en = "Decide" }
source = ["checking"]
dest = "decided"
roles = ["permit_clerk"]
requires = ["decision", "note"]

[[queues]]
name = "intake"
title = { zh_CN = "待受理的申请", en = "Applications to take up" }
states = ["applied"]
permission = "queue.intake"

[ladder]
warning_before_hours = 2
steps = [{ level = 1, after_working_days = 0, notify = ["permit_clerk"] }]
"""

PERMIT_ROLE = """
[roles.permit_clerk]
title = { zh_CN = "审批员", en = "Permit clerk" }
staff = true
grants = ["web.signin", "ticket.view", "ticket.create", "ticket.fire", "queue.intake"]
"""

CAMPAIGN = """
code = "permits-2005"
name = { zh_CN = "2005年节庆活动许可", en = "Festival permits 2005" }
timezone = "Asia/Shanghai"
starts_on = 2005-02-01
ends_on = 2005-12-31
rectification_deadline = 2005-12-31
number_prefix = "P"
workflow = "permits"
"""


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    wf = tmp_path / "workflows"
    wf.mkdir()
    for f in (PROJECT_ROOT / "workflows").glob("*.toml"):
        shutil.copy(f, wf)
    (wf / "permits-v1.toml").write_text(PERMITS, encoding="utf-8")
    policy = tmp_path / "policy.toml"
    policy.write_text(
        (PROJECT_ROOT / "config" / "policy.toml").read_text(encoding="utf-8") + PERMIT_ROLE,
        encoding="utf-8",
    )
    (tmp_path / "permits-2005.toml").write_text(CAMPAIGN, encoding="utf-8")
    monkeypatch.setenv("RECTIFLOW_WORKFLOWS_DIR", str(wf))
    monkeypatch.setenv("RECTIFLOW_POLICY", str(policy))
    return tmp_path


@pytest.fixture
def pctx(engine: Engine, setup: Path) -> EngineContext:
    ctx = build_context(engine=engine, clock=FixedClock(NOW))
    with ctx.unit_of_work() as uow:
        office = uow.session.scalars(select(Unit.id).where(Unit.code == "office")).one()
        uow.session.add(
            User(
                username="permit.clerk",
                display_name="Permit clerk",
                role="permit_clerk",
                unit_id=office,
                active=True,
            )
        )
    return ctx


def test_an_unseen_workflow_through_cli_api_and_web(
    db_url: str, setup: Path, pctx: EngineContext
) -> None:
    from cli import main

    runner = CliRunner()
    base = ["--database-url", db_url, "--now", NOW.isoformat()]
    ok = runner.invoke(
        main, [*base, "workflow", "validate", str(setup / "workflows" / "permits-v1.toml")]
    )
    assert ok.exit_code == 0, ok.output
    assert "permits/v1 is valid" in ok.output
    loaded = runner.invoke(main, [*base, "campaign", "load", str(setup / "permits-2005.toml")])
    assert loaded.exit_code == 0, loaded.output
    assert "permits v1" in loaded.output
    made = runner.invoke(
        main,
        [
            *base,
            "ticket",
            "create",
            "--campaign",
            "permits-2005",
            "--text",
            "Dragon boat race on the river",
            "--kind",
            "application",
            "--as",
            "permit.clerk",
        ],
    )
    assert made.exit_code == 0, made.output
    assert "created P-0001 (Applied)" in made.output
    refused = runner.invoke(
        main,
        [
            *base,
            "ticket",
            "create",
            "--campaign",
            "permits-2005",
            "--text",
            "x",
            "--kind",
            "praise",
            "--as",
            "permit.clerk",
        ],
    )
    assert refused.exit_code == 2 and "application, renewal" in refused.output
    with pctx.sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.number == "P-0001")).one()
        assert t.due_at == NOW + timedelta(hours=8)
    fired = runner.invoke(
        main, [*base, "ticket", "fire", "P-0001", "take_up", "--as", "permit.clerk"]
    )
    assert fired.exit_code == 0, fired.output
    with pctx.sessions() as s:
        t = s.scalars(select(Ticket).where(Ticket.number == "P-0001")).one()
        assert t.state == "checking" and t.due_at == NOW + timedelta(days=3)
    # A consultation clerk's role is not one the permits workflow names.
    no = runner.invoke(
        main,
        [
            *base,
            "ticket",
            "fire",
            "P-0001",
            "decide",
            "--as",
            "clerk",
            "--data",
            "decision=granted",
            "--data",
            "note=ok",
        ],
    )
    assert no.exit_code == 2 and "needs the role Permit clerk" in no.output

    # The API: create with the workflow's kind, fire with its fields.
    from engine.tokens import create_token
    from web import create_app

    app = create_app(
        {"database_url": db_url, "secret_key": "test", "TESTING": True, "WTF_CSRF_ENABLED": False}
    )
    app.config["CLOCK"] = FixedClock(NOW)
    with app.extensions["rectiflow.sessions"]() as session:
        token = create_token(session, "permit.clerk", now=NOW, name="test").token
        session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    r = client.post(
        "/api/v1/tickets",
        headers=headers,
        json={"campaign": "permits-2005", "text": "Lantern fair", "kind": "renewal"},
    )
    assert r.status_code == 201, r.json
    number = r.json["number"]
    r = client.post(
        "/api/v1/tickets",
        headers=headers,
        json={"campaign": "permits-2005", "text": "x", "kind": "complaint"},
    )
    assert r.status_code == 422
    # The web pages: the desk's intake queue is the one this workflow declares.
    from engine.web_sessions import start_session

    with pctx.unit_of_work() as uow:
        uid = uow.session.scalars(select(User.id).where(User.username == "permit.clerk")).one()
        sid = start_session(uow, uid, now=NOW)
    with client.session_transaction() as sess:
        sess["sid"] = sid
    page = client.get("/desk/categorize?campaign=permits-2005")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "待受理的申请" in html and number in html and "P-0001" not in html  # its queue title
    detail = client.get(f"/tickets/{number}")
    assert detail.status_code == 200 and "take_up" in detail.get_data(as_text=True).lower().replace(
        " ", "_"
    )
    app.extensions["rectiflow.engine"].dispose()


def _validate(path: Path) -> tuple[int, str]:
    from cli import main

    result = CliRunner().invoke(main, ["workflow", "validate", str(path)])
    return result.exit_code, result.output


def test_validate_names_every_problem_by_file_and_item(tmp_path: Path) -> None:
    bad = (
        PERMITS.replace('roles = ["permit_clerk"]', 'roles = ["ghost"]', 1)
        .replace('notify = ["permit_clerk"]', 'notify = ["phantom"]')
        .replace('dest = "decided"', 'dest = "nowhere"')
        .replace("time_limit = { hours = 8 }", "time_limit = { fortnights = 1 }")
    )
    path = tmp_path / "bad.toml"
    path.write_text(bad, encoding="utf-8")
    code, out = _validate(path)
    assert code == 1
    assert f"{path}: state 'applied': time_limit: 'fortnights' is neither a unit" in out
    assert f"{path}: trigger 'decide' (#2): unknown state 'nowhere'" in out
    # The definition's own problems first; fixed, the policy's come out, each named.
    fixed = bad.replace('dest = "nowhere"', 'dest = "decided"').replace(
        "{ fortnights = 1 }", "{ hours = 8 }"
    )
    path.write_text(fixed, encoding="utf-8")
    code, out = _validate(path)
    assert code == 1
    assert f"{path}: trigger 'take_up': unknown role 'ghost'" in out
    assert f"{path}: ladder step #1 notify: unknown role 'phantom'" in out


def test_validate_refuses_non_utf8_and_oversized_files(tmp_path: Path) -> None:
    latin = tmp_path / "latin.toml"
    latin.write_bytes(PERMITS.encode("gbk"))
    code, out = _validate(latin)
    assert code == 1 and f"{latin}: file: is not UTF-8" in out
    big = tmp_path / "big.toml"
    big.write_text(PERMITS + "#" * (MAX_FILE_BYTES + 1), encoding="utf-8")
    code, out = _validate(big)
    assert code == 1 and f"{big}: file: is {big.stat().st_size} bytes" in out


def test_a_workflow_with_an_unknown_role_stops_the_context(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.errors import ConfigError

    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "permits-v1.toml").write_text(PERMITS, encoding="utf-8")
    monkeypatch.setenv("RECTIFLOW_WORKFLOWS_DIR", str(wf))
    with pytest.raises(ConfigError) as caught:
        build_context(engine=engine)
    assert "permits-v1.toml: trigger 'take_up': unknown role 'permit_clerk'" in caught.value.message
    assert "ladder step #1 notify: unknown role 'permit_clerk'" in caught.value.message
