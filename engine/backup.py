"""Backups that restore: an online SQLite copy carrying a checkpoint, and a move to PostgreSQL.

``backup`` copies a live SQLite database with SQLite's online backup API in
one step, i.e. inside one read transaction: writers go on (WAL) and the copy is
the database as of one moment. Next to the copy it writes a checkpoint of the
copy (``FILE.checkpoint``, signed when a checkpoint key is configured) and
verifies the copy's log. ``restore`` proves a copy before it puts it back:
the log verifies and the copy matches its checkpoint. ``copy_database`` moves
an installation between databases (SQLite to PostgreSQL): migrate the target,
copy every table in dependency order in batches, set the sequences, verify.

PostgreSQL is backed up with its own tools (``pg_dump``, base backups); see
the README.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, Integer, create_engine, func, insert, select, text, update
from sqlalchemy.orm import Session

from engine import audit, checkpoint, db
from engine.errors import EngineError
from engine.models import Base

log = logging.getLogger(__name__)

PG_DUMP_HINT = (
    "this database is PostgreSQL: back it up with its own tools, e.g. "
    "`pg_dump --format=custom --file=rectiflow.dump URL` (restore with pg_restore), or a base "
    "backup with WAL archiving for point-in-time recovery; then `rectiflow audit checkpoint` "
    "next to the dump"
)
BATCH = 1000


class BackupError(EngineError):
    """A backup or restore that cannot go ahead: the reason says what to do."""

    code = "backup_refused"


def sqlite_path(engine: Engine) -> Path:
    """The file of a SQLite engine; ``BackupError`` for PostgreSQL or an in-memory database."""
    if engine.dialect.name != "sqlite":
        raise BackupError(PG_DUMP_HINT)
    name = engine.url.database
    if not name or name == ":memory:":
        raise BackupError("an in-memory database has no file to back up")
    return Path(name)


def checkpoint_path(copy: Path) -> Path:
    return copy.with_name(copy.name + ".checkpoint")


@contextmanager
def open_copy(path: Path) -> Iterator[Engine]:
    """A read-only engine on a copied database file (no pragmas, nothing written to it)."""
    if not path.is_file():
        raise BackupError(f"no database file {path}")
    engine = create_engine(
        f"sqlite:///file:{path.resolve()}?mode=ro&uri=true",
        connect_args={"uri": True},
    )
    try:
        yield engine
    finally:
        engine.dispose()


@dataclass(frozen=True)
class BackupResult:
    path: Path
    checkpoint: Path
    tickets: int
    signed_by: str | None
    problems: list[audit.Problem]


def backup(
    engine: Engine,
    dest: Path,
    *,
    now: datetime,
    signing_key: Ed25519PrivateKey | None,
    audit_key: bytes | None,
) -> BackupResult:
    """Copy the live SQLite database of ``engine`` to ``dest`` (which must not exist), write
    its checkpoint next to it and verify the copy's log (problems are returned, the copy
    is kept: a copy of a damaged log is still evidence)."""
    source = sqlite_path(engine)
    cp_file = checkpoint_path(dest)
    for path in (dest, cp_file):
        if path.exists():
            raise BackupError(f"{path} exists; choose a new file name (a backup never overwrites)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    raw = engine.raw_connection()
    try:
        live = raw.driver_connection
        assert isinstance(live, sqlite3.Connection)
        db.wait_when_busy(live)
        target = sqlite3.connect(partial)
        try:
            # pages=-1: the whole database in one step, inside one read transaction, so the
            # copy is one moment of the database while writers carry on in the WAL.
            live.backup(target, pages=-1)
            # A self-contained file: no -wal beside it.
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
    finally:
        raw.close()
    log.info("backup of %s copied to %s", source, partial)
    with open_copy(partial) as copy:
        with copy.connect() as conn:
            written = checkpoint.write_file(
                conn,
                cp_file,
                now=now,
                signing_key=signing_key,
                database=str(dest.name),
            )
        with Session(copy) as session:
            problems = audit.verify(session, key=audit_key)
    partial.replace(dest)
    return BackupResult(dest, cp_file, written.tickets, written.key_id, problems)


@dataclass
class RestoreResult:
    tickets: int
    signed_by: str | None
    key_status: str | None
    problems: list[audit.Problem] = field(default_factory=list)


def prove_copy(
    copy_file: Path, *, trusted: checkpoint.TrustedKeys, audit_key: bytes | None
) -> RestoreResult:
    """A copy's log verifies and the copy matches the checkpoint beside it.

    An unsigned checkpoint is accepted (``signed_by`` None): it shows the copy is
    whole, not who made it. A checkpoint signed by a key not trusted is refused.
    """
    cp_file = checkpoint_path(copy_file)
    if not cp_file.exists():
        raise BackupError(f"{copy_file} has no checkpoint beside it ({cp_file.name}); not restored")
    header = checkpoint.check_file(cp_file, trusted, allow_unsigned=True)
    result = RestoreResult(header.tickets, header.key_id, header.key_status)
    with open_copy(copy_file) as copy:
        with copy.connect() as conn:
            result.problems.extend(checkpoint.compare(conn, cp_file, header))
        with Session(copy) as session:
            result.problems.extend(audit.verify(session, key=audit_key))
    return result


def _has_data(engine: Engine) -> bool:
    path = sqlite_path(engine)
    if not path.exists() or path.stat().st_size == 0:
        return False
    with engine.connect() as conn:
        return bool(
            conn.execute(text("SELECT count(*) FROM sqlite_master WHERE type = 'table'")).scalar()
        )


def restore(
    copy_file: Path,
    engine: Engine,
    *,
    force: bool,
    trusted: checkpoint.TrustedKeys,
    audit_key: bytes | None,
) -> RestoreResult:
    """Put a backup back as the database of ``engine`` (SQLite), after proving it.

    Refuses when the copy does not verify or does not match its checkpoint, and
    when the target already holds a database unless ``force``. The copy is
    written with the backup API through SQLite, so the target's WAL stays
    consistent. Stop ``serve`` and the worker first.
    """
    target = sqlite_path(engine)
    if target.resolve() == copy_file.resolve():
        raise BackupError("the backup and the database are the same file")
    proven = prove_copy(copy_file, trusted=trusted, audit_key=audit_key)
    if proven.problems:
        raise BackupError(
            f"{copy_file} does not verify ({len(proven.problems)} problem(s), first: "
            f"{proven.problems[0].message}); not restored",
            details={"problems": [p.to_dict() for p in proven.problems[:20]]},
        )
    if _has_data(engine) and not force:
        raise BackupError(
            f"{target} already holds a database; stop serve and the worker, keep a backup of it, "
            "and pass --force to overwrite it"
        )
    engine.dispose()
    source = sqlite3.connect(f"file:{copy_file.resolve()}?mode=ro", uri=True)
    try:
        dest = sqlite3.connect(target, timeout=30)
        try:
            source.backup(dest, pages=-1)
        finally:
            dest.close()
    finally:
        source.close()
    with Session(engine) as session:
        proven.problems.extend(audit.verify(session, key=audit_key))
    engine.dispose()
    return proven


# --- moving between databases ---------------------------------------------------------


@dataclass
class CopyResult:
    rows: dict[str, int] = field(default_factory=dict)
    problems: list[audit.Problem] = field(default_factory=list)


def copy_database(
    source: Engine, target: Engine, *, audit_key: bytes | None, batch: int = BATCH
) -> CopyResult:
    """Copy every table of ``source`` into the empty database ``target`` and verify it there.

    Migrates the target to the latest schema first; refuses a target that holds
    any row, and a source not at the latest schema. All rows go in one target
    transaction, in dependency order, ``batch`` at a time; a self-reference
    (a unit's parent) is filled in after its table. PostgreSQL sequences are
    set past the copied ids. Then the target's log is verified.
    """
    db.upgrade(target)
    wanted, have = db.current_revision(target), db.current_revision(source)
    if have != wanted:
        raise BackupError(
            f"the source database is at schema revision {have}, the target at {wanted}: "
            "run `rectiflow init` on the source first"
        )
    tables = Base.metadata.sorted_tables
    with target.connect() as conn:
        for table in tables:
            if conn.execute(select(func.count()).select_from(table)).scalar():
                raise BackupError(
                    f"the target database is not empty (table {table.name} has rows); "
                    "copy only into a new, empty database"
                )
    result = CopyResult()
    with db.read_snapshot(source) as src, target.begin() as dst:
        for table in tables:
            self_refs = [fk.parent.name for fk in table.foreign_keys if fk.column.table is table]
            key = [c for c in table.primary_key.columns]
            rows = src.execute(select(table).order_by(*key).execution_options(yield_per=batch))
            count = 0
            deferred: list[dict[str, Any]] = []
            for chunk in rows.mappings().partitions(batch):
                values = [dict(r) for r in chunk]
                for value in values:
                    if any(value.get(name) is not None for name in self_refs):
                        deferred.append(
                            {"pk": value["id"], **{name: value[name] for name in self_refs}}
                        )
                        for name in self_refs:
                            value[name] = None
                dst.execute(insert(table), values)
                count += len(values)
            for item in deferred:
                dst.execute(
                    update(table)
                    .where(table.c.id == item["pk"])
                    .values({name: item[name] for name in self_refs})
                )
            result.rows[table.name] = count
        if target.dialect.name == "postgresql":
            for table in tables:
                if (
                    "id" in table.c
                    and table.c.id.primary_key
                    and isinstance(table.c.id.type, Integer)
                ):
                    dst.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
                        )
                    )
    with Session(target) as session:
        result.problems = audit.verify(session, key=audit_key)
    return result
