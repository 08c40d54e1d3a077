"""Payments wired into the model: money identities, latency at the exit, outages, blocklist."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from twin.results import metrics, vehicles_frame
from twin.scenario.loader import validate_scenario
from twin.sim.model import TURNED_AWAY, ParkingModel, simulate
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
    # 4 days: a refused prepayment (a blocklisted plate's declined prepay) is rare; with the
    # per-request payment draws none happens in 2 or 3 days (16 and 27 prepaid entries), 4 in 4
    m, rec, comp = run(scenario(EVERYTHING, days=4, warmup_h=3))
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
    # the processor took from cards exactly what the exits captured and the entries of
    # blocklisted plates prepaid (their quotes and the debts they paid off)
    prepay = rec.component_frames["payments_prepay"]
    assert pay(m, "prepaid_entries") > 0 and pay(m, "prepay_refused") > 0
    captured = bills["captured_cents"].sum() + prepay["captured_cents"].sum()
    assert captured == comp.policy.processor.captured_cents()
    assert prepay["debt_paid_cents"].sum() == bills["invoice_paid_cents"].sum()
    # nothing is taken from a card before its car reached the barrier (offline batches wait)
    taken = {pid: pay_.t for pid, pay_ in comp.processor.payments.items()}
    for ids, at in zip(bills["payment_ids"], bills["exit_s"], strict=True):
        assert all(taken[pid] >= at for pid in ids.split(";") if pid)
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


ALWAYS_DECLINED = {
    "decline_probability": 1.0,
    "latency": {"type": "constant", "value": 1, "unit": "s"},
}


def test_the_network_is_judged_when_the_car_reaches_the_exit_barrier(tmp_path) -> None:
    """Two cars leave their spots 10 s and 9 s before an outage starts (06:00); the barrier
    serves one car in 60 s plus its payment. The first is served at once, online (2 s + 2 s);
    the second reaches the barrier's service 55 s into the outage and goes offline (3 x 15 s
    timeouts + 1 s + 2 s back-off), although the network was up when it left its spot."""
    out_at = 6 * H
    trace = tmp_path / "two_cars.csv"
    arrival = np.array([H, H + 1.0])
    pd.DataFrame({"arrival": arrival, "dwell": out_at - 10.0 - H}).to_csv(trace, index=False)
    data = scenario({"outages": OUTAGES, "latency": {"type": "constant", "value": 2, "unit": "s"}})
    data["demand"] = [{"name": "two", "trace": {"path": str(trace), "time_unit": "s"}}]
    data["demand"][0]["trace"].update(dwell_column="dwell", dwell_unit="s")
    data["lanes"]["exit"]["service"]["value"] = 60
    m, rec, _ = run(data)
    np.testing.assert_array_equal(rec.leave_t, [out_at - 10.0, out_at - 9.0])
    np.testing.assert_array_equal(rec.exit_start_t, [out_at - 10.0, out_at - 10.0 + 64.0])
    bills = rec.component_frames["payments_bills"].set_index("driver")
    assert bills["outcome"].astype(str).tolist() == ["paid", "offline"]
    np.testing.assert_array_equal(bills["latency_s"], [4.0, 48.0])
    np.testing.assert_array_equal(rec.exit_t - rec.exit_start_t, [64.0, 108.0])
    # the bill is dated at the barrier; the batch is forwarded when the outage ends (08:00)
    np.testing.assert_array_equal(bills["exit_s"], rec.exit_start_t)
    assert pay(m, "revenue_pending_offline") == 0
    assert pay(m, "revenue_collected") == pay(m, "revenue_expected") == 2 * 10.0  # 5 h at $2

    # Outages every other minute (down [60, 120) mod 120 s), a 200 s barrier: the second car
    # leaves at 06:00:01, reaches the barrier at 06:03:24 (down) and goes offline. The outage
    # ending at 06:02:00 came before its barrier moment: its payment is forwarded at the end
    # of the next one, 06:04:00, never before the car was at the barrier.
    flicker = {"between": {"type": "constant", "value": 60, "unit": "s"}}
    flicker["duration"] = flicker["between"]
    data["operations"]["payments"]["outages"] = flicker
    data["lanes"]["exit"]["service"]["value"] = 200
    pd.DataFrame({"arrival": arrival, "dwell": out_at - H}).to_csv(trace, index=False)
    m, rec, comp = run(data)
    bills = rec.component_frames["payments_bills"].set_index("driver")
    assert bills["outcome"].astype(str).tolist() == ["paid", "offline"]
    assert bills.loc[1, "exit_s"] == out_at + 204.0
    (pid,) = bills.loc[1, "payment_ids"].split(";")
    assert comp.processor.payments[pid].t == out_at + 240.0
    assert pay(m, "revenue_collected") == pay(m, "revenue_expected")


def test_repeat_plates_that_keep_declining_are_blocklisted_and_let_in_without_prepay() -> None:
    m, rec, comp = run(scenario({**ALWAYS_DECLINED, "plate_pool": 4, "strikes": {"prepay": False}}))
    exits = pay(m, "exits")
    assert pay(m, "declines") == 3 * exits  # three cards tried, no back-off after a decline
    assert pay(m, "declined_exits") == exits
    assert pay(m, "revenue_collected") == 0 and pay(m, "revenue_invoiced") == m["revenue"]
    np.testing.assert_allclose(rec.component_frames["payments_bills"]["latency_s"], 3.0)
    # threshold 3 within 30 days: every regular is blocklisted at its 3rd exit, and each later
    # exit comes from a blocklisted plate (let in: prepay is off)
    assert pay(m, "blocklisted_plates") == 4
    assert comp.policy.blocklist == {f"cars#{k}" for k in range(4)}
    assert pay(m, "blocklisted_exits") == exits - 3 * 4
    assert pay(m, "prepay_asked") == 0 and m["turned_away_pct"] == 0
    # without repeat customers a plate exits once: one strike each, no blocklist
    unique = run(scenario(ALWAYS_DECLINED))[0]
    assert pay(unique, "blocklisted_plates") == 0
    assert pay(unique, "declines") == 3 * pay(unique, "exits")


def test_a_blocklisted_plate_must_prepay_and_a_declined_prepayment_turns_it_away() -> None:
    """Every card declines: a regular is blocklisted at the moment its 3rd car leaves, and every
    later car of that plate is asked to prepay, declined three times and turned away.

    Who is turned away is recomputed here from arrivals and stays alone (no entry barriers, 80
    spots never fill, departures come before arrivals at equal times).
    """
    m, rec, comp = run(scenario({**ALWAYS_DECLINED, "plate_pool": 4}))
    d = rec.drivers
    plate_no = np.asarray(comp._plate_no)
    refused = np.zeros(len(d), dtype=bool)
    for plate in range(4):
        leaves: list[float] = []
        for i in np.flatnonzero(plate_no == plate):  # drivers are in arrival order
            third = sorted(leaves)[2] if len(leaves) >= 3 else np.inf
            if third <= d.arrival[i]:
                refused[i] = True
            else:
                leaves.append(d.arrival[i] + d.dwell[i])
    assert 100 < refused.sum() < len(d) - 12
    np.testing.assert_array_equal(rec.outcome == TURNED_AWAY, refused)
    prepay = rec.component_frames["payments_prepay"]
    np.testing.assert_array_equal(np.sort(prepay["driver"]), np.flatnonzero(refused))
    assert (prepay["outcome"] == "refused").all()
    assert (prepay["attempts"] == 3).all() and (prepay["declines"] == 3).all()
    assert pay(m, "prepay_asked") == pay(m, "prepay_refused") == refused.sum()
    assert pay(m, "prepaid_entries") == 0 and pay(m, "prepaid_revenue") == 0
    assert m["turned_away_pct"] == pytest.approx(100 * refused.mean())
    # the debt asked with the quote is everything the plate was invoiced for before the entry
    bills = rec.component_frames["payments_bills"]
    for row in prepay.itertuples():
        owed = bills[(bills["plate"] == row.plate) & (bills["leave_s"] <= row.arrival_s)]
        assert row.debt_cents == owed["invoiced_cents"].sum() > 0
        lot = rec.lots[0]
        assert row.quote_cents == lot.tariff.quote(
            row.arrival_s, row.arrival_s + d.dwell[row.driver]
        )
    # the processor saw the declined holds and took nothing
    assert comp.processor.captured_cents() == 0 and not comp.processor.open_authorizations()
    assert pay(m, "exits") == np.isfinite(rec.leave_t).sum()


#: Every card can pay $5 at most: a stay above that is partly paid (a strike); a prepayment
#: above it is partly approved, voided and refused. Nothing random but plates and drivers.
CARD_LIMIT_5 = {
    "partial_probability": 1.0,
    "card_limit": {"type": "constant", "value": 5},
    "latency": {"type": "constant", "value": 1, "unit": "s"},
    "plate_pool": 6,
}


def first_strike(bills: pd.DataFrame) -> dict[str, float]:
    """When each plate's first invoiced exit left its spot."""
    struck = bills[bills["invoice_ids"] != ""]
    return struck.groupby("plate")["leave_s"].min().to_dict()


def test_prepaid_entries_pay_the_quote_and_settle_the_difference_at_the_exit() -> None:
    strikes = {"threshold": 1, "debt_at_entry": False}
    m, rec, comp = run(scenario({**CARD_LIMIT_5, "strikes": strikes}))
    d = rec.drivers
    bills = rec.component_frames["payments_bills"]
    prepay = rec.component_frames["payments_prepay"].set_index("driver")
    # asked to prepay: exactly the drivers whose plate had an unpaid exit before they came
    # (threshold 1, and nothing is ever paid off: the block stays)
    struck = first_strike(bills)
    plates = [comp.plate(i) for i in range(len(d))]
    asked = [i for i in range(len(d)) if struck.get(plates[i], np.inf) <= d.arrival[i]]
    assert sorted(prepay.index) == asked
    # a quote the card covers is held and captured at entry; above $5 the partial hold is
    # voided and the driver turned away
    covered = prepay["quote_cents"] <= 500
    assert 0 < covered.sum() < len(prepay)
    assert (prepay.loc[covered, "outcome"] == "prepaid").all()
    assert (prepay.loc[~covered, "outcome"] == "refused").all()
    assert (prepay.loc[~covered, "declines"] == 3).all()
    np.testing.assert_array_equal(rec.outcome[prepay.index[~covered]], TURNED_AWAY)
    np.testing.assert_array_equal(
        prepay.loc[covered, "captured_cents"], prepay.loc[covered, "quote_cents"]
    )
    assert not comp.processor.open_authorizations()  # every partial hold was voided
    # no entry barrier, no dynamic price: the stay costs its quote, so the exit is free
    paid_ahead = prepay.index[covered]
    left = bills.set_index("driver").loc[[i for i in paid_ahead if np.isfinite(rec.leave_t[i])]]
    assert len(left) > 20
    assert (left["basis"] == "prepaid").all() and (left["expected_cents"] == 0).all()
    assert (left["outcome"] == "free").all()
    np.testing.assert_array_equal(
        rec.amount_cents[left.index], prepay.loc[left.index, "quote_cents"]
    )
    # figures, and the money is counted once: the quote in the prepay bill, not at the exit
    assert pay(m, "prepaid_entries") == covered.sum()
    assert pay(m, "prepay_refused") == (~covered).sum()
    assert pay(m, "prepaid_revenue") * 100 == prepay.loc[covered, "quote_cents"].sum()
    assert pay(m, "revenue_expected") == pytest.approx(m["revenue"])
    money = ["collected", "pending_offline", "invoiced", "written_off"]
    assert pay(m, "revenue_expected") == pytest.approx(sum(pay(m, f"revenue_{k}") for k in money))
    captured = bills["captured_cents"].sum() + prepay["captured_cents"].sum()
    assert captured == comp.processor.captured_cents()
    assert pay(m, "debt_collected_at_entry") == 0 and pay(m, "plates_unblocked") == 0


def test_a_prepayment_asked_during_an_outage_gets_no_answer_and_turns_the_driver_away() -> None:
    strikes = {"threshold": 1, "debt_at_entry": False}
    rec = run(scenario({**CARD_LIMIT_5, "strikes": strikes, "outages": OUTAGES}))[1]
    prepay = rec.component_frames["payments_prepay"]
    down = in_outage(prepay["arrival_s"].to_numpy())
    assert down.sum() > 10 and (~down).sum() > 10
    # three timeouts, no decline, refused: the gate does not let an untrusted card in offline
    assert (prepay.loc[down, "outcome"] == "refused").all()
    assert (prepay.loc[down, "attempts"] == 3).all() and (prepay.loc[down, "declines"] == 0).all()
    # with the network up, the card limit decides, as without outages
    up = prepay[~down]
    assert ((up["outcome"] == "prepaid") == (up["quote_cents"] <= 500)).all()


def test_paying_the_debt_at_the_entry_lifts_the_block_per_the_policy() -> None:
    m, rec, comp = run(scenario({**CARD_LIMIT_5, "strikes": {"threshold": 1}}))
    bills = rec.component_frames["payments_bills"]
    prepay = rec.component_frames["payments_prepay"]
    paid = prepay[prepay["debt_paid_cents"] > 0]
    assert len(paid) > 5
    # quote + debt was one hold within the card's $5; the debt is the plate's open invoices
    assert (paid["captured_cents"] == paid["quote_cents"] + paid["debt_paid_cents"]).all()
    assert (paid["captured_cents"] <= 500).all()
    for row in paid.itertuples():
        before = bills[(bills["plate"] == row.plate) & (bills["leave_s"] <= row.arrival_s)]
        assert before["invoiced_cents"].sum() == 0  # all of it paid, at this entry or earlier
    assert prepay["debt_paid_cents"].sum() == bills["invoice_paid_cents"].sum()
    assert pay(m, "debt_collected_at_entry") * 100 == paid["debt_paid_cents"].sum()
    assert pay(m, "plates_unblocked") == len(paid)  # unblock_when_paid: the next visit is free
    captured = bills["captured_cents"].sum() + prepay["captured_cents"].sum()
    assert captured == comp.processor.captured_cents()
    assert pay(m, "revenue_expected") == pytest.approx(m["revenue"])
    # the same drivers, but paying off does not lift the block: every later visit prepays
    strict = {"threshold": 1, "unblock_when_paid": False}
    m2 = run(scenario({**CARD_LIMIT_5, "strikes": strict}))[0]
    assert pay(m2, "plates_unblocked") == 0 and pay(m2, "blocklisted_plates") == 6
    assert pay(m2, "prepay_asked") > pay(m, "prepay_asked")


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
    # regulars who kept declining prepaid their next visits; --out writes who and what
    prepay = pd.read_parquet(out / "payments_prepay.parquet")
    prepaid = (prepay["outcome"] == "prepaid").groupby(prepay["replication"]).sum()
    assert prepaid.tolist() == figures["payments.prepaid_entries"]["values"]
    assert figures["payments.prepay_asked"]["mean"] > 0

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
