"""``rectiflow users|units|campaigns|routing|workflows`` and ``audit verify-admin`` on a seeded
SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main


@pytest.fixture
def run(sqlite_url: str):  # type: ignore[no-untyped-def]
    def _run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, ["--database-url", sqlite_url, *args], input=input)

    return _run


def test_users_create_refuses_a_taken_name_and_a_weak_password(run) -> None:  # type: ignore[no-untyped-def]
    made = run("users", "create", "wang.fang", "--role", "clerk", "--password", "Spring-rain-2026")
    assert made.exit_code == 0, made.output
    assert "must change the password" in made.output
    taken = run("users", "create", "wang.fang", "--role", "clerk", "--password", "Spring-rain-2026")
    assert taken.exit_code == 2 and "is taken" in taken.output
    weak = run("users", "create", "li.na", "--role", "clerk", "--password", "123")
    assert weak.exit_code == 2 and "too short" in weak.output
    listed = run("users", "list").output
    assert "wang.fang\tClerk" in listed and "li.na" not in listed


def test_as_a_non_admin_is_refused(run) -> None:  # type: ignore[no-untyped-def]
    out = run("units", "create", "x1", "--name", "X", "--name-zh", "X", "--as", "supervisor")
    assert out.exit_code == 2 and "needs the role Administrator" in out.output


def test_units_move_loop_is_refused_and_the_log_verifies(run) -> None:  # type: ignore[no-untyped-def]
    assert (
        run(
            "units",
            "create",
            "east",
            "--name",
            "East",
            "--name-zh",
            "东区",
            "--parent",
            "luohe-station",
        ).exit_code
        == 0
    )
    loop = run("units", "update", "luohe-station", "--parent", "east")
    assert loop.exit_code == 2 and "sub-units" in loop.output
    tree = run("units", "list").output
    assert "\n    east\t" in tree or "    east\t" in tree
    verified = run("audit", "verify-admin")
    assert verified.exit_code == 0 and "admin log intact (1 change(s))" in verified.output


def test_campaigns_load_list_close(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.toml"
    path.write_text(
        'code = "c2026"\nname = { zh_CN = "春季", en = "Spring 2026" }\ntimezone = "Asia/Shanghai"\n'
        "starts_on = 2026-03-01\nends_on = 2026-04-30\nrectification_deadline = 2026-04-15\n"
        'number_prefix = "C26"\n\n[[categories]]\ncode = "traffic_management"\n'
        'name = { zh_CN = "交通管理", en = "Traffic management" }\n'
    )
    loaded = run("campaign", "load", str(path))
    assert loaded.exit_code == 0 and "c2026: campaign 'Spring 2026'" in loaded.output
    assert "c2026\tMar 1, 2026 – Apr 30, 2026" in run("campaign", "list").output
    closed = run("campaign", "close", "c2026")
    assert closed.exit_code == 0
    assert "intake closed" in run("campaign", "list").output
    # The administration's former group, kept one release as a hidden alias.
    alias = run("campaigns", "list")
    assert alias.exit_code == 0 and "now `rectiflow campaign`" in alias.output
    # Both changes are in the administration log, and it verifies.
    verified = run("audit", "verify-admin")
    assert verified.exit_code == 0 and "admin log intact (2 change(s))" in verified.output
    made = run("ticket", "create", "--campaign", "c2026", "--text", "late opinion")
    assert made.exit_code == 2 and "closed" in made.output


def test_routing_and_workflows(run) -> None:  # type: ignore[no-untyped-def]
    added = run("routing", "add", "--unit", "luohe-station", "--area", "New town")
    assert added.exit_code == 0, added.output
    assert "area New town\t→ Luohe Police Station" in run("routing", "list").output
    listed = run("workflow", "list").output
    assert "consultation v1" in listed and "campaigns: consultation-2005" in listed
    # The administration's former group, kept one release as a hidden alias.
    alias = run("workflows", "list")
    assert alias.exit_code == 0 and "consultation v1" in alias.output
    assert "now `rectiflow workflow`" in alias.output


def test_serve_on_a_busy_port_is_one_line_of_error(run) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = run("serve", "--port", str(port), "--no-worker")
    assert out.exit_code == 2
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in out.output


def test_extensions_from_the_command_line(run) -> None:  # type: ignore[no-untyped-def]
    now = ["--now", "2005-02-28T10:00:00+08:00"]
    made = run(*now, "ticket", "create", "--campaign", "consultation-2005", "--text", "dark lane")
    number = next(w for w in made.output.split() if w.startswith("2005-"))
    fired = run(*now, "ticket", "fire", number, "categorize", "--as", "clerk",
                "--data", "category=law_enforcement", "--data", "kind=criticism")  # fmt: skip
    assert fired.exit_code == 0, fired.output
    fired = run(*now, "ticket", "fire", number, "assign", "--as", "supervisor",
                "--data", "unit=luohe-station", "--data", "officer=luohe.officer")  # fmt: skip
    assert fired.exit_code == 0, fired.output
    no_reason = run(*now, "ticket", "extend", number, "--to", "2005-03-15", "--reason", " ",
                    "--as", "luohe.officer")  # fmt: skip
    assert no_reason.exit_code == 2
    other_unit = run(*now, "ticket", "extend", number, "--to", "2005-03-15", "--reason", "x",
                     "--as", "legal.officer")  # fmt: skip
    assert other_unit.exit_code == 2 and "belongs to" in other_unit.output
    asked = run(*now, "ticket", "extend", number, "--to", "2005-03-15",
                "--reason", "Waiting for the lamp parts.", "--as", "luohe.officer")  # fmt: skip
    assert asked.exit_code == 0, asked.output
    # The end of 15 March in Shanghai (the campaign's time): midnight before the 16th.
    assert "due Mar 16, 2005, 00:00 asked" in asked.output
    ext_id = asked.output.split()[2]
    assert f"{ext_id}\t{number}\tluohe.officer" in run(*now, "extension", "list").output
    refused = run(*now, "extension", "refuse", ext_id, "--as", "luohe.officer", "--note", "no")
    assert refused.exit_code == 2
    approved = run(*now, "extension", "approve", ext_id, "--as", "supervisor")
    assert approved.exit_code == 0, approved.output
    assert "approved by supervisor: due Mar 16, 2005, 00:00" in approved.output
    assert "no extension request is waiting" in run(*now, "extension", "list").output


def test_users_password_and_deactivate_are_in_the_admin_log(run, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from engine import db

    assert run("users", "password", "clerk", "--password", "a long new password").exit_code == 0
    assert run("users", "deactivate", "luohe.officer", "--as", "admin").exit_code == 0
    assert run("users", "activate", "luohe.officer").exit_code == 0
    refused = run("users", "deactivate", "nobody.here")
    assert refused.exit_code == 2
    engine = db.make_engine(sqlite_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT seq, actor, action, target, data FROM admin_log ORDER BY seq")
        ).all()
    assert [(r.action, r.target) for r in rows] == [
        ("user.set_password", "clerk"),
        ("user.deactivate", "luohe.officer"),
        ("user.activate", "luohe.officer"),
    ]  # the refused command left nothing
    assert rows[0].actor.startswith("operator:") and rows[1].actor == "admin"
    assert "long" not in rows[0].data  # never the password
    verified = run("audit", "verify-admin")
    assert verified.exit_code == 0 and "admin log intact (3 change(s))" in verified.output
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER admin_log_no_update"))
        conn.execute(text("UPDATE admin_log SET target = 'supervisor' WHERE seq = 2"))
    engine.dispose()
    tampered = run("audit", "verify-admin")
    assert tampered.exit_code == 1 and "row 2" in tampered.output, tampered.output
