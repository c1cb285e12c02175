"""Import: dates in the forms clerks write, encodings, headers, row checks (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from engine.importing import (
    ColumnMapping,
    ImportRejected,
    check_row,
    detect_encoding,
    parse_when,
    row_key,
    template,
)
from engine.workflow import default_registry

SHANGHAI = ZoneInfo("Asia/Shanghai")
KIND_WORDS = default_registry().get("consultation").kind_words()
NOW = datetime(2005, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2005-03-01",
        "2005/3/1",
        "2005.03.01",
        "2005年3月1日",
        "20050301",
        "2005-3-1",
    ],
)
def test_mixed_date_formats_mean_the_same_day(text: str) -> None:
    assert parse_when(text, SHANGHAI) == datetime(2005, 2, 28, 16, tzinfo=UTC)


def test_dates_with_time_excel_cells_and_day_first() -> None:
    assert parse_when("2005-03-01 09:30", SHANGHAI) == datetime(2005, 3, 1, 1, 30, tzinfo=UTC)
    assert parse_when("2005年3月1日 9时30分", SHANGHAI) == datetime(2005, 3, 1, 1, 30, tzinfo=UTC)
    assert parse_when(date(2005, 3, 1), SHANGHAI) == datetime(2005, 2, 28, 16, tzinfo=UTC)
    assert parse_when(datetime(2005, 3, 1, 9), SHANGHAI) == datetime(2005, 3, 1, 1, tzinfo=UTC)
    assert parse_when("25/02/2005", SHANGHAI) == datetime(2005, 2, 24, 16, tzinfo=UTC)
    with pytest.raises(ValueError, match="ambiguous"):
        parse_when("03/04/2005", SHANGHAI)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_when("last tuesday", SHANGHAI)


def test_encoding_detection(tmp_path: Path) -> None:
    body = "意见内容,乡镇\n派出所出警太慢，晚上打110没人管,罗河\n网吧门口经常有人赌博,柳堡\n"
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(body.encode("gbk"))
    utf8 = tmp_path / "utf8.csv"
    utf8.write_bytes(body.encode("utf-8"))
    bom = tmp_path / "bom.csv"
    bom.write_bytes(body.encode("utf-8-sig"))
    assert detect_encoding(gbk) == "gb18030"
    assert detect_encoding(utf8) == "utf-8"
    assert detect_encoding(bom) == "utf-8-sig"


def test_headers_in_chinese_and_overrides() -> None:
    columns = ColumnMapping().resolve(["\ufeff意见内容", "类型", "收到日期", "乡镇"])
    assert columns == {"text": 0, "kind": 1, "received_at": 2, "area": 3}
    custom = ColumnMapping.with_overrides({"text": "群众意见"}).resolve(["群众意见"])
    assert custom["text"] == 0


def test_missing_required_column_names_it_and_what_was_found() -> None:
    with pytest.raises(ImportRejected) as caught:
        ColumnMapping().resolve(["name", "area"])
    assert "text" in caught.value.message
    assert "'name'" in caught.value.message
    assert caught.value.errors[0].column == "text"


def test_row_checks_name_line_column_and_reason() -> None:
    columns = {"text": 0, "kind": 1, "received_at": 2, "category": 3}
    checked, errors = check_row(
        7,
        ["", "complaint", "2099-01-01", "nowhere"],
        columns,
        zone=SHANGHAI,
        now=NOW,
        categories={"traffic_management": "traffic_management"},
        kinds=KIND_WORDS,
    )
    assert checked is None
    by_column = {e.column: e for e in errors}
    assert set(by_column) == {"text", "kind", "received_at", "category"}
    assert all(e.line == 7 for e in errors)
    assert "future" in by_column["received_at"].reason


def test_row_key_is_stable_and_ignores_spacing_and_case() -> None:
    a = row_key({"text": "Theft  near the market", "area": "Luohe"})
    b = row_key({"text": "theft near the market ", "area": "luohe"})
    assert a == b
    assert a != row_key({"text": "theft near the school", "area": "Luohe"})


def test_a_row_keeps_its_key_from_release_to_release() -> None:
    """Re-importing a file skips the rows an earlier import created by this key: it must not
    change when the checks are rewritten (this value was computed before the check pass and
    the import pass were folded into one)."""
    columns = {"text": 0, "kind": 1, "received_at": 2, "citizen_name": 3}
    columns |= {"citizen_contact": 4, "area": 5}
    row = ["  Theft  near the MARKET ", "criticism", "2005/3/1 10:30", " Li  Wei ", "0514-1234567"]
    checked, errors = check_row(
        2, [*row, "Luohe"], columns, zone=SHANGHAI, now=NOW, categories={}, kinds=KIND_WORDS
    )
    assert not errors and checked is not None
    assert checked.key == "sha1:202409e8e84e1dd5dac243c1a0bb7c5a7862e46f"
    stamp = checked.values["received_at"].isoformat()
    assert checked.key == row_key({**checked.values, "received_at": stamp})


def test_chinese_kind_words() -> None:
    checked, errors = check_row(
        2,
        ["出警慢", "批评"],
        {"text": 0, "kind": 1},
        zone=SHANGHAI,
        now=NOW,
        categories={},
        kinds=KIND_WORDS,
    )
    assert not errors and checked is not None
    assert checked.values["kind"] == "criticism"


def test_templates_have_the_headers() -> None:
    assert template("csv").decode("utf-8-sig").splitlines()[0].startswith("text,kind,category")
    assert template("xlsx")[:2] == b"PK"
