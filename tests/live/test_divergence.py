"""Divergence: actual against the model's prediction, alerts, and their scoring.

A day and a half of the downtown garage is emitted with a demand surge and a payment outage;
the mirror with the divergence detectors must catch both within the issue's targets, and the
same feed without faults must raise no alert. The prediction is a few replications of the
same scenario with other seeds (the model does not know the feed's randomness).
"""

from __future__ import annotations

import pytest

from parktwin.adapters.events import parse_json
from twin import api
from twin.live.divergence import Divergence, DivergenceConfig, Prediction, score
from twin.live.emit import emit, parse_faults
from twin.live.mirror import Alert, Mirror

HOUR = 3600.0


@pytest.fixture(scope="module")
def scenario():
    return api.load("scenarios/downtown_garage.yaml")


@pytest.fixture(scope="module")
def prediction(scenario):
    return Prediction.from_scenario(scenario, replications=6, seed=910_000)


def mirrored(scenario, prediction, lines):
    config = DivergenceConfig(settle_s=scenario.warmup_hours * HOUR)
    mirror = Mirror(scenario, divergence=Divergence(prediction, config))
    return mirror.consume(parse_json(x) for x in lines)


def test_prediction_bins_the_models_week(scenario, prediction):
    assert prediction.entries_mean.shape == (672,)
    assert prediction.level_names == ["G", "P1", "P2", "P3", "P4"]
    # weekday mornings bring far more cars than nights
    monday_9 = prediction.bin(12 * HOUR + 9 * HOUR)
    monday_3 = prediction.bin(12 * HOUR + 3 * HOUR)
    assert prediction.entries_mean[monday_9] > 10 * max(prediction.entries_mean[monday_3], 0.1)
    assert (prediction.occ_mean <= max(prediction.capacity)).all()


def test_surge_and_payment_outage_are_caught_and_a_clean_feed_is_quiet(scenario, prediction):
    clean = emit(scenario, days=1.5)
    quiet = mirrored(scenario, prediction, clean.lines)
    kinds = [a.kind for a in quiet.alerts()]
    # No sensor, counter, payment or revenue alert on a fault-free feed. The arrivals CUSUMs
    # are calibrated to 0.4 false alarms a day together (0.6 expected in 1.5 days: 2 or fewer
    # with probability 0.98; benchmarks/bench_divergence.py measures whole weeks); one
    # occupancy alert may come from the emitted lot's empty start (a top level under the
    # model's band on the first night).
    assert set(kinds) <= {"occupancy", "arrival_surge", "arrival_drop"}, quiet.alerts()
    assert sum(k.startswith("arrival") for k in kinds) <= 2
    assert kinds.count("occupancy") <= 1
    # Monday 09:00-12:00 (21-24 h after the Sunday-noon start): +50% arrivals;
    # Monday 14:00-15:00: the pay stations offline
    faults = parse_faults(
        [
            {"kind": "demand_surge", "percent": 50, "start": 21, "end": 24},
            {"kind": "payment_outage", "mode": "offline", "start": 26, "end": 27},
        ],
        scenario.start,
    )
    faulty = emit(scenario, days=1.5, faults=faults)
    mirror = mirrored(scenario, prediction, faulty.lines)
    result = score(mirror.alerts(), faulty.ground_truth(), days=1.5)
    rows = {r["fault"]: r for r in result.rows}
    assert rows["demand_surge"]["detected"]
    # within the surge: the 45 min is measured on weeks by the benchmark, with a
    # prediction of 20 replications and thresholds calibrated on 60; 6 replications give a
    # coarser calibration (a higher threshold) and this Monday morning runs under the
    # model's mean, so the same +50% stands out less
    assert rows["demand_surge"]["delay_s"] <= 3 * HOUR
    surge = next(a for a in mirror.alerts() if a.kind == "arrival_surge")
    assert "arrivals at the entry" in surge.message  # the camera's plate reads: demand
    assert rows["payment_outage"]["detected"]
    assert rows["payment_outage"]["delay_s"] <= 10 * 60
    # the outage shows in the money too: paid falls short of what the core tariff charged,
    # and the revenue of the last hour leaves the model's band before the outage ends
    s = mirror.summary()
    assert s["payments"]["offline"] > 0
    assert s["paid"] < s["priced"]
    assert rows["payment_outage"]["by_kind"]["revenue"] < HOUR
    low = [a for a in mirror.alerts() if a.kind == "revenue"]
    assert [a.subject for a in low] == ["below"]


def test_a_feed_without_a_camera_is_judged_by_its_gate_entries(scenario, prediction):
    faults = parse_faults(
        [{"kind": "demand_surge", "percent": 100, "start": 21, "end": 23}], scenario.start
    )
    faulty = emit(scenario, days=1.2, faults=faults)
    no_camera = [x for x in faulty.lines if '"plate_read"' not in x]
    mirror = mirrored(scenario, prediction, no_camera)
    surges = [a for a in mirror.alerts() if a.kind == "arrival_surge"]
    assert surges and "gate entries" in surges[0].message
    assert 21 * HOUR <= surges[0].raised_t <= 23 * HOUR


def test_thresholds_are_calibrated_to_the_budgets(prediction):
    cfg = DivergenceConfig()
    h_up, _, rate_up, rate_down = prediction.arrival_thresholds(cfg, 60.0, "arrivals")
    assert rate_up <= cfg.surge_per_day
    assert rate_down <= cfg.drop_per_day
    # a tighter budget needs a higher threshold
    strict = DivergenceConfig(surge_per_day=cfg.surge_per_day / 3)
    assert prediction.arrival_thresholds(strict, 60.0, "arrivals")[0] > h_up
    band, rate = prediction.revenue_band(cfg, 60.0)
    assert rate <= cfg.revenue_per_day
    assert 2.0 < band < 8.0
    # fixed thresholds override the calibration
    fixed = DivergenceConfig(cusum_h=9.0, revenue_band=5.0)
    assert prediction.arrival_thresholds(fixed, 60.0, "arrivals")[0] == 9.0
    assert prediction.revenue_band(fixed, 60.0)[0] == 5.0


def test_score_matches_alerts_to_faults():
    truth = {
        "epoch": "2026-01-04T12:00:00+00:00",
        "faults": [
            {
                "kind": "sensor_dead",
                "start": "2026-01-04T13:00:00+00:00",
                "end": None,
                "params": {"spot": "P1-R0001"},
            },
            {
                "kind": "payment_outage",
                "start": "2026-01-04T15:00:00+00:00",
                "end": "2026-01-04T16:00:00+00:00",
                "params": {"mode": "offline"},
            },
        ],
    }
    alerts = [
        Alert("dead_sensor", "P1-R0002", 3600, 3700, "another bay"),  # wrong bay: false
        Alert("dead_sensor", "P1-R0001", 3600, 3600 + 1200, "the bay"),
        Alert("payment_outage", "payments", 3 * 3600, 3 * 3600 + 180, "caught"),
        Alert("payment_outage", "payments", 9 * 3600, 9 * 3600 + 60, "much later: false"),
    ]
    result = score(alerts, truth, days=1.0)
    assert [r["delay_s"] for r in result.rows] == [1200, 180]
    assert [a.message for a in result.false_alarms] == ["another bay", "much later: false"]
    assert result.false_per_day == 2.0


def test_a_feed_without_pay_stations_or_gates_raises_no_revenue_or_arrival_alert(
    scenario, prediction
):
    feed = emit(scenario, days=1.2)
    kinds = ("payment", "gate_entry", "gate_exit", "plate_read")
    sensors_only = [x for x in feed.lines if not any(f'"{k}"' in x for k in kinds)]
    mirror = mirrored(scenario, prediction, sensors_only)
    assert not [a for a in mirror.alerts() if a.kind == "revenue" or a.kind.startswith("arrival")]
    # the same feed with its payments but none of them paid (all offline) is an outage
    offline = [
        x.replace('"status": "ok"', '"status": "offline"').replace(
            '"status":"ok"', '"status":"offline"'
        )
        for x in feed.lines
    ]
    assert offline != feed.lines
    mirror = mirrored(scenario, prediction, offline)
    assert any(a.kind == "revenue" and a.subject == "below" for a in mirror.alerts())
