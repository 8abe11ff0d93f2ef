"""The ``tracker`` command line.

Only argparse is imported at start-up; numpy, pandas and numba load when a
subcommand needs them, so ``tracker --help`` answers at once. Errors of the
tracker's own (``TrackerError``) and of the operating system (a missing file)
print one line ``tracker: error: ...`` and exit 1; bad usage exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import TextIO

from tracker import __version__

EPILOG = """examples:
  tracker read capture.pcap                 flows with Zeek conn_state and history
  tracker read --format csv -o flows.csv capture.pcapng.gz
  tracker packets capture.pcap              one line per frame, like tcpdump -n
  tracker packets -c 20 --format csv x.pcapng
  tcpdump -w - -i eth0 | tracker packets -   read a capture from standard input
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracker",
        description="Socket-pair flows and their connection states, from the wire.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tracker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_read(sub)
    _add_packets(sub)
    return parser


def _add_read(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "read",
        help="group packets into socket-pair flows with connection states",
        description="Read a pcap/pcapng capture (gzip too; '-' reads standard input) and write "
        "one row per flow (a connection on a socket pair) as flows finish: originator and "
        "responder, Zeek conn_state and history, conntrack-style state, packets and IP bytes "
        "per direction. csv has every column (documented in tracker.report.flow_columns).",
    )
    p.add_argument("capture", help="pcap or pcapng file (optionally gzip-compressed), or -")
    p.add_argument("--format", choices=("table", "csv"), default="table",
                   help="table: one aligned line per flow (default); csv: every column, "
                   "times in ISO 8601 UTC, duration in seconds")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--vlan-key", action="store_true",
                   help="put the outer VLAN id in the flow key (Zeek's vlan_fivetuple)")
    p.add_argument("--verify-checksums", action="store_true",
                   help="drop packets with a bad IP/TCP/UDP checksum, marking 'C' in history")
    p.add_argument("--max-open-flows", type=_positive_int, metavar="N",
                   help="evict the least recently active flow beyond N open flows")
    p.add_argument("--tcp-inactivity", type=_seconds, metavar="S", default=300.0,
                   help="idle timeout of established TCP flows, seconds (default 300, as Zeek)")
    p.add_argument("--udp-inactivity", type=_seconds, metavar="S", default=60.0,
                   help="idle timeout of UDP flows, seconds (default 60, as Zeek)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no summary line on stderr at the end")
    p.set_defaults(run=_run_read)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


# Below this file size the compiled loops run as plain Python: loading numba and its
# cached machine code costs about 0.4 s, more than interpreting a few thousand packets.
# The results are the same either way (tests run the scenario captures both ways).
SMALL_INPUT = 512 << 10


def _interpret_small_input(args: argparse.Namespace) -> None:
    """Turn numba off for this process when the input is a small regular file.

    Only in a ``tracker`` process of its own (``console``): a library caller's
    process and environment are left alone.
    """
    capture = args.capture
    if not getattr(args, "standalone", False) or "numba" in sys.modules:
        return
    if capture == "-" or not os.path.isfile(capture):
        return
    if os.path.getsize(capture) < SMALL_INPUT:
        os.environ.setdefault("NUMBA_DISABLE_JIT", "1")


def _run_read(args: argparse.Namespace, out: TextIO) -> None:
    _interpret_small_input(args)
    from tracker.api import FlowRun, flow_options
    from tracker.report.print_flows import write_flows

    options = flow_options(vlan_in_key=args.vlan_key, verify_checksums=args.verify_checksums,
                           max_open_flows=args.max_open_flows,
                           tcp_inactivity=args.tcp_inactivity, udp_inactivity=args.udp_inactivity)
    from tracker.report.progress import Progress

    progress = Progress()
    # 2 MiB batches: within 10 % of the in-process speed, 25 MB less peak RSS
    # (benchmarks/RESULTS.md: the command must stay under 300 MB on any file).
    run = FlowRun(args.capture, options, progress, batch_bytes=2 << 20)
    try:
        write_flows(run, out, fmt=args.format)
    finally:
        progress.close()
    if not args.quiet:
        print(f"tracker: {run.summary.line()}", file=sys.stderr)


def _add_packets(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "packets",
        help="decode every frame's IP/TCP/UDP headers",
        description="Decode the headers of every frame of a pcap/pcapng capture (gzip too; "
        "'-' reads standard input) and print one row per frame.",
    )
    p.add_argument("capture", help="pcap or pcapng file (optionally gzip-compressed), or -")
    p.add_argument("-c", "--count", type=_positive_int, metavar="N", help="stop after N frames")
    p.add_argument("--format", choices=("table", "csv"), default="table",
                   help="table: one aligned line per frame (default); csv: every column")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(run=_run_packets)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _run_packets(args: argparse.Namespace, out: TextIO) -> None:
    _interpret_small_input(args)
    from tracker.report.print_packets import print_packets

    print_packets(args.capture, out, fmt=args.format, count=args.count)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
    # One line per warning, no source excerpt: users need the what, not our line numbers.
    print(f"tracker: warning: {message}", file=sys.stderr)


def console() -> int:
    """The ``tracker`` command and ``python -m tracker``: main() in a process of its own."""
    return main(standalone=True)


def main(argv: list[str] | None = None, *, standalone: bool = False) -> int:
    """Run the command line; ``standalone`` only when this process is the command itself."""
    args = build_parser().parse_args(argv)
    args.standalone = standalone
    warnings.showwarning = _show_warning
    from tracker.errors import TrackerError

    try:
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as out:
                args.run(args, out)
        else:
            args.run(args, sys.stdout)
    except TrackerError as exc:
        print(f"tracker: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):  # `tracker packets x | head` is normal use
            sys.stderr.close()
            return 0
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"tracker: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
