"""The argument parsers of the ``tracker`` commands; only argparse is imported here."""

from __future__ import annotations

import argparse

FLOW_FORMATS = ("table", "csv", "json", "parquet", "zeek")
PACKET_FORMATS = ("table", "csv", "json", "parquet")
SORT_KEYS = ("start", "bytes", "packets", "duration")
BY = ("pair", "host", "service", "state", "port-class", "tunnel")

MAIN_EPILOG = """commands:
  read      socket-pair flows with connection states (netstat's view, or a file format)
  packets   every frame's decoded headers, like tcpdump -n
  live      flows captured on a network interface (as root)
  columns   what every column and every value of the output means

examples:
  tracker read capture.pcap                 the flows as netstat shows sockets
  tracker read -n --local 10.0.0.0/8 day-*.pcap.gz   rotated files, read as one capture
  tracker read --format zeek -o conn.log capture.pcapng
  tracker packets -c 20 capture.pcap
  tcpdump -w - -i eth0 | tracker packets -   read a capture from standard input
  tracker columns --values conn_state       what every conn_state value means

'tracker COMMAND --help' says more about each command.
"""

READ_EPILOG = """examples:
  tracker read capture.pcap                          netstat's view, sorted by start time
  tracker read -n --sort bytes --top 20 capture.pcap the 20 largest flows, numeric ports
  tracker read --local 192.168.1.0/24 capture.pcap   the local side is inside that network
  tracker read --by service capture.pcap             flows, packets and bytes per service
  tracker read -f 'tcp port 443' capture.pcap        only the packets tcpdump would keep
  tracker read --query "conn_state == 'REJ'" x.pcap  only the rejected connections
  tracker read --format csv -o flows.csv a.pcap b.pcap.gz   several files as one capture
  tracker read --format zeek -o conn.log capture.pcap       a conn.log Zeek's tools read
  tracker read --format parquet -o flows.parquet capture.pcapng
  tracker read --format parquet -o flows/ day-*.pcap  a dataset by UTC date and hour

Files are read in the order of their first timestamps (rotated tcpdump -C/-G
output), any mix of pcap, pcapng and gzip. -o writes a temporary file beside
FILE and renames it when done, so FILE is complete or untouched. With --format
parquet, -o naming a folder (one that exists, or a new one ending in /) writes
a dataset: date=YYYY-MM-DD/hour=HH/ of each flow's first packet, as pandas,
Hive and Dask read it. Ctrl-C stops
reading and writes every flow seen (open ones end 'interrupted'; exit 130); a
corrupt record mid-file keeps everything before it (open flows end 'error';
exit 1). 'tracker columns' says what every column and value means.
"""

PACKETS_EPILOG = """examples:
  tracker packets capture.pcap                 one line per frame, like tcpdump -n -S
  tracker packets -c 20 --format csv -o x.csv capture.pcapng
  tracker packets --vlan-key capture.pcap      flow ids with the VLAN in the flow key
  tracker packets -f 'icmp or udp port 53' capture.pcap

Sequence and acknowledgment numbers are absolute (tcpdump -S).
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _captures(p: argparse.ArgumentParser) -> None:
    p.add_argument("captures", nargs="+", metavar="CAPTURE",
                   help="pcap or pcapng files (gzip too), read as one capture; - reads "
                   "standard input")
    p.add_argument("-f", "--filter", metavar="EXPR",
                   help="a tcpdump filter expression (libpcap's syntax, e.g. 'tcp port 80', "
                   "'tcp[tcpflags] & (tcp-syn|tcp-fin) != 0'): only the packets it keeps count")


def _flow_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("flow options")
    g.add_argument("--vlan-key", action="store_true",
                   help="put the outer VLAN id in the flow key (Zeek's vlan_fivetuple)")
    g.add_argument("--verify-checksums", action="store_true",
                   help="drop packets with a bad IP/TCP/UDP checksum, marking 'C' in history")
    g.add_argument("--no-decapsulate", action="store_true",
                   help="flows of the tunnel packets themselves (IP-in-IP, GRE, VXLAN, Geneve, "
                   "GTP, Teredo, AYIYA), not of the packets inside them (default: inside too, "
                   "as Zeek)")
    g.add_argument("--max-open-flows", type=_positive_int, metavar="N",
                   help="evict the least recently active flow beyond N open flows")
    g.add_argument("--tcp-inactivity", type=_seconds, metavar="S", default=300.0,
                   help="idle timeout of established TCP flows, seconds (default 300, as Zeek)")
    g.add_argument("--udp-inactivity", type=_seconds, metavar="S", default=60.0,
                   help="idle timeout of UDP flows, seconds (default 60, as Zeek)")


def _output(p: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    p.add_argument("--format", choices=formats, default="table",
                   help="table (default): aligned text for people; csv, json (lines) and "
                   "parquet: every column of the DataFrame; " +
                   ("zeek: a conn.log" if "zeek" in formats else ""))
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write to FILE (- for standard output, not for parquet)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no summary line on stderr at the end")


def read_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tracker read", epilog=READ_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Group the packets of captures into socket-pair flows with their "
        "connection states: by default one line per flow as netstat prints a socket (Proto, "
        "Local Address, Foreign Address, State), then packets and IP bytes each way, start, "
        "duration, Zeek's conn_state and history.")
    _captures(p)
    _output(p, FLOW_FORMATS)
    _view(p)
    _flow_options(p)
    _cluster(p)
    return p


def _cluster(p: argparse.ArgumentParser) -> None:
    c = p.add_argument_group("many files on Dask (the same rows as reading them in order)")
    where = c.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=_positive_int, metavar="N",
                       help="read the files on a local Dask cluster of N worker processes "
                       "(Ctrl-C: ends after the file being read, which is written)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="read the files on a running dask.distributed cluster")
    c.add_argument("--skip-bad", action="store_true",
                   help="with --jobs/--scheduler: report a file that is not a capture and go "
                   "on without it (default: it ends the run with an error)")


LIVE_EPILOG = """examples:
  tracker live -i eth0                           a view that refreshes like top; q quits
  tracker live -i eth0 --interval 5 --format json | jq .   a snapshot line every 5 s
  tracker live -i eth0 -f 'tcp port 443' --duration 60 -w https.pcap
  tracker live -i lo --count 1000 --format csv -o flows.csv

Needs root or the CAP_NET_RAW capability. The first line on stderr says what is
captured ('listening on ...', as tcpdump); --duration counts from it. On a
terminal a table refreshes every --interval: the flows open now and those that
just ended, with the process behind each local socket (as netstat -p), sorted
by their current rate. q, Ctrl-C, --duration or --count stop the capture: the
flows still open end 'stopped' and the exit is 0. Idle flows end by the wall clock while no packets come. -w keeps
every captured frame in a pcap file, valid whenever the capture stops. -s cuts
each frame (what is cut away is not seen by the flow table: Zeek would count
those bytes as a content gap).
"""


def _view(p: argparse.ArgumentParser) -> None:
    v = p.add_argument_group("view")
    v.add_argument("-n", "--numeric", action="store_true",
                   help="ports as numbers, not service names (as netstat -n)")
    v.add_argument("--local", metavar="NET[,NET...]",
                   help="networks of this side: the Local Address is the endpoint inside "
                   "them (default: the originator)")
    v.add_argument("--sort", choices=SORT_KEYS,
                   help="sort flows (table default: start); file formats then hold all "
                   "flows in memory instead of streaming them")
    v.add_argument("--top", type=_positive_int, metavar="N",
                   help="only the first N flows of the sort order (keeps N in memory)")
    v.add_argument("--query", metavar="EXPR",
                   help="keep only the flows for which this pandas query is true, a display "
                   "filter on the columns of 'tracker columns' (e.g. \"conn_state == 'REJ'\", "
                   "'orig_pkts > 10 and proto == \"udp\"')")
    v.add_argument("--by", choices=BY,
                   help="print a summary instead of flows: per socket pair, host, service, "
                   "state, port class (IANA ranges) or tunnel (the tunnelled flows)")


def live_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tracker live", epilog=LIVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Capture on a network interface (as root) and group the packets into "
        "socket-pair flows with their states, with the same flow table as 'tracker read'.")
    p.add_argument("-i", "--interface", required=True, metavar="IFACE",
                   help="the interface to capture on; any: every interface (Linux cooked "
                   "frames, as tcpdump -i any)")
    p.add_argument("-f", "--filter", metavar="EXPR",
                   help="a tcpdump filter expression, run by the kernel on the socket")
    p.add_argument("-s", "--snaplen", type=_positive_int, default=262144, metavar="N",
                   help="bytes kept of each frame (default 262144, as tcpdump)")
    stop = p.add_mutually_exclusive_group()
    stop.add_argument("--duration", type=_seconds, metavar="S",
                      help="stop after S seconds (from the 'listening on' line)")
    stop.add_argument("--count", type=_positive_int, metavar="N",
                      help="stop after N frames")
    p.add_argument("-w", "--write", metavar="FILE",
                   help="also write every captured frame to this pcap file")
    p.add_argument("--interval", type=_seconds, metavar="S",
                   help="on a terminal: refresh the live view every S seconds (default 1); "
                   "with --format json: print one JSON snapshot line every S seconds")
    _output(p, FLOW_FORMATS)
    _view(p)
    _flow_options(p)
    return p


def packets_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tracker packets", epilog=PACKETS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Decode the headers of every frame of captures and print one row per "
        "frame with the flow it belongs to (the flow options are those of 'tracker read').")
    _captures(p)
    _output(p, PACKET_FORMATS)
    p.add_argument("-c", "--count", type=_positive_int, metavar="N", help="stop after N frames")
    _flow_options(p)
    return p


def columns_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tracker columns", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print the documented columns of the flows (default) or packets table, "
        "or with --values every value of one coded column and what it means.",
        epilog="examples:\n  tracker columns\n  tracker columns packets\n"
        "  tracker columns --values conn_state\n  tracker columns --values history")
    p.add_argument("table", nargs="?", choices=("flows", "packets"), default="flows",
                   help="which table (default: flows)")
    p.add_argument("--values", metavar="COLUMN",
                   help="list the values of COLUMN (conn_state, history, state, orig_state, "
                   "resp_state, end_reason, orig_reason, proto, port_class, status)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    return p


COMMANDS = {"read": read_parser, "packets": packets_parser, "live": live_parser,
            "columns": columns_parser}


def main_parser(version: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tracker", usage="tracker [-h] [--version] COMMAND ...",
        description="Socket-pair flows and their connection states, from the wire.",
        epilog=MAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"tracker {version}")
    p.add_argument("command", choices=tuple(COMMANDS), metavar="COMMAND",
                   help="read, packets, live or columns")
    return p
