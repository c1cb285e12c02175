"""Two languages, Chinese first: the catalogues are complete, the locale is chosen as the README
says (preference, switch, Accept-Language, organisation default), pages show names and titles
rather than codes, and refusals come in the reader's language."""

from __future__ import annotations

import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from sqlalchemy import select

from engine.models import User
from engine.settings import PROJECT_ROOT
from tests.web.conftest import csrf, post_action
from web import create_app

TRANSLATIONS = PROJECT_ROOT / "web" / "translations"
CODES = (
    "public_security_management",
    "law_enforcement",
    "luohe-station",
    "fed_back",
    "unit_leader",
    "feed_back",
    "escalate_to_government",
)


def _catalog(locale: str):
    with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


def _extract(tmp_path: Path) -> set[str]:
    """Run the extractor as the README says and return every msgid it finds."""
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg"]
        + ["-k", "_l", "-k", "lazy_gettext", "--no-location", "-o", str(pot), "."],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as handle:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}


def test_every_message_has_a_chinese_translation_and_the_catalogues_are_current(tmp_path):
    extracted = _extract(tmp_path)
    assert len(extracted) > 300  # templates, flash messages, forms, refusals, notices
    # The command line's output and the engine's sentences (shared by pages, CLI and e-mails)
    # come from the same catalogue.
    assert "no extension request is waiting" in extracted  # cli/extensions.py
    assert "%(number)s is overdue (was due %(due)s)" in extracted  # engine/messages.py
    for locale in ("zh_CN", "en"):
        catalog = _catalog(locale)
        ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
        missing = sorted(extracted - ids)
        assert not missing, f"{locale}: not in the catalogue (run pybabel update): {missing[:10]}"
        untranslated = sorted(
            (m.id if isinstance(m.id, str) else m.id[0])
            for m in catalog
            if m.id and not (m.string if isinstance(m.string, str) else all(m.string))
        )
        assert not untranslated, f"{locale}: no translation for {untranslated[:10]}"
        fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
        assert not fuzzy, f"{locale}: fuzzy entries {fuzzy[:5]}"
        # The compiled catalogue (committed, so a fresh clone works) matches the .po file.
        with (TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo").open("rb") as handle:
            compiled = {m.id: m.string for m in read_mo(handle) if m.id}
        source = {m.id: m.string for m in catalog if m.id}
        assert compiled == source, f"{locale}: messages.mo is stale; run pybabel compile"
    # Placeholders survive translation: a missing %(name)s would raise at render time.
    for message in _catalog("zh_CN"):
        if message.id and isinstance(message.id, str):
            wanted = set(re.findall(r"%\((\w+)\)s", message.id))
            assert set(re.findall(r"%\((\w+)\)s", message.string)) == wanted, message.id


def test_an_untranslated_template_string_is_caught(tmp_path, monkeypatch):
    """The extractor sees a new string in a template, so the test above would fail on it."""
    template = PROJECT_ROOT / "web" / "templates" / "_probe_untranslated.html"
    template.write_text("{{ _('A sentence nobody translated yet') }}\n")
    try:
        assert "A sentence nobody translated yet" in _extract(tmp_path)
        assert "A sentence nobody translated yet" not in {m.id for m in _catalog("zh_CN")}
    finally:
        template.unlink()


def test_an_untranslated_cli_string_is_caught(tmp_path):
    """A new sentence in cli/ (``_`` from cli.context) is extracted, so the test above fails on
    it until both catalogues have it."""
    probe = PROJECT_ROOT / "cli" / "_probe_untranslated.py"
    probe.write_text('from cli.context import _\n\nLINE = _("A CLI line nobody translated")\n')
    try:
        assert "A CLI line nobody translated" in _extract(tmp_path)
        assert "A CLI line nobody translated" not in {m.id for m in _catalog("zh_CN")}
    finally:
        probe.unlink()


def _text(response) -> str:
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def bureau_app(sqlite_url, clock):
    """The app as the sample bureau runs it: no locale overridden (default_locale = zh_CN)."""
    app = create_app(
        {"database_url": sqlite_url, "TESTING": True, "SECRET_KEY": "t", "CLOCK": clock}
    )
    yield app
    app.extensions["rectiflow.engine"].dispose()


def test_the_bureau_default_is_chinese_and_accept_language_chooses(bureau_app):
    client = bureau_app.test_client()
    page = client.get("/")
    assert '<html lang="zh-CN">' in page.get_data(as_text=True)
    assert "请对我们的工作提出意见" in _text(page)
    english = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in english.get_data(as_text=True)
    assert "Tell us what you think of our work" in _text(english)
    chinese = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "请对我们的工作提出意见" in _text(chinese)
    assert "提意见" in _text(client.get("/", headers={"Accept-Language": "zh"}))


def test_the_switch_sets_a_cookie_and_a_signed_in_users_preference(app, login_as, db_session):
    client = login_as("supervisor")
    board = client.get("/supervisor/board", headers={"Accept-Language": "en"})
    assert "Overdue board" in _text(board) and 'id="language-switch"' in board.get_data(
        as_text=True
    )
    r = client.post(
        "/locale",
        data={"csrf_token": csrf(client, "/supervisor/board"), "locale": "zh_CN", "next": "/x"},
    )
    assert r.status_code == 302 and r.headers["Location"].endswith("/x")
    assert db_session.scalar(select(User.locale).where(User.username == "supervisor")) == "zh_CN"
    db_session.rollback()
    # The stored preference wins over the browser, also without the cookie.
    client.delete_cookie("locale")
    page = client.get("/supervisor/board", headers={"Accept-Language": "en"})
    assert "超期督办台" in _text(page) and "Overdue board" not in _text(page)


def test_the_switch_without_signing_in_uses_a_cookie(client):
    token = csrf(client, "/")
    r = client.post("/locale", data={"csrf_token": token, "locale": "zh_CN", "next": "/"})
    assert r.status_code == 302 and "locale=zh_CN" in r.headers["Set-Cookie"]
    assert "请对我们的工作提出意见" in _text(client.get("/", headers={"Accept-Language": "en"}))


def test_an_unknown_locale_is_a_clear_error_and_stores_nothing(app, login_as, db_session):
    client = login_as("clerk")
    r = client.post(
        "/locale",
        data={"csrf_token": csrf(client, "/desk/intake"), "locale": "fr_FR"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert r.status_code == 422
    assert "没有语言“fr_FR”" in _text(r) and "中文 (zh_CN)" in _text(r)
    assert db_session.scalar(select(User.locale).where(User.username == "clerk")) is None
    db_session.rollback()


def test_pages_show_names_and_titles_not_codes(login_as, make_ticket):
    number, _ = make_ticket("fed_back", unit="luohe-station", officer="luohe.officer")
    client = login_as("supervisor")
    page = _text(client.get(f"/tickets/{number}", headers={"Accept-Language": "zh-CN"}))
    for title in ("已反馈群众", "罗河派出所", "执法执勤", "批评", "整改", "登门走访", "督办员"):
        assert title in page, title
    for code in CODES:
        assert code not in page, code
    # Dates as Chinese writes them, in the campaign's timezone (UTC 02:00 = 10:00 in Shanghai).
    assert "2005年2月28日 10:00" in page
    english = _text(client.get(f"/tickets/{number}", headers={"Accept-Language": "en"}))
    assert "Fed back to the citizen" in english and "Luohe Police Station" in english
    assert "Feb 28, 2005, 10:00" in english
    for code in CODES:
        assert code not in english, code


def test_history_shows_labelled_fields_not_json(login_as, make_ticket):
    number, _ = make_ticket("rectified")
    client = login_as("supervisor")
    html = client.get(f"/tickets/{number}", headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )
    history = html[html.index('id="history"') :]
    assert "{&#34;" not in history and '{"' not in history
    assert "<dt>Rectification measures taken</dt><dd>Patrols doubled at night.</dd>" in history


def test_queue_and_board_in_chinese(app, client, make_ticket, clock, db_session):
    from datetime import timedelta

    from engine.web_sessions import start_session
    from tests.conftest import as_uow

    def signed_in(username: str):
        """A session opened at the moved clock (one opened 30 days earlier has expired)."""
        uid = db_session.scalar(select(User.id).where(User.username == username))
        sid = start_session(as_uow(db_session), uid, now=clock())
        db_session.commit()
        with client.session_transaction() as session:
            session.clear()
            session["sid"] = sid
        return client

    make_ticket("assigned")
    clock.advance(timedelta(days=30))
    officer = _text(
        signed_in("luohe.officer").get("/my/queue", headers={"Accept-Language": "zh-CN"})
    )
    assert "我的待办" in officer and "已超期" in officer and "已交办责任民警" in officer
    board = _text(
        signed_in("supervisor").get("/supervisor/board", headers={"Accept-Language": "zh"})
    )
    assert "超期督办台" in board and "罗河派出所" in board
    for code in CODES:
        assert code not in board, code


def test_engine_refusals_come_in_the_readers_language(app, login_as, make_ticket, ticket_version):
    number, _ = make_ticket("assigned")
    client = login_as("legal.officer")
    page = client.get(f"/tickets/{number}", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 403
    assert "只能办理本单位的件" in _text(page) and "罗河派出所" in _text(page)
    # A stale form: the conflict is told in Chinese.
    client = login_as("officer")
    seen, _ = ticket_version(number)
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"
    r = post_action(client, number, "rectify", {"measures": "第一次"}, version=seen)
    assert r.status_code == 302
    r = post_action(client, number, "rectify", {"measures": "第二次"}, version=seen)
    assert r.status_code == 409 and "您打开页面期间" in _text(r)


def test_extension_refusal_field_message_in_chinese(app, login_as, make_ticket):
    number, _ = make_ticket("assigned")
    client = login_as("officer")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"
    token = csrf(client, f"/tickets/{number}")
    r = client.post(
        f"/tickets/{number}/extension",
        data={
            "extension-csrf_token": token,
            "extension-due_on": "2005-02-01",
            "extension-reason": "人手不足",
        },
    )
    assert r.status_code == 422
    assert "已过去；请填写更晚的时间" in _text(r)


def test_notices_are_shown_in_the_readers_language(app, login_as, db_session):
    from datetime import UTC, datetime

    from engine.notifications import notify

    uid = db_session.scalar(select(User.id).where(User.username == "luohe.officer"))
    notify(
        db_session,
        user_ids=[uid],
        kind="warning",
        subject="2005-0001 is due within 24 hours (by 2005-03-01 17:00)",
        body="2005-0001 (assigned) must be done by 2005-03-01 17:00.",
        now=datetime(2005, 2, 28, 9, tzinfo=UTC),
    )
    db_session.commit()
    page = _text(login_as("officer").get("/inbox", headers={"Accept-Language": "zh-CN"}))
    assert "2005-0001 将在 24 小时内到期（2005-03-01 17:00 前）" in page
    assert "2005-0001（已交办责任民警）须在 2005-03-01 17:00 前办结。" in page
    assert "预警" in page


def test_charts_and_report_page_carry_names_in_the_readers_language(login_as, make_ticket):
    make_ticket("fed_back")
    make_ticket("assigned", unit="security-brigade", officer="security.officer")
    client = login_as("supervisor")
    page = _text(client.get("/reports/consultation-2005", headers={"Accept-Language": "zh-CN"}))
    assert "执法执勤" in page and "已反馈群众" in page and "罗河派出所" in page
    for code in CODES:
        assert code not in page, code
    for name in ("categories", "states", "units", "deadline"):
        svg = client.get(
            f"/reports/consultation-2005/chart/{name}.svg", headers={"Accept-Language": "zh-CN"}
        ).get_data(as_text=True)
        labels = " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", svg))
        for code in CODES:
            assert code not in labels, (name, code)
        assert "…" not in labels, (name, "a legend entry was cut")
    categories = client.get(
        "/reports/consultation-2005/chart/categories.svg", headers={"Accept-Language": "zh-CN"}
    ).get_data(as_text=True)
    # Each slice's legend names the category and its count: colour is not the only key.
    assert "执法执勤: 2" in categories and "治安管理: 0" in categories
    units = client.get(
        "/reports/consultation-2005/chart/units.svg", headers={"Accept-Language": "en"}
    ).get_data(as_text=True)
    assert "Public Security Brigade" in units and "Luohe Police Station" in units


def test_receipt_secrets_avoid_look_alike_characters_and_are_typed_loosely(client):
    from engine.tickets import SECRET_ALPHABET, new_secret, normalise_secret

    assert not set("0O1Il") & set(SECRET_ALPHABET)
    secrets = {new_secret() for _ in range(200)}
    assert len(secrets) == 200
    assert all(re.fullmatch(r"[2-9A-HJKMNP-Z]{5}(-[2-9A-HJKMNP-Z]{5}){2}", s) for s in secrets)
    assert normalise_secret(" k7qxm 3pa9r-twz4h ") == "K7QXM-3PA9R-TWZ4H"


def test_status_page_shows_opinion_unit_expected_date_and_why_reopened(
    app, client, make_ticket, db_session
):
    from engine.citizen import answer_feedback, decide_reopen_request
    from engine.models import ReopenRequest
    from engine.tickets import get_actor
    from tests.conftest import CAMPAIGN_NOW, as_uow

    number, secret = make_ticket("fed_back", text="市场路灯不亮。")
    answer_feedback(
        as_uow(db_session),
        number=number,
        secret=secret,
        satisfied=False,
        reason="还是很暗。",
        now=CAMPAIGN_NOW,
    )
    request_id = db_session.scalar(select(ReopenRequest.id))
    decide_reopen_request(
        as_uow(db_session),
        request_id,
        actor=get_actor(db_session, "supervisor"),
        reopen=True,
        note="群众反映整改后仍然很暗，重新整改。",
        now=CAMPAIGN_NOW,
    )
    db_session.commit()
    token = csrf(client, "/status")
    r = client.post(
        "/status",
        data={"csrf_token": token, "number": number, "secret": secret.lower()},
        headers={"Accept-Language": "zh-CN"},
    )
    assert r.status_code == 200
    page = _text(r)
    assert "市场路灯不亮。" in page
    assert "责任单位" in page and "罗河派出所" in page
    assert "预计办结时间" in page and "2005年3月" in page
    assert "重新办理" in page and "群众反映整改后仍然很暗，重新整改。" in page
    assert "luohe.officer" not in page  # no officer's name for the public


def test_printable_receipt(client):
    token = csrf(client, "/submit")
    r = client.post(
        "/submit",
        data={"csrf_token": token, "text": "派出所门口没有路灯。"},
        headers={"Accept-Language": "zh-CN"},
    )
    html = r.get_data(as_text=True)
    assert (
        'class="nowrap" id="receipt-number"' in html
        and 'class="nowrap" id="receipt-secret"' in html
    )
    assert "打印回执" in html and "/static/print.js" in html
    with client.get("/static/style.css") as response:
        css = response.get_data(as_text=True)
    assert "@media print" in css and ".nowrap" in css


def test_report_downloads_are_headed_in_the_readers_language(login_as, make_ticket):
    import io

    from openpyxl import load_workbook

    make_ticket("fed_back")
    client = login_as("supervisor")
    csv_text = client.get(
        "/reports/consultation-2005/report.csv", headers={"Accept-Language": "zh-CN"}
    ).data.decode("utf-8-sig")
    assert csv_text.splitlines()[0] == "部分,项目,数量,占比"
    assert "按类别,执法执勤,1," in csv_text and "按状态,已反馈群众,1," in csv_text
    for code in CODES:
        assert code not in csv_text, code
    text = client.get(
        "/reports/consultation-2005/report.txt", headers={"Accept-Language": "zh-CN"}
    ).data.decode()
    assert text.startswith("活动报告：2005年走访征求意见活动") or "活动报告：" in text
    assert "按单位:" in text and "罗河派出所" in text
    book = load_workbook(
        io.BytesIO(
            client.get(
                "/reports/consultation-2005/report.xlsx", headers={"Accept-Language": "en"}
            ).data
        )
    )
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[0] == ("Section", "Item", "Count", "Share")
    assert ("By unit", "Luohe Police Station", 1, 1.0) in rows


def test_a_user_who_cannot_act_reads_the_engines_reason(app, login_as, make_ticket):
    """The ticket page says why no step is the user's (``firing.why_not``), by its message id
    and in the reader's language, instead of a line that fits every case."""
    number, _ = make_ticket("assigned")
    client = login_as("clerk")
    english = _text(client.get(f"/tickets/{number}", headers={"Accept-Language": "en"}))
    assert (
        "Only Officer or Supervisor or Unit leader can act on it in this state (Reassign, "
        "Record the rectification, Escalate to government); you are Clerk."
    ) in english
    chinese = _text(client.get(f"/tickets/{number}", headers={"Accept-Language": "zh-CN"}))
    assert (
        "此状态下只有责任民警或督办员或单位负责人可以办理（改派、整改、上报政府）；"
        "您的角色是受理员。"
    ) in chinese
    assert "unit_leader" not in chinese and "Clerk" not in chinese
    # No grant to act at all: the policy's refusal, in either language.
    client = login_as("admin")
    english = _text(client.get(f"/tickets/{number}", headers={"Accept-Language": "en"}))
    assert "; you are Administrator." in english and "This needs the role Clerk or" in english
    chinese = _text(client.get(f"/tickets/{number}", headers={"Accept-Language": "zh-CN"}))
    assert "此操作需要受理员或" in chinese and "您的角色是系统管理员。" in chinese
    # Nobody can be given the engine's own role: the refusal does not offer it.
    needed = english.split("This needs the role ", 1)[1].split("; you are", 1)[0]
    assert "Clerk" in needed and "System" not in needed
    assert "系统；" not in chinese and "系统或" not in chinese and "或系统" not in chinese


def test_the_reason_stands_above_the_other_actions_left_to_the_user(app, login_as, make_ticket):
    number, _ = make_ticket("escalated")
    # The officer may still ask for more time, but the next step is not theirs.
    client = login_as("officer")
    page = client.get(f"/tickets/{number}", headers={"Accept-Language": "zh-CN"})
    assert 'id="action-extension"' in page.get_data(as_text=True)
    said = "此状态下只有受理员或督办员可以办理（反馈政府办理结果）；您的角色是责任民警。"
    text = _text(page)
    assert said in text and text.index(said) < text.index("申请延期")
    english = _text(client.get(f"/tickets/{number}", headers={"Accept-Language": "en"}))
    assert (
        "Only Clerk or Supervisor can act on it in this state (Feed back the government's "
        "answer); you are Officer."
    ) in english


def test_a_final_state_is_its_own_reason_in_either_language(app, db_session):
    from types import SimpleNamespace

    from engine.i18n import reader_for
    from engine.messages import engine_message
    from engine.tickets import get_actor, why_not
    from tests.conftest import as_uow

    uow = as_uow(db_session)
    closed = SimpleNamespace(
        number="H-1", state="closed", workflow_name="hotline", workflow_version=1
    )
    refusal = why_not(uow, closed, get_actor(db_session, "supervisor"))
    assert refusal is not None and refusal.message_id == "fire.final"
    said = {
        locale: engine_message(
            refusal, reader_for(uow.ctx.settings, locale, registry=uow.registry, policy=uow.policy)
        )
        for locale in ("en", "zh_CN")
    }
    hotline = uow.registry.get("hotline", 1)
    assert said["zh_CN"] == (
        f"H-1 已处于终结状态（“{hotline.state_title('closed', 'zh_CN')}”），不能再办理。"
    )
    assert said["en"] == (
        f"H-1 is in a final state (“{hotline.state_title('closed', 'en')}”); "
        "nothing more can happen."
    )


def test_the_exemplary_mark_is_offered_refused_and_confirmed_in_chinese(
    app, login_as, make_ticket, ticket_version
):
    number, _ = make_ticket("fed_back")
    client = login_as("supervisor")
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"
    page = _text(client.get(f"/tickets/{number}"))
    assert "标记为典型案例（在情况报告中引用）" in page and "典型之处（用于情况报告）" in page
    assert "Mark as exemplary" not in page

    def post(reason: str):  # type: ignore[no-untyped-def]
        return client.post(
            f"/tickets/{number}/exemplary",
            data={
                "exemplary-csrf_token": csrf(client, f"/tickets/{number}"),
                "exemplary-expected_version": str(ticket_version(number)[0]),
                "exemplary-reason": reason,
            },
        )

    refused = post("")
    assert refused.status_code == 422
    assert "为必填项：请说明它为何可作为典型。" in _text(refused)
    done = post("身份证跨省补办")
    assert done.status_code == 302
    shown = _text(client.get(done.headers["Location"]))
    assert f"{number} 已标记为典型案例。" in shown and "撤销典型案例标记" in shown


def test_a_step_is_titled_as_it_is_from_the_state_it_left(login_as, make_ticket, db_session):
    """One trigger name, several steps: ``feed_back`` from ``escalated`` is the government's
    answer, not the feedback after a rectification — in the history, on the CLI and in the
    notices' text (Workflow.trigger_title with the source state)."""
    from engine.tickets import fire, get_actor
    from tests.conftest import CAMPAIGN_NOW, as_uow

    number, _ = make_ticket("escalated")
    fire(
        as_uow(db_session),
        number,
        "feed_back",
        actor=get_actor(db_session, "supervisor"),
        data={"method": "letter", "text": "The county answered.", "date": "2005-02-28"},
        now=CAMPAIGN_NOW,
    )
    db_session.commit()
    client = login_as("supervisor")
    for lang, right, wrong in (
        ("en", "Feed back the government&#39;s answer", "Feed back to the citizen"),
        ("zh-CN", "反馈政府办理结果", "反馈群众"),
    ):
        html = client.get(f"/tickets/{number}", headers={"Accept-Language": lang}).get_data(
            as_text=True
        )
        start = html.index('id="history"')
        history = html[start : html.index("</table>", start)]
        assert f"<td>{right}</td>" in history, lang  # the trigger's cell of the log row
        assert f"<td>{wrong}</td>" not in history, lang
