"""FlowOptions: every knob of the flow table, frozen and validated.

Times are given in seconds (floats are fine) and held as int64 nanoseconds.
Defaults are Zeek's (``scripts/base/init-bare.zeek`` at zeek/zeek@a13de64fbb),
so that the default flows match a
default ``zeek -r`` run.

>>> FlowOptions().tcp_inactivity_ns
300000000000
>>> FlowOptions(udp_inactivity=-1)
Traceback (most recent call last):
...
tracker.errors.OptionError: udp_inactivity must be a number of seconds from 0 to 1576800000 (50 years), got -1
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from tracker.errors import OptionError, unknown_option
from tracker.frames import NS_PER_S

# The likely_server_ports of a default (not bare) Zeek run: every port that the
# scripts loaded by default register with Analyzer::register_for_ports.
ZEEK_DEFAULT_TCP_PORTS: frozenset[int] = frozenset({
    21, 22, 25, 53, 79, 80, 81, 88, 135, 139, 143, 389, 443, 445, 465, 502, 514, 563, 585, 587,
    614, 631, 636, 989, 990, 992, 993, 995, 1080, 1434, 1883, 2811, 3128, 3268, 3306, 3389, 5222,
    5223, 5269, 5432, 6379, 6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000,
})
ZEEK_DEFAULT_UDP_PORTS: frozenset[int] = frozenset({
    53, 67, 88, 123, 137, 161, 162, 389, 443, 514, 1812, 2123, 2152, 3389, 3544, 4011, 4754, 4789,
    5060, 5072, 5353, 5355, 6081, 20000,
})

# The packet-protocol (tunnel) ports, registered even in bare mode (`zeek -b`).
ZEEK_TUNNEL_UDP_PORTS: frozenset[int] = frozenset({5072, 6081, 4754, 2152, 2123, 3544, 4789})

# Server ports registered by each base/protocols/<name> script.
ZEEK_SCRIPT_PORTS: dict[str, tuple[frozenset[int], frozenset[int]]] = {
    # name: (tcp ports, udp ports)
    "dce-rpc": (frozenset({135}), frozenset()),
    "dhcp": (frozenset(), frozenset({67, 4011})),
    "dnp3": (frozenset({20000}), frozenset({20000})),
    "dns": (frozenset({53}), frozenset({53, 137, 5353, 5355})),
    "finger": (frozenset({79}), frozenset()),
    "ftp": (frozenset({21, 2811}), frozenset()),
    "http": (frozenset({80, 81, 631, 1080, 3128, 8000, 8080, 8888}), frozenset()),
    "imap": (frozenset({143}), frozenset()),
    "irc": (frozenset({6666, 6667, 6668, 6669}), frozenset()),
    "krb": (frozenset({88}), frozenset({88})),
    "ldap": (frozenset({389, 3268}), frozenset({389})),
    "modbus": (frozenset({502}), frozenset()),
    "mqtt": (frozenset({1883}), frozenset()),
    "mysql": (frozenset({1434, 3306}), frozenset()),
    "ntp": (frozenset(), frozenset({123})),
    "postgresql": (frozenset({5432}), frozenset()),
    "quic": (frozenset(), frozenset({443})),
    "radius": (frozenset(), frozenset({1812})),
    "rdp": (frozenset({3389}), frozenset({3389})),
    "redis": (frozenset({6379}), frozenset()),
    "sip": (frozenset(), frozenset({5060})),
    "smb": (frozenset({139, 445}), frozenset()),
    "smtp": (frozenset({25, 587}), frozenset()),
    "snmp": (frozenset(), frozenset({161, 162})),
    "socks": (frozenset({1080}), frozenset()),
    "ssh": (frozenset({22}), frozenset()),
    "ssl": (frozenset({443, 465, 563, 585, 614, 636, 989, 990, 992, 993, 995, 5223}),
            frozenset({443})),
    "syslog": (frozenset({514}), frozenset({514})),
    "xmpp": (frozenset({5222, 5269}), frozenset()),
}

# scripts/base/protocols/conn/inactivity.zeek L27-41: 1 hour for these TCP services.
ZEEK_LONG_INACTIVITY_TCP_PORTS: frozenset[int] = frozenset({21, 22, 23, 513})


def bare_mode_ports(scripts: Iterable[str] = ()) -> tuple[frozenset[int], frozenset[int]]:
    """Zeek's likely-server ports for ``zeek -b`` with the given ``@load base/protocols/<x>``.

    >>> tcp, udp = bare_mode_ports(["http"])
    >>> 80 in tcp, 4789 in udp, 53 in udp
    (True, True, False)
    """
    tcp: set[int] = set()
    udp: set[int] = set(ZEEK_TUNNEL_UDP_PORTS)
    for name in scripts:
        if name not in ZEEK_SCRIPT_PORTS:
            raise OptionError(f"unknown Zeek protocol script {name!r}; "
                              f"known: {', '.join(sorted(ZEEK_SCRIPT_PORTS))}")
        t, u = ZEEK_SCRIPT_PORTS[name]
        tcp |= t
        udp |= u
    return frozenset(tcp), frozenset(udp)


# Longest time option: 50 years. Packet time plus a timeout then fits int64 ns
# (table.TS_MAX keeps packet times 2**61 ns below the int64 end).
MAX_SECONDS = 50 * 365 * 86400


def _seconds(name: str, value: float | None, *, allow_none: bool = False) -> int | None:
    """Seconds -> int64 ns, or OptionError naming the option and the value."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0 <= value <= MAX_SECONDS:  # type: ignore[operator,arg-type]
        raise OptionError(f"{name} must be a number of seconds from 0 to {MAX_SECONDS} "
                          f"(50 years), got {value!r}")
    return round(float(value) * NS_PER_S)  # type: ignore[arg-type]


def _ports(name: str, ports: Iterable[int]) -> frozenset[int]:
    out = frozenset(ports)
    bad = [p for p in out if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p <= 65535]
    if bad:
        raise OptionError(f"{name} must hold port numbers 0-65535, got {bad[0]!r}")
    return out


@dataclass(frozen=True, slots=True)
class FlowOptions:
    """Options of the flow table (keyword-only; seconds for times).

    Attributes:
        tcp_inactivity: idle timeout once a TCP endpoint left the handshake (Zeek 5 min).
        udp_inactivity: idle timeout of UDP flows and of TCP flows still in the
            handshake (Zeek 1 min; Zeek's TCP really starts with the UDP value).
        icmp_inactivity: idle timeout of ICMP flows (Zeek 1 min).
        other_inactivity: idle timeout of other IP protocols (Zeek 1 min).
        tcp_attempt_delay: a lone SYN is removed this long after it (Zeek 5 s).
        tcp_close_delay: a closed connection is removed this long after its last packet (5 s).
        tcp_syn_timeout: first check of Zeek's TCP expire timer, after creation (5 s).
        tcp_session_timer: period of Zeek's TCP expire checks (6 s).
        tcp_connection_linger: quiet time before an expire check may remove (5 s).
        long_inactivity: timeout for the TCP services in ``long_inactivity_ports`` (1 h).
        likely_server_tcp / likely_server_udp: ports that decide the originator of a
            flow that does not start with a bare SYN (Zeek's likely_server_ports).
        dns_ports: UDP responder ports where Zeek's DNS analyzer runs: a first message
            that is a response from the originator flips the roles (DNS.cc L86-92), and
            the flow ends sooner than its inactivity timeout (``dns_session_timeout``).
        dns_session_timeout: period of the DNS analyzer's expire check on a UDP flow
            with a ``dns_ports`` responder (Zeek's dns_session_timeout, 10 s; DNS.cc
            L2356, L2386-2397): the first check comes this long after the flow starts,
            and a check ends the flow when its last packet is at least this long minus
            1 s before, else the next check comes this long after it.
        ntp_ports: UDP responder ports where Zeek's NTP analyzer runs: a server-mode
            message from the originator, or a client-mode one from the responder,
            flips the roles once (ntp-analyzer.pac L141-150).
        vlan_in_key: put the outer VLAN id in the flow key (Zeek's vlan_fivetuple).
        decapsulate: the packets inside tunnels make flows, as in Zeek: inside IP-in-IP
            and GRE instead of the tunnel packets, inside VXLAN, Geneve, GTP, Teredo and
            AYIYA beside their outer UDP flow, and an 802.11 A-MSDU's packets each as a
            packet of the frame; False: the tunnel packets' flows only, no A-MSDU split.
        verify_checksums: drop and mark ('C') packets with a bad transport checksum.
        max_open_flows: cap on open flows; the least recently active is evicted.
        active_timeout: cut flows longer than this (None: never).
    """

    tcp_inactivity: float = 300.0
    udp_inactivity: float = 60.0
    icmp_inactivity: float = 60.0
    other_inactivity: float = 60.0
    tcp_attempt_delay: float = 5.0
    tcp_close_delay: float = 5.0
    tcp_syn_timeout: float = 5.0
    tcp_session_timer: float = 6.0
    tcp_connection_linger: float = 5.0
    long_inactivity: float = 3600.0
    long_inactivity_ports: frozenset[int] = ZEEK_LONG_INACTIVITY_TCP_PORTS
    likely_server_tcp: frozenset[int] = ZEEK_DEFAULT_TCP_PORTS
    likely_server_udp: frozenset[int] = ZEEK_DEFAULT_UDP_PORTS
    dns_ports: frozenset[int] = ZEEK_SCRIPT_PORTS["dns"][1]
    ntp_ports: frozenset[int] = ZEEK_SCRIPT_PORTS["ntp"][1]
    dns_session_timeout: float = 10.0
    vlan_in_key: bool = False
    decapsulate: bool = True
    verify_checksums: bool = False
    max_open_flows: int | None = None
    active_timeout: float | None = None
    _ns: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("tcp_inactivity", "udp_inactivity", "icmp_inactivity", "other_inactivity",
                     "tcp_attempt_delay", "tcp_close_delay", "tcp_syn_timeout",
                     "tcp_session_timer", "tcp_connection_linger", "long_inactivity",
                     "dns_session_timeout"):
            self._ns[name] = _seconds(name, getattr(self, name)) or 0
        if self._ns["tcp_session_timer"] == 0:  # Zeek re-arms its expire check this far ahead
            raise OptionError("tcp_session_timer must be > 0 seconds, got 0")
        active = _seconds("active_timeout", self.active_timeout, allow_none=True)
        if active == 0:
            raise OptionError("active_timeout must be > 0 seconds or None, got 0")
        self._ns["active_timeout"] = -1 if active is None else active
        for name in ("likely_server_tcp", "likely_server_udp", "long_inactivity_ports",
                     "dns_ports", "ntp_ports"):
            object.__setattr__(self, name, _ports(name, getattr(self, name)))
        for name in ("vlan_in_key", "verify_checksums", "decapsulate"):
            if not isinstance(getattr(self, name), bool):
                raise OptionError(f"{name} must be True or False, got {getattr(self, name)!r}")
        cap = self.max_open_flows
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
            raise OptionError(f"max_open_flows must be a positive integer or None, got {cap!r}")

    def ns(self, name: str) -> int:
        """A time option in int64 nanoseconds (-1 for an unset active_timeout)."""
        return self._ns[name]

    @property
    def tcp_inactivity_ns(self) -> int:
        return self._ns["tcp_inactivity"]

    @classmethod
    def from_keywords(cls, options: FlowOptions | None = None, where: str = "FlowOptions",
                      also: tuple[str, ...] = (), **kw: Any) -> FlowOptions:
        """``options`` as it is, or FlowOptions from keywords; a misspelled name is an OptionError.

        ``where`` names the caller in messages; ``also`` lists the caller's own
        keywords, offered with the options when a name is misspelled.

        >>> FlowOptions.from_keywords(tcp_inactivty=60)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        tracker.errors.OptionError: FlowOptions: unknown option 'tcp_inactivty' (did you mean 'tcp_inactivity'?); known: ...
        """
        known = {f.name for f in fields(cls) if not f.name.startswith("_")}
        for name in kw:
            if name not in known:
                raise unknown_option(name, known | set(also) | {"options"}, where)
        if options is not None and kw:
            raise OptionError(f"{where}: give either options=FlowOptions(...) or keyword "
                              "options, not both")
        if options is not None and not isinstance(options, FlowOptions):
            raise OptionError(f"{where}: options must be a FlowOptions, got {options!r}")
        return options if options is not None else cls(**kw)

    @classmethod
    def zeek_bare(cls, scripts: Iterable[str] = (), **kw: object) -> FlowOptions:
        """Options as ``zeek -b`` with ``@load base/protocols/<script>`` for each script.

        Bare mode has only the tunnel UDP ports plus those of the loaded scripts
        (the scripts that ``zeek -b`` loads are the only ones), which changes who is
        the originator.
        """
        tcp, udp = bare_mode_ports(scripts)
        dns = ZEEK_SCRIPT_PORTS["dns"][1] if "dns" in scripts else frozenset()
        ntp = ZEEK_SCRIPT_PORTS["ntp"][1] if "ntp" in scripts else frozenset()
        return cls(likely_server_tcp=tcp, likely_server_udp=udp, dns_ports=dns,
                   ntp_ports=ntp, **kw)  # type: ignore[arg-type]
