"""Port classes and port-based service names (tracker/services.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from tracker.services import parse_services, port_class, service_names, service_table


def test_port_class_edges_follow_rfc_6335() -> None:
    ports = np.array([0, 1023, 1024, 49151, 49152, 65535, -1, 65536])
    assert port_class(ports).tolist() == [
        "well_known", "well_known", "registered", "registered", "dynamic", "dynamic", "", ""]


def test_port_class_accepts_any_integer_dtype() -> None:
    assert port_class(np.array([80], np.uint16)).tolist() == ["well_known"]
    assert port_class(np.array([], np.int32)).tolist() == []


def test_bundled_names_are_iana_names() -> None:
    table = service_table(None)  # bundled table only
    proto = np.array([6, 17, 6, 17, 6, 6, 17, 17])
    port = np.array([443, 443, 22, 53, 143, 8080, 4789, 162])
    assert service_names(proto, port, services=table).tolist() == [
        "https", "https", "ssh", "domain", "imap", "http-alt", "vxlan", "snmptrap"]


def test_bundled_table_wins_and_system_fills_the_rest(tmp_path: Path) -> None:
    system = tmp_path / "services"
    system.write_text("imap2 143/tcp imap\nmyapp 7777/tcp # ours\nmyapp 7777/udp\n")
    table = service_table(system)
    names = service_names(np.array([6, 6, 17, 6]), np.array([143, 7777, 7777, 7778]),
                          services=table)
    assert names.tolist() == ["imap", "myapp", "myapp", ""]


def test_missing_system_database_leaves_the_bundled_table(tmp_path: Path) -> None:
    table = service_table(tmp_path / "absent")
    assert table[(6, 80)] == "http"
    assert (6, 7777) not in table


def test_unknown_numeric_and_portless_rows() -> None:
    proto = np.array([6, 6, 1, 58, 17, 6])
    port = np.array([80, 50123, 8, 128, -1, 80])
    assert service_names(proto, port).tolist() == ["http", "", "", "", "", "http"]
    assert service_names(proto, port, numeric=True).tolist() == ["80", "50123", "", "", "", "80"]
    assert service_names(np.array([], np.int16), np.array([], np.int32)).tolist() == []


class CountingTable(Mapping[tuple[int, int], str]):
    """A table that counts lookups, to see that only distinct pairs are looked up."""

    def __init__(self) -> None:
        self.calls = 0

    def __getitem__(self, key: tuple[int, int]) -> str:
        self.calls += 1
        return {(6, 80): "http", (17, 53): "domain"}[key]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(6, 80), (17, 53)])

    def __len__(self) -> int:
        return 2


def test_only_distinct_pairs_are_looked_up() -> None:
    rng = np.random.default_rng(0)
    pick = rng.integers(0, 3, 10_000)
    proto = np.array([6, 17, 6])[pick]
    port = np.array([80, 53, 9999])[pick]
    table = CountingTable()
    names = service_names(proto, port, services=table)
    assert table.calls == 3
    assert (names[pick == 0] == "http").all() and (names[pick == 2] == "").all()


def test_parse_services_first_entry_wins_and_bad_lines_are_skipped() -> None:
    text = """# comment only
ftp 21/tcp
fsp 21/udp fspd
other 21/tcp  # a second name for 21/tcp: ignored, as getservbyport does
ddp-thing 4/ddp
broken
bad 70000/tcp
sctp-x 9899/sctp
"""
    assert parse_services(text) == {(6, 21): "ftp", (17, 21): "fsp", (132, 9899): "sctp-x"}
