"""Demand-responsive pricing and price elasticity: the rules, and their effect in the model."""

from __future__ import annotations

import numpy as np
import pytest

from twin.core.adaptive import SFparkRule, TargetOccupancyRule, elasticity_factor
from twin.core.pricing import RateTable, Tariff, TimeBand
from twin.results import metrics, rates_frame
from twin.scenario.loader import ScenarioError, validate_scenario
from twin.sim.model import DETERRED, simulate

WEEKDAYS = frozenset(range(5))


def test_sfpark_rule_steps_once_within_bounds() -> None:
    rule = SFparkRule(raise_at=0.8, lower_below=0.6, step_cents=25, min_cents=50, max_cents=300)
    rates = {0: 200, 1: 200, 2: 200, 3: 300, 4: 50, 5: 200}
    occ = {0: 0.85, 1: 0.70, 2: 0.30, 3: 0.95, 4: 0.10}  # band 5 had no reading
    assert rule.adjust(rates, occ) == {0: 225, 1: 200, 2: 175, 3: 300, 4: 50, 5: 200}
    # exactly at the thresholds: 80% raises, 60% holds
    assert rule.adjust({0: 200, 1: 200}, {0: 0.80, 1: 0.60}) == {0: 225, 1: 200}


def test_target_rule_is_proportional_bounded_and_rounded() -> None:
    rule = TargetOccupancyRule(target=0.85, gain_cents=500, max_step_cents=50, resolution_cents=5)
    out = rule.adjust({0: 200, 1: 200, 2: 200, 3: 200}, {0: 0.95, 1: 0.85, 2: 0.0, 3: 0.87})
    assert out == {0: 250, 1: 200, 2: 150, 3: 210}  # +50 capped; 0; -50 capped; +10


def test_elasticity_factor() -> None:
    assert elasticity_factor(200, 200, -0.4, 2.0) == pytest.approx(1.0)
    assert elasticity_factor(400, 200, -0.4, 2.0) == pytest.approx(2**-0.4)
    assert elasticity_factor(100, 200, -0.4, 2.0) == pytest.approx(2**0.4)
    assert elasticity_factor(0, 200, -0.4, 2.0) == 2.0  # free: the cap
    assert elasticity_factor(1, 200, -0.4, 1.5) == 1.5


def test_tariff_rate_lookup_and_replacement() -> None:
    tariff = Tariff(
        "t",
        RateTable(period_minutes=30, period_cents=100),
        bands=(
            TimeBand(
                WEEKDAYS, 7 * 60, 10 * 60, RateTable(period_minutes=60, period_cents=300), "am"
            ),
        ),
    )
    assert tariff.table_names == ("default", "am")
    monday_8 = 8 * 3600.0  # the default calendar starts on a Monday
    assert tariff.table_index_at(monday_8) == 1 and tariff.hourly_rate_at(monday_8) == 300
    assert tariff.table_index_at(11 * 3600.0) == 0 and tariff.hourly_rate_at(11 * 3600.0) == 200
    saturday_8 = 5 * 86400 + monday_8
    assert tariff.table_index_at(saturday_8) == 0
    cheaper = tariff.with_hourly_rates({0: 150, 1: 425})
    assert cheaper.default.period_cents == 75 and cheaper.default.period_minutes == 30
    assert cheaper.bands[0].table.period_cents == 425
    assert cheaper.price(monday_8, monday_8 + 3600) == 425
    assert tariff.price(monday_8, monday_8 + 3600) == 300  # the original is unchanged


def _elastic(rate: float, policy: dict | None = None, days: float = 20) -> dict:
    data = {
        "name": "elastic",
        "horizon_days": days,
        "seed": 5,
        "facility": {"levels": [{"name": "L", "spots": {"REGULAR": 400}}]},
        "demand": [
            {
                "name": "drivers",
                "rate_per_hour": 60,
                "dwell": {"type": "exponential", "mean": 1, "unit": "h"},
                "elasticity": {"value": -0.4, "reference_rate": 2.0},
            }
        ],
        "tariff": {"name": "t", "period_minutes": 60, "per_period": rate},
    }
    if policy:
        data["pricing_policy"] = policy
    return data


def test_elastic_demand_follows_the_price() -> None:
    """Doubling the price keeps 2^-0.4 = 75.8% of demand; halving it brings 2^0.4 = 132%."""
    base = simulate(validate_scenario(_elastic(2.0)))
    dear = simulate(validate_scenario(_elastic(4.0)))
    cheap = simulate(validate_scenario(_elastic(1.0)))
    came = {k: r.outcome != DETERRED for k, r in (("base", base), ("dear", dear), ("cheap", cheap))}
    n_base = came["base"].sum()
    assert n_base == pytest.approx(60 * 24 * 20, rel=0.03)  # at the reference price: as observed
    assert came["dear"].sum() / n_base == pytest.approx(2**-0.4, rel=0.03)
    assert came["cheap"].sum() / n_base == pytest.approx(2**0.4, rel=0.03)
    # common random numbers: the same candidates, and whoever comes at $4 also comes at $2
    np.testing.assert_array_equal(base.drivers.arrival, dear.drivers.arrival)
    assert not (came["dear"] & ~came["base"]).any()
    assert metrics(dear)["arrivals"] < metrics(base)["arrivals"]
    assert metrics(dear)["deterred_per_day"] > metrics(base)["deterred_per_day"]


def test_sfpark_moves_rates_toward_the_occupancy_band() -> None:
    # 60/h × 1 h = 60 cars on 50 spots: overfull at $2 → the rule must raise the rate weekly
    data = _elastic(2.0, {"rule": "sfpark", "adjust_every_days": 7, "max_rate": 5.0}, days=84)
    data["facility"]["levels"][0]["spots"]["REGULAR"] = 50
    rec = simulate(validate_scenario(data))
    rates = rates_frame(rec)
    steps = rates.sort_values("time_s").groupby("table")["rate"].diff().dropna()
    assert set(np.round(steps, 2)) <= {-0.25, 0.0, 0.25}  # at most one step per period
    seen = rates[rates["table"] == "default"].dropna().sort_values("time_s")
    assert seen["rate"].iloc[-1] > 2.0  # raised from $2 ...
    assert seen["occupancy_seen"].iloc[0] > 0.9  # ... because the lot was overfull ...
    # ... and demand fell back toward the band: at the $5 cap, (5/2)^-0.4 × 60 = 42 cars
    assert seen["occupancy_seen"].iloc[-1] < seen["occupancy_seen"].iloc[0] - 0.05
    assert np.corrcoef(seen["rate"], seen["occupancy_seen"])[0, 1] < -0.8
    assert rates["rate"].between(0.25, 5.0).all()


def test_pricing_policy_needs_a_tariff() -> None:
    data = _elastic(2.0, {"rule": "sfpark"})
    del data["tariff"]
    with pytest.raises(ScenarioError) as err:
        validate_scenario(data)
    assert any("needs a tariff" in p for p in err.value.problems)
