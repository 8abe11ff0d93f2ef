"""Record walkers: the one sequential step of reading a capture file.

A walker steps from record to record through one chunk of the file (a
``uint8`` array), fills preallocated ``int64`` arrays with where each frame
is and what its header says, and stops at the first record it cannot finish:
one that runs past the end of the chunk, one that Python must parse (a pcapng
section or interface block), or a broken one. It returns how many frames it
found, where it stopped, and why (a status code below).

The walkers are plain Python in the subset numba compiles, with no calls to
helpers, so that the same source runs two ways (see :func:`walkers`):
compiled by numba with ``cache=True`` for real files, or interpreted for tiny
inputs, where importing numba and loading its cache (about 0.4 s here) would
cost far more than the walk itself. Integer reads are spelled out byte by
byte because the byte order is only known at run time.

Timestamps stay as their two raw 32-bit halves (``hi``, ``lo``); turning them
into nanoseconds is vectorized numpy in :mod:`tracker.sources.files`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracker import jit

# Why a walker stopped. `extra` in the returned tuple depends on the status.
NEED_MORE = 0  # the record at pos runs past `end`; extra = bytes it needs from pos
FULL = 1  # the output arrays are full; call again with new ones
BLOCK = 2  # pcapng section header or interface block at pos: Python parses it
LINK_CHANGE = 3  # pcapng: the next packet's interface has another link type
BAD_LENGTH = 4  # pcapng block total length < 12, not a multiple of 4, or too short
BAD_TRAILER = 5  # pcapng trailing block length differs; extra = the trailing value
BAD_INTERFACE = 6  # pcapng packet names an interface with no IDB; extra = its id
BAD_CAPLEN = 7  # pcapng captured length runs past the block; extra = caplen
TOO_BIG = 8  # record or block longer than MAX_RECORD; extra = its claimed length

# Project limit on one record: far above libpcap's MAXIMUM_SNAPLEN
# (262144, pcap-int.h) yet small enough that one bad length cannot make us
# allocate gigabytes.
MAX_RECORD = 256 << 20
# pcapng block types (draft-ietf-opsawg-pcapng sections 4.1-4.3, 4.6, appendix A).
SHB_TYPE = 0x0A0D0D0A
IDB_TYPE = 1
PB_TYPE = 2  # obsolete Packet Block (appendix A)
SPB_TYPE = 3
EPB_TYPE = 6
# Fixed part of an EPB or obsolete PB: 8 header + 20 fields + 4 trailer bytes.
EPB_MIN = 32
# SPB: 8 header + 4 original length + 4 trailer bytes.
SPB_OVERHEAD = 16
# Byte weights. Multiplying (not shifting) keeps numba's integers int64: a
# shifted uint8 becomes uint64, and uint64 mixed with int64 becomes float64.
B1, B2, B3 = 1 << 8, 1 << 16, 1 << 24
# How classic pcap stores (incl_len, orig_len), libpcap sf-pcap.c: files of
# version 2.2 and older (and DG/UX's 543.0) have them swapped; in 2.3 they are
# swapped only where incl_len > orig_len.
LENGTHS_IN_ORDER, LENGTHS_SWAPPED, LENGTHS_MAYBE_SWAPPED = 0, 1, 2
# Marks a frame without a timestamp (SPB) in `hi`; a real `hi` is a uint32.
NO_TS = -1


def walk_pcap(
    buf: Any,
    pos: int,
    end: int,
    big: bool,
    hdr_len: int,
    swap: int,
    start: Any,
    caplen: Any,
    wire: Any,
    hi: Any,
    lo: Any,
) -> tuple[int, int, int, int]:
    """Walk classic pcap records (draft-ietf-opsawg-pcap section 5).

    A record header is ts_sec, ts_frac, incl_len, orig_len (uint32 each),
    plus 8 more bytes in the "modified" (Kuznetzov) format, ``hdr_len`` 24.
    ``swap`` is one of the LENGTHS_* modes. Fills start (frame offset in
    ``buf``), caplen, wire, hi (ts_sec) and lo (ts_frac).
    Returns ``(n, pos, status, extra)``.
    """
    i0, i1, i2, i3 = (3, 2, 1, 0) if big else (0, 1, 2, 3)
    n = 0
    while n < start.shape[0]:
        if end - pos < hdr_len:
            return n, pos, NEED_MORE, hdr_len
        p = pos + 8
        incl = buf[p + i0] + buf[p + i1] * B1 + buf[p + i2] * B2 + buf[p + i3] * B3
        p = pos + 12
        orig = buf[p + i0] + buf[p + i1] * B1 + buf[p + i2] * B2 + buf[p + i3] * B3
        if swap == LENGTHS_SWAPPED or (swap == LENGTHS_MAYBE_SWAPPED and incl > orig):
            incl, orig = orig, incl
        if incl > MAX_RECORD:
            return n, pos, TOO_BIG, incl
        if end - pos < hdr_len + incl:
            return n, pos, NEED_MORE, hdr_len + incl
        p = pos
        hi[n] = buf[p + i0] + buf[p + i1] * B1 + buf[p + i2] * B2 + buf[p + i3] * B3
        p = pos + 4
        lo[n] = buf[p + i0] + buf[p + i1] * B1 + buf[p + i2] * B2 + buf[p + i3] * B3
        wire[n] = orig
        start[n] = pos + hdr_len
        caplen[n] = incl
        n += 1
        pos += hdr_len + incl
    return n, pos, FULL, 0


def walk_pcapng(
    buf: Any,
    pos: int,
    end: int,
    big: bool,
    if_link: Any,
    if_snap: Any,
    link: int,
    start: Any,
    caplen: Any,
    wire: Any,
    hi: Any,
    lo: Any,
    ifid: Any,
) -> tuple[int, int, int, int, int, int]:
    """Walk pcapng blocks (draft-ietf-opsawg-pcapng), keeping packet blocks.

    Enhanced (4.3), Simple (4.4) and obsolete (appendix A) Packet Blocks give
    frames; a section header or interface block stops the walk (BLOCK) so that
    Python can parse it; every other block is checked and skipped. Frames of
    one call share one link type: ``link`` is taken from the first frame when
    ``n == 0`` and a packet on another link type stops the walk (LINK_CHANGE).
    ``if_link``/``if_snap`` hold the link type and snaplen of each interface
    of the current section. Returns ``(n, pos, status, extra, blocks, link)``
    where ``blocks`` counts the blocks consumed.
    """
    i0, i1, i2, i3 = (3, 2, 1, 0) if big else (0, 1, 2, 3)
    j0, j1 = (1, 0) if big else (0, 1)
    n = 0
    blocks = 0
    while n < start.shape[0]:
        if end - pos < 12:
            return n, pos, NEED_MORE, 12, blocks, link
        p = pos
        btype = buf[p + i0] + buf[p + i1] * B1 + buf[p + i2] * B2 + buf[p + i3] * B3
        if btype == SHB_TYPE:  # a palindrome: valid before its byte order is known
            return n, pos, BLOCK, 0, blocks, link
        p = pos + 4
        blen = buf[p + i0] + buf[p + i1] * B1 + buf[p + i2] * B2 + buf[p + i3] * B3
        if blen < 12 or blen % 4 != 0:
            return n, pos, BAD_LENGTH, blen, blocks, link
        if blen > MAX_RECORD:
            return n, pos, TOO_BIG, blen, blocks, link
        if end - pos < blen:
            return n, pos, NEED_MORE, blen, blocks, link
        p = pos + blen - 4
        tail = buf[p + i0] + buf[p + i1] * B1 + buf[p + i2] * B2 + buf[p + i3] * B3
        if tail != blen:
            return n, pos, BAD_TRAILER, tail, blocks, link
        if btype == IDB_TYPE:
            return n, pos, BLOCK, 0, blocks, link
        if btype == EPB_TYPE or btype == PB_TYPE or btype == SPB_TYPE:
            p = pos + 8
            if btype == SPB_TYPE:
                iface = 0
                t_hi = NO_TS
                t_lo = 0
                orig = buf[p + i0] + buf[p + i1] * B1 + buf[p + i2] * B2 + buf[p + i3] * B3
                cap = min(orig, blen - SPB_OVERHEAD)
                data = pos + 12
            else:
                if blen < EPB_MIN:
                    return n, pos, BAD_LENGTH, blen, blocks, link
                if btype == EPB_TYPE:
                    iface = buf[p + i0] + buf[p + i1] * B1 + buf[p + i2] * B2 + buf[p + i3] * B3
                else:  # obsolete PB: 16-bit interface id, then a 16-bit drops count
                    iface = buf[p + j0] + buf[p + j1] * B1
                p = pos + 12
                t_hi = buf[p + i0] + buf[p + i1] * B1 + buf[p + i2] * B2 + buf[p + i3] * B3
                p = pos + 16
                t_lo = buf[p + i0] + buf[p + i1] * B1 + buf[p + i2] * B2 + buf[p + i3] * B3
                p = pos + 20
                cap = buf[p + i0] + buf[p + i1] * B1 + buf[p + i2] * B2 + buf[p + i3] * B3
                p = pos + 24
                orig = buf[p + i0] + buf[p + i1] * B1 + buf[p + i2] * B2 + buf[p + i3] * B3
                if cap > blen - EPB_MIN:
                    return n, pos, BAD_CAPLEN, cap, blocks, link
                data = pos + 28
            if iface >= if_link.shape[0]:
                return n, pos, BAD_INTERFACE, iface, blocks, link
            if btype == SPB_TYPE and if_snap[0] > 0:
                cap = min(cap, if_snap[0])  # SPB: captured = min(orig, snaplen), 4.4
            if n == 0:
                link = if_link[iface]
            elif if_link[iface] != link:
                return n, pos, LINK_CHANGE, 0, blocks, link
            start[n] = data
            caplen[n] = cap
            wire[n] = orig
            hi[n] = t_hi
            lo[n] = t_lo
            ifid[n] = iface
            n += 1
        blocks += 1
        pos += blen
    return n, pos, FULL, 0, blocks, link


_compiled: tuple[Callable[..., Any], Callable[..., Any]] | None = None


def walkers(nbytes: int) -> tuple[Callable[..., Any], Callable[..., Any], bool]:
    """Return ``(walk_pcap, walk_pcapng, compiled)`` fit for ``nbytes`` of input.

    Interpreted walkers take a ``memoryview`` of the chunk; compiled ones take
    the ``uint8`` array itself.
    """
    global _compiled
    # Below jit.SMALL_INPUT the interpreted walk (about 2.5 us per record here)
    # beats loading numba and its cache, unless numba is loaded already.
    if _compiled is None and (nbytes < jit.SMALL_INPUT or jit.interpreted()):
        return walk_pcap, walk_pcapng, False
    if _compiled is None:
        from numba import njit

        _compiled = (njit(cache=True)(walk_pcap), njit(cache=True)(walk_pcapng))
    return _compiled[0], _compiled[1], True
