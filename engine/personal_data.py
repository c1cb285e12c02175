"""Citizen contact data: kept apart from the log, erased after its retention period or on request.

The citizen's name, contact (phone, e-mail) and address live on the ticket row,
never in the transition log. The create log row holds only a salted commitment,
HMAC-SHA256 over the canonical contact data keyed by a random per-ticket salt
kept beside the data (``tickets.contact_salt``): while both exist anyone holding
them can prove the log row was written for this data; once both are erased the
commitment links to nobody, and the log still verifies because nothing hashed
changed. The erasure itself is a log event on the ticket (``personal_data_erased``).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.clock import ensure_utc
from engine.context import UnitOfWork
from engine.errors import NotFound, ValidationError
from engine.ledger import declare_event
from engine.models import Campaign, Ticket

log = logging.getLogger(__name__)

CONTACT_COLUMNS = ("citizen_name", "citizen_contact", "address")
ERASED_EVENT = "personal_data_erased"
declare_event(ERASED_EVENT, *CONTACT_COLUMNS, "contact_salt", "personal_data_erased_at")
REASON_MAX = 500
# Who may erase is the policy's (config/policy.toml): supervisors and admins on request,
# the system when retention ends.
ERASE_PERMISSION = "personal_data.erase"


@dataclass(frozen=True)
class ContactCommitment:
    salt: str
    commitment: str


def _canonical_contact(name: str | None, contact: str | None, address: str | None) -> bytes:
    from engine.audit import canonical_flat_json

    return canonical_flat_json({"address": address, "contact": contact, "name": name}).encode(
        "utf-8"
    )


def new_salts(n: int) -> list[str]:
    """``n`` fresh contact salts (16 random bytes each, as hex) from one read of the
    random source (an import draws a batch's at once)."""
    raw = secrets.token_hex(16 * n)
    return [raw[at : at + 32] for at in range(0, 32 * n, 32)]


def commit_contact(
    *,
    name: str | None,
    contact: str | None,
    address: str | None,
    new_salt: Callable[[], str] | None = None,
) -> ContactCommitment | None:
    """A fresh salt and the commitment to the stripped contact data; None when there is none.

    ``new_salt`` gives the salt (default: ``new_salts(1)``); it is called only when
    there is contact data to commit to."""
    name, contact = (name or "").strip() or None, (contact or "").strip() or None
    if name is None and contact is None and not address:
        return None
    salt = new_salt() if new_salt is not None else new_salts(1)[0]
    return ContactCommitment(salt, contact_commitment(salt, name, contact, address))


def contact_commitment(
    salt: str, name: str | None, contact: str | None, address: str | None
) -> str:
    """HMAC-SHA256 of the canonical contact data under ``salt`` (hex)."""
    raw = _canonical_contact(name, contact, address)
    return hmac.digest(bytes.fromhex(salt), raw, "sha256").hex()


@dataclass(frozen=True)
class Erased:
    number: str
    version: int
    fields: tuple[str, ...]


def erase(
    uow: UnitOfWork,
    number: str,
    *,
    reason: str,
    actor: Any,
    now: datetime | None = None,
) -> Erased:
    """Erase the citizen's contact data and its salt on ticket ``number`` and log the erasure.

    The log row names which fields were erased and why, never their values.
    Erasing a ticket already erased is refused (``ValidationError``) so a
    request is answered once. The caller commits.
    """
    from engine.ledger import record_event

    now = uow.now(now)
    uow.policy.require(actor, ERASE_PERMISSION, number=number)
    why = (reason or "").strip()
    if not why:
        raise ValidationError(
            "an erasure needs a reason (the request, or the retention rule)",
            fields={"reason": "is required"},
        )
    if len(why) > REASON_MAX:
        raise ValidationError(
            f"the reason is too long ({len(why)} characters; at most {REASON_MAX})",
            fields={"reason": f"at most {REASON_MAX} characters"},
        )
    row = uow.session.execute(
        select(
            Ticket.citizen_name,
            Ticket.citizen_contact,
            Ticket.address,
            Ticket.contact_salt,
            Ticket.personal_data_erased_at,
        ).where(Ticket.number == number)
    ).first()
    if row is None:
        raise NotFound(f"no ticket {number!r}", ticket=number)
    if row.personal_data_erased_at is not None:
        raise ValidationError(
            f"{number}: the citizen's personal data was already erased on "
            f"{row.personal_data_erased_at.isoformat()}",
            ticket=number,
        )
    held = tuple(name for name in CONTACT_COLUMNS if getattr(row, name) is not None)
    values: dict[str, Any] = {name: None for name in CONTACT_COLUMNS}
    values.update(contact_salt=None, personal_data_erased_at=now)
    version = record_event(
        uow,
        number,
        ERASED_EVENT,
        actor=actor,
        now=now,
        data={"fields": list(held), "reason": why},
        reason=why,
        values=values,
    )
    log.info("%s: personal data erased (%s)", number, ", ".join(held) or "nothing held")
    return Erased(number, version, held)


def due_for_erasure(session: Session, now: datetime, *, limit: int = 500) -> list[str]:
    """Tickets closed longer ago than their campaign's retention period, data not yet erased."""
    now = ensure_utc(now)
    campaigns = session.execute(
        select(Campaign.id, Campaign.personal_data_retention_days).where(
            Campaign.personal_data_retention_days.is_not(None)
        )
    ).all()
    due: list[str] = []
    for campaign_id, days in campaigns:
        cutoff = now - timedelta(days=int(days or 0))
        due.extend(
            session.execute(
                select(Ticket.number)
                .where(
                    Ticket.campaign_id == campaign_id,
                    Ticket.closed_at <= cutoff,
                    Ticket.personal_data_erased_at.is_(None),
                    or_(
                        Ticket.citizen_name.is_not(None),
                        Ticket.citizen_contact.is_not(None),
                        Ticket.address.is_not(None),
                        Ticket.contact_salt.is_not(None),
                    ),
                )
                .order_by(Ticket.id)
                .limit(limit - len(due))
            ).scalars()
        )
        if len(due) >= limit:
            break
    return due


def purge(
    uow: UnitOfWork,
    *,
    actor: Any,
    now: datetime | None = None,
    limit: int = 500,
) -> list[Erased]:
    """Erase the contact data of every ticket past its campaign's retention period (up to
    ``limit``; run again for more). The caller commits."""
    now = uow.now(now)
    return [
        erase(uow, number, reason="retention period over", actor=actor, now=now)
        for number in due_for_erasure(uow.session, now, limit=limit)
    ]
