"""NFStream: its flow meter (C, via nDPI's reader) with DPI and statistics off.

Defaults otherwise (idle 120 s, active 1800 s, all cores); accounting_mode 0
counts frame bytes on the wire. A flow split by the active timeout gives
several rows; the harness sums rows of one 5-tuple.
"""

from __future__ import annotations

import sys
import time

from _common import done, write
from nfstream import NFStreamer


def main(path: str, out: str) -> None:
    start = time.perf_counter()
    streamer = NFStreamer(
        source=path, n_dissections=0, statistical_analysis=False, splt_analysis=0, accounting_mode=0
    )
    rows = [
        [
            f.protocol,
            f.src_ip,
            f.src_port,
            f.dst_ip,
            f.dst_port,
            f.src2dst_packets,
            f.src2dst_bytes,
            f.dst2src_packets,
            f.dst2src_bytes,
        ]
        for f in streamer
    ]
    seconds = time.perf_counter() - start
    write(out, [r for r in rows if r[0] in (6, 17)])
    done(seconds)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
