"""The benchmark's environment: installing the peers, measuring a job, describing the machine."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_VENV = HERE / ".peers-venv"
PEERS_PY = PEERS_VENV / "bin" / "python"
PIP_PEERS = ["scapy", "dpkt", "nfstream"]
APT_PEERS = ["tshark", "argus-server", "argus-client"]
APT_COMMANDS = ["tshark", "argus", "racluster"]
# tshark's package asks whether non-root users may capture; answer "no" ahead of time.
DEBCONF = "wireshark-common wireshark-common/install-setuid boolean false\n"


def log(msg: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def peers_python_ok() -> bool:
    """The peers' venv exists and imports every pip peer."""
    if not PEERS_PY.exists():
        return False
    probe = subprocess.run(
        [str(PEERS_PY), "-c", "import scapy, dpkt, nfstream"], capture_output=True, check=False
    )
    return probe.returncode == 0


def install_pip_peers() -> str:
    """Make benchmarks/.peers-venv with scapy, dpkt and nfstream; '' or why not."""
    if peers_python_ok():
        return ""
    log(f"installing {' '.join(PIP_PEERS)} into {PEERS_VENV}")
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [base, "-m", "venv", str(PEERS_VENV)],
        [str(PEERS_PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PIP_PEERS],
    ]
    for cmd in steps:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode:
            return f"pip failed: {(res.stderr or res.stdout).strip().splitlines()[-1:]}"
    return "" if peers_python_ok() else "imports fail after install"


def install_apt_peers() -> str:
    """apt-get install tshark and Argus when missing; '' or why not."""
    if all(shutil.which(c) for c in APT_COMMANDS):
        return ""
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if sudo is None or not shutil.which("apt-get"):
        return "needs apt-get as root"
    log(f"installing {' '.join(APT_PEERS)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(
        [*sudo, "debconf-set-selections"],
        input=DEBCONF,
        text=True,
        capture_output=True,
        check=False,
    )
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-q", *APT_PEERS]):
        res = subprocess.run(
            [*sudo, *cmd],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if res.returncode:
            return f"apt-get failed: {(res.stderr or res.stdout).strip().splitlines()[-1:]}"
    return ""


@dataclass
class Measured:
    """One job: process wall time, peak RSS of it and its children, exit code and output."""

    wall: float
    rss_mb: float
    code: int
    out: str
    err: str

    def report(self) -> dict[str, float]:
        """The JSON line a peer script printed last (its own timing), or {}."""
        for line in reversed(self.out.strip().splitlines()):
            if line.startswith("{"):
                try:
                    return dict(json.loads(line))
                except ValueError:
                    break
        return {}


# A small launcher runs each job and reports its peak RSS. Measured from this process
# directly, a child's ru_maxrss would start at this process's own RSS: Linux keeps the
# memory high-water mark of the forked copy across exec, and this process holds the big
# truth tables (that made tracker read on std-20M look 60 MB bigger than it is).
_LAUNCHER = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[2:])\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "open(sys.argv[1], 'w').write(f'{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}')\n"
)


def measure(
    cmd: list[str], timeout: float, cwd: Path | None = None, extra_env: dict[str, str] | None = None
) -> Measured:
    """Run ``cmd`` and take its wall time and peak RSS (ru_maxrss from wait4 covers its children)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as usage_file:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, usage_file.name, *cmd],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, **(extra_env or {})},
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        _, status, _ = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        killer.cancel()
        reported = usage_file.read().split()
        code, kb = (int(reported[0]), int(reported[1])) if len(reported) == 2 \
            else (os.waitstatus_to_exitcode(status) or 1, 0)
        proc.returncode = code
        out.seek(0)
        err.seek(0)
        return Measured(
            wall,
            kb / 1024,
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def _first_line(cmd: list[str]) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "absent"
    lines = (res.stdout + res.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def _meminfo() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def versions() -> dict[str, str]:
    """Versions of the tracker's dependencies and of every peer."""
    out = {}
    for pkg in ("numpy", "pandas", "numba"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "absent"
    if PEERS_PY.exists():
        code = (
            "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
            f"{PIP_PEERS!r}}}))"
        )
        res = subprocess.run(
            [str(PEERS_PY), "-c", code], capture_output=True, text=True, check=False
        )
        if res.returncode == 0:
            out.update(json.loads(res.stdout))
    out["tshark"] = _first_line(["tshark", "--version"])
    out["argus"] = _first_line(["argus", "-h"])
    out["tracker commit"] = _first_line(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"])
    return out


def machine() -> list[str]:
    """Lines describing this machine."""
    return [
        f"nproc {os.cpu_count()}, CPU {_cpu_model()}, memory {_meminfo()}",
        f"{platform.platform()}, Python {platform.python_version()}",
    ]
