"""How many reservations overlap at most over a window, in O(log n): the per-type
:class:`ConcurrencyIndex` behind a booking check (see :mod:`twin.core.reservations`).
"""

from __future__ import annotations

import math
import random

# --------------------------------------------------------------------------- concurrency index


class _Node:
    __slots__ = ("best", "delta", "key", "left", "prio", "right", "total")

    def __init__(self, key: tuple[float, int, int], prio: float) -> None:
        self.key = key
        self.delta = key[1]
        self.prio = prio
        self.left: _Node | None = None
        self.right: _Node | None = None
        self.total = self.delta  # sum of deltas in the subtree
        self.best = self.delta  # max over non-empty in-order prefixes of the subtree


def _pull(n: _Node) -> None:
    left, right = n.left, n.right
    s = n.delta
    best = s
    if left is not None:
        s += left.total
        best = max(left.best, s)
    if right is not None:
        best = max(best, s + right.best)
        s += right.total
    n.total, n.best = s, best


def _split(n: _Node | None, key: tuple) -> tuple[_Node | None, _Node | None]:
    """(keys < key, keys >= key)."""
    if n is None:
        return None, None
    if n.key < key:
        a, b = _split(n.right, key)
        n.right = a
        _pull(n)
        return n, b
    a, b = _split(n.left, key)
    n.left = b
    _pull(n)
    return a, n


def _merge(a: _Node | None, b: _Node | None) -> _Node | None:
    """Every key of ``a`` is below every key of ``b``."""
    if a is None:
        return b
    if b is None:
        return a
    if a.prio > b.prio:
        a.right = _merge(a.right, b)
        _pull(a)
        return a
    b.left = _merge(a, b.left)
    _pull(b)
    return b


class ConcurrencyIndex:
    """How many half-open intervals cover each instant, with O(log n) insert, remove and peak.

    A sweep line kept in a treap: each interval ``[a, b)`` is a +1 at ``a`` and a -1 at ``b``
    (at equal times -1 sorts first, so back-to-back intervals do not overlap). Every node
    carries its subtree's sum and largest prefix sum, so the count at ``a`` is the sum of the
    keys up to ``a`` and the peak over ``[a, b)`` adds the largest prefix sum inside
    ``(a, b)``. Exact float times, O(n) memory, deterministic priorities.
    """

    def __init__(self, seed: int = 0) -> None:
        self._root: _Node | None = None
        self._rng = random.Random(seed)
        self._seq = 0
        self._live: dict[int, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self._live)

    def _insert(self, key: tuple[float, int, int]) -> None:
        a, b = _split(self._root, key)
        self._root = _merge(_merge(a, _Node(key, self._rng.random())), b)

    def _delete(self, key: tuple[float, int, int]) -> None:
        a, rest = _split(self._root, key)
        _, b = _split(rest, (key[0], key[1], key[2] + 1))
        self._root = _merge(a, b)

    def add(self, start: float, end: float) -> int:
        """Insert ``[start, end)`` (``end > start``); returns a handle for :meth:`remove`."""
        if not (math.isfinite(start) and math.isfinite(end) and end > start):
            raise ValueError(f"need finite start < end, got [{start}, {end})")
        handle = self._seq
        self._seq += 1
        self._insert((start, 1, handle))
        self._insert((end, -1, handle))
        self._live[handle] = (start, end)
        return handle

    def remove(self, handle: int) -> None:
        start, end = self._live.pop(handle)
        self._delete((start, 1, handle))
        self._delete((end, -1, handle))

    def count_at(self, t: float) -> int:
        """Intervals containing ``t``."""
        return self.peak(t, t)

    def peak(self, start: float, end: float) -> int:
        """Largest number of intervals covering one instant of ``[start, end)`` (or ``start``)."""
        left, rest = _split(self._root, (start, 2, 0))  # every key at time <= start
        mid, right = _split(rest, (end, -2, 0))  # keys strictly inside (start, end)
        base = left.total if left is not None else 0
        inside = mid.best if mid is not None else 0
        self._root = _merge(_merge(left, mid), right)
        return base + max(0, inside)
