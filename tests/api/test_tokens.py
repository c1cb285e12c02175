"""API tokens: made once and shown once, stored hashed, revocable; `rectiflow tokens`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from cli import main
from engine.errors import NotFound, NotPermitted, ValidationError
from engine.models import ApiToken, User
from engine.security import hash_token
from engine.tokens import authenticate, create_token, list_tokens, revoke_token


def test_token_lifecycle(session, now):
    issued = create_token(session, "supervisor", now=now, name="dashboard")
    stored = session.scalars(select(ApiToken).where(ApiToken.id == issued.id)).one()
    assert stored.token_hash == hash_token(issued.token) != issued.token
    who = authenticate(session, issued.token, now=now)
    assert (who.username, who.role) == ("supervisor", "supervisor")
    assert list_tokens(session, "supervisor")[0].last_used_at == now
    # The time of use is written at most once a minute.
    authenticate(session, issued.token, now=now + timedelta(seconds=30))
    assert list_tokens(session, "supervisor")[0].last_used_at == now
    revoked = revoke_token(session, issued.id, now=now)
    assert revoked.revoked_at == now
    with pytest.raises(NotPermitted, match="revoked"):
        authenticate(session, issued.token, now=now)
    assert revoke_token(session, issued.id, now=now + timedelta(days=1)).revoked_at == now


def test_token_refusals(session, now):
    with pytest.raises(NotFound):
        create_token(session, "nobody", now=now)
    with pytest.raises(ValidationError):
        create_token(session, "clerk", now=now, name="x" * 101)
    with pytest.raises(NotFound):
        revoke_token(session, 424242, now=now)
    with pytest.raises(NotPermitted, match="unknown"):
        authenticate(session, "rf_nothing", now=now)
    with pytest.raises(NotPermitted, match="no API token"):
        authenticate(session, "  ", now=now)
    issued = create_token(session, "clerk", now=now)
    session.execute(update(User).where(User.username == "clerk").values(active=False))
    with pytest.raises(NotPermitted, match="no longer active"):
        authenticate(session, issued.token, now=now)


def test_cli_tokens(sqlite_url):
    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, ["--database-url", sqlite_url, "tokens", *args])

    made = run("create", "clerk", "--name", "hotline")
    assert made.exit_code == 0, made.output
    token = made.output.strip().splitlines()[-1]
    assert token.startswith("rf_") and len(token) > 30
    listed = run("list")
    assert "clerk" in listed.output and "hotline" in listed.output and token not in listed.output
    token_id = listed.output.split("\t", 1)[0]
    revoked = run("revoke", token_id)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert "revoked" in run("list", "--user", "clerk").output
    assert run("create", "nobody").exit_code == 2
    assert run("revoke", "999").exit_code == 2
    assert run("list", "--user", "admin").output.strip() == "no API tokens"
