"""Service names and port classes of ports, for the flows table and netstat view.

The service is a guess from the responder's port number, the way netstat
and ``getservbyport`` name a port: it says which service usually listens
there, NOT what the packets carry (no payload is inspected). Port 443 is
"https" even when the flow is SSH tunnelled through it.

Names come from two tables, looked up for each distinct (protocol, port)
pair only:

1. the bundled table ``tracker/data/services`` (IANA names of about a hundred
   common ports), so those names are the same on every machine;
2. the system's services database (``/etc/services``, services(5)), the one
   netstat reads, for every other port.

A port found in neither has no name (""); a display such as the netstat
view prints its number instead, as netstat does.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np

SYSTEM_SERVICES = Path("/etc/services")  # services(5)
# Package data (pyproject.toml). Read beside this file rather than through the
# package-resources API, which fails on editable installs' namespace path hooks.
BUNDLED_SERVICES = Path(__file__).with_name("data") / "services"
# services(5) protocol names, as IP protocol numbers (IANA protocol numbers).
PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "dccp": 33, "sctp": 132}
# Port ranges of RFC 6335 section 6: System (well-known), User (registered),
# Dynamic and/or Private ports.
WELL_KNOWN_MAX = 1023
REGISTERED_MAX = 49151
PORT_MAX = 65535
PORT_CLASSES = np.array(["", "well_known", "registered", "dynamic"], dtype=object)


def port_class(port: np.ndarray) -> np.ndarray:
    """IANA range of each port (RFC 6335): well_known 0-1023, registered
    1024-49151, dynamic 49152-65535; "" for no port (negative) or out of range.

    >>> port_class(np.array([22, 8080, 51234, -1])).tolist()
    ['well_known', 'registered', 'dynamic', '']
    """
    p = np.asarray(port).astype(np.int64)
    index = 1 + (p > WELL_KNOWN_MAX) + (p > REGISTERED_MAX)
    return PORT_CLASSES[np.where((p < 0) | (p > PORT_MAX), 0, index)]


def service_names(
    proto: np.ndarray,
    port: np.ndarray,
    *,
    numeric: bool = False,
    services: Mapping[tuple[int, int], str] | None = None,
) -> np.ndarray:
    """Service name of each (IP protocol number, port), as an object array of str.

    ``numeric=True`` gives numbers only, like ``netstat -n``. A port with no
    name, and a row without a port (negative, or a protocol that has no ports
    such as ICMP), give "". ``services`` replaces the lookup
    table (default: ``service_table()``). This is a port-based guess, not a
    payload check (see the module docstring).

    >>> service_names(np.array([6, 17, 6, 1]), np.array([443, 53, 50123, 8])).tolist()
    ['https', 'domain', '', '']
    >>> service_names(np.array([6]), np.array([443]), numeric=True).tolist()
    ['443']
    """
    proto = np.asarray(proto).astype(np.int64)
    port = np.asarray(port).astype(np.int64)
    has_port = (port >= 0) & (port <= PORT_MAX) & np.isin(proto, list(PROTOCOL_NUMBERS.values()))
    out = np.full(len(port), "", dtype=object)
    if not has_port.any():
        return out
    uniq, inverse = np.unique(proto[has_port] * (PORT_MAX + 1) + port[has_port],
                              return_inverse=True)
    table = service_table() if services is None else services
    names = [_name(table, int(k) >> 16, int(k) & PORT_MAX, numeric) for k in uniq]
    out[has_port] = np.array(names, dtype=object)[inverse]
    return out


def _name(table: Mapping[tuple[int, int], str], proto: int, port: int, numeric: bool) -> str:
    return str(port) if numeric else table.get((proto, port), "")


@functools.cache
def service_table(system: Path | None = SYSTEM_SERVICES) -> Mapping[tuple[int, int], str]:
    """{(protocol number, port): name}: the bundled table over the system's.

    ``system=None`` leaves the system database out. Read once per path.
    """
    table = {} if system is None else _read_system(system)
    table.update(parse_services(BUNDLED_SERVICES.read_text("utf-8")))
    return MappingProxyType(table)


def _read_system(path: Path) -> dict[tuple[int, int], str]:
    """The system database; none when missing or unreadable (e.g. Windows)."""
    try:
        return parse_services(path.read_text("utf-8", errors="replace"))
    except OSError:
        return {}


def parse_services(text: str) -> dict[tuple[int, int], str]:
    """Parse services(5) text: ``name port/protocol [aliases] [# comment]``.

    The first entry of a (protocol, port) wins, as ``getservbyport`` returns
    it; malformed lines are skipped.

    >>> parse_services("http 80/tcp www # WorldWideWeb\\nbad line\\nwww 80/tcp")
    {(6, 80): 'http'}
    """
    table: dict[tuple[int, int], str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or "/" not in fields[1]:
            continue
        number, _, proto_name = fields[1].partition("/")
        proto = PROTOCOL_NUMBERS.get(proto_name.lower())
        if proto is None or not number.isdigit() or int(number) > PORT_MAX:
            continue
        table.setdefault((proto, int(number)), fields[0])
    return table
