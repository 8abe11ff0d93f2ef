"""Shared test fixtures: where the repo, its captures and the shared corpus are."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "captures"
CORPUS = REPO.parent / "shared" / "corpus"


def corpus_traces() -> list[Path]:
    """Every capture in the shared corpus (empty when the corpus is absent)."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.glob("*/*/trace.pcap*"))


def present(params: list[object], where: Path) -> list[object]:
    """A test's parameters over files of ../shared; when there are none, one parameter that
    skips saying what is missing (pytest's skip of an empty set names no prerequisite)."""
    if params:
        return params
    reason = f"the shared files are absent: expected them at {where}"
    return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="absent")]


def need_corpus() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is absent: expected it at {CORPUS}")
