"""The rectiflow command line on a real SQLite file: init, demo, ticket, audit, --now."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the CLI on an empty database file."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def _run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, ["--database-url", url, *args], catch_exceptions=False)

    _run.path = tmp_path / "cli.db"  # type: ignore[attr-defined]
    return _run


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database plus one fresh ticket (2005-0269), built once for the refusal cases."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    url = f"sqlite:///{path}"
    demo = CliRunner().invoke(main, ["--database-url", url, "demo"])
    assert demo.exit_code == 0, demo.output
    (path.parent / "demo-output.txt").write_text(demo.output)
    made = CliRunner().invoke(
        main,
        [
            "--database-url",
            url,
            "ticket",
            "create",
            "--campaign",
            "consultation-2005",
            "--text",
            "fresh one",
        ],
    )
    assert "2005-0269" in made.output
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture(scope="module")
def demo_output(demo_db: Path) -> str:
    return (demo_db.parent / "demo-output.txt").read_text()


def test_init_creates_then_reports_up_to_date(run) -> None:  # type: ignore[no-untyped-def]
    first = run("init")
    assert first.exit_code == 0 and "upgraded from empty" in first.output
    second = run("init")
    assert second.exit_code == 0 and "up to date" in second.output


@pytest.fixture
def demo_run(demo_db: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run the CLI on a copy of the demo database."""
    path = tmp_path / "demo-copy.db"
    shutil.copyfile(demo_db, path)

    def _run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(
            main, ["--database-url", f"sqlite:///{path}", *args], catch_exceptions=False
        )

    _run.path = path  # type: ignore[attr-defined]
    return _run


def test_demo_loads_the_organisation_and_the_campaign(
    demo_db: Path, demo_output: str, demo_run
) -> None:  # type: ignore[no-untyped-def]
    assert "users (password 'demo')" in demo_output
    # The report it prints is `rectiflow report`'s, in the reader's language: names, not codes.
    assert "Campaign report" in demo_output and "Criticism" in demo_output, demo_output
    assert "traffic-brigade" not in demo_output and "hard_to_see_police" not in demo_output
    run = demo_run
    with sqlite3.connect(demo_db) as conn:
        # The demo also replays the hotline programme (RX-...); the report's campaign is 2005-.
        total = conn.execute(
            "SELECT count(*) FROM tickets WHERE number LIKE '2005-%' AND number != '2005-0269'"
        ).fetchone()[0]
        hotline = conn.execute("SELECT count(*) FROM tickets WHERE number LIKE 'RX-%'").fetchone()[
            0
        ]
        by_category = dict(
            conn.execute(
                "SELECT category, count(*) FROM tickets WHERE number LIKE '2005-%' GROUP BY category"
            ).fetchall()
        )
    assert total == 268
    assert hotline == 150 and "programme hotline-12345: 150 calls replayed" in demo_output
    assert {
        k: by_category[k]
        for k in (
            "team_building",
            "service_economy",
            "law_enforcement",
            "public_security_management",
            "traffic_management",
        )
    } == {
        "team_building": 76,
        "service_economy": 31,
        "law_enforcement": 28,
        "public_security_management": 81,
        "traffic_management": 46,
    }
    again = run("demo")
    assert again.exit_code == 0 and "already loaded" in again.output


def test_ticket_fire_with_now_and_data(demo_run) -> None:  # type: ignore[no-untyped-def]
    run = demo_run
    created = run(
        "--now",
        "2005-04-02T09:00:00+08:00",
        "ticket",
        "create",
        "--campaign",
        "consultation-2005",
        "--text",
        "Night patrols please",
        "--area",
        "Xiaji",
    )
    assert created.exit_code == 0, created.output
    number = created.output.split()[1]
    ok = run(
        "--now",
        "2005-04-02T10:00:00+08:00",
        "ticket",
        "fire",
        number,
        "categorize",
        "--as",
        "clerk",
        "--data",
        "category=public_security_management",
        "--data",
        "kind=suggestion",
        "--json",
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output) == {
        "number": number,
        "from": "received",
        "to": "categorized",
        "version": 2,
    }
    shown = run("ticket", "show", number, "--as", "supervisor")
    # Times in the campaign's timezone (Asia/Shanghai), triggers and units by their titles.
    assert "Apr 2, 2005, 10:00  Categorize" in shown.output
    assert "unit: Xiaji Police Station" in shown.output
    assert "supervisor may fire: Assign" in shown.output
    assert "(assign)" in shown.output and "(escalate_to_government)" in shown.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["ticket", "fire", "2005-0001", "rectify", "--as", "clerk", "--data", "measures=x"],
            "is not allowed in state",
        ),
        (
            ["ticket", "fire", "2005-0001", "categorize", "--as", "clerk", "--data", "category"],
            "--data takes key=value",
        ),
        (["ticket", "fire", "2005-0269", "categorize", "--as", "clerk"], "category: is required"),
        (
            ["ticket", "fire", "2005-0001", "categorize", "--as", "nobody"],
            "no active user 'nobody'",
        ),
        (
            ["ticket", "fire", "2099-0001", "categorize", "--as", "clerk"],
            "There is no ticket 2099-0001",
        ),
        (
            [
                "ticket",
                "fire",
                "2005-0002",
                "assign",
                "--as",
                "supervisor",
                "--expected-version",
                "1",
            ],
            "you had version 1",
        ),
        (["ticket", "create", "--campaign", "nope", "--text", "x"], "no campaign 'nope'"),
        (["--now", "yesterday", "ticket", "list"], "not an ISO-8601 time"),
        (
            ["report", "--campaign", "consultation-2005", "--format", "docx", "--lang", "fr"],
            "no draft in language 'fr'; use one of zh_CN, en",
        ),
        (
            ["report", "--campaign", "consultation-2005", "--as-of", "2005-01-31"],
            "is before the campaign 'consultation-2005' began (2005-02-25)",
        ),
        (
            ["--now", "2005-03-10T12:00+08:00", "report", "--campaign", "consultation-2005"]
            + ["--as-of", "2005-03-11"],
            "is in the future (today is 2005-03-10)",
        ),
    ],
)
def test_refusals_exit_2_with_a_clear_message(
    demo_db: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    path = tmp_path / "copy.db"
    shutil.copyfile(demo_db, path)
    result = CliRunner().invoke(main, ["--database-url", f"sqlite:///{path}", *args])
    assert result.exit_code == 2, result.output
    assert expected in result.output


def test_audit_verify_and_export(demo_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = demo_run
    ok = run("audit", "verify")
    assert ok.exit_code == 0 and "intact" in ok.output
    out = tmp_path / "log.csv"
    exported = run("audit", "export", "--format", "csv", "-o", str(out))
    assert exported.exit_code == 0
    with sqlite3.connect(run.path) as conn:
        rows = conn.execute("SELECT count(*) FROM transition_log").fetchone()[0]
    assert rows > 268 and out.read_text().count("\n") == rows + 1
    jsonl = run("audit", "export", "--format", "jsonl", "--ticket", "2005-0001")
    seqs = [json.loads(line)["seq"] for line in jsonl.output.splitlines()]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 2
    with sqlite3.connect(run.path) as conn:
        conn.execute("DROP TRIGGER transition_log_no_update")
        conn.execute("UPDATE transition_log SET reason = 'rewritten' WHERE id = 7")
    bad = CliRunner().invoke(main, ["--database-url", f"sqlite:///{run.path}", "audit", "verify"])
    assert bad.exit_code == 1
    assert "EDITED (edited (hash does not match)):" in bad.output and "was edited" in bad.output
    zh = CliRunner().invoke(
        main, ["--lang", "zh_CN", "--database-url", f"sqlite:///{run.path}", "audit", "verify"]
    )
    assert zh.exit_code == 1 and "EDITED（已被改动（哈希值不符））" not in zh.output
    assert "EDITED (已被改动（哈希值不符）):" in zh.output


def test_report_drafts_the_situation_report_as_docx(demo_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from engine.draft import docx_text

    out = tmp_path / "draft.docx"
    made = demo_run(
        "--lang",
        "zh_CN",
        "report",
        "--campaign",
        "consultation-2005",
        "--as-of",
        "2005-03-31",
        "--format",
        "docx",
        "-o",
        str(out),
    )
    assert made.exit_code == 0, made.output
    text = docx_text(out.read_bytes())
    assert "共梳理意见建议268条" in text  # in the output's language unless --lang says
    assert "已解决群众要求解决的具体问题或案件39件（共42件）" in text
    english = tmp_path / "draft-en.docx"
    demo_run(
        "report",
        "--campaign",
        "consultation-2005",
        "--as-of",
        "2005-03-31",
        "--format",
        "docx",
        "--lang",
        "en",
        "-o",
        str(english),
    )
    assert "39 of the 42 specific problems" in docx_text(english.read_bytes())
