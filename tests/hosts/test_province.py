"""A province on several hosts, built on this machine (bench.multihost, small and quick).

Network namespaces for two application hosts (gunicorn + ``rectiflow worker`` each),
the database host and the clients, linked by veth over a bridge; a PostgreSQL
primary and a hot standby fed by streaming replication, both under /tmp on ports
of their own. Host 1's link is cut mid-load and brought back. Needs root and
``ip``: skipped with the reason elsewhere, required under CI=true.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import multihost
from bench.topology import PREFIX, WORKDIR_PREFIX, Province, why_not
from tests.conftest import IN_CI

pytestmark = [pytest.mark.hosts, pytest.mark.slow]


@pytest.fixture
def province() -> Iterator[Province]:
    reason = why_not()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true but the province topology cannot be built: {reason}")
        pytest.skip(f"cannot build network namespaces and clusters here: {reason}")
    with Province(fsync=False) as built:
        yield built


def test_a_cut_host_loses_nothing_and_rejoins_without_double_firing(province: Province) -> None:
    opts = multihost.Options(
        tickets=1500,
        clients=4,
        hot=30,
        web_workers=2,
        threads=3,
        hold_timers=10,
        max_lag=2.0,
        min_applied=12,
        fsync=False,
    )
    result = multihost.run(province, opts, say=lambda *_: None)
    assert result.problems == [], "\n".join(result.problems)
    figures = result.figures
    # The load ran on both hosts, then on host 2 alone, then on both again.
    assert set(figures["both"]["applied_by_host"]) == {"app1", "app2"}
    # A transition counts in the phase it was sent and answered in; one in flight across the
    # cut or the rejoin counts apart. Host 1 answers nothing sent after its link is down, and
    # the primary commits nothing of host 1's while it is cut off.
    assert set(figures["cut"]["applied_by_host"]) == {"app2"}
    assert figures["app1_commits"]["while_cut"] == 0
    assert (
        figures["app1_commits"]["before_cut"] > 0 and figures["app1_commits"]["after_restore"] > 0
    )
    assert figures["served_by_app1_after_rejoin"] > 0
    assert figures["held_sweep"].startswith("refused")
    assert figures["failover_s"] < 30


def _netns() -> list[str]:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()


def test_a_failed_run_leaves_nothing_and_a_killed_runs_leftovers_are_removed() -> None:
    reason = why_not()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true but the province topology cannot be built: {reason}")
        pytest.skip(f"cannot build network namespaces and clusters here: {reason}")
    # Leftovers of a run whose process is gone (a pid that just exited).
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale_ns = f"{PREFIX}{gone.pid}-db"
    subprocess.run(["ip", "netns", "add", stale_ns], check=True)
    stale_dir = Path(tempfile.gettempdir()) / f"{WORKDIR_PREFIX}{gone.pid}-x"
    stale_dir.mkdir()
    province = Province(fsync=False)
    with pytest.raises(RuntimeError, match="half-way"), province:
        assert stale_ns not in _netns() and not stale_dir.exists()
        province.start_primary()
        spawned = province.spawn("app1", ["sleep", "600"], log="sleep.log")
        assert province.ns("app1") in _netns()
        raise RuntimeError("failed half-way")
    assert spawned.poll() is not None
    assert not [n for n in _netns() if n.startswith(province.tag)]
    assert not Path(province.workdir).exists()
    running = subprocess.run(["pgrep", "-f", province.workdir], capture_output=True, text=True)
    assert running.stdout == ""  # no postgres left on the removed directory
