"""An existing Open311 client from PyPI talks to rectiflow over HTTP (127.0.0.1, a server
thread): ``georeport`` reads services, definitions and requests in JSON and XML.

georeport does not submit requests ("does not currently support the creation of new 311
service requests"), and the older PyPI clients (``open311``, ``three``) are Python 2 only.
So the submission goes through a small subclass that adds ``post_service_request`` the way
the spec defines it (form-encoded POST with ``api_key``), using the client's own root
address, jurisdiction and key; everything read back goes through georeport itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from georeport import GeoReport
from werkzeug.serving import make_server

from engine.tokens import create_token
from tests.api.conftest import make_app
from tests.conftest import CAMPAIGN_NOW


class SubmittingGeoReport(GeoReport):  # type: ignore[misc]
    def post_service_request(self, service_code: str, **fields: Any) -> list[dict[str, Any]]:
        data = {"service_code": service_code, "api_key": self.api_key, **fields}
        if self.jurisdiction:
            data["jurisdiction_id"] = self.jurisdiction
        response = requests.post(
            f"{self.root_address}/requests.{self.output_format}", data=data, timeout=10
        )
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def live_app(sqlite_url: str) -> Iterator[tuple[Flask, str]]:
    app = make_app(sqlite_url)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}/open311/v2"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        app.extensions["rectiflow.engine"].dispose()


def test_georeport_client_submits_and_reads_back(live_app: tuple[Flask, str]) -> None:
    app, root = live_app
    with app.extensions["rectiflow.sessions"]() as session:
        key = create_token(session, "clerk", now=CAMPAIGN_NOW, name="hotline").token
        session.commit()

    client = SubmittingGeoReport(root, jurisdiction="consultation-2005", api_key=key)
    services = client.get_service_list()
    codes = [s["service_code"] for s in services]
    assert "consultation-2005.opinion" in codes
    assert "consultation-2005.public_security_management" in codes
    definition = client.get_service_definition("opinion")
    assert definition["attributes"][0]["code"] == "kind"

    created = client.post_service_request(
        "public_security_management",
        description="Gambling in the back room of the tea house every night.",
        address_string="Tea house, Liubao",
        email="anon@example.org",
        **{"attribute[kind]": "request", "attribute[area]": "Liubao"},
    )
    number = created[0]["service_request_id"]

    one = client.get_service_request(number)
    assert one["service_request_id"] == number
    assert one["status"] == "open"
    assert one["service_code"] == "consultation-2005.public_security_management"
    assert one["address"] is None  # the public (georeport sends no key on reads) sees no address
    assert one["status_notes"] == "Categorized"  # the service chosen categorized it
    staff = requests.get(
        f"{root}/requests/{number}.json", params={"api_key": key}, timeout=10
    ).json()[0]
    assert staff["address"] == "Tea house, Liubao"
    listed = client.get_service_requests(service_code="public_security_management", status="open")
    assert [r["service_request_id"] for r in listed] == [number]

    xml_client = GeoReport(root, output_format="xml")
    assert [s["service_code"] for s in xml_client.get_service_list()] == codes
    from_xml = xml_client.get_service_request(number)
    assert from_xml["service_request_id"] == number
    assert from_xml["status"] == "open"
    definition_xml = xml_client.get_service_definition("opinion")
    assert definition_xml["service_code"] == "consultation-2005.opinion"

    with pytest.raises(requests.HTTPError) as refused:
        SubmittingGeoReport(root, api_key="wrong").post_service_request("opinion", description="x")
    assert refused.value.response.status_code == 403
    assert refused.value.response.json()[0]["code"] == 403
