"""Byte-exact pcap and pcapng builders for the reader tests, written from the specs.

Classic pcap: draft-ietf-opsawg-pcap sections 4-5. pcapng: draft-ietf-opsawg-pcapng
sections 3-4 and appendix A (obsolete Packet Block). Every helper takes ``big``
for the byte order, so a test can build either.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

MAGIC_US, MAGIC_NS, MAGIC_MODIFIED = 0xA1B2C3D4, 0xA1B23C4D, 0xA1B2CD34


def _e(big: bool) -> str:
    return ">" if big else "<"


def pcap(
    records: Iterable[tuple[int, int, bytes] | tuple[int, int, bytes, int]],
    *,
    magic: int = MAGIC_US,
    big: bool = False,
    linktype: int = 1,
    snaplen: int = 65535,
    version: tuple[int, int] = (2, 4),
    swapped_lengths: bool = False,
) -> bytes:
    """A classic pcap file; each record is (ts_sec, ts_frac, data[, wire_len])."""
    e = _e(big)
    out = [struct.pack(e + "IHHiIII", magic, version[0], version[1], 0, 0, snaplen, linktype)]
    for rec in records:
        sec, frac, data = rec[0], rec[1], rec[2]
        wire = rec[3] if len(rec) > 3 else len(data)  # type: ignore[misc]
        lens = (wire, len(data)) if swapped_lengths else (len(data), wire)
        out.append(struct.pack(e + "IIII", sec, frac, *lens))
        if magic == MAGIC_MODIFIED:  # ifindex, protocol, pkt_type, pad (libpcap sf-pcap.c)
            out.append(struct.pack(e + "iHBB", 0, 0, 0, 0))
        out.append(data)
    return b"".join(out)


def block(btype: int, body: bytes, *, big: bool = False) -> bytes:
    """Any pcapng block: type, total length, body padded to 32 bits, total length."""
    body = body + b"\x00" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(_e(big) + "II", btype, n) + body + struct.pack(_e(big) + "I", n)


def option(code: int, value: bytes, *, big: bool = False) -> bytes:
    """One option (3.5): code, length, value padded to 32 bits."""
    return struct.pack(_e(big) + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def shb(*, big: bool = False, major: int = 1) -> bytes:
    """Section Header Block (4.1) with an unknown section length (-1)."""
    body = struct.pack(_e(big) + "IHHq", 0x1A2B3C4D, major, 0, -1)
    return block(0x0A0D0D0A, body, big=big)


def idb(
    linktype: int,
    *,
    snaplen: int = 0,
    tsresol: int | None = None,
    tsoffset: int | None = None,
    big: bool = False,
) -> bytes:
    """Interface Description Block (4.2) with if_tsresol (9) and if_tsoffset (14)."""
    e = _e(big)
    opts = b""
    if tsresol is not None:
        opts += option(9, bytes([tsresol]), big=big)
    if tsoffset is not None:
        opts += option(14, struct.pack(e + "q", tsoffset), big=big)
    if opts:
        opts += option(0, b"", big=big)
    return block(1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts, big=big)


def epb(
    iface: int, ticks: int, data: bytes, *, wire: int | None = None, big: bool = False
) -> bytes:
    """Enhanced Packet Block (4.3): timestamp as 64-bit ticks split high/low."""
    e = _e(big)
    hdr = struct.pack(
        e + "IIIII",
        iface,
        ticks >> 32,
        ticks & 0xFFFFFFFF,
        len(data),
        len(data) if wire is None else wire,
    )
    return block(6, hdr + data, big=big)


def spb(data: bytes, *, wire: int | None = None, big: bool = False) -> bytes:
    """Simple Packet Block (4.4): original length then data, no timestamp."""
    return block(3, struct.pack(_e(big) + "I", len(data) if wire is None else wire) + data, big=big)


def pb(iface: int, ticks: int, data: bytes, *, wire: int | None = None, big: bool = False) -> bytes:
    """Obsolete Packet Block (appendix A): 16-bit interface id and drops count."""
    e = _e(big)
    hdr = struct.pack(
        e + "HHIIII",
        iface,
        0,
        ticks >> 32,
        ticks & 0xFFFFFFFF,
        len(data),
        len(data) if wire is None else wire,
    )
    return block(2, hdr + data, big=big)


def frame(i: int, size: int = 60) -> bytes:
    """A recognisable frame body: its index repeated, then a counter."""
    head = struct.pack(">I", i) * 4
    return (head + bytes(range(256)) * (size // 256 + 1))[:size]


def concat(parts: Sequence[bytes]) -> bytes:
    return b"".join(parts)
