"""Socket-pair tracker: TCP/UDP socket pairs and their states, from the wire.

Read a capture (pcap, pcapng, gzip of either) into pandas::

    >>> import tracker
    >>> flows = tracker.read_flows("captures/tcp-port-reuse.pcap")    # doctest: +SKIP
    >>> tracker.column_values("conn_state")                          # doctest: +SKIP

Reading:
    read_flows(source, **options)    one row per flow (a connection on a socket pair)
    iter_flows(source, **options)    DataFrames of finished flows, as the capture is read
    read_packets(source, **options)  one row per frame, with the flow it belongs to
    read_flows_dask(files, **options)  read_flows' rows as a lazy dask.dataframe
    FlowOptions                      the flow table's options (timeouts, keys, caps)
    LiveCapture(iface, filter)       live flows from an interface (root): snapshot(), stop()

What the columns and values mean:
    describe_columns(table)          the documented columns of "flows" or "packets"
    column_values(column)            every value of conn_state, history, end_reason, ...

Views and summaries of a flows DataFrame:
    netstat_view(flows, local=..., numeric=...)   the flows as netstat prints sockets
    by_socket_pair, by_host, by_service, by_port_class, by_state, by_tunnel, top_talkers

Errors and warnings (tracker.errors draws the tree):
    TrackerError, CaptureError, NotACaptureError, CorruptCaptureError, OptionError,
    CaptureSourceError, ClusterError, MissingExtraError, TrackerWarning,
    TruncatedCaptureWarning, TimestampWarning

Heavy modules (pandas, numba) load on first use, so ``tracker --help`` starts
fast; ``dir(tracker)`` and ``help(tracker)`` list every public name.
"""

from __future__ import annotations

from typing import Any

from tracker.errors import (
    CaptureError,
    CaptureSourceError,
    ClusterError,
    CorruptCaptureError,
    MissingExtraError,
    NotACaptureError,
    OptionError,
    TimestampWarning,
    TrackerError,
    TrackerWarning,
    TruncatedCaptureWarning,
)

__version__ = "0.1.0"

_READING = ("read_flows", "iter_flows", "read_packets", "read_flows_dask")
_COLUMNS = ("describe_columns", "column_values")
_SUMMARIES = ("by_socket_pair", "by_host", "by_service", "by_port_class", "by_state",
              "by_tunnel", "top_talkers")

__all__ = [
    "CaptureError",
    "CaptureSourceError",
    "ClusterError",
    "CorruptCaptureError",
    "FlowOptions",
    "LiveCapture",
    "MissingExtraError",
    "NotACaptureError",
    "OptionError",
    "TimestampWarning",
    "TrackerError",
    "TrackerWarning",
    "TruncatedCaptureWarning",
    "__version__",
    "by_host",
    "by_port_class",
    "by_service",
    "by_socket_pair",
    "by_state",
    "by_tunnel",
    "column_values",
    "describe_columns",
    "iter_flows",
    "netstat_view",
    "read_flows",
    "read_flows_dask",
    "read_packets",
    "top_talkers",
]


def __getattr__(name: str) -> Any:
    # Lazy public API: importing tracker must not import pandas or numba.
    if name in _READING:
        from tracker import api as module
    elif name == "FlowOptions":
        from tracker.flows import options as module  # type: ignore[no-redef]
    elif name in _COLUMNS:
        from tracker.report import columns as module  # type: ignore[no-redef]
    elif name in _SUMMARIES:
        from tracker.report import summarize as module  # type: ignore[no-redef]
    elif name == "LiveCapture":
        from tracker import live as module  # type: ignore[no-redef]
    elif name == "netstat_view":
        from tracker.report import netstat as module  # type: ignore[no-redef]
    else:
        raise AttributeError(f"module 'tracker' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
