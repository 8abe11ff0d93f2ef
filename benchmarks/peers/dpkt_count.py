"""dpkt: its pcap Reader and Ethernet/IP/TCP/UDP classes.

dpkt's Reader does not expose a record's original length, so frame bytes are
taken from the IP length: 14 + IP length, padded to the 60-byte Ethernet minimum.
"""

from __future__ import annotations

import socket
import sys
import time

import dpkt
from _common import Counts, done, write


def main(path: str, out: str) -> None:
    start = time.perf_counter()
    counts = Counts()
    skipped = 0
    with open(path, "rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            try:
                ip = dpkt.ethernet.Ethernet(buf).data
            except dpkt.dpkt.UnpackError:
                skipped += 1
                continue
            if isinstance(ip, dpkt.ip.IP):
                ip_len = ip.len
            elif isinstance(ip, dpkt.ip6.IP6):
                ip_len = ip.plen + 40
            else:
                continue
            l4 = ip.data
            if isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)):
                proto = 6 if isinstance(l4, dpkt.tcp.TCP) else 17
                counts.add(proto, ip.src, l4.sport, ip.dst, l4.dport, max(60, 14 + ip_len))
    seconds = time.perf_counter() - start

    def text(a: bytes) -> str:
        return socket.inet_ntop(socket.AF_INET if len(a) == 4 else socket.AF_INET6, a)

    write(out, counts.rows(text))
    done(seconds, skipped=skipped)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
