"""Production parking logic: pure, clock-injected, free of simulation and I/O.

A gate controller imports this package alone; so does the simulator. Nothing here may import
simpy, pandas, numpy or matplotlib (a test enforces it).
"""

from twin.core.allocation import STRATEGIES, AllocationStrategy, make_strategy
from twin.core.clock import Calendar
from twin.core.errors import (
    DoubleExit,
    InvalidTransition,
    LotFull,
    NoCompatibleSpot,
    ParkingError,
    UnknownTicket,
)
from twin.core.facility import Level, Spot, build_spots
from twin.core.lot import Lot, Session, compatible_tiers
from twin.core.pricing import PriceContext, Tariff
from twin.core.types import SpotStatus, SpotType, Vehicle, VehicleClass

__all__ = [
    "STRATEGIES",
    "AllocationStrategy",
    "Calendar",
    "DoubleExit",
    "InvalidTransition",
    "Level",
    "Lot",
    "LotFull",
    "NoCompatibleSpot",
    "ParkingError",
    "PriceContext",
    "Session",
    "Spot",
    "SpotStatus",
    "SpotType",
    "Tariff",
    "UnknownTicket",
    "Vehicle",
    "VehicleClass",
    "build_spots",
    "compatible_tiers",
    "make_strategy",
]
