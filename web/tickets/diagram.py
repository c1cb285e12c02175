"""The workflow definition drawn as SVG, server-side, with a simple layered layout.

No Graphviz or JavaScript: states are placed in columns by the longest path
from the initial state (back edges such as ``reopen`` ignored for layering),
stacked within a column; transitions are straight arrows, self-loops small
arcs above the box, back edges arcs below the row. The current state, when
given, is filled and outlined so it stands out (and is named in the title).
"""

from __future__ import annotations

from collections import defaultdict

from markupsafe import escape

from engine.workflow import Workflow

BOX_W, BOX_H = 150, 46
COL_GAP, ROW_GAP = 150, 46
MARGIN = 30


def _layers(workflow: Workflow) -> dict[str, int]:
    edges: dict[str, set[str]] = defaultdict(set)
    for t in workflow.triggers:
        for s in t.sources:
            if s != t.dest:
                edges[s].add(t.dest)
    # Depth-first order from the initial state tells forward edges from back edges.
    order: list[str] = []
    on_stack: set[str] = set()
    seen: set[str] = set()
    back: set[tuple[str, str]] = set()

    def visit(state: str) -> None:
        seen.add(state)
        on_stack.add(state)
        for nxt in sorted(edges[state]):
            if nxt in on_stack:
                back.add((state, nxt))
            elif nxt not in seen:
                visit(nxt)
        on_stack.discard(state)
        order.append(state)

    visit(workflow.initial)
    for s in workflow.states:
        if s not in seen:
            visit(s)
    layer = {s: 0 for s in workflow.states}
    for s in reversed(order):
        for nxt in edges[s]:
            if (s, nxt) not in back:
                layer[nxt] = max(layer[nxt], layer[s] + 1)
    return layer


def _box_label(text: str, x: int, y: int, bold: bool) -> str:
    """A state's title inside its box: on two lines when long, squeezed to fit when still
    too wide (``textLength``), so no title runs out of its box in either language."""
    lines = [text]
    if _text_width(text) > BOX_W - 12:
        cut = max(
            (i for i, ch in enumerate(text) if ch in " ,，、"),
            default=-1,
            key=lambda i: -abs(i - len(text) / 2),
        )
        if cut > 0:
            lines = [text[: cut + 1].strip(), text[cut + 1 :].strip()]
    weight = 700 if bold else 400
    out = []
    top = y + BOX_H // 2 + 4 - 7 * (len(lines) - 1)
    for i, line in enumerate(lines):
        fit = (
            f' textLength="{BOX_W - 12}" lengthAdjust="spacingAndGlyphs"'
            if _text_width(line) > BOX_W - 12
            else ""
        )
        out.append(
            f'<text x="{x + BOX_W // 2}" y="{top + 14 * i}" text-anchor="middle"{fit} '
            f'font-weight="{weight}" fill="#1b1f24">{escape(line)}</text>'
        )
    return "".join(out)


def _text_width(text: str) -> float:
    """About how wide ``text`` is at 12 px: CJK characters are square, Latin ones narrower."""
    return sum(12.0 if ord(ch) > 0x2E80 else 6.6 for ch in text)


def back_edges(workflow: Workflow) -> set[tuple[str, str]]:
    layer = _layers(workflow)
    return {
        (s, t.dest)
        for t in workflow.triggers
        for s in t.sources
        if s != t.dest and layer[t.dest] <= layer[s]
    }


def workflow_svg(
    workflow: Workflow, current: str | None = None, locale: str = "en", heading: str = ""
) -> str:
    """The SVG markup of ``workflow`` with ``current`` highlighted; states and triggers by their
    titles in ``locale``; ``heading`` is the accessible title (the page's language)."""
    layer = _layers(workflow)
    columns: dict[int, list[str]] = defaultdict(list)
    for name in workflow.states:  # definition order within a column
        columns[layer[name]].append(name)
    pos: dict[str, tuple[int, int]] = {}
    rows = max(len(c) for c in columns.values())
    for col, names in columns.items():
        offset = (rows - len(names)) * (BOX_H + ROW_GAP) // 2
        for i, name in enumerate(names):
            x = MARGIN + col * (BOX_W + COL_GAP)
            y = MARGIN + 30 + offset + i * (BOX_H + ROW_GAP)
            pos[name] = (x, y)
    long_edges = sorted(
        {(s, t.dest) for t in workflow.triggers for s in t.sources if layer[t.dest] - layer[s] > 1},
        key=lambda e: (layer[e[1]] - layer[e[0]], e),
    )
    lift = 50 * len(long_edges)  # room above the boxes for the arcs that skip columns
    pos = {name: (x, y + lift) for name, (x, y) in pos.items()}
    width = MARGIN * 2 + (max(columns) + 1) * (BOX_W + COL_GAP) - COL_GAP
    height = MARGIN * 2 + 30 + lift + rows * (BOX_H + ROW_GAP) - ROW_GAP + 60
    title = heading or f"Workflow {workflow.name} v{workflow.version}"
    if current and not heading:
        title += f"; current state: {current}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="wf-title" '
        f'font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="wf-title">{escape(title)}</title>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#4a5560"/></marker></defs>',
    ]
    labels: dict[tuple[str, str], list[str]] = defaultdict(list)
    for t in workflow.triggers:
        for s in t.sources:
            label = t.title_in(locale)
            if label not in labels[(s, t.dest)]:
                labels[(s, t.dest)].append(label)
    backs = back_edges(workflow)
    for (src, dst), names in labels.items():
        text = escape(", ".join(names))
        sx, sy = pos[src]
        dx, dy = pos[dst]
        if src == dst:
            x0, y0 = sx + BOX_W // 2 - 20, sy
            out.append(
                f'<path d="M{x0},{y0} C{x0 - 10},{y0 - 40} {x0 + 50},{y0 - 40} {x0 + 40},{y0}" '
                'fill="none" stroke="#4a5560" stroke-width="1.5" marker-end="url(#arrow)"/>'
            )
            out.append(
                f'<text x="{x0 + 20}" y="{y0 - 34}" text-anchor="middle" fill="#1b1f24">{text}</text>'
            )
        elif (src, dst) in long_edges:
            # Skips a column: arc over the boxes in between, higher for longer spans.
            k = long_edges.index((src, dst)) + 1
            x0, y0 = sx + BOX_W // 2 + 20, sy
            x1, y1 = dx + BOX_W // 2 - 20, dy
            top = min(y0, y1) - 64 * k - 16
            out.append(
                f'<path d="M{x0},{y0} C{x0},{top} {x1},{top} {x1},{y1}" fill="none" '
                'stroke="#4a5560" stroke-width="1.5" marker-end="url(#arrow)"/>'
            )
            out.append(
                f'<text x="{(x0 + x1) // 2}" y="{int(y0 + 0.75 * (top - y0)) - 4}" '
                'text-anchor="middle" fill="#1b1f24" '
                f'paint-order="stroke" stroke="#fff" stroke-width="3">{text}</text>'
            )
        elif (src, dst) in backs:
            x0, y0 = sx + BOX_W // 2, sy + BOX_H
            x1, y1 = dx + BOX_W // 2, dy + BOX_H
            low = max(y0, y1) + 50
            out.append(
                f'<path d="M{x0},{y0} C{x0},{low} {x1},{low} {x1},{y1}" fill="none" '
                'stroke="#4a5560" stroke-width="1.5" stroke-dasharray="5 3" '
                'marker-end="url(#arrow)"/>'
            )
            out.append(
                f'<text x="{(x0 + x1) // 2}" y="{int(y0 + 0.75 * (low - y0)) + 14}" '
                'text-anchor="middle" '
                f'fill="#1b1f24">{text}</text>'
            )
        else:
            x0, y0 = sx + BOX_W, sy + BOX_H // 2
            x1, y1 = dx, dy + BOX_H // 2
            if dx <= sx:  # same column: go down
                x0, y0 = sx + BOX_W // 2, sy + BOX_H
                x1, y1 = dx + BOX_W // 2, dy
            out.append(
                f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#4a5560" '
                'stroke-width="1.5" marker-end="url(#arrow)"/>'
            )
            out.append(
                f'<text x="{(x0 + x1) // 2}" y="{(y0 + y1) // 2 - 5}" text-anchor="middle" '
                f'fill="#1b1f24" paint-order="stroke" stroke="#fff" stroke-width="3">{text}</text>'
            )
    for name, (x, y) in pos.items():
        state = workflow.states[name]
        is_current = name == current
        fill = "#ffe08a" if is_current else ("#e6f4ea" if state.final else "#f6f8fa")
        stroke = "#a4161a" if is_current else "#4a5560"
        width_px = 4 if is_current else 1.5
        css = ' class="current"' if is_current else ""
        out.append(
            f'<g{css} data-state="{escape(name)}"><rect x="{x}" y="{y}" width="{BOX_W}" '
            f'height="{BOX_H}" rx="8" fill="{fill}" stroke="{stroke}" stroke-width="{width_px}"/>'
        )
        if state.final:
            out.append(
                f'<rect x="{x + 4}" y="{y + 4}" width="{BOX_W - 8}" height="{BOX_H - 8}" rx="6" '
                f'fill="none" stroke="{stroke}"/>'
            )
        out.append(_box_label(state.title_in(locale), x, y, is_current) + "</g>")
    ix, iy = pos[workflow.initial]
    out.append(f'<circle cx="{ix - 18}" cy="{iy + BOX_H // 2}" r="6" fill="#1b1f24"/>')
    out.append(
        f'<line x1="{ix - 12}" y1="{iy + BOX_H // 2}" x2="{ix}" y2="{iy + BOX_H // 2}" '
        'stroke="#1b1f24" stroke-width="1.5" marker-end="url(#arrow)"/>'
    )
    out.append("</svg>")
    return "\n".join(out)
