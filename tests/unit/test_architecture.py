"""The domain core imports nothing from Flask, APScheduler or web/ (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
FORBIDDEN = ("flask", "apscheduler", "web", "werkzeug", "cli", "demo", "bench")


def test_engine_imports_no_web_or_scheduler() -> None:
    offenders = []
    for path in sorted(ENGINE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in FORBIDDEN:
                    offenders.append(f"{path.name}:{node.lineno} imports {name}")
    assert offenders == []


def test_no_module_assigns_ticket_state_by_hand() -> None:
    offenders = []
    for folder in ("engine", "web", "cli"):
        for path in sorted((ENGINE.parent / folder).rglob("*.py")):
            for lineno, line in enumerate(path.read_text().splitlines(), start=1):
                stripped = line.strip()
                if stripped.startswith(("ticket.state =", "t.state =")):
                    offenders.append(f"{path}:{lineno}")
    assert offenders == []
