"""The networks of ``--local``: which side of a flow is this host's (netstat, zeek export)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from tracker.errors import OptionError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str | Sequence[str] | None) -> list[Network]:
    """Networks from ``"10.0.0.0/8,fd00::/8"`` or a list of such strings."""
    if text is None:
        return []
    parts = text.split(",") if isinstance(text, str) else list(text)
    nets: list[Network] = []
    for part in (p.strip() for p in parts):
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise OptionError(f"--local {part!r}: expected a network such as 10.0.0.0/8 "
                              "or an address") from None
    return nets
