"""Scapy's PcapReader: full dissection into one Python object per packet."""

from __future__ import annotations

import sys
import time

from _common import Counts, done, write
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.utils import PcapReader


def main(path: str, out: str) -> None:
    start = time.perf_counter()
    counts = Counts()
    with PcapReader(path) as reader:
        for pkt in reader:
            ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
            if ip is None:
                continue
            l4 = ip.payload
            if isinstance(l4, (TCP, UDP)):
                counts.add(
                    6 if isinstance(l4, TCP) else 17,
                    ip.src,
                    l4.sport,
                    ip.dst,
                    l4.dport,
                    pkt.wirelen,
                )
    seconds = time.perf_counter() - start
    write(out, counts.rows())
    done(seconds)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
