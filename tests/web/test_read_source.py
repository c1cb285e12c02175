"""Reports and log searches read from the standby when it is close enough, else the primary.

The "standby" here is a second SQLite file copied from the primary before a ticket
was written, so what a page shows tells which database it read; the lag is
injected. The streaming-replication version runs in tests/hosts.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from engine import db
from engine.readsource import HEADER, ReadSource, StandbyState

CAMPAIGN = "consultation-2005"


def _with_standby(app: Flask, tmp_path: Path, lag: list[float]) -> None:
    primary_path = Path(app.config["DB_URL"].split("///", 1)[1])
    standby_path = tmp_path / "standby.db"
    shutil.copyfile(primary_path, standby_path)
    standby = db.make_engine(f"sqlite:///{standby_path}")

    def measure(_primary: object, _standby: object) -> StandbyState:
        return StandbyState(0.0, 1, lag[0])

    app.extensions["rectiflow.ctx"].reads = ReadSource(
        app.extensions["rectiflow.engine"],
        standby,
        max_lag_seconds=5,
        check_seconds=0,
        monotonic=lambda: 0.0,
        measure_standby=measure,
    )


def test_report_and_log_search_follow_the_standby_lag(
    app: Flask,
    tmp_path: Path,
    login_as: Callable[[str], FlaskClient],
    make_ticket: Callable[..., tuple[str, str]],
) -> None:
    lag = [0.5]
    _with_standby(app, tmp_path, lag)  # the standby holds no ticket
    number, _ = make_ticket("categorized")
    client = login_as("supervisor")

    report = client.get(f"/reports/{CAMPAIGN}/report.json")
    assert report.headers[HEADER] == "standby; lag=0.5 s"
    assert report.get_json()["total"] == 0  # the standby's (stale) data
    log = client.get(f"/inspector/log?ticket={number}")
    assert log.headers[HEADER] == "standby; lag=0.5 s"
    assert "No log rows match." in log.get_data(as_text=True)

    lag[0] = 12.3
    report = client.get(f"/reports/{CAMPAIGN}/report.json")
    assert report.headers[HEADER] == "primary; reason=standby lag 12.3 s > 5 s"
    assert report.get_json()["total"] == 1
    log = client.get(f"/inspector/log?ticket={number}")
    assert log.headers[HEADER].startswith("primary; reason=standby lag 12.3 s")
    assert f">{number}</a>" in log.get_data(as_text=True)
    csv_text = client.get(f"/inspector/log.csv?ticket={number}").get_data(as_text=True)
    assert number in csv_text


def test_pages_that_show_their_own_writes_never_read_the_standby(
    app: Flask,
    tmp_path: Path,
    login_as: Callable[[str], FlaskClient],
    make_ticket: Callable[..., tuple[str, str]],
) -> None:
    _with_standby(app, tmp_path, [0.0])
    number, _ = make_ticket("categorized")
    client = login_as("supervisor")
    page = client.get(f"/tickets/{number}")
    assert page.status_code == 200 and number in page.get_data(as_text=True)
    assert HEADER not in page.headers


def test_without_a_standby_no_header_is_sent(
    login_as: Callable[[str], FlaskClient],
) -> None:
    client = login_as("supervisor")
    report = client.get(f"/reports/{CAMPAIGN}/report.json")
    assert report.status_code == 200 and HEADER not in report.headers


def test_the_api_report_says_where_it_read(
    app: Flask, tmp_path: Path, make_ticket: Callable[..., tuple[str, str]]
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from engine.tokens import create_token

    lag = [0.0]
    _with_standby(app, tmp_path, lag)
    make_ticket("categorized")
    with Session(app.extensions["rectiflow.engine"]) as session:
        token = create_token(session, "supervisor", now=datetime.now(UTC), name="t").token
        session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    answer = client.get(f"/api/v1/campaigns/{CAMPAIGN}/report", headers=headers)
    assert answer.headers[HEADER] == "standby; lag=0.0 s" and answer.get_json()["total"] == 0
    lag[0] = 6.0
    answer = client.get(f"/api/v1/campaigns/{CAMPAIGN}/report", headers=headers)
    assert answer.headers[HEADER] == "primary; reason=standby lag 6.0 s > 5 s"
    assert answer.get_json()["total"] == 1


def test_a_users_own_write_keeps_their_reports_on_the_primary_until_replayed(
    app: Flask,
    tmp_path: Path,
    login_as: Callable[[str], FlaskClient],
    make_ticket: Callable[..., tuple[str, str]],
) -> None:
    from tests.web.conftest import csrf

    replayed = [100]

    class Reads(ReadSource):
        def write_position(self) -> int | None:
            return 200  # the primary's WAL position after the write

    standby_path = tmp_path / "standby.db"
    shutil.copyfile(Path(app.config["DB_URL"].split("///", 1)[1]), standby_path)
    app.extensions["rectiflow.ctx"].reads = Reads(
        app.extensions["rectiflow.engine"],
        db.make_engine(f"sqlite:///{standby_path}"),
        check_seconds=0,
        monotonic=lambda: 0.0,
        measure_standby=lambda _p, _s: StandbyState(0.0, replayed[0], 0.0),
    )
    number, _ = make_ticket("assigned")
    client = login_as("supervisor")
    assert client.get(f"/reports/{CAMPAIGN}").headers[HEADER].startswith("standby")
    answer = client.post(
        "/supervisor/bulk-reassign",
        data={
            "csrf_token": csrf(client),
            "numbers": [number],
            "unit": "traffic-brigade",
            "officer": "traffic.officer",
            "reason": "Traffic matter.",
        },
    )
    assert answer.status_code == 302 and answer.headers["X-Rectiflow-Write-Position"] == "0/C8"
    assert client.get(f"/reports/{CAMPAIGN}").headers[HEADER] == (
        "primary; reason=standby has not replayed your last write (0/C8)"
    )
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from engine.models import User
    from engine.web_sessions import start_session
    from tests.conftest import CAMPAIGN_NOW, as_uow

    with Session(app.extensions["rectiflow.engine"]) as session:
        inspector = session.scalar(select(User.id).where(User.username == "inspector"))
        assert inspector is not None
        sid = start_session(as_uow(session), inspector, now=CAMPAIGN_NOW)
        session.commit()
    other = app.test_client()  # another user, who wrote nothing, still reads the standby
    with other.session_transaction() as cookie:
        cookie["sid"] = sid
    assert other.get(f"/reports/{CAMPAIGN}").headers[HEADER].startswith("standby")
    replayed[0] = 250
    assert client.get(f"/reports/{CAMPAIGN}").headers[HEADER].startswith("standby")
