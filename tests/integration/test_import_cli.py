"""The command line: import (all or nothing, good rows + rejects), report, duplicates."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main


def _run(url: str, *args: str) -> object:
    return CliRunner().invoke(
        main, ["--database-url", url, "--now", "2005-03-08T10:00:00+08:00", *args]
    )


def test_import_report_and_duplicates(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "opinions.csv"
    path.write_text(
        "意见内容,类型,收到日期\n网吧门口经常有人赌博,批评,2005-03-01\n网吧门口经常有人赌博！,批评,2005/3/2\n"
        ",表扬,2005-03-03\n",
        encoding="utf-8",
    )
    bad = _run(sqlite_url, "import", str(path), "--campaign", "consultation-2005")
    assert bad.exit_code == 2  # type: ignore[attr-defined]
    assert "line 4, column text" in bad.output  # type: ignore[attr-defined]
    assert not (tmp_path / "opinions.csv.rejects.csv").exists()

    good = _run(
        sqlite_url, "import", str(path), "--campaign", "consultation-2005", "--accept-good-rows"
    )
    assert good.exit_code == 0, good.output  # type: ignore[attr-defined]
    assert "2 opinions imported" in good.output  # type: ignore[attr-defined]
    assert "line" in (tmp_path / "opinions.csv.rejects.csv").read_text(encoding="utf-8-sig")

    found = _run(sqlite_url, "duplicates", "find", "--campaign", "consultation-2005")
    assert "1 groups" in found.output  # type: ignore[attr-defined]
    group = found.output.split("group ", 1)[1].split(":", 1)[0]  # type: ignore[attr-defined]
    acted = _run(
        sqlite_url,
        "duplicates",
        "act",
        group,
        "categorize",
        "--as",
        "clerk",
        "--data",
        "category=public_security_management",
        "--data",
        "kind=criticism",
    )
    assert acted.exit_code == 0, acted.output  # type: ignore[attr-defined]
    assert acted.output.count("Received → Categorized") == 2  # type: ignore[attr-defined]

    report = _run(sqlite_url, "report", "--campaign", "consultation-2005", "--format", "json")
    data = json.loads(report.output)  # type: ignore[attr-defined]
    assert data["total"] == 2 and data["by_state"]["categorized"] == 2
    out = tmp_path / "r.xlsx"
    xlsx = _run(
        sqlite_url, "report", "--campaign", "consultation-2005", "--format", "xlsx", "-o", str(out)
    )
    assert xlsx.exit_code == 0 and out.read_bytes()[:2] == b"PK"  # type: ignore[attr-defined]
    nofile = _run(sqlite_url, "report", "--campaign", "consultation-2005", "--format", "xlsx")
    assert nofile.exit_code == 2  # type: ignore[attr-defined]
    template = tmp_path / "t.csv"
    assert (
        _run(sqlite_url, "import-template", "--format", "csv", "-o", str(template)).exit_code == 0
    )  # type: ignore[attr-defined]
    assert template.read_text(encoding="utf-8-sig").startswith("text,kind")
