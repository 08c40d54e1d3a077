"""The calendar and the frames must agree on what time it is, to the fraction of a second."""

from __future__ import annotations

import pickle
from datetime import datetime

import numpy as np

from twin.core.clock import Calendar
from twin.results import vehicles_frame
from twin.scenario.loader import validate_scenario
from twin.sim.demand import hourly_rates
from twin.sim.model import simulate

#: Half a second before 08:00 on a Monday.
EPOCH = datetime(2026, 1, 5, 7, 59, 59, 500_000)


def test_hour_counts_fractional_seconds_of_the_epoch() -> None:
    cal = Calendar(epoch=EPOCH)
    for t in (0.0, 0.25, 0.49, 0.5, 0.75, 1.0, 3599.4, 3599.5):
        assert cal.hour(t) == cal.to_datetime(t).hour, t
        assert (
            cal.seconds_of_day(t)
            == (
                cal.to_datetime(t)
                - cal.to_datetime(t).replace(hour=0, minute=0, second=0, microsecond=0)
            ).total_seconds()
        ), t
    assert cal.hour(0.25) == 7 and cal.hour(0.5) == 8


def test_calendar_survives_pickling() -> None:
    """Runs go to worker processes and Dask: the computed offset must travel with it."""
    cal = Calendar(epoch=EPOCH)
    back = pickle.loads(pickle.dumps(cal))
    assert back == cal and back.hour(0.5) == 8


def test_drivers_hour_agrees_with_arrival_time() -> None:
    """A lot opening half a second before 08:00: the demand slots and the vehicles frame's
    ``arrival_time`` put every driver in the same hour of day."""
    sc = validate_scenario(
        {
            "name": "fraction",
            "start": EPOCH.isoformat(),
            "horizon_days": 0.25,
            "facility": {"levels": [{"name": "G", "spots": {"REGULAR": 50}}]},
            "demand": [
                {
                    "name": "d",
                    "rate_per_hour": 400,
                    "dwell": {"type": "constant", "value": 10, "unit": "min"},
                }
            ],
        }
    )
    rec = simulate(sc)
    cal = Calendar(epoch=sc.start)
    frame = vehicles_frame(rec)
    hours = np.array([cal.hour(t) for t in rec.drivers.arrival])
    np.testing.assert_array_equal(hours, frame["arrival_time"].dt.hour.to_numpy())
    # demand slots start on the wall-clock hour: the first ends at 08:00, half a second in
    edges, _ = hourly_rates(sc.demand[0], cal, sc.horizon_s)
    assert edges[1] == 0.5 and edges[2] == 3600.5
