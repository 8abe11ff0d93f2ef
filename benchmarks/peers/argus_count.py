"""Argus: ``argus -r F -w OUT.argus``, then ``racluster`` merges each flow's status records.

Argus runs with the Debian package's /etc/argus.conf (bidirectional flows on the
classic 5-tuple, status records every 5 s); racluster prints one line per flow.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time

from _common import done, write

FIELDS = ["proto", "saddr", "sport", "daddr", "dport", "spkts", "sbytes", "dpkts", "dbytes"]


def main(path: str, out: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        records = os.path.join(tmp, "flows.argus")
        start = time.perf_counter()
        subprocess.run(["argus", "-r", path, "-w", records], check=True, capture_output=True)
        argus_seconds = time.perf_counter() - start
        res = subprocess.run(
            ["racluster", "-r", records, "-n", "-c", ",", "-s", *FIELDS],
            check=True,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
    rows = []
    for r in csv.reader(res.stdout.splitlines()[1:]):
        if r and r[0] in ("tcp", "udp"):
            rows.append([6 if r[0] == "tcp" else 17, *r[1:]])
    write(out, rows)
    done(seconds, argus_seconds=argus_seconds)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
