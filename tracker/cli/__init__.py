"""The ``tracker`` command line.

Only argparse is imported at start-up; numpy, pandas and numba load when a
subcommand needs them, so ``tracker --help`` answers at once. Errors of the
tracker's own (``TrackerError``) and of the operating system (a missing file)
print one line ``tracker: error: ...`` and exit 1; bad usage (an
``OptionError`` too) exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import TYPE_CHECKING, TextIO

from tracker import __version__

if TYPE_CHECKING:
    from tracker.flows.options import FlowOptions

EPILOG = """examples:
  tracker read capture.pcap                 flows with Zeek conn_state and history
  tracker read --format csv -o flows.csv capture.pcapng.gz
  tracker packets capture.pcap              one line per frame, like tcpdump -n
  tracker packets -c 20 --format csv x.pcapng
  tcpdump -w - -i eth0 | tracker packets -   read a capture from standard input
  tracker columns                           what every flows column means
  tracker columns --values conn_state       what every conn_state value means
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
    flow_options = _flow_options_parser()
    _add_read(sub, flow_options)
    _add_packets(sub, flow_options)
    _add_columns(sub)
    return parser


def _flow_options_parser() -> argparse.ArgumentParser:
    """The flow table's options, shared by every command that builds flows."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("flow options")
    g.add_argument("--vlan-key", action="store_true",
                   help="put the outer VLAN id in the flow key (Zeek's vlan_fivetuple)")
    g.add_argument("--verify-checksums", action="store_true",
                   help="drop packets with a bad IP/TCP/UDP checksum, marking 'C' in history")
    g.add_argument("--max-open-flows", type=_positive_int, metavar="N",
                   help="evict the least recently active flow beyond N open flows")
    g.add_argument("--tcp-inactivity", type=_seconds, metavar="S", default=300.0,
                   help="idle timeout of established TCP flows, seconds (default 300, as Zeek)")
    g.add_argument("--udp-inactivity", type=_seconds, metavar="S", default=60.0,
                   help="idle timeout of UDP flows, seconds (default 60, as Zeek)")
    return p


def _flow_options(args: argparse.Namespace) -> FlowOptions:
    from tracker.flows.options import FlowOptions

    return FlowOptions(vlan_in_key=args.vlan_key, verify_checksums=args.verify_checksums,
                       max_open_flows=args.max_open_flows, tcp_inactivity=args.tcp_inactivity,
                       udp_inactivity=args.udp_inactivity)


def _add_read(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
              flow_options: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "read", parents=[flow_options],
        help="group packets into socket-pair flows with connection states",
        description="Read a pcap/pcapng capture (gzip too; '-' reads standard input) and write "
        "one row per flow (a connection on a socket pair) as flows finish: originator and "
        "responder, Zeek conn_state and history, conntrack-style state, packets and IP bytes "
        "per direction. csv has every column ('tracker columns' says what each means).",
    )
    p.add_argument("capture", help="pcap or pcapng file (optionally gzip-compressed), or -")
    p.add_argument("--format", choices=("table", "csv"), default="table",
                   help="table: one aligned line per flow (default); csv: every column, "
                   "times in ISO 8601 UTC, duration in seconds")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
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


def _interpret_small_input(args: argparse.Namespace) -> None:
    """Turn numba off for this process when the input is a small regular file
    (below ``tracker.jit.SMALL_INPUT``: see there why).

    Only in a ``tracker`` process of its own (``console``): a library caller's
    process and environment are left alone.
    """
    from tracker.jit import SMALL_INPUT

    capture = args.capture
    if not getattr(args, "standalone", False) or "numba" in sys.modules:
        return
    if capture == "-" or not os.path.isfile(capture):
        return
    if os.path.getsize(capture) < SMALL_INPUT:
        os.environ.setdefault("NUMBA_DISABLE_JIT", "1")


def _run_read(args: argparse.Namespace, out: TextIO) -> None:
    _interpret_small_input(args)
    from tracker.pipeline import FlowRun
    from tracker.report.print_flows import write_flows
    from tracker.report.progress import Progress

    progress = Progress()
    # 2 MiB batches: within 10 % of the in-process speed, 25 MB less peak RSS
    # (benchmarks/RESULTS.md: the command must stay under 300 MB on any file).
    run = FlowRun(args.capture, _flow_options(args), progress, batch_bytes=2 << 20)
    try:
        write_flows(run.finished(), out, fmt=args.format)
    finally:
        progress.close()
    if not args.quiet:
        print(f"tracker: {run.summary.line()}", file=sys.stderr)


def _add_packets(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
                 flow_options: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "packets", parents=[flow_options],
        help="decode every frame's IP/TCP/UDP headers",
        description="Decode the headers of every frame of a pcap/pcapng capture (gzip too; "
        "'-' reads standard input) and print one row per frame, with the flow it belongs "
        "to (the flow options are those of 'tracker read').",
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
    from tracker.pipeline import FlowRun
    from tracker.report.print_packets import print_packets

    run = FlowRun(args.capture, _flow_options(args))
    print_packets(((packets, ids) for packets, ids, _ in run), out, fmt=args.format,
                  count=args.count)


def _add_columns(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "columns",
        help="what every column and every value of the output means",
        description="Print the documented columns of the flows (default) or packets table, "
        "or with --values every value of one coded column and what it means.",
        epilog="examples:\n  tracker columns\n  tracker columns packets\n"
        "  tracker columns --values conn_state\n  tracker columns --values history",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("table", nargs="?", choices=("flows", "packets"), default="flows",
                   help="which table (default: flows)")
    p.add_argument("--values", metavar="COLUMN",
                   help="list the values of COLUMN (conn_state, history, state, orig_state, "
                   "resp_state, end_reason, orig_reason, proto, port_class, status)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(run=_run_columns)


def _run_columns(args: argparse.Namespace, out: TextIO) -> None:
    from tracker.errors import OptionError
    from tracker.report.columns import TABLES, VALUES, describe

    if args.values is None:
        out.write(describe(TABLES[args.table]) + "\n")
        return
    if args.values not in VALUES:
        raise OptionError(f"--values {args.values}: no list of values; columns that have one: "
                          f"{', '.join(sorted(VALUES))}")
    values = VALUES[args.values]
    width = max(len(v) for v in values)
    out.writelines(f"{v:<{width}}  {meaning}\n" for v, meaning in values.items())


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
    from tracker.errors import OptionError, TrackerError

    try:
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as out:
                args.run(args, out)
        else:
            args.run(args, sys.stdout)
    except OptionError as exc:  # a bad option value is bad usage
        print(f"tracker {args.command}: error: {exc}", file=sys.stderr)
        return 2
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
