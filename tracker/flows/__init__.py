"""Socket-pair flows with Zeek's connection states: ``FlowTable`` and its ``FlowOptions``.

>>> from tracker.flows import FlowTable, FlowOptions
>>> FlowTable(FlowOptions(max_open_flows=100_000)).open_flows
0

The table emulates Zeek 9.1 (ZEEK-FACTS.md) packet by packet: originator
choice and flips, TCP endpoint states, history, sequence-space byte counts,
timers and connection reuse; on the corpus baselines every conn.log row
matches (tests/conformance/test_zeek.py). Known differences, none of which a
corpus baseline exercises:

- history never has ``G`` (content gap): that needs Zeek's TCP reassembly;
- the NTP analyzer's role flip is not emulated (the DNS one is, from the QR bit);
- a UDP or ICMP packet cut by the snaplen is counted (Zeek leaves it out of
  pkts and ip_bytes), so counts stay right on short-snaplen captures;
- a bad IPv4 header checksum is treated as a bad transport checksum (Zeek
  drops such a packet before it reaches a connection);
- the 1 hour timeout of ``inactivity.zeek`` follows the ports only, not an
  SSH or FTP analyzer confirmation; ``max_timer_expires`` is not emulated;
- ``vlan_in_key`` uses the outer VLAN id only (Zeek's vlan_fivetuple uses both).
"""

from tracker.flows.options import FlowOptions
from tracker.flows.records import FlowRecords
from tracker.flows.table import FlowTable

__all__ = ["FlowOptions", "FlowRecords", "FlowTable"]
