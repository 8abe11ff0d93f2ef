#!/usr/bin/env python3
"""read_packets against tshark, frame by frame, on any folder of captures.

    .venv/bin/python tests/conformance/tshark_more.py DIR [DIR ...]

Not a test run in CI (it needs tshark and captures beyond ../shared/corpus, e.g. the
~540 of nDPI's ``tests/cfgs/default/pcap``): a wider check than test_tshark_packets.py.
Every file under DIR that starts like a capture (pcap or pcapng magic) is dissected
by tshark with the corpus's fields (packets.tsv.gz's columns, the corpus README) into
a temporary folder, and tshark_packets.py compares the outer headers. Prints each
capture that differs, with the reason of every differing frame
(tshark_packets.explain: "unexplained" is a finding), and the agreement in all.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

from tshark_packets import compare_trace

from tracker.sources._pcap import PCAP_MAGICS
from tracker.sources.files import PCAPNG_MAGIC

# The columns of the corpus's packets.tsv.gz, in its order.
TSHARK_FIELDS = [
    "frame.number", "frame.time_epoch", "frame.len", "frame.cap_len", "frame.protocols",
    "vlan.id", "ip.src", "ip.dst", "ip.proto", "ip.len", "ip.flags.mf", "ip.frag_offset",
    "ipv6.src", "ipv6.dst", "ipv6.nxt", "ipv6.plen", "tcp.srcport", "tcp.dstport",
    "tcp.flags", "tcp.len", "tcp.stream", "udp.srcport", "udp.dstport", "udp.length",
    "udp.stream", "icmp.type", "icmp.code", "icmpv6.type", "icmpv6.code"]


def _kind(head: bytes) -> str | None:
    """"pcap" or "pcapng" by the file's first bytes (the readers' magics), else None."""
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    if len(head) == 4 and any(struct.unpack(order + "I", head)[0] in PCAP_MAGICS
                              for order in "<>"):
        return "pcap"
    return None


def captures(folders: list[Path]) -> list[tuple[Path, str]]:
    """(file, "pcap" or "pcapng") of every capture under the folders, sorted."""
    found = []
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            with path.open("rb") as f:
                kind = _kind(f.read(4))
            if kind is not None:
                found.append((path, kind))
    return found


def dissected(capture: Path, kind: str, into: Path) -> Path | None:
    """A corpus-style folder in ``into``: the capture as trace.<kind> (a link to it) and
    tshark's fields; None when tshark reads nothing of it (no header line: a file it
    refuses, such as a link type it does not know in a pcapng block)."""
    into.mkdir(parents=True)
    trace = into / f"trace.{kind}"
    trace.symlink_to(capture.resolve())
    fields = [arg for name in TSHARK_FIELDS for arg in ("-e", name)]
    done = subprocess.run(["tshark", "-n", "-r", str(trace), "-T", "fields", "-E", "header=y",
                           "-E", "separator=/t", *fields], capture_output=True, timeout=600,
                          check=False)  # a cut file ends tshark with an error: its frames count
    if not done.stdout:
        return None
    (into / "packets.tsv.gz").write_bytes(gzip.compress(done.stdout))
    return trace


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, metavar="DIR")
    args = parser.parse_args()
    if shutil.which("tshark") is None:
        print("tshark_more: tshark is not installed (apt-get install tshark)", file=sys.stderr)
        return 2
    total = bad = 0
    reasons: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        found = captures(args.folders)
        for n, (capture, kind) in enumerate(found):
            trace = dissected(capture, kind, Path(tmp) / str(n))
            if trace is None:
                print(f"{capture}: tshark read nothing; not compared")
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # truncated or NaT files warn by design
                result = compare_trace(trace)
            total += result.compared
            bad += result.mismatched
            reasons.update(result.reasons.values())
            if result.mismatches or not result.rows_equal:
                rows = "" if result.rows_equal else f", {result.frames} rows: tshark has another count"
                print(f"{capture}: {result.ip_frames} IP frames{rows} "
                      f"{dict(Counter(result.reasons.values()))} {result.mismatches}")
    print(f"{len(found)} captures; fields compared: {total}, equal: {total - bad} "
          f"({100 * (total - bad) / max(total, 1):.3f} %); frames by reason: {dict(reasons)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
