"""Open311 fixtures: reuse the API's app and token fixtures; JSON-schema validators built
from the GeoReport v2 schemas kept in tests/data/open311/ (copied from open311/schema-validation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.api.conftest import app, auth, client, token  # noqa: F401  (shared fixtures)

SCHEMAS = Path(__file__).resolve().parent.parent / "data" / "open311"


def _registry() -> Registry:
    resources = []
    for path in SCHEMAS.glob("*.json"):
        if path.name == "swagger.json":
            continue
        contents = json.loads(path.read_text())
        resources.append(
            (path.name, Resource.from_contents(contents, default_specification=DRAFT7))
        )
    return Registry().with_resources(resources)


@pytest.fixture(scope="session")
def open311_schema():  # type: ignore[no-untyped-def]
    """``open311_schema('requests.json').validate(body)``"""
    registry = _registry()

    def _validator(name: str) -> Draft7Validator:
        schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
        return Draft7Validator(schema, registry=registry)

    return _validator
