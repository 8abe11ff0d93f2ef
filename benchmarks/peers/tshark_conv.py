"""tshark's conversation tables: ``tshark -n -r F -q -z conv,tcp -z conv,udp``.

tshark prints bytes rounded to kB from 10000 bytes up ("37 kB"); the harness
compares bytes after rounding the truth the same way.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

from _common import done, write

LINE = re.compile(
    r"^(\S+):(\d+)\s+<->\s+(\S+):(\d+)\s+(\d+) (\d+) (bytes|kB|MB|GB)\s+(\d+) (\d+) (bytes|kB|MB|GB)"
)
UNIT = {"bytes": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


def main(path: str, out: str) -> None:
    start = time.perf_counter()
    res = subprocess.run(
        ["tshark", "-n", "-r", path, "-q", "-z", "conv,tcp", "-z", "conv,udp"],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - start
    rows, proto = [], 0
    for line in res.stdout.splitlines():
        if line.startswith(("TCP Conversations", "UDP Conversations")):
            proto = 6 if line.startswith("TCP") else 17
        m = LINE.match(line)
        if m:
            a, ap, b, bp, b2a_p, b2a_b, u1, a2b_p, a2b_b, u2 = m.groups()
            # "<-" (first pair) is B to A, "->" is A to B.
            rows.append(
                [proto, a, ap, b, bp, a2b_p, int(a2b_b) * UNIT[u2], b2a_p, int(b2a_b) * UNIT[u1]]
            )
    write(out, rows)
    done(seconds)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
