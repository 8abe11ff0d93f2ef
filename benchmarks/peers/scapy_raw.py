"""Scapy's RawPcapReader with the headers parsed by hand with struct (no dissection)."""

from __future__ import annotations

import socket
import sys
import time
from struct import unpack_from

from _common import Counts, done, write
from scapy.utils import RawPcapReader

ETH_IPV4, ETH_IPV6, ETH_VLAN = 0x0800, 0x86DD, 0x8100


def main(path: str, out: str) -> None:
    start = time.perf_counter()
    counts = Counts()
    for data, meta in RawPcapReader(path):
        etype, off = unpack_from("!H", data, 12)[0], 14
        if etype == ETH_VLAN:
            etype, off = unpack_from("!H", data, 16)[0], 18
        if etype == ETH_IPV4:
            proto, src, dst = data[off + 9], data[off + 12 : off + 16], data[off + 16 : off + 20]
            l4 = off + (data[off] & 0x0F) * 4
        elif etype == ETH_IPV6:
            proto, src, dst, l4 = (
                data[off + 6],
                data[off + 8 : off + 24],
                data[off + 24 : off + 40],
                off + 40,
            )
        else:
            continue
        if proto in (6, 17) and len(data) >= l4 + 4:
            sport, dport = unpack_from("!HH", data, l4)
            counts.add(proto, src, sport, dst, dport, meta.wirelen)
    seconds = time.perf_counter() - start

    def text(a: bytes) -> str:
        return socket.inet_ntop(socket.AF_INET if len(a) == 4 else socket.AF_INET6, a)

    write(out, counts.rows(text))
    done(seconds)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
