"""Rate limits on the web (issue 13): sign-in per address and per account, public submission,
receipt look-up, Open311 POST and API token use; 429 with Retry-After; counted in the
database, so a second app on the same database (another process) sees the same count. The
clock is the app's injected CLOCK: a window turns by moving it, never by sleeping."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from engine.clock import FixedClock
from engine.tokens import create_token
from tests.conftest import CAMPAIGN_NOW
from tests.web.conftest import csrf
from web import create_app

LIMITS = {
    "signin_per_address": "3/15m",
    "signin_per_account": "2/15m",
    "public_submit": "2/1h",
    "status_lookup": "2/15m",
    "open311_post_per_address": "2/1h",
    "open311_post_per_key": "3/1h",
    "api_token": "3/1m",
    "api_bad_token_per_address": "2/15m",
}


def make(url: str, clock: FixedClock, **settings) -> Flask:  # type: ignore[no-untyped-def]
    return create_app(
        {
            "database_url": url,
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "CLOCK": clock,
            "default_locale": "en",
            "rate_limits": {"enabled": True, **LIMITS},
            **settings,
        }
    )


@pytest.fixture
def limited(sqlite_url: str, clock: FixedClock) -> Iterator[Flask]:
    app = make(sqlite_url, clock)
    app.config["DB_URL"] = sqlite_url
    yield app
    app.extensions["rectiflow.engine"].dispose()


def client_from(app: Flask, addr: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = addr
    return client


def post_signin(client: FlaskClient, username: str, password: str = "wrong"):  # type: ignore[no-untyped-def]
    return client.post(
        "/signin", data={"username": username, "password": password, "csrf_token": csrf(client)}
    )


def assert_429(response, seconds: int | None = None) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 429, response.status_code
    retry = int(response.headers["Retry-After"])
    assert 1 <= retry <= 3600
    if seconds is not None:
        assert retry == seconds


def test_sign_in_per_address(limited: Flask, clock: FixedClock) -> None:
    client = client_from(limited, "10.0.0.7")
    for name in ("a", "b", "c"):  # different accounts, one address
        assert post_signin(client, name).status_code == 401
    refused = post_signin(client, "d")
    assert_429(refused, 15 * 60)
    assert "Too many sign-in attempts from your address" in refused.get_data(as_text=True)
    assert post_signin(client_from(limited, "10.0.0.8"), "d").status_code == 401
    clock.advance(timedelta(minutes=15))
    assert post_signin(client, "d").status_code == 401


def test_sign_in_per_account(limited: Flask) -> None:
    for addr in ("10.0.0.1", "10.0.0.2"):  # one account, different addresses
        assert post_signin(client_from(limited, addr), "supervisor").status_code == 401
    refused = post_signin(client_from(limited, "10.0.0.3"), "Supervisor ")
    assert_429(refused)
    assert "for this account" in refused.get_data(as_text=True)
    # Even the right password waits: the limit counts attempts, not only failures.
    assert_429(post_signin(client_from(limited, "10.0.0.4"), "supervisor", "demo"))


def test_limits_hold_across_processes(limited: Flask, clock: FixedClock) -> None:
    other = make(limited.config["DB_URL"], clock)  # another process on the same database
    try:
        assert post_signin(client_from(limited, "10.0.0.7"), "a").status_code == 401
        assert post_signin(client_from(other, "10.0.0.7"), "b").status_code == 401
        assert post_signin(client_from(limited, "10.0.0.7"), "c").status_code == 401
        assert_429(post_signin(client_from(other, "10.0.0.7"), "d"))
    finally:
        other.extensions["rectiflow.engine"].dispose()


def test_public_submission(limited: Flask, db_session) -> None:  # type: ignore[no-untyped-def]
    client = client_from(limited, "10.0.0.7")
    for _ in range(2):
        token = csrf(client, "/submit")
        response = client.post("/submit", data={"csrf_token": token, "text": "The lamp is out."})
        assert response.status_code == 200
    token = csrf(client, "/submit")
    refused = client.post("/submit", data={"csrf_token": token, "text": "The lamp is out."})
    assert_429(refused)
    assert "Too many opinions sent from your address" in refused.get_data(as_text=True)
    from sqlalchemy import func, select

    from engine.models import Ticket

    assert db_session.execute(select(func.count()).select_from(Ticket)).scalar() == 2


def test_status_lookup(limited: Flask) -> None:
    client = client_from(limited, "10.0.0.7")
    token = csrf(client, "/status")
    for _ in range(2):
        response = client.post(
            "/status", data={"csrf_token": token, "number": "2005-0001", "secret": "guess"}
        )
        assert response.status_code == 404
    refused = client.post(
        "/status", data={"csrf_token": token, "number": "2005-0001", "secret": "guess"}
    )
    assert_429(refused)
    # The feedback answer takes number and secret too: it counts against the same limit.
    assert_429(client.post("/status/answer", data={"csrf_token": token, "number": "x"}))


def _token(app: Flask, username: str) -> str:
    with app.extensions["rectiflow.sessions"]() as session:
        issued = create_token(session, username, now=CAMPAIGN_NOW)
        session.commit()
        return issued.token


def test_open311_post(limited: Flask) -> None:
    key = _token(limited, "clerk")
    data = {
        "api_key": key,
        "service_code": "opinion",
        "description": "x",
        "lat": "30",
        "long": "120",
    }
    client = client_from(limited, "10.0.0.7")
    for _ in range(2):
        assert client.post("/open311/v2/requests.json", data=data).status_code == 201
    refused = client.post("/open311/v2/requests.json", data=data)
    assert_429(refused)
    assert refused.json[0]["code"] == 429 and "from your address" in refused.json[0]["description"]
    # Per key as well: a third address, the key's third post is allowed, the fourth is not.
    assert (
        client_from(limited, "10.0.0.8").post("/open311/v2/requests.xml", data=data).status_code
        == 201
    )
    refused = client_from(limited, "10.0.0.9").post("/open311/v2/requests.xml", data=data)
    assert_429(refused)
    assert b"<code>429</code>" in refused.data and b"with this api_key" in refused.data


def test_api_token_use(limited: Flask, clock: FixedClock) -> None:
    headers = {"Authorization": f"Bearer {_token(limited, 'supervisor')}"}
    client = limited.test_client()
    for _ in range(3):
        assert client.get("/api/v1/campaigns", headers=headers).status_code == 200
    refused = client.get("/api/v1/campaigns", headers=headers)
    assert_429(refused, 60)
    assert refused.json["error"]["code"] == "too_many_requests"
    clock.advance(timedelta(minutes=1))
    assert client.get("/api/v1/campaigns", headers=headers).status_code == 200


def test_unknown_api_tokens_per_address(limited: Flask) -> None:
    client = client_from(limited, "10.0.0.7")
    for guess in ("a", "b"):
        response = client.get("/api/v1/campaigns", headers={"Authorization": f"Bearer {guess}"})
        assert response.status_code == 401
    refused = client.get("/api/v1/campaigns", headers={"Authorization": "Bearer c"})
    assert_429(refused)


def test_redis_storage_when_configured(sqlite_url: str, clock: FixedClock) -> None:
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/15"
    server = redis.Redis.from_url(url, socket_connect_timeout=1)

    def clean() -> None:  # only this app's keys: the server may be shared
        for key in server.scan_iter("rectiflow:rl:*"):
            server.delete(key)

    try:
        clean()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no Redis server at {url}: {exc}")
    apps = [make(sqlite_url, clock, rate_limit_url=url) for _ in range(2)]
    try:
        assert type(apps[0].extensions["rectiflow.limiter"].storage).__name__ == "RedisStorage"
        for app, name in zip([*apps, apps[0]], "abc", strict=True):
            assert post_signin(client_from(app, "10.0.0.7"), name).status_code == 401
        assert_429(post_signin(client_from(apps[1], "10.0.0.7"), "d"))
    finally:
        for app in apps:
            app.extensions["rectiflow.engine"].dispose()
        clean()


def test_a_broken_storage_lets_requests_through(sqlite_url: str, clock: FixedClock) -> None:
    app = make(sqlite_url, clock, rate_limit_url="redis://127.0.0.1:1/0")  # nothing listens
    try:
        for name in "abcd":
            assert post_signin(client_from(app, "10.0.0.7"), name).status_code == 401
    finally:
        app.extensions["rectiflow.engine"].dispose()
