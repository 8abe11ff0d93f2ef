"""Byte-exact writers for the capture containers used by build.py.

We write the containers ourselves (not with Scapy's writers) so that every
byte is fixed: the magic, the snaplen, each record's lengths and timestamps,
pcapng options, and the deliberately broken last record of one capture.
Everything is little-endian, as a capture written on x86 would be.

Formats:
- pcap: https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcap/ (section 4:
  file header; section 5: packet record).
- pcapng: https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcapng/ (4.1 SHB,
  4.2 IDB with if_name (2) and if_tsresol (9), 4.3 EPB).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# pcap magic numbers (draft-ietf-opsawg-pcap section 4): the low bits say
# whether the fraction of a second counts microseconds or nanoseconds.
PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_VERSION = (2, 4)  # the only version in use since libpcap 0.4

# pcapng block types and option codes (draft-ietf-opsawg-pcapng 4.1-4.3).
SHB_TYPE = 0x0A0D0D0A
IDB_TYPE = 0x00000001
EPB_TYPE = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_ENDOFOPT = 0
OPT_IF_NAME = 2
OPT_IF_TSRESOL = 9


@dataclass(frozen=True)
class Record:
    """One captured frame: time, the captured bytes, and its length on the wire."""

    ts_ns: int
    data: bytes
    wire_len: int


@dataclass(frozen=True)
class Interface:
    """A pcapng interface: link type, name and timestamp resolution (10^-exp s)."""

    linktype: int
    name: str
    tsresol_exp: int


def pcap_bytes(records: list[Record], linktype: int, *, snaplen: int = 65535,
               nanosecond: bool = False) -> bytes:
    """A classic pcap file; frames longer than ``snaplen`` are cut to it."""
    magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
    # magic, version major/minor, thiszone, sigfigs, snaplen, network
    out = [struct.pack("<IHHiIII", magic, *PCAP_VERSION, 0, 0, snaplen, linktype)]
    unit = 1 if nanosecond else 1000
    for rec in records:
        sec, frac_ns = divmod(rec.ts_ns, 10**9)
        if frac_ns % unit:
            raise ValueError(f"timestamp {rec.ts_ns} does not fit a microsecond pcap")
        data = rec.data[:snaplen]
        out.append(struct.pack("<IIII", sec, frac_ns // unit, len(data), rec.wire_len))
        out.append(data)
    return b"".join(out)


def _pad4(data: bytes) -> bytes:
    """pcapng pads every variable field to a 32-bit boundary."""
    return data + b"\x00" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad4(value)


def _block(block_type: int, body: bytes) -> bytes:
    """Type, total length, body, total length again (draft section 3.1)."""
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def _shb() -> bytes:
    # byte-order magic, version 1.0, section length -1 (not given)
    return _block(SHB_TYPE, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1))


def _idb(iface: Interface, snaplen: int) -> bytes:
    opts = (_option(OPT_IF_NAME, iface.name.encode())
            + _option(OPT_IF_TSRESOL, bytes([iface.tsresol_exp]))
            + _option(OPT_ENDOFOPT, b""))
    return _block(IDB_TYPE, struct.pack("<HHI", iface.linktype, 0, snaplen) + opts)


def _epb(iface_id: int, units: int, rec: Record) -> bytes:
    head = struct.pack("<IIIII", iface_id, units >> 32, units & 0xFFFFFFFF,
                       len(rec.data), rec.wire_len)
    return _block(EPB_TYPE, head + _pad4(rec.data))


def pcapng_bytes(interfaces: list[Interface], packets: list[tuple[int, Record]],
                 *, snaplen: int = 65535) -> bytes:
    """One pcapng section: SHB, one IDB per interface, then (interface, record) EPBs."""
    out = [_shb()] + [_idb(iface, snaplen) for iface in interfaces]
    for iface_id, rec in packets:
        per_unit = 10 ** (9 - interfaces[iface_id].tsresol_exp)
        if rec.ts_ns % per_unit:
            raise ValueError(f"timestamp {rec.ts_ns} does not fit interface {iface_id}")
        out.append(_epb(iface_id, rec.ts_ns // per_unit, rec))
    return b"".join(out)
