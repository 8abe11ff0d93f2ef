"""The few payload bits the flow table needs, read for whole batches.

Zeek's DNS analyzer flips a connection whose first packet is a DNS response
(the QR bit set, RFC 1035 section 4.1.1), and its NTP analyzer one where the
originator speaks as a server or the responder as a client (the NTP mode,
RFC 5905 section 7.3). Those two are the only payload bits the flow table
looks at. The same pass marks the rows that may carry a tunnel (``tunnel_hint``):
IP-in-IP and GRE, UDP to or from a tunnel port, and UDP payloads whose first two
bytes could start Teredo or AYIYA (Zeek's payload detection); tunnels.py opens
only those.
"""

from __future__ import annotations

import numpy as np

from tracker.packets import PROTO_UDP, PacketBatch, Status

UDP_HEADER = 8  # RFC 768
DNS_HEADER = 12  # RFC 1035 4.1.1: id, flags, four counts
DNS_FLAGS_AT = 2  # the byte holding QR (its top bit), after the 16-bit id
NTP_HEADER = 48  # RFC 5905 7.3: the header without extensions or MAC
NTP_MODE = 0x07  # low 3 bits of the first byte (after leap indicator and version)


_TUNNEL_PORT = np.zeros(65536, np.bool_)
_TUNNEL_PORT[[4789, 6081, 2152, 2123, 3544, 5072, 4754]] = True  # udp_tunnels.TUNNEL_PORTS
_IP_TUNNEL = np.zeros(256, np.bool_)
_IP_TUNNEL[[4, 41, 47]] = True  # IP-in-IP (IPv4, IPv6) and GRE
TEREDO_FIRST = 0x6  # an IPv6 header's version nibble (or 0x00 0x00/0x01 headers)
AYIYA_SECOND, AYIYA_THIRD = 0x52, 0x11  # AYIYA.cc L75-78: the payload's bytes 1 and 2
TEREDO_IPV6, TEREDO_PREFIX = 40, 0x20  # an IPv6 header; the first byte of 2001::/32


def udp_payload_bits(data: np.ndarray, pb: PacketBatch, frame_end: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(DNS QR bit, NTP mode, tunnel hint): the QR bit and mode of OK UDP payloads long
    enough for a DNS header (12 bytes) and an NTP header (48), -1 elsewhere (int8 each),
    and whether a row may carry a tunnel (module docstring), in one pass over the rows.

    Read only where the frame holds the byte; fragments and cut frames get -1.
    """
    qr = np.full(len(pb), -1, dtype=np.int8)
    mode = np.full(len(pb), -1, dtype=np.int8)
    ok_row = pb.status == Status.OK
    hint = ok_row & _IP_TUNNEL[pb.proto.astype(np.uint8)]  # -1 (no protocol) is 255
    udp = (pb.proto == PROTO_UDP) & ok_row & (pb.src_port >= 0)
    rows = np.flatnonzero(udp)
    if rows.size == 0:
        return qr, mode, hint
    first = pb.l4_offset[rows] + UDP_HEADER
    end = frame_end[rows]
    b0 = np.where(first < end, data[np.minimum(first, end - 1)], -1)
    b1 = np.where(first + 1 < end, data[np.minimum(first + 1, end - 1)], -1)
    hint[rows] = _TUNNEL_PORT[pb.src_port[rows]] | _TUNNEL_PORT[pb.dst_port[rows]]
    # Payload detection (udp_tunnels.teredo_detect, ayiya_detect), narrowed with a byte or
    # two more on the few rows whose first bytes could fit, so that DNS ids rarely pass.
    may = np.flatnonzero((b0 >> 4 == TEREDO_FIRST) | ((b0 == 0) & (b1 >= 0) & (b1 <= 1))
                         | (b1 == AYIYA_SECOND))
    if may.size:
        hint[rows[may]] |= _detectable(data, first[may], end[may], b0[may], b1[may])
    payload = pb.payload_len[rows]
    dns = payload >= DNS_HEADER
    at = first + DNS_FLAGS_AT
    ok = dns & (at < end)
    qr[rows[ok]] = data[at[ok]] >> 7
    ntp = (payload >= NTP_HEADER) & (b0 >= 0)
    mode[rows[ntp]] = b0[ntp] & NTP_MODE
    return qr, mode, hint


def _byte(data: np.ndarray, pos: np.ndarray, end: np.ndarray) -> np.ndarray:
    return np.where(pos < end, data[np.minimum(pos, end - 1)], -1)


def _detectable(data: np.ndarray, first: np.ndarray, end: np.ndarray, b0: np.ndarray,
                b1: np.ndarray) -> np.ndarray:
    """Payloads that may pass Zeek's Teredo or AYIYA detection: an IPv6 header (40 bytes)
    with a 2001:: source or destination, or Teredo's origin/authentication headers; or
    AYIYA's 0x52 0x11 as bytes 1 and 2."""
    ipv6_room = end - first >= TEREDO_IPV6
    teredo = ipv6_room & (b0 >> 4 == TEREDO_FIRST) & (
        (_byte(data, first + 8, end) == TEREDO_PREFIX) | (_byte(data, first + 24, end)
                                                          == TEREDO_PREFIX))
    headers = ipv6_room & (b0 == 0) & (b1 >= 0) & (b1 <= 1)
    ayiya = (b1 == AYIYA_SECOND) & (_byte(data, first + 2, end) == AYIYA_THIRD)
    return teredo | headers | ayiya
