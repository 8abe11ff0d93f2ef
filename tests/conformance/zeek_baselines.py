"""Read the Zeek baselines of ../shared/corpus/zeek and the options each run used.

Each corpus dir has ``cmd.txt`` with the ``@TEST-EXEC`` lines and the
``@load`` / ``redef`` lines of the btest; ``options_for`` turns them into
FlowOptions: bare mode (``-b``) gives Zeek's bare likely-server ports plus
those of the loaded ``base/protocols/<x>`` scripts, no ``-C`` turns checksum
verification on, and the VLAN-aware baseline puts the VLAN in the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tracker.flows.options import ZEEK_SCRIPT_PORTS, FlowOptions


@dataclass(frozen=True)
class Case:
    """One Zeek baseline of one trace, and the options that reproduce its run."""

    trace: str  # corpus dir name
    baseline: str  # file name in that dir
    options: FlowOptions
    root: Path  # the folder of the trace dirs

    @property
    def capture(self) -> Path:
        return next((self.root / self.trace).glob("trace.pcap*"))

    @property
    def name(self) -> str:
        return f"{self.trace}/{self.baseline}"


def exec_line(cmd: str, trace_file: str) -> str:
    """The first ``zeek`` @TEST-EXEC line that reads the given trace."""
    for line in cmd.splitlines():
        if line.startswith("# @TEST-EXEC:") and " zeek " in f" {line} " and trace_file in line:
            return line
    return "# @TEST-EXEC: zeek -r (run from a shell script)"  # communityid: full scripts


def options_for(cmd: str, trace_file: str, *, verify: bool | None = None,
                vlan: bool = False) -> FlowOptions:
    """FlowOptions for the zeek run in cmd.txt that reads ``trace_file``."""
    line = exec_line(cmd, trace_file)
    flags = set(re.findall(r"\s(-[A-Za-z]+)", line))
    bare = any("b" in f for f in flags)
    checks = not any("C" in f for f in flags) if verify is None else verify
    if not bare:
        return FlowOptions(verify_checksums=checks, vlan_in_key=vlan)
    loaded = set(re.findall(r"base/protocols/([\w-]+)", cmd))
    scripts = sorted(s for s in loaded if s in ZEEK_SCRIPT_PORTS)
    return FlowOptions.zeek_bare(scripts, verify_checksums=checks, vlan_in_key=vlan)


def trace_file_name(cmd: str) -> str:
    """The upstream trace path (``testing/btest/Traces/<x>``) as exec lines name it."""
    m = re.search(r"^trace: testing/btest/Traces/(\S+)", cmd, re.MULTILINE)
    if not m:
        raise ValueError("cmd.txt names no trace")
    return m.group(1)


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows of a Zeek ASCII log, or of a zeek-cut (``-m``) output, as dicts."""
    lines = [x for x in path.read_text().splitlines() if x and not x.startswith("###")]
    fields_line = next((x for x in lines if x.startswith("#fields")), None)
    if fields_line is not None:
        names = fields_line.split("\t")[1:]
        body = [x for x in lines if not x.startswith("#")]
    else:
        names, body = lines[0].split("\t"), lines[1:]
    return [dict(zip(names, x.split("\t"), strict=False)) for x in body]


def read_conn_ids(path: Path) -> list[dict[str, str]]:
    """conn ids printed by the community-id btest: orig_h, orig_p, resp_h, resp_p, proto."""
    rows = []
    pattern = re.compile(r"orig_h=([^,]+), orig_p=(\d+)/(\w+), resp_h=([^,]+), resp_p=(\d+)/")
    for line in path.read_text().splitlines():
        m = pattern.search(line)
        if m:
            rows.append({"id.orig_h": m.group(1), "id.orig_p": m.group(2), "proto": m.group(3),
                         "id.resp_h": m.group(4), "id.resp_p": m.group(5)})
    return rows


RST_LINES = {  # expected_out_all4.txt: one "history, conn_state" line per trace, in this order
    "rst-single-rst": 0, "rst-syn-then-rst": 1, "rst-syn-then-ack-then-rst": 2,
    "rst-syn-then-stuff-then-rst": 3,
}


def read_rst_line(path: Path, trace: str) -> list[dict[str, str]]:
    """The one conn of an rst-* trace from the shared script output."""
    lines = [x for x in path.read_text().splitlines() if x and not x.startswith("###")]
    history, state = (x.strip() for x in lines[RST_LINES[trace]].split(","))
    return [{"history": history, "conn_state": state}]


def cases(zeek_dir: Path) -> list[Case]:
    """Every Zeek baseline in the corpus with the options of its run."""
    out: list[Case] = []
    for d in sorted(p for p in zeek_dir.iterdir() if p.is_dir()):
        cmd = (d / "cmd.txt").read_text()
        trace = trace_file_name(cmd)
        for base in sorted(p.name for p in d.iterdir()):
            if not (base.startswith("conn") or base == "expected_out_all4.txt"):
                continue
            if base == "conn.vlan-logging.log":
                continue  # the same run as conn.log, with two more columns
            verify = False if base == "conn-ignore-checksums.log" else None
            vlan = base.endswith("vlan-aware")
            if base.startswith("conn_ids") or base == "expected_out_all4.txt":
                opts = options_for(cmd, trace, verify=verify)
            else:
                opts = options_for(cmd, trace, verify=verify, vlan=vlan)
            out.append(Case(d.name, base, opts, zeek_dir))
    return out
