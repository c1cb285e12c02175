"""Open311 per service, with the programme it belongs to: the consultation campaign and the
12345 hotline (a continuous programme) side by side. Every programme open for intake lists
its services coded ``<programme>.<category>``, grouped under the programme's title in the
reader's language; a request goes to its service's programme, with that programme's workflow
and numbering; reading works across programmes with the privacy rules; a closed programme's
services are not listed and a request to one is refused. With ``open311_campaign`` set, the
one programme's plain codes, as before."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import select

from engine.clock import FixedClock
from engine.models import Ticket, TransitionLog
from engine.organisation import upsert_campaign
from engine.settings import PROJECT_ROOT
from tests.open311.test_open311 import assert_errors

BASE = "/open311/v2"
HOTLINE = "hotline-12345"
# Monday 2005-02-28, 10:00 in Shanghai: the consultation campaign runs Feb 25 - Mar 31.
DURING = datetime(2005, 2, 28, 2, 0, tzinfo=UTC)
AFTER = datetime(2005, 4, 5, 2, 0, tzinfo=UTC)  # the campaign has ended; the hotline runs on


@pytest.fixture
def both(app: Flask) -> Flask:
    """The seeded consultation campaign and the hotline, its service started in 2005."""
    path = PROJECT_ROOT / "config" / "campaigns" / f"{HOTLINE}.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data["starts_on"] = datetime(2005, 1, 1).date()
    ctx = app.extensions["rectiflow.ctx"]
    with ctx.unit_of_work() as uow:
        upsert_campaign(uow, data, source=str(path))
    app.config["CLOCK"] = FixedClock(DURING)
    return app


def _post(client, key: str, code: str, **fields: str):  # type: ignore[no-untyped-def]
    data = {
        "api_key": key,
        "service_code": code,
        "description": "Street light out since Monday.",
        "address_string": "Market Street 3, Luohe",
        "first_name": "Wang",
        "phone": "139",
    }
    data.update(fields)
    return client.post(f"{BASE}/requests.json", data=data)


def _ticket(app: Flask, number: str) -> Ticket:
    with app.extensions["rectiflow.sessions"]() as session:
        return session.scalars(select(Ticket).where(Ticket.number == number)).one()


def test_both_programmes_list_their_services_under_their_titles(both, client, open311_schema):  # type: ignore[no-untyped-def]
    services = client.get(f"{BASE}/services.json", headers={"Accept-Language": "en"}).json
    open311_schema("services.json").validate(services)
    by_code = {s["service_code"]: s for s in services}
    assert "consultation-2005.traffic_management" in by_code
    assert "hotline-12345.noise" in by_code and "hotline-12345.opinion" in by_code
    assert len(by_code) == len(services)  # each code unique across programmes
    assert by_code["hotline-12345.noise"]["group"] == "County 12345 Citizen Service Hotline"
    assert by_code["hotline-12345.noise"]["service_name"] == "Noise and neighbourhood disputes"
    consultation_group = by_code["consultation-2005.traffic_management"]["group"]
    assert consultation_group != by_code["hotline-12345.noise"]["group"]
    # The reader's language: Chinese titles for a Chinese reader.
    zh = client.get(f"{BASE}/services.json", headers={"Accept-Language": "zh-CN"}).json
    zh_by_code = {s["service_code"]: s for s in zh}
    assert zh_by_code["hotline-12345.noise"]["group"] == "县12345市民服务热线"
    assert zh_by_code["hotline-12345.noise"]["service_name"] == "噪声与邻里纠纷"
    assert (
        zh_by_code["hotline-12345.opinion"]["service_name"] == "意见、诉求或问题（由工作人员分类）"
    )
    assert by_code["hotline-12345.opinion"]["service_name"].startswith("Opinion, request")
    # A service's definition carries its own workflow's kinds.
    definition = client.get(f"{BASE}/services/hotline-12345.noise.json").json
    open311_schema("service-definition.json").validate(definition)
    kinds = [v["key"] for v in definition["attributes"][0]["values"]]
    assert "complaint" in kinds and "criticism" not in kinds
    consultation = client.get(f"{BASE}/services/consultation-2005.opinion.json").json
    assert "criticism" in [v["key"] for v in consultation["attributes"][0]["values"]]
    # The OpenAPI document offers exactly the listed codes.
    document = client.get(f"{BASE}/openapi.json").json
    enum = document["paths"]["/services/{service_code}.{format}"]["get"]["parameters"][0]
    assert sorted(enum["schema"]["enum"]) == sorted(by_code)


def test_a_request_goes_to_its_services_programme_and_workflow(both, client, token):  # type: ignore[no-untyped-def]
    key = token("clerk")
    hotline = _post(client, key, "hotline-12345.noise", **{"attribute[kind]": "complaint"})
    assert hotline.status_code == 201, hotline.data
    consultation = _post(client, key, "consultation-2005.traffic_management")
    assert consultation.status_code == 201, consultation.data
    general = _post(client, key, "hotline-12345.opinion")
    assert general.status_code == 201, general.data
    h, c, g = (r.json[0]["service_request_id"] for r in (hotline, consultation, general))
    # Numbering per programme: the hotline's own prefix and counter.
    assert h == "RX-0001" and g == "RX-0002" and not c.startswith("RX-")
    t = _ticket(both, h)
    assert (t.workflow_name, t.category, t.kind, t.state) == (
        "hotline",
        "noise",
        "complaint",
        "accepted",  # classified without moving: the operator still dispatches it
    )
    with both.extensions["rectiflow.sessions"]() as session:
        triggers = session.scalars(
            select(TransitionLog.trigger).where(TransitionLog.ticket_id == t.id)
        ).all()
    assert triggers == ["create", "classify"]  # the hotline's [uses] categorize
    tc = _ticket(both, c)
    assert (tc.workflow_name, tc.category, tc.state) == (
        "consultation",
        "traffic_management",
        "categorized",
    )
    assert _ticket(both, g).category is None  # the general service: staff sort it
    # Reading across programmes; the public sees no one's words or contact.
    listed = client.get(f"{BASE}/requests.json?start_date=2005-02-01T00:00:00Z").json
    assert {r["service_request_id"] for r in listed} == {h, c, g}
    one = client.get(f"{BASE}/requests/{h}.json", headers={"Accept-Language": "en"}).json[0]
    assert one["service_code"] == "hotline-12345.noise"
    assert one["service_name"] == "Noise and neighbourhood disputes"
    assert one["description"] is None and one["address"] is None
    assert one["status_notes"] == "Accepted by the hotline centre, to dispatch"
    staff = client.get(f"{BASE}/requests/{h}.json?api_key={key}").json[0]
    assert staff["description"] == "Street light out since Monday."
    assert "Wang" not in str(staff) and "139" not in str(staff)
    only_hotline = client.get(
        f"{BASE}/requests.json?start_date=2005-02-01T00:00:00Z&service_code=hotline-12345.noise"
    ).json
    assert [r["service_request_id"] for r in only_hotline] == [h]


def test_a_plain_code_offered_by_both_is_refused_naming_the_choices(both, client, token):  # type: ignore[no-untyped-def]
    key = token("clerk")
    errors = assert_errors(_post(client, key, "opinion"), 400)
    assert "consultation-2005.opinion" in errors[0]["description"]
    assert "hotline-12345.opinion" in errors[0]["description"]
    # A plain code only one open programme offers still works.
    assert _post(client, key, "noise").json[0]["service_request_id"].startswith("RX-")
    assert_errors(_post(client, key, "hotline-12345.potholes"), 400)


def test_a_closed_programme_is_not_listed_and_refuses_requests(both, client, token):  # type: ignore[no-untyped-def]
    key = token("clerk")
    before = _post(client, key, "consultation-2005.traffic_management").json[0]
    both.config["CLOCK"] = FixedClock(AFTER)
    codes = [s["service_code"] for s in client.get(f"{BASE}/services.json").json]
    assert codes and all(c.startswith("hotline-12345.") for c in codes)
    refused = _post(client, key, "consultation-2005.traffic_management")
    errors = assert_errors(refused, 400)
    assert errors[0]["description"].startswith("service_code:")
    assert "consultation-2005" in errors[0]["description"]
    assert "ended on 2005-03-31" in errors[0]["description"]
    xml = client.post(
        f"{BASE}/requests.xml",
        data={
            "api_key": key,
            "service_code": "consultation-2005.opinion",
            "description": "x",
            "address_string": "y",
        },
    )
    assert_errors(xml, 400)
    assert_errors(client.get(f"{BASE}/services/consultation-2005.opinion.json"), 404)
    with both.extensions["rectiflow.sessions"]() as session:
        count = len(session.scalars(select(Ticket.id)).all())
    assert count == 1  # nothing written by the refusals
    # Its requests can still be read.
    one = client.get(f"{BASE}/requests/{before['service_request_id']}.json").json[0]
    assert one["service_code"] == "consultation-2005.traffic_management"
    # The hotline takes requests on.
    assert _post(client, key, "hotline-12345.traffic").status_code == 201


def test_the_single_campaign_setting_keeps_plain_codes(both, client, token):  # type: ignore[no-untyped-def]
    both.config["RECTIFLOW"]["open311_campaign"] = HOTLINE
    services = client.get(f"{BASE}/services.json", headers={"Accept-Language": "en"}).json
    codes = [s["service_code"] for s in services]
    assert codes[0] == "opinion" and "noise" in codes and "traffic_management" not in codes
    assert {s["group"] for s in services} == {"County 12345 Citizen Service Hotline"}
    created = _post(client, token("clerk"), "noise")
    assert created.status_code == 201, created.data
    number = created.json[0]["service_request_id"]
    assert number.startswith("RX-")
    assert client.get(f"{BASE}/requests/{number}.json").json[0]["service_code"] == "noise"
