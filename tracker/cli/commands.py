"""What ``tracker read``, ``tracker packets`` and ``tracker columns`` do with their arguments.

Heavy modules (numpy, numba) are imported here, only once a command runs;
pandas only where a DataFrame is made (a summary, a query, json, parquet,
zeek): the netstat table and csv are made from the flow records, sorted as
records, and never load it (0.3-0.45 s). Every command opens its inputs before
its output, so an input that cannot be read at all leaves an existing output
file untouched.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar

import numpy as np

from tracker.cli.output import names_folder, output_file, refuse_inputs
from tracker.decode.bpf import BpfFilter
from tracker.errors import CaptureError, OptionError
from tracker.flows import FlowOptions, FlowRecords
from tracker.pipeline import FlowRun, open_source
from tracker.report.gather import chunks
from tracker.report.networks import parse_networks
from tracker.report.progress import Progress
from tracker.report.writers import WRITERS, FrameWriter, arrow_table
from tracker.signals import sigint

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")
# 2 MiB batches: within 10 % of the in-process speed, 25 MB less peak RSS
# (benchmarks/RESULTS.md: the command must stay under 300 MB on any file).
BATCH_BYTES = 2 << 20
# --by: the functions of tracker.report.summarize
SUMMARIES = {"pair": "by_socket_pair", "host": "by_host", "service": "by_service",
             "state": "by_state", "port-class": "by_port_class", "tunnel": "by_tunnel"}


def flow_options(args: argparse.Namespace) -> FlowOptions:
    return FlowOptions(vlan_in_key=args.vlan_key, verify_checksums=args.verify_checksums,
                       max_open_flows=args.max_open_flows, tcp_inactivity=args.tcp_inactivity,
                       udp_inactivity=args.udp_inactivity,
                       decapsulate=not args.no_decapsulate)


class Stoppable(Protocol):
    """A run that Ctrl-C ends after its current batch (FlowRun) or file (ClusterRun)."""

    @property
    def stopped(self) -> str | None: ...

    def stop(self, reason: str = "interrupted", *, drain: bool = False) -> None: ...


@contextmanager
def ctrl_c_stops(run: Stoppable) -> Iterator[None]:
    """The first Ctrl-C ends the run after the current batch (a cluster read: file), all
    read so far written; a second one aborts at once."""
    def stop(signum: int, frame: Any) -> None:
        if run.stopped == "interrupted":
            raise KeyboardInterrupt
        run.stop("interrupted")

    with sigint(stop):
        yield


def _until_error(items: Iterable[T], errors: list[CaptureError]) -> Iterator[T]:
    """The items, ending normally at a capture broken mid-way (the error kept in ``errors``)."""
    try:
        yield from items
    except CaptureError as err:
        errors.append(err)


def _writer(fmt: str, out: BinaryIO, nets: list[Any]) -> FrameWriter:
    if fmt == "zeek":
        from tracker.report.zeek import ZeekConnWriter

        return ZeekConnWriter(out, nets)
    writer: FrameWriter = WRITERS[fmt](out)
    return writer


def sort_order(key: str, flow_id: np.ndarray, first_ns: np.ndarray, duration_ns: np.ndarray,
               packets: np.ndarray, nbytes: np.ndarray) -> np.ndarray:
    """Row order of ``--sort KEY``: start ascending, bytes, packets and duration
    descending; flow_id breaks ties (flows that start together: the first one seen)."""
    if key == "start":
        return np.lexsort((flow_id, first_ns))
    value = {"bytes": nbytes, "packets": packets, "duration": duration_ns}[key]
    return np.lexsort((flow_id, -np.asarray(value, dtype=np.int64)))


def sorted_flows(df: pd.DataFrame, key: str, top: int | None) -> pd.DataFrame:
    """A flows frame in ``--sort`` order, its first ``top`` rows only when given."""
    first = df["first_ts"].dt.tz_convert(None).to_numpy().astype("datetime64[ns]")
    order = sort_order(key, df["flow_id"].to_numpy(), first.view(np.int64),
                       df["duration"].to_numpy().astype("timedelta64[ns]").view(np.int64),
                       (df["orig_pkts"] + df["resp_pkts"]).to_numpy(),
                       (df["orig_ip_bytes"] + df["resp_ip_bytes"]).to_numpy())
    return df.iloc[order[:top]]


def sorted_records(r: FlowRecords, key: str, top: int | None) -> FlowRecords:
    """sorted_flows for FlowRecords (no DataFrame)."""
    order = sort_order(key, r.flow_id, r.first_ts, r.last_ts - r.first_ts,
                       r.orig_pkts + r.resp_pkts, r.orig_ip_bytes + r.resp_ip_bytes)
    return r.take(order[:top])


Keep = Callable[[FlowRecords], FlowRecords]


def query_filter(expression: str | None) -> Keep | None:
    """The flows the --query display filter keeps (pandas' DataFrame.query on the flows
    frame), or None without a query. A bad query is a usage error before any reading."""
    if expression is None:
        return None
    from tracker.report.flows import flows_dataframe

    try:
        flows_dataframe(FlowRecords.empty()).query(expression)
    except (SyntaxError, NameError, ValueError, TypeError, KeyError, AttributeError) as err:
        raise OptionError(f"--query {expression!r}: {err}") from None

    def kept(records: FlowRecords) -> FlowRecords:
        rows = flows_dataframe(records).query(expression).index.to_numpy()
        return records.take(rows)  # the frame's index is the row number

    return kept


def _collect(records: Iterable[FlowRecords], key: str, top: int | None, keep: Keep | None
             ) -> FlowRecords:
    """Every flow the query keeps, sorted; with ``top`` only the first ``top`` are ever
    kept."""
    kept = FlowRecords.empty()
    parts: list[FlowRecords] = []
    for part in chunks(records, rows=50_000, seconds=5.0):
        part = keep(part) if keep is not None else part
        if top is None:
            parts.append(part)
        elif len(part):
            kept = sorted_records(FlowRecords.concat([kept, part]), key, top)
    return sorted_records(FlowRecords.concat(parts), key, None) if top is None else kept


def _width(out: BinaryIO) -> int | None:
    """The terminal's width when the table goes to one, else None (no column left out)."""
    if out is sys.stdout.buffer and sys.stdout.isatty():
        import shutil

        return shutil.get_terminal_size().columns
    return None


def _print_lines(out: BinaryIO, lines: list[str]) -> None:
    out.write(("\n".join(lines) + "\n").encode("utf-8"))


def write_read(args: argparse.Namespace, run: FlowRun, out: BinaryIO,
               records: Iterable[FlowRecords], keep: Keep | None, progress: Progress) -> None:
    """The finished flows as ``args`` ask: streamed to a file format as they end, or
    collected and sorted first (the table, --by, --sort, --top). ``keep``: --query."""
    if args.by or args.format == "table" or args.sort or args.top:
        flows = _collect(records, "start" if args.by else args.sort or "start",
                         None if args.by else args.top, keep)
        progress.close()  # the bar is gone before the first line is printed
        write_collected(args, flows, out, run.summary)
        return
    writer: Any = _writer(args.format, out, parse_networks(args.local))
    if args.format == "csv":  # straight from the records (CsvWriter), no DataFrame
        from tracker.report.csv_text import flows_csv as rows
    else:
        from tracker.report.flows import flows_dataframe as rows
    for part in chunks(records, rows=10_000, seconds=1.0):
        writer.write(rows(keep(part) if keep is not None else part))
    writer.close()


def _netstat_table(args: argparse.Namespace, flows: FlowRecords, out: BinaryIO,
                   summary: Any) -> None:
    """The netstat table and its footer, from the records' columns (no pandas)."""
    from tracker.report.flow_columns import flow_columns
    from tracker.report.netstat import record_arrays, view_columns
    from tracker.report.table import footer, render_columns

    arrays = record_arrays(flow_columns(flows))
    owners = getattr(args, "processes", None)
    view = view_columns(arrays, nets=parse_networks(args.local), numeric=args.numeric,
                        processes=owners() if owners else None)
    _print_lines(out, render_columns(view, _width(out)) + ["", footer(arrays, summary)])


def write_collected(args: argparse.Namespace, flows: FlowRecords | pd.DataFrame,
                    out: BinaryIO, summary: Any) -> None:
    """Flows held in memory, sorted: a summary (--by), the netstat table, or a file."""
    if args.format == "table" and not args.by and isinstance(flows, FlowRecords):
        _netstat_table(args, flows, out, summary)
        return
    from tracker.report import summarize
    from tracker.report.flows import flows_dataframe
    from tracker.report.netstat import netstat_view
    from tracker.report.table import footer, render

    if isinstance(flows, FlowRecords):
        flows = flows_dataframe(flows)
    table = getattr(summarize, SUMMARIES[args.by])(flows) if args.by else flows
    if args.format != "table":
        writer = _writer(args.format, out, parse_networks(args.local))
        writer.write(table)
        writer.close()
    elif args.by:
        _print_lines(out, render(table, _width(out)))
    else:
        owners = getattr(args, "processes", None)
        view = netstat_view(flows, local=args.local, numeric=args.numeric,
                            processes=owners() if owners else None)
        _print_lines(out, render(view, _width(out)) + ["", footer(flows, summary)])


def run_read(args: argparse.Namespace) -> int:
    options = flow_options(args)
    refuse_inputs(args.output, args.captures)
    parse_networks(args.local)  # a bad --local is a usage error before any reading
    if args.format == "parquet" and args.output in (None, "-"):
        raise OptionError("--format parquet writes a file: give -o FILE")
    if args.by and args.format == "zeek":
        raise OptionError("--by prints a summary: --format table, csv, json or parquet")
    keep = query_filter(args.query)
    bpf = None if args.filter is None else BpfFilter(args.filter)
    progress = Progress()
    streaming = not (args.by or args.sort or args.top or args.format == "table")
    if streaming and args.output in (None, "-") and sys.stdout.isatty():
        progress.enabled = False  # rows stream to the terminal: no bar between them
    if args.jobs is not None or args.scheduler is not None:
        return _read_on_cluster(args, options, keep)
    if args.skip_bad:
        raise OptionError("--skip-bad goes with --jobs or --scheduler")
    run = FlowRun(open_source(args.captures, batch_bytes=BATCH_BYTES), options, progress,
                  bpf=bpf)
    errors: list[CaptureError] = []
    with ctrl_c_stops(run):
        try:
            if dataset(args):
                write_dataset(keep, _until_error(run.finished(), errors), args.output)
            else:
                with output_file(args.output) as out:
                    write_read(args, run, out, _until_error(run.finished(), errors), keep,
                               progress)
        finally:
            progress.close()
    return _finish(args, run, errors)


def dataset(args: argparse.Namespace) -> bool:
    """Whether the flows go to a Parquet dataset (--format parquet, -o a folder: one
    that exists, or a new one named with a trailing /) rather than to one output."""
    if args.format != "parquet" or not names_folder(args.output):
        return False
    for option, given in (("--by", args.by), ("--sort", args.sort), ("--top", args.top)):
        if given:
            raise OptionError(f"{option} makes one table: give -o FILE, not a folder "
                              "(a folder takes every flow, by date and hour)")
    return True


def _read_on_cluster(args: argparse.Namespace, options: FlowOptions, keep: Keep | None
                     ) -> int:
    """run_read on Dask (tracker/cluster.py): the same output, a partitioned Parquet
    dataset when -o names a directory with --format parquet."""
    from tracker.cluster import ClusterRun

    if "-" in args.captures:
        raise OptionError("--jobs/--scheduler read capture files, not standard input")
    run = ClusterRun(args.captures, options, jobs=args.jobs, scheduler=args.scheduler,
                     skip_bad=args.skip_bad, filter=args.filter,
                     progress=not args.quiet and sys.stderr.isatty())
    with ctrl_c_stops(run):
        if dataset(args):
            write_dataset(keep, run.finished(), args.output)
        else:
            with output_file(args.output) as out:
                write_read(args, run, out, run.finished(), keep,  # type: ignore[arg-type]
                           Progress())
    return _finish(args, run, [])  # type: ignore[arg-type]


def write_dataset(keep: Keep | None, records: Iterable[FlowRecords], folder: str) -> None:
    """Flows as a Parquet dataset partitioned by the first packet's UTC date and hour
    (``date=2026-12-02/hour=13/part-0.parquet``, as Hive and Dask read it); each part
    is written in a hidden folder inside ``folder`` and moved in when all went well.
    A new ``folder`` is made, and removed again when the run fails before that."""
    import shutil
    import tempfile

    made = not os.path.isdir(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        stage = tempfile.mkdtemp(prefix=".tracker-", suffix=".part", dir=folder)
    except OSError as exc:  # name the output asked for, not the hidden folder in it
        raise OSError(exc.errno, f"cannot write the dataset there: {exc.strerror}",
                      folder) from exc
    try:
        _write_partitions(keep, records, stage)
        for root, _, names in os.walk(stage):  # complete: move the parts in
            target = os.path.join(folder, os.path.relpath(root, stage))
            os.makedirs(target, exist_ok=True)
            for name in names:
                os.replace(os.path.join(root, name), os.path.join(target, name))
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if made:
            with suppress(OSError):
                os.rmdir(folder)  # empty again: nothing of this run is left
        raise
    shutil.rmtree(stage, ignore_errors=True)


def _write_partitions(keep: Keep | None, records: Iterable[FlowRecords], folder: str) -> None:
    import pyarrow.parquet as pq

    from tracker.report.flows import flows_dataframe

    run = f"{os.getpid()}-{int(time.time())}"  # new part names: earlier runs' files stay
    written = 0
    for part in chunks(records, rows=200_000, seconds=30.0):
        df = flows_dataframe(keep(part) if keep is not None else part)
        if df.empty:
            continue
        first = df["first_ts"].dt.tz_convert("UTC")
        df = df.assign(date=first.dt.strftime("%Y-%m-%d"), hour=first.dt.hour.astype("int8"))
        df["tunnel_parents"] = df["tunnel_parents"].map(list)
        for (date, hour), rows in df.groupby(["date", "hour"], sort=True):
            where = os.path.join(folder, f"date={date}", f"hour={hour:02d}")
            os.makedirs(where, exist_ok=True)
            table = arrow_table(rows.drop(columns=["date", "hour"]))
            pq.write_table(table, os.path.join(where, f"part-{run}-{written}.parquet"))
            written += 1


def _finish(args: argparse.Namespace, run: FlowRun, errors: list[CaptureError]) -> int:
    """The closing line, then the error or interruption, if any (the output is complete)."""
    if not args.quiet:
        print(f"tracker: {run.summary.line()}", file=sys.stderr)
    if errors:
        print(f"tracker: error: {errors[0]}; everything before it was written "
              "(flows still open then end 'error')", file=sys.stderr)
        return 1
    if run.stopped == "interrupted":
        print("tracker: interrupted; everything read so far was written (flows still open "
              "then end 'interrupted')", file=sys.stderr)
        return 130
    return 0


def _packet_frames(run: FlowRun, count: int | None) -> Iterator[pd.DataFrame]:
    from tracker.report.packets import packets_dataframe

    written = 0
    for packets, flow_ids, _ in run:
        if not len(packets):
            continue
        df = packets_dataframe(packets, flow_ids)
        if count is not None:
            df = df.iloc[: count - written]
        written += len(df)
        yield df
        if count is not None and written >= count:
            run.stop("eof")
            return


def run_packets(args: argparse.Namespace) -> int:
    from tracker.report.print_packets import HEADER, table_lines

    options = flow_options(args)
    refuse_inputs(args.output, args.captures)
    if args.format == "parquet" and args.output in (None, "-"):
        raise OptionError("--format parquet writes a file: give -o FILE")
    bpf = None if args.filter is None else BpfFilter(args.filter)
    run = FlowRun(open_source(args.captures, batch_bytes=BATCH_BYTES), options, bpf=bpf)
    errors: list[CaptureError] = []
    with ctrl_c_stops(run), output_file(args.output) as out:
        frames = _until_error(_packet_frames(run, args.count), errors)
        if args.format == "table":
            out.write((HEADER + "\n").encode())
            for df in frames:
                out.write("".join(line + "\n" for line in table_lines(df)).encode("utf-8"))
                out.flush()
        else:
            writer = _writer(args.format, out, [])
            for df in frames:
                writer.write(df)
            writer.close()
    args.quiet = True  # tcpdump prints no closing line on a read either
    return _finish(args, run, errors)


def run_columns(args: argparse.Namespace) -> int:
    from tracker.report.columns import TABLES, VALUES, describe

    if args.values is not None and args.values not in VALUES:
        raise OptionError(f"--values {args.values}: no list of values; columns that have one: "
                          f"{', '.join(sorted(VALUES))}")
    with output_file(args.output) as out:
        if args.values is None:
            text = describe(TABLES[args.table]) + "\n"
        else:
            values = VALUES[args.values]
            width = max(len(v) for v in values)
            text = "".join(f"{v:<{width}}  {meaning}\n" for v, meaning in values.items())
        out.write(text.encode("utf-8"))
    return 0


RUN = {"read": run_read, "packets": run_packets, "columns": run_columns}
