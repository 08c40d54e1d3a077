"""An event product sold at chosen entry lanes: only drivers served at those lanes buy it.

A small trace makes the lane of every car known in advance: three entry lanes with a fixed
60-second service and cars 10 minutes apart, so each car finds every lane free and takes the one
free longest (the lowest number on a tie): lanes 1, 2, 3, 1, 2, 3, ... in arrival order. A burst
of three cars at the same second then takes lanes 1, 2 and 3 in trace order after a pause. Every
car stays 2 h: a normal ticket costs 4 half hours at $1.50 = $6.00, the product $10.00.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from twin.scenario.loader import ScenarioError, validate_scenario
from twin.sim.model import PARKED, simulate

EVENT_START_S = 17 * 3600.0  # the event window: Mon 17:00-22:00
N_SPACED = 12


def lane_trace(path: Path) -> list[int]:
    """Write the trace; return each car's lane in arrival order (known from the rules)."""
    spaced = [EVENT_START_S + 600.0 * j for j in range(N_SPACED)]
    burst = [EVENT_START_S + 3 * 3600.0] * 3  # after a pause: all lanes idle, 1 longest
    before = [EVENT_START_S - 1800.0]  # before the sale opens: a ticket whatever the lane
    pd.DataFrame({"ts": before + spaced + burst, "stay_min": [120.0] * (1 + N_SPACED + 3)}).to_csv(
        path, index=False
    )
    # the car before the event takes lane 1; the spaced cars continue the round from lane 2
    lanes = [1] + [(j + 1) % 3 + 1 for j in range(N_SPACED)]
    # the burst: lanes 1, 2, 3 were last used ... the one free longest first
    last_used = {lane: t for t, lane in zip([before[0], *spaced], lanes, strict=True)}
    burst_lanes = sorted(last_used, key=lambda lane: (last_used[lane], lane))
    return lanes + burst_lanes


def scenario(path: Path, event: dict, entry_count: int = 3) -> dict:
    return {
        "name": "event-lanes",
        "start": "2026-01-05T00:00:00",
        "horizon_days": 1,
        "facility": {"levels": [{"name": "G", "spots": {"REGULAR": 50}}]},
        "lanes": {
            "entry": {
                "count": entry_count,
                "service": {"type": "constant", "value": 60, "unit": "s"},
            }
        },
        "demand": [
            {
                "name": "gate",
                "trace": {
                    "path": str(path),
                    "time_column": "ts",
                    "time_unit": "s",
                    "dwell_column": "stay_min",
                    "dwell_unit": "min",
                },
            }
        ],
        "tariff": {
            "name": "event night",
            "period_minutes": 30,
            "per_period": 1.50,
            "events": [
                {
                    "name": "arena night",
                    "start": "2026-01-05T17:00:00",
                    "end": "2026-01-05T22:00:00",
                    "flat": 10.00,
                    "prepaid": True,
                    **event,
                }
            ],
        },
    }


def paid_by_arrival(path: Path, event: dict) -> tuple[np.ndarray, np.ndarray]:
    rec = simulate(validate_scenario(scenario(path, event)))
    order = np.argsort(rec.drivers.arrival, kind="stable")
    assert (rec.outcome[order] == PARKED).all()
    return rec.amount_cents[order], rec.entry_lane_start_t[order]


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    path = tmp_path_factory.mktemp("lanes") / "gate.csv"
    return path, lane_trace(path)


@pytest.mark.parametrize("sold_at", [[1], [2, 3], [3]])
def test_the_product_is_sold_only_at_the_chosen_lanes(trace, sold_at):
    path, lanes = trace
    paid, _ = paid_by_arrival(path, {"lanes": sold_at})
    expected = [1000.0 if k > 0 and lane in sold_at else 600.0 for k, lane in enumerate(lanes)]
    assert paid.tolist() == expected


def test_without_lanes_every_lane_sells_it_and_barrier_times_are_the_same(trace):
    path, lanes = trace
    everywhere, start_all = paid_by_arrival(path, {})
    assert everywhere.tolist() == [600.0] + [1000.0] * (len(lanes) - 1)
    _, start_lanes = paid_by_arrival(path, {"lanes": [2]})
    # identities on the lanes change who buys, never when a car is served
    assert np.array_equal(start_all, start_lanes)


def test_share_applies_among_the_drivers_at_those_lanes(trace):
    path, lanes = trace
    none_buy, _ = paid_by_arrival(path, {"lanes": [1, 2, 3], "share": 0.0})
    assert none_buy.tolist() == [600.0] * len(lanes)


@pytest.mark.parametrize(
    ("event", "count", "message"),
    [
        ({"lanes": [4]}, 3, "lanes [4] do not exist; the lot has 3 entry lane(s)"),
        ({"lanes": [0]}, 3, "lane numbers from 1"),
        ({"lanes": [1, 1]}, 3, "distinct entry lane numbers"),
        ({"lanes": [1], "prepaid": False}, 3, "needs prepaid: true"),
    ],
)
def test_bad_lanes_are_one_line_errors(trace, event, count, message):
    path, _ = trace
    with pytest.raises(ScenarioError) as err:
        validate_scenario(scenario(path, event, count))
    text = str(err.value)
    assert message in text and "\n" not in text.strip()


def test_lanes_need_entry_barriers(trace):
    path, _ = trace
    data = scenario(path, {"lanes": [1]})
    del data["lanes"]
    with pytest.raises(ScenarioError, match=r"has 0 entry lane\(s\)"):
        validate_scenario(data)
