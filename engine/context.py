"""The engine context: everything a service needs besides its arguments, built once per process.

``build_context(settings)`` reads the settings once and makes the session
factory, the workflow registry (checked against the policy), the audit key,
the book of working calendars (each campaign names its own), the clock and the
policy. Every adapter — the web app, the API, Open311, the CLI, the worker,
the demo, the benchmarks — builds one and hands it on; services reach what
they need through the ``UnitOfWork`` they are given, never through module
globals or loose ``registry=``/``audit_key=`` keywords.

A ``UnitOfWork`` is one database transaction: services write through its
session, the adapter commits once (or the ``with ctx.unit_of_work()`` block
does), and callbacks registered with ``after_commit`` (mail, notices) run only
once the commit has succeeded.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from engine import connections, db
from engine.calendar import CalendarBook, WorkingCalendar
from engine.clock import SystemClock, ensure_utc
from engine.errors import ConfigError, Conflict
from engine.notifications import LADDER_RECIPIENTS
from engine.policy import PERMISSIONS, Policy, load_policy_file
from engine.readcache import ReadCache
from engine.readsource import ReadChoice, ReadSource, build_read_source
from engine.settings import audit_key as settings_audit_key
from engine.settings import database_url, load_settings, project_path
from engine.workflow import Workflow, WorkflowRegistry

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Serialization failure, deadlock, lock not available, unique violation (PostgreSQL).
RACE_SQLSTATES = frozenset({"40001", "40P01", "55P03", "23505"})


def race_conflict(exc: DBAPIError, number: str | None = None) -> Conflict | None:
    """The ``Conflict`` a database race means (two writers at once), or None for other errors."""
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    text = str(orig).lower()
    if state in RACE_SQLSTATES or any(
        word in text for word in ("database is locked", "unique constraint failed", "busy")
    ):
        return Conflict(
            (f"{number} " if number else "the record ")
            + "was changed by someone else at the same moment; reload and try again",
            ticket=number,
        )
    return None


@dataclass
class EngineContext:
    """One per process: what every service reaches through its unit of work."""

    settings: Mapping[str, Any]
    engine: Engine
    sessions: sessionmaker[Session]
    registry: WorkflowRegistry
    policy: Policy
    calendars: CalendarBook
    audit_key: bytes | None = None
    clock: Clock = field(default_factory=SystemClock)
    # Where lag-tolerant reads go (a hot standby or the primary); None: always the primary.
    reads: ReadSource | None = None

    @property
    def read_source(self) -> ReadSource:
        """The read source; a context built without one reads everything from the primary."""
        if self.reads is None:
            self.reads = ReadSource(self.engine, primary_sessions=self.sessions)
        return self.reads

    # read-mostly rows (a campaign's clock) kept a few seconds: engine.readcache
    cache: ReadCache = field(default_factory=ReadCache)

    def now(self) -> datetime:
        return ensure_utc(self.clock())

    def calendar(self, name: str) -> WorkingCalendar:
        """The working calendar a campaign names (``calendar = "CN"``)."""
        return self.calendars.get(name)

    def workflow(self, name: str, version: int | None = None) -> Workflow:
        return self.registry.get(name, version)

    def with_clock(self, clock: Clock) -> EngineContext:
        """The same context on another clock (a replay's, a drill's ``--now``)."""
        return EngineContext(
            settings=self.settings,
            engine=self.engine,
            sessions=self.sessions,
            registry=self.registry,
            policy=self.policy,
            calendars=self.calendars,
            audit_key=self.audit_key,
            clock=clock,
            reads=self.reads,
            cache=self.cache,
        )

    def bind(self, session: Session) -> UnitOfWork:
        """A unit of work on a session the caller opened; the caller closes it."""
        return UnitOfWork(self, session)

    def connect(self) -> UnitOfWork:
        """A unit of work on a connection of its own (a web request's): the caller commits
        and closes it. Its ORM session is made only when something asks for
        ``uow.session``; a transition runs on the connection alone. The connection comes
        from the engine's shelf (``engine.connections``): usually the one the last unit of work
        gave back."""
        return UnitOfWork(self, connection=connections.take(self.engine))

    @contextlib.contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """One transaction: committed when the block ends, rolled back on any error.

        It runs on one connection; the ORM session is made (bound to that connection)
        only when a service asks for ``uow.session`` — the hot path of a transition
        (``engine.firing``) runs on the connection alone.
        """
        uow = UnitOfWork(self, connection=connections.take(self.engine))
        try:
            yield uow
            uow.commit()
        except BaseException:
            uow.rollback()
            raise
        finally:
            uow.close()

    @contextlib.contextmanager
    def reading(
        self, *, min_position: int | None = None
    ) -> Iterator[tuple[UnitOfWork, ReadChoice]]:
        """A unit of work for one lag-tolerant read (a report, a log search) on the database
        the read source chooses, with the choice; never committed, rolled back at the end."""
        choice = self.read_source.choose(min_position=min_position)
        session = self.read_source.sessions(choice)()
        try:
            yield UnitOfWork(self, session), choice
        finally:
            session.rollback()
            session.close()

    def dispose(self) -> None:
        if self.reads is not None:
            self.reads.dispose()
        self.engine.dispose()


class UnitOfWork:
    """One transaction and the context it runs in; the one place that commits.

    Either on a session the caller opened (``EngineContext.bind``), or on a connection
    it owns (``EngineContext.unit_of_work``), with a session bound to that connection
    made on first use.
    """

    def __init__(
        self,
        ctx: EngineContext,
        session: Session | None = None,
        *,
        connection: Connection | None = None,
    ) -> None:
        if session is None and connection is None:
            raise ValueError("a unit of work needs a session or a connection")
        self.ctx = ctx
        self._session = session
        self._connection = connection
        self._session_conn: Connection | None = None
        self._after_commit: list[Callable[[], None]] = []

    @property
    def session(self) -> Session:
        if self._session is None:
            # On the connection, begun on the session's first statement (a session asked for
            # and never used takes no lock). A transaction the connection is already in is
            # joined: our commit() commits it, the session's rollback rolls it back.
            assert self._connection is not None
            self._session = self.ctx.sessions(
                bind=self._connection, join_transaction_mode="rollback_only"
            )
        return self._session

    @property
    def conn(self) -> Connection:
        """The connection, in this unit of work's transaction (begun on first use)."""
        conn = self._connection
        if conn is None:
            assert self._session is not None
            # The session's connection for its current transaction, asked once: it stays the
            # same until the session commits or rolls back, which closes it.
            conn = self._session_conn
            if conn is None or conn.closed or not conn.in_transaction():
                conn = self._session_conn = self._session.connection()
            return conn
        if not conn.in_transaction():
            conn.begin()
        return conn

    @property
    def registry(self) -> WorkflowRegistry:
        return self.ctx.registry

    @property
    def policy(self) -> Policy:
        return self.ctx.policy

    @property
    def audit_key(self) -> bytes | None:
        return self.ctx.audit_key

    def now(self, now: datetime | None = None) -> datetime:
        """``now`` as UTC when a caller gave one, else the context's clock."""
        return ensure_utc(now) if now is not None else self.ctx.now()

    def read_mostly_changed(self) -> None:
        """An administrator changes read-mostly rows (units, users, categories, routing, a
        campaign, tokens): drop this process's cached copies now and again once the change
        commits (what was read meanwhile is read again). Other processes' copies expire
        within the cache's TTL (``engine.readcache``)."""
        self.ctx.cache.invalidate()
        self.after_commit(self.ctx.cache.invalidate)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this unit of work has committed (never on rollback)."""
        self._after_commit.append(callback)

    @contextlib.contextmanager
    def writing(self, number: str | None = None) -> Iterator[UnitOfWork]:
        """Run the block and commit; a database race in it becomes ``Conflict`` (rolled back)."""
        try:
            yield self
            self.commit()
        except DBAPIError as exc:
            self.rollback()
            conflict = race_conflict(exc, number)
            if conflict is not None:
                raise conflict from exc
            raise

    def commit(self) -> None:
        """Commit; a race at commit time becomes ``Conflict``; then the after-commit callbacks."""
        try:
            session = self._session
            if session is not None and (self._connection is None or session.in_transaction()):
                session.commit()  # on an owned connection: flushes, the connection commits
            if self._connection is not None and self._connection.in_transaction():
                self._connection.commit()
        except DBAPIError as exc:
            self.rollback()
            conflict = race_conflict(exc)
            if conflict is not None:
                raise conflict from exc
            raise
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001 - the transaction stands; say so and go on
                log.exception("after-commit callback failed")

    def in_transaction(self) -> bool:
        """Whether a transaction is open (something was read or written since the last commit)."""
        if self._session is not None and self._session.in_transaction():
            return True
        return self._connection is not None and self._connection.in_transaction()

    def rollback(self) -> None:
        self._after_commit.clear()
        if self._session is not None:
            self._session.rollback()
        if self._connection is not None and self._connection.in_transaction():
            self._connection.rollback()

    def close(self) -> None:
        """Give the connection back (a unit of work that owns one) to the engine's shelf,
        for the next unit of work; this one no longer has it."""
        if self._session is not None and self._connection is not None:
            self._session.close()
            self._session = None
        if self._connection is not None:
            conn, self._connection = self._connection, None
            connections.give_back(self.ctx.engine, conn)


def build_context(
    settings: Mapping[str, Any] | None = None,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> EngineContext:
    """The process's context from the settings (``load_settings(overrides)`` when none given).

    Loads and cross-checks the configuration once: the policy, the workflows (every
    role a workflow names must be a role of the policy), the calendar file.
    """
    if settings is None:
        settings = load_settings(overrides)
    if engine is None:
        engine = db.make_engine(
            database_url(settings), sqlite_synchronous=settings.get("sqlite_synchronous", "FULL")
        )
    policy = load_policy_file(project_path(settings.get("policy", "config/policy.toml")))
    registry = WorkflowRegistry.from_directory(
        project_path(settings.get("workflows_dir", "workflows"))
    )
    check_workflow_roles(registry, policy)
    calendars = CalendarBook.from_file(
        project_path(settings.get("calendar", "config/calendar-cn.toml"))
    )
    sessions = db.session_factory(engine)
    return EngineContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        registry=registry,
        policy=policy,
        calendars=calendars,
        audit_key=settings_audit_key(settings),
        clock=clock or SystemClock(),
        reads=build_read_source(settings, engine, db.make_engine, primary_sessions=sessions),
    )


def check_workflow_roles(registry: WorkflowRegistry, policy: Policy) -> None:
    """``ConfigError`` naming the workflow file and item for a role the policy lacks."""
    problems = [p for wf in registry.all() for p in workflow_policy_problems(wf, policy)]
    if problems:
        raise ConfigError("\n".join(problems), details={"problems": problems})


def workflow_policy_problems(workflow: Workflow, policy: Policy) -> list[str]:
    """What a workflow names that the policy does not know, each with the file and the item:
    trigger roles, field roles, ladder recipients (roles, or ``assignee``/``leadership``),
    queue permissions."""
    problems: list[str] = []

    def check(roles: list[str], item: str) -> None:
        try:
            policy.check_roles(roles, workflow.source, item)
        except ConfigError as exc:
            problems.append(exc.message)

    for spec in workflow.triggers:
        check(sorted(spec.roles), f"trigger {spec.name!r}")
    for fspec in workflow.fields.values():
        if fspec.role is not None:
            check([fspec.role], f"field {fspec.name!r}")
    for step in workflow.ladder.steps:
        # "assignee" and "leadership" are who a ticket names, not roles (notifications.py).
        check(
            [n for n in step.notify if n not in LADDER_RECIPIENTS],
            f"ladder step #{step.level} notify",
        )
    for queue in workflow.queues:
        if queue.permission not in PERMISSIONS:
            problems.append(
                f"{workflow.source}: queue {queue.name!r}: unknown permission "
                f"{queue.permission!r}; permissions are {', '.join(sorted(PERMISSIONS))}"
            )
    return problems
