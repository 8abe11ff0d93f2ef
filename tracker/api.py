"""The public reading functions: ``read_flows``, ``read_packets``, ``iter_flows``,
``read_flows_dask``.

Each takes a source (a path, ``"-"`` for standard input, a binary file object
or a ``FrameSource``) and the flow table's options as keywords or as one
``options=FlowOptions(...)``; a misspelled option is an ``OptionError``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from tracker.decode.bpf import BpfFilter
from tracker.errors import OptionError
from tracker.flows import FlowOptions, FlowRecords
from tracker.pipeline import FlowRun, Source, iter_decoded, layered_rows
from tracker.report.flows import flows_dataframe
from tracker.report.packets import PacketRows
from tracker.report.summary import RunSummary


def read_flows(source: Source, *, filter: str | None = None, options: FlowOptions | None = None,
               jobs: int | None = None, scheduler: str | None = None, client: Any = None,
               **kw: Any) -> pd.DataFrame:
    """Read a capture and return one row per flow (one connection on a socket pair).

    ``source`` is a pcap or pcapng file (gzip too), ``"-"`` for standard input,
    a list of files read as one capture, or a binary file object. ``filter``
    is a tcpdump expression (``"tcp port 80"``): only the packets it keeps
    count. Options are ``FlowOptions`` fields as keywords (``tcp_inactivity=300``,
    ``vlan_in_key=True``, ``max_open_flows=100_000``, ...) or one
    ``options=FlowOptions(...)``. The columns are documented in
    ``tracker.describe_columns("flows")``; ``df.attrs["summary"]`` holds the
    run's counts as a plain dict (``RunSummary.as_dict``). No flows gives an
    empty frame with the same columns. ``jobs=N`` reads a list of files on a
    local Dask cluster of N worker processes, ``scheduler="tcp://HOST:PORT"`` on a
    running one, ``client=`` with a dask.distributed Client: the same rows, in the
    same order (tracker/cluster.py).

    Examples
    --------
    >>> df = read_flows("captures/tcp-handshake-fin.pcap")
    >>> df[["orig_addr", "orig_port", "resp_addr", "resp_port", "conn_state", "history"]]
          orig_addr  orig_port      resp_addr  resp_port conn_state   history
    0  192.0.2.10      49152  198.51.100.20         80         SF  ShADadFf
    >>> df.attrs["summary"]["frames"]
    11
    """
    options = FlowOptions.from_keywords(options, "read_flows()",
                                        ("filter", "jobs", "scheduler", "client"), **kw)
    if jobs is not None or scheduler is not None or client is not None:
        from tracker.cluster import ClusterRun

        paths = _capture_files(source, "read_flows(jobs=/scheduler=/client=)")
        cluster = ClusterRun(paths, options, jobs=jobs, scheduler=scheduler, client=client,
                             filter=filter)
        df = flows_dataframe(FlowRecords.concat(list(cluster.finished())))
        df.attrs["summary"] = cluster.summary.as_dict()
        return df
    run = FlowRun(source, options, bpf=_bpf(filter))
    df = flows_dataframe(FlowRecords.concat(list(run.finished())))
    df.attrs["summary"] = run.summary.as_dict()
    return df


def read_flows_dask(source: str | os.PathLike[str] | list[str | os.PathLike[str]], *,
                    filter: str | None = None, options: FlowOptions | None = None,
                    client: Any = None, skip_bad: bool = False, **kw: Any) -> Any:
    """The flows of capture files as a lazy ``dask.dataframe``: read_flows' rows, in
    its order, computed on a Dask cluster when you compute them (the ``dask`` extra).

    ``source`` is a file or a list of files, read as one capture (in the order of
    their first timestamps); ``filter`` and the options are read_flows'. ``client`` is
    the dask.distributed Client the graph is laid out for (default: the current
    one); ``skip_bad`` leaves out files that are not captures. A partition holds the
    flows of one task of files (one file, or on two workers three consecutive files:
    tracker/cluster.py flows_dask).

    Examples
    --------
    >>> from distributed import Client                                  # doctest: +SKIP
    >>> client = Client(n_workers=2, threads_per_worker=1)              # doctest: +SKIP
    >>> ddf = read_flows_dask(sorted(glob.glob("day-*.pcap")))           # doctest: +SKIP
    >>> ddf.groupby("resp_port").orig_ip_bytes.sum().nlargest(5).compute()  # doctest: +SKIP
    """
    options = FlowOptions.from_keywords(options, "read_flows_dask()",
                                        ("filter", "client", "skip_bad"), **kw)
    paths = _capture_files(source, "read_flows_dask()")
    if filter is not None:
        BpfFilter(filter)  # a bad filter is an OptionError here, not in every task
    from tracker.cluster import flows_dask

    return flows_dask(paths, options, client=client, skip_bad=skip_bad, filter=filter)


def _capture_files(source: Any, what: str) -> list[str | os.PathLike[str]]:
    """``source`` as a list of capture files, for a read on Dask (each task opens its
    files where it runs: no standard input, no file objects)."""
    if isinstance(source, str | os.PathLike) and source != "-":
        return [source]
    if isinstance(source, list | tuple) and source and all(
            isinstance(p, str | os.PathLike) and p != "-" for p in source):
        return list(source)
    raise OptionError(f"{what} reads capture files: give a path or a list of paths")


def iter_flows(source: Source, *, filter: str | None = None, options: FlowOptions | None = None,
               **kw: Any) -> Iterator[pd.DataFrame]:
    """Read a capture and yield DataFrames of the flows that finished, as it reads.

    Memory follows the open flows, not the file: for captures too large for
    one frame. Each frame has ``read_flows``' columns; concatenated, the frames
    hold the rows of ``read_flows`` in the same order (a capture without flows
    yields one empty frame). ``filter`` and the options are ``read_flows``'. Coded columns are categoricals per frame; after
    ``pd.concat`` they become ``object`` unless their categories are unified.

    Examples
    --------
    >>> sizes = [len(df) for df in iter_flows("captures/tcp-port-reuse.pcap")]
    >>> sum(sizes)
    2
    """
    run = FlowRun(source, FlowOptions.from_keywords(options, "iter_flows()", ("filter",), **kw),
                  bpf=_bpf(filter))
    any_rows = False
    for ended in run.finished():
        if len(ended):
            any_rows = True
            yield flows_dataframe(ended)
    if not any_rows:
        yield flows_dataframe(FlowRecords.empty())


def read_packets(source: Source, *, flow_ids: bool = True, filter: str | None = None,
                 tunnels: bool = False, options: FlowOptions | None = None,
                 **kw: Any) -> pd.DataFrame:
    """Read a capture file and return one row per frame with its decoded headers.

    ``source`` is a path to a pcap or pcapng file (gzip-compressed or not; the
    format is detected from the content), ``"-"`` for standard input, or a
    binary file object. The columns are documented in
    ``tracker.describe_columns("packets")``. With ``flow_ids`` (the default)
    the frames also go through the flow table, and ``flow_id`` names each
    packet's row in ``read_flows`` with the same options (<NA>: in no flow).
    ``filter`` (a tcpdump expression) keeps only the frames tcpdump would.
    ``df.attrs["summary"]`` counts the frames per status (a plain dict).
    ``tunnels=True`` adds the packets inside tunnels as rows of their own, after
    their frame's row, with their ``depth`` and ``outer_flow_id`` (the columns of
    ``tracker.describe_columns("tunnel_packets")``); by default each frame is one
    row with its outermost headers, as tshark's first layer.

    Examples
    --------
    >>> df = read_packets("captures/tcp-handshake-fin.pcap")
    >>> df[["frame", "src_addr", "src_port", "dst_port", "tcp_flags", "flow_id"]].head(3)
       frame    src_addr  src_port  dst_port  tcp_flags  flow_id
    0      1  192.0.2.10     49152        80          2        0
    1      2  198.51.100.20        80     49152         18        0
    2      3  192.0.2.10     49152        80         16        0
    """
    options = FlowOptions.from_keywords(options, "read_packets()",
                                        ("flow_ids", "filter", "tunnels"), **kw)
    bpf = _bpf(filter)
    if not flow_ids:
        if tunnels:
            raise OptionError("read_packets(tunnels=True) needs flow_ids=True: the packets "
                              "inside tunnels come from the flow table's pass")
        return _packets_only(source, bpf)
    run = FlowRun(source, options, bpf=bpf)
    rows, late = PacketRows(), []
    for packets, fids, _ in run:
        carrier_ids = np.zeros(0, np.int64) if tunnels else None
        if tunnels and len(packets):
            packets, fids, carrier_ids = layered_rows(packets, run.table)
        rows.add(packets, fids, carrier_ids)
        late.append(run.table.earlier_flow_ids)  # fragments completed in a later batch
    df = rows.frame(late)
    df.attrs["summary"] = run.summary.as_dict()
    return df


def _bpf(expression: str | None) -> BpfFilter | None:
    """The compiled tcpdump filter; a bad one is an OptionError with libpcap's reason."""
    return None if expression is None else BpfFilter(expression)


def _packets_only(source: Source, bpf: BpfFilter | None) -> pd.DataFrame:
    """read_packets without the flow table: decoding only, every flow_id <NA>."""
    summary, rows = RunSummary(), PacketRows()
    for packets in iter_decoded(source, checksums=False, bpf=bpf):
        summary.add(packets)
        rows.add(packets)
    df = rows.frame()
    df.attrs["summary"] = summary.as_dict()
    return df
