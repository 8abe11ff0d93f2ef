"""The flows table's column helpers: fast address text equals ipaddress's, factorize_rows."""

from __future__ import annotations

import ipaddress

import numpy as np

from tracker.report.addresses import format_addresses
from tracker.report.columns import FLOW_COLUMNS, describe
from tracker.report.flow_columns import coded_addresses, factorize_rows


def _halves(text: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(text)
    v = int(ip) if ip.version == 6 else (0xFFFF << 32) | int(ip)
    return v >> 64, v & (2**64 - 1)


def test_addresses_print_as_ipaddress_does() -> None:
    texts = ["0.0.0.0", "255.255.255.255", "10.0.0.1", "192.168.1.5", "::", "::1",
             "2001:db8::1", "fe80::217:f2ff:fed7:cf65", "2001:db8:0:1:0:0:0:1", "ff02::1:3",
             "::ffff:0:1"]
    hi, lo = (np.array(x, dtype=np.uint64) for x in zip(*map(_halves, texts), strict=True))
    expected = [str(ipaddress.ip_address(t)) for t in texts[:-1]]
    # ::ffff:0.0.0.1 is IPv4-mapped, so it prints as IPv4, like every IPv4 packet.
    assert format_addresses(hi, lo) == expected + ["0.0.0.1"]
    assert expected[8] == "2001:db8:0:1::1"
    # Coded, they are named in numeric IPv6 order (IPv4 as ::ffff:a.b.c.d), each once.
    coded = coded_addresses(hi, lo)
    assert coded.names == ["::", "::1", "0.0.0.0", "0.0.0.1", "10.0.0.1",
                           "192.168.1.5", "255.255.255.255", "2001:db8::1",
                           "2001:db8:0:1::1", "fe80::217:f2ff:fed7:cf65", "ff02::1:3"]
    assert [coded.names[c] for c in coded.codes] == expected + ["0.0.0.1"]


def test_ipv6_text_is_ipaddress_text_everywhere() -> None:
    """Random addresses rich in zero groups (every run length and place of '::'), and the
    ranges printed specially (::/96, IPv4-mapped): as ipaddress prints them."""
    rng = np.random.default_rng(5)
    groups = rng.choice([0, 0, 0, 1, 0xFFFF, 0xABC], size=(20_000, 8)).astype(np.uint64)
    groups[:, 7] = np.where(rng.random(20_000) < 0.5, groups[:, 7], rng.integers(0, 65536,
                                                                                20_000))
    groups[:50, :6] = 0  # ::/96, IPv4-compatible
    shifts = np.arange(3, -1, -1, dtype=np.uint64) * np.uint64(16)
    hi = (groups[:, :4] << shifts).sum(axis=1, dtype=np.uint64)
    lo = (groups[:, 4:] << shifts).sum(axis=1, dtype=np.uint64)
    got = format_addresses(hi, lo)
    for h, x, text in zip(hi.tolist(), lo.tolist(), got, strict=True):
        v = (h << 64) | x
        mapped = h == 0 and (x >> 32) == 0xFFFF
        expected = ipaddress.IPv4Address(x & 0xFFFFFFFF) if mapped else ipaddress.IPv6Address(v)
        assert text == str(expected), hex(v)


def test_factorize_rows() -> None:
    words = np.array([[2, 1], [1, 5], [2, 1], [1, 4]], dtype=np.uint64)
    first, codes = factorize_rows(words)
    assert words[first].tolist() == [[1, 4], [1, 5], [2, 1]]
    assert codes.tolist() == [2, 1, 2, 0]
    assert [len(x) for x in factorize_rows(np.zeros((0, 3), np.uint64))] == [0, 0]


def test_every_column_is_documented() -> None:
    text = describe(FLOW_COLUMNS)
    assert all(c.name in text and len(c.doc) > 20 for c in FLOW_COLUMNS)
    assert len({c.name for c in FLOW_COLUMNS}) == len(FLOW_COLUMNS) == 31
