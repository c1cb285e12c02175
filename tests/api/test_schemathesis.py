"""Property-based run of schemathesis against the generated OpenAPI document, in-process
(WSGI): for every operation, generated requests get no server error and every response
matches the document (status, content type, body schema).

Bounded: a few examples per operation on SQLite, so the whole run stays well under a
minute. Requests carry a supervisor's token (the broadest acting role), so generated data
reaches the engine's own checks instead of stopping at 401/403. ``RECTIFLOW_FUZZ_EXAMPLES``
raises the number of examples for a longer local run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

from engine.tokens import create_token
from tests.api.conftest import make_app
from tests.conftest import CAMPAIGN_NOW

pytestmark = pytest.mark.slow


@pytest.fixture
def fuzz_app(sqlite_url: str) -> Iterator[Flask]:
    app = make_app(sqlite_url)
    with app.extensions["rectiflow.sessions"]() as session:
        app.config["FUZZ_TOKEN"] = create_token(session, "supervisor", now=CAMPAIGN_NOW).token
        session.commit()
    yield app
    app.extensions["rectiflow.engine"].dispose()


@pytest.fixture
def api_schema(fuzz_app: Flask):  # type: ignore[no-untyped-def]
    # The token goes in through the document's own security scheme, so schemathesis knows
    # where authentication is and still tries requests without it (they must get 401).
    config = schemathesis.config.SchemathesisConfig.from_dict(
        {"auth": {"openapi": {"bearerAuth": {"bearer": fuzz_app.config["FUZZ_TOKEN"]}}}}
    )
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("RECTIFLOW_FUZZ_EXAMPLES", "8")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_conforms_to_its_document(case, fuzz_app: Flask) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(
        excluded_checks=[
            # Schema-valid data is still refused by business rules (an unknown campaign,
            # a trigger the state does not allow, a time in the future): 404/409/422 are
            # the documented answers there, not failures.
            schemathesis.checks.positive_data_acceptance,
        ],
    )


def test_document_is_self_contained(fuzz_app: Flask, tmp_path: Path) -> None:
    """The document loads as OpenAPI 3 and names every operation with a summary."""
    loaded = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) >= 13
    raw = fuzz_app.test_client().get("/api/v1/openapi.json").json
    for path, item in raw["paths"].items():
        for method, op in item.items():
            if method in ("get", "post"):
                assert op.get("summary"), f"{method.upper()} {path} has no summary"
