"""Addresses from (hi, lo) uint64 halves to the strings Python's ipaddress prints.

Only unique addresses are formatted (a capture has thousands of addresses and
millions of packets), and the result is a pandas Categorical, so no Python
string is made per row.
"""

from __future__ import annotations

import ipaddress

import numpy as np
import pandas as pd

_V4_MAPPED_HI = 0
_V4_MAPPED_LO_PREFIX = 0x0000FFFF_00000000


def format_address(hi: int, lo: int) -> str:
    """One address as ipaddress prints it; IPv4-mapped addresses print as IPv4.

    >>> format_address(0, 0x0000FFFF_C0A80105)
    '192.168.1.5'
    """
    if hi == _V4_MAPPED_HI and (lo >> 32) == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def address_categorical(hi: np.ndarray, lo: np.ndarray, present: np.ndarray) -> pd.Categorical:
    """A Categorical of address strings; rows where ``present`` is False are missing."""
    pairs = np.empty(len(hi), dtype=[("hi", np.uint64), ("lo", np.uint64)])
    pairs["hi"], pairs["lo"] = hi, lo
    uniq, codes = np.unique(pairs[present], return_inverse=True)
    names = [format_address(int(h), int(lo_)) for h, lo_ in zip(uniq["hi"], uniq["lo"])]
    all_codes = np.full(len(hi), -1, dtype=np.int64)
    all_codes[present] = codes
    # Distinct (hi, lo) pairs always give distinct strings, so categories are unique.
    return pd.Categorical.from_codes(all_codes, categories=pd.Index(names, dtype=object))
