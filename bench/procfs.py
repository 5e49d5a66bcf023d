"""The service process as Linux's /proc shows it, for bench/soak.py and bench/serve.py:
which process serves a port, and its resident memory and CPU time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def serving_pid(pid: int, port: int) -> int:
    """The process holding the listening socket on `port`: `pid` itself or one of its
    descendants (a wrapper such as a shell or `uv run` must not be the one measured)."""
    inode = next(
        (
            fields[9]
            for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
            if (fields := line.split())[1].endswith(f":{port:04X}") and fields[3] == "0A"
        ),
        None,
    )
    todo = [pid]
    while inode is not None and todo:
        candidate = todo.pop()
        fds = Path(f"/proc/{candidate}/fd")
        if any(str(fd.readlink()) == f"socket:[{inode}]" for fd in fds.iterdir()):
            return candidate
        todo += [p for p in _pids() if _stat(p)[1:2] == [str(candidate)]]
    raise SystemExit(f"no process under PID {pid} is listening on port {port}")


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name: state, ppid, ... ([] if gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """User + system time of `pid` so far (0 if it is gone)."""
    fields = _stat(pid)  # utime and stime are fields 14 and 15 of the whole line
    if not fields:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """User + system time so far of `root` and every live process below it."""
    return sum(cpu_seconds(p) for p in _tree([root]))


def children(pid: int) -> list[int]:
    return [p for p in _pids() if _stat(p)[1:2] == [str(pid)]]


def _tree(roots: list[int]) -> set[int]:
    """`roots` and every process below them."""
    parents = {pid: _stat(pid)[1:2] for pid in _pids()}
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += [p for p, parent in parents.items() if parent == [str(pid)]]
    return found


def machine_busy() -> tuple[float, float]:
    """CPU seconds the machine's cores were busy (user, nice, system, irq, softirq) and
    stolen by the hypervisor, since boot."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    hz = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / hz, steal / hz


@dataclass
class Sample:
    at: float  # seconds into the run
    rss_mib: float  # the service's VmRSS
    service_cpu: float  # the service's user + system seconds so far
    ours_cpu: float  # the service, the load generator and PostgreSQL, seconds so far
    busy: float  # the machine's busy CPU seconds so far
    steal: float
    load_1m: float


class Sampler:
    """Samples the service process and, to tell other work on the machine apart, the
    CPU time of the bench's own processes (`helpers`: roots of process trees)."""

    def __init__(self, service: int, helpers: list[int]) -> None:
        self.service = service
        self.helpers = helpers

    def take(self, at: float) -> Sample:
        status = Path(f"/proc/{self.service}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line[:6] == "VmRSS:")
        ours = sum(cpu_seconds(p) for p in _tree([self.service, *self.helpers]))
        busy, steal = machine_busy()
        service = cpu_seconds(self.service)
        return Sample(at, rss / 1024, service, ours, busy, steal, os.getloadavg()[0])
