"""Allocation strategies over indexes of free spots.

Every strategy keeps binary heaps of *available* spots and deletes lazily: a heap entry whose
spot is no longer AVAILABLE is discarded when it reaches the top. Allocation therefore costs
O(log n) amortised in the number of spots, never a scan of the lot. Spread-across-levels also
looks at each level's counters, O(levels), which does not grow with the number of spots.

A strategy answers one question: given preference *tiers* (tuples of spot types the vehicle may
use, most preferred first), which available spot should it get? Compatibility rules live in
:mod:`twin.core.lot`, which computes the tiers.
"""

from __future__ import annotations

from collections.abc import Sequence
from heapq import heappop, heappush
from typing import ClassVar

from twin.core.facility import Spot
from twin.core.types import SpotStatus, SpotType

_AVAILABLE = SpotStatus.AVAILABLE
Tiers = tuple[tuple[SpotType, ...], ...]


class AllocationStrategy:
    """Base: one heap per group of spots, ordered by a strategy-specific key.

    Subclasses set ``by_size`` (whether general spot types form one tier or one tier per size,
    smallest first) and define ``key``/``group``.
    """

    name: ClassVar[str] = ""
    by_size: ClassVar[bool] = False

    def __init__(self) -> None:
        self._spots: Sequence[Spot] = ()
        self._heaps: dict[object, list[tuple]] = {}

    def key(self, spot: Spot) -> tuple:
        """Heap order inside a group: nearest first, ties by spot index (deterministic)."""
        return (spot.distance, spot.index)

    def group(self, spot: Spot) -> object:
        return spot.type

    def bind(self, spots: Sequence[Spot]) -> None:
        """Build the index from scratch (O(n)); called once when the lot is created."""
        self._spots = spots
        self._heaps = {}
        for spot in spots:
            spot.indexed = False
            if spot.status == _AVAILABLE:
                self._heaps.setdefault(self.group(spot), []).append(self.key(spot))
                spot.indexed = True
        for heap in self._heaps.values():
            heap.sort()

    def push(self, spot: Spot) -> None:
        """A spot became AVAILABLE. Pushed only if no entry for it is still in a heap."""
        if not spot.indexed:
            heappush(self._heaps.setdefault(self.group(spot), []), self.key(spot))
            spot.indexed = True

    def _top(self, group: object) -> tuple | None:
        heap = self._heaps.get(group)
        if not heap:
            return None
        spots = self._spots
        while heap:
            entry = heap[0]
            spot = spots[entry[-1]]
            if spot.status == _AVAILABLE:
                return entry
            heappop(heap)
            spot.indexed = False
        return None

    def _take(self, group: object) -> Spot:
        entry = heappop(self._heaps[group])
        spot = self._spots[entry[-1]]
        spot.indexed = False
        return spot

    def choose(self, tiers: Tiers, level_hint: int | None = None) -> Spot | None:
        """Remove and return the best available spot, or None. The caller marks it occupied."""
        for tier in tiers:
            best = None
            best_group = None
            for stype in tier:
                group = self._group_for(stype)
                top = self._top(group)
                if top is not None and (best is None or top < best):
                    best, best_group = top, group
            if best is not None:
                return self._take(best_group)
        return None

    def _group_for(self, stype: SpotType) -> object:
        return stype


class NearestToEntrance(AllocationStrategy):
    """Shortest driving/walking distance first: what drivers pick when left alone."""

    name = "nearest"


class FirstFit(AllocationStrategy):
    """Lowest spot number first: the order a sensorless lot fills in."""

    name = "first_fit"

    def key(self, spot: Spot) -> tuple:
        return (spot.index,)


class BestFit(AllocationStrategy):
    """Smallest compatible spot type first, keeping large bays for the vehicles that need them."""

    name = "best_fit"
    by_size = True


class SpreadAcrossLevels(AllocationStrategy):
    """Least occupied level first, nearest spot within it: evens out ramp traffic and wear.

    Heaps are per (level, type). Level occupancy comes from the lot's counters, so the choice
    costs O(levels · types) peeks plus one O(log n) pop.
    """

    name = "spread"

    def __init__(self) -> None:
        super().__init__()
        self.occupied: Sequence[int] = ()
        self.capacity: Sequence[int] = ()

    def group(self, spot: Spot) -> object:
        return (spot.level, spot.type)

    def choose(self, tiers: Tiers, level_hint: int | None = None) -> Spot | None:
        occupied, capacity = self.occupied, self.capacity
        order = sorted(range(len(capacity)), key=lambda lv: (occupied[lv] / capacity[lv], lv))
        for tier in tiers:
            for lv in order:
                best = None
                best_group = None
                for stype in tier:
                    top = self._top((lv, stype))
                    if top is not None and (best is None or top < best):
                        best, best_group = top, (lv, stype)
                if best is not None:
                    return self._take(best_group)
        return None


STRATEGIES: dict[str, type[AllocationStrategy]] = {
    cls.name: cls for cls in (NearestToEntrance, FirstFit, BestFit, SpreadAcrossLevels)
}


def make_strategy(name: str) -> AllocationStrategy:
    """Strategy by its scenario-file name."""
    try:
        return STRATEGIES[name]()
    except KeyError:
        raise ValueError(
            f"unknown allocation strategy {name!r}; allowed: {sorted(STRATEGIES)}"
        ) from None
