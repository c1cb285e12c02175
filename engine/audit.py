"""The tamper-evident transition log: hashing, verification and export.

Each ticket's log rows form a chain: a row's hash covers its own fields and
the previous row's hash (the first row links to a genesis value derived from
the ticket number). The ticket row keeps the head of its chain (``version`` =
number of rows, ``last_hash``), so a deleted tail is found too. With an audit
key configured the hash is an HMAC, so someone who can write the database but
not read the configuration cannot forge a consistent chain.

The ticket row is proven by its log: each row records the ticket's state
(``to_state``) and the columns in ``HEAD_COLUMNS`` as they stand after it
(``head``, covered by the row's hash), and verify compares the ticket row with
its last log row, so a change made without a log row is found and named.
Times in a chain only move forward. What a database-level attacker can do
consistently (drop a ticket's newest rows and wind its head back, delete the
newest ticket and decrement the counter) is found against a signed checkpoint
kept outside the database (``engine.checkpoint``).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Campaign, Ticket, TransitionLog

SEPARATOR = "\x1f"
# The ticket columns each log row records as they stand after it (besides the state).
HEAD_COLUMNS = ("unit_id", "assignee_id", "escalation_level", "category", "kind")


# Built once: json.dumps with options builds a new encoder on every call, which costs more
# than encoding a log row's few fields (an import writes one per ticket).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
)


def canonical_json(data: Any) -> str:
    """The one JSON spelling that is hashed and stored: sorted keys, no spaces, UTF-8."""
    return _CANONICAL.encode(data)


def canonical_flat_json(data: dict[str, Any]) -> str:
    """``canonical_json`` of a flat mapping, spelt directly when every value is a string or
    None (a create row's data, a contact commitment: one per imported ticket): the same
    characters, without building an encoder per call as ``JSONEncoder.encode`` does."""
    try:
        return (
            "{"
            + ",".join(
                [
                    f"{_json_string(k)}:{'null' if v is None else _json_string(v)}"
                    for k, v in sorted(data.items())
                ]
            )
            + "}"
        )
    except TypeError:  # a value (or key) that is not a string: the encoder spells it
        return canonical_json(data)


_json_string = json.encoder.encode_basestring  # what _CANONICAL (ensure_ascii=False) uses


@lru_cache(maxsize=4096)  # a batch writes many rows at one instant (a sweep, an import)
def format_instant(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def head_json(values: Any) -> str:
    """The ``head`` of a log row: ``HEAD_COLUMNS`` read from a mapping, as canonical JSON."""
    return _head_json(tuple(values[name] for name in HEAD_COLUMNS))


@lru_cache(maxsize=4096)  # a sweep or an import writes many rows with the same head
def _head_json(head: tuple[Any, ...]) -> str:
    return canonical_json(dict(zip(HEAD_COLUMNS, head, strict=True)))


def genesis_hash(ticket_number: str, key: bytes | None = None) -> str:
    return _digest(f"genesis{SEPARATOR}{ticket_number}", key)


def _digest(payload: str, key: bytes | None) -> str:
    raw = payload.encode("utf-8")
    if key:
        return hmac.digest(key, raw, "sha256").hex()  # hmac.new's result, in one C call
    return hashlib.sha256(raw).hexdigest()


def row_hash(
    *,
    prev_hash: str,
    ticket_number: str,
    seq: int,
    trigger: str,
    from_state: str | None,
    to_state: str,
    actor: str,
    role: str,
    at: datetime,
    reason: str | None,
    data: str,
    workflow_version: int,
    head: str | None = None,
    key: bytes | None = None,
) -> str:
    """The hash of one log row, chained to ``prev_hash``.

    ``head`` joins the payload only when present, so rows written before rows
    carried one keep their hash.
    """
    payload = SEPARATOR.join(
        (
            prev_hash,
            ticket_number,
            str(seq),
            trigger,
            from_state or "",
            to_state,
            actor,
            role,
            format_instant(at),
            reason or "",
            data,
            str(workflow_version),
        )
    )
    if head is not None:
        payload += SEPARATOR + head
    return _digest(payload, key)


@dataclass(frozen=True)
class Problem:
    """One thing verification found wrong, naming the ticket and row."""

    ticket: str
    seq: int | None
    log_id: int | None
    kind: str  # edited, deleted, inserted, reordered, head, unlogged, backdated, rewound...
    message: str
    column: str | None = None  # unlogged: the ticket column that differs from its log
    log_value: Any = None
    row_value: Any = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_HEAD_ATTRS = tuple(getattr(Ticket, name) for name in HEAD_COLUMNS)


def verify(
    session: Session, *, ticket: str | None = None, key: bytes | None = None
) -> list[Problem]:
    """Check every chain (or one ticket's) and return what is wrong; empty when intact.

    Finds a row edited in place (its hash no longer matches), a row deleted (a
    gap in the sequence or a ticket head that points past the end), a row
    inserted (a link that does not follow from the row before, or more rows
    than the ticket's version), rows reordered (ids not in sequence order), a
    row dated before the row it follows (``backdated``), and a ticket row whose
    state or ``HEAD_COLUMNS`` differ from what its last log row says
    (``unlogged``: changed without a log row). Reads in ticket order with a
    streaming cursor, so memory stays flat.
    """
    problems: list[Problem] = []
    tickets = select(
        Ticket.id, Ticket.number, Ticket.version, Ticket.last_hash, Ticket.state, *_HEAD_ATTRS
    ).order_by(Ticket.id)
    logs = select(
        TransitionLog.id,
        TransitionLog.ticket_id,
        TransitionLog.seq,
        TransitionLog.trigger,
        TransitionLog.from_state,
        TransitionLog.to_state,
        TransitionLog.actor,
        TransitionLog.role,
        TransitionLog.at,
        TransitionLog.reason,
        TransitionLog.data,
        TransitionLog.workflow_version,
        TransitionLog.prev_hash,
        TransitionLog.hash,
        TransitionLog.head,
    ).order_by(TransitionLog.ticket_id, TransitionLog.seq, TransitionLog.id)
    if ticket is not None:
        tickets = tickets.where(Ticket.number == ticket)
        logs = logs.join(Ticket, Ticket.id == TransitionLog.ticket_id).where(
            Ticket.number == ticket
        )

    ticket_rows = session.execute(tickets.execution_options(yield_per=2000))
    log_rows = iter(session.execute(logs.execution_options(yield_per=2000)))
    pending = next(log_rows, None)
    for t in ticket_rows:
        # Log rows whose ticket id sorts before this ticket have no ticket at all.
        while pending is not None and pending.ticket_id < t.id:
            problems.append(_orphan(pending))
            pending = next(log_rows, None)
        chain: list[Any] = []
        while pending is not None and pending.ticket_id == t.id:
            chain.append(pending)
            pending = next(log_rows, None)
        found = list(_check_chain(t.number, t.version, t.last_hash, chain, key))
        if chain and not any(p.kind in _BROKEN_CHAIN for p in found):
            found.extend(_check_ticket_row(t, chain[-1]))
        problems.extend(found)
    while pending is not None:
        if ticket is None:
            problems.append(_orphan(pending))
        pending = next(log_rows, None)
    if ticket is None:
        problems.extend(_check_numbering(session))
    return problems


# When the chain itself is broken its last row proves nothing about the ticket row.
_BROKEN_CHAIN = frozenset({"edited", "deleted", "inserted", "reordered", "head"})


def _check_ticket_row(ticket: Any, last: Any) -> Iterator[Problem]:
    """The ticket row must be what its last log row left: the state, and the head columns."""
    number = ticket.number
    expected: dict[str, Any] = {"state": last.to_state}
    if last.head is not None:
        expected.update(json.loads(last.head))
    for column, log_value in expected.items():
        row_value = getattr(ticket, column)
        if row_value != log_value:
            yield Problem(
                number,
                last.seq,
                last.id,
                "unlogged",
                f"{number}: {column} is {row_value!r} on the ticket row but its log "
                f"(row seq {last.seq}) says {log_value!r}: changed without a log row",
                column=column,
                log_value=log_value,
                row_value=row_value,
            )


def _check_numbering(session: Session) -> Iterator[Problem]:
    """Every number a campaign's counter issued still exists, and no ticket has a number it did not issue.

    The per-ticket chains cannot see a ticket deleted together with all its log rows;
    the campaign's counter can: numbers run 1..ticket_seq without gaps. A bitmap of
    one bit per issued number keeps memory small at a million tickets.
    """
    campaigns = session.execute(
        select(Campaign.id, Campaign.code, Campaign.number_prefix, Campaign.ticket_seq)
    ).all()
    for camp in campaigns:
        issued = int(camp.ticket_seq or 0)
        seen = bytearray((issued >> 3) + 1)
        prefix = f"{camp.number_prefix}-"
        numbers = session.execute(
            select(Ticket.number)
            .where(Ticket.campaign_id == camp.id)
            .execution_options(yield_per=5000)
        ).scalars()
        for number in numbers:
            tail = number[len(prefix) :] if number.startswith(prefix) else ""
            n = int(tail) if tail.isdigit() else 0
            if not 1 <= n <= issued:
                yield Problem(
                    number,
                    None,
                    None,
                    "inserted",
                    f"{number}: campaign {camp.code} never issued this number "
                    f"(its counter stands at {issued})",
                )
                continue
            seen[n >> 3] |= 1 << (n & 7)
        for n in range(1, issued + 1):
            if not seen[n >> 3] & (1 << (n & 7)):
                number = f"{prefix}{n:04d}"
                yield Problem(
                    number,
                    None,
                    None,
                    "deleted",
                    f"{number}: issued by campaign {camp.code} but missing from the database "
                    "(the ticket was deleted with its log)",
                )


def _orphan(row: Any) -> Problem:
    return Problem(
        ticket=f"#{row.ticket_id}",
        seq=row.seq,
        log_id=row.id,
        kind="inserted",
        message=f"log row {row.id} belongs to ticket id {row.ticket_id}, which does not exist",
    )


def _check_chain(
    number: str, version: int, last_hash: str, chain: list[Any], key: bytes | None
) -> Iterator[Problem]:
    prev = genesis_hash(number, key)
    expected_seq = 1
    last_id = 0
    last_at: datetime | None = None
    for row in chain:
        if last_at is not None and row.at < last_at:
            yield Problem(
                number,
                row.seq,
                row.id,
                "backdated",
                f"{number}: row seq {row.seq} (id {row.id}) is dated {format_instant(row.at)}, "
                f"before the row it follows ({format_instant(last_at)})",
            )
        last_at = row.at if last_at is None else max(last_at, row.at)
        if row.seq > expected_seq:
            missing = ", ".join(str(s) for s in range(expected_seq, row.seq))
            yield Problem(
                number, expected_seq, None, "deleted", f"{number}: row(s) seq {missing} are missing"
            )
        elif row.seq < expected_seq:
            yield Problem(
                number, row.seq, row.id, "inserted", f"{number}: seq {row.seq} appears twice"
            )
        if row.id < last_id:
            yield Problem(
                number,
                row.seq,
                row.id,
                "reordered",
                f"{number}: row seq {row.seq} (id {row.id}) was written before the row it follows",
            )
        computed = row_hash(
            prev_hash=row.prev_hash,
            ticket_number=number,
            seq=row.seq,
            trigger=row.trigger,
            from_state=row.from_state,
            to_state=row.to_state,
            actor=row.actor,
            role=row.role,
            at=row.at,
            reason=row.reason,
            data=row.data,
            workflow_version=row.workflow_version,
            head=row.head,
            key=key,
        )
        if computed != row.hash:
            yield Problem(
                number,
                row.seq,
                row.id,
                "edited",
                f"{number}: row seq {row.seq} (id {row.id}) does not match its hash: it was edited",
            )
        elif row.prev_hash != prev and row.seq == expected_seq:
            yield Problem(
                number,
                row.seq,
                row.id,
                "inserted",
                f"{number}: row seq {row.seq} (id {row.id}) does not link to the row before it",
            )
        prev = row.hash
        expected_seq = row.seq + 1
        last_id = max(last_id, row.id)
    rows = len(chain)
    if version > rows:
        yield Problem(
            number,
            rows + 1,
            None,
            "deleted",
            f"{number}: the ticket is at version {version} but its log ends at row {rows}",
        )
    elif version < rows:
        yield Problem(
            number,
            version + 1,
            None,
            "inserted",
            f"{number}: the ticket is at version {version} but its log has {rows} rows",
        )
    elif rows and last_hash != prev:
        yield Problem(
            number,
            rows,
            chain[-1].id,
            "head",
            f"{number}: the last row's hash does not match the head kept on the ticket",
        )


# The transition log's columns besides its ids: written once, read by the writer (the
# ledger's inserts) and by the export.
LOG_FIELDS = (
    "seq",
    "trigger",
    "from_state",
    "to_state",
    "actor",
    "role",
    "at",
    "reason",
    "data",
    "workflow_version",
    "prev_hash",
    "hash",
    "head",
)
EXPORT_FIELDS = ("ticket", *LOG_FIELDS)


def iter_log(session: Session, *, ticket: str | None = None) -> Iterator[dict[str, Any]]:
    """Every log row as a plain dict, in ticket and sequence order, streamed."""
    query = (
        select(Ticket.number, TransitionLog)
        .join(Ticket, Ticket.id == TransitionLog.ticket_id)
        .order_by(TransitionLog.ticket_id, TransitionLog.seq)
    )
    if ticket is not None:
        query = query.where(Ticket.number == ticket)
    for number, row in session.execute(query.execution_options(yield_per=2000)):
        yield {
            "ticket": number,
            "seq": row.seq,
            "trigger": row.trigger,
            "from_state": row.from_state,
            "to_state": row.to_state,
            "actor": row.actor,
            "role": row.role,
            "at": format_instant(row.at),
            "reason": row.reason,
            "data": row.data,
            "workflow_version": row.workflow_version,
            "prev_hash": row.prev_hash,
            "hash": row.hash,
            "head": row.head,
        }


def export(rows: Iterable[dict[str, Any]], out: IO[str], fmt: str) -> int:
    """Write rows as ``csv`` or ``jsonl``; return how many. CSV cells are formula-safe."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: safe_cell(v) for k, v in row.items()})
            count += 1
    elif fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    else:
        from engine.errors import ValidationError

        raise ValidationError(f"unknown export format {fmt!r}; use csv or jsonl")
    return count


def safe_cell(value: Any) -> Any:
    """Neutralise spreadsheet formula injection (=, +, -, @, tab, CR at the start)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
