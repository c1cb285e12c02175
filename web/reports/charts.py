"""SVG charts of the campaign report, drawn by pygal with no script and no external link.

Every label is a name in the reader's language (never a code), values are printed on
the bars and slices (colour is never the only key), and the legend sits below the
chart in one column with room for long names, so nothing is cut.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pygal
from flask_babel import gettext as _
from pygal.style import CleanStyle

CHARTS = ("categories", "states", "units", "themes", "deadline")
LEGEND_ROW = 22  # px per legend line at the style's legend font size


def chart_titles() -> dict[str, str]:
    return {
        "categories": _("Opinions by category"),
        "states": _("Opinions by state"),
        "units": _("Opinions by unit"),
        "themes": _("Share of opinions per theme (%)"),
        "deadline": _("Solved against the rectification deadline"),
    }


def _config(title: str, entries: int) -> dict[str, Any]:
    style = CleanStyle(
        font_family='system-ui, "Noto Sans CJK SC", "Noto Sans", sans-serif',
        legend_font_size=14,
        title_font_size=16,
        value_font_size=13,
    )
    return {
        "title": title,
        "style": style,
        "js": [],  # pygal links a script from the network by default; the page needs none
        "disable_xml_declaration": False,
        "width": 640,
        # One legend line per entry below the plot: the chart grows instead of cutting names.
        "height": 300 + LEGEND_ROW * entries,
        "show_legend": True,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 1,
        "truncate_legend": -1,  # never shorten a name to "Publ…"
        "print_values": True,
    }


def render_chart(name: str, report: dict[str, Any], label: Callable[[str, str], str]) -> bytes:
    """The chart ``name`` (one of ``CHARTS``) of ``report`` as SVG bytes; ``label(section,
    item)`` gives the name shown for a report item (a category, unit, state code...)."""
    total = report["total"] or 1
    titles = chart_titles()
    if name == "categories":
        items = list(report["by_category"].items())
        chart = pygal.Pie(**_config(titles[name], len(items)), inner_radius=0.4)
        for code, count in items:
            chart.add(f"{label('by_category', code)}: {count}", count)
    elif name == "states":
        items = list(report["by_state"].items())
        chart = pygal.HorizontalBar(**_config(titles[name], len(items)))
        for state, count in items:
            chart.add(label("by_state", state), count)
    elif name == "units":
        items = list(report["by_unit"].items())[:15]
        chart = pygal.HorizontalBar(**_config(titles[name], len(items)))
        for unit, count in items:
            chart.add(label("by_unit", unit), count)
    elif name == "themes":
        items = list(report["themes"].items())
        chart = pygal.HorizontalBar(
            **_config(titles[name], len(items)), value_formatter=lambda v: f"{v:.0f}%"
        )
        for tag, theme in items:
            chart.add(tag, round(100 * theme["count"] / total, 1))
    elif name == "deadline":
        chart = pygal.Bar(**_config(titles[name], 6))
        chart.add(_("rectified before the campaign deadline"), report["solved_by_deadline"])
        chart.add(_("rectified after it, within the campaign"), report["solved_after_deadline"])
        chart.add(_("closed within an approved extension"), report["extended"])
        chart.add(_("closed after their own due time (late)"), report["late"])
        chart.add(
            _("reported to the Party committee and government"), report["escalated_to_government"]
        )
        chart.add(_("overdue: past their own due time, not fed back"), report["overdue"]["total"])
    else:
        raise KeyError(name)
    return chart.render()  # type: ignore[no-any-return]
