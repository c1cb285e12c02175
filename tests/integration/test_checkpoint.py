"""Signed checkpoints find what a consistent rewrite of the database hides from the chains."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text

from cli import main
from engine import checkpoint, db
from engine.audit import Problem
from tests.conftest import as_uow
from tests.integration.test_audit import _history, _tamper, _ticket_id, _verify


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    """An old (retired) and a current key pair."""
    out = {}
    for name in ("old", "new"):
        private, public = tmp_path / f"{name}.pem", tmp_path / f"{name}.pem.pub"
        checkpoint.generate_key_pair(private, public)
        out[name], out[f"{name}.pub"] = private, public
    return out


def _take(engine: Engine, path: Path, now, key_file: Path | None) -> checkpoint.Written:  # type: ignore[no-untyped-def]
    key = checkpoint.load_private_key(key_file) if key_file else None
    with db.read_snapshot(engine) as conn:
        return checkpoint.write_file(conn, path, now=now, signing_key=key)


def _compare(engine: Engine, path: Path, trusted: checkpoint.TrustedKeys) -> list[Problem]:
    header = checkpoint.check_file(path, trusted)
    with db.read_snapshot(engine) as conn:
        return checkpoint.compare(conn, path, header)


def _trust(keys: dict[str, Path]) -> checkpoint.TrustedKeys:
    return checkpoint.TrustedKeys.from_files([keys["new.pub"]], [])


def test_a_checkpoint_of_an_untouched_database_verifies(  # type: ignore[no-untyped-def]
    engine: Engine, now, tmp_path: Path, keys
) -> None:
    numbers = _history(engine, now)
    path = tmp_path / "cp.txt"
    written = _take(engine, path, now, keys["new"])
    assert written.tickets == 3 and written.counters == {"consultation-2005": 3}
    header = checkpoint.check_file(path, _trust(keys))
    assert header.key_status == "current" and header.tickets == 3
    assert path.read_text().splitlines()[1].split("\t")[1] == numbers[0]
    assert _compare(engine, path, _trust(keys)) == []


def test_later_work_on_the_tickets_is_not_a_finding(  # type: ignore[no-untyped-def]
    engine: Engine, now, tmp_path: Path, keys
) -> None:
    from sqlalchemy.orm import Session

    from engine.tickets import create_ticket, fire, get_actor

    numbers = _history(engine, now)
    path = tmp_path / "cp.txt"
    _take(engine, path, now + timedelta(minutes=5), keys["new"])
    with Session(engine) as s:
        fire(
            as_uow(s),
            numbers[0],
            "rectify",
            actor=get_actor(s, "political.officer"),
            data={"measures": "patrols"},
            now=now + timedelta(hours=1),
        )
        create_ticket(
            as_uow(s),
            campaign="consultation-2005",
            text="new",
            actor=get_actor(s, "clerk"),
            now=now,
        )
        s.commit()
    assert _compare(engine, path, _trust(keys)) == []


def test_tail_truncated_with_head_wound_back_is_found(  # type: ignore[no-untyped-def]
    engine: Engine, now, tmp_path: Path, keys
) -> None:
    numbers = _history(engine, now)
    path = tmp_path / "cp.txt"
    _take(engine, path, now + timedelta(minutes=5), keys["new"])
    tid = _ticket_id(engine, numbers[1])
    # The intruder drops the assign row and winds the ticket back to what row 2 left,
    # consistently: the chains alone cannot tell.
    with engine.connect() as conn:
        row2 = conn.execute(
            text(f"SELECT hash, head, at FROM transition_log WHERE ticket_id = {tid} AND seq = 2")
        ).one()
    head = json.loads(row2.head)
    _tamper(
        engine,
        f"DELETE FROM transition_log WHERE ticket_id = {tid} AND seq = 3",
        f"UPDATE tickets SET version = 2, last_hash = '{row2.hash}', state = 'categorized', "
        f"unit_id = {head['unit_id'] if head['unit_id'] is not None else 'NULL'}, "
        f"assignee_id = NULL WHERE id = {tid}",
    )
    assert _verify(engine) == []
    problems = _compare(engine, path, _trust(keys))
    assert [(p.ticket, p.kind, p.log_value, p.row_value) for p in problems] == [
        (numbers[1], "rewound", 3, 2)
    ]
    assert "wound back" in problems[0].message


def test_newest_ticket_deleted_with_the_counter_decremented_is_found(  # type: ignore[no-untyped-def]
    engine: Engine, now, tmp_path: Path, keys
) -> None:
    numbers = _history(engine, now)
    path = tmp_path / "cp.txt"
    _take(engine, path, now + timedelta(minutes=5), keys["new"])
    tid = _ticket_id(engine, numbers[2])
    _tamper(
        engine,
        f"DELETE FROM timers WHERE ticket_id = {tid}",
        f"DELETE FROM notifications WHERE ticket_id = {tid}",
        f"DELETE FROM transition_log WHERE ticket_id = {tid}",
        f"DELETE FROM tickets WHERE id = {tid}",
        "UPDATE campaigns SET ticket_seq = ticket_seq - 1 WHERE code = 'consultation-2005'",
    )
    assert _verify(engine) == []
    found = {(p.ticket, p.kind) for p in _compare(engine, path, _trust(keys))}
    assert found == {(numbers[2], "removed"), ("consultation-2005", "rewound")}


def test_a_rewritten_history_is_found(  # type: ignore[no-untyped-def]
    engine: Engine, now, tmp_path: Path, keys
) -> None:
    """A chain re-forged end to end (possible without an audit key) differs from the checkpoint."""
    numbers = _history(engine, now)
    path = tmp_path / "cp.txt"
    _take(engine, path, now + timedelta(minutes=5), keys["new"])
    tid = _ticket_id(engine, numbers[0])
    _tamper(engine, f"UPDATE tickets SET last_hash = '{'0' * 64}' WHERE id = {tid}")
    kinds = [(p.ticket, p.kind) for p in _compare(engine, path, _trust(keys))]
    assert kinds == [(numbers[0], "rewritten")]


def test_an_altered_or_forged_checkpoint_is_refused(  # type: ignore[no-untyped-def]
    engine: Engine, now, tmp_path: Path, keys
) -> None:
    _history(engine, now)
    path = tmp_path / "cp.txt"
    _take(engine, path, now, keys["new"])
    lines = path.read_text().splitlines(keepends=True)

    # A head line changed: the digest no longer matches.
    altered = tmp_path / "altered.txt"
    number, version = lines[1].split("\t")[1:3]
    altered.write_text("".join([lines[0], lines[1].replace(f"\t{version}\t", "\t9\t"), *lines[2:]]))
    with pytest.raises(checkpoint.CheckpointError, match="altered"):
        checkpoint.check_file(altered, _trust(keys))

    # Digest recomputed, signature made with another key but the trusted key's id kept: forged.
    intruder = Ed25519PrivateKey.generate()
    trailer = json.loads(lines[-1])
    body = "".join([lines[0], lines[1].replace(f"\t{version}\t", "\t9\t"), *lines[2:-1]])
    import hashlib

    trailer["sha256"] = hashlib.sha256(body.encode()).hexdigest()
    trailer["signature"] = base64.b64encode(
        intruder.sign(f"{checkpoint.FORMAT} {trailer['sha256']}".encode())
    ).decode()
    forged = tmp_path / "forged.txt"
    forged.write_text(body + json.dumps(trailer) + "\n")
    with pytest.raises(checkpoint.CheckpointError, match="forged"):
        checkpoint.check_file(forged, _trust(keys))

    # Signed honestly by a key nobody listed.
    unknown = tmp_path / "unknown.txt"
    with db.read_snapshot(engine) as conn, unknown.open("wb") as handle:
        checkpoint.write(conn, handle, now=now, signing_key=intruder)
    with pytest.raises(checkpoint.CheckpointError, match="neither the current"):
        checkpoint.check_file(unknown, _trust(keys))

    # Unsigned: refused unless asked for.
    unsigned = tmp_path / "unsigned.txt"
    _take(engine, unsigned, now, None)
    with pytest.raises(checkpoint.CheckpointError, match="not signed"):
        checkpoint.check_file(unsigned, _trust(keys))
    assert checkpoint.check_file(unsigned, _trust(keys), allow_unsigned=True).key_id is None


def test_a_checkpoint_signed_before_a_key_rotation_still_verifies(  # type: ignore[no-untyped-def]
    engine: Engine, now, tmp_path: Path, keys
) -> None:
    _history(engine, now)
    path = tmp_path / "cp-old.txt"
    _take(engine, path, now, keys["old"])
    # After rotation: the new key is current, the old public key listed as retired.
    rotated = checkpoint.TrustedKeys.from_files([keys["new"]], [keys["old.pub"]])
    header = checkpoint.check_file(path, rotated)
    assert header.key_status == "retired"
    with db.read_snapshot(engine) as conn:
        assert checkpoint.compare(conn, path, header) == []
    # Forgotten in the rotation: refused.
    with pytest.raises(checkpoint.CheckpointError, match="retired"):
        checkpoint.check_file(path, checkpoint.TrustedKeys.from_files([keys["new"]], []))


def test_the_command_line_signs_verifies_and_rotates(sqlite_url: str, tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(main, ["--database-url", sqlite_url, *args], env=env)

    made = run("audit", "keygen", "--private", str(tmp_path / "k1.pem"))
    assert made.exit_code == 0, made.output
    assert (tmp_path / "k1.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k1.pem.pub").exists()
    assert run("audit", "keygen", "--private", str(tmp_path / "k1.pem")).exit_code == 2

    no_key = run("audit", "checkpoint", "-o", str(tmp_path / "cp0.txt"))
    assert no_key.exit_code == 2 and "checkpoint_key_file" in no_key.output

    env1 = {"RECTIFLOW_CHECKPOINT_KEY_FILE": str(tmp_path / "k1.pem")}
    written = run("audit", "checkpoint", "-o", str(tmp_path / "cp1.txt"), env=env1)
    assert written.exit_code == 0 and "signed by key" in written.output, written.output
    ok = run("audit", "verify", "--checkpoint", str(tmp_path / "cp1.txt"), env=env1)
    assert ok.exit_code == 0 and "consistent with the checkpoint" in ok.output, ok.output

    # Rotate: a new key signs from now on; the old public key is listed as retired.
    assert run("audit", "keygen", "--private", str(tmp_path / "k2.pem")).exit_code == 0
    env2 = {
        "RECTIFLOW_CHECKPOINT_KEY_FILE": str(tmp_path / "k2.pem"),
        "RECTIFLOW_CHECKPOINT_RETIRED_KEYS": str(tmp_path / "k1.pem.pub"),
    }
    still = run("audit", "verify", "--checkpoint", str(tmp_path / "cp1.txt"), env=env2)
    assert still.exit_code == 0 and "retired key" in still.output, still.output
    forgotten = run(
        "audit",
        "verify",
        "--checkpoint",
        str(tmp_path / "cp1.txt"),
        env={"RECTIFLOW_CHECKPOINT_KEY_FILE": str(tmp_path / "k2.pem")},
    )
    assert forgotten.exit_code == 2 and "neither the current" in forgotten.output

    # Verifying on another host with only the public key at hand.
    elsewhere = run(
        "audit",
        "verify",
        "--checkpoint",
        str(tmp_path / "cp1.txt"),
        "--public-key",
        str(tmp_path / "k1.pem.pub"),
    )
    assert elsewhere.exit_code == 0, elsewhere.output


def test_the_worker_writes_a_daily_checkpoint(sqlite_url: str, tmp_path: Path, keys) -> None:  # type: ignore[no-untyped-def]
    from cli.context import AppContext
    from cli.scheduler import build_scheduler, run_checkpoint

    app = AppContext(
        overrides={
            "database_url": sqlite_url,
            "checkpoint_key_file": str(keys["new"]),
            "worker": {"checkpoint_dir": str(tmp_path / "daily")},
        },
        now_text="2005-03-01T01:00:00Z",
    )
    scheduler = build_scheduler(app, blocking=False)
    assert scheduler.get_job("checkpoint") is not None
    assert scheduler.get_job("purge") is not None
    path = run_checkpoint(app)
    assert path.parent == tmp_path / "daily" and path.name == "checkpoint-20050301T010000Z.txt"
    assert checkpoint.check_file(path, _trust(keys)).key_status == "current"


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_serve_and_worker_refuse_without_an_audit_key_in_production(
    sqlite_url: str, command: str
) -> None:
    refused = CliRunner().invoke(
        main,
        ["--database-url", sqlite_url, command],
        env={"RECTIFLOW_PRODUCTION": "true", "RECTIFLOW_AUDIT_KEY": ""},
    )
    assert refused.exit_code == 2
    assert "refusing to start with production = true" in refused.output
    assert "NO AUDIT KEY" in refused.output


def test_without_an_audit_key_the_warning_is_loud(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.context import AppContext
    from cli.worker import _check_audit_key

    _check_audit_key(AppContext(overrides={"database_url": sqlite_url, "audit_key": ""}))
    assert "WARNING: NO AUDIT KEY IS SET" in capsys.readouterr().err
    _check_audit_key(AppContext(overrides={"database_url": sqlite_url, "audit_key": "k" * 32}))
    assert capsys.readouterr().err == ""


def _drop_admin_log_guard(conn) -> None:  # type: ignore[no-untyped-def]
    if conn.dialect.name == "sqlite":
        conn.execute(text("DROP TRIGGER admin_log_no_update"))
        conn.execute(text("DROP TRIGGER admin_log_no_delete"))
    else:
        conn.execute(text("ALTER TABLE admin_log DISABLE TRIGGER admin_log_no_change"))


def test_the_admin_log_tail_removed_or_rewritten_is_found(  # type: ignore[no-untyped-def]
    engine: Engine, ctx, now, tmp_path: Path, keys
) -> None:
    """Deleting the admin log's newest rows leaves a chain that verifies; the checkpoint
    remembers its head."""
    from engine import admin, adminlog
    from engine.actors import Actor

    root = Actor(username="operator:test", role="admin")
    for code in ("u1", "u2", "u3"):
        with ctx.unit_of_work() as uow:
            admin.create_unit(uow, root, code=code, name=code, name_zh=code, kind="office")
    path = tmp_path / "cp.txt"
    _take(engine, path, now, keys["new"])
    assert checkpoint.check_file(path, _trust(keys)).admin_head is not None
    assert _compare(engine, path, _trust(keys)) == []
    with ctx.unit_of_work() as uow:  # later administration is not a finding
        admin.create_unit(uow, root, code="u4", name="u4", name_zh="u4", kind="office")
    assert _compare(engine, path, _trust(keys)) == []

    with engine.begin() as conn:
        _drop_admin_log_guard(conn)
        conn.execute(text("DELETE FROM admin_log WHERE seq >= 3"))
    with ctx.unit_of_work() as uow:
        assert adminlog.verify(uow.session, key=ctx.audit_key) == []  # the chain cannot tell
    problems = _compare(engine, path, _trust(keys))
    assert [(p.ticket, p.kind, p.log_value, p.row_value) for p in problems] == [
        ("admin_log", "rewound", 3, 2)
    ]
    assert "newest rows were removed" in problems[0].message

    with engine.begin() as conn:  # put a forged row 3 back: the head's hash differs
        conn.execute(
            text(
                "INSERT INTO admin_log (seq, at, actor, role, action, target, data, prev_hash, "
                "hash) SELECT 3, at, actor, role, action, 'forged', data, hash, :h "
                "FROM admin_log WHERE seq = 2"
            ),
            {"h": "0" * 64},
        )
    kinds = [(p.ticket, p.kind) for p in _compare(engine, path, _trust(keys))]
    assert kinds == [("admin_log", "rewritten")]


def test_the_command_line_finds_a_truncated_admin_log(sqlite_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"RECTIFLOW_CHECKPOINT_KEY_FILE": str(tmp_path / "k.pem")}

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(main, ["--database-url", sqlite_url, *args], env=env)

    assert run("audit", "keygen", "--private", str(tmp_path / "k.pem")).exit_code == 0
    assert run("users", "deactivate", "clerk").exit_code == 0
    assert run("users", "activate", "clerk").exit_code == 0
    assert run("audit", "checkpoint", "-o", str(tmp_path / "cp.txt")).exit_code == 0
    assert run("audit", "verify", "--checkpoint", str(tmp_path / "cp.txt")).exit_code == 0
    engine = db.make_engine(sqlite_url)
    with engine.begin() as conn:
        _drop_admin_log_guard(conn)
        conn.execute(text("DELETE FROM admin_log WHERE seq = 2"))
    engine.dispose()
    assert run("audit", "verify-admin").exit_code == 0  # the chain alone cannot tell
    found = run("audit", "verify", "--checkpoint", str(tmp_path / "cp.txt"))
    assert found.exit_code == 1 and "admin log ends at row 1" in found.output, found.output
