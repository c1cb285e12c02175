"""Input that once reached a 500 on the API and Open311 (issue 13): JSON nested deeper than
the limit, a body past the size limit, dates whose day or offset leaves the calendar."""

from __future__ import annotations

import pytest

DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT])
@pytest.mark.parametrize("path", ["/api/v1/tickets", "/api/v1/tickets/2005-0001/transitions"])
def test_deeply_nested_json_is_400(client, auth, path: str, body: str) -> None:
    response = client.post(
        path, data=body, headers={**auth("supervisor"), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"
    assert "nested deeper than 32 levels" in response.json["error"]["message"]


def test_nesting_within_the_limit_reaches_the_schema(client, auth) -> None:
    nested = {"name": "x"}
    for _ in range(20):
        nested = {"name": nested}
    response = client.post(
        "/api/v1/tickets",
        json={"campaign": "consultation-2005", "text": "x", "citizen": nested},
        headers=auth("clerk"),
    )
    assert response.status_code == 422  # the schema's answer, not the depth check's


def test_body_over_one_mebibyte_is_413(client, auth) -> None:
    response = client.post(
        "/api/v1/tickets",
        json={"campaign": "consultation-2005", "text": "x" * (1024 * 1024 + 1)},
        headers=auth("clerk"),
    )
    assert response.status_code == 413
    assert response.json["error"]["code"] == "request_entity_too_large"


@pytest.mark.parametrize("as_of", ["9999-12-31", "0001-01-01"])
def test_report_as_of_outside_the_calendar_is_422(client, auth, as_of: str) -> None:
    response = client.get(
        f"/api/v1/campaigns/consultation-2005/report?as_of={as_of}", headers=auth("supervisor")
    )
    assert response.status_code == 422
    assert "must lie between 1900-01-01 and 2999-12-31" in response.json["error"]["message"]


@pytest.mark.parametrize(
    "query",
    [
        "end_date=0001-01-01T00:00:00-14:00",
        "start_date=9999-12-31T23:59:59%2B14:00",
        "start_date=9999-12-31T23:59:59-12:00",
        "end_date=0001-01-01T00:00:00%2B14:00",
    ],
)
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_open311_dates_outside_the_calendar_are_400(client, query: str, fmt: str) -> None:
    response = client.get(f"/open311/v2/requests.{fmt}?{query}")
    assert response.status_code == 400
    assert b"between 1900-01-01 and 2999-12-31" in response.data
