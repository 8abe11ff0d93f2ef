"""Every notebook runs top to bottom in a real Jupyter kernel of the project's venv, with
no error and nothing printed on stderr (a warning) by any cell."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_clean(path: Path) -> None:
    sys.path.insert(0, str(REPO / "notebooks"))
    try:
        from run import execute
    finally:
        sys.path.pop(0)
    assert execute(path, write=False) == []


def test_notebooks_are_committed_with_their_figures() -> None:
    """Browsing the repository shows the figures: outputs are stored, as inline PNG."""
    import nbformat

    assert NOTEBOOKS
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        outputs = [o for c in book.cells if c.cell_type == "code" for o in c.outputs]
        assert outputs, path.name
        if "tracker.plot" in path.read_text():
            assert any("image/png" in o.get("data", {}) for o in outputs), path.name
