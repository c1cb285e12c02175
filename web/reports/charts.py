"""SVG charts of the campaign report, drawn by pygal with no script and no external link."""

from __future__ import annotations

from typing import Any

import pygal
from pygal.style import CleanStyle

CHARTS = ("categories", "states", "units", "themes", "deadline")


def _config(title: str) -> dict[str, Any]:
    return {
        "title": title,
        "style": CleanStyle,
        "js": [],  # pygal links a script from the network by default; the page needs none
        "disable_xml_declaration": False,
        "width": 640,
        "height": 360,
        "show_legend": True,
        "legend_at_bottom": True,
        "print_values": True,
    }


def render_chart(name: str, report: dict[str, Any]) -> bytes:
    """The chart ``name`` (one of ``CHARTS``) of ``report`` as SVG bytes."""
    total = report["total"] or 1
    if name == "categories":
        chart = pygal.Pie(**_config("Opinions by category"), inner_radius=0.4)
        names = report.get("category_names", {})
        for code, count in report["by_category"].items():
            chart.add(names.get(code, code), count)
    elif name == "states":
        chart = pygal.HorizontalBar(**_config("Opinions by state"))
        for state, count in report["by_state"].items():
            chart.add(state, count)
    elif name == "units":
        chart = pygal.HorizontalBar(**_config("Opinions by unit"))
        for unit, count in list(report["by_unit"].items())[:15]:
            chart.add(unit, count)
    elif name == "themes":
        chart = pygal.HorizontalBar(
            **_config("Share of opinions per theme (%)"), value_formatter=lambda v: f"{v:.0f}%"
        )
        for tag, theme in report["themes"].items():
            chart.add(tag, round(100 * theme["count"] / total, 1))
    elif name == "deadline":
        chart = pygal.Bar(**_config("Solved against the rectification deadline"))
        chart.add("solved before the deadline", report["solved_by_deadline"])
        chart.add("solved after the deadline", report["solved_after_deadline"])
        chart.add("escalated to government", report["escalated_to_government"])
        chart.add("overdue now", report["overdue"]["total"])
    else:
        raise KeyError(name)
    return chart.render()  # type: ignore[no-any-return]
