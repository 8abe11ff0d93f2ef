"""The numba decorators of the flow table's compiled code, in one place.

``_nrt=False`` compiles without numba's reference-counting runtime: the
kernel never allocates, and without the runtime a call between compiled
functions does not increment and decrement every array it passes, which
halves the time per packet (measured on gen_pcap captures).
``inline="always"`` is kept for the small functions on the per-packet path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from numba import njit

F = TypeVar("F", bound=Callable[..., Any])
_OPTIONS: dict[str, Any] = {"cache": True, "_nrt": False}


def kernel(fn: F) -> F:
    """Compile ``fn`` (cached on disk, no refcounting runtime)."""
    return njit(**_OPTIONS)(fn)  # type: ignore[no-any-return]


def kernel_inline(fn: F) -> F:
    """As ``kernel``, and inline it into its callers at numba IR level."""
    return njit(inline="always", **_OPTIONS)(fn)  # type: ignore[no-any-return]
