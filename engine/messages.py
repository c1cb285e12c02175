"""The engine's sentences in the reader's language: one table for every adapter.

The engine writes its refusals and notices in English (the log, the API and the
JSON output read them so). Pages, the CLI and e-mails translate them here through
a table: each known sentence is a pattern whose parts (ticket numbers, states,
roles, triggers, times) are picked out and put into the catalogue's sentence,
states and roles by their titles. A sentence the table does not know is shown as
the engine wrote it; ``tests/web/test_i18n.py`` checks the refusals people meet.
The reader (``engine.i18n.Reader``) carries the locale, its catalogue and the
titles; the web builds one per request, the CLI one per command, the mailer one
per recipient.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from engine.errors import EngineError, ValidationError
from engine.i18n import Reader
from engine.readsource import STANDBY, ReadChoice
from engine.report import ReportText

Render = Callable[[dict[str, str], Reader], str]
_TABLE: list[tuple[re.Pattern[str], Render]] = []


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" else text


def _state(r: Reader, text: str) -> str:
    return r.state(_unquote(text))


def _trigger(r: Reader, text: str) -> str:
    return r.trigger(_unquote(text))


def _role(r: Reader, text: str) -> str:
    return r.role(text.replace(" ", "_"))


def _roles(r: Reader, text: str) -> str:
    return r.gettext(" or ").join(_role(r, x) for x in text.split(" or "))


def _unit(r: Reader, text: str) -> str:
    return r.unit(_unquote(text))


def rule(pattern: str) -> Callable[[Render], Render]:
    def register(render: Render) -> Render:
        _TABLE.append((re.compile(pattern, re.S), render))
        return render

    return register


# --- refusals -------------------------------------------------------------------------------


@rule(
    r"(?P<n>\S+) changed since you read it: it is at version (?P<v>\d+) \(state (?P<s>'[^']*')\), "
    r"you had version (?P<had>\d+); reload and try again"
)
def _stale(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s changed since you read it: it is at version %(version)s (%(state)s), "
        "you had version %(had)s; reload and try again.",
        number=m["n"],
        version=m["v"],
        state=_state(r, m["s"]),
        had=m["had"],
    )


@rule(r"(?P<n>\S+) changed since you read it \(version (?P<v>\d+), you had (?P<had>\d+)\)")
def _stale_page(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s changed since you read it (version %(version)s, you had %(had)s).",
        number=m["n"],
        version=m["v"],
        had=m["had"],
    )


@rule(
    r"(?P<n>\S+): a change dated (?P<at>\S+) would come before the ticket's last log row "
    r"\((?P<last>\S+)\); times in the log only move forward — check the clock \(--now\)"
)
def _time_backwards(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s: a change dated %(at)s would come before the ticket's last log row "
        "(%(last)s); times in the log only move forward",
        number=m["n"],
        at=m["at"],
        last=m["last"],
    )


@rule(
    r"(?P<d>\d{4}-\d\d-\d\d) is in the future \(today is (?P<t>\d{4}-\d\d-\d\d)\); give the day it happened"
)
def _date_in_future(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(date)s is in the future (today is %(today)s); give the day it happened",
        date=m["d"],
        today=m["t"],
    )


@rule(r"(?P<n>\S+) was changed by someone else at the same moment; reload and try again")
def _race(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s was changed by someone else at the same moment; reload and try again.",
        number=m["n"],
    )


@rule(r"(?P<t>'[^']*') on (?P<n>\S+) needs the role (?P<roles>.+?); (?P<u>\S+) is (?P<r>[a-z_ ]+)")
def _needs_role(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "“%(trigger)s” on %(number)s needs the role %(roles)s; %(user)s is %(role)s.",
        trigger=_trigger(r, m["t"]),
        number=m["n"],
        roles=_roles(r, m["roles"]),
        user=m["u"],
        role=_role(r, m["r"]),
    )


@rule(
    r"(?P<n>\S+) belongs to (?P<unit>another unit|\S+); (?P<u>\S+) \((?P<r>[a-z_ ]+)\) may act "
    r"only on tickets of their own unit — a supervisor can reassign it"
)
def _other_unit(m: dict[str, str], r: Reader) -> str:
    unit = r.gettext("another unit") if m["unit"] == "another unit" else _unit(r, m["unit"])
    return r.gettext(
        "%(number)s belongs to %(unit)s; %(user)s (%(role)s) may act only on tickets of "
        "their own unit — a supervisor can reassign it.",
        number=m["n"],
        unit=unit,
        user=m["u"],
        role=_role(r, m["r"]),
    )


@rule(
    r"(?P<n>\S+) belongs to (?P<unit>\S+); (?P<u>\S+) \((?P<r>[a-z_ ]+), (?P<own>[^)]*)\) may open "
    r"only tickets of their own unit — a supervisor can reassign it"
)
def _not_viewable(m: dict[str, str], r: Reader) -> str:
    unit = r.gettext("no unit yet") if m["unit"] == "no" else _unit(r, m["unit"])
    return r.gettext(
        "%(number)s belongs to %(unit)s; %(user)s (%(role)s, %(own)s) may open only tickets of "
        "their own unit — a supervisor can reassign it.",
        number=m["n"],
        unit=unit,
        user=m["u"],
        role=_role(r, m["r"]),
        own=_unit(r, m["own"]),
    )


@rule(
    r"(?P<t>'[^']*') (?P<what>is not allowed from|is not a trigger of this workflow; it cannot fire from) state (?P<s>'[^']*') of "
    r"(?P<n>\S+); allowed now: (?P<allowed>.*)"
)
def _not_allowed(m: dict[str, str], r: Reader) -> str:
    allowed = m["allowed"]
    listed = (
        r.gettext("nothing (final state)")
        if allowed.startswith("nothing")
        else ", ".join(_trigger(r, a.strip()) for a in allowed.split(","))
    )
    return r.gettext(
        "“%(trigger)s” is not allowed in state “%(state)s” of %(number)s; allowed now: "
        "%(allowed)s.",
        trigger=_trigger(r, m["t"]),
        state=_state(r, m["s"]),
        number=m["n"],
        allowed=listed,
    )


@rule(
    r"(?P<u>\S+) \((?P<r>[a-z_ ]+)\) can assign only inside their own unit; (?P<unit>'[^']*') is "
    r"another unit — ask a supervisor"
)
def _assign_inside(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(user)s (%(role)s) can assign only inside their own unit; %(unit)s is another unit — "
        "ask a supervisor.",
        user=m["u"],
        role=_role(r, m["r"]),
        unit=_unit(r, m["unit"]),
    )


@rule(r"(?P<t>'[^']*') refused on (?P<n>\S+): (?P<why>.*)")
def _guard_refused(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "“%(trigger)s” refused on %(number)s: %(why)s",
        trigger=_trigger(r, m["t"]),
        number=m["n"],
        why=translate(m["why"], r),
    )


@rule(
    r"only praise, or an opinion marked unfounded \(unfounded=true, with an explanation\), can be "
    r"fed back without being assigned and rectified; assign it instead"
)
def _praise_only(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "only praise, or an opinion marked as resting on a misunderstanding (with an "
        "explanation), can be fed back without being assigned and rectified; assign it instead."
    )


@rule(r"the ticket has no responsible officer; name one \(officer=USERNAME, unit=CODE\)")
def _no_officer(m: dict[str, str], r: Reader) -> str:
    return r.gettext("the ticket has no responsible officer; choose the unit and the officer.")


@rule(r"no ticket (?P<n>'[^']*')")
def _no_ticket(m: dict[str, str], r: Reader) -> str:
    return r.gettext("There is no ticket %(number)s.", number=_unquote(m["n"]))


@rule(r"No opinion matches this receipt number and secret\..*")
def _no_receipt(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "No opinion matches this receipt number and secret. Check both against your receipt "
        "(letters may be typed in small or capital letters)."
    )


@rule(r"(?P<n>\S+) has not been fed back yet; you can answer once you have the feedback")
def _not_fed_back(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s has not been fed back yet; you can answer once you have the feedback.",
        number=m["n"],
    )


@rule(r"you already answered for (?P<n>\S+); a supervisor has your answer")
def _answered(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "You already answered for %(number)s; a supervisor has your answer.", number=m["n"]
    )


@rule(
    r"(?P<n>\S+) already has extension request #(?P<id>\d+) waiting for a supervisor; wait for "
    r"that decision"
)
def _ext_pending(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s already has extension request #%(id)s waiting for a supervisor; wait for "
        "that decision.",
        number=m["n"],
        id=m["id"],
    )


@rule(
    r"(?P<n>\S+) was due at (?P<due>.+?) and that has passed; an extension must be asked before "
    r"the due time — ask a supervisor to act on the overdue ticket instead"
)
def _ext_late(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s was due at %(due)s and that has passed; an extension must be asked before "
        "the due time — ask a supervisor to act on the overdue ticket instead.",
        number=m["n"],
        due=m["due"],
    )


@rule(r"(?P<n>\S+) has no running deadline in state (?P<s>'[^']*'); nothing to extend")
def _ext_no_deadline(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s has no running deadline in state “%(state)s”; nothing to extend.",
        number=m["n"],
        state=_state(r, m["s"]),
    )


@rule(r"extension #(?P<id>\d+) was already (?P<status>\w+)")
def _ext_decided(m: dict[str, str], r: Reader) -> str:
    status = {"approved": r.gettext("approved"), "refused": r.gettext("refused")}.get(
        m["status"], m["status"]
    )
    return r.gettext("Extension #%(id)s was already %(status)s.", id=m["id"], status=status)


@rule(r"extension #(?P<id>\d+) was decided by someone else meanwhile")
def _ext_race(m: dict[str, str], r: Reader) -> str:
    return r.gettext("Extension #%(id)s was decided by someone else meanwhile.", id=m["id"])


@rule(r"the requested time (?P<t>.+?) has passed; refuse this request and let the unit ask again")
def _ext_passed(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "The requested time %(time)s has passed; refuse this request and let the unit ask again.",
        time=m["t"],
    )


@rule(r"refusing extension #(?P<id>\d+) needs a note saying why")
def _ext_note(m: dict[str, str], r: Reader) -> str:
    return r.gettext("Refusing extension #%(id)s needs a note saying why.", id=m["id"])


@rule(r"refusing a reopen request needs a note saying why \(the citizen may be told\)")
def _reopen_note(m: dict[str, str], r: Reader) -> str:
    return r.gettext("Refusing a reopen request needs a note saying why (the citizen may be told).")


@rule(r"reopen request (?P<id>\d+) was already decided \((?P<status>\w+)\)")
def _reopen_decided(m: dict[str, str], r: Reader) -> str:
    return r.gettext("Reopen request %(id)s was already decided.", id=m["id"])


@rule(r"(?P<n>\S+) is closed \(state (?P<s>'[^']*')\); reopen it before escalating")
def _esc_closed(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s is closed (%(state)s); reopen it before escalating.",
        number=m["n"],
        state=_state(r, m["s"]),
    )


@rule(r"(?P<head>.+?) cannot (?:proceed|be recorded|be asked|be escalated): (?P<rest>.*)")
def _listed(m: dict[str, str], r: Reader) -> str:
    return r.gettext("Not done: please correct the marked fields; nothing was saved.")


@rule(r"(?:the opinion|the extension for \S+|your answer) cannot be (?:recorded|asked): .*")
def _listed2(m: dict[str, str], r: Reader) -> str:
    return r.gettext("Not done: please correct the marked fields; nothing was saved.")


# --- per-field messages ---------------------------------------------------------------------


@rule(r"is required \((?P<title>[^)]*)\)")
def _f_required(m: dict[str, str], r: Reader) -> str:
    return r.gettext("is required.")


@rule(r"is required: say why the work cannot be done in time")
def _f_ext_reason(m: dict[str, str], r: Reader) -> str:
    return r.gettext("is required: say why the work cannot be done in time.")


@rule(r"is required: say why the ticket is escalated")
def _f_esc_reason(m: dict[str, str], r: Reader) -> str:
    return r.gettext("is required: say why the ticket is escalated.")


@rule(r"is required: say what makes it an example")
def _f_example_reason(m: dict[str, str], r: Reader) -> str:
    return r.gettext("is required: say what makes it an example.")


@rule(r"(?P<n>\S+) is (?P<already>already|not) marked as exemplary")
def _exemplary_twice(m: dict[str, str], r: Reader) -> str:
    if m["already"] == "already":
        return r.gettext("%(number)s is already marked as exemplary.", number=m["n"])
    return r.gettext("%(number)s is not marked as exemplary.", number=m["n"])


@rule(
    r"(?P<n>\S+) is not fed back yet \(state (?P<s>'[^']*')\); an example of rectification and "
    r"feedback must be finished"
)
def _exemplary_unfinished(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s is not fed back yet (“%(state)s”); an example of rectification and "
        "feedback must be finished.",
        number=m["n"],
        state=_state(r, m["s"]),
    )


@rule(r"is required: say what is still wrong, so it can be put right")
def _f_answer_reason(m: dict[str, str], r: Reader) -> str:
    return r.gettext("is required: say what is still wrong, so it can be put right.")


@rule(r"is required: what did the person say\?")
def _f_text(m: dict[str, str], r: Reader) -> str:
    return r.gettext("is required: what did the person say?")


@rule(r"is required when refusing")
def _f_note(m: dict[str, str], r: Reader) -> str:
    return r.gettext("is required when refusing.")


@rule(r"is too long \((?P<n>\d+) characters; at most (?P<max>\d+)\)")
def _f_long(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "is too long (%(count)s characters; at most %(max)s).", count=m["n"], max=m["max"]
    )


@rule(r"(?P<when>.+?) is in the past; give a later time")
def _f_past(m: dict[str, str], r: Reader) -> str:
    return r.gettext("%(when)s is in the past; give a later time.", when=m["when"])


@rule(r"must be later than the current due time (?P<due>.+)")
def _f_later(m: dict[str, str], r: Reader) -> str:
    return r.gettext("must be later than the current due time %(due)s.", due=m["due"])


@rule(r"is after the campaign's end \((?P<end>[^)]*)\); give a time by (?P<by>.+)")
def _f_after_end(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "is after the campaign's end (%(end)s); give a time by %(by)s.", end=m["end"], by=m["by"]
    )


@rule(r"must be above the current level (?P<l>\d+)")
def _f_level(m: dict[str, str], r: Reader) -> str:
    return r.gettext("must be above the current level %(level)s.", level=m["l"])


@rule(r"the ladder has levels 1 to (?P<top>\d+); (?P<l>\d+) is beyond it")
def _f_ladder(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "the ladder has levels 1 to %(top)s; %(level)s is beyond it.", top=m["top"], level=m["l"]
    )


@rule(r"(?P<o>'[^']*') is not an officer of unit (?P<unit>'[^']*')")
def _f_officer_unit(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(officer)s is not an officer of %(unit)s.",
        officer=_unquote(m["o"]),
        unit=_unit(r, m["unit"]),
    )


@rule(r"(?P<v>'[^']*') is not one of (?P<choices>.+)")
def _f_choice(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(value)s is not one of the choices offered: %(choices)s.",
        value=_unquote(m["v"]),
        choices=m["choices"],
    )


# --- a fresh time limit on reassignment (engine.redeadline.FreshLimit) ------------------------


@rule(r"give either a number of working days or a date for the new time limit, not both")
def _limit_both(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "Give either a number of working days or a date for the new time limit, not both."
    )


@rule(
    r"the new time limit must be a whole number of working days from 1 to (?P<max>\d+); "
    r"(?P<v>.+) is not"
)
def _limit_days(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "The new time limit must be a whole number of working days from 1 to %(max)s; "
        "%(value)s is not.",
        max=m["max"],
        value=_unquote(m["v"]),
    )


@rule(r"the new time limit's date must be written YYYY-MM-DD; (?P<v>.+) is not")
def _limit_date(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "The new time limit's date must be written YYYY-MM-DD; %(value)s is not.",
        value=_unquote(m["v"]),
    )


@rule(r"a new time limit for (?P<n>\S+) cannot be set: due_at: must be later than now")
def _limit_past(m: dict[str, str], r: Reader) -> str:
    return r.gettext("No new time limit for %(number)s: it must end later than now.", number=m["n"])


@rule(
    r"a new time limit for (?P<n>\S+) cannot be set: due_at: is after the campaign's end "
    r"\((?P<d>[^)]*)\)"
)
def _limit_end(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "No new time limit for %(number)s: it would end after the campaign's end (%(date)s).",
        number=m["n"],
        date=m["d"],
    )


# --- notices --------------------------------------------------------------------------------


@rule(r"(?P<n>\S+) is due within (?P<h>\d+) hours \(by (?P<due>[^)]*)\)")
def _n_warning(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s is due within %(hours)s hours (by %(due)s)",
        number=m["n"],
        hours=m["h"],
        due=m["due"],
    )


@rule(r"(?P<n>\S+) \((?P<s>[a-z_]+)\) must be done by (?P<due>.+)\.")
def _n_warning_body(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s (%(state)s) must be done by %(due)s.",
        number=m["n"],
        state=_state(r, m["s"]),
        due=m["due"],
    )


@rule(r"(?P<n>\S+) is overdue \(was due (?P<due>[^)]*)\)")
def _n_overdue(m: dict[str, str], r: Reader) -> str:
    return r.gettext("%(number)s is overdue (was due %(due)s)", number=m["n"], due=m["due"])


@rule(r"(?P<n>\S+) is escalated to level (?P<l>\d+) \(was due (?P<due>[^)]*)\)")
def _n_escalated(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s is escalated to level %(level)s (was due %(due)s)",
        number=m["n"],
        level=m["l"],
        due=m["due"],
    )


@rule(
    r"(?P<n>\S+) \((?P<s>[a-z_]+), unit (?P<unit>\S+)\) passed its due time (?P<due>.+?); "
    r"escalation level (?P<l>\d+)\."
)
def _n_breach_body(m: dict[str, str], r: Reader) -> str:
    unit = r.gettext("none") if m["unit"] == "none" else _unit(r, m["unit"])
    return r.gettext(
        "%(number)s (%(state)s, unit %(unit)s) passed its due time %(due)s; supervision level "
        "%(level)s.",
        number=m["n"],
        state=_state(r, m["s"]),
        unit=unit,
        due=m["due"],
        level=m["l"],
    )


@rule(r"(?P<n>\S+): extension to (?P<to>.+?) asked by (?P<u>\S+)")
def _n_ext_asked(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s: extension to %(to)s asked by %(user)s", number=m["n"], to=m["to"], user=m["u"]
    )


@rule(r"(?P<n>\S+): extension #(?P<id>\d+) (?P<status>approved|refused) by (?P<u>\S+)")
def _n_ext_decided(m: dict[str, str], r: Reader) -> str:
    if m["status"] == "approved":
        return r.gettext(
            "%(number)s: extension #%(id)s approved by %(user)s",
            number=m["n"],
            id=m["id"],
            user=m["u"],
        )
    return r.gettext(
        "%(number)s: extension #%(id)s refused by %(user)s", number=m["n"], id=m["id"], user=m["u"]
    )


@rule(r"(?P<n>\S+) escalated to level (?P<l>\d+) by (?P<u>\S+)")
def _n_esc_hand(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "%(number)s escalated to level %(level)s by %(user)s",
        number=m["n"],
        level=m["l"],
        user=m["u"],
    )


@rule(r"Overdue digest (?P<c>\S+) (?P<d>\d{4}-\d\d-\d\d): (?P<k>\d+) overdue in (?P<n>\d+) units")
def _n_digest_all(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "Overdue digest %(date)s: %(count)s overdue in %(units)s units",
        date=m["d"],
        count=m["k"],
        units=m["n"],
    )


@rule(r"Overdue digest (?P<c>\S+) (?P<d>\d{4}-\d\d-\d\d): (?P<k>\d+) overdue in (?P<unit>.+)")
def _n_digest_unit(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "Overdue digest %(date)s: %(count)s overdue in %(unit)s",
        date=m["d"],
        count=m["k"],
        unit=m["unit"],
    )


# --- start-up -------------------------------------------------------------------------------


@rule(
    r"NO AUDIT KEY IS SET: the transition log is hashed without a key, so anyone who can write "
    r"the database can forge a consistent log\. Set audit_key \(RECTIFLOW_AUDIT_KEY\) to a long "
    r"random value kept off the database host\."
)
def _no_audit_key(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "NO AUDIT KEY IS SET: the transition log is hashed without a key, so anyone who can "
        "write the database can forge a consistent log. Set audit_key (RECTIFLOW_AUDIT_KEY) "
        "to a long random value kept off the database host."
    )


@rule(
    r"PostgreSQL's autovacuum is off: the transition log's insert guard plans its look-ups "
    r"from the table's statistics, and a log that grows without being analysed is scanned "
    r"whole on every insert\. Turn autovacuum on \(PostgreSQL's default\), or run ANALYZE "
    r"after large loads\."
)
def _autovacuum_off(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "PostgreSQL's autovacuum is off: the transition log's insert guard plans its look-ups "
        "from the table's statistics, and a log that grows without being analysed is scanned "
        "whole on every insert. Turn autovacuum on (PostgreSQL's default), or run ANALYZE "
        "after large loads."
    )


@rule(r"refusing to start with production = true: (?P<why>.+)")
def _production_refused(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "refusing to start with production = true: %(why)s", why=translate(m["why"], r)
    )


# --- where a lag-tolerant read went (engine.readsource) -------------------------------------


@rule(r"standby lag (?P<lag>[\d.]+) s > (?P<bound>[\d.]+) s")
def _standby_lagging(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "the standby lags %(lag)s s, more than the %(bound)s s allowed",
        lag=m["lag"],
        bound=m["bound"],
    )


@rule(r"standby has not replayed your last write \((?P<position>[^)]*)\)")
def _standby_behind_you(m: dict[str, str], r: Reader) -> str:
    return r.gettext(
        "the standby has not yet replayed your last write (%(position)s)",
        position=m["position"],
    )


@rule(r"standby unreachable \((?P<why>.*)\)")
def _standby_unreachable(m: dict[str, str], r: Reader) -> str:
    return r.gettext("the standby does not answer (%(why)s)", why=m["why"])


@rule(r"the read database is not a standby")
def _not_a_standby(m: dict[str, str], r: Reader) -> str:
    return r.gettext("the read database is not a standby")


@rule(r"standby has replayed (?:nothing|no transaction) yet")
def _standby_empty(m: dict[str, str], r: Reader) -> str:
    return r.gettext("the standby has replayed nothing yet")


def read_source_line(choice: ReadChoice, r: Reader) -> str:
    """Where a lag-tolerant read went, for a person (``engine.readsource.ReadChoice``; the
    HTTP header keeps the machine form)."""
    if choice.source == STANDBY:
        return r.gettext(
            "read from the standby (lag %(lag)s s)", lag=f"{choice.lag_seconds or 0.0:.1f}"
        )
    if choice.reason:
        return r.gettext("read from the primary: %(reason)s", reason=translate(choice.reason, r))
    return r.gettext("read from the primary")


# --- the rule behind a due time ---------------------------------------------------------------


@rule(r"state (?P<s>[a-z_]+): (?P<n>\d+) working days?")
def _due_days(m: dict[str, str], r: Reader) -> str:
    return r.gettext("%(state)s: %(count)s working days", state=_state(r, m["s"]), count=m["n"])


@rule(r"state (?P<s>[a-z_]+): (?P<n>\d+) hours?")
def _due_hours(m: dict[str, str], r: Reader) -> str:
    return r.gettext("%(state)s: %(count)s hours", state=_state(r, m["s"]), count=m["n"])


@rule(
    r"state (?P<s>[a-z_]+): (?P<n>\d+) (?P<unit>working days?|calendar days?|hours?) "
    r"from phase (?P<p>\S+) \((?P<d>\d{4}-\d\d-\d\d)\)"
)
def _due_from_phase(m: dict[str, str], r: Reader) -> str:
    units = {
        "working": r.gettext("%(count)s working days", count=m["n"]),
        "calendar": r.gettext("%(count)s calendar days", count=m["n"]),
        "hour": r.gettext("%(count)s hours", count=m["n"]),
    }
    return r.gettext(
        "%(state)s: %(limit)s from the %(phase)s phase (%(date)s)",
        state=_state(r, m["s"]),
        limit=units[m["unit"].split()[0].rstrip("s")],
        phase=m["p"],
        date=m["d"],
    )


@rule(r"campaign deadline (?P<d>\d{4}-\d\d-\d\d)")
def _due_cap(m: dict[str, str], r: Reader) -> str:
    return r.gettext("the campaign's rectification deadline %(date)s", date=m["d"])


@rule(r"extension #(?P<id>\d+) approved by (?P<u>\S+)")
def _due_extension(m: dict[str, str], r: Reader) -> str:
    return r.gettext("extension #%(id)s approved by %(user)s", id=m["id"], user=m["u"])


def translate(text: str, r: Reader) -> str:
    """``text`` from the engine in ``r``'s language, when the table knows it."""
    for pattern, render in _TABLE:
        match = pattern.fullmatch(text.strip())
        if match:
            return render({k: v or "" for k, v in match.groupdict().items()}, r)
    return text


def engine_message(error: EngineError, r: Reader) -> str:
    """An engine refusal's message in ``r``'s language: by its ``message_id`` where the
    engine gives one with all it needs, else through the table of sentences."""
    params = error.params
    if error.message_id == "policy.role":
        roles = params.get("roles") or []
        return r.gettext(
            "This needs the role %(roles)s; you are %(role)s.",
            roles=r.gettext(" or ").join(_role(r, x) for x in roles) or r.gettext("nobody"),
            role=_role(r, str(params.get("role", ""))),
        )
    if error.message_id == "fire.final":
        return r.gettext(
            "%(number)s is in a final state (“%(state)s”); nothing more can happen.",
            number=params.get("number", ""),
            state=r.state(str(params.get("state", "")), _workflow_of(params, r)),
        )
    if error.message_id == "fire.roles":
        workflow = _workflow_of(params, r)
        # A trigger's title from this state: triggers of one name are titled per source.
        steps = workflow.triggers_from(str(params.get("state"))) if workflow is not None else []
        titles = {spec.name: spec.title_in(r.locale) for spec in steps}
        return r.gettext(
            "Only %(roles)s can act on it in this state (%(triggers)s); you are %(role)s.",
            roles=r.gettext(" or ").join(_role(r, x) for x in params.get("roles") or []),
            triggers=r.gettext(", ").join(
                titles.get(x) or r.trigger(x, workflow) for x in params.get("triggers") or []
            ),
            role=_role(r, str(params.get("role", ""))),
        )
    return translate(error.message, r)


def _workflow_of(params: dict[str, Any], r: Reader) -> Any:
    """The workflow ``params`` name (``workflow``, ``version``), for its titles; None when it
    is not loaded (the codes are shown)."""
    if r.registry is None or not params.get("workflow"):
        return None
    try:
        return r.registry.get(params.get("workflow"), params.get("version"))
    except EngineError:
        return None


def field_errors(error: ValidationError, r: Reader) -> dict[str, str]:
    """A ``ValidationError``'s per-field messages in ``r``'s language."""
    return {name: translate(message, r) for name, message in error.fields.items()}


def _notice_by_id(message_id: str, params: dict[str, Any], r: Reader) -> dict[str, str] | None:
    """A notice written with a message id (``engine.notices``) in ``r``'s language; None for
    an id this table does not know."""
    workflow = _workflow_of(params, r)
    number, actor = str(params.get("number", "")), str(params.get("actor", ""))
    # "from": the state the trigger left (notices written before it named it: the first title)
    source = params.get("from")
    trigger = r.trigger(str(params.get("trigger", "")), workflow, str(source) if source else None)
    state = r.state(str(params.get("state", "")), workflow)
    if message_id == "notice.assignment":
        subject = r.gettext(
            "%(number)s is yours to act on: %(trigger)s by %(user)s",
            number=number,
            trigger=trigger,
            user=actor,
        )
    elif message_id == "notice.returned":
        subject = r.gettext(
            "%(number)s came back to you: %(trigger)s by %(user)s",
            number=number,
            trigger=trigger,
            user=actor,
        )
    elif message_id == "notice.reopen":
        subject = r.gettext(
            "%(number)s was reopened by %(user)s: it is yours to act on", number=number, user=actor
        )
    else:
        return None
    body = r.gettext("Now: %(state)s.", state=state)
    if params.get("reason"):
        body += "\n" + r.gettext("Reason: %(reason)s", reason=params["reason"])
    return {"subject": subject, "body": body}


def notice_text(notice: Any, r: Reader) -> dict[str, str]:
    """A notice's subject and body in ``r``'s language: by its message id where it has one
    (``message_id`` and ``params``), else through the table (digest bodies stay as written)."""
    if getattr(notice, "message_id", None):
        params = getattr(notice, "params", None) or {}
        if isinstance(params, str):  # a row read straight from the table: the JSON text
            params = json.loads(params)
        found = _notice_by_id(notice.message_id, params, r)
        if found is not None:
            return found
    return {
        "subject": translate(notice.subject or "", r),
        "body": "\n".join(translate(line, r) for line in (notice.body or "").split("\n")),
    }


def report_text(r: Reader, item: Callable[[str, str], str] | None = None) -> ReportText:
    """A campaign report's headings and names in ``r``'s language (text, CSV and XLSX);
    ``item(section, code)`` names a category, unit, kind or state (``r``'s titles by default)."""
    words = {
        "title": r.gettext("Campaign report: %(name)s (%(code)s)"),
        "as_of": r.gettext("as of %(as_of)s; rectification deadline %(deadline)s"),
        "recorded": r.gettext("Opinions recorded: %(total)s"),
        "by_category": r.gettext("By category"),
        "by_kind": r.gettext("By kind"),
        "by_unit": r.gettext("By unit"),
        "by_state": r.gettext("By state"),
        "fed_back": r.gettext("Fed back"),
        "solved_by_deadline": r.gettext("Solved before the deadline"),
        "solved_after_deadline": r.gettext("Solved after the deadline"),
        "escalated_to_government": r.gettext("Escalated to government"),
        "specific_problems_line": r.gettext(
            "Specific problems: %(total)s; solved before the deadline %(early)s, after "
            "%(late)s; escalated to government %(escalated)s; fed back %(fed_back)s"
        ),
        "overdue_line": r.gettext("Overdue now: %(total)s"),
        "level": r.gettext("escalation level %(level)s"),
        "satisfaction_line": r.gettext(
            "Satisfaction: %(satisfied)s of %(answered)s answers satisfied (%(rate)s); "
            "reopened %(reopened)s (%(reopen_rate)s)"
        ),
        "themes_line": r.gettext("Themes (share of all opinions)"),
        "phase_line": r.gettext("Phase: %(phase)s"),
        "no_phase": r.gettext("none"),
        "problems_statement": r.gettext(
            "Specific problems: %(early)s of %(total)s solved before %(deadline)s; "
            "%(escalated)s reported to the Party committee and government"
        ),
        "problems_statement_open": r.gettext(
            "Specific problems: %(early)s of %(total)s solved; %(escalated)s reported to the "
            "Party committee and government"
        ),
        "rectified_after": r.gettext("Rectified after %(deadline)s, within the campaign:"),
        "extended_line": "  " + r.gettext("of all closed: closed within an approved extension:"),
        "late_line": "  " + r.gettext("of all closed: closed after their own due time (late):"),
        "measures_line": r.gettext("Measures implemented by the end (besides the problems):"),
        "column_section": r.gettext("Section"),
        "column_item": r.gettext("Item"),
        "column_count": r.gettext("Count"),
        "column_share": r.gettext("Share"),
        "campaign": r.gettext("Campaign"),
        "total": r.gettext("Total"),
        "opinions": r.gettext("Opinions recorded"),
        "specific_problems": r.gettext("Specific problems"),
        "overdue": r.gettext("Overdue now"),
        "overdue_by_unit": r.gettext("Overdue by unit"),
        "overdue_by_level": r.gettext("Overdue by escalation level"),
        "satisfaction": r.gettext("Satisfaction"),
        "themes": r.gettext("Themes"),
        "answered": r.gettext("Answers"),
        "satisfied": r.gettext("Satisfied"),
        "rate": r.gettext("Satisfaction rate"),
        "reopened": r.gettext("Reopened"),
        "reopen_rate": r.gettext("Reopen rate"),
    }
    # %(...)s placeholders stay for the engine to fill; gettext returned them untouched.
    return ReportText(
        words=words,
        item=item or (lambda section, code: report_item(r, section, code)),
        when=lambda iso, tz: r.when(datetime.fromisoformat(iso), tz),
        day=lambda iso, tz: r.month_day(datetime.fromisoformat(iso), tz),
    )


def problem_kind(r: Reader, kind: str) -> str:
    """What verification found (``engine.audit.Problem.kind``), in ``r``'s language; the
    problem's own message stays the technical detail (hashes, columns, sequence numbers)."""
    kinds = {
        "edited": r.gettext("edited (hash does not match)"),
        "deleted": r.gettext("deleted (rows missing)"),
        "inserted": r.gettext("inserted or repeated"),
        "reordered": r.gettext("reordered"),
        "backdated": r.gettext("back-dated"),
        "head": r.gettext("ticket head changed"),
        "unlogged": r.gettext("ticket row differs from its log"),
        "rewound": r.gettext("log rewound (newest rows removed)"),
        "rewritten": r.gettext("log rewritten since the checkpoint"),
        "removed": r.gettext("removed"),
    }
    return kinds.get(kind, kind)


def report_item(r: Reader, section: str, item: str) -> str:
    """A campaign report's row label in ``r``'s language: a name, never a code."""
    placeholders = {
        "(uncategorized)": r.gettext("(uncategorized)"),
        "(no unit)": r.gettext("(no unit)"),
        "(no kind)": r.gettext("(no kind)"),
    }
    if item in placeholders:
        return placeholders[item]
    if section == "campaign":
        return r.campaign(item)
    if section == "themes":
        from engine.draft import THEMES

        return THEMES.get(r.locale, {}).get(item, item)
    if section == "by_category":
        return r.category(item)
    if section in ("by_unit", "overdue_by_unit"):
        return r.unit(item)
    if section == "by_kind":
        return r.kind(item)
    if section == "by_state":
        return r.state(item)
    return item


def source_title(r: Reader, source: str | None) -> str:
    """How a ticket was received (its channel), in ``r``'s language."""
    sources = {
        "visit": r.gettext("visit to a household or unit"),
        "meeting": r.gettext("symposium or meeting"),
        "phone": r.gettext("telephone"),
        "letter": r.gettext("letter or mailbox"),
        "web": r.gettext("web form"),
        "import": r.gettext("spreadsheet import"),
        "open311": r.gettext("Open311 client"),
        "api": r.gettext("API"),
        "wechat": r.gettext("WeChat"),
        "cli": r.gettext("command line"),
        "unknown": r.gettext("unknown"),
    }
    return sources.get(source or "", source or "—")


def event_title(r: Reader, kind: str) -> str:
    """A log row that is not a workflow trigger (one of the engine's own events)."""
    titles = {
        "create": r.gettext("Recorded"),
        "deadline_warning": r.gettext("Warning: due soon"),
        "overdue": r.gettext("Overdue"),
        "escalated": r.gettext("Escalated (supervision level raised)"),
        "escalated_by_hand": r.gettext("Escalated by a supervisor"),
        "extension_requested": r.gettext("Extension asked"),
        "extension_approved": r.gettext("Extension approved"),
        "extension_refused": r.gettext("Extension refused"),
        "citizen_satisfied": r.gettext("Citizen satisfied"),
        "citizen_unsatisfied": r.gettext("Citizen not satisfied"),
        "reopen_refused": r.gettext("Reopen request refused"),
        "service_requested": r.gettext("Category asked by the citizen"),
    }
    return titles.get(kind, kind.replace("_", " "))


def log_title(r: Reader, trigger: str, workflow: Any = None, source: str | None = None) -> str:
    """A log row's trigger by its title (as it leaves ``source``, the row's from-state): the
    workflow's trigger, else the engine's event."""
    found = r.trigger(trigger, workflow, source)
    return event_title(r, trigger) if found == trigger else found
