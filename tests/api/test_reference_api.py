"""Audit search and verify, campaigns and their report, workflows, extensions, the OpenAPI
document and the docs page: success and each error."""

from __future__ import annotations

from sqlalchemy import text

from tests.api.conftest import fire_as
from tests.api.test_tickets_api import API, assert_error


def _assigned(client, auth, new_ticket) -> str:  # type: ignore[no-untyped-def]
    number = new_ticket(kind="request")["number"]
    fire_as(
        client,
        auth("clerk"),
        number,
        "categorize",
        1,
        category="traffic_management",
        kind="request",
    )
    moved = fire_as(
        client,
        auth("supervisor"),
        number,
        "assign",
        2,
        unit="traffic-brigade",
        officer="traffic.officer",
    )
    assert moved.status_code == 200, moved.json
    return number


def test_audit_search_pages_and_roles(client, auth, new_ticket):
    numbers = [new_ticket()["number"] for _ in range(3)]
    inspector = auth("inspector")
    first = client.get(f"{API}/audit?trigger=create&limit=2", headers=inspector).json
    assert [r["ticket"] for r in first["items"]] == numbers[::-1][:2]
    assert first["next_before_id"] is not None
    rest = client.get(
        f"{API}/audit?trigger=create&limit=2&before_id={first['next_before_id']}", headers=inspector
    ).json
    assert [r["ticket"] for r in rest["items"]] == [numbers[0]]
    assert rest["next_before_id"] is None
    one = client.get(f"{API}/audit?ticket={numbers[1]}", headers=inspector).json
    assert [r["seq"] for r in one["items"]] == [1]
    assert client.get(f"{API}/audit?actor=nobody", headers=inspector).json["items"] == []
    assert_error(client.get(f"{API}/audit", headers=auth("clerk")), 403, "not_permitted")
    assert_error(client.get(f"{API}/audit?since=yesterday", headers=inspector), 422, "invalid_data")


def test_audit_verify_finds_tampering(app, client, auth, new_ticket):
    number = new_ticket()["number"]
    inspector = auth("inspector")
    assert client.get(f"{API}/audit/verify", headers=inspector).json == {"ok": True, "problems": []}
    engine = app.extensions["rectiflow.engine"]
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS transition_log_no_update"))
        else:
            conn.execute(text("ALTER TABLE transition_log DISABLE TRIGGER USER"))
        conn.execute(
            text(
                "UPDATE transition_log SET actor = 'someone' WHERE ticket_id = "
                "(SELECT id FROM tickets WHERE number = :n)"
            ),
            {"n": number},
        )
    result = client.get(f"{API}/audit/verify?ticket={number}", headers=inspector).json
    assert result["ok"] is False
    assert result["problems"][0]["kind"] == "edited"
    assert_error(
        client.get(f"{API}/audit/verify", headers=auth("traffic.officer")), 403, "not_permitted"
    )


def test_campaigns_and_report(client, auth, new_ticket):
    new_ticket()
    clerk = auth("clerk")
    campaigns = client.get(f"{API}/campaigns", headers=clerk).json
    assert campaigns[0]["code"] == "consultation-2005"
    assert campaigns[0]["workflow"] == "consultation/v1"
    assert "traffic_management" in [c["code"] for c in campaigns[0]["categories"]]
    report = client.get(f"{API}/campaigns/consultation-2005/report", headers=auth("supervisor"))
    assert report.status_code == 200, report.json
    assert report.json["total"] == 1
    dated = client.get(f"{API}/campaigns/consultation-2005/report?as_of=2005-02-27", headers=clerk)
    assert dated.status_code == 200
    # The app's clock says 2005-02-28: March 18 is in the future (issue 14: a clear error).
    future = client.get(f"{API}/campaigns/consultation-2005/report?as_of=2005-03-18", headers=clerk)
    assert_error(future, 422, "invalid_data")
    assert "in the future" in future.json["error"]["message"]
    early = client.get(f"{API}/campaigns/consultation-2005/report?as_of=2005-02-01", headers=clerk)
    assert_error(early, 422, "invalid_data")
    assert "before the campaign" in early.json["error"]["message"]
    assert_error(client.get(f"{API}/campaigns/nope/report", headers=clerk), 404, "not_found")
    assert_error(
        client.get(f"{API}/campaigns/consultation-2005/report?as_of=soon", headers=clerk),
        422,
        "invalid_data",
    )
    assert_error(
        client.get(f"{API}/campaigns/consultation-2005/report", headers=auth("citizen")),
        403,
        "not_permitted",
    )


def test_workflows(client, auth):
    clerk = auth("clerk")
    listed = client.get(f"{API}/workflows", headers=clerk).json
    assert (listed[0]["name"], listed[0]["version"]) == ("consultation", 1)
    one = client.get(f"{API}/workflows/consultation/1", headers=clerk).json
    assert one["initial"] == "received"
    assert "categorize" in [t["name"] for t in one["triggers"]]
    assert "category" in one["fields"]
    assert_error(client.get(f"{API}/workflows/consultation/9", headers=clerk), 404, "not_found")
    assert_error(client.get(f"{API}/workflows/nope/1", headers=clerk), 404, "not_found")
    assert_error(
        client.get(f"{API}/workflows/consultation/99999999999", headers=clerk), 404, "not_found"
    )


def test_extension_asked_and_decided(client, auth, new_ticket):
    number = _assigned(client, auth, new_ticket)
    leader = auth("traffic.leader")
    asked = client.post(
        f"{API}/tickets/{number}/extensions",
        json={"due_at": "2005-03-25T18:00:00+08:00", "reason": "Lamps arrive in March."},
        headers=leader,
    )
    assert asked.status_code == 201, asked.json
    ext = asked.json
    assert ext["status"] == "pending" and ext["requested_by"] == "traffic.leader"

    again = client.post(
        f"{API}/tickets/{number}/extensions",
        json={"due_at": "2005-03-26T18:00:00+08:00", "reason": "again"},
        headers=leader,
    )
    assert_error(again, 409, "conflict")
    assert_error(
        client.post(
            f"{API}/extensions/{ext['id']}/decision", json={"approve": True}, headers=leader
        ),
        403,
        "not_permitted",
    )
    refused = client.post(
        f"{API}/extensions/{ext['id']}/decision",
        json={"approve": False},
        headers=auth("supervisor"),
    )
    error = assert_error(refused, 422, "invalid_data")
    assert "note" in error["details"]["fields"]
    decided = client.post(
        f"{API}/extensions/{ext['id']}/decision", json={"approve": True}, headers=auth("supervisor")
    )
    assert decided.status_code == 200, decided.json
    assert decided.json["status"] == "approved"
    ticket = client.get(f"{API}/tickets/{number}", headers=leader).json
    assert ticket["due_at"].startswith("2005-03-25T10:00:00")
    assert_error(
        client.post(
            f"{API}/extensions/{ext['id']}/decision",
            json={"approve": True},
            headers=auth("supervisor"),
        ),
        409,
        "conflict",
    )
    assert_error(
        client.post(
            f"{API}/extensions/424242/decision", json={"approve": True}, headers=auth("supervisor")
        ),
        404,
        "not_found",
    )


def test_extension_errors(client, auth, new_ticket):
    number = _assigned(client, auth, new_ticket)
    leader = auth("traffic.leader")
    error = assert_error(
        client.post(f"{API}/tickets/{number}/extensions", json={"reason": "x"}, headers=leader),
        422,
        "invalid_data",
    )
    assert "due_at" in error["details"]["fields"]
    error = assert_error(
        client.post(
            f"{API}/tickets/{number}/extensions",
            json={"due_at": "2005-02-01T00:00:00Z", "reason": "x"},
            headers=leader,
        ),
        422,
        "invalid_data",
    )
    assert "due_at" in error["details"]["fields"]
    assert_error(
        client.post(
            f"{API}/tickets/{number}/extensions",
            json={"due_at": "2005-03-25T00:00:00Z", "reason": "x"},
            headers=auth("legal.leader"),
        ),
        403,
        "not_permitted",
    )
    assert_error(
        client.post(
            f"{API}/tickets/1999-0001/extensions",
            json={"due_at": "2005-03-25T00:00:00Z", "reason": "x"},
            headers=leader,
        ),
        404,
        "not_found",
    )


def test_openapi_document_and_docs_page(client):
    spec = client.get(f"{API}/openapi.json").json
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path in (
        "/api/v1/tickets",
        "/api/v1/tickets/{number}",
        "/api/v1/tickets/{number}/transitions",
        "/api/v1/tickets/{number}/history",
        "/api/v1/tickets/{number}/extensions",
        "/api/v1/extensions/{extension_id}/decision",
        "/api/v1/audit",
        "/api/v1/audit/verify",
        "/api/v1/campaigns",
        "/api/v1/campaigns/{code}/report",
        "/api/v1/workflows",
        "/api/v1/workflows/{name}/{version}",
    ):
        assert path in paths, path
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "error" in spec["components"]["schemas"]["Error"]["properties"]
    # every error answer an operation gives is documented (web.api.common.documented), the
    # 429 with its Retry-After header
    answers = paths["/api/v1/tickets/{number}/transitions"]["post"]["responses"]
    assert set(answers) == {
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "422",
        "429",
        "default",
    }
    assert "Retry-After" in answers["429"]["headers"]
    assert set(paths["/api/v1/tickets/{number}"]["get"]["responses"]) == {
        "200",
        "401",
        "403",
        "404",
        "429",
        "default",
    }
    page = client.get(f"{API}/docs")
    assert page.status_code == 200 and b"swagger-ui" in page.data
    assert b"https://" not in page.data
    asset = client.get(f"{API}/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    asset.close()
