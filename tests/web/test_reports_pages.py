"""The report page (SVG charts, downloads) and the clerk's import page."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from engine.clock import FixedClock
from tests.web.conftest import build_app, csrf, sign_in

CAMPAIGN = "consultation-2005"


def test_report_page_with_charts_and_downloads(
    login_as: Callable[[str], FlaskClient], make_ticket: Callable[..., object]
) -> None:
    make_ticket("fed_back")
    make_ticket("categorized", text="=cmd|' /C calc'!A0 gambling")
    client = login_as("supervisor")
    page = client.get(f"/reports/{CAMPAIGN}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Opinions recorded" in html and 'id="by_category"' in html
    assert f"/reports/{CAMPAIGN}/chart/categories.svg" in html
    svg = client.get(f"/reports/{CAMPAIGN}/chart/categories.svg")
    assert svg.mimetype == "image/svg+xml"
    assert b"<svg" in svg.data and b"<script" not in svg.data.lower().replace(b"<script type", b"")
    assert b"http://kozea" not in svg.data and b"https://kozea" not in svg.data
    for name in ("states", "units", "themes", "deadline"):
        assert client.get(f"/reports/{CAMPAIGN}/chart/{name}.svg").status_code == 200

    data = client.get(f"/reports/{CAMPAIGN}/report.json").get_json()
    assert data["total"] == 2 and data["fed_back"] == 1
    csv_text = client.get(f"/reports/{CAMPAIGN}/report.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].lstrip("\ufeff") == "Section,Item,Count,Share"
    xlsx = client.get(f"/reports/{CAMPAIGN}/report.xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    assert sheet is not None and sheet["A1"].value == "Section"
    text = client.get(f"/reports/{CAMPAIGN}/report.txt?as_of=2005-02-27").get_data(as_text=True)
    assert "Opinions recorded: 0" in text
    assert client.get(f"/reports/{CAMPAIGN}/report.pdf").status_code == 404


def test_report_page_is_not_for_officers(login_as: Callable[[str], FlaskClient]) -> None:
    client = login_as("officer")
    assert client.get(f"/reports/{CAMPAIGN}").status_code == 403


def test_report_bad_as_of_is_a_clear_error(login_as: Callable[[str], FlaskClient]) -> None:
    client = login_as("supervisor")
    response = client.get(f"/reports/{CAMPAIGN}?as_of=yesterday")
    assert response.status_code == 400  # web.params refuses it before the engine runs
    assert "YYYY-MM-DD" in response.get_data(as_text=True)


def _upload(client: FlaskClient, body: bytes, name: str, accept: bool = False) -> str:
    token = csrf(client, "/imports")
    data = {"campaign": CAMPAIGN, "csrf_token": token, "file": (io.BytesIO(body), name)}
    if accept:
        data["accept_good_rows"] = "y"
    response = client.post("/imports", data=data, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)
    return client.get(response.headers["Location"]).get_data(as_text=True)


def test_import_page_lists_bad_rows_and_imports_nothing(
    app: Flask, login_as: Callable[[str], FlaskClient], tmp_path: Path
) -> None:
    app.config.update(IMPORTS_INLINE=True, IMPORT_DIR=str(tmp_path))
    client = login_as("clerk")
    page = client.get("/imports").get_data(as_text=True)
    assert "opinions-template" not in page and "/imports/template.xlsx" in page
    assert client.get("/imports/template.xlsx").data[:2] == b"PK"
    body = "text,kind\n网吧门口经常有人赌博,批评\n,praise\n".encode("gbk")
    html = _upload(client, body, "opinions.csv")
    assert 'id="errors"' in html and "is empty" in html
    assert "nothing was" in html

    html = _upload(client, body, "opinions.csv", accept=True)
    assert "1 opinions imported" in html and "Encoding: gb18030" in html
    link = re.search(r'href="([^"]+/rejects\.csv)"', html)
    assert link, html
    rejects = client.get(link.group(1))
    assert rejects.status_code == 200 and b"is empty" in rejects.data

    html = _upload(client, body, "opinions.csv", accept=True)
    assert "0 opinions imported" in html and "1 already imported" in html


def test_import_page_refuses_other_files(
    app: Flask, login_as: Callable[[str], FlaskClient], tmp_path: Path
) -> None:
    app.config.update(IMPORTS_INLINE=True, IMPORT_DIR=str(tmp_path))
    client = login_as("clerk")
    token = csrf(client, "/imports")
    response = client.post(
        "/imports",
        data={"campaign": CAMPAIGN, "csrf_token": token, "file": (io.BytesIO(b"x"), "a.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert "Only .csv and .xlsx" in response.get_data(as_text=True)


def test_an_import_job_is_a_row_any_app_instance_shows_and_the_worker_runs(
    app: Flask, clock: FixedClock, tmp_path: Path
) -> None:
    """Started on one app instance, read on another (as a second gunicorn worker would),
    run by the worker: nothing lives in one process's memory."""
    from engine import jobs
    from engine.context import build_context

    app.config.update(IMPORT_DIR=str(tmp_path))
    first = app.test_client()
    assert sign_in(first, "clerk").status_code == 302
    token = csrf(first, "/imports")
    body = "text,kind\n" + "".join(f"Street light {i} is out,suggestion\n" for i in range(30))
    response = first.post(
        "/imports",
        data={
            "campaign": CAMPAIGN,
            "csrf_token": token,
            "file": (io.BytesIO(body.encode()), "lights.csv"),
        },
        content_type="multipart/form-data",
    )
    job_path = response.headers["Location"]
    other_app = build_app(app.config["DB_URL"], clock)
    second = other_app.test_client()
    assert sign_in(second, "clerk").status_code == 302
    queued = second.get(job_path).get_data(as_text=True)
    assert 'http-equiv="refresh"' in queued  # still waiting for the worker
    stranger = other_app.test_client()
    assert sign_in(stranger, "supervisor").status_code == 302
    assert stranger.get(job_path).status_code == 404  # someone else's job is not shown

    worker = build_context({"database_url": app.config["DB_URL"]}, clock=clock)
    assert len(jobs.run_pending(worker)) == 1
    html = second.get(job_path).get_data(as_text=True)
    assert "30 opinions imported" in html
    assert 'http-equiv="refresh"' not in html
    assert not list(tmp_path.glob("*.csv"))  # the upload is removed once imported
    assert jobs.run_pending(worker) == []  # it ran once
    other_app.extensions["rectiflow.engine"].dispose()
    worker.dispose()


def test_a_job_whose_worker_died_is_taken_up_again_after_its_lease(
    app: Flask, clock: FixedClock, tmp_path: Path
) -> None:
    from datetime import timedelta

    from engine import jobs
    from engine.context import build_context

    path = tmp_path / "up.csv"
    path.write_text("text,kind\nLamps out,suggestion\n", encoding="utf-8")
    ctx = build_context({"database_url": app.config["DB_URL"]}, clock=clock)
    with ctx.unit_of_work() as uow:
        from engine.tickets import get_actor

        job_id = jobs.enqueue_import(
            uow,
            path=path,
            filename="up.csv",
            campaign=CAMPAIGN,
            actor=get_actor(uow.session, "clerk"),
            accept_good_rows=False,
        )
    assert jobs.claim_next(ctx) == job_id  # a worker takes it ... and dies
    assert jobs.claim_next(ctx) is None  # nobody else takes it while its lease runs
    clock.advance(jobs.LEASE + timedelta(seconds=1))
    assert jobs.claim_next(ctx) == job_id
    view = jobs.run_job(ctx, job_id)
    assert view.state == "done" and view.result is not None and view.result.created == 1
    ctx.dispose()
