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


# Corpus traces whose flows have tunnel parents, IPv6 and missing (<NA>) byte counts.
TUNNELLED = ("4in4tunnel", "6in6tunnel", "ipv6_in_gtp", "capwap", "dlt_ppp")


def tunnelled_traces() -> list[Path]:
    """The TUNNELLED traces of the corpus (the test skips when it is absent)."""
    need_corpus()
    traces = [t for t in corpus_traces() if t.parent.name in TUNNELLED]
    assert traces, f"none of {TUNNELLED} in the corpus"
    return traces
