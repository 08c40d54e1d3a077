"""Replaying a recorded trace: the model must block exactly the cars an independent loop blocks.

With a trace the arrivals and dwells are given, so nothing is random and the outcome of every car
is determined by the rules alone: a car parks if a compatible spot is free, departures free their
spot before arrivals at the same instant, tied arrivals are served in trace order, and a car
leaves at entry + dwell (as floats). The trace deliberately stresses those rules: several cars at
the same second, cars arriving exactly when another leaves, cars staying zero seconds, rows
outside the horizon, shuffled rows.

Two references, both plain ``heapq`` event loops written from the rules, not from the model:

* a count-only loop (free spots per type) for best-fit, which picks the smallest compatible type;
* a spot-level loop that also predicts *which* spot each car gets, for best-fit, nearest and
  first-fit, from the lot's static spot table (type, distance, index).
"""

from __future__ import annotations

import heapq
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.scenario.loader import validate_scenario
from twin.sim.model import BLOCKED, PARKED, RENEGED, simulate

HORIZON_S = 2 * 86400.0
SIZES = {"COMPACT": 1, "REGULAR": 2, "LARGE": 3}
#: Spot types each class may use, smallest first (what best-fit tries in order).
FITS = {
    "COMPACT": ("COMPACT", "REGULAR", "LARGE"),
    "REGULAR": ("REGULAR", "LARGE"),
    "LARGE": ("LARGE",),
}
LEVELS = [
    {"name": "G", "spots": {"COMPACT": 6, "REGULAR": 12, "LARGE": 3}},
    # P1's ramp is 20 m from the gate, so its spots interleave with G's by distance, some
    # at exactly the same distance (ties broken by spot index)
    {"name": "P1", "spots": {"COMPACT": 4, "REGULAR": 8, "LARGE": 2}, "entrance_distance_m": 20},
]
CAPACITY = {"COMPACT": 10, "REGULAR": 20, "LARGE": 5}

_DEPART, _ARRIVE = 0, 1


# -- the trace ---------------------------------------------------------------------------------
def make_trace(seed: int = 20260105) -> pd.DataFrame:
    """~2,000 gate records over two days with exact ties, in shuffled order.

    Times are whole seconds and dwells are multiples of a quarter minute, so every departure
    time (arrival + 60·dwell) is an exact float and can be hit exactly by another arrival.
    """
    rng = np.random.default_rng(seed)
    # busy days: most traffic 07:00-19:00, so the lot fills up
    hour_weight = np.array([1] * 7 + [6] * 12 + [1] * 5, dtype=float)
    n = 1500
    day = rng.integers(0, 2, n)
    hour = rng.choice(24, size=n, p=hour_weight / hour_weight.sum())
    times = day * 86400 + hour * 3600 + rng.integers(0, 3600, n)
    dwell = np.round(rng.lognormal(np.log(25.0), 0.8, n) * 4) / 4  # minutes, quarter steps
    dwell[rng.choice(n, 8, replace=False)] = 0.0  # in and out at once
    cls = rng.choice(list(SIZES), size=n, p=[0.3, 0.55, 0.15])

    # exact ties between arrivals: bursts of 2-4 cars at the same second
    burst = rng.choice(n, 120, replace=False)
    copies = rng.integers(1, 4, len(burst))
    tied_times = np.repeat(times[burst], copies)
    # arrivals exactly at another car's departure time
    leavers = rng.choice(n, 300, replace=False)
    at_departure = times[leavers] + dwell[leavers] * 60.0

    extra_t = np.concatenate([tied_times, at_departure])
    m = len(extra_t)
    extra_dwell = np.round(rng.lognormal(np.log(25.0), 0.8, m) * 4) / 4
    extra_cls = rng.choice(list(SIZES), size=m, p=[0.3, 0.55, 0.15])

    frame = pd.DataFrame(
        {
            "ts": np.concatenate([times.astype(float), extra_t]),
            "stay_min": np.concatenate([dwell, extra_dwell]),
            "cls": np.concatenate([cls, extra_cls]),
        }
    )
    # rows the model must drop: before the start, at and after the horizon
    outside = pd.DataFrame(
        {
            "ts": [-60.0, HORIZON_S, HORIZON_S + 5, 200000.0],
            "stay_min": [30.0, 30.0, 30.0, 30.0],
            "cls": ["REGULAR"] * 4,
        }
    )
    frame = pd.concat([frame, outside], ignore_index=True)
    lower = rng.random(len(frame)) < 0.05  # class names are case-insensitive
    frame.loc[lower, "cls"] = frame.loc[lower, "cls"].str.lower()
    frame["plate"] = [f"P{k:05d}" for k in range(len(frame))]  # an unused column
    return frame.sample(frac=1.0, random_state=7).reset_index(drop=True)


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    frame = make_trace()
    path = tmp_path_factory.mktemp("trace") / "gate_log.csv"
    frame.to_csv(path, index=False)
    return frame, path


def trace_scenario(path: Path, strategy: str) -> dict:
    return {
        "name": f"trace-{strategy}",
        "horizon_days": HORIZON_S / 86400.0,
        "facility": {"strategy": strategy, "levels": LEVELS},
        "demand": [
            {
                "name": "gate",
                "trace": {
                    "path": str(path),
                    "time_column": "ts",
                    "time_unit": "s",
                    "dwell_column": "stay_min",
                    "dwell_unit": "min",
                    "class_column": "cls",
                },
            }
        ],
        "behaviour": {"when_full": "leave"},
    }


# -- the references ----------------------------------------------------------------------------
def trace_columns(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Arrival (s), dwell (s, as the model computes it: minutes · 60.0) and class per row."""
    arrival = frame["ts"].to_numpy(dtype=float)
    dwell = frame["stay_min"].to_numpy(dtype=float) * 60.0
    return arrival, dwell, [c.upper() for c in frame["cls"]]


def arrival_events(arrival: np.ndarray) -> list[tuple]:
    """One heap entry per row inside the horizon; ties between arrivals keep row order."""
    return [(float(t), _ARRIVE, row, row) for row, t in enumerate(arrival) if 0.0 <= t < HORIZON_S]


def reference_counts(
    frame: pd.DataFrame, departures_first: bool = True, reverse_ties: bool = False
) -> tuple[set[int], list[tuple[float, int]]]:
    """Best-fit with free counts per spot type: blocked rows, and (time, row) of every arrival
    that came exactly when a car left.

    ``departures_first=False`` and ``reverse_ties=True`` break the tie rules on purpose: they
    show the trace is sharp enough that the rules decide outcomes.
    """
    arrival, dwell, cls = trace_columns(frame)
    depart_kind = _DEPART if departures_first else _ARRIVE + 1
    tie = -1 if reverse_ties else 1
    heap = [(t, kind, tie * seq, row) for t, kind, seq, row in arrival_events(arrival)]
    heapq.heapify(heap)
    free = dict(CAPACITY)
    blocked: set[int] = set()
    departure_times: set[float] = set()
    coincident: list[tuple[float, int]] = []
    seq = len(arrival)
    while heap:
        t, kind, _, payload = heapq.heappop(heap)
        if t >= HORIZON_S:
            break
        if kind != _ARRIVE:
            free[payload] += 1
            departure_times.add(t)
            continue
        row = payload
        if t in departure_times:
            coincident.append((t, row))
        for stype in FITS[cls[row]]:
            if free[stype]:
                free[stype] -= 1
                seq += 1
                heapq.heappush(heap, (t + dwell[row], depart_kind, seq, stype))
                break
        else:
            blocked.add(row)
    return blocked, coincident


def reference_spots(frame: pd.DataFrame, spots: list, strategy: str) -> dict[int, int]:
    """Row -> spot index (-1 if blocked), choosing spots by each strategy's documented rule.

    best_fit: smallest compatible type first, then nearest (distance, index) within it;
    nearest: nearest compatible spot of any type; first_fit: lowest compatible spot index.
    """
    arrival, dwell, cls = trace_columns(frame)
    table = [(s.index, s.type.name, s.distance) for s in spots]
    free = {index for index, _, _ in table}
    heap = arrival_events(arrival)
    heapq.heapify(heap)
    spot_of: dict[int, int] = {}
    seq = len(arrival)
    while heap:
        t, kind, _, payload = heapq.heappop(heap)
        if t >= HORIZON_S:
            break
        if kind == _DEPART:
            free.add(payload)
            continue
        row = payload
        fits = FITS[cls[row]]
        candidates = [(i, ty, dist) for i, ty, dist in table if i in free and ty in fits]
        if not candidates:
            spot_of[row] = -1
            continue
        if strategy == "best_fit":
            best = min(candidates, key=lambda s: (fits.index(s[1]), s[2], s[0]))
        elif strategy == "nearest":
            best = min(candidates, key=lambda s: (s[2], s[0]))
        else:
            best = min(candidates, key=lambda s: s[0])
        free.remove(best[0])
        spot_of[row] = best[0]
        seq += 1
        heapq.heappush(heap, (t + dwell[row], _DEPART, seq, best[0]))
    return spot_of


def model_rows(frame: pd.DataFrame, rec) -> np.ndarray:
    """Trace row of each simulated driver: rows inside the horizon, stably sorted by time."""
    arrival = frame["ts"].to_numpy(dtype=float)
    inside = np.flatnonzero((arrival >= 0) & (arrival < HORIZON_S))
    rows = inside[np.argsort(arrival[inside], kind="stable")]
    assert len(rows) == len(rec.drivers)
    return rows


# -- the tests ---------------------------------------------------------------------------------
def test_trace_is_loaded_as_written(trace) -> None:
    frame, path = trace
    rec = simulate(validate_scenario(trace_scenario(path, "best_fit")))
    rows = model_rows(frame, rec)
    arrival, dwell, cls = trace_columns(frame)
    outside = (frame["ts"] < 0) | (frame["ts"] >= HORIZON_S)
    assert outside.sum() >= 4
    assert rec.drivers.trace_dropped == outside.sum()
    assert np.array_equal(rec.drivers.arrival, arrival[rows])
    assert np.array_equal(rec.drivers.dwell, dwell[rows])
    assert [SIZES[cls[r]] for r in rows] == rec.drivers.vclass.tolist()


def test_trace_stresses_the_tie_rules(trace) -> None:
    """The trace is sharp: flipping either tie rule changes who gets blocked."""
    frame, _ = trace
    blocked, coincident = reference_counts(frame)
    times = frame["ts"][(frame["ts"] >= 0) & (frame["ts"] < HORIZON_S)]
    assert times.duplicated().sum() >= 100  # arrivals at the very same second
    assert len(coincident) >= 100  # arrivals exactly when a car leaves
    assert reference_counts(frame, departures_first=False)[0] != blocked
    assert reference_counts(frame, reverse_ties=True)[0] != blocked


def test_blocked_cars_match_count_reference(trace) -> None:
    frame, path = trace
    rec = simulate(validate_scenario(trace_scenario(path, "best_fit")))
    rows = model_rows(frame, rec)
    model_blocked = set(rows[rec.outcome == BLOCKED].tolist())
    expected, coincident = reference_counts(frame)
    total = len(rows)
    print(
        f"trace: {total} arrivals, {len(coincident)} at a departure instant, "
        f"blocked model {len(model_blocked)} / reference {len(expected)}"
    )
    assert 0 < len(expected) < total
    assert set(rec.outcome.tolist()) <= {PARKED, BLOCKED}
    missing, extra = sorted(expected - model_blocked), sorted(model_blocked - expected)
    assert model_blocked == expected, f"not blocked by model: {missing[:10]}, extra: {extra[:10]}"


@pytest.mark.parametrize("strategy", ["best_fit", "nearest", "first_fit"])
def test_spots_and_times_match_spot_reference(trace, strategy: str) -> None:
    frame, path = trace
    rec = simulate(validate_scenario(trace_scenario(path, strategy)))
    rows = model_rows(frame, rec)
    expected = reference_spots(frame, rec.lot.spots, strategy)
    want = np.array([expected[r] for r in rows])
    n_blocked = int((want < 0).sum())
    print(f"{strategy}: {n_blocked} of {len(rows)} blocked")
    assert 0 < n_blocked < len(rows)
    if strategy == "best_fit":  # the two references agree with each other
        assert set(rows[want < 0].tolist()) == reference_counts(frame)[0]
    mismatch = np.flatnonzero(rec.spot != want)
    assert len(mismatch) == 0, (
        f"{len(mismatch)} cars differ, first at trace row {rows[mismatch[0]]}: "
        f"model spot {rec.spot[mismatch[0]]}, reference {want[mismatch[0]]}"
    )
    assert np.array_equal(rec.outcome == BLOCKED, want < 0)
    parked = want >= 0
    d = rec.drivers
    assert np.array_equal(rec.entry_t[parked], d.arrival[parked])
    assert np.isnan(rec.entry_t[~parked]).all() and np.isnan(rec.leave_t[~parked]).all()
    ends = d.arrival + d.dwell
    done = parked & (ends < HORIZON_S)
    assert np.array_equal(rec.leave_t[done], ends[done])  # exact: entry + dwell as floats
    assert np.isnan(rec.leave_t[parked & (ends > HORIZON_S)]).all()


def test_strategies_differ_on_this_trace(trace) -> None:
    """Not vacuous: on two levels the strategies block different cars."""
    _, path = trace
    outcomes = {
        s: simulate(validate_scenario(trace_scenario(path, s))).outcome
        for s in ("best_fit", "nearest", "first_fit")
    }
    assert not np.array_equal(outcomes["best_fit"], outcomes["nearest"])
    assert not np.array_equal(outcomes["nearest"], outcomes["first_fit"])


# -- waiting drivers: departures through the heap and the presorted stream, interleaved ---------
_RENEGE, _LATE_ARRIVAL = 1, 2  # a deadline at an arrival's instant goes first


def reference_waiting(frame: pd.DataFrame, spots: list, patience_s: float) -> dict[int, tuple]:
    """Row -> (spot, entry time, reneged), nearest strategy, drivers waiting up to patience.

    Rules, from the model's documentation: at one instant departures go first (in the order
    they were scheduled), then patience deadlines, then arrivals in trace order. A departure
    serves the waiting line first come, first served across classes: the freed spot goes to
    the longest-waiting driver it fits; drivers it does not fit keep their place. Drivers who
    waited leave at park time + dwell.
    """
    arrival, dwell, cls = trace_columns(frame)
    table = [(s.index, s.type.name, s.distance) for s in spots]
    free = {index for index, _, _ in table}
    heap = [(t, _LATE_ARRIVAL, seq, row) for t, _, seq, row in arrival_events(arrival)]
    heapq.heapify(heap)
    seq = len(arrival)
    result: dict[int, tuple] = {}
    line: list[int] = []

    def take(row: int) -> int | None:
        fits = FITS[cls[row]]
        candidates = [(d, i) for i, ty, d in table if i in free and ty in fits]
        if not candidates:
            return None
        spot = min(candidates)[1]
        free.remove(spot)
        return spot

    def park(row: int, spot: int, t: float) -> None:
        nonlocal seq
        result[row] = (spot, t, False)
        seq += 1
        heapq.heappush(heap, (t + dwell[row], _DEPART, seq, ("leave", spot)))

    while heap:
        t, kind, _, payload = heapq.heappop(heap)
        if t >= HORIZON_S:
            break
        if kind == _DEPART:
            free.add(payload[1])
            for row in list(line):
                spot = take(row)
                if spot is not None:
                    line.remove(row)
                    park(row, spot, t)
        elif kind == _RENEGE:
            if payload in line:
                line.remove(payload)
                result[payload] = (-1, None, True)
        else:
            row = payload
            spot = take(row)
            if spot is not None:
                park(row, spot, t)
            else:
                line.append(row)
                result[row] = (-1, None, False)
                seq += 1
                heapq.heappush(heap, (t + patience_s, _RENEGE, seq, row))
    return result


@pytest.mark.parametrize("patience_min", [5, 30])
def test_waiting_drivers_match_reference(trace, patience_min: int) -> None:
    """Cars that parked after waiting leave through SimPy's heap, the others through the
    presorted stream; with exact ties everywhere the interleaving must still be the rules'."""
    frame, path = trace
    sc = trace_scenario(path, "nearest")
    sc["behaviour"] = {
        "when_full": "wait",
        "patience": {"type": "constant", "value": patience_min, "unit": "min"},
    }
    rec = simulate(validate_scenario(sc))
    rows = model_rows(frame, rec)
    expected = reference_waiting(frame, rec.lot.spots, patience_min * 60.0)
    want_spot = np.array([expected[r][0] for r in rows])
    want_entry = np.array([np.nan if expected[r][1] is None else expected[r][1] for r in rows])
    reneged = np.array([expected[r][2] for r in rows])
    late = (want_spot >= 0) & (want_entry > rec.drivers.arrival)
    print(f"patience {patience_min} min: {late.sum()} parked after waiting, {reneged.sum()} left")
    assert late.sum() >= 20 and reneged.sum() >= 20  # both paths are exercised
    mismatch = np.flatnonzero(rec.spot != want_spot)
    assert len(mismatch) == 0, (
        f"{len(mismatch)} cars differ, first at trace row {rows[mismatch[0]]}: "
        f"model spot {rec.spot[mismatch[0]]}, reference {want_spot[mismatch[0]]}"
    )
    np.testing.assert_array_equal(rec.entry_t, want_entry)
    assert np.array_equal(rec.outcome == RENEGED, reneged)


def test_waiting_line_is_first_come_first_served_across_classes(tmp_path: Path) -> None:
    """A freed spot goes to the longest-waiting driver it fits, whatever waits in between.

    One REGULAR and one MOTORCYCLE spot. The REGULAR of minute 2 waits for the REGULAR spot
    freed at 100; the MOTORCYCLE spot freed at 51 does not fit it, and that must not send it
    behind the REGULAR of minute 4 (which parks when the minute-2 car leaves, at 130).
    """
    path = tmp_path / "five.csv"
    pd.DataFrame(
        {
            "minute": [0, 1, 2, 3, 4],
            "stay": [100, 50, 30, 30, 30],
            "cls": ["REGULAR", "MOTORCYCLE", "REGULAR", "MOTORCYCLE", "REGULAR"],
        }
    ).to_csv(path, index=False)
    sc = {
        "name": "fcfs",
        "horizon_days": 1,
        "facility": {"levels": [{"name": "G", "spots": {"REGULAR": 1, "MOTORCYCLE": 1}}]},
        "demand": [
            {
                "name": "gate",
                "trace": {
                    "path": str(path),
                    "time_column": "minute",
                    "time_unit": "min",
                    "dwell_column": "stay",
                    "dwell_unit": "min",
                    "class_column": "cls",
                },
            }
        ],
        "behaviour": {
            "when_full": "wait",
            "patience": {"type": "constant", "value": 10, "unit": "h"},
        },
    }
    rec = simulate(validate_scenario(sc))
    assert (rec.outcome == PARKED).all()
    assert (rec.entry_t / 60.0).tolist() == [0, 1, 100, 51, 130]
