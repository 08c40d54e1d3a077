"""Spots and levels: the static shape of a facility, and a builder from per-type counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from twin.core.types import SpotStatus, SpotType


@dataclass(slots=True, eq=False)
class Spot:
    """One bay. ``index`` is dense (0..n-1) within its lot so indexes can be plain lists."""

    index: int
    id: str
    level: int
    type: SpotType
    distance: float
    status: SpotStatus = SpotStatus.AVAILABLE
    #: True while a heap entry for this spot may exist in the strategy's free index; lets the
    #: index delete lazily without ever holding two live entries for one spot.
    indexed: bool = field(default=False, repr=False)
    #: The spot's entry in its lot's free-spot index and the heap it goes back to when freed,
    #: set by the allocation strategy. Kept on the spot so a release reads the object it
    #: already holds instead of two lot-wide lists at a random position (a cache miss each
    #: in a large lot).
    rank: int = field(default=-1, repr=False)
    home: list[int] | None = field(default=None, repr=False)
    #: What keeps this spot from walk-in allocation besides a session: claim reason -> the
    #: status it asks for (RESERVED or MAINTENANCE). Owned by :class:`twin.core.lot.Lot`, which
    #: derives ``status`` from it; None (the common case) costs the hot path one falsy test.
    claims: dict[str, SpotStatus] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Level:
    """A floor of the facility; ``entrance_distance`` is the driving distance from the gate."""

    index: int
    name: str
    entrance_distance: float = 0.0


#: Order in which bays are laid out from the level's ramp: accessible bays nearest, as codes
#: require, then chargers (near the feeder), then the rest.
LAYOUT_ORDER: tuple[SpotType, ...] = (
    SpotType.HANDICAP,
    SpotType.EV,
    SpotType.MOTORCYCLE,
    SpotType.COMPACT,
    SpotType.REGULAR,
    SpotType.LARGE,
)


def build_spots(
    levels: Sequence[tuple[Level, Mapping[SpotType, int]]],
    spacing_m: float = 2.5,
) -> list[Spot]:
    """Lay out spots from per-level counts, each type in ``LAYOUT_ORDER`` away from the ramp.

    Distances matter only relatively (nearest-to-entrance compares them), so a regular spacing
    from the level's entrance distance is enough when no surveyed spot list exists.
    """
    spots: list[Spot] = []
    for level, counts in levels:
        position = 0
        for stype in LAYOUT_ORDER:
            for k in range(int(counts.get(stype, 0))):
                spots.append(
                    Spot(
                        index=len(spots),
                        id=f"{level.name}-{stype.name[0]}{k + 1:04d}",
                        level=level.index,
                        type=stype,
                        distance=level.entrance_distance + position * spacing_m,
                    )
                )
                position += 1
    return spots
