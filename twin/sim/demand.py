"""Turn demand streams into arrays of drivers, drawn in bulk before the clock starts.

Everything random about a driver (arrival, dwell, willingness to pay, patience, lane service
times, EV and permit flags) is drawn here, per stream, from that stream's own generators. The
event loop then only reads arrays, so a policy change cannot alter who arrives or what they want.

A longer horizon extends a shorter one: the drivers of a run's first N days are the same whatever
``horizon_days`` is. Two rules make that so, at no cost per driver:

* each purpose's generator is consumed in arrival order, one driver after the other (numpy's
  generators draw element by element, so the first k of ``n`` draws do not depend on ``n``);
  a purpose needing several numbers per driver draws them as rows of an ``(n, m)`` block, never
  as ``m`` consecutive runs of ``n`` (which would put the second run at an offset of ``n``);
* arrival counts per hour slot and the arrival instants within slots come from two generators
  (a count of a later slot cannot shift the instants of an earlier one), and the hour slots are
  drawn to the end of the one holding the horizon, then cut, so the last slot is never shorter;
* a stream's random day factor (``day_factor``) comes from a generator per calendar day, so
  day 3's factor is day 3's whatever the horizon (see :func:`day_factors`).

Dates listed in a stream's ``dates`` (holidays, events) scale or replace that day's rates before
the day factor applies; both are off by default and then draw nothing, so scenarios without
them produce the same numbers as before they existed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.core.clock import DAY, HOUR, Calendar
from twin.core.types import VehicleClass
from twin.scenario.dists import UNIT_SECONDS
from twin.scenario.model import (
    LaneSpec,
    LanesSpec,
    Scenario,
    StreamSpec,
    TraceSpec,
    WillingnessSpec,
)
from twin.sim.rng import Streams


@dataclass
class Drivers:
    """All arrivals of one replication, sorted by arrival time (ties keep stream order)."""

    arrival: np.ndarray  # seconds since scenario start
    dwell: np.ndarray  # seconds
    vclass: np.ndarray  # int8, VehicleClass value
    ev: np.ndarray  # bool
    handicap: np.ndarray  # bool
    stream: np.ndarray  # int16, index into scenario.demand
    wtp_cents: np.ndarray  # float; +inf where the driver takes any price
    wtp_per_hour: np.ndarray  # bool: wtp is per hour of intended stay
    patience: np.ndarray  # seconds; 0 = leaves at once
    #: Seconds at the entry/exit barrier, one row per distinct lane setting among the lots
    #: (``lane_kinds``); a driver served at lot k uses row ``lane_kinds[k]``.
    entry_service: np.ndarray
    exit_service: np.ndarray
    lot: np.ndarray  # int32, index of the lot the driver heads for first
    #: (max tries, n) uniforms deciding whether a turned-away driver tries another lot
    divert_u: np.ndarray
    #: Price-elastic streams are drawn at ``cap`` × their observed rate; a candidate comes if
    #: ``accept_u × cap`` is below its demand factor at the price it sees. NaN: always comes.
    accept_u: np.ndarray
    trace_dropped: int = 0  # trace rows outside the horizon
    lane_kinds: tuple[int, ...] = (0,)

    def __len__(self) -> int:
        return len(self.arrival)


def hourly_rates(
    stream: StreamSpec, calendar: Calendar, horizon_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-constant rate (per second) on calendar-hour slots covering [0, horizon).

    Returns slot start times and rates. Slots follow wall-clock hours even when the scenario
    starts mid-hour, so an 08:00 peak stays at 08:00.
    """
    offset = calendar.seconds_of_day(0.0) % HOUR
    first_edge = HOUR - offset if offset else HOUR
    edges = np.concatenate(([0.0], np.arange(first_edge, horizon_s, HOUR), [horizon_s]))
    edges = np.unique(edges)
    starts = edges[:-1]
    if stream.rate_per_hour is not None:
        per_hour = np.full(len(starts), stream.rate_per_hour, dtype=float)
    else:
        profile = stream.profile
        assert profile is not None
        week = np.array([profile.for_day(d) for d in range(7)], dtype=float)  # 7 x 24
        per_hour = np.array(
            [week[calendar.weekday(t), calendar.hour(t)] for t in starts], dtype=float
        )
    if stream.dates:  # a calendar: listed dates get their multiplier or their own profile
        overrides = stream.date_overrides()
        for i, t in enumerate(starts.tolist()):
            entry = overrides.get(calendar.to_datetime(t).date())
            if entry is None:
                continue
            if entry.profile is not None:
                per_hour[i] = entry.profile[calendar.hour(t)]
            else:
                per_hour[i] *= entry.multiplier
    return edges, per_hour * stream.multiplier / HOUR


def day_index(calendar: Calendar, t: np.ndarray) -> np.ndarray:
    """Calendar days since the scenario's first midnight (0 = the start's date)."""
    return np.floor((np.asarray(t, dtype=float) + calendar.seconds_of_day(0.0)) / DAY).astype(int)


def day_factors(
    stream: StreamSpec, calendar: Calendar, starts: np.ndarray, rng: Streams
) -> np.ndarray:
    """The gamma day factor (mean 1, CV ``day_factor.cv``) of each slot's calendar day.

    Each day's factor comes from its own generator, named by the stream (or its shared group)
    and the calendar date, so it depends on neither the horizon nor the other days: a longer
    run keeps the first days' factors, a run started a day earlier (or a forecast started
    mid-week) sees the same factor on the same date, and streams of one group see the same
    busy and quiet days. Slots follow calendar hours, so none straddles midnight.
    """
    spec = stream.day_factor
    if spec is None or spec.cv == 0:
        return np.ones(len(starts))
    key = f"group:{spec.group}" if spec.group is not None else f"stream:{stream.name}"
    shape = 1.0 / spec.cv**2
    days = day_index(calendar, starts) + calendar.epoch.date().toordinal()
    factor = {
        d: float(rng.get(f"day-factor/{key}/{d}").gamma(shape, 1.0 / shape))
        for d in np.unique(days).tolist()
    }
    return np.array([factor[d] for d in days.tolist()], dtype=float)


def slot_horizon(calendar: Calendar, horizon_s: float) -> float:
    """The end of the calendar-hour slot holding the horizon (the horizon itself on an edge).

    Arrivals are drawn up to here and then cut at the horizon, so that the last slot has its
    full length whatever the horizon, and a longer run draws the same drivers in it.
    """
    offset = calendar.seconds_of_day(0.0) % HOUR
    first_edge = HOUR - offset if offset else HOUR
    if horizon_s <= first_edge:
        return first_edge
    return first_edge + math.ceil((horizon_s - first_edge) / HOUR) * HOUR


def poisson_arrivals(edges: np.ndarray, rates: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Exact non-homogeneous Poisson arrivals for a piecewise-constant rate, drawn in bulk.

    In each slot the count is Poisson(rate × length) and, given the count, times are uniform:
    no thinning, no per-arrival loop. The counts come from ``gen`` and the instants from its
    first spawned child (derived from its seed, not from its draws), so the instants of the
    first slots do not move when later slots are added: a longer horizon extends a shorter one.
    """
    lengths = np.diff(edges)
    counts = gen.poisson(rates * lengths)
    times = gen.spawn(1)[0].random(int(counts.sum()))
    ends = np.cumsum(counts).tolist()
    # in place, slot by slot: a city-day has millions of arrivals, and repeating the slot
    # starts and widths per arrival would hold two more arrays of that size
    for start, width, lo, hi in zip(
        edges[:-1].tolist(), lengths.tolist(), [0, *ends[:-1]], ends, strict=True
    ):
        part = times[lo:hi]
        part *= width
        part += start
    times.sort()
    return times


def read_trace(stream: StreamSpec, calendar: Calendar) -> pd.DataFrame:
    """Load a recorded arrival trace as columns arrival (s), dwell (s or NaN), class, flags."""
    spec = stream.trace
    assert spec is not None
    try:
        return _parse_trace(spec, calendar)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"trace of stream {stream.name!r}: {exc}") from None


#: How a trace's yes/no columns may say yes and no (in any case).
TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})


def _rows(mask: np.ndarray) -> str:
    """File rows where ``mask`` holds (the header is row 1): the first few, and how many."""
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(r + 2) for r in rows[:5])
    if len(rows) == 1:
        return f"row {shown}"
    return f"rows {shown}{', ...' * (len(rows) > 5)} ({len(rows)} rows)"


def _refuse(spec: TraceSpec, column: str, mask: np.ndarray, cells: pd.Series, allowed: str):
    first = cells.to_numpy()[np.flatnonzero(mask)[0]]
    return ValueError(f"{spec.path}: {_rows(mask)}, column {column!r}: {first!r} ({allowed})")


def _numbers(spec: TraceSpec, column: str, cells: pd.Series, allowed: str) -> np.ndarray:
    """Finite numbers, NaN where a cell is empty; anything else is refused with its rows."""
    values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
    blank = cells.str.strip().eq("").to_numpy()
    bad = ~np.isfinite(values) & ~blank
    if bad.any():
        raise _refuse(spec, column, bad, cells, allowed)
    return values


def _arrivals(spec: TraceSpec, cells: pd.Series, calendar: Calendar) -> np.ndarray:
    """Seconds since the scenario start; every row must hold a time."""
    column = spec.time_column
    if spec.time_unit != "datetime":
        allowed = f"allowed: a number of {spec.time_unit} since the scenario start"
        seconds = _numbers(spec, column, cells, allowed) * UNIT_SECONDS[spec.time_unit]
        missing = np.isnan(seconds)
    else:
        allowed = "allowed: a local ISO date-time such as 2026-01-05 08:30:00, no UTC offset"
        offset = cells.str.contains(UTC_OFFSET, regex=True).to_numpy()
        if offset.any():  # the scenario calendar is local: an offset would shift the times
            raise _refuse(spec, column, offset, cells, allowed)
        when = pd.to_datetime(cells, errors="coerce", format="ISO8601")
        seconds = (when - pd.Timestamp(calendar.epoch)).dt.total_seconds().to_numpy()
        missing = np.isnan(seconds)
    if missing.any():
        raise _refuse(spec, column, missing, cells, allowed)
    return seconds


#: A time of day followed by ``Z`` or ``+hh:mm``.
UTC_OFFSET = r"\d:\d\d(?::\d\d(?:\.\d*)?)?\s*(?:Z|[+-]\d\d:?\d\d)\s*$"


def _flags(spec: TraceSpec, column: str, cells: pd.Series) -> np.ndarray:
    """1.0 (yes), 0.0 (no) or NaN (empty: not recorded, drawn from the stream's share)."""
    words = cells.str.strip().str.lower()
    out = np.full(len(words), np.nan)
    out[words.isin(TRUE_WORDS).to_numpy()] = 1.0
    out[words.isin(FALSE_WORDS).to_numpy()] = 0.0
    bad = np.isnan(out) & words.ne("").to_numpy()
    if bad.any():
        raise _refuse(spec, column, bad, cells, "allowed: true/false, yes/no, 1/0, or empty")
    return out


def _parse_trace(spec: TraceSpec, calendar: Calendar) -> pd.DataFrame:
    """The trace's columns, every cell checked (see :class:`TraceSpec` for what is allowed).

    Read as text so that nothing is guessed: pandas would read ``no`` as a true value once cast
    to bool and a blank time as NaN, which then counted as "outside the horizon". Empty dwell,
    class and flag cells mean "not recorded" and are drawn as for a stream without that column.
    """
    frame = pd.read_csv(spec.path, dtype=str, keep_default_na=False)
    missing = [
        c
        for c in (
            spec.time_column,
            spec.dwell_column,
            spec.class_column,
            spec.ev_column,
            spec.handicap_column,
        )
        if c is not None and c not in frame.columns
    ]
    if missing:
        raise ValueError(f"{spec.path}: missing column(s) {missing}; has {list(frame.columns)}")
    out = pd.DataFrame({"arrival": _arrivals(spec, frame[spec.time_column], calendar)})
    if spec.dwell_column:
        column = spec.dwell_column
        allowed = f"allowed: a stay in {spec.dwell_unit} >= 0, or empty"
        dwell = _numbers(spec, column, frame[column], allowed)
        negative = dwell < 0
        if negative.any():
            raise _refuse(spec, column, negative, frame[column], allowed)
        out["dwell"] = dwell * UNIT_SECONDS[spec.dwell_unit]
    if spec.class_column:
        cells = frame[spec.class_column]
        names = cells.str.strip().str.upper()
        bad = (~names.isin([*VehicleClass.__members__, ""])).to_numpy()
        if bad.any():
            allowed = "allowed: " + ", ".join(VehicleClass.__members__) + ", or empty"
            raise _refuse(spec, spec.class_column, bad, cells, allowed)
        codes = {name: member.value for name, member in VehicleClass.__members__.items()}
        out["vclass"] = names.map(codes).to_numpy(dtype=float)
    for col, name in ((spec.ev_column, "ev"), (spec.handicap_column, "handicap")):
        if col:
            out[name] = _flags(spec, col, frame[col])
    return out


def _wtp(spec: WillingnessSpec | None, gen: np.random.Generator, n: int) -> tuple[np.ndarray, bool]:
    if spec is None:
        return np.full(n, np.inf), False
    return spec.distribution.sample(gen, n) * 100.0, spec.per == "hour"


def _service(lane: LaneSpec | None, gen: np.random.Generator, n: int) -> np.ndarray:
    if lane is None:
        return np.zeros(n)
    return np.maximum(lane.service.sample_seconds(gen, n), 0.0)


def _dwell(stream: StreamSpec, arrival: np.ndarray, calendar: Calendar, rng: Streams) -> np.ndarray:
    n = len(arrival)
    gen = rng.get(f"dwell/{stream.name}")
    dwell = stream.dwell.sample_seconds(gen, n) if stream.dwell is not None else np.full(n, np.nan)
    if stream.dwell_by_hour:
        hours = np.array([calendar.hour(t) for t in arrival], dtype=int)
        for k, band in enumerate(stream.dwell_by_hour):
            mask = (hours >= band.hours[0]) & (hours < band.hours[1])
            band_gen = rng.get(f"dwell/{stream.name}/band{k}")
            dwell[mask] = band.dwell.sample_seconds(band_gen, n)[mask]
    return dwell


def _lane_kinds(scenario: Scenario) -> tuple[list[LanesSpec], tuple[int, ...]]:
    """Distinct lane settings among the lots, and which one each lot uses."""
    kinds: list[LanesSpec] = []
    of_lot = []
    for spec in scenario.lot_specs:
        lanes = spec.lanes or LanesSpec()
        if lanes not in kinds:
            kinds.append(lanes)
        of_lot.append(kinds.index(lanes))
    return kinds, tuple(of_lot)


def _target_lots(stream: StreamSpec, scenario: Scenario, rng: Streams, n: int) -> np.ndarray:
    names = [lot.name for lot in scenario.lot_specs]
    if stream.lot == "*":
        return rng.get(f"lotpick/{stream.name}").integers(0, len(names), size=n, dtype=np.int32)
    index = 0 if stream.lot is None else names.index(stream.lot)
    return np.full(n, index, dtype=np.int32)


def draw_drivers(scenario: Scenario, rng: Streams, calendar: Calendar) -> Drivers:
    """Draw every driver of one replication; see the module docstring for why in bulk."""
    kinds, lane_kind_of_lot = _lane_kinds(scenario)
    network = scenario.network if len(scenario.lot_specs) > 1 else None
    tries = network.diversion.max_tries if network is not None else 0
    parts: list[dict[str, np.ndarray]] = []
    dropped = 0
    horizon = scenario.horizon_s
    behaviour = scenario.behaviour
    for k, stream in enumerate(scenario.demand):
        name = stream.name
        if stream.trace is not None:
            trace = read_trace(stream, calendar)
            inside = (trace["arrival"] >= 0) & (trace["arrival"] < horizon)
            dropped += int((~inside).sum())
            trace = trace[inside].sort_values("arrival", kind="stable")
            arrival = trace["arrival"].to_numpy(dtype=float)
        else:
            trace = None
            edges, rates = hourly_rates(stream, calendar, slot_horizon(calendar, horizon))
            if stream.day_factor is not None:
                rates = rates * day_factors(stream, calendar, edges[:-1], rng)
            if stream.elasticity is not None:  # candidates, thinned by price during the run
                rates = rates * stream.elasticity.cap
            arrival = poisson_arrivals(edges, rates, rng.get(f"arrivals/{name}"))
            arrival = arrival[: np.searchsorted(arrival, horizon, side="left")]
        n = len(arrival)
        dwell = _dwell(stream, arrival, calendar, rng)
        if trace is not None and "dwell" in trace:
            recorded = trace["dwell"].to_numpy(dtype=float)
            dwell = np.where(np.isnan(recorded), dwell, recorded)
            if np.isnan(dwell).any():
                rows = (np.flatnonzero(np.isnan(dwell))[:5] + 2).tolist()
                spec = stream.trace
                raise ValueError(
                    f"{spec.path}: empty or non-numeric dwell in column {spec.dwell_column!r}"
                    f" (e.g. file rows {rows}); fill them in or give the stream a 'dwell' "
                    "distribution to draw missing stays from"
                )
        flags = rng.get(f"flags/{name}").random((n, 2))  # one row per driver (prefix-stable)
        ev = flags[:, 0] < stream.ev_share
        handicap = flags[:, 1] < stream.handicap_share
        del flags
        vclass = np.full(n, VehicleClass[stream.vehicle_class].value, dtype=np.int8)
        if trace is not None:  # recorded cells win; empty ones keep the draw
            for col, arr in (("ev", ev), ("handicap", handicap), ("vclass", vclass)):
                if col in trace:
                    recorded = trace[col].to_numpy()
                    known = ~np.isnan(recorded)
                    arr[known] = recorded[known]
        wtp, per_hour = _wtp(
            stream.willingness_to_pay or behaviour.willingness_to_pay, rng.get(f"wtp/{name}"), n
        )
        patience_spec = stream.patience or behaviour.patience
        if behaviour.when_full == "wait" and patience_spec is not None:
            patience = patience_spec.sample_seconds(rng.get(f"patience/{name}"), n)
        else:
            patience = np.zeros(n)
        parts.append(
            {
                "arrival": arrival,
                "dwell": np.maximum(dwell, 0.0, out=dwell),
                "vclass": vclass,
                "ev": ev,
                "handicap": handicap,
                "stream": np.full(n, k, dtype=np.int16),
                "wtp_cents": wtp,
                "wtp_per_hour": np.full(n, per_hour),
                "patience": patience,
                # one row per lane setting; the first keeps the one-lot stream names
                "entry_service": np.array(
                    [
                        _service(kind.entry, rng.get(f"lane-entry/{name}" + f"/{j}" * (j > 0)), n)
                        for j, kind in enumerate(kinds)
                    ]
                ),
                "exit_service": np.array(
                    [
                        _service(kind.exit, rng.get(f"lane-exit/{name}" + f"/{j}" * (j > 0)), n)
                        for j, kind in enumerate(kinds)
                    ]
                ),
                "lot": _target_lots(stream, scenario, rng, n),
                # (n, tries) then transposed: driver i's tries are consecutive draws
                "divert_u": np.ascontiguousarray(rng.get(f"divert/{name}").random((n, tries)).T),
                "accept_u": (
                    rng.get(f"elasticity/{name}").random(n)
                    if stream.elasticity is not None
                    else np.full(n, np.nan)
                ),
            }
        )
    return Drivers(**_merge(parts), trace_dropped=dropped, lane_kinds=lane_kind_of_lot)


def _merge(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """All streams' columns in arrival order, one column at a time to bound peak memory.

    A column holding one value throughout (no lanes: zero service; no budget: infinite
    willingness to pay) becomes a read-only broadcast of a one-element copy (a view of the full
    column would keep all of it alive): a city-day has millions of drivers.
    """
    keys = list(parts[0])
    single = len(parts) == 1  # one stream is drawn in arrival order already
    arrival = parts[0]["arrival"] if single else np.concatenate([p["arrival"] for p in parts])
    order = None if single else np.argsort(arrival, kind="stable")
    out = {"arrival": arrival if order is None else arrival[order]}
    del arrival
    for key in keys[1:]:
        column = parts[0].pop(key) if single else np.concatenate([p.pop(key) for p in parts], -1)
        if column.size and _constant(column):
            out[key] = np.broadcast_to(column[..., :1].copy(), column.shape)
        else:
            out[key] = column if order is None else column[..., order]
        del column
    return out


def _constant(column: np.ndarray) -> bool:
    first = column[..., :1]
    same = column == first
    if column.dtype.kind == "f":
        same |= np.isnan(column) & np.isnan(first)
    return bool(same.all())
