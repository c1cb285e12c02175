"""Version migration with a plan and a dry run, on SQLite and PostgreSQL: the dry run equals
what apply does; a crash half-way then a re-run migrates each ticket once; refusals are
listed; `audit verify` passes; bad plans are refused naming the file and the item, with
nothing migrated."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select

from engine import audit
from engine.clock import FixedClock
from engine.context import EngineContext, build_context
from engine.errors import ValidationError
from engine.models import Ticket, Timer, TransitionLog
from engine.settings import PROJECT_ROOT
from engine.tickets import create_ticket, fire, get_actor
from engine.versions import apply_migration, load_plan, plan_migration

NOW = datetime(2005, 2, 28, 2, 0, tzinfo=UTC)

# Version 2 of the consultation: "rectified" becomes "verified", an assigned ticket gets 5
# working days instead of 10, and "escalated" is gone.
V2 = (
    (PROJECT_ROOT / "workflows" / "consultation-v1.toml")
    .read_text(encoding="utf-8")
    .replace("version = 1", "version = 2")
    .replace("[states.rectified]", "[states.verified]")
    .replace('"rectified"', '"verified"')
    .replace(
        'en = "Assigned to an officer" }\ntime_limit = { working_days = 10 }',
        'en = "Assigned to an officer" }\ntime_limit = { working_days = 5 }',
    )
)
V2 = V2.replace(V2[V2.index("[states.escalated]") : V2.index("[states.fed_back]")], "")
V2 = V2.replace(
    V2[
        V2.index('[[triggers]]\nname = "escalate_to_government"') : V2.index(
            '[[triggers]]\nname = "reopen"'
        )
    ],
    "",
).replace(
    'states = ["categorized", "assigned", "verified", "escalated"]',
    'states = ["categorized", "assigned", "verified"]',
)

PLAN = """workflow = "consultation"
from_version = 1
to_version = 2
stay = ["escalated"]

[states]
rectified = "verified"
"""


@pytest.fixture
def wf_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "workflows"
    directory.mkdir()
    for f in (PROJECT_ROOT / "workflows").glob("*.toml"):
        shutil.copy(f, directory)
    (directory / "consultation-v2.toml").write_text(V2, encoding="utf-8")
    return directory


@pytest.fixture
def vctx(engine: Engine, wf_dir: Path) -> EngineContext:
    return build_context(
        engine=engine, clock=FixedClock(NOW), overrides={"workflows_dir": str(wf_dir)}
    )


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(PLAN, encoding="utf-8")
    return path


def _tickets(ctx: EngineContext) -> dict[str, str]:
    """Nine tickets: 3 received, 2 assigned, 2 rectified, 1 escalated, 1 fed back."""
    out: dict[str, str] = {}
    with ctx.unit_of_work() as uow:
        clerk = get_actor(uow.session, "clerk")
        sup = get_actor(uow.session, "supervisor")
        for i, target in enumerate(
            ["received"] * 3 + ["assigned"] * 2 + ["rectified"] * 2 + ["escalated", "fed_back"]
        ):
            n = create_ticket(
                uow,
                campaign="consultation-2005",
                text=f"Opinion {i}",
                kind="criticism",
                actor=clerk,
                now=NOW,
            ).number
            out[n] = target
            if target == "received":
                continue
            fire(
                uow,
                n,
                "categorize",
                actor=clerk,
                data={"category": "traffic_management", "kind": "criticism"},
                now=NOW,
            )
            if target == "escalated":
                fire(
                    uow,
                    n,
                    "escalate_to_government",
                    actor=sup,
                    data={"receiving_body": "County government", "reason": "outside"},
                    now=NOW,
                )
                continue
            fire(
                uow,
                n,
                "assign",
                actor=sup,
                data={"unit": "traffic-brigade", "officer": "traffic.officer"},
                now=NOW,
            )
            if target == "assigned":
                continue
            fire(
                uow,
                n,
                "rectify",
                actor=get_actor(uow.session, "traffic.officer"),
                data={"measures": "done"},
                now=NOW,
            )
            if target == "fed_back":
                fire(
                    uow,
                    n,
                    "feed_back",
                    actor=get_actor(uow.session, "traffic.officer"),
                    data={"method": "phone", "text": "ok", "date": "2005-02-28"},
                    now=NOW,
                )
    return out


def _state(ctx: EngineContext) -> dict[str, tuple[str, int]]:
    with ctx.sessions() as s:
        return {
            r.number: (r.state, r.workflow_version)
            for r in s.execute(select(Ticket.number, Ticket.state, Ticket.workflow_version))
        }


def test_dry_run_equals_apply_and_audit_verify_passes(vctx: EngineContext, plan_file: Path) -> None:
    made = _tickets(vctx)
    before = _state(vctx)
    plan = load_plan(vctx.registry, plan_file, name="consultation", to_version=2)
    dry = plan_migration(vctx, plan)
    assert _state(vctx) == before  # the dry run wrote nothing
    assert dict(dry.moves) == {
        ("received", "received"): 3,
        ("assigned", "assigned"): 2,
        ("rectified", "verified"): 2,
        ("fed_back", "fed_back"): 1,
    }
    assert [d.number for d in dry.refused] == [n for n, s in made.items() if s == "escalated"]
    assert "keeps tickets in 'escalated' on version 1" in (dry.refused[0].reason or "")
    # The two assigned tickets' 10 working days become 5 (capped the same: the campaign's
    # deadline of March 18 is after both); their timers are recalculated.
    assert sorted(d.from_state for d in dry.retimed) == ["assigned", "assigned"]
    assert all(
        d.new_due is not None and d.old_due is not None and d.new_due < d.old_due
        for d in dry.retimed
    )

    done = apply_migration(vctx, plan)
    assert dict(done.moves) == dict(dry.moves)
    assert [d.number for d in done.refused] == [d.number for d in dry.refused]
    assert [(d.number, d.new_due) for d in done.retimed] == [
        (d.number, d.new_due) for d in dry.retimed
    ]
    after = _state(vctx)
    for number, target in made.items():
        state, version = after[number]
        if target == "escalated":
            assert (state, version) == ("escalated", 1)
        else:
            assert version == 2
            assert state == ("verified" if target == "rectified" else target)
    with vctx.sessions() as s:
        migrated = s.scalars(
            select(TransitionLog.data).where(TransitionLog.trigger == "migrate")
        ).all()
        assert len(migrated) == 8
        assert all(f'"plan":"{plan.digest}"' in d and '"to_version":2' in d for d in migrated)
        for d in dry.retimed:
            ticket = s.scalars(select(Ticket).where(Ticket.number == d.number)).one()
            assert ticket.due_at == d.new_due
            pending = s.scalars(
                select(Timer.due_at).where(
                    Timer.ticket_id == ticket.id,
                    Timer.cancelled_at.is_(None),
                    Timer.fired_at.is_(None),
                    Timer.level == 1,
                )
            ).all()
            assert pending == [d.new_due]
        assert audit.verify(s, key=vctx.audit_key) == []
    # A migrated ticket runs on version 2: "rectified" no longer exists, "verified" does.
    with vctx.unit_of_work() as uow:
        n = next(n for n, t in made.items() if t == "rectified")
        fire(
            uow,
            n,
            "feed_back",
            actor=get_actor(uow.session, "traffic.officer"),
            data={"method": "phone", "text": "ok", "date": "2005-02-28"},
            now=NOW,
        )
    # Idempotent: a second run finds nothing left but the ticket the plan keeps.
    again = apply_migration(vctx, plan)
    assert again.migrated == 0 and len(again.refused) == 1


def test_a_crash_half_way_then_a_rerun_migrates_each_ticket_once(
    vctx: EngineContext, plan_file: Path
) -> None:
    _tickets(vctx)
    plan = load_plan(vctx.registry, plan_file)
    seen: list[str] = []

    def crash(decision) -> None:  # type: ignore[no-untyped-def]
        seen.append(decision.number)
        if len(seen) == 4:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        apply_migration(vctx, plan, after_each=crash)
    assert Counter(v for _, v in _state(vctx).values()) == Counter({2: 4, 1: 5})
    rest = apply_migration(vctx, plan)
    assert rest.migrated == 4
    with vctx.sessions() as s:
        per_ticket = s.execute(
            select(TransitionLog.ticket_id, func.count())
            .where(TransitionLog.trigger == "migrate")
            .group_by(TransitionLog.ticket_id)
        ).all()
        assert len(per_ticket) == 8 and all(n == 1 for _, n in per_ticket)
        assert audit.verify(s, key=vctx.audit_key) == []


def test_a_ticket_changed_after_its_batch_was_read_is_decided_again(
    vctx: EngineContext, plan_file: Path
) -> None:
    """The migration reads and decides a batch at a time, then writes each ticket in its own
    transaction checking the version it read: a ticket someone moved in between is read and
    decided again from where it now is, not written from the stale read."""
    made = _tickets(vctx)
    late = [n for n, s in made.items() if s == "received"][-1]
    plan = load_plan(vctx.registry, plan_file)

    def meanwhile(decision) -> None:  # type: ignore[no-untyped-def]
        if decision.number == next(iter(made)):
            with vctx.unit_of_work() as uow:
                fire(
                    uow,
                    late,
                    "categorize",
                    actor=get_actor(uow.session, "clerk"),
                    data={"category": "traffic_management", "kind": "criticism"},
                    now=NOW,
                )

    done = apply_migration(vctx, plan, after_each=meanwhile)
    assert done.migrated == 8
    assert done.moves[("categorized", "categorized")] == 1  # decided from its new state
    assert done.moves[("received", "received")] == 2
    assert _state(vctx)[late] == ("categorized", 2)
    with vctx.sessions() as s:
        rows = (
            s.execute(
                select(TransitionLog.trigger)
                .join(Ticket, Ticket.id == TransitionLog.ticket_id)
                .where(Ticket.number == late)
                .order_by(TransitionLog.seq)
            )
            .scalars()
            .all()
        )
        assert rows == ["create", "categorize", "migrate"]
        assert audit.verify(s, key=vctx.audit_key) == []


def test_only_narrows_the_run(vctx: EngineContext, plan_file: Path) -> None:
    _tickets(vctx)
    plan = load_plan(vctx.registry, plan_file)
    result = apply_migration(vctx, plan, only="state=received")
    assert result.migrated == 3 and dict(result.moves) == {("received", "received"): 3}
    with pytest.raises(ValidationError, match="KEY=VALUE"):
        plan_migration(vctx, plan, only="colour=blue")


@pytest.mark.parametrize(
    ("plan", "item", "words"),
    [
        (
            PLAN.replace('rectified = "verified"', 'rectified = ""'),
            "states.rectified",
            "to nothing",
        ),
        (
            PLAN.replace('rectified = "verified"', 'rectified = "checked"'),
            "states.rectified",
            "'checked' is not a state",
        ),
        (PLAN.replace('rectified = "verified"', ""), "states.rectified", "is removed"),
        (PLAN.replace('stay = ["escalated"]', ""), "states.escalated", "is removed"),
        (PLAN.replace("to_version = 2", "to_version = 7"), "to_version", "version 7"),
        (
            PLAN.replace('rectified = "verified"', 'rectified = "fed_back"'),
            "states.rectified",
            "would close open tickets",
        ),
    ],
)
def test_bad_plans_are_refused_with_file_and_item_and_nothing_moves(
    vctx: EngineContext, tmp_path: Path, plan: str, item: str, words: str
) -> None:
    _tickets(vctx)
    before = _state(vctx)
    path = tmp_path / "bad-plan.toml"
    path.write_text(plan, encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        load_plan(vctx.registry, path)
    problems = caught.value.details["problems"]
    assert caught.value.details["file"] == str(path)
    assert any(p["item"] == item and words in p["problem"] for p in problems), problems
    assert _state(vctx) == before


def test_cli_migrate_dry_run_then_apply(
    db_url: str,
    wf_dir: Path,
    plan_file: Path,
    vctx: EngineContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cli import main

    _tickets(vctx)
    monkeypatch.setenv("RECTIFLOW_WORKFLOWS_DIR", str(wf_dir))
    base = ["--database-url", db_url]
    runner = CliRunner()
    dry = runner.invoke(
        main,
        [
            *base,
            "workflow",
            "migrate",
            "consultation",
            "--to",
            "2",
            "--plan",
            str(plan_file),
            "--dry-run",
        ],
    )
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing was written" in dry.output
    assert "rectified -> verified: 2" in dry.output
    assert "cannot move: 1" in dry.output
    # The same dry run in the bureau's language.
    zh = runner.invoke(
        main,
        [*base, "--lang", "zh_CN", "workflow", "migrate", "consultation", "--to", "2",
         "--plan", str(plan_file), "--dry-run"],
    )  # fmt: skip
    assert zh.exit_code == 0, zh.output
    assert "试运行：未写入任何内容" in zh.output and "无法迁移：1 件" in zh.output
    assert "rectified -> verified: 2" in zh.output and "dry run" not in zh.output
    assert Counter(v for _, v in _state(vctx).values()) == Counter({1: 9})
    wrong = runner.invoke(
        main,
        [*base, "workflow", "migrate", "consultation", "--to", "3", "--plan", str(plan_file)],
    )
    assert wrong.exit_code == 2 and "to_version" in wrong.output
    done = runner.invoke(
        main,
        [*base, "workflow", "migrate", "consultation", "--to", "2", "--plan", str(plan_file)],
    )
    assert done.exit_code == 0, done.output
    assert "8 migrated" in done.output
    listed = runner.invoke(main, [*base, "workflow", "list"])
    assert "consultation v2" in listed.output and "8 tickets" in listed.output
    verify = runner.invoke(main, [*base, "audit", "verify"])
    assert verify.exit_code == 0, verify.output


def test_v2_timer_recalculation_is_shown_with_both_due_times(
    vctx: EngineContext, plan_file: Path
) -> None:
    _tickets(vctx)
    dry = plan_migration(vctx, load_plan(vctx.registry, plan_file))
    for d in dry.retimed:
        assert d.old_due is not None and d.new_due is not None
        assert d.old_due - d.new_due >= timedelta(days=5)
