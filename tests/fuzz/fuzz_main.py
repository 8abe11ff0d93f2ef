"""What every atheris target script shares: instrumented imports and the libFuzzer loop.

A target script imports ``fuzz_contract`` (and through it ``tracker``) under
atheris' coverage instrumentation only when it runs as a fuzzer, so that the
same ``one_input`` function can be imported by the regression tests without
atheris. Modules that hold numba-compiled functions are left uninstrumented
(numba compiles Python bytecode, and atheris' hooks in it would not compile),
unless ``NUMBA_DISABLE_JIT=1`` runs them as plain Python, where the
instrumentation is what guides the fuzzer through the flow table's state
machine.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# Modules with @njit functions (tracker/jit.py users, fragments, the record walkers).
NUMBA_MODULES = (
    "tracker.flows.history", "tracker.flows.tcp_session", "tracker.flows.tcp_endpoint",
    "tracker.flows.timers", "tracker.flows.fragments", "tracker.flows.store",
    "tracker.flows.packet_loop", "tracker.flows.gaps", "tracker.flows.key", "tracker.jit",
    "tracker.decode.plain",
)


def setup_path() -> None:
    """Make ``tracker`` (the work tree) and the helper modules here importable."""
    for p in (str(REPO), str(HERE)):
        if p not in sys.path:
            sys.path.insert(0, p)


def jit_disabled() -> bool:
    """Whether numba runs compiled functions as Python (NUMBA_DISABLE_JIT=1)."""
    return os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")


def instrument(modules: Sequence[str], exclude: Sequence[str] = (),
               dataflow: Sequence[str] = ()) -> None:
    """Import ``modules`` with coverage instrumentation of ``tracker`` (except ``exclude``).

    Comparisons are traced (libFuzzer then learns magic numbers from them) only
    in the ``dataflow`` modules: atheris 3.0.0 leaks the result of every traced
    comparison that is not a plain int or bytes, so tracing ``array == value``
    in numpy code leaks the whole boolean array each time (10 KB per call for
    10 000 elements, measured; about 35 MB per 1000 flow-table inputs).
    """
    from atheris.import_hook import AtherisMetaPathFinder

    class Finder(AtherisMetaPathFinder):  # type: ignore[misc]
        """Atheris' import hook, with comparison tracing chosen per module."""

        def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
            self._trace_dataflow = fullname in dataflow
            return super().find_spec(fullname, path, target)

    skip = set() if jit_disabled() else {*NUMBA_MODULES, *exclude}
    finder = Finder({"tracker"}, skip, True, False)
    sys.meta_path.insert(0, finder)  # first, so that it sees tracker's modules before others
    try:
        for name in modules:
            importlib.import_module(name)
    finally:
        sys.meta_path.remove(finder)


def fuzz(one_input: Callable[[bytes], object], warmup: Sequence[bytes] = ()) -> None:
    """Run libFuzzer (through atheris) on ``one_input`` with the command-line options.

    The ``warmup`` inputs run first, outside libFuzzer's per-input ``-timeout``:
    they load (or compile, when the source changed) numba's code, which can take
    longer than the timeout allows one input.
    """
    import atheris

    for data in warmup:
        one_input(data)
    atheris.Setup(list(sys.argv), one_input)
    atheris.Fuzz()
