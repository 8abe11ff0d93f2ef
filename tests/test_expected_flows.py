"""read_flows on the project's own captures against the hand-written table in captures/README.md.

The "Expected flows" table was written by hand from the packets that
captures/build.py makes (see that README); here every row must come out of
read_flows exactly, and no other flow.
"""

from __future__ import annotations

import warnings
from collections import defaultdict

import pandas as pd
import pytest

import tracker
from tests.conftest import CAPTURES

COUNTS = ("orig_pkts", "orig_ip_bytes", "orig_wire_bytes", "resp_pkts", "resp_ip_bytes",
          "resp_wire_bytes", "orig_bytes", "resp_bytes")


def expected_rows() -> dict[str, list[dict[str, str]]]:
    """The README's 'Expected flows' table, rows grouped by file."""
    text = (CAPTURES / "README.md").read_text().split("## Expected flows", 1)[1]
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    for ln in lines[2:]:
        row = dict(zip(header, (c.strip() for c in ln.strip("|").split("|"))))
        rows[row["file"]].append(row)
    return rows


def _socket(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _actual(row: pd.Series) -> dict[str, str]:
    def dash(v: object) -> str:
        return "-" if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v)) or v == "" \
            else str(v)
    out = {"proto": str(row["proto"]), "orig": _socket(row["orig_addr"], row["orig_port"]),
           "resp": _socket(row["resp_addr"], row["resp_port"]), "vlan": dash(row["vlan"]),
           "conn_state": str(row["conn_state"]), "history": dash(row["history"]),
           "orig_state": dash(row["orig_state"]), "resp_state": dash(row["resp_state"])}
    out.update({c: dash(row[c]) for c in COUNTS})
    out["zero_duration"] = row["duration"] == pd.Timedelta(0)
    return out


EXPECTED = expected_rows()


def test_table_covers_every_capture() -> None:
    files = {p.name for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng", ".gz")}
    # office.pcap is the analysis notebook's mix: tests/test_office.py checks its flows.
    assert set(EXPECTED) == files - {"office.pcap"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_flows_match_hand_written_table(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the truncated capture warns by design
        df = tracker.read_flows(CAPTURES / name)
    got = sorted((_actual(r) for _, r in df.iterrows()), key=lambda d: (d["proto"], d["orig"]))
    want = [{k: v for k, v in r.items() if k != "file"} for r in EXPECTED[name]]
    want = sorted(want, key=lambda d: (d["proto"], d["orig"]))
    # Zeek leaves orig_bytes/resp_bytes unset ('-') when the duration is 0, and so do we;
    # the table gives the number underneath, so '-' is right exactly for zero-length flows.
    for g, w in zip(got, want):
        zero = g.pop("zero_duration")
        for c in ("orig_bytes", "resp_bytes"):
            if zero:
                assert g[c] == "-", f"{c} must be unset for a flow of duration 0"
                g[c] = w[c]
    assert got == want
