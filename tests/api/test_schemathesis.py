"""Property-based runs of schemathesis against both OpenAPI documents, in-process (WSGI):
``/api/v1/openapi.json`` (generated from the code) and ``/open311/v2/openapi.json``
(``web/open311/openapi.py``). Every check schemathesis has runs: no server error, status
codes, content types, headers and bodies as documented, authentication not ignored, bad data
refused, good data accepted. Then stateful runs follow the documents' links (create a
ticket, read it, fire a trigger with the version it returned, ask an extension, decide it;
submit a service request, read it back, ask its token).

"Good data accepted" is configured, not switched off: data that matches the document can
still meet a business rule (an unknown campaign or ticket number, a trigger the state does
not allow, text with a NUL character, lat without long), answered 400/404/409/422 as
documented; any other refusal of schema-valid data fails the run.

Bounded: a few examples per operation on SQLite. Requests carry a supervisor's token (API)
or a clerk's api_key (Open311) through the documents' security schemes, so schemathesis also
tries them without or with a wrong key (401/403). Rate limits are off in these apps (a fuzzer
is what they would stop; tests/web/test_rate_limits.py covers them).
``RECTIFLOW_FUZZ_EXAMPLES`` raises the number of examples for a longer local run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

from engine.clock import FixedClock
from engine.tokens import create_token
from tests.conftest import CAMPAIGN_NOW
from web import create_app

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("RECTIFLOW_FUZZ_EXAMPLES", "8"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
BUSINESS_REFUSALS = {
    "api": ["2XX", "400", "404", "409", "422"],
    "open311": ["2XX", "400", "404"],
}


@pytest.fixture
def fuzz_app(sqlite_url: str) -> Iterator[Flask]:
    app = create_app(
        {
            "database_url": sqlite_url,
            "secret_key": "test",
            "TESTING": True,
            "rate_limits": {"enabled": False},
        }
    )
    app.config["CLOCK"] = FixedClock(CAMPAIGN_NOW)
    with app.extensions["rectiflow.sessions"]() as session:
        app.config["FUZZ_TOKEN"] = create_token(session, "supervisor", now=CAMPAIGN_NOW).token
        app.config["FUZZ_KEY"] = create_token(session, "clerk", now=CAMPAIGN_NOW).token
        session.commit()
    yield app
    app.extensions["rectiflow.engine"].dispose()


def _config(which: str, auth: dict) -> schemathesis.config.SchemathesisConfig:  # type: ignore[type-arg]
    return schemathesis.config.SchemathesisConfig.from_dict(
        {
            "auth": {"openapi": auth},
            "checks": {"positive_data_acceptance": {"expected-statuses": BUSINESS_REFUSALS[which]}},
        }
    )


@pytest.fixture
def api_schema(fuzz_app: Flask):  # type: ignore[no-untyped-def]
    config = _config("api", {"bearerAuth": {"bearer": fuzz_app.config["FUZZ_TOKEN"]}})
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app, config=config)


@pytest.fixture
def open311_schema_doc(fuzz_app: Flask):  # type: ignore[no-untyped-def]
    config = _config("open311", {"api_key": {"api_key": fuzz_app.config["FUZZ_KEY"]}})
    return schemathesis.openapi.from_wsgi("/open311/v2/openapi.json", fuzz_app, config=config)


api = schemathesis.pytest.from_fixture("api_schema")
open311 = schemathesis.pytest.from_fixture("open311_schema_doc")


@api.parametrize()
@SETTINGS
def test_api_conforms_to_its_document(case, fuzz_app: Flask) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate()


@open311.parametrize()
@SETTINGS
def test_open311_conforms_to_its_document(case, fuzz_app: Flask) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate()


STATEFUL = settings(
    max_examples=max(5, EXAMPLES),
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


def test_api_stateful_links(api_schema) -> None:  # type: ignore[no-untyped-def]
    machine = api_schema.as_state_machine()
    assert len(machine.bundles) >= 5  # the links are there: responses feed later requests
    machine.run(settings=STATEFUL)


def test_open311_stateful_links(open311_schema_doc) -> None:  # type: ignore[no-untyped-def]
    machine = open311_schema_doc.as_state_machine()
    assert machine.bundles
    machine.run(settings=STATEFUL)


def test_documents_are_self_contained(fuzz_app: Flask, tmp_path: Path) -> None:
    """Both documents load as OpenAPI 3 and name every operation with a summary."""
    for path, least in (("/api/v1/openapi.json", 13), ("/open311/v2/openapi.json", 7)):
        loaded = schemathesis.openapi.from_wsgi(path, fuzz_app)
        operations = [result.ok() for result in loaded.get_all_operations()]
        assert len(operations) >= least
        raw = fuzz_app.test_client().get(path).json
        for route, item in raw["paths"].items():
            for method, op in item.items():
                if method in ("get", "post"):
                    assert op.get("summary"), f"{method.upper()} {route} has no summary"
