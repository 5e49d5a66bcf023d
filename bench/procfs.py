"""The service process as Linux's /proc shows it, for bench/soak.py: which process
serves a port, and its resident memory and CPU time."""

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


@dataclass
class Sample:
    at: float  # seconds into the run
    rss_mib: float
    cpu_s: float  # the service's user + system time so far
    load_1m: float


def sample(pid: int, at: float) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line[:6] == "VmRSS:")
    fields = _stat(pid)  # utime and stime are fields 14 and 15 of the whole line
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return Sample(at, rss_kib / 1024, cpu, os.getloadavg()[0])
