"""Classic pcap: one file header, then records (draft-ietf-opsawg-pcap).

The records are walked by :func:`tracker.sources._walk.walk_pcap`; this module
reads the file header and turns each record's time into int64 nanoseconds.
"""

from __future__ import annotations

import struct

import numpy as np

from tracker.frames import FrameBatch
from tracker.sources import _walk
from tracker.sources.base import BlockError, Chunk

# Classic pcap magics (draft-ietf-opsawg-pcap section 4; modified pcap from
# libpcap's sf-pcap.c): magic -> (nanosecond timestamps, record header length).
PCAP_MAGICS = {0xA1B2C3D4: (False, 16), 0xA1B23C4D: (True, 16), 0xA1B2CD34: (False, 24)}
PCAP_HEADER_LEN = 24  # draft-ietf-opsawg-pcap section 4
# libpcap's MAXIMUM_SNAPLEN (pcap-int.h): a cut record at end of file longer
# than this (and than the snaplen) is called corrupt rather than truncated.
LIBPCAP_MAX_SNAPLEN = 262144


class PcapWalk:
    """Classic pcap: one global header, then records (draft-ietf-opsawg-pcap)."""

    format = "pcap"
    header_len = PCAP_HEADER_LEN

    def __init__(self, header: bytes) -> None:
        for order, big in (("<", False), (">", True)):
            (magic,) = struct.unpack_from(order + "I", header)
            if magic in PCAP_MAGICS:
                break
        self.big = big
        self.nanosecond, self.hdr_len = PCAP_MAGICS[magic]
        major, minor = struct.unpack_from(order + "HH", header, 4)
        self.swap = _lengths_order(major, minor)
        self.snaplen, network = struct.unpack_from(order + "II", header, 16)
        self.linktype = network & 0xFFFF  # upper bits: FCS length and flags, section 4
        self.linktypes = {self.linktype}
        self.nat = 0  # classic pcap times always fit int64 ns

    def step(self, ch: Chunk, first: int) -> tuple[FrameBatch | None, int, int]:
        """Walk from ``ch.pos``; return (batch or None, status, extra)."""
        walk, _, compiled = _walk.walkers(ch.end - ch.pos)
        out = np.empty((5, (ch.end - ch.pos) // 64 + 16), np.int64)
        buf = ch.buf if compiled else ch.buf.data
        n, pos, status, extra = walk(buf, ch.pos, ch.end, self.big, self.hdr_len, self.swap, *out)
        ch.pos = int(pos)
        if not n:
            return None, int(status), int(extra)
        start, caplen, wire, hi, lo = (a[:n] for a in out)
        ts = pcap_ts_ns(hi, lo, self.nanosecond)
        batch = FrameBatch(ch.frozen(), start, caplen, wire, ts, self.linktype, first)
        return batch, int(status), int(extra)

    def parse_block(self, ch: Chunk) -> int:  # pragma: no cover - pcap has no blocks
        raise AssertionError("pcap walker never stops at a block")

    def where(self, ch: Chunk, records: int) -> str:
        return f"record {records} at byte {ch.offset}"

    def corrupt(self, status: int, extra: int) -> str:
        """Explain a walker failure (only TOO_BIG happens in pcap)."""
        limit = _walk.MAX_RECORD >> 20
        return f"captured length {extra} exceeds the {limit} MiB limit; expected a record header"

    def cut(self, ch: Chunk, need: int) -> str:
        """Explain a record cut by the end of file; raise if it is rather corrupt."""
        have = ch.end - ch.pos
        if have >= self.hdr_len and need - self.hdr_len > max(self.snaplen, LIBPCAP_MAX_SNAPLEN):
            raise BlockError(
                f"captured length {need - self.hdr_len} is more than the {have - self.hdr_len} "
                f"bytes left in the file and than the snaplen {self.snaplen}"
            )
        return f"the file ends {have} bytes into a record of {need} bytes"


def _lengths_order(major: int, minor: int) -> int:
    """Whether incl_len and orig_len are swapped, by file version (libpcap sf-pcap.c)."""
    if (major == 2 and minor < 3) or major == 543:
        return _walk.LENGTHS_SWAPPED
    if major == 2 and minor == 3:
        return _walk.LENGTHS_MAYBE_SWAPPED
    return _walk.LENGTHS_IN_ORDER


def pcap_ts_ns(sec: np.ndarray, frac: np.ndarray, nanosecond: bool) -> np.ndarray:
    """Turn pcap (ts_sec, ts_usec or ts_nsec), both uint32, into int64 ns in place.

    Never overflows: (2**32 - 1) * 10**9 + 2**32 * 1000 < 2**63.
    """
    sec *= 1_000_000_000
    sec += frac if nanosecond else frac * 1000
    return sec
