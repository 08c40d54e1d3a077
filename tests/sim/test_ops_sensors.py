"""Sensors, counters and displays wired into the model (``operations.sensors``).

What is checked: a scripted run against figures worked out by hand (a stuck sensor, a trace of
four cars), the warm-up window, perfect devices against an independent recomputation of the
boards from the vehicle records (wrong only by refresh staleness), a gateway outage's cost,
the model's invariants and identities, determinism and common random numbers, a network, and
the CLI's summary.json.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from twin.results import Facility, metrics
from twin.scenario.loader import validate_scenario
from twin.sim.model import PARKED, TURNED_AWAY, simulate

HAND_TRACE = "arrival,dwell\n600,1200\n615,600\n4800,600\n9500,100\n"


def hand_scenario(tmp_path: Path, warmup_hours: float = 0.0) -> dict:
    """One bay, one sensor that sticks 'occupied' for 30 min after every 60 min up, a board
    refreshed every 70 s (so refreshes never coincide with the failures), drivers who always
    believe a FULL sign; 3 hours."""
    (tmp_path / "trace.csv").write_text(HAND_TRACE)
    return {
        "name": "hand",
        "horizon_days": 0.125,
        "warmup_hours": warmup_hours,
        "facility": {"levels": [{"name": "P1", "spots": {"REGULAR": 1}}]},
        "demand": [
            {
                "name": "cars",
                "trace": {
                    "path": str(tmp_path / "trace.csv"),
                    "time_unit": "s",
                    "dwell_column": "dwell",
                    "dwell_unit": "s",
                },
            }
        ],
        "operations": {
            "sensors": {
                "detection": "spot_sensors",
                "failures": {
                    "between": {"type": "constant", "value": 60},
                    "repair": {"type": "constant", "value": 30},
                    "modes": {"stuck_occupied": 1},
                },
                "displays": {"board_refresh_s": 70, "app_refresh_s": 70},
                "drivers": {"turn_away_on_full": 1.0},
            }
        },
    }


def test_stuck_sensor_day_by_hand(tmp_path: Path) -> None:
    # Car A parks 600-1800 s; the board (refreshes at multiples of 70 s) still shows 1 free
    # until 630: 30 s "free when full", and car B (615 s) drives round the full level (90 s)
    # and is blocked. A leaves at 1800, the board shows FULL until 1820: 20 s. The sensor
    # sticks at 3600 (board FULL from 3640) until its repair at 5400 (board free at 5460):
    # 1820 s, during which car C (4800 s) is turned away from an empty lot. It sticks again
    # at 9000 (board FULL from 9030) until the horizon 10800: 1770 s, car D (9500 s) turned
    # away. FULL while free: 20 + 1820 + 1770 = 3610 s; wrong: 3640 s.
    rec = simulate(validate_scenario(hand_scenario(tmp_path)))
    m = metrics(rec)
    days = 0.125
    assert list(rec.outcome) == [PARKED, 1, TURNED_AWAY, TURNED_AWAY]  # 1: blocked
    expected = {
        "wrong_display_min_per_day": 3640 / 60,
        "full_when_free_min_per_day": 3610 / 60,
        "free_when_full_min_per_day": 30 / 60,
        "phantom_full_spot_min_per_day": 3610 / 60,  # one bay hidden for 3610 s
        "phantom_free_spot_min_per_day": 30 / 60,
        "shown_full_per_day": 2,
        "turned_away_per_day": 2,
        "turned_away_with_space_per_day": 2,
        "wrong_level_visits_per_day": 1,
        "extra_search_min_per_day": 1.5,
        "sensor_failures_per_day": 2,
        "sensor_down_min_per_day": 60,  # 3600-5400 and 9000-10800
    }
    for name, total in expected.items():
        assert m[f"sensors.{name}"] == pytest.approx(total / days), name
    assert m["sensors.wrong_display_min_per_day.level[P1]"] == pytest.approx(3640 / 60 / days)
    assert m["sensors.turned_away_with_space_pct"] == pytest.approx(50.0)  # 2 of 4 readers
    assert m["sensors.extra_search_s_per_driver"] == pytest.approx(45.0)  # A 0 s, B 90 s
    frame = rec.component_frames["sensors_measures"]
    wrong = frame.query("scope == 'board' and level == 'P1' and measure == 'wrong_min'")
    assert wrong["value"].item() == pytest.approx(3640 / 60)  # window totals, not per day


def test_figures_cover_only_the_time_after_the_warm_up(tmp_path: Path) -> None:
    # Same run, warm-up 1 h: only the two stuck periods (1820 + 1770 s) and C, D count.
    rec = simulate(validate_scenario(hand_scenario(tmp_path, warmup_hours=1.0)))
    m = metrics(rec)
    days = 2 / 24
    assert m["sensors.wrong_display_min_per_day"] == pytest.approx(3590 / 60 / days)
    assert m["sensors.free_when_full_min_per_day"] == 0.0
    assert m["sensors.turned_away_with_space_per_day"] == pytest.approx(2 / days)
    assert m["sensors.sensor_failures_per_day"] == pytest.approx(2 / days)  # 3600 counts
    assert m["sensors.sensor_down_min_per_day"] == pytest.approx(60 / days)
    assert m["sensors.wrong_level_visits_per_day"] == 0.0
    assert math.isnan(m["sensors.extra_search_s_per_driver"])  # nobody reached the barrier


def busy_lot(**sensors: object) -> dict:
    """Two levels of 8 bays, about as many cars as bays: full often, never for long."""
    return {
        "name": "busy",
        "horizon_days": 1,
        "warmup_hours": 2,
        "seed": 5,
        "facility": {
            "levels": [
                {"name": "P1", "spots": {"REGULAR": 8}},
                {"name": "P2", "spots": {"REGULAR": 8}},
            ]
        },
        "demand": [
            {
                "name": "cars",
                "rate_per_hour": 16,
                "dwell": {"type": "exponential", "mean": 1, "unit": "h"},
            }
        ],
        "operations": {"sensors": sensors},
    }


def board_from_records(rec, refresh_s: float, level: int) -> tuple[float, float, float]:
    """Independent recomputation of a perfect display of ``level`` over [warm-up, horizon]:
    the true free count from the vehicle records, shown as it was at the last refresh
    (multiples of ``refresh_s``). Returns (wrong s, phantom-full spot-s, phantom-free spot-s).
    """
    sc = rec.scenario
    t0, t1 = sc.warmup_s, sc.horizon_s
    fac = Facility(rec)
    cap = fac.capacity_by_level[level]
    on_level = (rec.spot >= 0) & (fac.level[np.maximum(rec.spot, 0)] == level)
    entries = np.sort(rec.entry_t[on_level])
    leaves = np.sort(np.nan_to_num(rec.leave_t[on_level], nan=np.inf))

    def free(t: np.ndarray) -> np.ndarray:
        taken = np.searchsorted(entries, t, side="right")
        left = np.searchsorted(leaves, t, side="right")
        return cap - taken + left

    refreshes = np.arange(0.0, t1, refresh_s)
    cuts = np.concatenate([entries, leaves[np.isfinite(leaves)], refreshes, [t0, t1]])
    cuts = np.unique(cuts[(cuts >= t0) & (cuts <= t1)])
    start, dt = cuts[:-1], np.diff(cuts)
    true = free(start)
    shown = free(np.floor(start / refresh_s) * refresh_s)
    wrong = ((shown <= 0) & (true > 0)) | ((true <= 0) & (shown > 0))
    return (
        float(dt[wrong].sum()),
        float((np.maximum(true - shown, 0) * dt).sum()),
        float((np.maximum(shown - true, 0) * dt).sum()),
    )


@pytest.mark.parametrize("detection", ["spot_sensors", "counters", "both"])
def test_perfect_devices_are_wrong_only_by_refresh_staleness(detection: str) -> None:
    # Healthy devices estimate the truth exactly, so the board is wrong only between a change
    # of the truth and the next refresh: exactly what the records say a display refreshed
    # every 120 s would show.
    refresh = 120.0
    data = busy_lot(detection=detection, displays={"board_refresh_s": refresh})
    rec = simulate(validate_scenario(data))
    m = metrics(rec)
    days = (86400 - 7200) / 86400
    for k, name in enumerate(("P1", "P2")):
        wrong_s, hidden, promised = board_from_records(rec, refresh, k)
        assert wrong_s > 0  # the check can fail: staleness alone costs something here
        assert m[f"sensors.wrong_display_min_per_day.level[{name}]"] == pytest.approx(
            wrong_s / 60 / days
        )
        assert m[f"sensors.phantom_full_spot_min_per_day.level[{name}]"] == pytest.approx(
            hidden / 60 / days
        )
        assert m[f"sensors.phantom_free_spot_min_per_day.level[{name}]"] == pytest.approx(
            promised / 60 / days
        )
    if detection != "counters":
        assert m["sensors.sensor_failures_per_day"] == 0
        assert m["sensors.gateway_down_min_per_day"] == 0
    if detection != "spot_sensors":
        assert m["sensors.counter_drift_abs"] == 0
        # counters alone: both levels' figures come from counters all day; with sensors too,
        # no sensor is ever stale, so never
        fallback = 2 * 24 * 60 if detection == "counters" else 0.0
        assert m["sensors.fallback_min_per_day"] == pytest.approx(fallback)


def _days(data: dict, days: float) -> dict:
    return {**data, "horizon_days": days}


OUTAGES = {"rate_per_day": 6, "duration": {"type": "constant", "value": 90, "unit": "min"}}


def test_gateway_outages_cost_wrong_minutes_and_drivers_sent_away_from_free_bays() -> None:
    # A dead gateway freezes a level's readings: a level full when it went down shows FULL
    # while cars leave, one with space shows free while it fills. Same seed, same drivers.
    # Ten days, not one: in one day only a handful of drivers are sent away from free bays
    # (3 against 1 with the per-horizon demand draws), too few for the margin below; over ten
    # days it is 11.4 a day against 1.7.
    perfect = metrics(simulate(validate_scenario(_days(busy_lot(detection="spot_sensors"), 10))))
    broken = metrics(
        simulate(
            validate_scenario(
                _days(busy_lot(detection="spot_sensors", gateway_outages=OUTAGES), 10)
            )
        )
    )
    assert perfect["sensors.gateway_outages_per_day"] == 0
    assert broken["sensors.gateway_outages_per_day"] > 0
    assert broken["sensors.gateway_down_min_per_day"] > 0
    assert broken["arrivals"] == perfect["arrivals"]  # common random numbers
    for name in (
        "wrong_display_min_per_day",
        "full_when_free_min_per_day",
        "phantom_full_spot_min_per_day",
        "turned_away_with_space_per_day",
        "turned_away_with_space_pct",
    ):
        assert broken[f"sensors.{name}"] > 2 * perfect[f"sensors.{name}"] + 1, name


def test_invariants_and_identities_of_a_run_with_failing_devices() -> None:
    data = busy_lot(
        detection="both",
        failures={
            "between": {"type": "exponential", "mean": 6, "unit": "h"},
            "repair": {"type": "exponential", "mean": 1, "unit": "h"},
            "modes": {"stuck_occupied": 0.4, "stuck_free": 0.3, "silent": 0.3},
        },
        gateway_outages=OUTAGES,
        counter_miss_probability=0.05,
        drivers={"turn_away_on_full": 0.7},
    )
    rec = simulate(validate_scenario(data))
    m = metrics(rec)
    t0 = rec.scenario.warmup_s
    days = (rec.scenario.horizon_s - t0) / 86400
    after = rec.drivers.arrival >= t0
    away = rec.outcome == TURNED_AWAY
    # every car the boards sent away is an outcome of the model, and none holds a spot
    assert m["sensors.turned_away_per_day"] * days == pytest.approx((away & after).sum())
    assert (rec.spot[away] == -1).all()
    assert 0 < m["sensors.turned_away_per_day"] < m["sensors.shown_full_per_day"]  # p = 0.7
    assert m["sensors.turned_away_with_space_per_day"] <= m["sensors.turned_away_per_day"]
    # no spot held twice: consecutive stays on a spot never overlap
    parked = rec.spot >= 0
    order = np.lexsort((rec.entry_t[parked], rec.spot[parked]))
    spot = rec.spot[parked][order]
    entry = rec.entry_t[parked][order]
    leave = np.nan_to_num(rec.leave_t[parked][order], nan=np.inf)
    same = spot[1:] == spot[:-1]
    assert (entry[1:][same] >= leave[:-1][same]).all()
    # every other driver reached the barrier and searched once (no tariff, no lanes)
    searched = (after & ~away).sum()
    extra_s = m["sensors.extra_search_min_per_day"] * days * 60
    assert m["sensors.extra_search_s_per_driver"] == pytest.approx(extra_s / searched)
    # constant 90 s per wrong level (the default)
    assert extra_s == pytest.approx(90 * m["sensors.wrong_level_visits_per_day"] * days)
    assert m["sensors.turned_away_with_space_pct"] == pytest.approx(
        100 * m["sensors.turned_away_with_space_per_day"] * days / after.sum()
    )
    assert m["sensors.counter_missed_per_day"] > 0


def test_same_seed_same_figures_and_devices_do_not_depend_on_drivers() -> None:
    data = busy_lot(
        failures={
            "between": {"type": "exponential", "mean": 6, "unit": "h"},
            "repair": {"type": "exponential", "mean": 1, "unit": "h"},
        },
        gateway_outages=OUTAGES,
    )
    scenario = validate_scenario(data)
    a, b = metrics(simulate(scenario)), metrics(simulate(scenario))
    assert a == pytest.approx(b, nan_ok=True)
    other = metrics(simulate(scenario, seed=99))
    assert other["sensors.wrong_display_min_per_day"] != a["sensors.wrong_display_min_per_day"]
    # Drivers who never believe a FULL sign change who parks, not how the devices fail.
    trusting = copy.deepcopy(data)
    trusting["operations"]["sensors"]["drivers"] = {"turn_away_on_full": 0.0}
    rec_a, rec_c = simulate(scenario), simulate(validate_scenario(trusting))
    c = metrics(rec_c)
    assert c["sensors.turned_away_per_day"] == 0 < c["sensors.shown_full_per_day"]
    # who parks changes (the count need not: with these draws 271 park either way, the
    # drivers who now ignore the sign taking bays that others then find full)
    assert ((rec_a.spot >= 0) != (rec_c.spot >= 0)).any()
    for name in ("sensor_failures_per_day", "sensor_down_min_per_day", "gateway_down_min_per_day"):
        assert c[f"sensors.{name}"] == a[f"sensors.{name}"]


def test_network_drivers_turned_away_by_a_full_sign_divert() -> None:
    small = {"name": "A", "levels": [{"name": "G", "spots": {"REGULAR": 4}}]}
    big = {"name": "B", "levels": [{"name": "G", "spots": {"REGULAR": 100}}]}
    data = {
        "name": "net",
        "horizon_days": 1,
        "seed": 2,
        "lots": [
            {"name": "A", "x_km": 0.0, "facility": small},
            {"name": "B", "x_km": 2.0, "facility": big},
        ],
        "network": {"diversion": {"base_probability": 1.0, "per_minute": 0.0, "per_dollar": 0}},
        "demand": [
            {
                "name": "cars",
                "lot": "A",
                "rate_per_hour": 8,
                "dwell": {"type": "exponential", "mean": 1, "unit": "h"},
            }
        ],
        "operations": {"sensors": {"drivers": {"turn_away_on_full": 1.0}}},
    }
    rec = simulate(validate_scenario(data))
    m = metrics(rec)
    assert m["sensors.turned_away_per_day"] > 0
    # every driver the sign sent away from A drove on to B (nobody is turned away at B)
    assert (rec.outcome != TURNED_AWAY).all()
    moved = rec.tries > 0
    assert moved.any() and (rec.lot_of[moved] == 1).all()
    per_lot = [m[f"sensors.turned_away_with_space_per_day.lot[{x}]"] for x in "AB"]
    assert sum(per_lot) == pytest.approx(m["sensors.turned_away_with_space_per_day"])
    assert "sensors.wrong_display_min_per_day.level[A/G]" in m
    assert m["sensors.wrong_display_min_per_day.lot[B]"] == 0.0  # B is never full


runner = CliRunner()


def test_cli_run_writes_the_sensor_figures_to_summary_json(tmp_path: Path) -> None:
    data = busy_lot(detection="both", gateway_outages=OUTAGES, counter_miss_probability=0.02)
    path = tmp_path / "sensors.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    args = ["run", str(path), "--replications", "2", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    figures = json.loads((out / "summary.json").read_text())["metrics"]
    for name in (
        "wrong_display_min_per_day",
        "wrong_display_min_per_day.level[P2]",
        "phantom_full_spot_min_per_day",
        "phantom_free_spot_min_per_day",
        "extra_search_s_per_driver",
        "turned_away_with_space_per_day",
    ):
        entry = figures[f"sensors.{name}"]
        assert len(entry["values"]) == 2
        assert entry["ci95"][0] <= entry["mean"] <= entry["ci95"][1]
    assert figures["sensors.wrong_display_min_per_day"]["mean"] > 0
    # a bad setting is the user's error: one readable line, exit 2
    data["operations"]["sensors"]["drivers"] = {"turn_away_on_full": 1.5}
    path.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "turn_away_on_full" in result.output
    assert "Traceback" not in result.output
