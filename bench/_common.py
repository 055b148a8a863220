"""What every benchmark shares: an embedded PostgreSQL, the service as a subprocess from a given source tree,
and CPU time per process read from /proc.

The benches never import `service`: they talk to it only through its stable public surfaces (the gRPC API,
`python -m service serve|migrate`, its migrations), so the same bench runs against any revision's tree
(`--service-root DIR`, used by bench/compare.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parents[1]


def add_service_root(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """--service-root DIR: the source tree whose service/ is benchmarked (default: this checkout). With
    `several`, it may be given more than once: the trees (A, B, ...) are measured taking turns."""
    if several:
        parser.add_argument("--service-root", type=Path, action="append", help="source tree (repeatable)")
    else:
        parser.add_argument("--service-root", type=Path, default=ROOT, help="source tree (default: this checkout)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits, value = value & 0x7F, value >> 7
        out.append(bits | (0x80 if value else 0))
        if not value:
            return bytes(out)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    """One protobuf length-delimited field (how the service frames a stored document)."""
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


class EmbeddedPostgres:
    """A throwaway PostgreSQL from pgserver (a dev dependency), deleted on stop."""

    def __init__(self, prefix: str, max_connections: int = 400) -> None:
        import pgserver
        from pgserver import _commands
        from pgserver.utils import PostmasterInfo

        self.data_dir = Path(tempfile.mkdtemp(prefix=prefix))
        self._server: Any = pgserver.get_server(str(self.data_dir), cleanup_mode="delete")  # type: ignore[attr-defined]
        # Room for two trees' services side by side, each with PROCESSES=2 and full pools (default: 100).
        self._server.psql(f"ALTER SYSTEM SET max_connections = {max_connections};")
        restart = getattr(_commands, "pg_ctl")  # noqa: B009 (made at import time: invisible to type checkers)
        restart(["-w", "restart"], pgdata=self.data_dir, user=self._server.system_user, timeout=60)
        self._server._postmaster_info = PostmasterInfo.read_from_pgdata(self.data_dir)  # the new postmaster

    def create_database(self, name: str) -> str:
        self._server.psql(f'CREATE DATABASE "{name}";')
        return str(self._server.get_uri()).replace("/postgres?", f"/{name}?")

    def pids(self) -> list[int]:
        """The postmaster and its backends: this bench's PostgreSQL only, not other processes named postgres."""
        postmaster = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        return [postmaster, *descendants(postmaster)]

    def stop(self) -> None:
        self._server.cleanup()


def _stat(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            parents[int(entry)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU seconds the processes have used so far (exited ones count as 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        if (fields := _stat(pid)) is not None:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def machine() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"


def service_env(root: Path, url: str, address: str, **settings: str) -> dict[str, str]:
    """The environment of a service process from `root`: its tree first on sys.path (and its generated stubs,
    if it has its own), so neither the installed editable package nor this checkout's copy is used."""
    paths = [str(root)] + [str(root / "gen" / "python")] * (root / "gen" / "python" / "invoices").is_dir()
    inherited = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths + ([inherited] if inherited else [])),
        "DATABASE_URL": url,
        "LISTEN_ADDR": address,
        "LOG_LEVEL": "WARNING",
        "AUTH_REQUIRED": "false",
        **settings,
    }


def python_of(root: Path) -> str:
    """The tree's own .venv if it has one (its locked dependencies), else this interpreter."""
    own = root / ".venv" / "bin" / "python"
    return str(own) if own.exists() else sys.executable


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    address: str
    # The processes serving calls: the one process, or with PROCESSES > 1 each child (with its descendants).
    workers: list[list[int]] = field(default_factory=list)

    def pids(self) -> list[int]:
        return sorted({self.proc.pid, *(p for group in self.workers for p in group)})


@contextmanager
def running_service(
    root: Path, url: str, processes: int = 1, settings: dict[str, str] | None = None
) -> Iterator[Service]:
    """`python -m service serve` from `root` on a free port, with `settings` in its environment, until the
    block ends (SIGTERM, then wait)."""
    address = f"127.0.0.1:{free_port()}"
    env = service_env(root, url, address, PROCESSES=str(processes), **(settings or {}))
    proc = subprocess.Popen([python_of(root), "-m", "service", "serve"], cwd=root, env=env)
    try:
        with grpc.insecure_channel(address) as ch:
            grpc.channel_ready_future(ch).result(timeout=90)
        service = Service(proc, address)
        if processes > 1:
            service.workers = [[c, *descendants(c)] for c in _listening_children(proc.pid, address, processes)]
        else:
            service.workers = [[proc.pid, *descendants(proc.pid)]]
        yield service
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _listening_children(parent: int, address: str, count: int) -> list[int]:
    """The parent's `count` children once each listens on the address (the first to listen makes the port
    answer, the others may still be starting)."""
    port = f"{int(address.rsplit(':', 1)[1]):04X}"
    for _ in range(600):
        listening = set()
        tables = (
            Path("/proc/net/tcp").read_text().splitlines()[1:] + Path("/proc/net/tcp6").read_text().splitlines()[1:]
        )
        for line in tables:  # gRPC may listen on an IPv6 socket with the IPv4-mapped address
            cols = line.split()
            if cols[1].endswith(":" + port) and cols[3] == "0A":
                listening.add(f"socket:[{cols[9]}]")
        children = [p for p in descendants(parent) if (_stat(p) or ["", ""])[1] == str(parent)]
        serving = [c for c in children if listening & _fds(c)]
        if len(serving) >= count:
            return serving
        time.sleep(0.1)
    raise RuntimeError(f"{count} serving processes did not all listen on {address}")


def _fds(pid: int) -> set[str]:
    try:
        return {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        return set()


def migrate(root: Path, url: str) -> None:
    """The tree's own migrations, through its CLI."""
    env = service_env(root, url, "127.0.0.1:0")
    subprocess.run([python_of(root), "-m", "service", "migrate"], cwd=root, env=env, check=True)
