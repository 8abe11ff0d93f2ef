"""Vectorized header decoder: FrameBatch in, PacketBatch out, one row per frame.

Layers, one module each, one short function per header:

    link.py       link-layer header of each LINKTYPE_* (Ethernet, SLL, PPP, PPI, ...)
    encap.py      VLAN, MPLS, PPPoE, LLC/SNAP, PPP protocol, FabricPath: a bounded walk
    ip.py         IPv4, IPv6 and its extension header chain
    transport.py  TCP, UDP, ICMP/ICMPv6, other protocols
    payload.py    the few payload bits the flow table needs (the DNS QR bit)
    checksums.py  IPv4, TCP, UDP, ICMP checksums of whole batches (decode(..., checksums=True))
    plain.py      the common frames (Ethernet, IPv4/IPv6, TCP/UDP/ICMP, all sound) in one
                  compiled pass, before the layers take the rest
    _bytes.py     header tables as numpy dtypes, safe gathers, row helpers

Whatever the flow table needs from the raw bytes is a PacketBatch column made
here, so that the table works from the PacketBatch alone.

Every function of the layers works on whole arrays of frame positions; the
only Python loops are over header kinds and encapsulation depth. Where numba
compiles, plain.py decodes the plain frames first and the layers run on the
others only (the same columns either way; the tests compare them). A frame never raises:
what cannot be decoded gets a ``Status`` (see tracker/packets.py):

- TRUNCATED: the capture ends inside a header (TCP options and IPv4 options
  and IPv6 extension headers count: what follows them cannot be read). The
  fields whose bytes were captured are kept, the others are NONE.
- MALFORMED: a captured field is nonsense (IPv4 IHL < 5 or total length below
  the header, except 0 as written by TSO captures, whose payload is the rest of
  the frame (ip.py); an IPv6 payload length
  of 0, a jumbogram, unless nothing follows; TCP data offset < 5 or beyond the
  IP payload; UDP length < 8; an extension chain past the payload length or
  longer than 16; more than 8 VLAN tags or 16 MPLS labels). It wins over
  TRUNCATED. The fields read are kept (ip_len 0 stays 0).
- FRAGMENT: an IPv4 fragment (MF or an offset) or an IPv6 fragment header. The
  first fragment has its transport fields; a later one has none, and its
  payload_len is its whole IP payload (so the fragments' payload lengths add
  up to the datagram's). A transport header cut by the capture or nonsense in
  a first fragment still gives TRUNCATED or MALFORMED; one that the fragment
  simply does not hold whole does not.
- NOT_IP: ARP, LLDP, plain LLC, PPPoE discovery, PPP control protocols, MPLS
  over anything but IP (pseudowires with a control word included).
- UNSUPPORTED_LINK: a link type not listed in link.py, or PPI inside PPI.

An 802.11 A-MSDU (several packets in one frame) is decoded to its first packet and
marked with ``tunnel_hint``: the flow table's tunnel step adds the others as rows of the
frame (tunnels.py link_amsdu).

>>> from tracker.frames import FrameBatch
>>> eth_arp = bytes(12) + b"\\x08\\x06" + bytes(28)
>>> decode(FrameBatch.from_frames([eth_arp])).status.tolist()
[2]
"""

from __future__ import annotations

import numpy as np

from tracker.decode._bytes import ByteView, Cursor, Rows
from tracker.decode.checksums import verify_parts
from tracker.decode.encap import resolve
from tracker.decode.ip import ipv4, ipv6, tcp_without_length
from tracker.decode.link import WLAN_LINKS, link_header, wlan_amsdu
from tracker.decode.payload import udp_payload_bits
from tracker.decode.plain import decode_plain
from tracker.decode.transport import decode_transport
from tracker.frames import LINKTYPE_ETHERNET, FrameBatch
from tracker.jit import interpreted
from tracker.packets import (
    CHECKSUM_BAD,
    CHECKSUM_BAD_IP,
    CHECKSUM_GOOD,
    SCHEMA,
    PacketBatch,
)

__all__ = ["decode"]

# Frames decoded per pass: their bytes (a few MB) and the pass's temporary
# arrays stay in the CPU caches while the layers run over them; larger passes
# spill out of cache, smaller ones pay numpy's per-call cost more often.
CHUNK_FRAMES = 32768


def decode(batch: FrameBatch, *, checksums: bool = True, plain: bool = True) -> PacketBatch:
    """Decode the headers of every frame of ``batch``; one row per frame, in order.

    ``record`` is ``batch.first_record`` + the frame's index; ``ts_ns``,
    ``wire_len`` and ``caplen`` are copied. Never raises on frame contents.
    ``checksums=False`` skips verifying checksums (about as costly as the rest
    of decoding): the ``checksum`` column is then CHECKSUM_UNCHECKED, and a
    flow table that verifies checksums refuses the batch. ``plain=False`` decodes
    every frame with the vectorized layers, as without numba (for tests).
    """
    n = len(batch)
    out = _new_batch(batch)
    if n == 0:
        return out
    bv = ByteView(batch.data)
    # Positions are never negative and a frame is read only within the buffer,
    # whatever its start and caplen say.
    start = np.clip(np.asarray(batch.start, dtype=np.int64), 0, batch.data.size)
    end = np.clip(start + np.asarray(batch.caplen, np.int64), start, batch.data.size)
    rest: np.ndarray | None = None  # the rows left to the layers (None: all)
    if plain and batch.linktype == LINKTYPE_ETHERNET and not interpreted():
        rest = np.flatnonzero(~decode_plain(bv.main.buf, start, end, out))
    for lo in range(0, n if rest is None else rest.size, CHUNK_FRAMES):
        if rest is None:
            hi = min(lo + CHUNK_FRAMES, n)
            _decode_chunk(bv, start[lo:hi], end[lo:hi], batch.linktype, _rows(out, lo, hi))
        else:
            rows = rest[lo:lo + CHUNK_FRAMES]
            _decode_chunk(bv, start[rows], end[rows], batch.linktype, out, rows)
    _from_frame_bytes(batch, start, end, out, checksums)
    return out


def _from_frame_bytes(batch: FrameBatch, start: np.ndarray, end: np.ndarray,
                      out: PacketBatch, checksums: bool) -> None:
    """The columns that need the frame's bytes or its end, for the flow table."""
    has_ip = out.l3_offset >= 0
    out.ip_caplen[has_ip] = end[has_ip] - out.l3_offset[has_ip]
    out.dns_qr[:], out.ntp_mode[:], out.tunnel_hint[:] = udp_payload_bits(batch.data, out, end)
    if batch.linktype in WLAN_LINKS:  # an 802.11 A-MSDU's other packets: tunnels.py link_amsdu
        out.tunnel_hint |= wlan_amsdu(batch.data, start, end, batch.linktype)
    if checksums:
        # The IPv4 header is judged on every row, as Zeek drops a packet with a bad one
        # before anything else (fragments too). Transport checksums only on OK rows (and
        # UDP with a length field under 8, which Zeek delivers): a fragment's covers the
        # whole datagram, and a row that is not OK never reaches a flow as it is; the rows
        # not judged come back good (checksums.verify_parts).
        header, transport = verify_parts(batch, out)
        out.checksum[:] = np.select([~header, ~transport], [CHECKSUM_BAD_IP, CHECKSUM_BAD],
                                    CHECKSUM_GOOD)


_COPIED = ("record", "ts_ns", "wire_len", "caplen")


def _new_batch(batch: FrameBatch) -> PacketBatch:
    """The output: copied columns from ``batch``, every other column at NONE.

    Built here rather than with PacketBatch.empty so the copied columns are
    written once, not filled and then overwritten (memory bandwidth is most of
    the cost of a fresh batch).
    """
    n = len(batch)
    # Zero-valued columns come from np.zeros: pages the kernel maps lazily, never
    # written for columns most batches leave alone (the tunnel columns).
    columns = {name: np.zeros(n, dtype) if not none else np.full(n, none, dtype)
               for name, dtype, none in SCHEMA if name not in _COPIED}
    record = np.arange(batch.first_record, batch.first_record + n, dtype=np.int64)
    return PacketBatch(record=record, ts_ns=np.array(batch.ts_ns, np.int64),
                       wire_len=np.array(batch.wire_len, np.int64),
                       caplen=np.array(batch.caplen, np.int64), **columns)


def _rows(out: PacketBatch, lo: int, hi: int) -> PacketBatch:
    """A PacketBatch of views on rows lo..hi of ``out`` (writes go to ``out``)."""
    return PacketBatch(**{name: getattr(out, name)[lo:hi] for name, _, _ in SCHEMA})


def _decode_chunk(bv: ByteView, start: np.ndarray, end: np.ndarray, linktype: int,
                  out: PacketBatch, rows: Rows = slice(None)) -> None:
    """Decode one chunk of frames, layer by layer, into ``rows`` of ``out``."""
    frames = Cursor(rows, start, end)
    pos, code = link_header(bv, frames, linktype)
    at_v4, at_v6 = resolve(bv, Cursor(frames.rows, pos, end), code, out)
    if len(at_v4):
        decode_transport(bv, ipv4(bv, at_v4, out), out)
    if len(at_v6):
        segment = ipv6(bv, at_v6, out)
        decode_transport(bv, segment, out)
        tcp_without_length(segment, out)
