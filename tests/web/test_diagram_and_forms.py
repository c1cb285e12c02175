"""The SVG diagram and the action forms built from a workflow's field definitions (no database)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from wtforms import BooleanField, DateField, SelectField, StringField, TextAreaField

from engine.read.pages import Choice
from engine.workflow import default_registry
from web.tickets.diagram import _layers, back_edges, workflow_svg
from web.tickets.forms import ChoiceSource, form_class

SVG = "{http://www.w3.org/2000/svg}"


def test_layers_follow_the_flow_and_reopen_is_a_back_edge():
    wf = default_registry().get("consultation")
    layer = _layers(wf)
    assert layer["received"] < layer["categorized"] < layer["assigned"] < layer["rectified"]
    assert layer["fed_back"] > layer["rectified"]
    assert ("fed_back", "assigned") in back_edges(wf)


def test_svg_is_well_formed_and_highlights_only_the_current_state():
    wf = default_registry().get("consultation")
    root = ET.fromstring(workflow_svg(wf, "rectified", "en"))
    groups = root.findall(f"{SVG}g")
    assert {g.get("data-state") for g in groups} == set(wf.states)
    current = [g.get("data-state") for g in groups if g.get("class") == "current"]
    assert current == ["rectified"]
    assert "current state: rectified" in root.find(f"{SVG}title").text
    labels = {t.text for t in root.iter(f"{SVG}text")}
    assert {"Categorize", "Assign", "Reassign", "Record the rectification", "Reopen"} <= labels
    chinese = ET.fromstring(workflow_svg(wf, "rectified", "zh_CN"))
    labels = {t.text for t in chinese.iter(f"{SVG}text")}
    assert {"分类", "交办", "改派", "整改", "重新办理", "已受理"} <= labels


def test_svg_escapes_names():
    wf = default_registry().get("consultation")
    assert "<script" not in workflow_svg(wf, "<script>")


def test_forms_are_derived_from_field_types(app):
    wf = default_registry().get("consultation")
    source = ChoiceSource(
        units=[Choice("luohe-station", "Luohe")],
        officers=[Choice("luohe.officer", "Officer", "luohe-station")],
        categories=[Choice("law_enforcement", "Law enforcement")],
    )
    kinds = {}
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        classes = [(spec, form_class(wf.fields, spec, source)) for spec in wf.triggers]
    for spec, cls in classes:
        for name in (*spec.requires, *spec.optional):
            kinds[name] = getattr(cls, name).field_class
    assert kinds["measures"] is TextAreaField  # 4000 characters: a text area
    assert kinds["receiving_body"] is StringField  # 200 characters: one line
    assert kinds["date"] is DateField
    assert kinds["unfounded"] is BooleanField
    for name in ("category", "kind", "unit", "officer", "method"):
        assert issubclass(kinds[name], SelectField)
