"""Compiled containers of the flow table: key -> slot hash table and timer heap.

Hash table: open addressing with linear probing over an int64 array of slot
numbers (-1 = empty); keys are compared against ``keys[slot]``. Deletion uses
backward shifting (Knuth vol. 3, 6.4 algorithm R), so no tombstones build up.
The caller keeps the load factor at or below one half.

Timer heap: a 4-ary min-heap of wake-ups ordered by (time, insertion number),
rows (time, seq, slot, unused) of one int64 array. A flow has one live
wake-up (its ``C_WAKE_SEQ``); older entries of the flow are skipped when they
come out (lazy deletion) or dropped when the table compacts the heap.
"""

from __future__ import annotations

import numpy as np

from tracker.flows.layout import G_HEAP_N, G_HEAP_SEQ, G_HT_N
from tracker.jit import kernel, kernel_inline, kernel_wrapping

_M1 = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio (Fibonacci hashing)
_M2 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64 finalizer constants (Vigna)
_M3 = np.uint64(0x94D049BB133111EB)


@kernel_wrapping
def key_hash(k: np.ndarray, row: int) -> np.uint64:
    """A 64-bit hash of the 5 key words in row ``row`` of k."""
    h = np.uint64(0)
    for j in range(5):
        h = (h ^ k[row, j]) * _M1
        h ^= h >> np.uint64(29)
    h = (h ^ (h >> np.uint64(30))) * _M2
    h = (h ^ (h >> np.uint64(27))) * _M3
    return h ^ (h >> np.uint64(31))


@kernel_inline
def _same(keys: np.ndarray, slot: int, pk: np.ndarray, i: int) -> bool:
    for j in range(5):
        if keys[slot, j] != pk[i, j]:
            return False
    return True


@kernel_inline
def ht_find(table: np.ndarray, keys: np.ndarray, pk: np.ndarray, i: int) -> int:
    """Slot holding the key in row i of pk, or -1."""
    mask = table.shape[0] - 1
    pos = np.int64(key_hash(pk, i) & np.uint64(mask))
    while True:
        s = table[pos]
        if s < 0:
            return -1
        if _same(keys, s, pk, i):
            return s
        pos = (pos + 1) & mask


@kernel
def ht_insert(table: np.ndarray, keys: np.ndarray, slot: int, g: np.ndarray) -> None:
    """Insert ``slot`` under the key ``keys[slot]`` (known to be absent)."""
    mask = table.shape[0] - 1
    pos = np.int64(key_hash(keys, slot) & np.uint64(mask))
    while table[pos] >= 0:
        pos = (pos + 1) & mask
    table[pos] = slot
    g[G_HT_N] += 1


@kernel
def ht_delete(table: np.ndarray, keys: np.ndarray, slot: int, g: np.ndarray) -> None:
    """Remove ``slot`` (present) and shift the probe chain back over the hole."""
    mask = table.shape[0] - 1
    pos = np.int64(key_hash(keys, slot) & np.uint64(mask))
    while table[pos] != slot:
        pos = (pos + 1) & mask
    hole = pos
    pos = (pos + 1) & mask
    while table[pos] >= 0:
        home = np.int64(key_hash(keys, table[pos]) & np.uint64(mask))
        # Move the entry into the hole unless its home lies cyclically in (hole, pos].
        if (pos - home) & mask >= (pos - hole) & mask:
            table[hole] = table[pos]
            hole = pos
        pos = (pos + 1) & mask
    table[hole] = -1
    g[G_HT_N] -= 1


@kernel
def ht_rebuild(new: np.ndarray, keys: np.ndarray, slots: np.ndarray, g: np.ndarray) -> None:
    """Fill an empty table ``new`` with ``slots`` (after growing)."""
    g[G_HT_N] = 0
    for s in slots:
        ht_insert(new, keys, s, g)


HEAP_D = 4  # a 4-ary heap: half the depth of a binary one, children on adjacent rows


# A heap row: (due time, sequence number, slot, the slot's flow id). Wake-ups due at the
# same time go in the order their flows were created (then pushed): an order that a
# cluster's stitch can rebuild from two tables' flow ids (flows/stitch.py).
HEAP_ORDER = (0, 3, 1)  # the columns compared, first to last


@kernel_inline
def _before(heap: np.ndarray, a: int, b: int) -> bool:
    for j in HEAP_ORDER:
        if heap[a, j] != heap[b, j]:
            return heap[a, j] < heap[b, j]
    return False


@kernel_inline
def _swap(heap: np.ndarray, a: int, b: int) -> None:
    for j in range(4):
        heap[a, j], heap[b, j] = heap[b, j], heap[a, j]


@kernel
def heap_push(heap: np.ndarray, g: np.ndarray, t: int, slot: int, flow_id: int) -> int:
    """Add a wake-up of ``slot`` at ``t``; returns its sequence number (room was made)."""
    n = g[G_HEAP_N]
    seq = g[G_HEAP_SEQ]
    heap[n, 0], heap[n, 1], heap[n, 2], heap[n, 3] = t, seq, slot, flow_id
    g[G_HEAP_SEQ] = seq + 1
    g[G_HEAP_N] = n + 1
    while n > 0:
        parent = (n - 1) // HEAP_D
        if not _before(heap, n, parent):
            break
        _swap(heap, n, parent)
        n = parent
    return seq


@kernel
def heap_pop(heap: np.ndarray, g: np.ndarray) -> None:
    """Remove the earliest entry (the caller read row 0 first)."""
    n = g[G_HEAP_N] - 1
    g[G_HEAP_N] = n
    if n == 0:
        return
    _swap(heap, 0, n)
    i = 0
    while True:
        first = HEAP_D * i + 1
        if first >= n:
            break
        child = first
        for c in range(first + 1, min(first + HEAP_D, n)):
            if _before(heap, c, child):
                child = c
        if not _before(heap, child, i):
            break
        _swap(heap, i, child)
        i = child


@kernel
def ht_contains(table: np.ndarray, keys: np.ndarray, pk: np.ndarray, out: np.ndarray) -> None:
    """out[i]: whether the key in row i of pk is in the table."""
    for i in range(pk.shape[0]):
        out[i] = ht_find(table, keys, pk, i) >= 0
