"""Socket-pair flows with Zeek's connection states: ``FlowTable`` and its ``FlowOptions``.

>>> from tracker.flows import FlowTable, FlowOptions
>>> FlowTable(FlowOptions(max_open_flows=100_000)).open_flows
0

The table emulates Zeek 9.1 packet by packet: originator choice and flips,
TCP endpoint states, history, sequence-space byte counts, timers and
connection reuse; on the corpus baselines every conn.log row matches
(tests/conformance/test_zeek.py). docs/flow-record.md says what a row means
and lists the few known differences from Zeek (section 8).

The package, from the outside in::

    table.py         FlowTable: update(packets, frames) per batch, expire(now), flush(reason);
                     pickles its open state only (carried into the next part of a capture)
    stitch.py        parts of a capture walked alone in parallel, then stitched in order
    options.py       FlowOptions: every knob, validated; Zeek's defaults and port sets
    fragments.py     IP fragments reassembled into one packet per datagram, as Zeek counts
    key.py           canonical socket-pair keys for a whole batch (numpy)
    packet_loop.py   the compiled per-packet loop: find or create the flow, count, dispatch
    tcp_session.py   the TCP session's state transitions (Zeek's TCPSessionAdapter)
    tcp_endpoint.py  one TCP endpoint: sequence numbers, sizes, its history letters
    gaps.py          content gaps (G/g, missed_bytes): each side's reassembly bookkeeping
    history.py       Zeek's history string: when a letter is written
    timers.py        Zeek's timers (inactivity, attempt, expire, delete), removal, LRU order
    store.py         the compiled hash table (key -> slot) and timer heap (ties: creation order)
    layout.py        column numbers of the state arrays that the compiled code shares
    records.py       FlowRecords: finished flows as numpy columns
    labels.py        the final state labels: conn_state, netstat and conntrack states

Everything below table.py works on a few preallocated numpy arrays (layout.py),
compiled by numba through tracker/jit.py; Python runs once per batch, never
once per packet.
"""

from tracker.flows.options import FlowOptions
from tracker.flows.records import FlowRecords
from tracker.flows.table import FlowTable

__all__ = ["FlowOptions", "FlowRecords", "FlowTable"]
