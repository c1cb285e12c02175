"""The command line in the reader's language: --lang, RECTIFLOW_LANG, the --as user's stored
preference, the organisation's default; refusals translated through the pages' table; times in
the campaign's timezone as each language writes them; JSON keeps its keys."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, update

from cli import main
from engine.models import User


@pytest.fixture
def run(sqlite_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The CLI on a seeded database, with no language chosen by the environment."""
    monkeypatch.delenv("RECTIFLOW_LANG", raising=False)

    def _run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(
            main, ["--database-url", sqlite_url, "--now", "2005-03-01T10:00+08:00", *args], env=env
        )

    return _run


def _created_number(output: str) -> str:
    return output.split()[1]


def test_the_same_commands_speak_chinese_and_english(run) -> None:  # type: ignore[no-untyped-def]
    zh = run("--lang", "zh_CN", "ticket", "create", "--campaign", "consultation-2005",
             "--text", "路灯坏了")  # fmt: skip
    assert zh.exit_code == 0, zh.output
    assert "已登记" in zh.output and "回执查询码" in zh.output and "created" not in zh.output
    en = run("--lang", "en", "ticket", "create", "--campaign", "consultation-2005",
             "--text", "street light broken")  # fmt: skip
    assert en.exit_code == 0, en.output
    assert en.output.startswith("created ") and "receipt secret" in en.output
    number = _created_number(en.output)

    # A refusal from the engine, through the same table the pages use.
    refused_zh = run("--lang", "zh_CN", "ticket", "fire", number, "rectify", "--as", "clerk")
    assert refused_zh.exit_code == 2
    assert refused_zh.output.startswith("错误：") and "is not allowed" not in refused_zh.output
    refused_en = run("--lang", "en", "ticket", "fire", number, "rectify", "--as", "clerk")
    assert refused_en.exit_code == 2 and refused_en.output.startswith("error: ")

    # A ticket page: state titles, the due rule and the history in each language.
    fired = run("--lang", "zh_CN", "ticket", "fire", number, "categorize", "--as", "clerk",
                "--data", "category=traffic_management", "--data", "kind=criticism")  # fmt: skip
    assert fired.exit_code == 0, fired.output
    assert "→" in fired.output and "categorized" not in fired.output
    shown_zh = run("--lang", "zh_CN", "ticket", "show", number).output
    shown_en = run("--lang", "en", "ticket", "show", number).output
    assert "办理记录：" in shown_zh and "交通管理" in shown_zh and "状态：" in shown_zh
    assert "history:" in shown_en and "Traffic management" in shown_en
    assert "traffic_management" not in shown_zh + shown_en

    # Tables: users with their roles' and units' names.
    users_zh = run("--lang", "zh_CN", "users", "list").output
    assert "个会话" in users_zh and "session(s)" not in users_zh
    assert "session(s)" in run("--lang", "en", "users", "list").output


def test_dates_are_in_the_campaigns_timezone_as_each_language_writes_them(run) -> None:  # type: ignore[no-untyped-def]
    made = run("--lang", "en", "ticket", "create", "--campaign", "consultation-2005",
               "--text", "noise at night")  # fmt: skip
    number = _created_number(made.output)
    run("ticket", "fire", number, "categorize", "--as", "clerk",
        "--data", "category=traffic_management", "--data", "kind=criticism")  # fmt: skip
    shown_zh = run("--lang", "zh_CN", "ticket", "show", number).output
    shown_en = run("--lang", "en", "ticket", "show", number).output
    # Recorded at 10:00 Beijing time (02:00 UTC): the campaign's time, not UTC.
    assert "2005年3月1日 10:00" in shown_zh
    assert "Mar 1, 2005, 10:00" in shown_en
    assert "02:00" not in shown_zh + shown_en


def test_json_output_keeps_its_keys(run) -> None:  # type: ignore[no-untyped-def]
    made = run("--lang", "zh_CN", "ticket", "create", "--campaign", "consultation-2005",
               "--text", "x")  # fmt: skip
    number = made.output.split()[1].split("（")[0]
    out = run("--lang", "zh_CN", "ticket", "fire", number, "categorize", "--as", "clerk",
              "--data", "category=traffic_management", "--data", "kind=criticism",
              "--json")  # fmt: skip
    assert json.loads(out.output) == {
        "number": number,
        "from": "received",
        "to": "categorized",
        "version": 2,
    }
    listed = json.loads(run("--lang", "zh_CN", "workflow", "list", "--format", "json").output)
    assert {v["name"] for v in listed} >= {"consultation", "hotline"}


def test_the_language_is_chosen_in_order(run, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    # No --lang, no RECTIFLOW_LANG, no --as: the organisation's default (zh_CN).
    assert "没有待审批的延期申请" in run("extension", "list").output
    # RECTIFLOW_LANG over the default; --lang over RECTIFLOW_LANG.
    assert "no extension request" in run("extension", "list", env={"RECTIFLOW_LANG": "en"}).output
    assert (
        "没有待审批"
        in run("--lang", "zh_CN", "extension", "list", env={"RECTIFLOW_LANG": "en"}).output
    )
    # The --as user's stored preference over the default.
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(update(User).where(User.username == "clerk").values(locale="en"))
    engine.dispose()
    made = run("ticket", "create", "--campaign", "consultation-2005", "--text", "y",
               "--as", "clerk")  # fmt: skip
    assert made.output.startswith("created "), made.output
    # ...and --lang over the preference.
    made_zh = run("--lang", "zh_CN", "ticket", "create", "--campaign", "consultation-2005",
                  "--text", "z", "--as", "clerk")  # fmt: skip
    assert "已登记" in made_zh.output


def test_an_unknown_locale_is_one_clear_line_and_exit_2(run) -> None:  # type: ignore[no-untyped-def]
    out = run("--lang", "fr", "extension", "list")
    assert out.exit_code == 2
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and "fr" in lines[0] and "zh_CN, en" in lines[0]
    assert "Traceback" not in out.output
    env = run("extension", "list", env={"RECTIFLOW_LANG": "klingon"})
    assert env.exit_code == 2 and "RECTIFLOW_LANG" in env.output
    assert len(env.output.strip().splitlines()) == 1


def test_the_campaign_report_reads_in_each_language(run) -> None:  # type: ignore[no-untyped-def]
    """Every line of the text report, issue 14's figures included, in the reader's language;
    the campaign by its title and times as the language writes them, not ISO text."""
    zh = run("--lang", "zh_CN", "report", "--campaign", "consultation-2005")
    assert zh.exit_code == 0, zh.output
    assert "具体问题：0 件中 0 件已于3月18日前解决；0 件已上报党委、政府" in zh.output
    assert "3月18日后、活动期内整改：" in zh.output and "阶段：无" in zh.output
    assert "整改截止 2005年3月18日 00:00" in zh.output
    for english in ("Specific problems", "Rectified after", "of all closed", "phase:", "T00:00"):
        assert english not in zh.output
    en = run("--lang", "en", "report", "--campaign", "consultation-2005")
    assert "Specific problems: 0 of 0 solved before March 18; 0 reported" in en.output
    assert "rectification deadline Mar 18, 2005, 00:00" in en.output


def test_report_themes_are_named_in_the_readers_language() -> None:
    """Theme rows (text, XLSX, the page) show the theme's name, never its tag."""
    from engine.i18n import Reader
    from engine.messages import report_item

    assert report_item(Reader(locale="zh_CN"), "themes", "gambling") == "赌博"
    assert report_item(Reader(locale="en"), "themes", "hard_to_see_police") == (
        "hard to see the police in the communities and countryside"
    )
    assert report_item(Reader(locale="zh_CN"), "themes", "unknown_tag") == "unknown_tag"


class _ReturnsAtOnce:
    """A scheduler or a web server that returns at once: the start-up is what is tested."""

    def start(self) -> None: ...
    def run(self) -> None: ...
    def close(self) -> None: ...
    def shutdown(self, wait: bool = True) -> None: ...

    def get_job(self, name: str) -> object:
        return type("Job", (), {"trigger": type("Trigger", (), {"interval": "0:00:05"})})


def test_the_missing_audit_key_warning_is_said_whole_in_each_language(run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import waitress

    import cli.worker

    monkeypatch.setattr(cli.worker, "build_scheduler", lambda *a, **k: _ReturnsAtOnce())
    monkeypatch.setattr(waitress, "create_server", lambda *a, **k: _ReturnsAtOnce())
    no_key = {"RECTIFLOW_AUDIT_KEY": ""}
    for command in (["worker"], ["serve", "--port", "0", "--no-worker"]):
        zh = run("--lang", "zh_CN", *command, env=no_key)
        assert zh.exit_code == 0, zh.output
        assert "警告：未设置审计密钥：流转日志的哈希链没有使用密钥" in zh.output, zh.output
        assert "RECTIFLOW_AUDIT_KEY" in zh.output
        assert "NO AUDIT KEY" not in zh.output and "database host" not in zh.output
        en = run("--lang", "en", *command, env=no_key)
        assert en.exit_code == 0, en.output
        assert (
            "WARNING: NO AUDIT KEY IS SET: the transition log is hashed without a key" in en.output
        )
    # With production = true the same sentence is the refusal, in the reader's language too.
    production = {**no_key, "RECTIFLOW_PRODUCTION": "true"}
    refused = run("--lang", "zh_CN", "worker", env=production)
    assert refused.exit_code == 2
    assert "已设置 production = true，拒绝启动：未设置审计密钥：" in refused.output
    assert "NO AUDIT KEY" not in refused.output and "refusing" not in refused.output
    refused = run("--lang", "en", "serve", "--port", "0", env=production)
    assert refused.exit_code == 2
    assert "refusing to start with production = true: NO AUDIT KEY IS SET" in refused.output


def test_a_server_setting_that_slows_every_write_is_warned_about(run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL with autovacuum off: the worker and serve say so at start, in each language
    (whether it is off is read from the server: tests/integration/test_connections.py)."""
    import waitress

    import cli.worker
    from engine import db

    monkeypatch.setattr(cli.worker, "build_scheduler", lambda *a, **k: _ReturnsAtOnce())
    monkeypatch.setattr(waitress, "create_server", lambda *a, **k: _ReturnsAtOnce())
    monkeypatch.setattr(db, "server_setting_warnings", lambda engine: [db.AUTOVACUUM_OFF])
    for command in (["worker"], ["serve", "--port", "0", "--no-worker"]):
        zh = run("--lang", "zh_CN", *command)
        assert zh.exit_code == 0, zh.output
        assert "警告：PostgreSQL 的 autovacuum 已关闭" in zh.output, zh.output
        assert "statistics" not in zh.output
        en = run("--lang", "en", *command)
        assert en.exit_code == 0, en.output
        assert "WARNING: PostgreSQL's autovacuum is off" in en.output


def test_a_start_up_warning_is_said_once_on_a_terminal_and_also_logged_for_a_service(
    monkeypatch, caplog
) -> None:  # type: ignore[no-untyped-def]
    """On a terminal the person reads the warning once, in their language; a service's stderr
    (not a terminal) also gets the English log record the operators' tools look for."""
    import io
    import logging

    import cli.worker
    from engine import db

    for tty, logged in ((True, False), (False, True)):
        stream = io.StringIO()
        stream.isatty = lambda tty=tty: tty  # type: ignore[method-assign]
        monkeypatch.setattr(sys, "stderr", stream)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="cli.worker"):
            cli.worker._warn(db.AUTOVACUUM_OFF)
        assert "WARNING: PostgreSQL's autovacuum is off" in stream.getvalue()
        assert any("autovacuum" in r.getMessage() for r in caplog.records) is logged


def test_where_a_report_was_read_from_is_said_in_each_language() -> None:
    """`rectiflow report` with a standby says where it read, as a sentence in the reader's
    language (the HTTP header keeps its machine form, engine.readsource.ReadChoice.header)."""
    from engine.i18n import reader_for
    from engine.messages import read_source_line
    from engine.readsource import PRIMARY, STANDBY, ReadChoice

    zh, en = reader_for({}, "zh_CN"), reader_for({}, "en")
    standby = ReadChoice(STANDBY, lag_seconds=0.42)
    assert read_source_line(standby, zh) == "读取自备用库（延迟 0.4 秒）"
    assert read_source_line(standby, en) == "read from the standby (lag 0.4 s)"
    lagging = ReadChoice(PRIMARY, "standby lag 12.3 s > 5 s", lag_seconds=12.3)
    assert read_source_line(lagging, zh) == "读取自主库：备用库延迟 12.3 秒，超过允许的 5 秒"
    assert read_source_line(lagging, en) == (
        "read from the primary: the standby lags 12.3 s, more than the 5 s allowed"
    )
    behind = ReadChoice(PRIMARY, "standby has not replayed your last write (0/3000060)")
    assert "0/3000060" in read_source_line(behind, zh) and "standby" not in read_source_line(
        behind, zh
    )
    down = ReadChoice(PRIMARY, "standby unreachable (connection refused)")
    assert read_source_line(down, en) == (
        "read from the primary: the standby does not answer (connection refused)"
    )
    assert read_source_line(ReadChoice(PRIMARY), zh) == "读取自主库"
