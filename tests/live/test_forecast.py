"""Forecast from now (issue 11): bands that hold on a simulated truth, fill times, determinism."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from twin import api
from twin.results import group_counts_at, groupings, stays
from twin.scenario.loader import validate_scenario
from twin.sim.model import simulate
from twin.sim.snapshot import state_from_record

T0 = datetime(2026, 1, 7, 9, 0)


def small_lot(rate: float, spots: int = 30) -> dict:
    return {
        "name": "small",
        "start": T0.isoformat(),
        "horizon_days": 1,
        "seed": 3,
        "facility": {"levels": [{"name": "G", "spots": {"REGULAR": spots}}]},
        "demand": [
            {
                "name": "cars",
                "rate_per_hour": rate,
                "dwell": {"type": "lognormal", "mean": 2, "sd": 1, "unit": "h"},
            }
        ],
    }


def test_forecast_bands_hold_the_actual_continuation_of_a_simulated_lot():
    """Snapshots of simulated weeks of the downtown garage (state without the cars' true
    remaining stays, as from a real lot), forecast 2 h ahead, compared with what the run then
    did: the 80% band must hold ~80% of (snapshot, level, time) points and the 95% band
    (with 20 replications the replications' range, 19/21 predictive) ~90%."""
    sc = api.load("scenarios/downtown_garage.yaml")
    hours = 2.0
    inside80 = inside95 = total = 0
    k = 0
    for rep in range(3):
        rec = simulate(sc, rep, seed=777)
        spot, starts, ends = stays(rec)
        for day in range(1, 6):  # Monday .. Friday
            for hour in (8.0, 11.5, 17.0):
                at = 12 * 3600.0 + (day - 1) * 86400.0 + (12 + hour) * 3600.0
                state = state_from_record(rec, at)
                fc = api.forecast(state, sc, hours=hours, replications=20, seed=1000 + k)
                k += 1
                level = fc.bands[fc.bands["group_kind"] == "level"]
                times = np.sort(level["minutes"].unique()) * 60.0
                for kind, names, _, gid in groupings(rec, spot):
                    if kind != "level":
                        continue
                    actual = group_counts_at(at + times, gid, len(names), starts, ends)
                    for j, name in enumerate(names):
                        band = level[level["group"] == name].sort_values("minutes")
                        a = actual[j][1:]  # after t0 (at t0 the state is exact)
                        b = band.iloc[1:]
                        inside80 += int(((a >= b["p10"]) & (a <= b["p90"])).sum())
                        inside95 += int(((a >= b["p2_5"]) & (a <= b["p97_5"])).sum())
                        total += len(a)
    c80, c95 = inside80 / total, inside95 / total
    assert 0.72 <= c80 <= 0.90, (c80, c95, total)
    assert 0.85 <= c95 <= 0.99, (c80, c95, total)


def test_forecast_starts_at_the_state_and_is_deterministic():
    sc = validate_scenario(small_lot(rate=10))
    state = {"time": T0.isoformat(), "lots": [{"sessions": [{"elapsed_min": 30}] * 12}]}
    a = api.forecast(state, sc, hours=2, replications=8, seed=4)
    b = api.forecast(state, sc, hours=2, replications=8, seed=4)
    c = api.forecast(state, sc, hours=2, replications=8, seed=5)
    assert a.bands.equals(b.bands) and a.fill.equals(b.fill)
    assert not a.occupancy["occupied"].equals(c.occupancy["occupied"])
    first = a.bands[a.bands["minutes"] == 0]
    assert (first["p2_5"] == 12).all() and (first["p97_5"] == 12).all()
    assert a.bands["time"].iloc[0] == T0
    assert set(a.bands["group_kind"]) == {"total", "level", "spot_type"}
    assert len(a.summary()) == len(a.fill)


def test_fill_time_when_the_lot_surely_fills_and_when_it_cannot():
    sc = validate_scenario(small_lot(rate=120, spots=30))
    state = {"time": T0.isoformat(), "lots": [{"sessions": [{"elapsed_min": 5}] * 25}]}
    fc = api.forecast(state, sc, hours=1, replications=10, seed=1)
    total = fc.fill[fc.fill["group_kind"] == "total"].iloc[0]
    # 5 spots left, 2 arrivals a minute, stays of hours: full within minutes, every time
    assert total["p_full"] == 1.0
    assert 0 < total["fill_p50_min"] < 10
    assert total["fill_p2_5_min"] <= total["fill_p50_min"] <= total["fill_p97_5_min"]
    assert "expected to fill" in total["verdict"]
    quiet = validate_scenario(small_lot(rate=0, spots=30))
    fc = api.forecast(state, quiet, hours=1, replications=5, seed=1)
    total = fc.fill[fc.fill["group_kind"] == "total"].iloc[0]
    assert total["p_full"] == 0.0 and np.isnan(total["fill_p50_min"])
    assert "not expected to fill within 1 h" in total["verdict"]
    full = {"time": T0.isoformat(), "lots": [{"sessions": [{"elapsed_min": 5}] * 30}]}
    fc = api.forecast(full, quiet, hours=1, replications=3, seed=1)
    assert fc.fill[fc.fill["group_kind"] == "total"].iloc[0]["verdict"] == "full now"


def test_forecast_refuses_too_few_replications():
    sc = validate_scenario(small_lot(rate=1))
    with pytest.raises(ValueError, match="at least 2 replications"):
        api.forecast({"time": T0.isoformat()}, sc, replications=1)
