"""What a start state's cars need from the scenario's laws: the placement record, and the dwell
laws conditioned on time already spent (twin.sim.initial uses them for parked cars, and
twin.sim.initial_queue for cars waiting at the entry, whose patience is conditioned the same way).

Split out of twin.sim.initial (which re-exports the public names) so that each module has one
job: laws here, the steady state in twin.sim.initial_steady, placing cars in twin.sim.initial.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.core.clock import Calendar
from twin.core.types import SpotType, Vehicle
from twin.scenario.dists import UNIT_SECONDS, Constant, Empirical
from twin.scenario.model import Scenario, StreamSpec
from twin.scenario.state import LotState

#: Survival below which a stay is treated as over: the conditional law has no mass left.
TINY_SURVIVAL = 1e-300


class StateMismatch(ValueError):
    """A state that does not fit the scenario's facility (unknown lot, spot, level...)."""


@dataclass
class Placement:
    """A car to place at t0 = 0: where, what, since when (s, <= 0) and until when (s, > 0)."""

    lot: int
    vehicle: Vehicle
    entry_t: float
    leave_t: float
    spot: int | None = None  # exact spot index in its lot
    level: int | None = None
    spot_type: SpotType | None = None
    prepaid: bool = False
    validation: int | None = None
    path: str = ""  # where the state file names it (for messages)


# -- dwell laws ------------------------------------------------------------------------------
def dwell_law(stream: StreamSpec, arrival_t: float, calendar: Calendar):
    """The dwell distribution spec of a car of ``stream`` that arrived at ``arrival_t``."""
    if stream.dwell_by_hour:
        hour = calendar.hour(arrival_t)
        for band in stream.dwell_by_hour:
            if band.hours[0] <= hour < band.hours[1]:
                return band.dwell
    return stream.dwell


def survival(dist, elapsed_s: np.ndarray) -> np.ndarray:
    """P(stay > elapsed) under a scenario dwell spec, vectorised."""
    e = np.asarray(elapsed_s, dtype=float) / UNIT_SECONDS[dist.unit]
    if isinstance(dist, Constant):
        return (dist.value > e).astype(float)
    if isinstance(dist, Empirical):
        values = np.sort(dist._data())
        return 1.0 - np.searchsorted(values, e, side="right") / len(values)
    return dist.law().sf(e)


def remaining_stays(dist, elapsed_s: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Remaining seconds of stays that have lasted ``elapsed_s``: X - e for X ~ law | X > e.

    Inversion: X = isf(u · sf(e)) is distributed as X given X > e (u uniform on (0, 1)).
    Empirical laws resample the recorded values above ``e``; when none is longer, the stay is
    taken as memoryless with the recorded mean (the data cannot say more). A stay the law
    gives no chance to last this long ends at once (remaining 0).
    """
    unit = UNIT_SECONDS[dist.unit]
    e = np.asarray(elapsed_s, dtype=float) / unit
    u = np.asarray(u, dtype=float)
    if isinstance(dist, Constant):
        return np.maximum(dist.value - e, 0.0) * unit
    if isinstance(dist, Empirical):
        values = np.sort(dist._data())
        first = np.searchsorted(values, e, side="right")  # values[first:] > e
        left = len(values) - first
        pick = first + np.minimum((u * left).astype(np.int64), np.maximum(left - 1, 0))
        longer = values[np.minimum(pick, len(values) - 1)] - e
        memoryless = -np.log1p(-u) * float(values.mean())
        return np.where(left > 0, longer, memoryless) * unit
    frozen = dist.law()
    sf = frozen.sf(e)
    with np.errstate(all="ignore"):
        x = frozen.isf(u * sf)
    rem = x - e
    ok = (sf > TINY_SURVIVAL) & np.isfinite(rem)
    return np.where(ok, np.maximum(rem, 0.0), 0.0) * unit


def arrival_rate(stream: StreamSpec, t: float, calendar: Calendar) -> float:
    """The stream's arrival rate (per hour) at time ``t``; 0 for a replayed trace."""
    if stream.rate_per_hour is not None:
        return stream.rate_per_hour * stream.multiplier
    if stream.profile is None:
        return 0.0
    day = stream.profile.for_day(calendar.weekday(t))
    return (day[calendar.hour(t)] if day is not None else 0.0) * stream.multiplier


def laws_of(
    stream: StreamSpec, entry: np.ndarray, idx: list[int], calendar: Calendar
) -> list[tuple[object, list[int]]]:
    """Cars ``idx`` of ``stream`` grouped by the dwell law their arrival time gives them."""
    if not stream.dwell_by_hour:
        return [(stream.dwell, idx)] if stream.dwell is not None and idx else []
    groups: dict[int, tuple[object, list[int]]] = {}
    for i in idx:
        law = dwell_law(stream, entry[i], calendar)
        if law is not None:
            groups.setdefault(id(law), (law, []))[1].append(i)
    return list(groups.values())


def slot_rates(stream: StreamSpec, slots: np.ndarray) -> np.ndarray:
    """The stream's arrival rate (per hour) at each hour-of-week slot (weekday * 24 + hour)."""
    if stream.rate_per_hour is not None:
        return np.full(len(slots), stream.rate_per_hour * stream.multiplier)
    if stream.profile is None:
        return np.zeros(len(slots))
    week = np.array(
        [stream.profile.for_day(d) or [0.0] * 24 for d in range(7)], dtype=float
    ).ravel()
    return week[slots] * stream.multiplier


def lot_index(scenario: Scenario, lot: LotState, k: int) -> int:
    """The index of the scenario lot a state's ``lots.k`` entry names (one lot: 0)."""
    names = [spec.name for spec in scenario.lot_specs]
    if lot.lot is None:
        if len(names) > 1:
            raise StateMismatch(f"lots.{k}.lot: name the lot (one of {', '.join(names)})")
        return 0
    if lot.lot not in names:
        raise StateMismatch(f"lots.{k}.lot: unknown lot {lot.lot!r} (lots: {', '.join(names)})")
    return names.index(lot.lot)


__all__ = [
    "TINY_SURVIVAL",
    "Placement",
    "StateMismatch",
    "arrival_rate",
    "dwell_law",
    "laws_of",
    "lot_index",
    "remaining_stays",
    "slot_rates",
    "survival",
]
