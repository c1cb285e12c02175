"""Issue 14 on the web: the phase, the forecast and the draft download on the report page and
the board; a supervisor marks a fed-back ticket as exemplary (logged)."""

from __future__ import annotations

import io
from collections.abc import Callable

from docx import Document
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Ticket, TransitionLog
from tests.conftest import load_phases
from tests.web.conftest import csrf

CAMPAIGN = "consultation-2005"


def test_report_page_shows_phase_forecast_plain_labels_and_the_draft(
    login_as: Callable[[str], FlaskClient],
    make_ticket: Callable[..., object],
    db_session: Session,
) -> None:
    load_phases(db_session)
    db_session.commit()
    make_ticket("fed_back")
    make_ticket("assigned")
    client = login_as("supervisor")
    html = client.get(f"/reports/{CAMPAIGN}").get_data(as_text=True)
    assert 'id="phase"' in html and "Visits: collecting opinions" in html  # Feb 28: collection
    assert 'id="forecast"' in html and "Luohe Police Station" in html
    assert "Rectified after March 18, within the campaign" in html
    assert "Solved after the deadline" not in html
    assert "0 of 0 solved before March 18; 0 reported to the Party committee and government" in html
    assert f"/reports/{CAMPAIGN}/situation-report.docx?lang=zh_CN" in html

    draft = client.get(f"/reports/{CAMPAIGN}/situation-report.docx?lang=zh_CN")
    assert draft.status_code == 200
    assert draft.mimetype.endswith("wordprocessingml.document")
    assert (
        "situation-report-consultation-2005-2005-02-28-zh_CN.docx"
        in draft.headers["Content-Disposition"]
    )
    text = "\n".join(p.text for p in Document(io.BytesIO(draft.data)).paragraphs)
    assert "共梳理意见建议2条" in text
    english = client.get(f"/reports/{CAMPAIGN}/situation-report.docx?lang=en")
    assert "2 opinions and suggestions were sorted out" in "\n".join(
        p.text for p in Document(io.BytesIO(english.data)).paragraphs
    )
    bad = client.get(f"/reports/{CAMPAIGN}/situation-report.docx?lang=fr")
    assert bad.status_code == 422
    assert "no draft in language &#39;fr&#39;; use one of zh_CN, en" in bad.get_data(as_text=True)


def test_the_board_shows_the_phase_and_the_forecast(
    login_as: Callable[[str], FlaskClient],
    make_ticket: Callable[..., object],
    db_session: Session,
) -> None:
    load_phases(db_session)
    db_session.commit()
    make_ticket("assigned")
    html = login_as("supervisor").get("/supervisor/board").get_data(as_text=True)
    assert "phase: <strong>Visits: collecting opinions</strong>" in html
    assert 'id="forecast"' in html
    # Nothing fed back yet: no pace, so the Luohe station's item will be left on March 18.
    assert "will not have their items fed back before March 18" in html


def test_a_supervisor_marks_a_fed_back_ticket_as_exemplary(
    login_as: Callable[[str], FlaskClient],
    make_ticket: Callable[..., tuple[str, str]],
    db_session: Session,
) -> None:
    number, _ = make_ticket("fed_back")
    open_number, _ = make_ticket("assigned")
    client = login_as("supervisor")
    page = client.get(f"/tickets/{number}").get_data(as_text=True)
    assert 'id="action-exemplary"' in page
    assert 'id="action-exemplary"' not in client.get(f"/tickets/{open_number}").get_data(
        as_text=True
    )

    def post(reason: str, **extra: str) -> object:
        version = db_session.scalar(select(Ticket.version).where(Ticket.number == number))
        db_session.rollback()
        form = {
            "exemplary-csrf_token": csrf(client, f"/tickets/{number}"),
            "exemplary-expected_version": str(version),
            "exemplary-reason": reason,
            **extra,
        }
        return client.post(f"/tickets/{number}/exemplary", data=form)

    refused = post("")
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert "say what makes it an example" in refused.get_data(as_text=True)  # type: ignore[attr-defined]
    done = post("The ID card taken to Nanjing")
    assert done.status_code == 302  # type: ignore[attr-defined]
    rows = db_session.execute(
        select(TransitionLog.trigger, TransitionLog.actor, TransitionLog.reason)
        .join(Ticket, Ticket.id == TransitionLog.ticket_id)
        .where(Ticket.number == number, TransitionLog.trigger.like("%exemplary"))
    ).all()
    db_session.rollback()
    assert [tuple(r) for r in rows] == [
        ("marked_exemplary", "supervisor", "The ID card taken to Nanjing")
    ]
    assert 'id="exemplary-mark"' in client.get(f"/tickets/{number}").get_data(as_text=True)
    # A clerk may not mark.
    clerk = login_as("clerk")
    forbidden = clerk.post(
        f"/tickets/{number}/exemplary",
        data={"exemplary-csrf_token": csrf(clerk, "/"), "exemplary-reason": "x"},
    )
    assert forbidden.status_code == 403
