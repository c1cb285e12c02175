"""E-mail after commit, against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from engine import db, timers
from engine.i18n import Readers
from engine.mailer import SmtpSettings, deliver, deliver_pending
from engine.models import Notification, User
from engine.notifications import notify
from tests.conftest import ctx_of
from tests.integration.deadline_support import assigned_ticket, local, swept


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_notices_are_mailed_after_commit_once(
    sqlite_url: str, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    engine = db.make_engine(sqlite_url)
    sessions = db.session_factory(engine)
    with sessions() as s:
        number = assigned_ticket(s, local(2005, 2, 28, 10))
        s.execute(
            update(User)
            .where(User.username == "traffic.officer")
            .values(email="officer@example.test")
        )
        s.commit()
    smtp = SmtpSettings(enabled=True, host="127.0.0.1", port=port)
    sent: list[int] = []
    timers.sweep(
        ctx_of(sessions),
        now=local(2005, 3, 14, 9),
        after_commit=lambda part: sent.append(
            deliver(sessions, part.notification_ids, smtp=smtp, now=local(2005, 3, 14, 9))
        ),
    )
    assert sent == [1]
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg["To"] == "officer@example.test"
    assert msg["X-Rectiflow-Ticket"] == number
    # No stored preference: the organisation's language (zh_CN for the sample bureau).
    assert msg["Content-Language"] == "zh-CN"
    assert "将在 24 小时内到期" in _subject(msg) and "is due within" not in _subject(msg)
    with sessions() as s:
        ids = list(s.scalars(select(Notification.id).where(Notification.kind == "warning")))
        assert (
            s.scalar(select(Notification.emailed_at).where(Notification.id == ids[0])) is not None
        )
    # Delivering the same notices again sends nothing more.
    assert deliver(sessions, ids, smtp=smtp, now=local(2005, 3, 14, 10)) == 0
    assert len(inbox.messages) == 1
    engine.dispose()


def _subject(msg: Any) -> str:
    return str(make_header(decode_header(msg["Subject"])))


def _body(msg: Any) -> str:
    return str(msg.get_payload(decode=True).decode(msg.get_content_charset() or "utf-8"))


@pytest.mark.parametrize(
    ("locale", "subject", "body", "absent"),
    [
        ("en", "is due within 24 hours", "must be done by", "将在"),
        ("zh_CN", "将在 24 小时内到期", "须在", "is due within"),
    ],
)
def test_each_letter_is_in_its_recipients_language(
    sqlite_url: str,
    smtp_server: tuple[Inbox, int],
    locale: str,
    subject: str,
    body: str,
    absent: str,
) -> None:
    """The inbox keeps the engine's sentence; the letter is written in the recipient's stored
    language, state titles included (the engine context's readers)."""
    inbox, port = smtp_server
    engine = db.make_engine(sqlite_url)
    sessions = db.session_factory(engine)
    with sessions() as s:
        assigned_ticket(s, local(2005, 2, 28, 10))
        s.execute(
            update(User)
            .where(User.username == "traffic.officer")
            .values(email="officer@example.test", locale=locale)
        )
        s.commit()
    ctx = ctx_of(sessions)
    result = swept(ctx, now=local(2005, 3, 14, 9))
    smtp = SmtpSettings(enabled=True, host="127.0.0.1", port=port)
    readers = Readers.of(ctx)
    assert deliver(sessions, result.notification_ids, smtp=smtp, now=local(2005, 3, 14, 9),
                   readers=readers) == 1  # fmt: skip
    msg = inbox.messages[0]
    assert msg["Content-Language"] == locale.replace("_", "-")
    assert subject in _subject(msg) and absent not in _subject(msg)
    text = _body(msg)
    assert body in text and absent not in text
    assert "(assigned)" not in text  # the state by its title, not its code
    with sessions() as s:
        # The inbox row is unchanged: the engine's sentence, translated where it is read.
        stored = s.scalar(select(Notification.subject).where(Notification.kind == "warning"))
        assert stored is not None and "is due within 24 hours" in stored
    engine.dispose()


def test_disabled_or_unreachable_smtp_sends_nothing_and_keeps_the_firing(sqlite_url: str) -> None:
    engine = db.make_engine(sqlite_url)
    sessions = db.session_factory(engine)
    with sessions() as s:
        assigned_ticket(s, local(2005, 2, 28, 10))
        s.execute(update(User).values(email="x@example.test"))
        s.commit()
    result = swept(ctx_of(sessions), now=local(2005, 3, 14, 9))
    ids = result.notification_ids
    assert deliver(sessions, ids, smtp=SmtpSettings(), now=local(2005, 3, 14, 9)) == 0
    down = SmtpSettings(enabled=True, host="127.0.0.1", port=_free_port(), timeout=2)
    assert deliver(sessions, ids, smtp=down, now=local(2005, 3, 14, 9)) == 0
    with sessions() as s:
        assert s.scalar(select(Notification.emailed_at).where(Notification.id == ids[0])) is None
    engine.dispose()


def test_smtp_settings_come_from_config() -> None:
    from engine.errors import ConfigError
    from engine.settings import load_settings

    assert SmtpSettings.from_settings(load_settings()).enabled is False
    with pytest.raises(ConfigError, match="port"):
        SmtpSettings.from_settings({"smtp": {"port": "abc"}})


def test_notices_written_outside_the_sweep_are_mailed_by_the_next_sweep(
    sqlite_url: str, smtp_server: tuple[Inbox, int]
) -> None:
    """A web or API action writes a notice and commits; the worker's sweep tick mails it once.
    Notices older than the window stay in-app only."""
    inbox, port = smtp_server
    engine = db.make_engine(sqlite_url)
    sessions = db.session_factory(engine)
    now = local(2005, 3, 1, 9)
    with sessions() as s:
        s.execute(
            update(User).where(User.username == "supervisor").values(email="sup@example.test")
        )
        sup = s.scalar(select(User.id).where(User.username == "supervisor"))
        notify(s, user_ids=[sup], kind="extension", subject="extension asked on 2005-0001", now=now)
        notify(s, user_ids=[sup], kind="extension", subject="old news", now=now - timedelta(days=3))
        s.commit()
    smtp = SmtpSettings(enabled=True, host="127.0.0.1", port=port)
    assert deliver_pending(sessions, smtp=SmtpSettings(enabled=False), now=now) == 0
    assert deliver_pending(sessions, smtp=smtp, now=now + timedelta(seconds=5)) == 1
    assert deliver_pending(sessions, smtp=smtp, now=now + timedelta(seconds=10)) == 0
    assert [m["Subject"] for m in inbox.messages] == ["[rectiflow] extension asked on 2005-0001"]
    engine.dispose()
