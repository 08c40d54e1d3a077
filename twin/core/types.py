"""Vocabulary shared by every part of the production core.

Sizes are ordinal so that compatibility is one integer comparison on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class SpotType(IntEnum):
    """Kinds of spot a facility can hold."""

    MOTORCYCLE = 0
    COMPACT = 1
    REGULAR = 2
    LARGE = 3
    HANDICAP = 4
    EV = 5


class SpotStatus(IntEnum):
    """What a spot is doing now; only AVAILABLE spots can be allocated."""

    AVAILABLE = 0
    OCCUPIED = 1
    RESERVED = 2
    MAINTENANCE = 3


class VehicleClass(IntEnum):
    """Vehicle size classes; the value is the vehicle's size."""

    MOTORCYCLE = 0
    COMPACT = 1
    REGULAR = 2
    LARGE = 3


#: Largest vehicle size each spot type accepts. Accessible (HANDICAP) bays are van-width,
#: EV bays are regular bays with a charger.
SPOT_CAPACITY: dict[SpotType, int] = {
    SpotType.MOTORCYCLE: 0,
    SpotType.COMPACT: 1,
    SpotType.REGULAR: 2,
    SpotType.LARGE: 3,
    SpotType.HANDICAP: 3,
    SpotType.EV: 2,
}

#: General-purpose spot types, smallest first (the order best-fit tries them in).
GENERAL_TYPES: tuple[SpotType, ...] = (
    SpotType.MOTORCYCLE,
    SpotType.COMPACT,
    SpotType.REGULAR,
    SpotType.LARGE,
)


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A vehicle asking for a spot. ``id`` is whatever identifies it at the gate (plate, tag)."""

    id: str | int
    vclass: VehicleClass = VehicleClass.REGULAR
    handicap: bool = False
    ev: bool = False
    #: Small integer naming the (class, permit, EV) combination; the lot keys its cached
    #: allocation plans on it so the hot path does no tuple hashing.
    profile: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "profile", int(self.vclass) * 4 + 2 * bool(self.handicap) + bool(self.ev)
        )
