"""Several clients fire the same trigger on the same ticket at once: one wins, the others get
409 — never a 500, on SQLite and PostgreSQL. And a database-level race (serialization
failure, deadlock, lock timeout) is answered as 409."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.exc import OperationalError

from engine.context import UnitOfWork
from engine.errors import Conflict
from tests.api.conftest import fire_as


def test_simultaneous_transitions_one_wins(app, client, auth, new_ticket):
    number = new_ticket(kind="criticism")["number"]
    headers = [auth("clerk") for _ in range(6)]
    barrier = threading.Barrier(len(headers))
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(h: dict[str, str]) -> None:
        own = app.test_client()
        barrier.wait()
        response = fire_as(
            own, h, number, "categorize", 1, category="law_enforcement", kind="criticism"
        )
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=worker, args=(h,)) for h in headers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses) == [200] + [409] * (len(headers) - 1)
    history = client.get(f"/api/v1/tickets/{number}/history", headers=headers[0]).json
    assert [r["trigger"] for r in history["items"]] == ["create", "categorize"]


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("could not serialize access")
        self.sqlstate = sqlstate


class _FakeSession:
    rolled_back = False

    def commit(self) -> None:
        raise OperationalError("COMMIT", {}, _PgError("40001"))

    def rollback(self) -> None:
        self.rolled_back = True


@pytest.mark.parametrize("sqlstate", ["40001", "40P01", "55P03"])
def test_database_races_become_conflicts_in_the_unit_of_work(sqlstate: str) -> None:
    session = _FakeSession()
    session.commit = lambda: (_ for _ in ()).throw(  # type: ignore[method-assign]
        OperationalError("COMMIT", {}, _PgError(sqlstate))
    )
    with pytest.raises(Conflict), UnitOfWork(None, session).writing("2005-0001"):  # type: ignore[arg-type]
        pass
    assert session.rolled_back


def test_other_database_errors_are_not_hidden() -> None:
    session = _FakeSession()
    session.commit = lambda: (_ for _ in ()).throw(  # type: ignore[method-assign]
        OperationalError("COMMIT", {}, _PgError("08006"))
    )
    with pytest.raises(OperationalError), UnitOfWork(None, session).writing():  # type: ignore[arg-type]
        pass
