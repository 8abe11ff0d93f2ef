"""The ``tracker`` command line.

Only argparse is imported at start-up; numpy, pandas and numba load when a
command runs, so ``tracker --help`` answers at once. Options may come before
or after the file names. Bad usage (an unknown option, a bad value, an
``OptionError``) prints the command's usage and one line, exit 2; a file that
cannot be read and the tracker's other errors print one line ``tracker:
error: ...``, exit 1; Ctrl-C writes what was read and exits 130. Never a
traceback.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

from tracker import __version__
from tracker.cli.parsers import COMMANDS, main_parser


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                  line: Any = None) -> None:
    # One line per warning, no source excerpt: users need the what, not our line numbers.
    print(f"tracker: warning: {message}", file=sys.stderr)


def _prepare_numba(captures: list[str], standalone: bool) -> None:
    """Turn numba off for this process when the input is small regular files
    (below ``tracker.jit.SMALL_INPUT`` in all: see there why); else load it without
    its BLAS probe (``tracker.jit.without_blas_probe``).

    Only in a ``tracker`` process of its own (``console``): a library caller's
    process and environment are left alone.
    """
    from tracker import jit

    if not standalone or "numba" in sys.modules:
        return
    files = all(c != "-" and os.path.isfile(c) for c in captures)
    if files and sum(os.path.getsize(c) for c in captures) < jit.SMALL_INPUT:
        os.environ.setdefault("NUMBA_DISABLE_JIT", "1")
    if not jit.interpreted():
        jit.without_blas_probe()


def console() -> int:
    """The ``tracker`` command and ``python -m tracker``: main() in a process of its own."""
    return main(standalone=True)


def main(argv: list[str] | None = None, *, standalone: bool = False) -> int:
    """Run the command line; ``standalone`` only when this process is the command itself."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        main_parser(__version__).parse_args(argv[:1])  # help, version, or a usage error
        return 2
    parser = COMMANDS[argv[0]]()
    args = parser.parse_intermixed_args(argv[1:])
    warnings.showwarning = _show_warning
    if hasattr(args, "captures"):
        _prepare_numba(args.captures, standalone)
    from tracker.errors import OptionError, TrackerError

    try:
        if argv[0] == "live":  # opens the capture before the heavy modules load
            from tracker.cli.live import run_live

            return run_live(args)
        from tracker.cli.commands import RUN

        return RUN[argv[0]](args)
    except OptionError as exc:  # a bad option value is bad usage
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except TrackerError as exc:
        print(f"tracker: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):  # `tracker packets x | head` is normal use
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
            return 0
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"tracker: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
