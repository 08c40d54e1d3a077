"""A longer run extends a shorter one: the first N days hold the same drivers whatever the horizon.

Issue 9 §6: changing ``--days`` used to change every driver from the first minute, because each
purpose's generator was consumed in runs of "all drivers" (the second run of draws started at an
offset equal to the number of drivers, which grows with the horizon). These tests draw the same
scenario over 7 and 30 days (and an odd horizon that ends mid-hour) and require the drivers of
the shorter horizon to be exactly the first drivers of the longer one, attribute by attribute.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from twin import api
from twin.core.clock import DAY
from twin.scenario.loader import validate_scenario
from twin.sim.model import ParkingModel

ROOT = Path(__file__).resolve().parents[2]

#: Every per-driver array of :class:`twin.sim.demand.Drivers` (2-D ones have drivers last).
COLUMNS = (
    "arrival",
    "dwell",
    "vclass",
    "ev",
    "handicap",
    "stream",
    "wtp_cents",
    "wtp_per_hour",
    "patience",
    "entry_service",
    "exit_service",
    "lot",
    "divert_u",
    "accept_u",
)


def _drivers(scenario, days: float, replication: int = 1) -> ParkingModel:
    return ParkingModel(scenario.model_copy(update={"horizon_days": days}), replication)


def assert_prefix(scenario, short: float, long: float) -> int:
    """The drivers of ``short`` days are the first drivers of ``long`` days; returns how many."""
    a, b = _drivers(scenario, short), _drivers(scenario, long)
    da, db = a.drivers, b.drivers
    n = len(da)
    assert n > 0
    assert len(db) > n
    # the next driver of the long run arrives at or after the short horizon
    assert db.arrival[n] >= short * DAY > da.arrival[-1]
    for name in COLUMNS:
        left, right = np.asarray(getattr(da, name)), np.asarray(getattr(db, name))[..., :n]
        np.testing.assert_array_equal(left, right, err_msg=f"drivers' {name} differ")
    for left, right in zip(a.product_draws(), b.product_draws(), strict=True):
        np.testing.assert_array_equal(left, right[:n], err_msg="product draws differ")
    return n


def test_downtown_garage_first_week_is_the_same_in_a_month():
    scenario = api.load(ROOT / "scenarios/downtown_garage.yaml")
    assert assert_prefix(scenario, 7, 30) > 1000


def test_horizon_ending_mid_hour_keeps_the_drivers_before_it():
    # 2.3 days ends at 07:12 (the scenario starts at midnight): its last hour slot is partial
    scenario = api.load(ROOT / "scenarios/downtown_garage.yaml")
    assert_prefix(scenario, 2.3, 3)


def test_operations_lot_with_many_streams_bands_and_lanes():
    scenario = api.load(ROOT / "scenarios/downtown_operations.yaml")
    assert_prefix(scenario, 3, 8)


def test_network_of_lots_with_diversion_draws():
    scenario = api.load(ROOT / "scenarios/city_network.yaml")
    assert_prefix(scenario, 1, 3)


def test_trace_stream_mixed_with_a_drawn_stream(tmp_path: Path):
    rng = np.random.default_rng(5)
    minutes = np.sort(rng.uniform(0, 20 * 24 * 60, 3000))  # 20 days of recorded arrivals
    trace = tmp_path / "trace.csv"
    pd.DataFrame(
        {
            "minute": minutes.round(3),
            "stay": rng.uniform(10, 300, len(minutes)).round(1),
            "ev": np.where(rng.random(len(minutes)) < 0.5, "yes", ""),  # empty: drawn
        }
    ).to_csv(trace, index=False)
    scenario = validate_scenario(
        {
            "name": "trace-and-poisson",
            "horizon_days": 30,
            "seed": 11,
            "facility": {"levels": [{"name": "L1", "spots": {"REGULAR": 60}}]},
            "demand": [
                {
                    "name": "recorded",
                    "trace": {
                        "path": str(trace),
                        "time_column": "minute",
                        "time_unit": "min",
                        "dwell_column": "stay",
                        "dwell_unit": "min",
                        "ev_column": "ev",
                    },
                    "ev_share": 0.2,
                    "willingness_to_pay": {
                        "distribution": {"type": "uniform", "low": 2, "high": 30}
                    },
                },
                {
                    "name": "walk-ins",
                    "rate_per_hour": 4,
                    "dwell": {"type": "gamma", "mean": 90, "sd": 60, "unit": "min"},
                    "handicap_share": 0.1,
                },
            ],
            "tariff": {"name": "flat", "flat": 5},
        }
    )
    assert assert_prefix(scenario, 7, 30) > 1000


def test_recorded_vehicles_of_the_first_week_agree():
    """Through the API: the vehicles frame of a 7-day run is the first week of a 30-day run
    (who came and what they wanted, and, for those gone before day 7, what happened)."""
    scenario = api.load(ROOT / "scenarios/downtown_garage.yaml")
    short = api.run(scenario, days=7, replications=1, frames=("vehicles",)).vehicles
    long = api.run(scenario, days=30, replications=1, frames=("vehicles",)).vehicles
    first = long[long["arrival_s"] < 7 * DAY].reset_index(drop=True)
    assert len(first) == len(short) > 1000
    drivers = [
        "vehicle",
        "stream",
        "vehicle_class",
        "ev",
        "handicap",
        "arrival_s",
        "arrival_time",
        "intended_dwell_s",
    ]
    pd.testing.assert_frame_equal(short[drivers], first[drivers])
    # what happened to the cars that left before the short horizon does not depend on it
    gone = (short["exit_s"] < 7 * DAY).to_numpy()
    assert gone.sum() > 1000
    fates = ["level", "spot", "entry_s", "exit_s", "amount", "outcome"]
    pd.testing.assert_frame_equal(
        short.loc[gone, fates].reset_index(drop=True),
        first.loc[gone, fates].reset_index(drop=True),
        check_categorical=False,
    )


def test_operations_components_keep_the_first_days_too():
    """Payments (conditions, lost tickets, outages), reservations (booking requests), permits
    and sensors draw per driver or per request in a horizon-independent way as well: what
    happened to the cars that left in the first two days is the same over 3 and 8 days."""
    scenario = api.load(ROOT / "scenarios/downtown_operations.yaml")
    assert scenario.operations is not None
    short = api.run(scenario, days=3, replications=1, frames=("vehicles",))
    long = api.run(scenario, days=8, replications=1, frames=("vehicles",))
    a = short.vehicles
    b = long.vehicles[long.vehicles["arrival_s"] < 3 * DAY].reset_index(drop=True)
    gone = (a["exit_s"] < 2 * DAY).to_numpy()
    assert gone.sum() > 1000
    cols = ["arrival_s", "intended_dwell_s", "entry_s", "spot", "exit_s", "amount", "outcome"]
    pd.testing.assert_frame_equal(
        a.loc[gone, cols].reset_index(drop=True),
        b.loc[gone, cols].reset_index(drop=True),
        check_categorical=False,
    )
    bills_a, bills_b = short.extra_frames["payments_bills"], long.extra_frames["payments_bills"]
    early = ["driver", "outcome", "attempts", "latency_s", "captured_cents"]
    left_a = bills_a[bills_a["exit_s"] < 2 * DAY].sort_values("driver").reset_index(drop=True)
    left_b = bills_b[bills_b["exit_s"] < 2 * DAY].sort_values("driver").reset_index(drop=True)
    assert len(left_a) > 500
    pd.testing.assert_frame_equal(left_a[early], left_b[early], check_categorical=False)
    bookings = "reservations_bookings"
    req_a = short.extra_frames[bookings]["request_t"].to_numpy()
    req_b = long.extra_frames[bookings]["request_t"].to_numpy()
    np.testing.assert_array_equal(req_a, req_b[: len(req_a)])
