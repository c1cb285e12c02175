"""Open311 GeoReport v2: every resource in JSON and XML, against the spec's JSON schemas,
and each error as the spec's list of {code, description}."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.api.conftest import fire_as

BASE = "/open311/v2"


def assert_errors(response, status: int) -> list:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.data
    if response.mimetype == "text/xml":
        root = ET.fromstring(response.data)
        assert root.tag == "errors"
        errors = [
            {"code": int(e.findtext("code")), "description": e.findtext("description")}
            for e in root.findall("error")
        ]
    else:
        errors = response.json
    assert errors and all(e["code"] == status and e["description"] for e in errors)
    return errors


def submit(client, key: str, **fields):  # type: ignore[no-untyped-def]
    data = {
        "api_key": key,
        "service_code": "opinion",
        "description": "The lamp is out.",
        "address_string": "Market Street 3, Luohe",
    }
    data.update(fields)
    return client.post(f"{BASE}/requests.json", data=data)


def test_discovery(client):
    body = client.get(f"{BASE}/discovery.json").json
    assert body["endpoints"][0]["url"].endswith("/open311/v2")
    assert "text/xml" in body["endpoints"][0]["formats"]
    root = ET.fromstring(client.get(f"{BASE}/discovery.xml").data)
    assert root.tag == "discovery"
    assert root.find("endpoints/endpoint/specification").text.endswith("GeoReport_v2")


def test_services_and_definitions(client, open311_schema):
    services = client.get(f"{BASE}/services.json").json
    open311_schema("services.json").validate(services)
    codes = [s["service_code"] for s in services]
    # Each open programme's services, coded <programme>.<category> (the seed has one).
    assert codes[0] == "consultation-2005.opinion"
    assert "consultation-2005.traffic_management" in codes
    assert client.get(f"{BASE}/services").json == services
    root = ET.fromstring(client.get(f"{BASE}/services.xml").data)
    assert [s.findtext("service_code") for s in root.findall("service")] == codes
    definition = client.get(f"{BASE}/services/consultation-2005.opinion.json").json
    open311_schema("service-definition.json").validate(definition)
    # A plain code is still understood while one open programme alone offers it.
    assert client.get(f"{BASE}/services/opinion.json").json == definition
    assert [a["code"] for a in definition["attributes"]] == ["kind", "area"]
    xml = ET.fromstring(client.get(f"{BASE}/services/traffic_management.xml").data)
    assert xml.tag == "service_definition"
    assert [v.findtext("key") for v in xml.findall("attributes/attribute/values/value")][:1] == [
        "praise"
    ]
    assert_errors(client.get(f"{BASE}/services/nope.json"), 404)
    assert_errors(client.get(f"{BASE}/services/nope.xml"), 404)


def test_submit_and_read_back(client, token, open311_schema):
    key = token("clerk")
    response = submit(
        client,
        key,
        service_code="traffic_management",
        description="Trucks speed past the school at night.",
        lat="30.25",
        long="120.17",
        address_string="School Road 1, Luohe",
        first_name="Li",
        last_name="Na",
        email="li.na@example.org",
        phone="138",
        **{"attribute[kind]": "criticism", "attribute[area]": "Luohe"},
    )
    assert response.status_code == 201, response.data
    created = response.json
    number = created[0]["service_request_id"]
    assert "Receipt code" in created[0]["service_notice"]

    one = client.get(f"{BASE}/requests/{number}.json", headers={"Accept-Language": "en"}).json
    open311_schema("requests.json").validate(one)
    item = one[0]
    assert item["service_code"] == "consultation-2005.traffic_management"
    assert item["service_name"] == "Traffic management"
    # Names are in the reader's language (the organisation's default, Chinese, without one).
    assert client.get(f"{BASE}/requests/{number}.json").json[0]["service_name"] == "交通管理"
    assert item["status"] == "open"
    # The public sees where the request stands, not where the person is (privacy).
    assert item["lat"] is None and item["address"] is None and item["description"] is None
    staff = client.get(f"{BASE}/requests/{number}.json?api_key={key}").json[0]
    assert staff["lat"] == 30.25 and staff["address"] == "School Road 1, Luohe"
    assert item["requested_datetime"] == "2005-02-28T02:00:00Z"
    assert item["expected_datetime"] is not None
    assert "li.na" not in response.get_data(as_text=True).split("Receipt")[0]
    assert "Li Na" not in str(one) and "example.org" not in str(one)

    xml = ET.fromstring(client.get(f"{BASE}/requests/{number}.xml").data)
    assert xml.tag == "service_requests"
    assert xml.findtext("request/service_request_id") == number
    assert xml.findtext("request/status") == "open"

    tokened = client.get(f"{BASE}/tokens/{number}.json").json
    assert tokened == [{"service_request_id": number, "token": number}]
    assert_errors(client.get(f"{BASE}/tokens/1999-0001.json"), 404)
    assert_errors(client.get(f"{BASE}/requests/1999-0001.xml"), 404)


def test_status_notes_and_agency_follow_the_workflow(client, token, auth):
    key = token("clerk")
    number = submit(client, key, **{"attribute[kind]": "praise"}).json[0]["service_request_id"]
    clerk = auth("clerk")
    fire_as(client, clerk, number, "categorize", 1, category="team_building", kind="praise")
    done = fire_as(
        client,
        clerk,
        number,
        "feed_back",
        2,
        method="letter",
        text="Thank you for your kind words.",
        date="2005-02-28",
    )
    assert done.status_code == 200, done.json
    item = client.get(f"{BASE}/requests/{number}.json").json[0]
    assert item["status"] == "closed"
    # Feedback text may name the person: the public gets the state's title instead.
    assert item["status_notes"] == "Fed back to the citizen"
    staff = client.get(f"{BASE}/requests/{number}.json?api_key={key}").json[0]
    assert staff["status_notes"] == "Thank you for your kind words."
    assert item["service_code"] == "consultation-2005.team_building"
    closed = client.get(f"{BASE}/requests.json?status=closed").json
    assert [r["service_request_id"] for r in closed] == [number]


def test_list_filters(client, token, open311_schema):
    key = token("clerk")
    first = submit(client, key).json[0]["service_request_id"]
    second = submit(client, key, service_code="law_enforcement").json[0]["service_request_id"]
    listed = client.get(f"{BASE}/requests.json").json
    open311_schema("requests.json").validate(listed)
    assert [r["service_request_id"] for r in listed] == [second, first]
    assert [
        r["service_request_id"]
        for r in client.get(f"{BASE}/requests.json?service_code=opinion").json
    ] == [first]
    both = client.get(f"{BASE}/requests.json?service_code=opinion,law_enforcement&status=open").json
    assert len(both) == 2
    by_id = client.get(f"{BASE}/requests.json?service_request_id={first}&status=closed").json
    assert [r["service_request_id"] for r in by_id] == [first]
    window = client.get(
        f"{BASE}/requests.json?start_date=2005-03-01T00:00:00Z&end_date=2005-03-10T00:00:00Z"
    ).json
    assert window == []
    earlier = client.get(f"{BASE}/requests.json?start_date=2005-02-01T00:00:00%2B08:00").json
    assert len(earlier) == 2
    xml = ET.fromstring(client.get(f"{BASE}/requests.xml").data)
    assert len(xml.findall("request")) == 2
    assert client.get(f"{BASE}/requests.json?status=closed").json == []


@pytest.mark.parametrize(
    "query",
    [
        "status=pending",
        "start_date=yesterday",
        "start_date=2005-01-01T00:00:00Z&end_date=2005-06-01T00:00:00Z",
        "start_date=2005-03-01T00:00:00Z&end_date=2005-02-01T00:00:00Z",
    ],
)
def test_list_errors(client, query):
    assert_errors(client.get(f"{BASE}/requests.json?{query}"), 400)
    assert_errors(client.get(f"{BASE}/requests.xml?{query}"), 400)


def test_submit_errors(client, token):
    key = token("clerk")
    assert_errors(submit(client, ""), 403)
    assert_errors(submit(client, "wrong-key"), 403)
    assert_errors(submit(client, token("inspector")), 403)
    errors = assert_errors(submit(client, key, service_code="", description=""), 400)
    assert {e["description"].split(":")[0] for e in errors} == {"service_code", "description"}
    assert_errors(submit(client, key, service_code="potholes"), 400)
    assert_errors(submit(client, key, lat="30.1"), 400)
    assert_errors(submit(client, key, lat="north", long="1"), 400)
    assert_errors(submit(client, key, lat="95", long="1"), 400)
    assert_errors(submit(client, key, **{"attribute[kind]": "rant"}), 400)
    assert_errors(submit(client, key, description="a\x00b"), 400)
    xml = client.post(f"{BASE}/requests.xml", data={"api_key": key})
    assert_errors(xml, 400)
    assert_errors(client.get(f"{BASE}/requests.csv"), 404)
    assert_errors(client.get(f"{BASE}/nothing.json"), 404)
    assert_errors(client.delete(f"{BASE}/requests.json"), 405)


def test_configured_campaign(app, client):
    app.config["RECTIFLOW"]["open311_campaign"] = "no-such-campaign"
    assert_errors(client.get(f"{BASE}/services.json"), 404)
    app.config["RECTIFLOW"]["open311_campaign"] = "consultation-2005"
    assert client.get(f"{BASE}/services.json").status_code == 200


def test_times_outside_the_calendar_are_400(client):
    assert_errors(client.get(f"{BASE}/requests.json?start_date=0001-01-01T00:00:00%2B05:00"), 400)
