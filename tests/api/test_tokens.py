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


def test_cached_look_up_and_revocation_within_two_seconds(session, now):
    """Issue 15 item 3: the token look-up is kept in the context's read cache for
    TOKEN_CACHE_SECONDS; a revocation (from another process: the CLI) takes effect once the
    copy expires, within two seconds."""
    from sqlalchemy import event

    from engine.readcache import ReadCache
    from engine.tokens import TOKEN_CACHE_SECONDS

    clock = [1000.0]
    cache = ReadCache(clock=lambda: clock[0])
    issued = create_token(session, "supervisor", now=now)
    lookups: list[str] = []
    engine = session.get_bind()

    def _count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if "FROM api_tokens" in statement:
            lookups.append(statement)

    event.listen(engine, "before_cursor_execute", _count)
    try:
        assert authenticate(session, issued.token, now=now, cache=cache).username == "supervisor"
        authenticate(session, issued.token, now=now, cache=cache)
        assert len(lookups) == 1  # the second request used the cached look-up
        revoke_token(session, issued.id, now=now)
        clock[0] += TOKEN_CACHE_SECONDS - 0.1
        authenticate(session, issued.token, now=now, cache=cache)  # still the cached copy
        clock[0] += 0.2
        with pytest.raises(NotPermitted, match="revoked"):
            authenticate(session, issued.token, now=now, cache=cache)
        assert TOKEN_CACHE_SECONDS <= 2
    finally:
        event.remove(engine, "before_cursor_execute", _count)


def test_the_api_stops_taking_a_token_revoked_elsewhere_within_two_seconds(app, client, token):
    """Through the API: a token revoked by another process (the CLI, on the same database) is
    still taken from the app's cached look-up until that copy expires, then refused with 401.
    The cache's clock is injected: nothing sleeps."""
    from engine.readcache import ReadCache
    from engine.tokens import TOKEN_CACHE_SECONDS

    clock = [1000.0]
    app.extensions["rectiflow.ctx"].cache = ReadCache(clock=lambda: clock[0])
    plain = token("supervisor")
    headers = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/campaigns", headers=headers).status_code == 200
    url = app.config["RECTIFLOW"]["database_url"]
    with app.extensions["rectiflow.sessions"]() as other:  # another process's revocation
        token_id = other.scalars(
            select(ApiToken.id).where(ApiToken.token_hash == hash_token(plain))
        ).one()
    revoked = CliRunner().invoke(main, ["--database-url", url, "tokens", "revoke", str(token_id)])
    assert revoked.exit_code == 0, revoked.output
    clock[0] += TOKEN_CACHE_SECONDS - 0.1
    assert client.get("/api/v1/campaigns", headers=headers).status_code == 200
    clock[0] += 0.2
    refused = client.get("/api/v1/campaigns", headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.json["error"]["message"]
    assert TOKEN_CACHE_SECONDS <= 2
