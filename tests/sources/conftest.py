"""Fixtures of the capture reader tests."""

from __future__ import annotations

import pytest

from tracker import jit
from tracker.sources import _walk


@pytest.fixture(params=["interpreted", "compiled"])
def walk_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the interpreted walkers, then with the numba-compiled ones."""
    if request.param == "compiled":
        _walk.walkers(1 << 40)  # load (or compile) once; later tests reuse it
        monkeypatch.setattr(jit, "SMALL_INPUT", 0)
    else:
        monkeypatch.setattr(_walk, "_compiled", None)
        monkeypatch.setattr(jit, "SMALL_INPUT", 1 << 62)
    return str(request.param)
