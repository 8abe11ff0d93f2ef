"""``tracker live``: the capture opens, and says so, before the heavy modules load.

Opening needs only Scapy and the socket; numpy's analysis stack, pandas and
numba's compiled code load after the ``listening on ...`` line, which scripts
wait for and from which ``--duration`` counts.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tracker.errors import OptionError
from tracker.signals import sigint


def _check(args: argparse.Namespace) -> None:
    """The usage errors that need no heavy module, before the capture opens."""
    if args.write is not None and args.output is not None and \
            os.path.abspath(args.write) == os.path.abspath(args.output):
        raise OptionError(f"-w {args.write} and -o name the same file")
    if args.format == "parquet" and args.output in (None, "-"):
        raise OptionError("--format parquet writes a file: give -o FILE")
    for net in (args.local or "").split(","):
        if net.strip():
            try:
                ipaddress.ip_network(net.strip(), strict=False)
            except ValueError:
                raise OptionError(f"--local {net!r}: expected a network such as 10.0.0.0/8 "
                                  "or an address") from None


def run_live(args: argparse.Namespace) -> int:
    from tracker.sources.live import LiveSource

    _check(args)
    live = LiveSource(args.interface, bpf=args.filter, snaplen=args.snaplen,
                      duration=args.duration, count=args.count)
    print(live.banner(), file=sys.stderr, flush=True)  # scripts wait for this line
    with live:
        view = args.format == "table" and args.output in (None, "-") and sys.stdout.isatty()
        if view or (args.interval is not None and args.format == "json"):
            return _snapshots(args, live, view)
        return _stream(args, live)


@contextmanager
def _ctrl_c_ends_capture(run: Any, source: Any) -> Iterator[None]:
    """Ctrl-C ends a live capture as tcpdump does: the flows still open end 'stopped'
    and everything is written; a second Ctrl-C aborts at once."""
    def stop(signum: int, frame: Any) -> None:
        if run.stopped:
            raise KeyboardInterrupt
        run.stop("stopped", drain=True)  # the source ends once the kernel's frames are in
        source.stop()

    with sigint(stop):
        yield


def _stream(args: argparse.Namespace, live: Any) -> int:
    """Flows as they end (file formats) or all at the end (the table), as tracker read."""
    from tracker.cli.commands import flow_options, query_filter, write_read
    from tracker.cli.output import output_file
    from tracker.decode.bpf import BpfFilter
    from tracker.pipeline import FlowRun
    from tracker.processes import socket_owners
    from tracker.report.progress import Progress
    from tracker.sources.record import PcapWriter, Recording

    keep = query_filter(args.query)
    args.processes = socket_owners  # the table's PID/Program, looked up when it prints
    with contextlib.ExitStack() as stack:
        source: Any = live
        if args.write is not None:
            f = stack.enter_context(open(args.write, "wb"))
            source = Recording(live, PcapWriter(f, live.linktype, args.snaplen))
        leftover = live.userspace_filter  # -i any: what the kernel cannot filter
        run = FlowRun(source, flow_options(args),
                      bpf=None if leftover is None else BpfFilter(leftover))
        run.summary.dropped = 0
        with _ctrl_c_ends_capture(run, live), output_file(args.output) as out:
            no_bar = Progress()
            no_bar.enabled = False  # a capture has no size to show progress against
            write_read(args, run, out, run.finished(), keep, no_bar)
    if not args.quiet:
        print(f"tracker: {run.summary.line()}", file=sys.stderr)
    return 0


def _snapshots(args: argparse.Namespace, live: Any, view: bool) -> int:
    """The live view on a terminal, or one JSON snapshot line per interval for scripts;
    then the final flows, as the streaming path writes them."""
    import pandas as pd

    from tracker.cli.commands import flow_options, query_filter, sorted_flows, write_collected
    from tracker.cli.output import output_file
    from tracker.live import LiveCapture
    from tracker.processes import socket_owners
    from tracker.report.export import csv_frame

    query_filter(args.query)  # a bad query fails before the capture starts
    cap = LiveCapture(args.interface, args.filter, snaplen=args.snaplen, write=args.write,
                      options=flow_options(args), source=live).start()
    interrupted: list[bool] = []
    try:
        with sigint(lambda *_: interrupted.append(True)):
            if view:
                from tracker.cli.view import LiveView

                LiveView(cap, interval=args.interval or 1.0, numeric=args.numeric,
                         local=args.local).run(lambda: bool(interrupted))
            else:
                while cap.running and not interrupted:
                    time.sleep(args.interval)
                    snap = csv_frame(cap.snapshot()).to_json(orient="records", date_format="iso")
                    sys.stdout.write(f'{{"time": "{pd.Timestamp.now(tz="UTC").isoformat()}", '
                                     f'"flows": {snap}}}\n')
                    sys.stdout.flush()
    finally:
        flows = cap.stop()
    args.processes = socket_owners
    if view or args.output not in (None, "-"):
        if args.query and len(flows):  # checked by _query before the capture started
            flows = flows.query(args.query).reset_index(drop=True)
        with output_file(args.output) as out:
            write_collected(args, sorted_flows(flows, args.sort or "start", args.top), out,
                             cap.summary)
    if not args.quiet:
        print(f"tracker: {cap.summary.line()}", file=sys.stderr)
    return 0
