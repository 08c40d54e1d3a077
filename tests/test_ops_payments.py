"""Payments wired into the model: money identities, latency at the exit, outages, blocklist."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from twin.results import metrics, vehicles_frame
from twin.scenario.loader import validate_scenario
from twin.sim.model import ParkingModel, simulate
from twin.sim.ops_payments import PaymentsComponent

H = 3600.0
EXIT_SERVICE_S = 10.0


def scenario(payments: dict, *, days: float = 1.0, warmup_h: float = 0.0, rate: float = 30) -> dict:
    """One lot with an exit barrier (so payment time shows in exit waits) and a $2/h tariff."""
    return {
        "name": "pay",
        "horizon_days": days,
        "warmup_hours": warmup_h,
        "seed": 11,
        "facility": {"name": "A", "levels": [{"name": "G", "spots": {"REGULAR": 80}}]},
        "lanes": {
            "exit": {
                "count": 1,
                "service": {"type": "constant", "value": EXIT_SERVICE_S, "unit": "s"},
            }
        },
        "demand": [
            {
                "name": "cars",
                "rate_per_hour": rate,
                "dwell": {"type": "exponential", "mean": 1.5, "unit": "h"},
            }
        ],
        "tariff": {"name": "t", "period_minutes": 60, "per_period": 2.0, "daily_max": 20},
        "operations": {"payments": payments},
    }


def run(data: dict) -> tuple[dict[str, float], object, PaymentsComponent]:
    model = ParkingModel(validate_scenario(data))
    rec = model.run()
    (component,) = [c for c in model.components if isinstance(c, PaymentsComponent)]
    return metrics(rec), rec, component


def pay(m: dict[str, float], key: str) -> float:
    return m[f"payments.{key}"]


EVERYTHING = {
    "decline_probability": 0.08,
    "partial_probability": 0.05,
    "card_limit": {"type": "uniform", "low": 0, "high": 3},
    "lost_response_probability": 0.03,
    "latency": {"type": "lognormal", "mean": 3, "sd": 2, "unit": "s"},
    "outages": {
        "between": {"type": "exponential", "mean": 5, "unit": "h"},
        "duration": {"type": "exponential", "mean": 40, "unit": "min"},
    },
    "lost_ticket_probability": 0.05,
    "plate_read_probability": 0.5,
    "plate_pool": 15,
    "write_off_days": 0.5,
}


def test_every_bill_balances_and_every_car_leaves_after_its_payment_time() -> None:
    m, rec, comp = run(scenario(EVERYTHING, days=2, warmup_h=3))
    bills = rec.component_frames["payments_bills"]
    # something of every kind happened, so the identities below are not vacuous
    for key in ("declines", "offline_payments", "partial_payments", "lost_tickets"):
        assert pay(m, key) > 0, key
    assert pay(m, "revenue_written_off") > 0 and pay(m, "revenue_invoiced") > 0
    # per bill and in total: expected = collected + pending offline + invoiced + written off
    parts = ["collected_cents", "pending_cents", "invoiced_cents", "written_off_cents"]
    np.testing.assert_array_equal(bills["expected_cents"], bills[parts].sum(axis=1))
    money = ["collected", "pending_offline", "invoiced", "written_off"]
    assert pay(m, "revenue_expected") == pytest.approx(sum(pay(m, f"revenue_{k}") for k in money))
    # the ledger's captures are exactly what the processor took from cards
    assert bills["captured_cents"].sum() == comp.policy.processor.captured_cents()
    # billed revenue is the model's revenue (lost tickets re-priced the sessions themselves)
    assert pay(m, "revenue_expected") == pytest.approx(m["revenue"])
    after = rec.leave_t >= 3 * H
    assert pay(m, "exits") == np.count_nonzero(after & np.isfinite(rec.leave_t))
    # never trapped: every car that left its spot passed the barrier, after service + payment
    left = bills["driver"].to_numpy()
    assert np.isfinite(rec.exit_t[left]).all()
    np.testing.assert_allclose(
        rec.exit_t[left] - rec.exit_start_t[left], EXIT_SERVICE_S + bills["latency_s"]
    )
    # the model's own invariant: no spot is held by two cars at once
    v = vehicles_frame(rec).dropna(subset=["entry_s"]).sort_values(["spot", "entry_s"])
    same = v["spot"].to_numpy()[1:] == v["spot"].to_numpy()[:-1]
    gaps = v["entry_s"].to_numpy()[1:] - v["leave_s"].to_numpy()[:-1]
    assert (gaps[same] >= 0).all()


def test_same_seed_same_figures_other_replication_other_figures() -> None:
    data = scenario(EVERYTHING)
    a, b = run(data)[0], run(copy.deepcopy(data))[0]
    assert a == b
    other = metrics(simulate(validate_scenario(data), replication=1))
    assert other["payments.revenue_collected"] != a["payments.revenue_collected"]


def test_without_failures_everything_is_collected_in_two_round_trips() -> None:
    m, _, _ = run(scenario({"latency": {"type": "constant", "value": 3, "unit": "s"}}))
    assert pay(m, "exits") > 500
    assert pay(m, "revenue_collected") == pay(m, "revenue_expected") == m["revenue"] > 0
    assert pay(m, "collected_pct") == 100.0
    for key in ("revenue_invoiced", "revenue_pending_offline", "revenue_written_off", "declines"):
        assert pay(m, key) == 0.0
    # authorization + capture, each one configured round trip
    assert pay(m, "latency_s.mean") == pytest.approx(6.0)
    assert pay(m, "latency_s.p95") == pytest.approx(6.0)


OUTAGES = {  # down 06:00-08:00, 14:00-16:00, 22:00-24:00, 30:00-32:00, ...
    "between": {"type": "constant", "value": 6, "unit": "h"},
    "duration": {"type": "constant", "value": 2, "unit": "h"},
}


def in_outage(t: np.ndarray) -> np.ndarray:
    return (t % (8 * H)) >= 6 * H


def test_an_outage_sends_exits_offline_and_lengthens_exit_waits() -> None:
    calm = run(scenario({}, days=1.5))[0]
    m, rec, _ = run(scenario({"outages": OUTAGES}, days=1.5))
    bills = rec.component_frames["payments_bills"]
    offline = in_outage(bills["exit_s"].to_numpy())
    assert (bills["outcome"].astype(str).to_numpy() == "offline").tolist() == offline.tolist()
    assert pay(m, "offline_payments") == offline.sum() > 50 and pay(calm, "offline_payments") == 0
    # three attempts at the 15 s timeout, 1 s and 2 s back-off; 2 s + 2 s when the network is up
    np.testing.assert_allclose(bills["latency_s"], np.where(offline, 48.0, 4.0))
    assert pay(m, "latency_s.p95") == 48.0
    # every outage ended before the horizon: the batch was forwarded and approved in full
    assert pay(m, "revenue_pending_offline") == 0.0
    assert pay(m, "revenue_collected") == pay(m, "revenue_expected")
    assert all(p.startswith("pay-") for p in bills.loc[offline, "payment_ids"])
    # the same drivers queue longer at the exit barrier while payments time out
    assert m["exit_wait_s.mean"] > 3 * calm["exit_wait_s.mean"]
    assert m["exit_wait_s.p95"] > calm["exit_wait_s.p95"]
    assert m["revenue"] == calm["revenue"]  # payment time never changes what is charged

    # cut the run inside an outage (30:00-31:00): those exits are still in the batch
    m31, rec31, _ = run(scenario({"outages": OUTAGES}, days=31 / 24))
    bills31 = rec31.component_frames["payments_bills"]
    last = bills31["exit_s"] >= 30 * H
    assert last.sum() > 0
    assert pay(m31, "revenue_pending_offline") * 100 == bills31.loc[last, "expected_cents"].sum()
    assert (bills31.loc[last, "pending_cents"] == bills31.loc[last, "expected_cents"]).all()


def test_repeat_plates_that_keep_declining_are_blocklisted() -> None:
    always = {"decline_probability": 1.0, "latency": {"type": "constant", "value": 1, "unit": "s"}}
    m, rec, comp = run(scenario({**always, "plate_pool": 4}))
    exits = pay(m, "exits")
    assert pay(m, "declines") == 3 * exits  # three cards tried, no back-off after a decline
    assert pay(m, "declined_exits") == exits
    assert pay(m, "revenue_collected") == 0 and pay(m, "revenue_invoiced") == m["revenue"]
    np.testing.assert_allclose(rec.component_frames["payments_bills"]["latency_s"], 3.0)
    # threshold 3 within 30 days: every regular is blocklisted at its 3rd exit, and each later
    # exit comes from a blocklisted plate
    assert pay(m, "blocklisted_plates") == 4
    assert comp.policy.blocklist == {f"cars#{k}" for k in range(4)}
    assert pay(m, "blocklisted_exits") == exits - 3 * 4
    # without repeat customers a plate exits once: one strike each, no blocklist
    unique = run(scenario(always))[0]
    assert pay(unique, "blocklisted_plates") == 0 and pay(unique, "declines") == 3 * exits


def test_invoices_older_than_the_write_off_horizon_are_written_off_at_the_end() -> None:
    m, rec, _ = run(scenario({"decline_probability": 1.0, "write_off_days": 0.25}))
    bills = rec.component_frames["payments_bills"]
    old = bills["exit_s"] <= 24 * H - 0.25 * 86_400
    assert 0 < old.sum() < len(bills)
    assert pay(m, "revenue_written_off") * 100 == bills.loc[old, "expected_cents"].sum()
    assert pay(m, "revenue_invoiced") * 100 == bills.loc[~old, "expected_cents"].sum()


def test_lost_tickets_pay_the_daily_maximum_the_fee_or_the_read_stay() -> None:
    plain = simulate(validate_scenario(scenario({})))
    priced = np.isfinite(plain.amount_cents)
    assert (plain.amount_cents[priced] < 2000).mean() > 0.9  # most stays cost less than $20

    m, rec, _ = run(scenario({"lost_ticket_probability": 1.0}))
    assert (rec.amount_cents[priced] == 2000).all()  # the daily maximum
    assert pay(m, "lost_tickets") == pay(m, "exits") and pay(m, "lost_tickets_plate_read") == 0
    assert m["revenue"] == pay(m, "revenue_expected") == 20 * pay(m, "exits")

    fee = run(scenario({"lost_ticket_probability": 1.0, "lost_ticket_fee": 35}))[1]
    assert (fee.amount_cents[priced] == 3500).all()

    m_read, read, _ = run(scenario({"lost_ticket_probability": 1.0, "plate_read_probability": 1.0}))
    np.testing.assert_array_equal(read.amount_cents, plain.amount_cents)  # the actual stay
    assert pay(m_read, "lost_tickets_plate_read") == pay(m_read, "exits")


def test_cli_run_reports_payment_figures_in_summary_json(tmp_path) -> None:
    data = scenario({"decline_probability": 0.5, "plate_pool": 10}, rate=10)
    path = tmp_path / "pay.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(path), "--replications", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads((out / "summary.json").read_text())["metrics"]
    collected = figures["payments.revenue_collected"]
    assert len(collected["values"]) == 3 and collected["ci95"][0] <= collected["mean"]
    expected = figures["payments.revenue_expected"]["values"]
    assert expected == figures["revenue"]["values"]
    assert all(c < e for c, e in zip(collected["values"], expected, strict=True))
    assert figures["payments.declines"]["mean"] > 0

    data["operations"]["payments"]["plate_pool"] = 0
    path.write_text(yaml.safe_dump(data))
    bad = runner.invoke(app, ["run", str(path)])
    assert bad.exit_code == 2
    assert "plate_pool must be at least 1" in bad.output and "Traceback" not in bad.output


def test_a_permit_holders_free_stay_has_no_ticket_to_lose() -> None:
    data = scenario({"lost_ticket_probability": 1.0})
    data["operations"]["permits"] = {
        "monthly": {"holders": 30, "streams": ["cars"], "holder_share": 0.3}
    }
    m, rec, _ = run(data)
    holders = m["permits.monthly.exits"]
    assert holders > 50
    # permits waive the holders' stays before payments settle them: free exits, not lost tickets
    outcomes = rec.component_frames["payments_bills"]["outcome"].astype(str)
    assert (outcomes == "free").sum() == holders
    assert pay(m, "lost_tickets") == pay(m, "exits") - holders
    assert m["revenue"] == pay(m, "revenue_expected") == 20 * pay(m, "lost_tickets")
