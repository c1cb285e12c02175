"""A province on one machine: network namespaces for the hosts, PostgreSQL primary + hot standby.

    with Province() as p:          # needs root, ``ip``, PostgreSQL's server binaries
        p.start_primary(); ...; p.start_standby()
        proc = p.spawn("app1", [...])          # a process on application host 1
        p.cut("app1"); p.restore("app1")       # its link down / up

What it builds, all inside namespaces it creates (nothing is addressed or routed
outside them, nothing leaves the machine):

* four network namespaces ``rfp<pid>-db``, ``-app1``, ``-app2``, ``-client``; the
  database host holds a bridge, and each other host a veth whose peer is a port of
  that bridge, on the private /24 ``SUBNET`` (db .1, app1 .11, app2 .12, client .100);
* under a fresh directory in /tmp (owned by the ``postgres`` user, whose the server
  processes are): a primary cluster (initdb, port ``PRIMARY_PORT``) listening on the
  database host's address and a Unix socket in that directory, which is how this
  process reaches it from outside the namespaces; a hot standby cluster
  (pg_basebackup -R from the primary over the bridge, port ``STANDBY_PORT``) fed by
  streaming replication;
* teardown (``close``, also on failure) stops every process it spawned, both
  clusters (immediate), deletes the namespaces and the directory. Leftovers of a
  run that was killed are removed by the next one (``remove_stale``).

The primary's settings are those README "Production" recommends for several hosts:
TCP keepalives and ``tcp_user_timeout`` so that the server notices a host whose
link is cut within seconds, and ``idle_in_transaction_session_timeout`` so that
a session left open by such a host does not hold its row locks (its claimed
timers, its tickets) for the two hours of the kernel's default keepalive.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SUBNET = "10.77.0"
ADDRESSES = {"db": f"{SUBNET}.1", "app1": f"{SUBNET}.11", "app2": f"{SUBNET}.12"}
ADDRESSES["client"] = f"{SUBNET}.100"
PRIMARY_PORT = 5491
STANDBY_PORT = 5492
DATABASE = "rectiflow"
PREFIX = "rfp"
WORKDIR_PREFIX = "rectiflow-province-"
CLONE_NEWNET = 0x40000000

# Server settings for several application hosts (see README "Production").
PRIMARY_SETTINGS = {
    "wal_level": "replica",
    "max_wal_senders": "5",
    "wal_keep_size": "256MB",
    "max_connections": "200",
    "tcp_keepalives_idle": "2",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "3000",
    "idle_in_transaction_session_timeout": "5s",
    "lock_timeout": "0",
    "log_min_messages": "warning",
    "log_connections": "off",
}
# Not a production recommendation: lets bench.multihost read when the primary committed
# each log row (pg_xact_commit_timestamp), to show the cut host committed nothing while cut.
MEASUREMENT_SETTINGS = {"track_commit_timestamp": "on"}
STANDBY_SETTINGS = {
    "hot_standby": "on",
    "hot_standby_feedback": "on",
    "max_standby_streaming_delay": "30s",
    "wal_receiver_status_interval": "1s",
}
# libpq options every application host's URL carries: give up on a dead link in
# seconds instead of the kernel's ~15 minutes of retransmissions.
CLIENT_OPTIONS = (
    "connect_timeout=3&keepalives=1&keepalives_idle=2&keepalives_interval=1"
    "&keepalives_count=3&tcp_user_timeout=3000"
)


class TopologyError(RuntimeError):
    """The topology cannot be built here; the message says why in one line."""


def _run(cmd: Sequence[str], *, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if check and done.returncode != 0:
        said = " ".join((done.stderr or done.stdout).split())[:300]
        raise TopologyError(f"{' '.join(cmd)} failed ({done.returncode}): {said}")
    return done


def pg_bin(name: str) -> str | None:
    """A PostgreSQL server binary: on PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    return None


def why_not() -> str | None:
    """None when this machine can build the topology, else the reason in one line."""
    if os.geteuid() != 0:
        return "network namespaces need root (run as root, e.g. in CI)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    for name in ("initdb", "pg_ctl", "pg_basebackup"):
        if pg_bin(name) is None:
            return f"PostgreSQL's {name} is missing (apt-get install postgresql)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no `postgres` user to run the clusters as (PostgreSQL refuses root)"
    probe = f"{PREFIX}probe{os.getpid()}"
    made = _run(["ip", "netns", "add", probe], check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    _run(["ip", "netns", "delete", probe], check=False)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Remove namespaces and clusters left by runs whose process is gone; what was removed."""
    removed: list[str] = []
    listing = _run(["ip", "netns", "list"], check=False).stdout.split()
    for name in listing:
        if name.startswith(PREFIX) and "-" in name:
            pid_text = name[len(PREFIX) :].split("-", 1)[0]
            if pid_text.isdigit() and not _pid_alive(int(pid_text)):
                _run(["ip", "netns", "delete", name], check=False)
                removed.append(name)
    for workdir in glob.glob(os.path.join(tempfile.gettempdir(), WORKDIR_PREFIX + "*")):
        pid_text = os.path.basename(workdir)[len(WORKDIR_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            for cluster in ("standby", "primary"):
                data = os.path.join(workdir, cluster)
                if os.path.exists(os.path.join(data, "postmaster.pid")):
                    _stop_cluster(data)
            shutil.rmtree(workdir, ignore_errors=True)
            removed.append(workdir)
    return removed


def _stop_cluster(data: str) -> None:
    pg_ctl = pg_bin("pg_ctl") or "pg_ctl"
    _run(
        ["runuser", "-u", "postgres", "--", pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"],
        check=False,
        timeout=60,
    )


def in_netns(namespace: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` on a thread that has entered ``namespace`` (its sockets are that host's)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            enter_netns(namespace)
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def enter_netns(namespace: str) -> None:
    """Move the calling thread (only it) into ``namespace``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {namespace}: {os.strerror(errno)}")
    finally:
        os.close(fd)


class Province:
    """The namespaces, the two clusters and the processes spawned on the hosts; a context
    manager that tears everything down on exit, also after an error."""

    HOSTS = ("app1", "app2", "client")

    def __init__(self, *, fsync: bool = True) -> None:
        self.tag = f"{PREFIX}{os.getpid()}"
        self.fsync = fsync
        self.workdir = ""
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self.clusters: list[str] = []
        self.pg_uid = pwd.getpwnam("postgres").pw_uid if _has_postgres_user() else 0

    # --- names and URLs --------------------------------------------------------------------

    def ns(self, host: str) -> str:
        return f"{self.tag}-{host}"

    @property
    def socket_dir(self) -> str:
        return self.workdir

    def url(self, *, port: int = PRIMARY_PORT, database: str = DATABASE) -> str:
        """The URL application hosts use (over the bridge, with the libpq dead-link options)."""
        return f"postgresql://postgres@{ADDRESSES['db']}:{port}/{database}?{CLIENT_OPTIONS}"

    def local_url(self, *, port: int = PRIMARY_PORT, database: str = DATABASE) -> str:
        """The URL this process uses: the cluster's Unix socket (namespaces do not apply)."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.workdir}&port={port}"

    # --- building --------------------------------------------------------------------------

    def __enter__(self) -> Province:
        reason = why_not()
        if reason:
            raise TopologyError(reason)
        remove_stale()
        try:
            self.workdir = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")
            os.chmod(self.workdir, 0o755)
            os.chown(self.workdir, self.pg_uid, -1)
            self._network()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _network(self) -> None:
        db = self.ns("db")
        for host in ("db", *self.HOSTS):
            _run(["ip", "netns", "add", self.ns(host)])
            self.namespaces.append(self.ns(host))
            _run(["ip", "-n", self.ns(host), "link", "set", "lo", "up"])
        _run(["ip", "-n", db, "link", "add", "br0", "type", "bridge"])
        _run(["ip", "-n", db, "addr", "add", f"{ADDRESSES['db']}/24", "dev", "br0"])
        _run(["ip", "-n", db, "link", "set", "br0", "up"])
        for host in self.HOSTS:
            port = f"v{host}"
            _run(
                ["ip", "link", "add", port, "netns", db, "type", "veth"]
                + ["peer", "name", "eth0", "netns", self.ns(host)]
            )
            _run(["ip", "-n", db, "link", "set", port, "master", "br0", "up"])
            _run(["ip", "-n", self.ns(host), "addr", "add", f"{ADDRESSES[host]}/24", "dev", "eth0"])
            _run(["ip", "-n", self.ns(host), "link", "set", "eth0", "up"])

    def _as_postgres(self, *cmd: str, host: str = "db", timeout: float = 120) -> None:
        _run(
            ["ip", "netns", "exec", self.ns(host), "runuser", "-u", "postgres", "--", *cmd],
            timeout=timeout,
        )

    def _configure(self, data: str, port: int, settings: dict[str, str]) -> None:
        lines = [
            f"port = {port}",
            f"listen_addresses = '{ADDRESSES['db']}'",
            f"unix_socket_directories = '{self.workdir}'",
            f"fsync = {'on' if self.fsync else 'off'}",
            *(f"{k} = '{v}'" for k, v in settings.items()),
        ]
        with open(os.path.join(data, "postgresql.auto.conf"), "a") as conf:
            conf.write("\n".join(lines) + "\n")

    def start_primary(self) -> None:
        """initdb, configure and start the primary on the database host; create the database."""
        data = os.path.join(self.workdir, "primary")
        self._as_postgres(
            pg_bin("initdb") or "initdb",
            "-D",
            data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        with open(os.path.join(data, "pg_hba.conf"), "w") as hba:
            hba.write(
                "local all all trust\nlocal replication all trust\n"
                f"host all all {SUBNET}.0/24 trust\nhost replication all {SUBNET}.0/24 trust\n"
            )
        self._configure(data, PRIMARY_PORT, PRIMARY_SETTINGS | MEASUREMENT_SETTINGS)
        self._start(data)
        from sqlalchemy import create_engine, text

        admin = create_engine(self.local_url(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
        admin.dispose()

    def start_standby(self) -> None:
        """pg_basebackup -R from the primary over the bridge, then start it as a hot standby."""
        data = os.path.join(self.workdir, "standby")
        self._as_postgres(
            pg_bin("pg_basebackup") or "pg_basebackup",
            "-h",
            ADDRESSES["db"],
            "-p",
            str(PRIMARY_PORT),
            "-U",
            "postgres",
            "-D",
            data,
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        )
        self._configure(data, STANDBY_PORT, STANDBY_SETTINGS)
        self._start(data)

    def _start(self, data: str) -> None:
        self.clusters.append(data)
        self._as_postgres(
            pg_bin("pg_ctl") or "pg_ctl",
            "-D",
            data,
            "-l",
            os.path.join(self.workdir, os.path.basename(data) + ".log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    # --- running things on the hosts -------------------------------------------------------

    def spawn(
        self,
        host: str,
        cmd: Sequence[str],
        *,
        log: str,
        env: dict[str, str] | None = None,
        **kw: Any,
    ) -> subprocess.Popen[bytes]:
        """Start ``cmd`` on ``host`` (its network namespace); output to ``log`` in the workdir."""
        with open(os.path.join(self.workdir, log), "ab") as out:
            kw.setdefault("stdout", out)
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns(host), *cmd],
                stderr=out,
                env=env,
                start_new_session=True,
                **kw,
            )
        self.processes.append(proc)
        return proc

    def log_text(self, log: str) -> str:
        try:
            return Path(self.workdir, log).read_text(errors="replace")
        except OSError:
            return ""

    def cut(self, host: str) -> None:
        """Take ``host``'s link down: nothing reaches it, nothing leaves it."""
        _run(["ip", "-n", self.ns(host), "link", "set", "eth0", "down"])

    def restore(self, host: str) -> None:
        _run(["ip", "-n", self.ns(host), "link", "set", "eth0", "up"])

    def in_host(self, host: str, fn: Callable[[], T]) -> T:
        return in_netns(self.ns(host), fn)

    # --- teardown --------------------------------------------------------------------------

    @staticmethod
    def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def close(self) -> None:
        """Stop everything this object started and remove what it made; never raises."""
        for proc in reversed(self.processes):
            with contextlib.suppress(Exception):
                self.stop(proc)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(Exception):
                        pipe.close()
        self.processes.clear()
        for data in reversed(self.clusters):
            with contextlib.suppress(Exception):
                _stop_cluster(data)
        self.clusters.clear()
        for name in reversed(self.namespaces):
            _run(["ip", "netns", "delete", name], check=False)
        self.namespaces.clear()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _has_postgres_user() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True


@contextlib.contextmanager
def province(**kw: Any) -> Iterator[Province]:
    with Province(**kw) as built:
        yield built


def wait_for(check: Callable[[], T], *, timeout: float, what: str, every: float = 0.2) -> T:
    """Poll ``check`` until it returns something true; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(every)
