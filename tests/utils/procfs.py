"""Which process holds which socket, read from Linux's /proc: the worker processes of a
served port and the worker that accepted a given client connection."""

from __future__ import annotations

import socket
from pathlib import Path

LISTEN, ESTABLISHED = "0A", "01"


def _inodes(port: int, state: str, peer_port: int | None = None) -> set[str]:
    """Inodes of the IPv4 sockets bound to local `port` in `state` (and, if given,
    connected to `peer_port`)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        peer = peer_port is None or remote.endswith(f":{peer_port:04X}")
        if local.endswith(f":{port:04X}") and fields[3] == state and peer:
            found.add(fields[9])
    return found


def _holds(pid: int, inodes: set[str]) -> bool:
    try:
        links = [str(fd.readlink()) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:  # the process ended meanwhile
        return False
    return any(link[len("socket:[") : -1] in inodes for link in links if link.startswith("socket:"))


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def workers(pid: int, port: int) -> list[int]:
    """The child processes of `pid` that hold the socket listening on `port`."""
    listening = _inodes(port, LISTEN)
    return [child for child in children(pid) if _holds(child, listening)]


def accepted_by(pids: list[int], port: int, client: socket.socket) -> int | None:
    """Which of `pids` accepted the connection `client` made to `port` (None: none yet)."""
    mine = _inodes(port, ESTABLISHED, client.getsockname()[1])
    return next((pid for pid in pids if _holds(pid, mine)), None)
