"""Sessions that end (issue 13): sign-out ends the session on the server, so a copied cookie
stops working; idle and absolute expiry; a password change or a deactivation ends every
session of that user; the cookie is Secure over HTTPS; sign-out needs its CSRF token."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select, update

from engine.models import User, WebSession
from engine.web_sessions import change_password, set_active
from tests.conftest import CAMPAIGN_NOW, as_uow
from tests.web.conftest import build_app, csrf, sign_in

PAGE = "/desk/intake"  # a clerk's page: 200 signed in, 302 to the sign-in page otherwise


def _copy_cookie(source: FlaskClient, target: FlaskClient) -> None:
    cookie = source.get_cookie("session")
    assert cookie is not None
    target.set_cookie("session", cookie.value)


def _reasons(db_session) -> list[str | None]:
    rows = list(db_session.scalars(select(WebSession.ended_reason).order_by(WebSession.created_at)))
    db_session.rollback()
    return rows


def test_sign_out_ends_the_session_for_a_copied_cookie(app, client, db_session) -> None:
    assert sign_in(client, "clerk").status_code == 302
    thief = app.test_client()
    _copy_cookie(client, thief)
    assert thief.get(PAGE).status_code == 200  # the copy works while the session holds
    response = client.post("/signout", data={"csrf_token": csrf(client, PAGE)})
    assert response.status_code == 302
    assert client.get(PAGE).status_code == 302
    assert thief.get(PAGE).status_code == 302  # ... and not after sign-out
    assert _reasons(db_session) == ["signed_out"]


def test_the_cookie_holds_no_user_only_a_random_session_id(client, db_session) -> None:
    sign_in(client, "clerk")
    with client.session_transaction() as session:
        assert set(session) <= {"sid", "csrf_token", "_flashes"}
        sid = session["sid"]
    stored = db_session.scalars(select(WebSession.id)).one()
    assert sid != stored and len(stored) == 64  # the database keeps a SHA-256 of it


def test_a_new_sign_in_gets_a_new_session_id(login_as, client) -> None:
    sign_in(client, "clerk")
    with client.session_transaction() as session:
        first = session["sid"]
    sign_in(client, "clerk")
    with client.session_transaction() as session:
        assert session["sid"] != first


def test_idle_sessions_expire(login_as, clock, db_session) -> None:
    client = login_as("clerk")
    for _ in range(3):  # active use keeps it alive past the idle limit
        clock.advance(timedelta(minutes=20))
        assert client.get(PAGE).status_code == 200
    clock.advance(timedelta(minutes=31))
    assert client.get(PAGE).status_code == 302
    assert _reasons(db_session) == ["idle"]


def test_sessions_end_after_the_absolute_limit(login_as, clock, db_session) -> None:
    client = login_as("clerk")
    for _ in range(35):  # 11 h 40 min of steady use
        clock.advance(timedelta(minutes=20))
        assert client.get(PAGE).status_code == 200
    clock.advance(timedelta(minutes=21))
    assert client.get(PAGE).status_code == 302
    assert _reasons(db_session) == ["expired"]


def test_limits_come_from_the_settings(sqlite_url, clock) -> None:
    app = create_app_with(sqlite_url, clock, sessions={"idle_minutes": 5, "absolute_hours": 1})
    try:
        policy = app.extensions["rectiflow.session_policy"]
        assert policy.idle == timedelta(minutes=5) and policy.absolute == timedelta(hours=1)
    finally:
        app.extensions["rectiflow.engine"].dispose()


def create_app_with(url, clock, **settings):  # type: ignore[no-untyped-def]
    from web import create_app

    return create_app(
        {"database_url": url, "TESTING": True, "SECRET_KEY": "s", "CLOCK": clock, **settings}
    )


def test_changing_the_password_ends_the_users_sessions(app, login_as, db_session) -> None:
    clerk = login_as("clerk")
    other = app.test_client()
    _copy_cookie(clerk, other)
    assert clerk.get(PAGE).status_code == 200
    ended = change_password(as_uow(db_session), "clerk", "a new long password", now=CAMPAIGN_NOW)
    db_session.commit()
    assert ended == 1
    assert clerk.get(PAGE).status_code == 302
    assert other.get(PAGE).status_code == 302
    assert _reasons(db_session) == ["password_changed"]
    assert sign_in(app.test_client(), "clerk", "a new long password").status_code == 302


def test_a_password_changed_behind_the_apps_back_ends_sessions_too(login_as, db_session) -> None:
    client = login_as("clerk")
    assert client.get(PAGE).status_code == 200
    db_session.execute(update(User).where(User.username == "clerk").values(password_hash="x"))
    db_session.commit()
    assert client.get(PAGE).status_code == 302
    assert _reasons(db_session) == ["password_changed"]


def test_deactivating_a_user_ends_their_sessions(login_as, db_session) -> None:
    client = login_as("clerk")
    assert client.get(PAGE).status_code == 200
    assert set_active(as_uow(db_session), "clerk", False, now=CAMPAIGN_NOW) == 1
    db_session.commit()
    assert client.get(PAGE).status_code == 302
    assert _reasons(db_session) == ["deactivated"]
    set_active(as_uow(db_session), "clerk", True, now=CAMPAIGN_NOW)  # the old session stays ended
    db_session.commit()
    assert client.get(PAGE).status_code == 302


def test_sign_out_without_its_csrf_token_says_so(login_as) -> None:
    client = login_as("clerk")
    response = client.post("/signout")
    assert response.status_code == 400
    assert "You are still signed in" in response.get_data(as_text=True)
    assert client.get(PAGE).status_code == 200
    response = client.get("/signout")  # a link or an image cannot sign anyone out
    assert response.status_code == 405
    assert 'action="/signout"' in response.get_data(as_text=True)
    assert client.get(PAGE).status_code == 200


def test_the_cookie_is_secure_over_https(app) -> None:
    plain = app.test_client()
    response = sign_in(plain, "clerk")
    assert "Secure" not in response.headers["Set-Cookie"]
    secure = app.test_client()
    token = csrf_over_https(secure)
    response = secure.post(
        "/signin",
        data={"username": "clerk", "password": "demo", "csrf_token": token},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/signin"},  # Flask-WTF checks it over HTTPS
    )
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def csrf_over_https(client: FlaskClient) -> str:
    from tests.web.conftest import TOKEN

    html = client.get("/signin", base_url="https://localhost").get_data(as_text=True)
    match = TOKEN.search(html)
    assert match
    return match.group(1) or match.group(2)


def test_https_setting_and_trusted_proxy_make_the_cookie_secure(sqlite_url, clock) -> None:
    app = create_app_with(sqlite_url, clock, https=True)
    try:
        response = app.test_client().get("/signin")
        assert "Secure" in response.headers["Set-Cookie"]
    finally:
        app.extensions["rectiflow.engine"].dispose()
    app = create_app_with(sqlite_url, clock, proxies=1)
    try:
        client = app.test_client()
        forwarded = client.get("/signin", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in forwarded.headers["Set-Cookie"]
        assert "Secure" not in app.test_client().get("/signin").headers["Set-Cookie"]
    finally:
        app.extensions["rectiflow.engine"].dispose()
    # Without a trusted proxy the header is ignored: anyone could send it.
    app = build_app(sqlite_url, clock)
    try:
        ignored = app.test_client().get("/signin", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" not in ignored.headers["Set-Cookie"]
    finally:
        app.extensions["rectiflow.engine"].dispose()


def test_cli_password_and_deactivate_end_sessions(app, login_as, db_session) -> None:
    from click.testing import CliRunner

    from cli import main

    url = app.config["DB_URL"]
    client = login_as("clerk")
    assert client.get(PAGE).status_code == 200
    run = CliRunner().invoke(
        main, ["--database-url", url, "users", "password", "clerk", "--password", "long enough"]
    )
    assert run.exit_code == 0, run.output
    assert "1 signed-in session(s) ended" in run.output
    assert client.get(PAGE).status_code == 302
    short = CliRunner().invoke(
        main, ["--database-url", url, "users", "password", "clerk", "--password", "short"]
    )
    assert short.exit_code == 2 and "at least 8 characters" in short.output
    client = login_as("supervisor")
    run = CliRunner().invoke(main, ["--database-url", url, "users", "deactivate", "supervisor"])
    assert run.exit_code == 0 and "1 signed-in session(s) ended" in run.output
    assert client.get("/supervisor/board").status_code == 302
    listed = CliRunner().invoke(main, ["--database-url", url, "users", "list"])
    assert (
        "supervisor\tSupervisor\t" in listed.output and "\tinactive\t0 session(s)" in listed.output
    )
