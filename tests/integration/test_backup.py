"""Backups taken while writers write, restored and proven; an installation moved to PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from cli import main
from engine import audit, backup, checkpoint, db
from engine.models import Base, Ticket
from engine.tickets import create_ticket, fire, get_actor
from tests.conftest import PG_ADMIN_URL, _pg_admin, as_uow
from tests.integration.test_audit import _history

CAMPAIGN = "consultation-2005"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = db.make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def trusted(tmp_path: Path) -> tuple[checkpoint.TrustedKeys, Path]:
    private = tmp_path / "keys" / "cp.pem"
    checkpoint.generate_key_pair(private, private.with_name("cp.pem.pub"))
    return checkpoint.TrustedKeys.from_files([private], []), private


class Writer(threading.Thread):
    """Creates and categorizes tickets, one transaction each, until told to stop."""

    def __init__(self, url: str, now) -> None:  # type: ignore[no-untyped-def]
        super().__init__(daemon=True)
        self.engine = db.make_engine(url)
        self.now = now
        self.committed: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        self.warmed_up = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            i = 0
            while not self.stop.is_set():
                with Session(self.engine) as s:
                    clerk = get_actor(s, "clerk")
                    number = create_ticket(
                        as_uow(s), campaign=CAMPAIGN, text=f"load {i}", actor=clerk, now=self.now
                    ).number
                    fired = fire(
                        as_uow(s),
                        number,
                        "categorize",
                        actor=clerk,
                        data={"category": "team_building", "kind": "criticism"},
                        now=self.now + timedelta(minutes=1),
                    )
                    s.commit()
                with self.lock:
                    self.committed.append((number, fired.version))
                i += 1
                if i == 20:
                    self.warmed_up.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            self.warmed_up.set()
        finally:
            self.engine.dispose()

    def snapshot(self) -> list[tuple[str, int]]:
        with self.lock:
            return list(self.committed)


def test_backup_under_load_restores_every_committed_transition(  # type: ignore[no-untyped-def]
    sqlite_url: str, sqlite_engine: Engine, now, tmp_path: Path, trusted
) -> None:
    keys, private = trusted
    _history(sqlite_engine, now)
    writer = Writer(sqlite_url, now)
    writer.start()
    try:
        assert writer.warmed_up.wait(timeout=120)
        before = writer.snapshot()
        result = backup.backup(
            sqlite_engine,
            tmp_path / "copy.db",
            now=now + timedelta(hours=1),
            signing_key=checkpoint.load_private_key(private),
            audit_key=None,
        )
    finally:
        writer.stop.set()
        writer.join(timeout=120)
    assert writer.error is None
    assert result.problems == [] and result.signed_by is not None
    assert 3 + len(before) <= result.tickets <= 3 + len(writer.snapshot())
    assert not (tmp_path / "copy.db-wal").exists()

    target = db.make_engine(f"sqlite:///{tmp_path / 'restored.db'}")
    restored = backup.restore(
        tmp_path / "copy.db", target, force=False, trusted=keys, audit_key=None
    )
    assert restored.problems == [] and restored.key_status == "current"
    with Session(target) as s:
        versions = dict(s.execute(select(Ticket.number, Ticket.version)).all())
        assert audit.verify(s) == []
    target.dispose()
    # Every transition committed before the backup began is in the copy.
    for number, version in before:
        assert versions.get(number, 0) >= version, number
    assert len(versions) == result.tickets


def test_restore_proves_the_copy_and_refuses_to_overwrite_without_force(  # type: ignore[no-untyped-def]
    sqlite_url: str, sqlite_engine: Engine, now, tmp_path: Path, trusted
) -> None:
    keys, private = trusted
    numbers = _history(sqlite_engine, now)
    copy = tmp_path / "copy.db"
    backup.backup(sqlite_engine, copy, now=now, signing_key=None, audit_key=None)
    with pytest.raises(backup.BackupError, match="exists"):
        backup.backup(sqlite_engine, copy, now=now, signing_key=None, audit_key=None)

    # The live database is there: refused without --force.
    with pytest.raises(backup.BackupError, match="--force"):
        backup.restore(copy, sqlite_engine, force=False, trusted=keys, audit_key=None)
    # Work after the backup is undone by a forced restore; the restored log verifies.
    with Session(sqlite_engine) as s:
        create_ticket(
            as_uow(s),
            campaign=CAMPAIGN,
            text="after the backup",
            actor=get_actor(s, "clerk"),
            now=now,
        )
        s.commit()
    done = backup.restore(copy, sqlite_engine, force=True, trusted=keys, audit_key=None)
    assert done.problems == [] and done.signed_by is None
    with Session(sqlite_engine) as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 3
        assert audit.verify(s) == []

    # A copy changed after it was taken does not match its checkpoint: refused.
    with sqlite_engine.connect() as conn:
        tid = conn.execute(
            text("SELECT id FROM tickets WHERE number = :n"), {"n": numbers[0]}
        ).scalar()
    with sqlite3.connect(copy) as raw:  # the intruder edits the copy, not its checkpoint
        raw.execute(f"UPDATE tickets SET last_hash = 'x', state = 'received' WHERE id = {tid}")
    with pytest.raises(backup.BackupError, match="does not verify"):
        backup.restore(
            copy,
            db.make_engine(f"sqlite:///{tmp_path / 'new.db'}"),
            force=False,
            trusted=keys,
            audit_key=None,
        )

    # No checkpoint beside it: refused.
    checkpoint_file = backup.checkpoint_path(copy)
    checkpoint_file.unlink()
    with pytest.raises(backup.BackupError, match="no checkpoint"):
        backup.prove_copy(copy, trusted=keys, audit_key=None)


def test_the_command_line_backs_up_and_restores(
    sqlite_url: str, sqlite_engine: Engine, now, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    _history(sqlite_engine, now)
    sqlite_engine.dispose()
    runner = CliRunner()
    copy = tmp_path / "b.db"
    made = runner.invoke(main, ["--database-url", sqlite_url, "backup", "-o", str(copy)])
    assert made.exit_code == 0, made.output
    assert "backup of 3 tickets" in made.output and "UNSIGNED" in made.output
    assert "the copy's transition log verifies" in made.output
    refused = runner.invoke(main, ["--database-url", sqlite_url, "restore", str(copy)])
    assert refused.exit_code == 2 and "--force" in refused.output
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    put_back = runner.invoke(main, ["--database-url", fresh, "restore", str(copy)])
    assert put_back.exit_code == 0, put_back.output
    assert "the restored transition log verifies" in put_back.output
    assert runner.invoke(main, ["--database-url", fresh, "audit", "verify"]).exit_code == 0


def test_backup_of_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "--database-url",
            "postgresql://nobody@127.0.0.1:1/none",
            "backup",
            "-o",
            str(tmp_path / "x"),
        ],
    )
    assert result.exit_code == 2 and "pg_dump" in result.output
    assert not (tmp_path / "x").exists()


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    admin = _pg_admin()
    if admin is None:
        pytest.skip(f"no PostgreSQL server answers at {PG_ADMIN_URL}")
    name = f"rectiflow_copy_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_copy_from_sqlite_to_postgresql_verifies(  # type: ignore[no-untyped-def]
    sqlite_url: str, sqlite_engine: Engine, now, empty_pg_url: str
) -> None:
    from engine import personal_data

    numbers = _history(sqlite_engine, now)
    with Session(sqlite_engine) as s:
        create_ticket(
            as_uow(s),
            campaign=CAMPAIGN,
            text="with contact",
            actor=get_actor(s, "clerk"),
            now=now,
            citizen_name="Zhao",
        )
        personal_data.erase(
            as_uow(s),
            numbers[0],
            reason="request",
            actor=get_actor(s, "admin"),
            now=now + timedelta(hours=1),
        )
        s.commit()
    runner = CliRunner()
    moved = runner.invoke(main, ["--database-url", sqlite_url, "copy", "--to", empty_pg_url])
    assert moved.exit_code == 0, moved.output
    assert "the target's transition log verifies" in moved.output
    target = db.make_engine(empty_pg_url)
    try:
        with sqlite_engine.connect() as src, target.connect() as dst:
            for table in Base.metadata.sorted_tables:
                count = select(func.count()).select_from(table)
                assert src.execute(count).scalar() == dst.execute(count).scalar(), table.name
        # The sequences were set: new rows get fresh ids and the log still verifies.
        with Session(target) as s:
            create_ticket(
                as_uow(s),
                campaign=CAMPAIGN,
                text="first on PostgreSQL",
                actor=get_actor(s, "clerk"),
                now=now + timedelta(days=1),
            )
            s.commit()
            assert audit.verify(s) == []
    finally:
        target.dispose()
    again = runner.invoke(main, ["--database-url", sqlite_url, "copy", "--to", empty_pg_url])
    assert again.exit_code == 2 and "not empty" in again.output


def test_copy_refuses_a_target_with_data(sqlite_url: str, tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    seeded = db.make_engine(sqlite_url)
    target = db.make_engine(other)
    try:
        backup.copy_database(seeded, target, audit_key=None)  # into an empty SQLite file: fine
        with pytest.raises(backup.BackupError, match="not empty"):
            backup.copy_database(seeded, target, audit_key=None)
    finally:
        seeded.dispose()
        target.dispose()
