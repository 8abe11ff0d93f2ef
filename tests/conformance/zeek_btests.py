#!/usr/bin/env python3
"""The flow table against every conn.log baseline of a Zeek source checkout's btests.

    .venv/bin/python tests/conformance/zeek_btests.py ZEEK_CHECKOUT [--keep DIR]

Not a test run in CI (it needs a Zeek checkout, ~900 traces): a wider check than
../shared/corpus, whose 22 Zeek traces came from the same place. For each
``testing/btest/Baseline/<test>/conn*.log`` whose btest reads exactly one trace with
``zeek -r``, the trace, the baseline and the btest's ``@TEST-EXEC``, ``@load`` and
``redef`` lines go into a corpus-style folder (``cmd.txt``, as zeek_baselines.py
reads it: bare mode, ``-C``), and test_zeek.py's ``compare`` matches the rows.
Baselines cut to a few columns without the 5-tuple (``btest-diff-cut``) are compared
on their multiset of ``history`` values. A ``-f`` capture filter on the zeek line is applied
with the tracker's own tcpdump filter, as ``--filter`` does. Btests that change Zeek's
configuration beyond the options read here (redefs of limits or timeouts, scripts that
drop packets or schedule timers) differ by design; read the lines printed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]

from test_zeek import compare, load_trace, run_flows
from zeek_baselines import cases, exec_line, read_table, trace_file_name

from tracker.decode.bpf import BpfFilter
from tracker.report.flows import flows_dataframe

BTEST = "testing/btest"
TUPLE = {"id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"}


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                          check=False).stdout


def build(repo: Path, out: Path) -> int:
    """Corpus folders under ``out`` from the checkout's HEAD; how many baselines."""
    files = git(repo, "ls-tree", "-r", "--name-only", "HEAD", BTEST).decode().splitlines()
    tests = {re.sub(r"\.(zeek|test|sh|bro)$", "", f[len(BTEST) + 1:]).replace("/", "."): f
             for f in files if not f.startswith((f"{BTEST}/Baseline/", f"{BTEST}/Traces/"))}
    made = 0
    for f in files:
        m = re.match(rf"{BTEST}/Baseline/([^/]+)/(conn[^/]*\.log)$", f)
        if not m or m.group(1) not in tests:
            continue
        name, base = m.groups()
        script = git(repo, "show", f"HEAD:{tests[name]}").decode(errors="replace")
        execs = [x.strip() for x in script.splitlines() if "@TEST-EXEC:" in x]
        traces = {t for x in execs if " zeek " in f" {x} " for t in re.findall(r"\$TRACES/(\S+)", x)}
        if len(traces) != 1:
            continue
        trace = traces.pop()
        blob = git(repo, "show", f"HEAD:{BTEST}/Traces/{trace}")
        if not blob:
            continue
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        ext = ".pcapng" if trace.endswith(".pcapng") else ".pcap.gz" if trace.endswith(".gz") \
            else ".pcap"
        (d / f"trace{ext}").write_bytes(blob)
        (d / base).write_bytes(git(repo, "show", f"HEAD:{f}"))
        loads = [x for x in script.splitlines() if re.match(r"\s*(@load|redef)\b", x)]
        (d / "cmd.txt").write_text(
            f"trace: {BTEST}/Traces/{trace}\nbtest script: {tests[name]}\n\n"
            + "\n".join("# " + x[x.index("@TEST-EXEC"):] for x in execs)
            + "\n\n" + "\n".join(loads) + "\n")
        made += 1
    return made


def with_filter(folder: Path, batches: list) -> list:
    """The batches as Zeek's ``-f "EXPR"`` leaves them (the tracker's tcpdump filter,
    as ``--filter`` applies it), when the btest's zeek line has one."""
    cmd = (folder / "cmd.txt").read_text()
    found = re.search(r'\s-f\s+"([^"]+)"', exec_line(cmd, trace_file_name(cmd)))
    if found is None:
        return batches
    bpf = BpfFilter(found.group(1))
    return [(fb, pb.take(bpf.matches(fb))) for fb, pb in batches]


def check(root: Path) -> tuple[int, int, int, int]:
    """Print every difference; (rows, rows matched, cut baselines, cut ones matched)."""
    rows = matched = cut = cut_ok = 0
    for case in cases(root):
        zeek = read_table(case.root / case.trace / case.baseline)
        records = run_flows(with_filter(case.root / case.trace, load_trace(case.capture)),
                            case.options)
        if not zeek:
            continue
        if not TUPLE <= zeek[0].keys():
            if "history" not in zeek[0]:
                continue
            ours = Counter(h if isinstance(h, str) and h else "-"
                           for h in flows_dataframe(records)["history"].astype(object))
            theirs = Counter(z["history"] for z in zeek)
            cut += 1
            cut_ok += ours == theirs
            if ours != theirs:
                print(f"{case.name}: history zeek {dict(theirs)} ours {dict(ours)}")
            continue
        total, ok, diffs = compare(case, records)
        rows, matched = rows + total, matched + ok
        for key, what, text in diffs[:6]:
            print(f"{case.name}: {key} {what}: {text}")
    return rows, matched, cut, cut_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("zeek", type=Path, help="a git checkout of github.com/zeek/zeek")
    parser.add_argument("--keep", type=Path, help="build the folders here and keep them")
    args = parser.parse_args()
    if not (args.zeek / BTEST).is_dir() and not git(args.zeek, "ls-tree", "HEAD", BTEST):
        print(f"zeek_btests: {args.zeek}: not a Zeek checkout (no {BTEST})", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        made = build(args.zeek, root)
        rows, matched, cut, cut_ok = check(root)
    print(f"{made} baselines: {matched}/{rows} rows match; "
          f"{cut_ok}/{cut} cut baselines match on history")
    return 0


if __name__ == "__main__":
    sys.exit(main())
