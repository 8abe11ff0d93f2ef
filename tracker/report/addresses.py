"""Addresses from (hi, lo) uint64 halves to the strings Python's ipaddress prints.

Only unique addresses are formatted (a capture has thousands of addresses and
millions of packets), and rows hold codes into those names, so no Python
string is made per row.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

_V4_MAPPED_HI = 0
_V4_MAPPED_LO_PREFIX = 0x0000FFFF_00000000


def format_address(hi: int, lo: int) -> str:
    """One address as ipaddress prints it; IPv4-mapped addresses print as IPv4.

    IPv6 text comes from the C library's inet_ntop (0.5 us, ipaddress 5.6 us): the
    same RFC 5952 text (lowercase, the first longest run of two or more zero groups
    as '::'), except in ::/96, which inet_ntop prints as ::a.b.c.d; ipaddress does those.

    >>> format_address(0, 0x0000FFFF_C0A80105)
    '192.168.1.5'
    >>> format_address(0x20010DB8_00000000, 1), format_address(0, 0x0102_0304)
    ('2001:db8::1', '::102:304')
    """
    if hi == _V4_MAPPED_HI and (lo >> 32) == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    if hi == 0 and (lo >> 32) == 0:
        return str(ipaddress.IPv6Address(lo))
    return socket.inet_ntop(socket.AF_INET6, ((hi << 64) | lo).to_bytes(16, "big"))


_OCTETS = np.array([str(i) for i in range(256)])  # "0" .. "255"


def _ipv4_text(v4: np.ndarray) -> np.ndarray:
    """Dotted quads of uint32 values, built with numpy string ufuncs (no loop per address)."""
    text = _OCTETS[(v4 >> np.uint64(24)).astype(np.intp)]
    for shift in (16, 8, 0):
        octet = _OCTETS[((v4 >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.intp)]
        text = np.strings.add(np.strings.add(text, "."), octet)
    return text


def format_addresses(hi: np.ndarray, lo: np.ndarray) -> list[str]:
    """Many addresses as text, as ipaddress prints them: IPv4-mapped ones as dotted
    quads (vectorized), the others through format_address."""
    v4 = (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(0xFFFF))
    out = np.empty(len(hi), dtype=object)
    out[v4] = _ipv4_text(lo[v4] & np.uint64(0xFFFFFFFF))
    out[~v4] = [format_address(int(h), int(x)) for h, x in zip(hi[~v4], lo[~v4], strict=True)]
    return out.tolist()


class AddressBook:
    """Addresses numbered as they come, batch by batch (``codes``), and named once at
    the end (``categoricals``): a reader keeps 4 bytes per address and row, not the 16
    of the two halves."""

    def __init__(self) -> None:
        self._number: dict[tuple[int, int], int] = {}

    def codes(self, hi: np.ndarray, lo: np.ndarray, present: np.ndarray) -> np.ndarray:
        """int32 per row: the address's number (-1 where not ``present``)."""
        import pandas as pd

        out = np.full(len(hi), -1, dtype=np.int32)
        rows = np.flatnonzero(present)
        if len(rows):
            lo_codes, lo_uniq = pd.factorize(lo[rows], sort=False)
            hi_codes, hi_uniq = pd.factorize(hi[rows], sort=False)
            width = max(len(lo_uniq), 1)
            local, pairs = pd.factorize(hi_codes.astype(np.int64) * width + lo_codes)
            u_hi = np.asarray(hi_uniq, dtype=np.uint64)[pairs // width].tolist()
            u_lo = np.asarray(lo_uniq, dtype=np.uint64)[pairs % width].tolist()
            known = self._number
            numbers = np.array([known.setdefault(pair, len(known))  # a step per address
                                for pair in zip(u_hi, u_lo, strict=True)], dtype=np.int32)
            out[rows] = numbers[local]
        return out

    def categoricals(self, *codes: np.ndarray) -> list[pd.Categorical]:
        """Categoricals of address strings sharing one category list, numerically sorted
        (IPv4 at ::ffff:0:0/96), from ``codes``' arrays."""
        import pandas as pd

        pairs = np.array(list(self._number), dtype=np.uint64).reshape(-1, 2)
        order = np.lexsort((pairs[:, 1], pairs[:, 0]))
        rank = np.empty(len(order) + 1, dtype=np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        rank[-1] = -1  # code -1 (missing) indexes the last entry
        names = pd.Index(format_addresses(pairs[order, 0], pairs[order, 1]), dtype=object)
        return [pd.Categorical.from_codes(rank[c], categories=names) for c in codes]
