"""pcapng sections, interfaces and time units (draft-ietf-opsawg-pcapng).

The packet blocks are walked by :func:`tracker.sources._walk.walk_pcapng`;
this module parses the rare blocks the walker hands back (section headers,
which may switch the byte order, and interface descriptions, which carry the
link type, snaplen, ``if_tsresol`` and ``if_tsoffset``) and turns each
packet's 64-bit tick count into int64 nanoseconds, exactly, with numpy.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from tracker.frames import NAT_NS, NS_PER_S, FrameBatch
from tracker.sources import _walk
from tracker.sources.base import BlockError, Chunk

# Byte-order magic of a section header, as it reads in each byte order (4.1).
BOM_LITTLE = b"\x4d\x3c\x2b\x1a"
BOM_BIG = b"\x1a\x2b\x3c\x4d"
SHB_MIN_LEN = 28  # 4.1: type, length, magic, versions, section length, length
IDB_MIN_LEN = 20  # 4.2: type, length, link type, reserved, snaplen, length
OPT_ENDOFOPT, OPT_TSRESOL, OPT_TSOFFSET = 0, 9, 14  # 3.5 and 4.2
DEFAULT_TSRESOL = 6  # 4.2: microseconds when if_tsresol is absent
LIM = (1 << 63) - 1  # largest int64; NAT_NS is -LIM - 1
MUL, DIV, SHIFT, ZERO = range(4)


@dataclass(frozen=True)
class Resolution:
    """How one interface's ticks become ns: ``ticks * 10**9 / units + offset``.

    kind MUL: ns = ticks * val; DIV: ns = ticks // val; SHIFT: ticks * 10**9
    >> val; ZERO: units finer than 10**-27 s, ns = 0. ``offset_ns`` is None
    when if_tsoffset itself does not fit int64 nanoseconds.
    """

    kind: int
    val: int
    offset_ns: int | None


def resolution(tsresol: int, tsoffset: int) -> Resolution:
    """Decode if_tsresol (high bit set: 2**-k s, else 10**-k s) and if_tsoffset (s)."""
    if tsresol & 0x80:
        kind, val = SHIFT, tsresol & 0x7F
    elif tsresol <= 9:
        kind, val = MUL, 10 ** (9 - tsresol)
    elif tsresol <= 27:  # 10**18 still fits int64
        kind, val = DIV, 10 ** (tsresol - 9)
    else:
        kind, val = ZERO, 0
    off = tsoffset * NS_PER_S
    return Resolution(kind, val, off if -LIM <= off <= LIM else None)


def _scaled(hi: np.ndarray, lo: np.ndarray, r: Resolution) -> tuple[np.ndarray, np.ndarray]:
    """floor(ticks * 10**9 / units) for ticks = hi * 2**32 + lo, and where it fits int64."""
    ok = np.ones(hi.shape, bool)
    if r.kind == MUL:
        ticks = (hi << 32) | lo
        ok = (hi < 1 << 31) & (ticks <= LIM // r.val)
        return ticks * r.val, ok
    if r.kind == DIV:  # split off the low bit so that ticks // 2 fits int64
        half = (hi << 31) | (lo >> 1)
        return 2 * (half // r.val) + (2 * (half % r.val) + (lo & 1)) // r.val, ok
    if r.kind == ZERO:
        return np.zeros_like(hi), ok
    a, b = hi * NS_PER_S, lo * NS_PER_S  # both < 2**62
    if r.val >= 32:  # floor((a * 2**32 + b) / 2**k) = (a + b >> 32) >> (k - 32)
        s = r.val - 32
        return ((a + (b >> 32)) >> s) if s < 63 else np.zeros_like(hi), ok
    m, c = 32 - r.val, b >> r.val  # = a << m + c
    ok = a <= (LIM - c) >> m
    return (a << m) + c, ok


def ticks_to_ns(hi: np.ndarray, lo: np.ndarray, r: Resolution) -> tuple[np.ndarray, int]:
    """Nanoseconds of each tick count, NAT_NS where it does not fit or is absent.

    ``hi`` is ``_walk.NO_TS`` for a Simple Packet Block (no timestamp). Returns
    the times and how many got NaT because they do not fit int64 ns.
    """
    ns, ok = _scaled(hi, lo, r)
    off = r.offset_ns
    if off is None:
        ok[:] = False
    elif off > 0:
        ok &= ns <= LIM - off
        ns += off
    elif off < 0:
        ok &= ns >= -LIM - off
        ns += off
    absent = hi == _walk.NO_TS
    bad = ~ok & ~absent
    ns[~ok | absent] = NAT_NS
    return ns, int(bad.sum())


class PcapngWalk:
    """Reader state of a pcapng stream: byte order and the section's interfaces."""

    format = "pcapng"
    nanosecond = None  # each interface has its own resolution
    header_len = 0  # the first section header goes through parse_block

    def __init__(self) -> None:
        self.big = False
        self.blocks = 0  # blocks consumed so far
        self.nat = 0  # timestamps that became NaT
        self.linktypes: set[int] = set()
        self._new_section()

    def _new_section(self) -> None:
        # The section's interfaces, in arrays that double when full: a file of
        # many interface blocks must not copy all earlier ones per block.
        self._n_if = 0
        self._if_link = np.empty(8, np.int64)
        self._if_snap = np.empty(8, np.int64)
        self._if_res = np.empty(8, np.int64)  # index into self._res of each interface
        self._res: list[Resolution] = []  # distinct resolutions of the section
        self._res_code: dict[Resolution, int] = {}

    def step(self, ch: Chunk, first: int) -> tuple[FrameBatch | None, int, int]:
        """Walk from ``ch.pos``; return (batch or None, status, extra)."""
        _, walk, compiled = _walk.walkers(ch.end - ch.pos)
        out = np.empty((6, (ch.end - ch.pos) // 64 + 16), np.int64)
        buf = ch.buf if compiled else ch.buf.data
        n, pos, status, extra, blocks, link = walk(
            buf, ch.pos, ch.end, self.big, self._if_link[: self._n_if],
            self._if_snap[: self._n_if], -1, *out,
        )
        ch.pos = int(pos)
        self.blocks += int(blocks)
        if not n:
            return None, int(status), int(extra)
        start, caplen, wire, hi, lo, ifid = (a[:n] for a in out)
        ts = self._times(hi, lo, ifid)
        return (
            FrameBatch(ch.frozen(), start, caplen, wire, ts, int(link), first),
            int(status),
            int(extra),
        )

    def _times(self, hi: np.ndarray, lo: np.ndarray, ifid: np.ndarray) -> np.ndarray:
        """Convert ticks per interface resolution (one pass per resolution in the batch)."""
        if len(self._res) == 1:
            ns, bad = ticks_to_ns(hi, lo, self._res[0])
            self.nat += bad
            return ns
        codes = self._if_res[ifid]
        order = np.argsort(codes, kind="stable")  # one group per resolution, in linear time
        cuts = np.flatnonzero(np.diff(codes[order])) + 1
        ns = np.empty_like(hi)
        for rows in np.split(order, cuts):
            ns[rows], bad = ticks_to_ns(hi[rows], lo[rows], self._res[codes[rows[0]]])
            self.nat += bad
        return ns

    def parse_block(self, ch: Chunk) -> int:
        """Parse the SHB or IDB at ``ch.pos``; return bytes needed (0 when done)."""
        b = ch.buf[ch.pos : ch.end]
        if bytes(b[:4]) != _walk.SHB_TYPE.to_bytes(4, "big"):
            self._parse_idb(bytes(b[: self._u32(b, 4)]))
        elif len(b) < 16:
            return 16
        else:
            blen = self._parse_shb_start(bytes(b[:16]))
            if len(b) < blen:
                return blen
            if self._u32(b, blen - 4) != blen:
                raise BlockError(
                    f"trailing section header length {self._u32(b, blen - 4)} != {blen}"
                )
        ch.pos += self._u32(b, 4)
        self.blocks += 1
        return 0

    def _u32(self, b: np.ndarray, at: int) -> int:
        return int.from_bytes(bytes(b[at : at + 4]), "big" if self.big else "little")

    def _parse_shb_start(self, head: bytes) -> int:
        """Take the byte order of a new section; return its block length (4.1)."""
        if head[8:12] not in (BOM_LITTLE, BOM_BIG):
            raise BlockError(
                f"section header byte-order magic {head[8:12].hex()}, "
                "expected 1a2b3c4d in either byte order"
            )
        self.big = head[8:12] == BOM_BIG
        blen, major = struct.unpack_from(">IxxxxH" if self.big else "<IxxxxH", head, 4)
        if blen < SHB_MIN_LEN or blen % 4 or blen > _walk.MAX_RECORD:
            raise BlockError(
                f"section header length {blen}, expected a multiple of 4 from 28 to 256 MiB"
            )
        if major != 1:  # 4.1: a reader must not read a section of another major version
            raise BlockError(f"pcapng major version {major}, expected 1")
        self._new_section()
        return int(blen)

    def _parse_idb(self, b: bytes) -> None:
        """Add an interface: link type, snaplen and time options (4.2)."""
        order = ">" if self.big else "<"
        if len(b) < IDB_MIN_LEN:
            raise BlockError(f"interface description block of {len(b)} bytes, expected at least 20")
        link, _, snap = struct.unpack_from(order + "HHI", b, 8)
        tsresol, tsoffset = DEFAULT_TSRESOL, 0
        p = 16
        while p + 4 <= len(b) - 4:
            code, olen = struct.unpack_from(order + "HH", b, p)
            p += 4
            if code == OPT_ENDOFOPT or p + olen > len(b) - 4:
                break
            if code == OPT_TSRESOL and olen >= 1:
                tsresol = b[p]
            elif code == OPT_TSOFFSET and olen >= 8:
                (tsoffset,) = struct.unpack_from(order + "q", b, p)
            p += (olen + 3) & ~3  # options are padded to 32 bits (3.5)
        self._add_interface(link, snap, resolution(tsresol, tsoffset))
        self.linktypes.add(int(link))

    def _add_interface(self, link: int, snap: int, res: Resolution) -> None:
        n = self._n_if
        if n == len(self._if_link):  # full: double (amortized O(1) per interface)
            self._if_link, self._if_snap, self._if_res = (
                np.concatenate([a, np.empty_like(a)])
                for a in (self._if_link, self._if_snap, self._if_res)
            )
        code = self._res_code.setdefault(res, len(self._res))
        if code == len(self._res):
            self._res.append(res)
        self._if_link[n], self._if_snap[n], self._if_res[n] = link, snap, code
        self._n_if = n + 1

    def where(self, ch: Chunk, records: int) -> str:
        return f"block {self.blocks} at byte {ch.offset}"

    def corrupt(self, status: int, extra: int) -> str:
        """Say what is wrong with the block the walker stopped at."""
        if status == _walk.BAD_LENGTH:
            return (
                f"block total length {extra}, expected a multiple of 4 "
                "and at least 12 (32 for a packet block)"
            )
        if status == _walk.BAD_TRAILER:
            return f"trailing block total length {extra} differs from the leading one"
        if status == _walk.BAD_INTERFACE:
            n = self._n_if
            known = f"interfaces 0 to {n - 1}" if n else "no interface"
            return f"packet of interface {extra}, but the section describes {known}"
        if status == _walk.BAD_CAPLEN:
            return f"captured length {extra} runs past the end of its block"
        return f"block total length {extra} exceeds the {_walk.MAX_RECORD >> 20} MiB limit"

    def cut(self, ch: Chunk, need: int) -> str:
        """Explain a block cut by the end of the file."""
        what = "block header" if need <= 12 else f"block of {need} bytes"
        return f"the file ends {ch.end - ch.pos} bytes into a {what}"
