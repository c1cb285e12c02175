"""The administration log: every administrative change, append-only and hash-chained.

One chain for the whole installation, ordered by ``seq``: a row's hash covers
its own fields and the previous row's hash (the first row links to a genesis
value), HMAC'd with the audit key when one is configured, exactly as the
transition log's chains are. ``seq`` is unique, so two administrators writing
at the same moment cannot both extend the chain from the same row: the second
gets a ``Conflict`` and nothing of its change is kept. The database refuses
UPDATE and DELETE on the table (migration 0013); ``verify`` finds a row edited,
deleted, inserted or reordered by someone who got past that.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit import SEPARATOR, canonical_json, format_instant
from engine.context import UnitOfWork
from engine.models import AdminLog
from engine.policy import Who

GENESIS = "genesis" + SEPARATOR + "admin_log"


def _digest(payload: str, key: bytes | None) -> str:
    raw = payload.encode("utf-8")
    if key:
        return hmac.new(key, raw, hashlib.sha256).hexdigest()
    return hashlib.sha256(raw).hexdigest()


def genesis_hash(key: bytes | None = None) -> str:
    return _digest(GENESIS, key)


def entry_hash(
    *,
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    role: str,
    action: str,
    target: str,
    data: str,
    key: bytes | None = None,
) -> str:
    """The hash of one admin log row, chained to ``prev_hash``."""
    payload = SEPARATOR.join(
        (prev_hash, str(seq), format_instant(at), actor, role, action, target, data)
    )
    return _digest(payload, key)


def record(
    uow: UnitOfWork, actor: Who, action: str, target: str, data: dict[str, Any] | None = None
) -> AdminLog:
    """Append one change to the chain inside the caller's transaction (it commits or not
    together with the change it records). Never put a password or a token value in ``data``.

    Every administrator's change comes through here, so here the read cache of units,
    users, categories, routing rules and campaigns learns of it (``read_mostly_changed``).
    """
    uow.read_mostly_changed()
    session = uow.session
    last = session.execute(
        select(AdminLog.seq, AdminLog.hash).order_by(AdminLog.seq.desc()).limit(1)
    ).first()
    seq = (last.seq + 1) if last is not None else 1
    prev = last.hash if last is not None else genesis_hash(uow.audit_key)
    at = uow.now()
    body = canonical_json(data or {})
    row = AdminLog(
        seq=seq,
        at=at,
        actor=actor.username,
        role=actor.role,
        action=action,
        target=target[:200],
        data=body,
        prev_hash=prev,
        hash=entry_hash(
            prev_hash=prev,
            seq=seq,
            at=at,
            actor=actor.username,
            role=actor.role,
            action=action,
            target=target[:200],
            data=body,
            key=uow.audit_key,
        ),
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class AdminProblem:
    seq: int | None
    log_id: int | None
    kind: str  # edited, deleted, inserted, reordered
    message: str


def verify(session: Session, *, key: bytes | None = None) -> list[AdminProblem]:
    """Check the admin log's chain; an empty list when intact.

    Finds a row edited in place (its hash no longer matches its fields), a row
    deleted (a gap in ``seq``, or a link to a hash that is not the row before),
    a row inserted (a link that does not follow), and rows reordered (ids not in
    ``seq`` order)."""
    problems: list[AdminProblem] = []
    prev_hash = genesis_hash(key)
    expected_seq = 1
    last_id = 0
    rows = session.execute(
        select(AdminLog).order_by(AdminLog.seq).execution_options(yield_per=2000)
    )
    for (row,) in rows:
        if row.seq != expected_seq:
            problems.append(
                AdminProblem(
                    row.seq,
                    row.id,
                    "deleted",
                    f"admin log row {expected_seq}"
                    + (f" to {row.seq - 1}" if row.seq - 1 > expected_seq else "")
                    + f" missing before row {row.seq}",
                )
            )
        if row.id < last_id:
            problems.append(
                AdminProblem(
                    row.seq, row.id, "reordered", f"admin log row {row.seq} is out of order"
                )
            )
        if row.prev_hash != prev_hash:
            problems.append(
                AdminProblem(
                    row.seq,
                    row.id,
                    "inserted",
                    f"admin log row {row.seq} does not follow from the row before it",
                )
            )
        computed = entry_hash(
            prev_hash=row.prev_hash,
            seq=row.seq,
            at=row.at,
            actor=row.actor,
            role=row.role,
            action=row.action,
            target=row.target,
            data=row.data,
            key=key,
        )
        if computed != row.hash:
            problems.append(
                AdminProblem(
                    row.seq,
                    row.id,
                    "edited",
                    f"admin log row {row.seq} ({row.action} {row.target}) was changed after it was written",
                )
            )
        prev_hash = row.hash
        expected_seq = row.seq + 1
        last_id = row.id
    return problems
