"""The replay of the report's campaign: every opinion recorded and worked by firing real triggers.

The replay is **planned to the report's figures**; the report is then computed
from what the replay wrote. ``plan_opinions`` decides, for each of the 268
opinions of the 2005 report (shared/seed/consultation-situation-report.txt),
its category, kind, themes and the path it takes through the campaign's phases:

- visits (Feb 25 – Mar 7): the opinions are recorded;
- the March 8 meeting sorts them "item by item" and assigns each to a unit and
  a responsible officer;
- rectification (Mar 9 – 17): what can be solved is rectified and fed back
  before March 18 — 39 of the 42 specific problems, criticism answered at the
  door, praise answered with a thank-you letter; the 3 problems outside the
  bureau's duties are reported to the County Party Committee and Government;
- what "cannot be solved for a while" gets its deadline clearly defined: the
  officer asks for an extension before the due time, a supervisor approves it,
  and the measures are implemented by the end of March (226 opinions besides
  the 42 problems, all fed back by then);
- a few citizens answer that they are satisfied, in the report's own words, and
  a supervisor marks the report's typical cases as exemplary.

No item is planned late, so no ladder step fires; a plan that marks an item
``late`` (fed back after its due time, or its extension refused) makes the
timers fire for that item only, as a worker sweeping every few seconds would.
Texts are in Chinese, the bureau's working language, with an English rendering
for the English demo (``lang="en"``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.citizen import answer_feedback
from engine.context import UnitOfWork
from engine.exemplary import mark_exemplary
from engine.extensions import decide_extension, request_extension
from engine.models import Campaign, Ticket, Unit, User
from engine.tickets import Actor, create_ticket, fire, get_actor

log = logging.getLogger(__name__)

LANGS = ("zh_CN", "en")
ZONE = ZoneInfo("Asia/Shanghai")
YEAR = 2005
REPORT_CATEGORIES: dict[str, int] = {
    "team_building": 76,
    "service_economy": 31,
    "law_enforcement": 28,
    "public_security_management": 81,
    "traffic_management": 46,
    "outside_duties": 6,
}
SPECIFIC_PROBLEMS = 42
SOLVED_BY_DEADLINE = 39
ESCALATED_TO_GOVERNMENT = 3
MEASURES_IMPLEMENTED = 226  # every opinion besides the 42 problems, fed back by March 31
# Of those, how many "cannot be solved for a while": an extension defines their deadline.
EXTENDED = 24
# Tag → number of the 268 opinions carrying it (the report's shares, rounded to a whole opinion).
THEMES: dict[str, int] = {
    "slow_police_response": 113,  # 42%
    "theft": 96,  # 36%
    "gambling": 75,  # 28%
    "hard_to_see_police": 70,  # 26%
    "poor_joint_defence_team": 67,  # 25%
    "poor_law_enforcement_quality": 155,  # 58%
}
AREAS = ("Luohe", "Liubao", "Yanjiang", "Xiaji", "County town")
# (Chinese, English) per category.
TEXTS: dict[str, tuple[tuple[str, str], ...]] = {
    "team_building": (
        (
            "110报警台接警慢，夜间出警不及时。",
            "The 110 desk answers slowly; officers arrive late to calls at night.",
        ),
        ("在农村很难见到民警。", "It is hard to see a police officer in the countryside."),
        (
            "个别民警在窗口态度生硬，存在“四难”现象。",
            "Some officers are rude at the service window: the 'four difficulties'.",
        ),
        ("联防队员素质不高。", "The joint defence team members are of poor quality."),
    ),
    "service_economy": (
        (
            "企业改制期间希望公安机关派员协助，办证能快一些。",
            "Enterprises need faster help with permits during restructuring.",
        ),
        (
            "希望在工业园区交接班时段安排民警巡逻。",
            "Please station an officer near the industrial park at shift change.",
        ),
        (
            "希望民警帮助我们仓库做好安全防范。",
            "Security advice for our warehouse would be welcome.",
        ),
    ),
    "law_enforcement": (
        (
            "案件办理时间太长，结果也没人告诉我们。",
            "Case handling took too long and nobody told us the result.",
        ),
        ("检查站罚款没有说明理由。", "The fine at the checkpoint was not explained."),
        ("全县执法办案质量总体一般。", "Law enforcement quality in the county is generally poor."),
    ),
    "public_security_management": (
        ("菜场附近电动车被盗严重。", "Theft of electric bikes near the market is frequent."),
        ("茶馆后屋每晚聚众赌博。", "Gambling in the back room of the tea house every night."),
        (
            "学校周边网吧夜间秩序混乱。",
            "The internet cafes around the school are chaotic at night.",
        ),
        ("校园附近游戏室放未成年人进入。", "The game room near the campus lets minors in."),
    ),
    "traffic_management": (
        ("三轮车堵塞镇中心路口。", "Three-wheeled cars block the crossing at the town centre."),
        ("逢集日镇上交通秩序混乱。", "Traffic order in the town is confused on market days."),
        ("货车夜间不开灯高速穿村。", "Trucks speed through the village without lights."),
    ),
    "outside_duties": (
        ("进村道路需要维修。", "The road to the village needs repairing."),
        (
            "沿河路路灯坏了几个月没人修。",
            "Street lights on the river road have been out for months.",
        ),
    ),
}
# The words of the replay's other records, (Chinese, English).
WORDS: dict[str, tuple[str, str]] = {
    "measures": (
        "整改措施已落实，记入督办档案。",
        "Measures taken and recorded in the supervision file.",
    ),
    "solved": (
        "问题已解决，民警登门反馈。",
        "The problem is solved; an officer fed back in person.",
    ),
    "door": (
        "整改措施已落实，民警登门答复。",
        "Rectification measures taken; an officer answered at the door.",
    ),
    "thanks": (
        "已寄感谢信，恳请继续关心、支持和监督公安工作。",
        "Thank-you letter sent, asking for continued care, support and supervision.",
    ),
    "explain": (
        "已报县委、县政府协调解决，并向群众说明情况。",
        "Reported to the County Party Committee and Government; the situation was explained.",
    ),
    "outside": ("不属公安职责范围。", "Outside the scope of public security duties."),
    "government": ("县委、县政府", "County Party Committee and Government"),
    "extension": (
        "需协调有关部门，一时难以解决，明确办理时限，限期解决。",
        "Needs other departments and cannot be solved at once: a time limit is defined.",
    ),
    "refused": (
        "不同意延期，应在3月18日前整改反馈。",
        "Refused: the feedback is due before March 18.",
    ),
    "exemplary": ("情况汇报中的典型事例。", "A typical case for the situation report."),
    "resident": ("群众", "Resident "),
}


@dataclass(frozen=True)
class Example:
    """One of the cases the report tells, placed on an opinion of its category and path."""

    category: str
    path: str
    area: str
    citizen: tuple[str, str]
    text: tuple[str, str]
    measures: tuple[str, str]
    feedback: tuple[str, str]
    feed_back_day: int | None = None  # a March day the report gives
    exemplary: bool = False
    quote: tuple[str, str] | None = None  # a satisfied answer, in the report's words


EXAMPLES: tuple[Example, ...] = (
    Example(
        "team_building",
        "solved",
        "County town",
        ("某休闲中心业主", "Owner of a leisure center"),
        (
            "休闲中心业主反映：联防队员石某经常白洗澡，自去年以来共欠款240元。",
            "A leisure center's owner: joint defence member Shi often bathes without paying; "
            "since last year he owes 240 yuan.",
        ),
        (
            "派出所与城管办多次协调：领导登门道歉，责令归还欠款，辞退石某，处理结果通报镇里。",
            "The station and the urban management office: leaders apologised at the door, the "
            "debt ordered repaid, Shi dismissed, the town informed.",
        ),
        (
            "所领导和城管办领导登门道歉，欠款已归还。",
            "The leaders apologised at the door; the debt was repaid.",
        ),
        exemplary=True,
    ),
    Example(
        "public_security_management",
        "solved",
        "County town",
        ("徐启泉", "Xu Qiquan"),
        (
            "南京晓庄学院职工徐启泉来信：其妻1985年由南京迁来本县，两次办理身份证均未办成。",
            "Xu Qiquan of Nanjing Xiaozhuang College wrote: his wife moved here from Nanjing in "
            "1985 and has no ID card, though she applied twice.",
        ),
        (
            "查明原因后迅速恢复户口，办好身份证，专程送往南京。",
            "The cause found, her registration was restored and the ID card taken to Nanjing.",
        ),
        (
            "身份证已专程送到南京交徐启泉本人。",
            "The ID card was delivered to Xu Qiquan in Nanjing.",
        ),
        exemplary=True,
    ),
    Example(
        "service_economy",
        "comment",
        "Luohe",
        ("某企业负责人", "An enterprise manager"),
        (
            "部分企事业单位安全防范薄弱，希望派出所帮助。",
            "Some enterprises are weak in security prevention and ask the station for help.",
        ),
        (
            "帮助英朗集团、国土所等单位安装红外线报警装置。",
            "Helped the Yinglang Group, the Land Institute and others install infrared alarms.",
        ),
        (
            "红外线报警装置已安装，民警登门答复。",
            "The infrared alarms are installed; answered at the door.",
        ),
        exemplary=True,
    ),
    Example(
        "traffic_management",
        "comment",
        "Luohe",
        ("某镇居民", "A townsman"),
        (
            "镇区交通秩序混乱，马自达和三轮车乱停乱开。",
            "Traffic in the town is confused; minivans and three-wheelers run and park anywhere.",
        ),
        (
            "联合巡逻中队集中整治，取缔马自达、三轮车营运。",
            "With the patrol squadron the town's traffic was put in order; minivan and "
            "three-wheeler taxis banned.",
        ),
        ("整治结果已登门答复。", "The result was explained at the door."),
        exemplary=True,
    ),
    Example(
        "public_security_management",
        "comment",
        "Yanjiang",
        ("某集团安全员", "A group's safety officer"),
        (
            "宝胜集团部分剧毒物品无专门存放场所，存在安全隐患。",
            "Baosheng Group has no proper store for some highly toxic items: a hazard.",
        ),
        (
            "治安大队多次联系，封存场所，消除隐患。",
            "The brigade, after several contacts, sealed the place and removed the hazard.",
        ),
        ("隐患已消除，民警登门答复。", "The hazard is removed; answered at the door."),
        exemplary=True,
    ),
    Example(
        "law_enforcement",
        "comment",
        "County town",
        ("范良众", "Fan Liangzhong"),
        ("执法办案质量有待提高。", "The quality of case handling needs to improve."),
        ("已研究落实整改措施。", "Rectification measures studied and implemented."),
        ("民警登门反馈整改意见。", "An officer came to the door with the rectification."),
        feed_back_day=16,
        quote=(
            "真没想到，以前填过很多单位的表，这是第一次有公安机关回来反馈，可见公安机关对群众"
            "意见的重视和雷厉风行的作风。",
            "I really didn't expect it: I filled in many units' forms before, and this is the "
            "first time the public security organs came back with feedback. It shows how "
            "seriously they take the people's opinions, and their decisive style.",
        ),
    ),
    Example(
        "service_economy",
        "comment",
        "County town",
        ("王学明（县环保局）", "Wang Xueming (Environmental Protection Bureau)"),
        (
            "希望公安机关进一步转变作风。",
            "The public security organs should further change their style.",
        ),
        ("已研究落实整改措施。", "Rectification measures studied and implemented."),
        ("专人送达反馈意见。", "The feedback was delivered by hand."),
        quote=(
            "原以为只是说说而已，没想到这么重视，还专程派人送来，说明公安局的作风更加务实，"
            "希望新的一年有新的气象。",
            "I thought it was just talk; I did not expect such attention, with someone sent "
            "specially to deliver it. The bureau's style is more pragmatic; I hope the new year "
            "brings a new atmosphere.",
        ),
    ),
    Example(
        "public_security_management",
        "comment",
        "Xiaji",
        ("夏维山（夏集镇镇长）", "Xia Weishan (mayor of Xiaji Town)"),
        ("农村治安防范需要加强。", "Security prevention in the countryside needs strengthening."),
        ("已研究落实整改措施。", "Rectification measures studied and implemented."),
        ("民警登门答复。", "An officer answered at the door."),
        quote=(
            "公安机关征求意见的形式很好，能了解平时掌握不到的基层情况，能及时解决农民的意见，"
            "说明公安机关心系群众，警民关系更加和谐。",
            "Asking for opinions like this is very good: it learns what is not grasped at "
            "ordinary times and solves farmers' opinions in time. It shows the organs care "
            "for the people; police and people are in greater harmony.",
        ),
    ),
)
SWEEP_STEP = timedelta(hours=1)
COMMENT_KINDS: tuple[str, ...] = ("criticism", "suggestion", "praise")
COMMENT_WEIGHTS: tuple[int, ...] = (50, 40, 10)


def _at(month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(YEAR, month, day, hour, minute, tzinfo=ZONE)


@dataclass(frozen=True)
class Opinion:
    """One of the report's opinions, as the replay will record and work it: what, and when.

    ``path``: solved (a specific problem fixed before March 18), escalated (reported to the
    government), praise (thank-you letter), comment (rectified and answered at the door),
    extended (an extension defines its deadline). Times are local (Asia/Shanghai).
    ``late`` says the plan means it to pass its due time (only then may a ladder step fire).
    """

    index: int
    category: str
    kind: str
    area: str
    text: tuple[str, str]  # (Chinese, English)
    themes: tuple[str, ...]
    path: str
    received_at: datetime
    citizen: tuple[str, str]
    measures: tuple[str, str] = WORDS["measures"]
    feedback: tuple[str, str] = WORDS["door"]
    rectify_at: datetime | None = None
    feed_back_at: datetime | None = None  # None: not fed back within the campaign
    escalate_at: datetime | None = None
    extension_asked_at: datetime | None = None
    extension_due: datetime | None = None
    extension_decided_at: datetime | None = None
    extension_refused: bool = False
    late: bool = False
    exemplary: bool = False
    quote: tuple[str, str] | None = None


@dataclass
class ReplaySummary:
    made: int = 0
    transitions: int = 0
    timers_fired: int = 0
    extensions: int = 0
    answers: int = 0
    exemplary: int = 0
    finished_at: datetime | None = None
    numbers: dict[int, str] = field(default_factory=dict)  # plan index → ticket number


def plan_opinions(seed: int = 2005) -> list[Opinion]:
    """The 268 opinions: category, kind, themes, texts, and when each step happens."""
    rng = random.Random(seed)
    categories = [c for c, n in REPORT_CATEGORIES.items() for _ in range(n)]
    rng.shuffle(categories)
    outside = [i for i, c in enumerate(categories) if c == "outside_duties"]
    inside = [i for i, c in enumerate(categories) if c != "outside_duties"]
    escalated = set(outside[:ESCALATED_TO_GOVERNMENT])
    solved = set(rng.sample(inside, SOLVED_BY_DEADLINE))
    tags: dict[int, list[str]] = {i: [] for i in range(len(categories))}
    for tag, count in THEMES.items():
        for i in rng.sample(range(len(categories)), count):
            tags[i].append(tag)
    paths: dict[int, str] = {}
    kinds: dict[int, str] = {}
    for i, category in enumerate(categories):
        if i in escalated or i in solved:
            kinds[i] = "request"
            paths[i] = "escalated" if i in escalated else "solved"
        else:
            kind = (
                "suggestion"
                if category == "outside_duties"
                else rng.choices(COMMENT_KINDS, COMMENT_WEIGHTS)[0]
            )
            kinds[i] = kind
            paths[i] = "praise" if kind == "praise" else "comment"
    # The report's cases take an opinion of their category and path.
    examples: dict[int, Example] = {}
    for example in EXAMPLES:
        i = next(
            i
            for i in range(len(categories))
            if categories[i] == example.category and paths[i] == example.path and i not in examples
        )
        examples[i] = example
    comments = [i for i in range(len(categories)) if paths[i] == "comment" and i not in examples]
    for i in rng.sample(comments, EXTENDED):
        paths[i] = "extended"

    visit_days = 10  # Feb 25 – Mar 7: the last opinion is recorded on Mar 7
    start = _at(2, 25)
    solved_slot = escalated_slot = extended_slot = 0
    plan = []
    for i, category in enumerate(categories):
        ex = examples.get(i)
        zh, en = WORDS["resident"]
        op = Opinion(
            index=i,
            category=category,
            kind=kinds[i],
            area=ex.area if ex else rng.choice(AREAS),
            text=ex.text if ex else rng.choice(TEXTS[category]),
            themes=tuple(sorted(tags[i])),
            path=paths[i],
            received_at=start
            + timedelta(days=i * visit_days / len(categories), minutes=rng.randint(0, 400)),
            citizen=ex.citizen if ex else (f"{zh}{i + 1}", f"{en}{i + 1}"),
            exemplary=bool(ex and ex.exemplary),
            quote=ex.quote if ex else None,
        )
        if ex:
            op = _replace(op, measures=ex.measures, feedback=ex.feedback)
        if op.path == "praise":
            thanked = _at(3, 9, 9) + timedelta(minutes=rng.randint(0, 24 * 60 + 8 * 60))  # 9–10
            op = _replace(op, feedback=WORDS["thanks"], feed_back_at=thanked)
        elif op.path == "escalated":
            slot = escalated_slot
            escalated_slot += 1
            op = _replace(
                op,
                escalate_at=_at(3, 9, 10 + 2 * slot),
                feed_back_at=_at(3, 11 + slot, 15),
                feedback=WORDS["explain"],
            )
        elif op.path in ("solved", "comment"):
            if op.path == "solved":
                fix_day = 9 + solved_slot * 8 // SOLVED_BY_DEADLINE  # Mar 9 – 16
                solved_slot += 1
                if not ex:
                    op = _replace(op, feedback=WORDS["solved"])
            else:
                fix_day = rng.randint(9, 16)
            fixed = _at(3, fix_day, 9) + timedelta(minutes=rng.randint(0, 480))
            answered = fixed + timedelta(hours=rng.randint(2, 20))
            if ex and ex.feed_back_day:  # the day the report gives
                fixed = _at(3, ex.feed_back_day - 1, 15)
                answered = _at(3, ex.feed_back_day, 10)
            op = _replace(op, rectify_at=fixed, feed_back_at=answered)
        else:  # extended: asked Mar 14–16, approved the next morning, done by Mar 30
            slot = extended_slot
            extended_slot += 1
            asked = _at(3, 14 + slot % 3, 10) + timedelta(minutes=10 * slot)
            due = _at(3, 24 + slot % 7, 18)  # Mar 24 – 30
            fixed = due - timedelta(days=2, hours=rng.randint(0, 20))
            op = _replace(
                op,
                extension_asked_at=asked,
                extension_decided_at=asked + timedelta(hours=20),
                extension_due=due,
                rectify_at=fixed,
                feed_back_at=fixed + timedelta(hours=rng.randint(2, 20)),
            )
        plan.append(op)
    return plan


def _replace(op: Opinion, **changes: Any) -> Opinion:
    return replace(op, **changes)


def _officers_by_unit(session: Session) -> dict[int, str]:
    """A responsible person per unit: an officer, else the unit leader."""
    rows = session.execute(
        select(User.unit_id, User.username, User.role)
        .where(User.active.is_(True), User.role.in_(("officer", "unit_leader")))
        .order_by(User.role, User.username)  # "officer" sorts before "unit_leader"
    ).all()
    out: dict[int, str] = {}
    for row in rows:
        if row.unit_id is not None and row.unit_id not in out:
            out[row.unit_id] = row.username
    return out


def _default_sweep() -> Callable[..., Any]:
    """The deadlines' timer firing, in the replay's own transaction.

    The clock stops at the first pending due time before ``now`` (an index
    lookup) and fires what falls due within the following ``SWEEP_STEP``, so a
    timer fires at most that late, and always before the next replay event
    could cancel it: the same timers fire as under a worker sweeping every few
    seconds.
    """
    from engine.timers import fire_due_timers, next_due

    def sweep_in_session(uow: UnitOfWork, *, now: datetime) -> int:
        fired = 0
        while True:
            due = next_due(uow.session)
            if due is None or due > now:
                return fired
            part = fire_due_timers(uow, now=min(now, due + SWEEP_STEP), limit=1000)
            fired += len(part.firings)
            if not part.firings and not part.skipped:
                return fired

    return sweep_in_session


def _events(op: Opinion) -> list[tuple[datetime, int, str]]:
    """(time, order, step) of one opinion's steps."""
    out = [
        (op.received_at, 0, "create"),
        (_at(3, 8, 9) + timedelta(minutes=op.index), 1, "categorize"),
    ]
    if op.path == "praise":
        assert op.feed_back_at is not None
        return [*out, (op.feed_back_at, 2, "thank")]
    if op.path == "escalated":
        assert op.escalate_at is not None and op.feed_back_at is not None
        return [*out, (op.escalate_at, 2, "escalate"), (op.feed_back_at, 3, "explain")]
    out.append((_at(3, 8, 14) + timedelta(minutes=op.index), 2, "assign"))
    if op.extension_asked_at is not None and op.extension_decided_at is not None:
        out.append((op.extension_asked_at, 3, "ask_extension"))
        out.append((op.extension_decided_at, 4, "decide_extension"))
    if op.feed_back_at is not None and op.rectify_at is not None:
        out.append((op.rectify_at, 5, "rectify"))
        out.append((op.feed_back_at, 6, "feed_back"))
        if op.quote:
            out.append((op.feed_back_at + timedelta(hours=20), 7, "answer"))
        if op.exemplary:
            out.append((max(op.feed_back_at, _at(3, 17, 9)) + timedelta(days=1), 8, "exemplary"))
    return out


def replay_campaign(
    uow: UnitOfWork,
    campaign_code: str,
    *,
    clerk: str = "clerk",
    supervisor: str = "supervisor",
    seed: int = 2005,
    plan: list[Opinion] | None = None,
    lang: str = "zh_CN",
    sweep: Callable[..., Any] | None | bool = True,
) -> ReplaySummary:
    """Replay the report's campaign in ``campaign_code`` on a simulated clock; the caller commits.

    Records the opinions of ``plan`` (default ``plan_opinions(seed)``) over the visit
    period and works each through the workflow with ``fire`` at its own simulated time,
    with the extensions, citizens' answers and exemplary marks the plan gives. A campaign
    that already has tickets is left alone (``made == 0``). ``lang``: ``zh_CN`` (the
    bureau's working language) or ``en`` for the texts written. ``sweep``: True fires due
    timers as the clock moves (``engine.timers``), a callable is used as given
    (``sweep(uow, now=...)``), False/None sweeps nothing.
    """
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; use one of {', '.join(LANGS)}")
    pick = LANGS.index(lang)
    summary = ReplaySummary()
    session = uow.session
    campaign = session.scalars(select(Campaign).where(Campaign.code == campaign_code)).one()
    existing = session.scalar(
        select(func.count()).select_from(Ticket).where(Ticket.campaign_id == campaign.id)
    )
    if existing:
        return summary
    sweeper = _default_sweep() if sweep is True else (sweep or None)
    plan = plan if plan is not None else plan_opinions(seed)
    clerk_actor = get_actor(session, clerk)
    super_actor = get_actor(session, supervisor)
    officers = _officers_by_unit(session)
    office_unit = session.scalar(select(Unit.id).where(Unit.code == "office"))
    unit_codes = {row.id: row.code for row in session.execute(select(Unit.id, Unit.code))}

    events = sorted(
        ((at, order, op.index, step) for op in plan for at, order, step in _events(op)),
        key=lambda e: (e[0], e[1], e[2]),
    )
    by_index = {op.index: op for op in plan}
    numbers: dict[int, str] = {}
    secrets: dict[int, str] = {}
    units: dict[int, int | None] = {}
    extensions: dict[int, int] = {}

    def unit_of(index: int) -> int:
        unit_id = units.get(index) or office_unit
        assert unit_id is not None, "the sample organisation has an 'office' unit"
        return unit_id

    def responsible(index: int) -> Actor:
        return get_actor(session, officers[unit_of(index)])

    def words(key: str) -> str:
        return WORDS[key][pick]

    for at, _, index, step in events:
        op = by_index[index]
        if sweeper is not None:
            summary.timers_fired += sweeper(uow, now=at) or 0
        day = at.date().isoformat()
        if step == "create":
            created = create_ticket(
                uow,
                campaign=campaign_code,
                text=op.text[pick],
                kind=op.kind,
                citizen_name=op.citizen[pick],
                area=op.area,
                received_at=at,
                actor=clerk_actor,
                now=at + timedelta(minutes=30),
                source="demo",
                external_key=f"demo-{index + 1:04d}",
                themes=op.themes,
            )
            numbers[index], secrets[index] = created.number, created.secret
            summary.made += 1
            continue
        number = numbers[index]
        if step == "ask_extension":
            assert op.extension_due is not None
            extensions[index] = request_extension(
                uow,
                number,
                actor=responsible(index),
                due_at=op.extension_due,
                reason=words("extension"),
                now=at,
            )
            summary.extensions += 1
            continue
        if step == "decide_extension":
            decide_extension(
                uow,
                extensions[index],
                actor=super_actor,
                approve=not op.extension_refused,
                note=words("refused") if op.extension_refused else None,
                now=at,
            )
            continue
        if step == "answer":
            assert op.quote is not None
            answer_feedback(
                uow,
                number=number,
                secret=secrets[index],
                satisfied=True,
                reason=op.quote[pick],
                now=at,
            )
            summary.answers += 1
            continue
        if step == "exemplary":
            mark_exemplary(uow, number, actor=super_actor, reason=words("exemplary"), now=at)
            summary.exemplary += 1
            continue
        actor: Actor = super_actor
        data: dict[str, Any]
        trigger = step
        if step == "categorize":
            actor, data = clerk_actor, {"category": op.category, "kind": op.kind}
        elif step == "thank":
            actor, trigger = clerk_actor, "feed_back"
            data = {"method": "letter", "text": op.feedback[pick], "date": day}
        elif step == "escalate":
            trigger = "escalate_to_government"
            data = {
                "receiving_body": words("government"),
                "reason": words("outside"),
                "reference": f"GOV-2005-{index + 1:03d}",
            }
        elif step == "explain":
            trigger = "feed_back"
            data = {"method": "visit", "text": op.feedback[pick], "date": day}
        elif step == "assign":
            data = {"unit": unit_codes[unit_of(index)], "officer": officers[unit_of(index)]}
        elif step == "rectify":
            actor = responsible(index)
            data = {"measures": op.measures[pick]}
        else:  # feed_back
            actor = responsible(index)
            data = {"method": "visit", "text": op.feedback[pick], "date": day}
        result = fire(uow, number, trigger, actor=actor, data=data, now=at)
        if "unit_id" in result.effects:
            units[index] = result.effects["unit_id"]
        summary.transitions += 1
        summary.finished_at = at
    if sweeper is not None:
        end = datetime(
            campaign.ends_on.year, campaign.ends_on.month, campaign.ends_on.day, 23, 59, tzinfo=ZONE
        )
        summary.timers_fired += sweeper(uow, now=end) or 0
    summary.numbers = numbers
    return summary


def build_demo_campaign(
    uow: UnitOfWork,
    campaign_code: str,
    *,
    clerk: str = "clerk",
    seed: int = 2005,
) -> int:
    """Replay the report's campaign (see ``replay_campaign``); return how many opinions were made."""
    return replay_campaign(uow, campaign_code, clerk=clerk, seed=seed).made
