"""The pages of issue 11: the administrators' workflow versions and migration dry run
(admin.workflows), the hotline's service report, the desk for either programme."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from engine.clock import FixedClock
from engine.organisation import load_campaign_file
from engine.settings import PROJECT_ROOT
from tests.conftest import CAMPAIGN_NOW
from tests.integration.test_versions import PLAN, V2
from tests.web.conftest import csrf
from web import create_app


@pytest.fixture
def app(sqlite_url: str, tmp_path: Path) -> Iterator[Flask]:
    wf = tmp_path / "workflows"
    wf.mkdir()
    for f in (PROJECT_ROOT / "workflows").glob("*.toml"):
        shutil.copy(f, wf)
    (wf / "consultation-v2.toml").write_text(V2, encoding="utf-8")
    app = create_app(
        {
            "database_url": sqlite_url,
            "workflows_dir": str(wf),
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "CLOCK": FixedClock(CAMPAIGN_NOW),
        }
    )
    yield app
    app.extensions["rectiflow.engine"].dispose()


def test_admin_lists_versions_and_sees_the_dry_run(
    client: FlaskClient,
    login_as,
    make_ticket,  # type: ignore[no-untyped-def]
) -> None:
    make_ticket("rectified")
    make_ticket("received")
    login_as("admin")
    page = client.get("/admin/workflows")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "consultation" in html and "hotline" in html and "consultation-v2.toml" in html
    token = csrf(client, "/admin/workflows/migrate")
    r = client.post("/admin/workflows/migrate", data={"plan": PLAN, "csrf_token": token})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'id="dry-run"' in html
    assert '<td>rectified</td><td>verified</td><td class="num">1</td>' in html
    assert '<td>received</td><td>received</td><td class="num">1</td>' in html
    bad = PLAN.replace('rectified = "verified"', 'rectified = "nowhere"')
    r = client.post("/admin/workflows/migrate", data={"plan": bad, "csrf_token": token})
    assert r.status_code == 422
    assert "states.rectified: &#39;nowhere&#39; is not a state" in r.get_data(as_text=True)


def test_only_administrators_reach_the_workflow_pages(client: FlaskClient, login_as) -> None:  # type: ignore[no-untyped-def]
    login_as("clerk")
    assert client.get("/admin/workflows").status_code == 403
    assert client.get("/admin/workflows/migrate").status_code == 403


def test_hotline_desk_and_service_report(app: Flask, client: FlaskClient, login_as) -> None:  # type: ignore[no-untyped-def]
    from demo.hotline import replay_hotline
    from engine.context import build_context

    ctx = build_context(engine=app.extensions["rectiflow.engine"])
    with ctx.unit_of_work() as uow:
        load_campaign_file(uow, PROJECT_ROOT / "config" / "campaigns" / "hotline-12345.toml")
        summary = replay_hotline(uow)
    assert summary.made == 150
    login_as("hotline.operator")
    page = client.get("/desk/categorize?campaign=hotline-12345")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "待派单" in html  # the queue's title in the reader's language (zh_CN by default)
    intake = client.get("/desk/intake?campaign=hotline-12345").get_data(as_text=True)
    assert 'value="complaint"' in intake and 'value="urgent"' in intake
    report = client.get("/reports/hotline-12345")
    assert report.status_code == 200
    text = report.get_data(as_text=True)
    # The operator reads the pages in Chinese (the report's labels are in the catalogues).
    assert 'lang="zh-CN"' in text
    assert "按时签收" in text and "按单位" in text and "常态化服务" in text
    assert "signed_for" not in text and "rated_" not in text  # titles, not codes
    english = client.get("/reports/hotline-12345", headers={"Accept-Language": "en"})
    shown = english.get_data(as_text=True)
    assert (
        "Signed for on time" in shown and "Handled on time" in shown and "signed_for" not in shown
    )
