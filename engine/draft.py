"""The situation report, drafted from the data as a Word document (python-docx).

The seed (shared/seed/consultation-situation-report.txt) is such a report, sent to the
County Party Committee, People's Congress, Government, the Political and Legal
Committee and the Municipal Bureau. The draft keeps its structure — deployment and
organisation; what the people said; rectification and feedback, with typical cases;
what remains — and writes every figure from the campaign report, the forecast and the
log: nothing in it is typed by hand. The office edits the prose and sends it.

Chinese (``zh_CN``) is the bureau's working language and the default; ``en`` gives an
English draft.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, cast

from sqlalchemy import Table, distinct, func, select
from sqlalchemy.orm import Session

from engine.context import UnitOfWork
from engine.errors import ValidationError
from engine.exemplary import exemplary_ticket_ids
from engine.forecast import unit_forecast
from engine.models import Campaign, FeedbackRecord, Ticket, TransitionLog, Unit
from engine.report import campaign_report, resolve_as_of

LANGUAGES = ("zh_CN", "en")
# The roles of the people who rectify and feed back (the policy's; the draft counts them).
RESPONSIBLE_ROLES = ("officer", "unit_leader")
log_t = cast(Table, TransitionLog.__table__)
tickets_t = cast(Table, Ticket.__table__)

THEMES = {
    "zh_CN": {
        "theft": "盗窃",
        "gambling": "赌博",
        "slow_police_response": "110接处警弱化、出警慢",
        "hard_to_see_police": "城区社区和农村见警难",
        "poor_joint_defence_team": "联防队伍素质差",
        "poor_law_enforcement_quality": "执法办案质量一般或较差",
    },
    "en": {
        "theft": "theft",
        "gambling": "gambling",
        "slow_police_response": "the 110 police desk weakened and the police slow",
        "hard_to_see_police": "hard to see the police in the communities and countryside",
        "poor_joint_defence_team": "the joint defence team of poor quality",
        "poor_law_enforcement_quality": "law enforcement quality generally or quite poor",
    },
}

TEXT: dict[str, dict[str, str]] = {
    "zh_CN": {
        "title": "关于开展{name}情况的报告",
        "to": "县委、县人大、县政府、县委政法委、市公安局：",
        "intro": (
            "{starts}至{ends}，我局组织开展{name}，共梳理群众意见建议{total}条。"
            "现将有关情况报告如下："
        ),
        "h1": "一、精心部署，狠抓落实，确保活动有序开展",
        "deploy": (
            "全局{units}个单位、{officers}名民警参与整改反馈，"
            "逐条明确责任单位和具体责任人，建档督办。"
        ),
        "phase": "{name}：{starts}至{ends}。",
        "phase_day": "{name}：{starts}。",
        "h2": "二、查找问题，理清工作思路",
        "said": (
            "共梳理意见建议{total}条，其中{parts}，不属公安职责范围的{outside}条。"
            "群众要求解决的具体问题或案件{problems}件。"
        ),
        "part": "{name}{n}条",
        "themes": "在反映的问题中，{parts}。",
        "theme": "{share}%的群众反映{name}",
        "h3": "三、明确责任，逐项整改，取得良好社会效果",
        "solved": (
            "截至{deadline}，已解决群众要求解决的具体问题或案件{solved}件（共{problems}件），"
            "对不属公安职责范围的{escalated}个具体问题及时报告党委、政府和有关部门。"
        ),
        "implemented": (
            "对群众反映的意见建议逐条反馈：截至{end}，{implemented}条意见建议的整改措施全部落实"
            "（表扬意见寄送感谢信，批评意见登门答复）；一时难以解决的{extended}条，"
            "明确办理时限，限期解决。"
        ),
        "late": "逾期后办结的{late}条。",
        "examples": "典型事例：",
        "example": "{text}（{unit}）整改措施：{measures} 反馈：{feedback}",
        "quotes": "群众评价：",
        "quote": "“{quote}”",
        "h4": "四、存在的问题和下一步工作",
        "remains": "截至{asof}，尚有{open}条意见建议未反馈，其中逾期{overdue}条。",
        "remains_none": "截至{asof}，意见建议已全部反馈，无逾期事项。",
        "unsatisfied": "群众表示不满意{unsatisfied}次，重新办理{reopened}件。",
        "forecast": "按目前进度，{unit}{target}将有{left}条不能反馈到位。",
        "signoff": "{day}",
    },
    "en": {
        "title": "Report on the {name}",
        "to": (
            "County Party Committee, County People's Congress, County Government, County "
            "Political and Legal Committee, Municipal Public Security Bureau:"
        ),
        "intro": (
            "From {starts} to {ends} the bureau conducted the {name}; {total} opinions and "
            "suggestions were sorted out. The situation is reported as follows:"
        ),
        "h1": "1. Careful deployment and implementation: an orderly activity",
        "deploy": (
            "{units} units and {officers} officers took part in rectification and feedback; "
            "each item had its responsible unit and person, filed for supervision."
        ),
        "phase": "{name}: {starts} to {ends}.",
        "phase_day": "{name}: {starts}.",
        "h2": "2. Finding the problems and clarifying the direction of the work",
        "said": (
            "{total} opinions and suggestions were sorted out: {parts}; {outside} were not "
            "within the scope of public security duties. The people asked for {problems} "
            "specific problems or cases to be solved."
        ),
        "part": "{n} on {name}",
        "themes": "Among the problems raised, {parts}.",
        "theme": "{share}% of the people reported {name}",
        "h3": "3. Clear responsibility, rectification item by item, good social results",
        "solved": (
            "As of {deadline}, {solved} of the {problems} specific problems or cases the people "
            "asked to solve were solved; {escalated} outside the scope of public security "
            "duties were reported to the Party committee, the government and the departments "
            "concerned."
        ),
        "implemented": (
            "Every opinion was answered: as of {end}, the measures for {implemented} opinions "
            "and suggestions were all implemented (thank-you letters for praise, answers at "
            "the door for criticism); for {extended} that could not be solved at once, a time "
            "limit was clearly defined."
        ),
        "late": "{late} were closed after their due time.",
        "examples": "Typical cases:",
        "example": "{text} ({unit}) Measures: {measures} Feedback: {feedback}",
        "quotes": "What the people said:",
        "quote": "\u201c{quote}\u201d",
        "h4": "4. What remains and the next steps",
        "remains": "As of {asof}, {open} opinions are not yet fed back, {overdue} of them overdue.",
        "remains_none": "As of {asof}, every opinion has been fed back; nothing is overdue.",
        "unsatisfied": "Citizens were unsatisfied {unsatisfied} times; {reopened} were reopened.",
        "forecast": "At the current pace, {unit} will have {left} items not fed back {target}.",
        "signoff": "{day}",
    },
}


def _day(value: date, lang: str) -> str:
    if lang == "zh_CN":
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value:%B} {value.day}, {value.year}"


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValidationError(
            f"no draft in language {lang!r}; use one of {', '.join(LANGUAGES)}",
            fields={"lang": f"use one of {', '.join(LANGUAGES)}"},
        )


@dataclass(frozen=True)
class Case:
    number: str
    text: str
    unit: str
    measures: str
    feedback: str


def _cases(session: Session, campaign_id: int, before: datetime | None) -> list[Case]:
    """The tickets a supervisor marked exemplary: text, unit, measures and feedback given."""
    ids = exemplary_ticket_ids(session, campaign_id, before=before)
    out = []
    for ticket_id in ids:
        row = session.execute(
            select(Ticket.number, Ticket.text, Unit.name)
            .outerjoin(Unit, Unit.id == Ticket.unit_id)
            .where(Ticket.id == ticket_id)
        ).one()
        measures = session.scalar(
            select(log_t.c.data)
            .where(log_t.c.ticket_id == ticket_id, log_t.c.data.like('%"measures"%'))
            .order_by(log_t.c.seq.desc())
            .limit(1)
        )
        feedback = session.scalar(
            select(FeedbackRecord.text)
            .where(FeedbackRecord.ticket_id == ticket_id)
            .order_by(FeedbackRecord.id.desc())
            .limit(1)
        )
        out.append(
            Case(
                number=row.number,
                text=row.text,
                unit=row.name or "",
                measures=json.loads(measures).get("measures", "") if measures else "",
                feedback=feedback or "",
            )
        )
    return out


def _quotes(session: Session, campaign_id: int, before: datetime | None) -> list[str]:
    """What satisfied citizens wrote with their answer, oldest first."""
    query = (
        select(log_t.c.reason)
        .join(tickets_t, tickets_t.c.id == log_t.c.ticket_id)
        .where(
            tickets_t.c.campaign_id == campaign_id,
            log_t.c.trigger == "citizen_satisfied",
            log_t.c.reason.is_not(None),
        )
        .order_by(log_t.c.at)
    )
    if before is not None:
        query = query.where(log_t.c.at < before)
    return [r for r in session.scalars(query) if r]


def _people(session: Session, campaign_id: int, before: datetime | None) -> tuple[int, int]:
    """Units holding the campaign's items, and officers and unit leaders who acted on them."""
    units = session.scalar(
        select(func.count(distinct(Ticket.unit_id))).where(
            Ticket.campaign_id == campaign_id, Ticket.unit_id.is_not(None)
        )
    )
    query = (
        select(func.count(distinct(log_t.c.actor)))
        .join(tickets_t, tickets_t.c.id == log_t.c.ticket_id)
        .where(tickets_t.c.campaign_id == campaign_id, log_t.c.role.in_(RESPONSIBLE_ROLES))
    )
    if before is not None:
        query = query.where(log_t.c.at < before)
    officers = session.scalar(query)
    return int(units or 0), int(officers or 0)


def draft_figures(
    uow: UnitOfWork,
    campaign_code: str,
    *,
    as_of: date | datetime | str | None = None,
    now: datetime | None = None,
    lang: str = "zh_CN",
) -> list[tuple[str, str]]:
    """The draft as (style, text) paragraphs: ``title``, ``heading``, ``body``, ``bullet``,
    ``signoff``."""
    _check_lang(lang)
    words = TEXT[lang]
    zh = lang == "zh_CN"
    session = uow.session
    report = campaign_report(uow, campaign_code, as_of=as_of, now=now)
    campaign = session.scalars(select(Campaign).where(Campaign.code == campaign_code)).one()
    cutoff = resolve_as_of(as_of, campaign.timezone)
    forecast = unit_forecast(uow, campaign_code, as_of=as_of, now=now)
    camp = report["campaign"]
    name = camp["name_zh"] if zh else camp["name"].lower().replace("activity 2005", "activity")
    total = report["total"]
    asof_day = date.fromisoformat(report["as_of_day"])
    deadline = datetime.fromisoformat(camp["rectification_deadline"]).date()
    units, officers = _people(session, campaign.id, cutoff)
    names = report["category_names_zh"] if zh else report["category_names"]
    outside_codes = {c.code for c in campaign.categories if c.outside_duties}
    sep = "，" if zh else ", "
    parts = sep.join(
        words["part"].format(
            name=names.get(code, code) if zh else names.get(code, code).lower(), n=n
        )
        for code, n in report["by_category"].items()
        if code not in outside_codes
    )
    themes = sep.join(
        words["theme"].format(
            share=round(100 * t["share"]) if t["share"] is not None else 0,
            name=THEMES[lang].get(tag, tag),
        )
        for tag, t in report["themes"].items()
    )
    sp = report["specific_problems"]
    paragraphs: list[tuple[str, str]] = [
        ("title", words["title"].format(name=name)),
        ("body", words["to"]),
        (
            "body",
            words["intro"].format(
                starts=_day(date.fromisoformat(camp["starts_on"]), lang),
                ends=_day(date.fromisoformat(camp["ends_on"]), lang),
                name=name,
                total=total,
            ),
        ),
        ("heading", words["h1"]),
        ("body", words["deploy"].format(units=units, officers=officers)),
    ]
    for phase in report["phases"]:
        first, last = date.fromisoformat(phase["starts_on"]), date.fromisoformat(phase["ends_on"])
        paragraphs.append(
            (
                "body",
                (words["phase_day"] if first == last else words["phase"]).format(
                    name=phase["name_zh"] if zh else phase["name"],
                    starts=_day(first, lang),
                    ends=_day(last, lang),
                ),
            )
        )
    paragraphs += [
        ("heading", words["h2"]),
        (
            "body",
            words["said"].format(
                total=total, parts=parts, outside=report["outside_duties"], problems=sp["total"]
            ),
        ),
    ]
    if themes:
        paragraphs.append(("body", words["themes"].format(parts=themes)))
    # "As of March 18": the deadline is the start of March 18, so the day before ends it.
    paragraphs += [
        ("heading", words["h3"]),
        (
            "body",
            words["solved"].format(
                deadline=_day(deadline, lang),
                solved=sp["solved_by_deadline"],
                problems=sp["total"],
                escalated=sp["escalated_to_government"],
            ),
        ),
        (
            "body",
            words["implemented"].format(
                end=_day(min(asof_day, date.fromisoformat(camp["ends_on"])), lang),
                implemented=report["measures_implemented"],
                extended=report["extended"],
            ),
        ),
    ]
    if report["late"]:
        paragraphs.append(("body", words["late"].format(late=report["late"])))
    cases = _cases(session, campaign.id, cutoff)
    if cases:
        paragraphs.append(("body", words["examples"]))
        for case in cases:
            paragraphs.append(
                (
                    "bullet",
                    words["example"].format(
                        text=case.text,
                        unit=case.unit,
                        measures=case.measures,
                        feedback=case.feedback,
                    ),
                )
            )
    quotes = _quotes(session, campaign.id, cutoff)
    if quotes:
        paragraphs.append(("body", words["quotes"]))
        paragraphs += [("bullet", words["quote"].format(quote=q)) for q in quotes]
    open_items = total - report["fed_back"]
    sat = report["satisfaction"]
    paragraphs.append(("heading", words["h4"]))
    paragraphs.append(
        (
            "body",
            (words["remains"] if open_items else words["remains_none"]).format(
                asof=_day(asof_day, lang), open=open_items, overdue=report["overdue"]["total"]
            ),
        )
    )
    if sat["unsatisfied"] or sat["reopened"]:
        paragraphs.append(
            (
                "body",
                words["unsatisfied"].format(
                    unsatisfied=sat["unsatisfied"], reopened=sat["reopened"]
                ),
            )
        )
    for unit in forecast.missing:
        paragraphs.append(
            (
                "body",
                words["forecast"].format(
                    unit=unit.name, left=unit.left_at_target, target=forecast.target_label
                ),
            )
        )
    paragraphs.append(("signoff", words["signoff"].format(day=_day(asof_day, lang))))
    return paragraphs


def write_draft(
    uow: UnitOfWork,
    campaign_code: str,
    out: IO[bytes],
    *,
    as_of: date | datetime | str | None = None,
    now: datetime | None = None,
    lang: str = "zh_CN",
) -> None:
    """Write the situation report draft (.docx) for ``campaign_code`` to ``out``."""
    _check_lang(lang)
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn

    paragraphs = draft_figures(uow, campaign_code, as_of=as_of, now=now, lang=lang)
    document = Document()
    if lang == "zh_CN":
        # East Asian text in a font Word has on a Chinese desktop.
        style = document.styles["Normal"]
        style.font.name = "SimSun"
        style.element.rPr.rFonts.set(qn("w:eastAsia"), "SimSun")
        document.core_properties.language = "zh-CN"
    document.core_properties.title = paragraphs[0][1]
    for kind, text in paragraphs:
        if kind == "title":
            heading = document.add_heading(text, level=0)
            heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
        elif kind == "heading":
            document.add_heading(text, level=1)
        elif kind == "bullet":
            document.add_paragraph(text, style="List Bullet")
        elif kind == "signoff":
            document.add_paragraph(text).alignment = WD_ALIGN_PARAGRAPH.RIGHT
        else:
            document.add_paragraph(text)
    document.save(out)


def docx_text(data: bytes) -> str:
    """The paragraphs of a .docx as plain text (for tests and previews)."""
    import io

    from docx import Document

    return "\n".join(p.text for p in Document(io.BytesIO(data)).paragraphs)
