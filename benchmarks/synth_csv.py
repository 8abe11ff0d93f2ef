"""Vectorized CSV text: each field is a byte matrix (one left-aligned row per line) plus lengths.

Millions of truth rows (a SYN flood has one flow per packet) are formatted
without a Python loop per row: numbers become digit matrices, fields are placed
side by side at per-row offsets, and the lines are cut out with one mask.
"""

from __future__ import annotations

import socket

import numpy as np
from numpy.typing import NDArray

Field = tuple[NDArray[np.uint8], NDArray[np.int64]]  # (n, width) bytes, (n,) lengths
POW10 = np.array([10**k for k in range(19)], dtype=np.int64)


def integers(v: NDArray[np.int64]) -> Field:
    """Decimal text of non-negative integers."""
    v = np.asarray(v, dtype=np.int64)
    ndig = np.maximum(1, np.searchsorted(POW10, v, side="right"))
    width = int(ndig.max(initial=1))
    place = ndig[:, None] - 1 - np.arange(width)[None, :]  # power of ten of each column
    digits = (v[:, None] // POW10[np.clip(place, 0, 18)]) % 10
    m = np.where(place >= 0, digits + ord("0"), 0).astype(np.uint8)
    return m, ndig.astype(np.int64)


def labels(codes: NDArray[np.int64], names: list[str]) -> Field:
    """Text of category ``codes`` from ``names``."""
    table = np.array([n.encode() for n in names], dtype="S")
    lens = np.array([len(n) for n in names], dtype=np.int64)
    m = table[codes].view(np.uint8).reshape(len(codes), table.itemsize)
    return m, lens[codes]


def join(fields: list[Field], sep: bytes, end: bytes = b"") -> Field:
    """Fields side by side with ``sep`` between them (and ``end`` after), as one field.

    Each field is written at its full width, left to right: the zero padding of
    one field is overwritten by the separator and the next field.
    """
    n = len(fields[0][1])
    width = sum(m.shape[1] for m, _ in fields) + len(sep) * (len(fields) - 1) + len(end)
    out = np.zeros((n, max(width, 1)), np.uint8)
    flat = out.reshape(-1)
    at = np.arange(n, dtype=np.int64) * out.shape[1]
    for i, (m, lens) in enumerate(fields):
        glue = sep if i else b""
        for k, byte in enumerate(glue):
            flat[at + k] = byte
        at = at + len(glue)
        flat[at[:, None] + np.arange(m.shape[1])[None, :]] = m
        at = at + lens
    for k, byte in enumerate(end):
        flat[at + k] = byte
    return out, at + len(end) - np.arange(n, dtype=np.int64) * out.shape[1]


def lines(fields: list[Field], sep: bytes = b",") -> bytes:
    """CSV lines (ending in a newline) of ``fields`` side by side."""
    m, lens = join(fields, sep, b"\n")
    keep = np.arange(m.shape[1])[None, :] < lens[:, None]
    return m[keep].tobytes()


def addresses(v6: NDArray[np.bool_], hi: NDArray[np.uint64], lo: NDArray[np.uint64]) -> Field:
    """IPv4 dotted quads (vectorized) and IPv6 text (RFC 5952, per IPv6 row: a minority)."""
    n = len(v6)
    octets = [
        integers(((lo >> np.uint64(s)) & np.uint64(0xFF)).astype(np.int64)) for s in (24, 16, 8, 0)
    ]
    m4, l4 = join(octets, b".")
    out = np.zeros((n, max(m4.shape[1], 39 if v6.any() else 0)), np.uint8)
    out[:, : m4.shape[1]] = m4
    lens = l4.copy()
    i6 = np.flatnonzero(v6)
    if len(i6):
        packed = np.stack([hi[i6], lo[i6]], axis=1).astype(">u8").tobytes()
        text = [
            socket.inet_ntop(socket.AF_INET6, packed[16 * k : 16 * k + 16]).encode()
            for k in range(len(i6))
        ]
        t = np.array(text, dtype="S39")
        out[i6] = t.view(np.uint8).reshape(len(i6), 39)
        lens[i6] = np.char.str_len(t)
    return out, lens
