"""Reading the tools' flow tables and checking them against the generator's truth.

Every table is reduced to one entry per canonical bidirectional 5-tuple (the two
sockets in sorted order), with packets and frame bytes per direction, summed
over the rows of that 5-tuple (a tool that splits a flow in two still agrees).
"""

from __future__ import annotations

import csv
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmp6": 58}
Key = tuple[int, str, int, str, int]


@dataclass
class Table:
    """Per-5-tuple counts: [a2b_pkts, a2b_bytes, b2a_pkts, b2a_bytes] and optional conn_state."""

    counts: dict[Key, list[int]]
    states: dict[Key, str]
    rows: int


@lru_cache(maxsize=1 << 20)
def _addr(text: str) -> str:
    return ipaddress.ip_address(text.strip()).compressed


def canonical(proto: str | int, a: str, ap: str | int, b: str, bp: str | int) -> tuple[Key, bool]:
    """The canonical key, and whether a and b were swapped to make it."""
    p = PROTO_NUMBERS.get(str(proto).lower(), None) if not str(proto).isdigit() else int(proto)
    sa, sb = (_addr(a), int(ap)), (_addr(b), int(bp))
    swap = sb < sa
    lo, hi = (sb, sa) if swap else (sa, sb)
    return (p if p is not None else -1, lo[0], lo[1], hi[0], hi[1]), swap


def build(
    rows: Iterable[dict[str, str]], cols: tuple[str, ...], state_col: str | None = None
) -> Table:
    """A Table from CSV rows; ``cols`` names proto, a, a_port, b, b_port, a2b pkts/bytes, b2a pkts/bytes."""
    counts: dict[Key, list[int]] = {}
    states: dict[Key, str] = {}
    n = 0
    for r in rows:
        n += 1
        key, swap = canonical(r[cols[0]], r[cols[1]], r[cols[2]], r[cols[3]], r[cols[4]])
        v = [int(float(r[c])) for c in cols[5:9]]
        if swap:
            v = v[2:] + v[:2]
        old = counts.get(key)
        counts[key] = v if old is None else [x + y for x, y in zip(old, v)]
        if state_col and state_col in r:
            states[key] = r[state_col]
    return Table(counts, states, n)


TRUTH_COLS = (
    "proto",
    "a_addr",
    "a_port",
    "b_addr",
    "b_port",
    "a2b_pkts",
    "a2b_bytes",
    "b2a_pkts",
    "b2a_bytes",
)
TRACKER_COLS = (
    "proto",
    "orig_addr",
    "orig_port",
    "resp_addr",
    "resp_port",
    "orig_pkts",
    "orig_wire_bytes",
    "resp_pkts",
    "resp_wire_bytes",
)


def read_table(
    path: Path, cols: tuple[str, ...] = TRUTH_COLS, state_col: str | None = "conn_state"
) -> Table:
    """Read a truth, peer or tracker CSV."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in cols if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: no column {', '.join(missing)}")
        return build(reader, cols, state_col)


def tshark_rounding(nbytes: int) -> int:
    """Bytes as tshark's conversation table shows them: whole kB from 10000 up (format_size)."""
    for unit in (1000**3, 1000**2, 1000):
        if nbytes // unit >= 10:
            return nbytes // unit * unit
    return nbytes


def agreement(truth: Table, got: Table, round_bytes: Callable[[int], int] | None = None) -> str:
    """'yes', or what differs: packets and bytes per direction of every truth flow."""
    rb = round_bytes or (lambda x: x)
    bad_pkts = bad_bytes = missing = 0
    for key, want in truth.counts.items():
        have = got.counts.get(key)
        if have is None:
            missing += 1
            continue
        bad_pkts += (have[0], have[2]) != (want[0], want[2])
        bad_bytes += (have[1], have[3]) != (rb(want[1]), rb(want[3]))
    extra = sum(1 for k in got.counts if k not in truth.counts)
    if not (bad_pkts or bad_bytes or missing or extra):
        verdict = "yes" + (" (bytes as rounded by tshark)" if round_bytes else "")
    else:
        parts = [
            f"{bad_pkts} pkts differ" if bad_pkts else "",
            f"{bad_bytes} bytes differ" if bad_bytes else "",
            f"{missing} missing" if missing else "",
            f"{extra} extra" if extra else "",
        ]
        verdict = f"NO: of {len(truth.counts)}, " + ", ".join(p for p in parts if p)
    if got.states:
        same = sum(1 for k, s in got.states.items() if truth.states.get(k) == s)
        verdict += f"; conn_state {same}/{len(truth.states)}"
    return verdict


def flows_found(t: Table) -> str:
    """Distinct 5-tuples, with the row count when the tool split some."""
    n = len(t.counts)
    return f"{n}" if t.rows == n else f"{n} ({t.rows} rows)"
