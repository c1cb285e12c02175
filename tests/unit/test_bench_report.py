"""bench.run stores dated JSON; bench.report rewrites only the generated sections from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report, run


def _result(name: str, when: str, quick: bool, ratio: float) -> dict[str, object]:
    return {
        "name": name,
        "measured_at": when,
        "quick": quick,
        "command": f"python -m bench.timers fire ({name})",
        "machine": {
            "cpus": 2,
            "arch": "x86_64",
            "python": "3.11.7",
            "sqlite": "3.40.1",
            "memory_gib": 24,
            "load_average_at_start": [4.2, 3.0, 2.0],
            "commit": "abc1234",
        },
        "params": {"timers": 1000, "batch": 500, "rounds": 2, "backend": "sqlite"},
        "rounds": [],
        "summary": {
            "backend": "SQLite 3.40.1",
            "ratio": {"median": ratio, "min": ratio - 0.1, "max": ratio + 0.1},
            "engine_per_s": {"median": 900, "min": 800, "max": 1000},
            "floor_per_s": {"median": 1500, "min": 1500, "max": 1500},
            "exactly_once_in_due_order": True,
            "longest_transaction_s": 0.61,
            "target_ratio": 0.6,
            "met": ratio >= 0.6,
        },
    }


def test_store_and_newest_prefers_a_full_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = run.store(
        _result("timers-sqlite", "2026-11-30T10:00:00+00:00", False, 0.5),
        quick=False,
        directory=tmp_path,
    )
    run.store(
        _result("timers-sqlite", "2026-11-30T11:00:00+00:00", True, 0.9),
        quick=True,
        directory=tmp_path,
    )
    assert older.name.endswith("-timers-sqlite.json") and older.name[:4].isdigit()
    assert json.loads(older.read_text())["quick"] is False
    assert report.newest("timers-sqlite", tmp_path)["summary"]["ratio"]["median"] == 0.5  # type: ignore[index]
    assert report.newest("import-sqlite", tmp_path) is None


def test_report_rewrites_only_between_the_markers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run.store(
        _result("timers-sqlite", "2026-11-30T10:00:00+00:00", False, 0.55),
        quick=False,
        directory=tmp_path,
    )
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    text = "\n".join(
        [
            "hand-written prose",
            *(
                f"<!-- generated: {n} -->\nstale\n<!-- end generated: {n} -->"
                for n in report.SECTIONS
            ),
            "more prose",
        ]
    )
    out = report.render(text)
    assert out.startswith("hand-written prose") and out.endswith("more prose")
    assert "stale" not in out
    assert (
        "| SQLite 3.40.1 | 1,000 | 900 (800–1,000) | 1,500 | **0.55 (0.45–0.65)** | yes | 0.61 s "
        "| ≥ 0.6: **not reached** at this size, **not shown** at 100,000 |" in out
    )  # the target is set for 100,000 due at once: a smaller run never reads "met"
    assert "_No result yet: run `python -m bench.run transitions`._" in out
    assert report.render(out) == out  # idempotent
    with pytest.raises(SystemExit, match="no generated section"):
        report.render("no markers here")
