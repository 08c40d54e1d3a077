"""How much memory a run will take, worked out from the scenario before anything is drawn.

A scenario with ``rate_per_hour: 1e7``, a billion spots or ``output.interval_min: 1e-6`` is
valid field by field, yet it would run out of memory (or swap for an hour) after minutes of
work. The sizes that grow with the settings (drivers, spots, occupancy samples, records kept
over replications) are known from the scenario alone, so they are estimated here and a run
that would not fit is refused with the setting to change and how far.

The bytes per item are measured with tracemalloc (see the constants) and rounded up: the
estimate must not refuse runs that fit, and it only has to catch runs that are off by orders
of magnitude.
"""

from __future__ import annotations

import math
import os
import resource
from dataclasses import dataclass
from datetime import datetime, timedelta

from twin.scenario.common import DAY_NAMES
from twin.scenario.model import Scenario, StreamSpec

#: Peak bytes per driver of one replication (drawn arrays, records, the vehicles frame and
#: its temporaries): tracemalloc measured 599 on the surface lot with 480,000 drivers.
BYTES_PER_DRIVER = 1000
#: Bytes per driver kept after a replication with per-vehicle records: 482 measured.
BYTES_PER_KEPT_DRIVER = 500
#: Peak bytes per spot of the lot in the core (spot objects, free-spot heaps): ~380 measured.
BYTES_PER_SPOT = 500
#: Bytes per occupancy row (one sample of one lot, level or spot type), peak and kept:
#: 98 and 60 measured at 170,000 rows.
BYTES_PER_SAMPLE = 150
#: Share of the free memory a run may plan to use: the estimate is rough, and the machine
#: runs other things.
USABLE_SHARE = 0.8


class RunTooLarge(ValueError):
    """The run would not fit in memory; the message names the setting and the limit."""


@dataclass(frozen=True)
class Size:
    """The counts a run's memory grows with, per replication."""

    drivers: float
    bytes_per_driver: float
    spots: int
    samples: float
    replications: int
    keep_vehicles: bool

    def peak_bytes(self) -> float:
        """Peak while the last replication runs, with the earlier ones' frames kept."""
        kept_per_rep = self.samples * BYTES_PER_SAMPLE + (
            self.drivers * BYTES_PER_KEPT_DRIVER if self.keep_vehicles else 0.0
        )
        one = (
            self.drivers * self.bytes_per_driver
            + self.spots * BYTES_PER_SPOT
            + self.samples * BYTES_PER_SAMPLE
        )
        return one + kept_per_rep * max(self.replications - 1, 0)


def expected_arrivals(stream: StreamSpec, horizon_h: float, start: datetime | None = None) -> float:
    """Drivers a stream brings over the horizon (mean of its Poisson count; rows of a trace).

    The day factor has mean 1 and changes nothing here; listed ``dates`` inside the horizon
    (given ``start``) add what their multiplier or profile brings beyond a usual day, so a
    calendar entry of a million cars an hour is caught like a profile of one."""
    if stream.trace is not None:
        with open(stream.trace.path, "rb") as f:
            return float(sum(1 for _ in f) - 1)  # every row may fall inside the horizon
    if stream.rate_per_hour is not None:
        per_hour = stream.rate_per_hour
    else:
        profile = stream.profile
        assert profile is not None
        per_hour = sum(sum(profile.for_day(d) or ()) for d in range(len(DAY_NAMES))) / (7 * 24)
    cap = stream.elasticity.cap if stream.elasticity is not None else 1.0
    extra = 0.0
    if stream.dates and start is not None:
        last = (start + timedelta(hours=horizon_h)).date()
        for day, entry in stream.date_overrides().items():
            if not start.date() <= day <= last:
                continue
            if stream.rate_per_hour is not None:
                usual = 24.0 * stream.rate_per_hour
            else:
                usual = float(sum(stream.profile.for_day(day.weekday()) or ()))
            listed = sum(entry.profile) if entry.profile is not None else usual * entry.multiplier
            extra += max(0.0, listed - usual)
    return (per_hour * horizon_h + extra) * stream.multiplier * cap


def estimate(scenario: Scenario, replications: int) -> Size:
    """The counts of :class:`Size` for ``replications`` replications of ``scenario``."""
    horizon_h = scenario.horizon_days * 24.0
    drivers = sum(expected_arrivals(s, horizon_h, scenario.start) for s in scenario.demand)
    ops = scenario.operations
    bookings = ops.reservations if ops is not None else None
    if bookings is not None and bookings.rate_per_hour is not None:
        drivers += bookings.rate_per_hour * horizon_h
    elif bookings is not None and bookings.profile is not None:
        hours = [bookings.profile.all, bookings.profile.weekday, bookings.profile.weekend]
        drivers += max(max(h) for h in hours if h) * horizon_h  # the busiest hour throughout
    lots = scenario.lot_specs
    spots = sum(lot.facility.total_spots for lot in lots)
    groups = 1 + len(lots) + sum(len(lot.facility.levels) for lot in lots) + 6
    samples = horizon_h * 60.0 / scenario.output.interval_min * groups
    # a network draws one uniform per driver and diversion try
    tries = scenario.network.diversion.max_tries if scenario.network and len(lots) > 1 else 0
    per_driver = BYTES_PER_DRIVER + 8.0 * tries
    return Size(drivers, per_driver, spots, samples, replications, scenario.output.vehicles)


def free_bytes() -> float:
    """Memory this process may still take: what the system has available, and no more than
    its address-space limit (``ulimit -v``) leaves."""
    free = math.inf
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024.0
    except OSError:
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit != resource.RLIM_INFINITY:
        try:
            with open("/proc/self/statm") as f:
                used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            used = 0
        free = min(free, limit - used)
    return free


def _n(x: float) -> str:
    """A count as a planner reads it: digits grouped, or a power of ten when absurd."""
    return f"{x:,.0f}" if x < 1e15 else f"{x:.3g}"


def check_size(scenario: Scenario, replications: int = 1) -> None:
    """Raise RunTooLarge when ``replications`` replications would not fit in memory."""
    size = estimate(scenario, replications)
    budget = free_bytes() * USABLE_SHARE
    need = size.peak_bytes()
    if need <= budget:
        return
    gib = f"~{_n(need / 2**30)} GiB, {budget / 2**30:,.1f} GiB usable"
    shares = {
        "drivers": size.drivers * size.bytes_per_driver,
        "spots": size.spots * BYTES_PER_SPOT,
        "samples": size.samples * BYTES_PER_SAMPLE,
    }
    kept = need - sum(shares.values())
    worst = max(shares, key=lambda k: shares[k])
    if kept > shares[worst]:
        fit = max(int(budget / (need / replications)), 1)
        raise RunTooLarge(
            f"replications: {replications} replications keep {gib}; at most about {fit:,} fit "
            "here (turn output.vehicles off, or run fewer)"
        )
    scale = budget / need
    if worst == "drivers":
        busiest = max(
            scenario.demand,
            key=lambda s: expected_arrivals(s, scenario.horizon_days * 24.0, scenario.start),
        )
        k = scenario.demand.index(busiest)
        raise RunTooLarge(
            f"demand[{k}] ({busiest.name!r}): about {_n(size.drivers)} drivers per replication "
            f"over {scenario.horizon_days:g} days need {gib}; at most about "
            f"{_n(size.drivers * scale)} fit (lower its rate, multiplier, dates or horizon_days)"
        )
    if worst == "spots":
        raise RunTooLarge(
            f"facility: {size.spots:,} spots need {gib}; at most about "
            f"{int(size.spots * scale):,} fit (lower the spot counts)"
        )
    interval = scenario.output.interval_min
    raise RunTooLarge(
        f"output.interval_min: {interval:g} gives {_n(size.samples)} occupancy samples per "
        f"replication, {gib}; at least {interval / scale:.3g} min fits"
    )
