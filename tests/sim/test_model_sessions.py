"""The model hands each closed session back to its lot for reuse; records must not notice.

A reused session object is another car's from then on, so anything the model still read from it
after handing it back (an amount, a spot) would silently belong to the wrong car. Scenarios with
waiting drivers matter most: a departure there allocates at once for the first car waiting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.core.lot import Lot
from twin.results import metrics
from twin.scenario.loader import load_scenario, validate_scenario
from twin.scenario.model import Scenario
from twin.sim.model import simulate

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


#: A small, hourly-priced lot under heavy demand: it is full most of the day, so most
#: departures hand their spot straight to a driver who has been waiting for one.
BUSY = {
    "name": "busy",
    "horizon_days": 3,
    "seed": 11,
    "facility": {"levels": [{"name": "G", "spots": {"COMPACT": 4, "REGULAR": 8, "LARGE": 2}}]},
    "demand": [
        {
            "name": "cars",
            "rate_per_hour": 20,
            "dwell": {"type": "lognormal", "mean": 1, "sd": 1, "unit": "h"},
        }
    ],
    "behaviour": {
        "when_full": "wait",
        "patience": {"type": "exponential", "mean": 30, "unit": "min"},
    },
    "tariff": {"name": "hourly", "period_minutes": 30, "per_period": 1.5},
}


def scenario_named(name: str) -> Scenario:
    if name == "busy":
        return validate_scenario(BUSY)
    return load_scenario(SCENARIOS / f"{name}.yaml", {"horizon_days": 3})


@pytest.mark.parametrize("name", ["busy", "surface_lot", "downtown_garage", "city_network"])
def test_records_do_not_depend_on_session_reuse(name: str, monkeypatch) -> None:
    sc = scenario_named(name)
    reused = simulate(sc)
    handed_back: list[int] = []
    monkeypatch.setattr(Lot, "recycle", lambda self, session: handed_back.append(1))
    fresh = simulate(sc)
    assert len(handed_back) > 100  # the model did hand sessions back in this scenario
    for name, value in vars(reused).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, getattr(fresh, name), err_msg=name)
    pd.testing.assert_series_equal(pd.Series(metrics(reused)), pd.Series(metrics(fresh)))
