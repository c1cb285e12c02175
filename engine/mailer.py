"""Optional e-mail delivery of inbox notices over SMTP, after the transaction commits.

Each letter is written in its recipient's language: the stored preference, else the
organisation's ``default_locale`` (the inbox keeps the engine's sentence; the letter
is translated through the same table as the pages, ``engine.messages``).

Off by default (``[smtp] enabled = false`` in config/default.toml). Delivery
never runs inside the transaction that wrote the notices: a rolled-back firing
sends nothing, and a mail server that is down never blocks or undoes a firing.
A notice sent is stamped ``emailed_at`` so it is not sent twice.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import ensure_utc
from engine.errors import ConfigError
from engine.i18n import Readers
from engine.messages import notice_text
from engine.models import Notification, Ticket, User
from engine.settings import load_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "rectiflow@localhost"
    username: str = ""
    password: str = ""
    starttls: bool = False
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SmtpSettings:
        """The ``[smtp]`` section of the settings, checked."""
        smtp = dict(settings.get("smtp") or {})
        try:
            port = int(smtp.get("port", 25))
        except (TypeError, ValueError):
            raise ConfigError(f"[smtp] port must be a number, got {smtp.get('port')!r}") from None
        if not 0 < port < 65536:
            raise ConfigError(f"[smtp] port must be 1..65535, got {port}")
        return cls(
            enabled=bool(smtp.get("enabled", False)),
            host=str(smtp.get("host", "127.0.0.1")),
            port=port,
            sender=str(smtp.get("sender", "rectiflow@localhost")),
            username=str(smtp.get("username", "")),
            password=str(smtp.get("password", "")),
            starttls=bool(smtp.get("starttls", False)),
            timeout=float(smtp.get("timeout", 10.0)),
        )


def _message(
    smtp: SmtpSettings, to: str, text: Mapping[str, str], number: str | None, locale: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = to
    msg["Subject"] = f"[rectiflow] {text['subject']}"
    if number:
        msg["X-Rectiflow-Ticket"] = number
    msg.set_content(text["body"] or text["subject"])
    # After set_content, which replaces the Content-* headers.
    msg["Content-Language"] = locale.replace("_", "-")
    return msg


def deliver(
    sessions: sessionmaker[Session],
    notification_ids: Iterable[int],
    *,
    smtp: SmtpSettings,
    now: datetime,
    readers: Readers | None = None,
) -> int:
    """E-mail the committed notices ``notification_ids`` to users who have an address.

    Each is written in the recipient's language (``readers``: the engine context's,
    ``Readers.of(ctx)``; by default the installation's settings without titles).
    Does nothing when SMTP is disabled. Each sent notice is stamped
    ``emailed_at`` in its own short transaction; a failure is logged and the
    notice stays unsent (it is in the inbox anyway). Returns how many were sent.
    """
    if not smtp.enabled:
        return 0
    wanted = sorted(set(notification_ids))
    if not wanted:
        return 0
    now = ensure_utc(now)
    with sessions() as session:
        rows = session.execute(
            select(
                Notification.id,
                Notification.subject,
                Notification.body,
                Notification.message_id,
                Notification.params,
                User.email,
                User.locale,
                Ticket.number,
            )
            .join(User, User.id == Notification.user_id)
            .outerjoin(Ticket, Ticket.id == Notification.ticket_id)
            .where(
                Notification.id.in_(wanted),
                Notification.emailed_at.is_(None),
                User.email.is_not(None),
                User.email != "",
            )
            .order_by(Notification.id)
        ).all()
    if not rows:
        return 0
    readers = readers or Readers(load_settings())
    sent: list[int] = []
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
            if smtp.starttls:
                client.starttls()
            if smtp.username:
                client.login(smtp.username, smtp.password)
            for row in rows:
                reader = readers(row.locale)
                text = notice_text(row, reader)
                try:
                    client.send_message(_message(smtp, row.email, text, row.number, reader.locale))
                    sent.append(row.id)
                except smtplib.SMTPException as exc:
                    log.warning("notice %s to %s not sent: %s", row.id, row.email, exc)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning(
            "SMTP %s:%s unavailable, %d notices stay in-app only: %s",
            smtp.host,
            smtp.port,
            len(rows) - len(sent),
            exc,
        )
    if sent:
        with sessions() as session:
            session.execute(
                update(Notification).where(Notification.id.in_(sent)).values(emailed_at=now)
            )
            session.commit()
    return len(sent)


def deliver_pending(
    sessions: sessionmaker[Session],
    *,
    smtp: SmtpSettings,
    now: datetime,
    window: timedelta = timedelta(days=1),
    limit: int = 500,
    readers: Readers | None = None,
) -> int:
    """E-mail notices written by anyone (web actions, the API, the sweep) and not yet sent.

    The worker calls it on every sweep, so a notice a web request wrote after its
    commit (an extension asked or decided, an escalation by hand) goes out within
    one sweep interval without the web layer talking SMTP. Only notices younger
    than ``window`` are tried, so a mail server down for days does not flood
    inboxes with stale mail when it comes back. Returns how many were sent.
    """
    if not smtp.enabled:
        return 0
    now = ensure_utc(now)
    with sessions() as session:
        ids = list(
            session.scalars(
                select(Notification.id)
                .join(User, User.id == Notification.user_id)
                .where(
                    Notification.emailed_at.is_(None),
                    Notification.created_at >= now - window,
                    User.email.is_not(None),
                    User.email != "",
                )
                .order_by(Notification.id)
                .limit(limit)
            )
        )
        session.rollback()
    return deliver(sessions, ids, smtp=smtp, now=now, readers=readers) if ids else 0
