"""Rendering Open311 answers as JSON or XML (the spec's element names), and its errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

from flask import Response

# List elements and the name of each item inside them.
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}
MIMETYPES = {"json": "application/json", "xml": "text/xml"}


def w3c(value: datetime | None) -> str | None:
    """A UTC instant in the W3C format the spec asks for (``2005-02-28T02:00:00Z``)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(parent: ET.Element, value: Any, tag: str) -> None:
    if isinstance(value, list):
        item_tag = ITEM_TAGS.get(tag, "item")
        for item in value:
            _fill(ET.SubElement(parent, item_tag), item, item_tag)
    elif isinstance(value, dict):
        for key, sub in value.items():
            _fill(ET.SubElement(parent, key), sub, key)
    elif value is not None:
        parent.text = _text(value)


def to_xml(root: str, value: Any) -> bytes:
    element = ET.Element(root)
    _fill(element, value, root)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="utf-8")


def render(value: Any, fmt: str, *, root: str, status: int = 200) -> Response:
    """``value`` as JSON, or as XML under ``root`` (list items named by ``ITEM_TAGS``)."""
    if fmt == "xml":
        body = to_xml(root, value)
    else:
        body = json.dumps(value, ensure_ascii=False).encode("utf-8")
    return Response(body, status=status, mimetype=MIMETYPES.get(fmt, "application/json"))


def error(status: int, description: str, fmt: str) -> Response:
    return render([{"code": status, "description": description}], fmt, root="errors", status=status)
