"""Turn demand streams into arrays of drivers, drawn in bulk before the clock starts.

Everything random about a driver (arrival, dwell, willingness to pay, patience, lane service
times, EV and permit flags) is drawn here, per stream, from that stream's own generators. The
event loop then only reads arrays, so a policy change cannot alter who arrives or what they want.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.core.clock import HOUR, Calendar
from twin.core.types import VehicleClass
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
    return edges, per_hour * stream.multiplier / HOUR


def poisson_arrivals(edges: np.ndarray, rates: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Exact non-homogeneous Poisson arrivals for a piecewise-constant rate, drawn in bulk.

    In each slot the count is Poisson(rate × length) and, given the count, times are uniform:
    no thinning, no per-arrival loop.
    """
    lengths = np.diff(edges)
    counts = gen.poisson(rates * lengths)
    times = gen.random(int(counts.sum()))
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


def _parse_trace(spec: TraceSpec, calendar: Calendar) -> pd.DataFrame:
    frame = pd.read_csv(spec.path)
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
    if spec.time_unit == "datetime":
        when = pd.to_datetime(frame[spec.time_column])
        arrival = (when - pd.Timestamp(calendar.epoch)).dt.total_seconds().to_numpy()
    else:
        scale = {"s": 1.0, "min": 60.0, "h": 3600.0}[spec.time_unit]
        arrival = frame[spec.time_column].to_numpy(dtype=float) * scale
    out = pd.DataFrame({"arrival": arrival})
    if spec.dwell_column:
        scale = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}[spec.dwell_unit]
        out["dwell"] = frame[spec.dwell_column].to_numpy(dtype=float) * scale
    if spec.class_column:
        names = frame[spec.class_column].astype(str).str.upper()
        bad = sorted(set(names) - set(VehicleClass.__members__))
        if bad:
            raise ValueError(f"{spec.path}: unknown vehicle classes {bad}")
        out["vclass"] = names.map(lambda n: VehicleClass[n].value).to_numpy()
    for col, name in ((spec.ev_column, "ev"), (spec.handicap_column, "handicap")):
        if col:
            out[name] = frame[col].astype(bool).to_numpy()
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
            edges, rates = hourly_rates(stream, calendar, horizon)
            if stream.elasticity is not None:  # candidates, thinned by price during the run
                rates = rates * stream.elasticity.cap
            arrival = poisson_arrivals(edges, rates, rng.get(f"arrivals/{name}"))
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
        flags = rng.get(f"flags/{name}")
        ev = flags.random(n) < stream.ev_share
        handicap = flags.random(n) < stream.handicap_share
        vclass = np.full(n, VehicleClass[stream.vehicle_class].value, dtype=np.int8)
        if trace is not None:
            for col, arr in (("ev", ev), ("handicap", handicap), ("vclass", vclass)):
                if col in trace:
                    arr[:] = trace[col].to_numpy()
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
                "divert_u": rng.get(f"divert/{name}").random((tries, n)),
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
