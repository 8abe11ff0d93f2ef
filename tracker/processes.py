"""The process behind each local socket, from the kernel's tables (as ``netstat -p``, ``ss -p``).

>>> owners = socket_owners()                                  # doctest: +SKIP
>>> owners.lookup("tcp", "10.0.0.1", 40000, "10.0.0.2", 80)   # doctest: +SKIP
'2412/curl'

psutil reads the socket tables of this network namespace (/proc/net/tcp,
udp and their IPv6 twins) and maps each socket's inode to the process that
holds it (/proc/PID/fd); that costs milliseconds to a second on a busy host,
so a live view calls it at most once per interval, never per packet. A
socket no process holds (TIME_WAIT) or that is gone has no owner: ``-``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NONE = "-"


def _addr(addr: str) -> str:
    """As the flows print it: no IPv6 zone id, IPv4-mapped IPv6 as plain IPv4."""
    addr = addr.split("%")[0]
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


def _key(proto: str, addr: str, port: int) -> tuple[str, str, int]:
    return proto, _addr(addr), int(port)


@dataclass
class SocketOwners:
    """``PID/program`` by connected socket pair, and by local socket for the others."""

    connected: dict[tuple[tuple[str, str, int], tuple[str, int]], str] = field(
        default_factory=dict)
    bound: dict[tuple[str, str, int], str] = field(default_factory=dict)

    def lookup(self, proto: str, laddr: str, lport: int, raddr: str, rport: int) -> str:
        """The owner of the local socket (laddr, lport) talking to (raddr, rport), or '-'."""
        local = _key(proto, laddr, lport)
        owner = self.connected.get((local, (_addr(raddr), int(rport))))
        if owner is None:
            owner = self.bound.get(local) or self.bound.get(_key(proto, _ANY[":" in laddr],
                                                                   lport))
        return owner or NONE


_ANY = {False: "0.0.0.0", True: "::"}


def socket_owners() -> SocketOwners:
    """A snapshot of who holds which TCP and UDP socket here (root sees every process)."""
    import psutil

    names: dict[int, str] = {}
    owners = SocketOwners()
    for c in psutil.net_connections(kind="inet"):
        if c.pid is None or not c.laddr:
            continue
        if c.pid not in names:
            try:
                names[c.pid] = psutil.Process(c.pid).name()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                names[c.pid] = "?"
        proto = "tcp" if c.type == 1 else "udp"  # SOCK_STREAM, else SOCK_DGRAM
        owner = f"{c.pid}/{names[c.pid]}"
        local = _key(proto, c.laddr.ip, c.laddr.port)
        if c.raddr:
            owners.connected[(local, (_addr(c.raddr.ip), int(c.raddr.port)))] = owner
        else:
            owners.bound.setdefault(local, owner)
    return owners
