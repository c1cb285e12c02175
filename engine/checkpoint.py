"""Signed checkpoints: every chain head and ticket counter, kept outside the database.

The hash chains prove that no log row was edited, inserted or reordered, but an
intruder who writes the database can still *shorten* history consistently:
drop a ticket's newest log rows and wind its version, head and columns back,
or delete the newest ticket and decrement its campaign's counter. A checkpoint
taken earlier and kept elsewhere remembers what existed: ``verify`` finds every
ticket that is gone, wound back or rewritten since, and every counter that went
down.

A checkpoint is a text file, written and read as a stream (a million tickets
is a file of ~90 MB and flat memory):

- line 1, a JSON header: format, time taken, database, the campaign counters and the
  admin log's head (its last ``seq`` and that row's hash), so removing the admin log's
  newest rows (which its chain alone cannot show) is found too;
- one line per ticket in id order: ``id<TAB>number<TAB>version<TAB>last_hash``;
- a last JSON line: the number of tickets, the SHA-256 of everything before
  it, and an Ed25519 signature over that digest with the id of the signing key.

The private key lives in a file outside the database (``checkpoint_key_file``);
verifying needs only public keys: the current key's and those listed as
retired (``checkpoint_retired_keys``), so checkpoints signed before a key
rotation keep verifying.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from engine.audit import Problem, format_instant
from engine.clock import ensure_utc
from engine.errors import EngineError
from engine.models import AdminLog, Campaign, Ticket, TransitionLog

FORMAT = "rectiflow-checkpoint/1"


class CheckpointError(EngineError):
    """A checkpoint file or key that cannot be trusted or read: forged, unknown key, damaged."""

    code = "checkpoint_invalid"


# --- keys -----------------------------------------------------------------------------


def generate_key_pair(private_path: Path, public_path: Path) -> str:
    """Write a new Ed25519 key pair as PEM files (the private one readable by its owner
    only); refuse to overwrite either. Returns the new key's id."""
    for path in (private_path, public_path):
        if path.exists():
            raise CheckpointError(f"{path} exists; move it away first (a key is never overwritten)")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key_id(key.public_key())


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name of a public key: the first 16 hex digits of SHA-256 of its bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"cannot read the checkpoint signing key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key from a PEM file; a private key file gives its public half."""
    data = path.read_bytes() if path.exists() else None
    if data is None:
        raise CheckpointError(f"no key file {path}")
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"cannot read the public key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{path} is not an Ed25519 public key")
    return key


@dataclass
class TrustedKeys:
    """The public keys a checkpoint may be signed with, by key id, each marked current or retired."""

    keys: dict[str, tuple[Ed25519PublicKey, str]] = field(default_factory=dict)

    def add(self, key: Ed25519PublicKey, status: str) -> None:
        self.keys.setdefault(key_id(key), (key, status))

    @classmethod
    def from_files(cls, current: Iterable[Path], retired: Iterable[Path]) -> TrustedKeys:
        trusted = cls()
        for path in current:
            trusted.add(load_public_key(path), "current")
        for path in retired:
            trusted.add(load_public_key(path), "retired")
        return trusted


def trusted_keys(settings: Any, extra: Iterable[Path] = ()) -> TrustedKeys:
    """The current key (``checkpoint_key_file``, its public half), the retired ones
    (``checkpoint_retired_keys``, comma-separated public key files) and ``extra``."""
    from engine.settings import project_path

    current = [project_path(p) for p in _paths(settings.get("checkpoint_key_file"))]
    current.extend(extra)
    retired = [project_path(p) for p in _paths(settings.get("checkpoint_retired_keys"))]
    return TrustedKeys.from_files(current, retired)


def signing_key(settings: Any) -> Ed25519PrivateKey | None:
    """The private key named by ``checkpoint_key_file``; None when none is configured."""
    from engine.settings import project_path

    paths = _paths(settings.get("checkpoint_key_file"))
    return load_private_key(project_path(paths[0])) if paths else None


def _paths(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value if str(v).strip()]


def _signed_message(digest: str) -> bytes:
    return f"{FORMAT} {digest}".encode("ascii")


_ADMIN_HEAD = select(AdminLog.seq, AdminLog.hash).order_by(AdminLog.seq.desc()).limit(1)
_ADMIN_HASH_AT = select(AdminLog.hash).where(AdminLog.seq == bindparam("seq"))


# --- writing --------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    tickets: int
    counters: dict[str, int]
    taken_at: datetime
    key_id: str | None
    sha256: str


def write(
    conn: Connection,
    out: IO[bytes],
    *,
    now: datetime,
    signing_key: Ed25519PrivateKey | None,
    database: str = "",
) -> Written:
    """Stream a checkpoint of the database ``conn`` reads into ``out``.

    ``conn`` should be in one read snapshot (``engine.db.read_snapshot``) so the
    heads and counters are of one moment. Without ``signing_key`` the file is
    unsigned: it still shows what changed, but proves nothing against someone
    who can also replace the file.
    """
    now = ensure_utc(now)
    digest = hashlib.sha256()

    def emit(line: str) -> None:
        raw = (line + "\n").encode("utf-8")
        digest.update(raw)
        out.write(raw)

    counters = {
        code: int(seq or 0)
        for code, seq in conn.execute(
            select(Campaign.code, Campaign.ticket_seq).order_by(Campaign.code)
        )
    }
    admin_head = conn.execute(_ADMIN_HEAD).first()
    header = {
        "format": FORMAT,
        "taken_at": format_instant(now),
        "database": database,
        "counters": counters,
        "admin_log": (
            {"seq": admin_head.seq, "hash": admin_head.hash} if admin_head is not None else None
        ),
    }
    emit(json.dumps(header, sort_keys=True, ensure_ascii=False))
    count = 0
    heads = conn.execute(
        select(Ticket.id, Ticket.number, Ticket.version, Ticket.last_hash)
        .order_by(Ticket.id)
        .execution_options(yield_per=5000)
    )
    for tid, number, version, last_hash in heads:
        emit(f"{tid}\t{number}\t{version}\t{last_hash}")
        count += 1
    hexdigest = digest.hexdigest()
    trailer: dict[str, Any] = {"tickets": count, "sha256": hexdigest, "key_id": None}
    if signing_key is not None:
        trailer["key_id"] = key_id(signing_key.public_key())
        trailer["signature"] = base64.b64encode(
            signing_key.sign(_signed_message(hexdigest))
        ).decode("ascii")
    out.write((json.dumps(trailer, sort_keys=True) + "\n").encode("utf-8"))
    return Written(count, counters, now, trailer["key_id"], hexdigest)


def write_file(
    conn: Connection,
    path: Path,
    *,
    now: datetime,
    signing_key: Ed25519PrivateKey | None,
    database: str = "",
) -> Written:
    """``write`` to ``path`` through a temporary file, so a crash leaves no half checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as handle:
        written = write(conn, handle, now=now, signing_key=signing_key, database=database)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
    return written


# --- reading and verifying ------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    taken_at: str
    database: str
    counters: dict[str, int]
    tickets: int
    key_id: str | None
    key_status: str | None  # current, retired, or None when unsigned
    # The admin log's (seq, hash) at the checkpoint; None when it was empty or the file
    # predates admin log heads.
    admin_head: tuple[int, str] | None = None


def check_file(path: Path, trusted: TrustedKeys, *, allow_unsigned: bool = False) -> Header:
    """Read the whole file once: its digest must match and its signature verify under a
    trusted key. Raises ``CheckpointError`` saying what is wrong."""
    digest = hashlib.sha256()
    first: bytes | None = None
    previous: bytes | None = None
    lines = 0
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CheckpointError(f"cannot read the checkpoint {path}: {exc.strerror}") from None
    with handle:
        for raw in handle:
            if previous is not None:
                digest.update(previous)
                lines += 1
            if first is None:
                first = raw
            previous = raw
    if first is None or previous is None or first is previous:
        raise CheckpointError(f"{path} is not a checkpoint (empty or truncated)")
    try:
        header = json.loads(first)
        trailer = json.loads(previous)
    except ValueError:
        raise CheckpointError(f"{path} is not a checkpoint (damaged header or trailer)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} file")
    if trailer.get("sha256") != digest.hexdigest() or trailer.get("tickets") != lines - 1:
        raise CheckpointError(
            f"{path} was altered after it was written: its contents do not match its digest"
        )
    kid = trailer.get("key_id")
    status = None
    if kid is None:
        if not allow_unsigned:
            raise CheckpointError(
                f"{path} is not signed; an unsigned checkpoint proves nothing against someone "
                "who could also rewrite it (use --allow-unsigned to compare anyway)"
            )
    else:
        found = trusted.keys.get(kid)
        if found is None:
            raise CheckpointError(
                f"{path} is signed by key {kid}, which is neither the current checkpoint key "
                "nor a retired one listed in checkpoint_retired_keys"
            )
        public_key, status = found
        try:
            signature = base64.b64decode(str(trailer.get("signature", "")), validate=True)
            public_key.verify(signature, _signed_message(digest.hexdigest()))
        except (InvalidSignature, ValueError):
            raise CheckpointError(
                f"{path}: the signature does not verify under key {kid}: the file is forged"
            ) from None
    return Header(
        taken_at=str(header.get("taken_at")),
        database=str(header.get("database", "")),
        counters={str(k): int(v) for k, v in dict(header.get("counters", {})).items()},
        tickets=int(trailer["tickets"]),
        key_id=kid,
        key_status=status,
        admin_head=_admin_head(header.get("admin_log")),
    )


def _admin_head(value: Any) -> tuple[int, str] | None:
    if not isinstance(value, dict):
        return None
    return int(value["seq"]), str(value["hash"])


def _heads(path: Path) -> Iterator[tuple[int, str, int, str]]:
    with path.open("r", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                return  # the trailer
            yield int(parts[0]), parts[1], int(parts[2]), parts[3]


_HASH_AT = select(TransitionLog.hash).where(
    TransitionLog.ticket_id == bindparam("tid"), TransitionLog.seq == bindparam("seq")
)


def compare(conn: Connection, path: Path, header: Header) -> list[Problem]:
    """What was removed, wound back or rewritten since the checkpoint at ``path``
    (already checked by ``check_file``). Streams the file and the tickets side by side."""
    problems: list[Problem] = []
    when = header.taken_at
    counters = dict(
        conn.execute(select(Campaign.code, Campaign.ticket_seq).order_by(Campaign.code)).all()
    )
    for code, recorded in sorted(header.counters.items()):
        if code not in counters:
            problems.append(
                Problem(
                    code,
                    None,
                    None,
                    "removed",
                    f"campaign {code} (in the checkpoint of {when}) is gone",
                )
            )
        elif int(counters[code] or 0) < recorded:
            problems.append(
                Problem(
                    code,
                    None,
                    None,
                    "rewound",
                    f"campaign {code}'s ticket counter stands at {counters[code]} but was "
                    f"{recorded} at the checkpoint of {when}: numbers it had issued were taken back",
                    column="ticket_seq",
                    log_value=recorded,
                    row_value=counters[code],
                )
            )
    problems.extend(_compare_admin_log(conn, header))
    result = conn.execute(
        select(Ticket.id, Ticket.number, Ticket.version, Ticket.last_hash)
        .order_by(Ticket.id)
        .execution_options(yield_per=5000)
    )
    try:
        _compare_tickets(conn, iter(result), path, when, problems)
    finally:
        result.close()  # tickets created since the checkpoint are left unread
    return problems


def _compare_admin_log(conn: Connection, header: Header) -> list[Problem]:
    """The admin log's row at the recorded head must still be there with the recorded hash:
    its newest rows removed (``rewound``) or its chain re-forged (``rewritten``) is found."""
    if header.admin_head is None:
        return []
    seq, recorded = header.admin_head
    when = header.taken_at
    now_head = conn.execute(_ADMIN_HEAD).first()
    last = now_head.seq if now_head is not None else 0
    if last < seq:
        return [
            Problem(
                "admin_log",
                seq,
                None,
                "rewound",
                f"the admin log ends at row {last} but had row {seq} at the checkpoint of "
                f"{when}: its newest rows were removed",
                column="seq",
                log_value=seq,
                row_value=last,
            )
        ]
    if conn.execute(_ADMIN_HASH_AT, {"seq": seq}).scalar() != recorded:
        return [
            Problem(
                "admin_log",
                seq,
                None,
                "rewritten",
                f"the admin log's row {seq} is not the one in the checkpoint of {when}: "
                "its history up to the checkpoint was rewritten",
            )
        ]
    return []


def _compare_tickets(
    conn: Connection, rows: Iterator[Any], path: Path, when: str, problems: list[Problem]
) -> None:
    current = next(rows, None)
    for tid, number, version, head in _heads(path):
        while current is not None and current.id < tid:
            problems.append(_unrecorded(current, when))
            current = next(rows, None)
        if current is None or current.id != tid:
            problems.append(
                Problem(
                    number,
                    None,
                    None,
                    "removed",
                    f"{number}: at version {version} in the checkpoint of {when}, now gone "
                    "(the ticket was deleted with its log)",
                )
            )
            continue
        problems.extend(_compare_head(conn, current, number, version, head, when))
        current = next(rows, None)
    # Tickets after the last recorded id were created since; nothing to compare.


def _unrecorded(row: Any, when: str) -> Problem:
    return Problem(
        row.number,
        None,
        None,
        "inserted",
        f"{row.number}: its id {row.id} is older than tickets in the checkpoint of {when}, "
        "yet the checkpoint does not have it (put in behind the log's back)",
    )


def _compare_head(
    conn: Connection, row: Any, number: str, version: int, head: str, when: str
) -> Iterator[Problem]:
    if row.number != number:
        yield Problem(
            number,
            None,
            None,
            "rewritten",
            f"{number}: its row (id {row.id}) now carries the number {row.number}",
        )
        return
    if row.version < version:
        yield Problem(
            number,
            row.version + 1,
            None,
            "rewound",
            f"{number}: at version {version} in the checkpoint of {when}, now at version "
            f"{row.version}: its newest log rows were removed and its head wound back",
            column="version",
            log_value=version,
            row_value=row.version,
        )
        return
    recorded = row.last_hash if row.version == version else None
    if recorded is None:
        recorded = conn.execute(_HASH_AT, {"tid": row.id, "seq": version}).scalar()
    if recorded != head:
        yield Problem(
            number,
            version,
            None,
            "rewritten",
            f"{number}: its log row seq {version} is not the one in the checkpoint of {when}: "
            "the history up to the checkpoint was rewritten",
        )
