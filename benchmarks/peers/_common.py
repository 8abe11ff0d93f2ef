"""What every peer script shares: per-5-tuple counting and the output format.

A peer script is run as ``python peers/NAME.py CAPTURE OUT.csv``. It writes one
row per flow (or per 5-tuple) with the columns of COLUMNS, the two sides in any
order (the harness puts them in canonical order), and prints one JSON line on
stdout: ``{"seconds": S}``, the time of its own work (imports excluded).
"""

from __future__ import annotations

import csv
import json
from typing import Any

COLUMNS = [
    "proto",
    "a_addr",
    "a_port",
    "b_addr",
    "b_port",
    "a2b_pkts",
    "a2b_bytes",
    "b2a_pkts",
    "b2a_bytes",
]


class Counts:
    """Packets and bytes per direction of each bidirectional 5-tuple."""

    def __init__(self) -> None:
        self.flows: dict[tuple[Any, ...], list[int]] = {}

    def add(self, proto: int, src: Any, sport: int, dst: Any, dport: int, nbytes: int) -> None:
        """Count one packet of ``nbytes`` frame bytes."""
        if (src, sport) <= (dst, dport):
            key, i = (proto, src, sport, dst, dport), 0
        else:
            key, i = (proto, dst, dport, src, sport), 2
        v = self.flows.get(key)
        if v is None:
            v = self.flows[key] = [0, 0, 0, 0]
        v[i] += 1
        v[i + 1] += nbytes

    def rows(self, addr: Any = str) -> list[list[Any]]:
        """Rows in COLUMNS order; ``addr`` turns a stored address into text."""
        return [[p, addr(a), ap, addr(b), bp, *v] for (p, a, ap, b, bp), v in self.flows.items()]


def write(path: str, rows: list[list[Any]], extra: list[str] | None = None) -> None:
    """Write rows (COLUMNS, then ``extra`` columns) as CSV."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS + (extra or []))
        w.writerows(rows)


def done(seconds: float, **more: Any) -> None:
    """Report the timed work to the harness."""
    print(json.dumps({"seconds": seconds, **more}), flush=True)
