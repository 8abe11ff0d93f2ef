#!/usr/bin/env python3
"""Side-by-side benchmark: the tracker against Scapy, dpkt, NFStream, tshark and Argus.

    .venv/bin/python benchmarks/run.py            # full run (1M, 1M short-flow, 5M, 20M packets)
    .venv/bin/python benchmarks/run.py --quick    # small files: checks the harness in a minute
    .venv/bin/python benchmarks/run.py --versus-argus F.pcap...   # tracker vs Argus, interleaved

Makes the capture files under benchmarks/data when absent (benchmarks/synth.py),
installs the peers when missing (pip: benchmarks/.peers-venv; apt-get: tshark,
argus-server, argus-client), runs every tool on the same files as a separate
process, and prints one markdown table (also written to benchmarks/RESULTS.md;
with --quick to benchmarks/data/RESULTS-quick.md). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_compare as cmp
import bench_env as env
from bench_report import ARGUS_ALONE, Row, goals, table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# The tracker's jobs import the work tree's package whatever the venv's install says.
TRACKER_ENV = {"PYTHONPATH": str(REPO)}
DATA = HERE / "data"
JOB_TIMEOUT_S = 3600


@dataclass(frozen=True)
class Spec:
    """A capture file: its name, the generator options, and the tier of its size."""

    name: str
    packets: int
    short: bool
    tier: int  # 0 small, 1 standard, 2 big, 3 huge: a tool runs up to its own tier
    sibling: str  # the next smaller file of the same mix, for tools that stop below


def specs(quick: bool) -> dict[str, Spec]:
    """The files of a run by role (quick: the same mixes, much smaller)."""
    small, std, big, huge = (
        (5_000, 20_000, 50_000, 100_000) if quick else (100_000, 1_000_000, 5_000_000, 20_000_000)
    )

    def name(mix: str, n: int) -> str:
        size = f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"
        return f"{'q-' if quick else ''}{mix}-{size}"

    return {
        "std-small": Spec(name("std", small), small, False, 0, ""),
        "short-small": Spec(name("short", small), small, True, 0, ""),
        "std": Spec(name("std", std), std, False, 1, "std-small"),
        "short": Spec(name("short", std), std, True, 1, "short-small"),
        "big": Spec(name("std", big), big, False, 2, "std"),
        "huge": Spec(name("std", huge), huge, False, 3, "big"),
    }


@dataclass(frozen=True)
class Tool:
    """A measured tool: how to run it, on which files, up to which size tier."""

    name: str
    runner: str  # "peer" script, "tracker" script, or "cli"
    script: str
    roles: tuple[str, ...]
    max_tier: int
    tshark_bytes: bool = False


TOOLS = [
    Tool("Scapy PcapReader", "peer", "scapy_reader.py", ("std", "short"), 0),
    Tool("Scapy RawPcapReader+struct", "peer", "scapy_raw.py", ("std", "short", "big"), 2),
    Tool("dpkt", "peer", "dpkt_count.py", ("std", "short"), 1),
    Tool("NFStream", "peer", "nfstream_count.py", ("std", "short", "big"), 2),
    Tool("tshark -z conv", "peer", "tshark_conv.py", ("std", "short"), 1, tshark_bytes=True),
    Tool("Argus + racluster", "peer", "argus_count.py", ("std", "short", "big"), 3),
    Tool("tracker.read_packets", "tracker", "tracker_packets.py", ("std", "short", "big"), 3),
    Tool("tracker.read_flows", "tracker", "tracker_flows.py", ("std", "short", "big"), 3),
    Tool("tracker read --format csv", "cli", "", ("std", "short", "big", "huge"), 3),
]


def ensure_file(s: Spec) -> tuple[Path, Path, int]:
    """Generate the capture and truth when absent; returns them and the packet count."""
    DATA.mkdir(parents=True, exist_ok=True)
    pcap, truth, meta = (
        DATA / f"{s.name}.pcap",
        DATA / f"{s.name}.truth.csv",
        DATA / f"{s.name}.json",
    )
    args = ["--packets", str(s.packets), "--seed", "1"] + (["--short-flows"] if s.short else [])
    if meta.exists() and pcap.exists() and truth.exists():
        info = json.loads(meta.read_text())
        if info.get("args") == args:
            return pcap, truth, int(info["packets"])
    env.log(f"generating {pcap.name} ({s.packets} packets)")
    subprocess.run(
        [sys.executable, str(HERE / "synth.py"), "-o", str(pcap), "--truth", str(truth), *args],
        check=True,
    )
    t = cmp.read_table(truth)
    packets = sum(v[0] + v[2] for v in t.counts.values())
    meta.write_text(json.dumps({"args": args, "packets": packets, "flows": len(t.counts)}))
    return pcap, truth, packets


def available(tool: Tool, missing: dict[str, str]) -> str:
    """'' when the tool can run, else why not."""
    if tool.runner == "peer":
        apt = tool.script in ("tshark_conv.py", "argus_count.py")
        return missing.get("apt" if apt else "pip", "")
    return missing.get(tool.script or "cli", "")


def tracker_missing() -> dict[str, str]:
    """Which tracker entry points do not exist yet."""
    out = {}
    probes = {
        "tracker_flows.py": "import tracker; tracker.read_flows",
        "tracker_packets.py": "import tracker; tracker.read_packets",
    }
    for script, code in probes.items():
        if subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            cwd=REPO,
            env={**os.environ, **TRACKER_ENV},
            check=False,
        ).returncode:
            out[script] = "not available (no such function yet)"
    if subprocess.run(
        [sys.executable, "-m", "tracker", "read", "--help"],
        capture_output=True,
        cwd=REPO,
        env={**os.environ, **TRACKER_ENV},
        check=False,
    ).returncode:
        out["cli"] = "not available (no `tracker read` command yet)"
    return out


def command(tool: Tool, pcap: Path, out: Path) -> list[str]:
    """The command line of one job."""
    if tool.runner == "cli":
        return [
            sys.executable,
            "-m",
            "tracker",
            "read",
            str(pcap),
            "--format",
            "csv",
            "-o",
            str(out),
        ]
    py = str(env.PEERS_PY) if tool.runner == "peer" else sys.executable
    return [py, str(HERE / "peers" / tool.script), str(pcap), str(out)]


def warm_up(tool: Tool, pcap: Path) -> None:
    """One unmeasured run on a small file, so numba's on-disk cache holds the compiled code."""
    with tempfile.TemporaryDirectory() as tmp:
        env.measure(
            command(tool, pcap, Path(tmp) / "flows.csv"),
            JOB_TIMEOUT_S,
            cwd=REPO,
            extra_env=TRACKER_ENV,
        )


def run_job(
    tool: Tool, spec: Spec, truth: cmp.Table, packets: int, pcap: Path, repeat: int = 1
) -> Row:
    """Run one tool on one file (the fastest of ``repeat`` runs) and check its flows."""
    env.log(f"{tool.name} on {spec.name}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "flows.csv"
        ours = tool.runner != "peer"
        runs = [
            env.measure(
                command(tool, pcap, out),
                JOB_TIMEOUT_S,
                cwd=REPO if ours else None,
                extra_env=TRACKER_ENV if ours else None,
            )
            for _ in range(max(1, repeat))
        ]
        m = min(runs, key=lambda r: (r.code != 0, float(r.report().get("seconds", r.wall))))
        rep = m.report()
        seconds = float(rep.get("seconds", m.wall))
        row = Row(tool.name, spec.name, packets, packets / max(seconds, 1e-9), m.wall, m.rss_mb)
        if m.code:
            row.agree = f"FAILED (exit {m.code}): {(m.err.strip().splitlines() or [''])[-1][:120]}"
            return row
        if tool.script == "tracker_packets.py":
            rows = int(rep.get("rows", -1))
            row.flows, row.agree = (
                "n/a",
                "yes (one row per packet)" if rows == packets else f"NO: {rows} rows",
            )
            return row
        try:
            got = cmp.read_table(out, cmp.TRACKER_COLS if tool.runner != "peer" else cmp.TRUTH_COLS)
        except (OSError, ValueError) as exc:
            row.agree = f"NO: {exc}"
            return row
        row.flows = cmp.flows_found(got)
        row.agree = cmp.agreement(truth, got, cmp.tshark_rounding if tool.tshark_bytes else None)
        if "argus_seconds" in rep:  # Argus's own flow meter, without racluster's table
            secs = float(rep["argus_seconds"])
            row.extra = Row(
                ARGUS_ALONE,
                spec.name,
                packets,
                packets / max(secs, 1e-9),
                secs,
                row.rss_mb,
                row.flows,
                "(its records, merged above)",
            )
        return row


def run(a: argparse.Namespace) -> list[Row]:
    """Every job of the run, in file order."""
    sp = specs(a.quick)
    missing = {
        k: v
        for k, v in (
            ("pip", a.no_install or env.install_pip_peers()),
            ("apt", a.no_install or env.install_apt_peers()),
        )
        if v
    }
    if a.no_install:
        missing = {
            k: "not installed (--no-install)"
            for k in ("pip", "apt")
            if not (
                env.peers_python_ok()
                if k == "pip"
                else all(map(env.shutil.which, env.APT_COMMANDS))
            )
        }
    missing.update(tracker_missing())
    files: dict[str, tuple[Path, cmp.Table, int]] = {}
    done: dict[tuple[str, str], Row] = {}
    rows = []
    for role in ("std", "short", "big", "huge"):
        for tool in TOOLS:
            if role not in tool.roles or (
                a.tools and not any(t.lower() in tool.name.lower() for t in a.tools)
            ):
                continue
            why = available(tool, missing)
            if why:
                rows.append(Row(tool.name, sp[role].name, agree=why))
                continue
            target: str = role
            while sp[target].tier > tool.max_tier:
                target = sp[target].sibling
            spec = sp[target]
            if spec.name not in files:
                pcap, truth_path, packets = ensure_file(spec)
                files[spec.name] = (pcap, cmp.read_table(truth_path), packets)
            pcap, truth, packets = files[spec.name]
            key = (tool.name, spec.name)
            if tool.runner != "peer" and not any(k[0] == tool.name for k in done):
                warm_up(tool, ensure_file(sp["std-small"])[0])
            if key not in done:
                done[key] = run_job(tool, spec, truth, packets, pcap, a.repeat)
            row = done[key]
            rows.append(
                row if target == role else row.extrapolated(sp[role].name, sp[role].packets)
            )
            if row.extra and target == role:
                rows.append(row.extra)
    return rows


def versus_argus(pcaps: list[Path], rounds: int) -> str:
    """``tracker read --format csv`` against Argus (``argus -r`` + ``racluster``, CSV too),
    interleaved (tracker, Argus, tracker, Argus, ...) on each file, best of ``rounds``
    each: this machine's noise hits both alike. A markdown table with the ratio."""
    cli = next(t for t in TOOLS if t.runner == "cli")
    head = ("| capture | tracker s (best) | Argus + racluster s (best) | argus alone s | "
            "Argus / tracker | all runs: tracker; Argus |")
    lines = [head, "|---|---|---|---|---|---|"]
    for pcap in pcaps:
        warm_up(cli, pcap)
        ours, theirs, alone = [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(rounds):
                m = env.measure(command(cli, pcap, Path(tmp) / "t.csv"), JOB_TIMEOUT_S,
                                cwd=REPO, extra_env=TRACKER_ENV)
                a = env.measure([sys.executable, str(HERE / "peers" / "argus_count.py"),
                                 str(pcap), str(Path(tmp) / "a.csv")], JOB_TIMEOUT_S)
                if m.code or a.code:
                    raise SystemExit(f"versus Argus on {pcap}: a run failed: "
                                     f"{(m.err or a.err).strip()[-200:]}")
                ours.append(m.wall)
                theirs.append(a.wall)
                alone.append(float(a.report().get("argus_seconds", a.wall)))
        lines.append(f"| {pcap.name} | {min(ours):.2f} | {min(theirs):.2f} | {min(alone):.2f} | "
                     f"**{min(theirs) / min(ours):.2f}x** | "
                     f"{', '.join(f'{x:.2f}' for x in ours)}; "
                     f"{', '.join(f'{x:.2f}' for x in theirs)} |")
    return "\n".join(lines)


HAND_WRITTEN = "\n## Notes on the goals"  # where the sections written by hand begin


def hand_written(out: Path, generated: str) -> str:
    """``generated`` (the table and its goals), then the sections of ``out`` written by hand
    after an earlier run (notes, live capture, tunnels, Dask, ...), kept as they are."""
    old = out.read_text() if out.exists() else ""
    at = old.find(HAND_WRITTEN)
    return generated + (old[at:] if at >= 0 else "")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick", action="store_true", help="small files: check the harness in a minute"
    )
    p.add_argument(
        "--no-install", action="store_true", help="do not pip/apt-get install missing peers"
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each job N times, keep the fastest (busy machines)",
    )
    p.add_argument("--tools", nargs="*", help="only tools whose name contains one of these words")
    p.add_argument("--versus-argus", nargs="+", type=Path, metavar="PCAP",
                   help="only the interleaved tracker-vs-Argus comparison on these files "
                        "(issue 15's goal: at least 2x), best of --rounds each")
    p.add_argument("--rounds", type=int, default=4,
                   help="rounds of the tracker-vs-Argus comparison (default 4)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.versus_argus:
        missing = "" if a.no_install else env.install_apt_peers()
        if missing or not all(map(env.shutil.which, ("argus", "racluster"))):
            raise SystemExit(f"run.py: Argus is not installed ({missing or 'argus, racluster'})")
        print(versus_argus(a.versus_argus, a.rounds))
        return 0
    started = datetime.datetime.now(datetime.UTC)
    rows = run(a)
    text = table(rows)
    print(text)
    goal_lines = goals(rows, specs(a.quick))
    print("\n".join(goal_lines))
    cmd = " ".join(
        shlex.quote(x) for x in [".venv/bin/python", "benchmarks/run.py", *(argv or sys.argv[1:])]
    )
    out = DATA / "RESULTS-quick.md" if a.quick else HERE / "RESULTS.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    vers = env.versions()
    out.write_text(hand_written(out, "\n".join(
            [
                "# Benchmark results",
                "",
                f"Run {started:%Y-%m-%d %H:%M} UTC with `{cmd}`.",
                "",
                "Machine: " + "; ".join(env.machine()) + ".",
                "",
                "Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + ".",
                "",
                text,
                "",
                "## Goals",
                "",
                *[f"- {g}" for g in goal_lines],
                "",
                "How to read this table: see benchmarks/README.md.",
                "",
            ]
    )))
    env.log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
