"""Every request that once answered 500 (issue 13) now gets a 400 naming the parameter, or the
page's own error: huge, negative or malformed numbers and dates on the queues, the board, the
log, the sample, the report and the workflow page; a JSON body nested too deep or too large."""

from __future__ import annotations

import pytest

from tests.conftest import CAMPAIGN
from web.params import json_depth

BIG = "9" * 30

# (role, path) pairs that answered 500 before web.params bounded them.
FOUND = [
    ("supervisor", f"/supervisor/board?offset={BIG}"),
    ("supervisor", f"/supervisor/board?level={BIG}"),
    ("supervisor", f"/supervisor/board?level=-{BIG}"),
    ("clerk", f"/desk/categorize?offset={BIG}"),
    ("officer", f"/unit/queue?offset={BIG}"),
    ("officer", f"/my/queue?offset={BIG}"),
    ("inspector", f"/inspector/log?before={BIG}"),
    ("inspector", f"/inspector/log?before=-{BIG}"),
    ("supervisor", f"/reports/{CAMPAIGN}?as_of=9999-12-31"),
    ("supervisor", f"/workflow/consultation?version={BIG}"),
]


@pytest.mark.parametrize(("who", "path"), FOUND)
def test_former_server_errors_are_400(login_as, who: str, path: str) -> None:
    response = login_as(who).get(path)
    assert response.status_code == 400, response.status_code
    name = path.split("?")[1].split("=")[0]
    assert f"The parameter &#39;{name}&#39;" in response.get_data(as_text=True)


@pytest.mark.parametrize("value", ["x", "1e400", "-1", "1.5", "٣"])
@pytest.mark.parametrize(
    ("who", "path", "name"),
    [
        ("officer", "/my/queue", "offset"),
        ("supervisor", "/supervisor/board", "level"),
        ("inspector", "/inspector/log", "before"),
        ("inspector", "/inspector/sample", "size"),
        ("inspector", "/inspector/sample", "seed"),
    ],
)
def test_malformed_numbers_are_400(login_as, who: str, path: str, name: str, value: str) -> None:
    assert login_as(who).get(f"{path}?{name}={value}").status_code == 400


def test_in_range_numbers_still_work(login_as) -> None:
    client = login_as("supervisor")
    assert client.get("/supervisor/board?offset=100&level=2").status_code == 200
    assert login_as("inspector").get("/inspector/sample?size=200&seed=7").status_code == 200


def test_log_dates_out_of_range_are_the_pages_own_error(login_as) -> None:
    client = login_as("inspector")
    response = client.get("/inspector/log?since=9999-12-31&until=0001-01-01")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "is not a date between 1900-01-01 and 2999-12-31" in body


def test_inbox_ids_out_of_range_mark_nothing(login_as) -> None:
    from tests.web.conftest import csrf

    client = login_as("officer")
    token = csrf(client, "/inbox")
    response = client.post("/inbox/read", data={"csrf_token": token, "ids": [BIG]})
    assert response.status_code == 302
    assert "nothing was marked" in client.get("/inbox").get_data(as_text=True)


def test_large_form_body_is_413(client) -> None:
    response = client.post("/submit", data={"text": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413


def test_json_depth_counts_without_recursing() -> None:
    assert json_depth(b'{"a": [1, {"b": "[[[["}]}') == 3
    assert json_depth(b'"\\"[["') == 0
    assert json_depth(b"[" * 1_000_000, limit=32) == 33  # stops early
