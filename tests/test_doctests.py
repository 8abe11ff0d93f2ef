"""The examples in public docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

from tests.conftest import REPO

MODULES = ["tracker.api", "tracker.frames", "tracker.flows", "tracker.flows.options",
           "tracker.report.addresses", "tracker.report.summarize", "tracker.pipeline",
           "tracker.report.columns", "tracker.report.netstat", "tracker.sources.rotated",
           "tracker.sources.memory"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # examples read captures/ by relative path, as a user would
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0
