"""Import into a real database: all-or-nothing, good rows + rejects, re-import, XLSX, GBK."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from engine import db
from engine.audit import verify
from engine.importing import ImportRejected, import_file
from engine.models import Campaign, Ticket, TicketTheme, TransitionLog
from tests.conftest import ctx_of

CAMPAIGN = "consultation-2005"
NOW = datetime(2005, 3, 8, 2, 0, tzinfo=UTC)


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine: Engine = db.make_engine(db_url)
    yield db.session_factory(engine)
    engine.dispose()


def _count(sessions: sessionmaker[Session], model: type = Ticket) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


GOOD = [
    ["text", "kind", "received_at", "area", "name", "themes"],
    ["Theft of electric bikes near the market", "criticism", "2005-02-26", "Luohe", "Li", "theft"],
    ["", "", "", "", "", ""],
    ["Gambling in the tea house", "批评", "2005/2/27", "Liubao", "Wu", "gambling, theft"],
    ["The 110 desk answers slowly", "suggestion", "2005年2月28日", "Xiaji", "Xu", ""],
]


def test_good_file_imports_and_reimport_creates_nothing(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = _write_csv(tmp_path / "opinions.csv", GOOD)
    seen: list[str] = []
    result = import_file(
        ctx_of(sessions),
        path,
        campaign=CAMPAIGN,
        username="clerk",
        now=NOW,
        progress=lambda p: seen.append(p.phase),
    )
    assert (result.rows, result.created, result.empty_rows) == (3, 3, 1)
    assert {"check", "import"} <= set(seen)
    with sessions() as session:
        tickets = session.scalars(select(Ticket).order_by(Ticket.id)).all()
        assert [t.kind for t in tickets] == ["criticism", "criticism", "suggestion"]
        assert {t.source for t in tickets} == {"import"}
        assert tickets[1].received_at == datetime(2005, 2, 26, 16, tzinfo=UTC)
        tags = session.execute(select(TicketTheme.tag)).scalars().all()
        assert sorted(tags) == ["gambling", "theft", "theft"]
        assert verify(session) == []

    again = import_file(ctx_of(sessions), path, campaign=CAMPAIGN, username="clerk", now=NOW)
    assert (again.created, again.already_imported) == (0, 3)
    assert _count(sessions) == 3


def test_bad_rows_import_nothing_and_are_listed(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = [
        *GOOD,
        ["", "praise", "2005-02-26", "", "", ""],
        ["ok", "complaint", "tomorrow", "", "", ""],
    ]
    path = _write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(ImportRejected) as caught:
        import_file(ctx_of(sessions), path, campaign=CAMPAIGN, username="clerk", now=NOW)
    errors = {(e.line, e.column) for e in caught.value.errors}
    assert errors == {(6, "text"), (7, "kind"), (7, "received_at")}
    assert "nothing was" in caught.value.message
    assert _count(sessions) == 0
    assert _count(sessions, TransitionLog) == 0


def test_accept_good_rows_writes_rejects_formula_safe(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = [*GOOD, ["=cmd|' /C calc'!A0", "complaint", "", "", "", ""]]
    path = _write_csv(tmp_path / "mixed.csv", rows)
    rejects = io.StringIO()
    result = import_file(
        ctx_of(sessions),
        path,
        campaign=CAMPAIGN,
        username="clerk",
        now=NOW,
        accept_good_rows=True,
        rejects=rejects,
    )
    assert (result.created, result.rejected) == (3, 1)
    lines = list(csv.reader(io.StringIO(rejects.getvalue())))
    assert lines[0][-3:] == ["line", "column", "reason"]
    assert lines[1][0].startswith("'=cmd")  # neutralised for spreadsheets
    assert lines[1][-3] == "6" and lines[1][-2] == "kind"
    assert _count(sessions) == 3


def test_missing_required_column(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "nocol.csv", [["name", "area"], ["Li", "Luohe"]])
    with pytest.raises(ImportRejected, match="required column"):
        import_file(ctx_of(sessions), path, campaign=CAMPAIGN, username="clerk", now=NOW)
    assert _count(sessions) == 0


def test_gbk_file_with_chinese_headers_and_categories(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = [
        ["意见内容", "类型", "类别", "收到日期", "乡镇"],
        ["派出所出警太慢，晚上打110没人管", "批评", "Team building", "2005-02-26", "罗河"],
        ["网吧门口经常有人赌博", "建议", "public_security_management", "2005.2.27", "柳堡"],
    ]
    path = _write_csv(tmp_path / "gbk.csv", rows, encoding="gbk")
    result = import_file(ctx_of(sessions), path, campaign=CAMPAIGN, username="clerk", now=NOW)
    assert result.encoding == "gb18030"
    assert result.created == 2
    with sessions() as session:
        tickets = session.scalars(select(Ticket).order_by(Ticket.id)).all()
        assert tickets[0].text.startswith("派出所")
        assert [t.state for t in tickets] == ["categorized", "categorized"]
        assert tickets[0].category == "team_building"


def test_wrong_encoding_given_is_a_clear_error(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = [["意见内容"], ["网吧门口经常有人赌博"]]
    path = _write_csv(tmp_path / "gbk.csv", rows, encoding="gbk")
    with pytest.raises(ImportRejected, match="not valid utf-8"):
        import_file(
            ctx_of(sessions), path, campaign=CAMPAIGN, username="clerk", now=NOW, encoding="utf-8"
        )
    assert _count(sessions) == 0


def test_xlsx_with_date_cells(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["text", "kind", "received_at", "key"])
    sheet.append(["Trucks speed through the village", "criticism", datetime(2005, 2, 26, 9), "A-1"])
    sheet.append([None, None, None, None])
    sheet.append(["Street lights are out", "suggestion", "2005-02-27", "A-2"])
    path = tmp_path / "opinions.xlsx"
    book.save(path)
    result = import_file(ctx_of(sessions), path, campaign=CAMPAIGN, username="clerk", now=NOW)
    assert (result.created, result.empty_rows) == (2, 1)
    with sessions() as session:
        keys = session.scalars(select(Ticket.external_key).order_by(Ticket.id)).all()
        assert keys == ["A-1", "A-2"]


def _many(count: int) -> list[list[str]]:
    return [["text", "kind", "received_at", "area", "name", "themes"]] + [
        [
            f"Opinion {i}: lights out on the high street",
            "criticism",
            "2005-02-26",
            "Luohe",
            "Li",
            "",
        ]
        for i in range(count)
    ]


def test_one_bad_row_at_the_very_end_writes_nothing_from_any_batch(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """The rows are checked once, before any batch is written: the last line's error stops
    every batch, and it is listed with its line."""
    rows = [*_many(1200), ["", "praise", "2005-02-30", "", "", ""]]
    path = _write_csv(tmp_path / "late.csv", rows)
    with pytest.raises(ImportRejected) as caught:
        import_file(
            ctx_of(sessions), path, campaign=CAMPAIGN, username="clerk", now=NOW, batch_size=100
        )
    assert {(e.line, e.column) for e in caught.value.errors} == {
        (1202, "text"),
        (1202, "received_at"),
    }
    assert caught.value.bad_rows == 1
    assert _count(sessions) == 0 and _count(sessions, TransitionLog) == 0
    with sessions() as session:
        assert session.scalar(select(Campaign.ticket_seq).where(Campaign.code == CAMPAIGN)) == 0


def test_good_rows_across_batches_with_repeats_and_rejects(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """--accept-good-rows: each bad row goes to the rejects file with all its reasons, a row
    repeated in a later batch is counted once, the good rows are written in file order."""
    rows = _many(250)
    rows.insert(120, ["", "rumour", "", "", "", ""])  # line 121: two reasons
    rows.append(rows[5])  # line 252 repeats line 6, two batches later
    path = _write_csv(tmp_path / "mixed.csv", rows)
    rejects = io.StringIO()
    seen: list[tuple[str, int, int]] = []
    result = import_file(
        ctx_of(sessions),
        path,
        campaign=CAMPAIGN,
        username="clerk",
        now=NOW,
        accept_good_rows=True,
        rejects=rejects,
        batch_size=100,
        progress=lambda p: seen.append((p.phase, p.done, p.total)),
    )
    assert (result.rows, result.created, result.rejected) == (252, 250, 1)
    assert result.duplicates_in_file == 1
    lines = list(csv.reader(io.StringIO(rejects.getvalue())))
    assert len(lines) == 2 and lines[1][-3:-1] == ["121", "text"]
    assert "is empty" in lines[1][-1] and "'rumour'" in lines[1][-1]
    assert [p for p in seen if p[0] == "import"][-1] == ("import", 250, 250)
    with sessions() as session:
        texts = session.scalars(select(Ticket.text).order_by(Ticket.id)).all()
        assert texts[:2] == [rows[1][0], rows[2][0]] and len(texts) == 250
        assert verify(session) == []


def test_an_import_cut_short_is_finished_by_running_it_again(
    sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches commit one by one: a failure in the third leaves the first two, and the same
    file run again skips their rows by key and writes the rest."""
    from engine import importing

    path = _write_csv(tmp_path / "long.csv", _many(450))
    real = importing._create_batch
    calls = {"n": 0}

    def failing(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the disk is full")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importing, "_create_batch", failing)
    with pytest.raises(RuntimeError):
        import_file(
            ctx_of(sessions), path, campaign=CAMPAIGN, username="clerk", now=NOW, batch_size=100
        )
    assert _count(sessions) == 200
    monkeypatch.setattr(importing, "_create_batch", real)
    again = import_file(
        ctx_of(sessions), path, campaign=CAMPAIGN, username="clerk", now=NOW, batch_size=100
    )
    assert (again.created, again.already_imported) == (250, 200)
    assert _count(sessions) == 450
    with sessions() as session:
        assert verify(session) == []
