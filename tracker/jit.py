"""numba in one place: the decorators of the compiled loops, and when not to compile.

Two loops are sequential by nature and compiled: walking the records of a
capture file (sources/_walk.py) and the per-packet flow table (flows/); others
decode the plain frames' headers (decode/plain.py) and write the flows' CSV
text byte by byte (report/csv_text.py).
Below ``SMALL_INPUT`` bytes of capture both run as plain Python: loading
numba and its cached machine code costs about 0.4 s, more than interpreting
a few thousand packets. The results are the same either way (the tests run
the scenario captures both ways).

``_nrt=False`` compiles without numba's reference-counting runtime: the
kernel never allocates, and without the runtime a call between compiled
functions does not increment and decrement every array it passes, which
halves the time per packet (measured on gen_pcap captures).
``inline="always"`` is kept for the small functions on the per-packet path.
``nogil=True``: the kernels touch no Python object, so they let go of the GIL and a
file's next batches decode in a second thread while the flow table walks
(pipeline.py ReadAhead).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
_OPTIONS: dict[str, Any] = {"cache": True, "_nrt": False, "nogil": True}
SMALL_INPUT = 512 << 10


def interpreted() -> bool:
    """Whether compiled code stays plain Python in this process.

    With NUMBA_DISABLE_JIT=1 (the CLI sets it for small inputs) the functions
    stay plain Python and numba is never imported: that saves its import
    (~0.15 s) too.
    """
    return os.environ.get("NUMBA_DISABLE_JIT") == "1"


def without_blas_probe() -> None:
    """Import numba with its probe for BLAS answered "none", in a ``tracker`` process
    of its own (the CLI calls it; a library caller's process is left alone).

    numba decides once per process whether np.dot and np.linalg compile, by
    importing all of scipy.linalg when scipy is installed: 0.15 s of every start
    (0.51 -> 0.36 s for numpy and numba). The compiled loops here do no linear
    algebra, and numba treats a scipy that cannot be imported as no BLAS.
    """
    import sys

    hide = "scipy" not in sys.modules
    if hide:
        sys.modules["scipy"] = None  # type: ignore[assignment]  # import scipy fails
    try:
        import numba.np.arraymath  # noqa: F401  # where the probe runs, once
    finally:
        if hide:
            del sys.modules["scipy"]


def _njit(fn: F, **options: Any) -> F:
    if interpreted():
        return fn
    from numba import njit

    return njit(**options)(fn)  # type: ignore[no-any-return]


def kernel(fn: F) -> F:
    """Compile ``fn`` (cached on disk, no refcounting runtime)."""
    return _njit(fn, **_OPTIONS)


def kernel_inline(fn: F) -> F:
    """As ``kernel``, and inline it into its callers at numba IR level."""
    return _njit(fn, inline="always", **_OPTIONS)


def compiled(fn: F) -> F:
    """Compile ``fn`` (cached on disk) with numba's defaults, runtime included."""
    return _njit(fn, cache=True)


def kernel_wrapping(fn: F) -> F:
    """As ``kernel_inline``, for arithmetic that wraps modulo 2**64 on purpose (hashing).

    Compiled, it wraps silently; as plain Python, numpy's uint64 scalars warn
    "overflow encountered" on every wrap, so there it runs with those warnings off.
    """
    if not interpreted():
        return kernel_inline(fn)
    import numpy as np

    @functools.wraps(fn)
    def quiet(*args: Any) -> Any:
        with np.errstate(over="ignore"):
            return fn(*args)

    return quiet  # type: ignore[return-value]
