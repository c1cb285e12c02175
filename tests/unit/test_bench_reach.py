"""A benchmark that cannot reach its database says so in one line (no traceback, no password)."""

from __future__ import annotations

import pytest

from bench import loadtest
from bench.reach import unreachable


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    message = unreachable("postgresql://postgres:s3cret@127.0.0.1:1/rectiflow_load", timeout=2)
    assert message is not None and "\n" not in message
    assert message.startswith("error: cannot reach the database at postgresql+psycopg://postgres:")
    assert "127.0.0.1:1" in message and "s3cret" not in message


def test_the_load_test_stops_with_that_line_and_exit_status_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert loadtest.main(["--url", "postgresql://postgres@127.0.0.1:1/x", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the database at") and err.count("\n") == 1


def test_sqlite_needs_no_server() -> None:
    assert unreachable("sqlite:///instance/x.db") is None
