"""Reservations wired into the model: holds beside walk-ins, no-shows, rates, idle hours, money.

Expected figures come from the scenario's constants (hand-worked below) or from queueing
theory (Erlang's loss formula), never from a previous run of the code.
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from cli import app
from twin.core.types import SpotStatus, SpotType
from twin.results import metrics
from twin.scenario.loader import validate_scenario
from twin.sim.model import BLOCKED, PARKED, ParkingModel, RunRecord, simulate

H = 3600.0
MIN = 60.0


def scenario(reservations: dict, spots: dict | None = None, **top: object) -> dict:
    """A one-level lot with no walk-ins unless ``demand`` is given in ``top``."""
    data = {
        "name": "res",
        "horizon_days": 1,
        "seed": 4,
        "facility": {"name": "A", "levels": [{"name": "G", "spots": spots or {"REGULAR": 4}}]},
        "demand": [
            {"name": "none", "rate_per_hour": 0, "dwell": {"type": "constant", "value": 60}}
        ],
        "tariff": {"name": "t", "period_minutes": 60, "per_period": 2},
        "operations": {"reservations": reservations},
    }
    data.update(top)
    return data


def constant(value: float, unit: str = "min") -> dict:
    return {"type": "constant", "value": value, "unit": unit}


def night_bookings(rate: float) -> dict:
    """Bookings only between 00:00 and 04:00, so every one is over well before midnight."""
    return {"all": [rate] * 4 + [0.0] * 20}


def bookings(rec: RunRecord) -> pd.DataFrame:
    return rec.component_frames["reservations_bookings"]


def figures(rec: RunRecord) -> dict[str, float]:
    return {
        k.removeprefix("reservations."): v
        for k, v in metrics(rec).items()
        if k.startswith("reservations.")
    }


# --------------------------------------------------------------------------- tiny hand-checks

TINY = {
    "profile": night_bookings(1.5),
    "lead_time": constant(2, "h"),
    "window": constant(1, "h"),
    "hold_lead_min": 15,
    "grace_min": 15,
    "no_show_probability": 0.5,
    "arrival_offset": {"early_share": 1.0, "early": constant(5)},
    "reserved_share": {"REGULAR": 1.0},
    "deposit": 5,
    "no_show_penalty": 3,
}


def test_idle_spot_hours_revenue_and_timing_by_hand() -> None:
    rec = simulate(validate_scenario(scenario(TINY)))
    f = figures(rec)
    frame = bookings(rec)
    shows = frame[frame["status"] == "completed"]
    no_shows = frame[frame["status"] == "no_show"]
    n_show, n_no = len(shows), len(no_shows)
    assert n_show >= 2 and n_no >= 2  # the seed gives both kinds
    assert f["arrivals"] == n_show and f["no_shows"] == n_no
    assert f["accepted"] == n_show + n_no == f["requested"] - f["rejected.cap_reached"]
    # every hold starts at start - 15 min; a holder parks 5 min before start and leaves at end
    accepted = frame[frame["reservation"] >= 0]
    np.testing.assert_array_equal(accepted["held_from"], accepted["start"] - 15 * MIN)
    np.testing.assert_array_equal(shows["arrived_t"], shows["start"] - 5 * MIN)
    np.testing.assert_array_equal(shows["left_t"], shows["end"])
    # a no-show's spot is released at start + grace exactly
    np.testing.assert_array_equal(no_shows["closed_t"], no_shows["start"] + 15 * MIN)
    # held but empty: 10 min per holder who came, 30 min (lead + grace) per no-show
    assert f["idle_spot_hours"] == pytest.approx(n_show * 10 / 60 + n_no * 30 / 60, abs=1e-9)
    # a 65-minute stay is two started hours at $2; a no-show forfeits $5 deposit + $3 penalty
    assert f["exit_revenue"] == 4.0 * n_show
    assert f["deposit_revenue"] == 5.0 * n_no and f["penalty_revenue"] == 3.0 * n_no
    assert f["revenue"] == f["exit_revenue"] + f["deposit_revenue"] + f["penalty_revenue"]
    assert (shows["captured_cents"] == 400).all() and (no_shows["captured_cents"] == 800).all()
    # holders' spot-time: 65 min each over the day
    assert f["holders_parked.mean"] == pytest.approx(n_show * 65 * MIN / (24 * H))
    # the lot is back to its opening state: every spot free, nothing open
    lot = rec.lot
    assert lot.open_sessions == 0 and lot.n_available == lot.capacity


def test_no_show_spot_goes_to_the_walk_in_arriving_at_start_plus_grace(tmp_path: Path) -> None:
    """One spot, everyone a no-show: a walk-in 1 s before the release is refused, one at it parks.

    The booking stream has its own random streams, so adding walk-ins leaves it unchanged
    (common random numbers): the first run tells us when the first hold ends.
    """
    one_spot = {**TINY, "no_show_probability": 1.0, "arrival_offset": None}
    alone = bookings(simulate(validate_scenario(scenario(one_spot, {"REGULAR": 1}))))
    first = alone[alone["status"] == "no_show"].iloc[0]
    release = first["start"] + 15 * MIN
    trace = tmp_path / "walk_ins.csv"
    pd.DataFrame({"arrival": [release - 1.0, release], "dwell": [1.0, 1.0]}).to_csv(
        trace, index=False
    )
    walk_ins = [
        {
            "name": "walk_ins",
            "trace": {
                "path": str(trace),
                "time_unit": "s",
                "dwell_column": "dwell",
                "dwell_unit": "min",
            },
        }
    ]
    rec = simulate(validate_scenario(scenario(one_spot, {"REGULAR": 1}, demand=walk_ins)))
    again = bookings(rec)
    np.testing.assert_array_equal(again["start"], alone["start"])  # the same bookings
    assert again.loc[again["reservation"] == first["reservation"], "closed_t"].item() == release
    assert rec.outcome.tolist() == [BLOCKED, PARKED]
    assert rec.entry_t[1] == release and rec.spot[1] == 0
    assert figures(rec)["walk_ins_turned_away"] == 1


def test_a_waiting_hold_takes_the_spot_a_walk_in_frees(tmp_path: Path) -> None:
    """One spot, a walk-in parked from start - 30 min to start - 10 min.

    The hold cannot start at start - 15 min; the walk-in's departure hands the spot to it
    (the model's ``on_leave`` hook), so the holder, 5 min early, finds it held: 5 idle minutes.
    """
    show = {**TINY, "no_show_probability": 0.0}
    alone = bookings(simulate(validate_scenario(scenario(show, {"REGULAR": 1}))))
    first = alone[alone["reservation"] >= 0].iloc[0]
    start = first["start"]
    trace = tmp_path / "walk_in.csv"
    pd.DataFrame({"arrival": [start - 30 * MIN], "dwell": [20.0]}).to_csv(trace, index=False)
    walk_in = {"path": str(trace), "time_unit": "s", "dwell_column": "dwell"}
    data = scenario(show, {"REGULAR": 1}, demand=[{"name": "w", "trace": walk_in}])
    rec = simulate(validate_scenario(data))
    row = bookings(rec).set_index("reservation").loc[first["reservation"]]
    assert rec.leave_t[0] == start - 10 * MIN
    assert row["held_from"] == start - 10 * MIN  # not at start - 15 min: it waited
    assert row["arrived_t"] == start - 5 * MIN and row["spot"] == "G-R0001"  # the one spot, by id
    assert row["status"] == "completed"


# --------------------------------------------------------------------------- rates


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of an M/G/c/c loss system (recursion, stable for any load)."""
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def test_acceptance_rate_is_erlangs_loss_formula() -> None:
    """Constant lead and window make the share cap an M/D/c/c loss system.

    With lead L > hold lead h every booking's capacity window is ``[t + L - h, t + L + W)``:
    the same shift of every request time, so windows start in request order and a booking is
    refused iff ``c`` accepted ones are still live when it is made. Capacity window
    W' = 15 min + 2 h, 2 requests/h: offered load 4.5 on c = floor(0.5 x 10) = 5 holds.
    """
    res = {
        "rate_per_hour": 2,
        "lead_time": constant(3, "h"),
        "window": constant(2, "h"),
        "reserved_share": {"REGULAR": 0.5},
    }
    data = scenario(res, {"REGULAR": 10}, horizon_days=30, warmup_hours=6)
    sc = validate_scenario(data)
    values = [figures(simulate(sc, replication=r))["acceptance_pct"] for r in range(5)]
    expected = 100.0 * (1.0 - erlang_b(5, 2 * 2.25))
    assert expected == pytest.approx(75.7, abs=0.1)  # the hand calculation in the docstring
    assert stats.ttest_1samp(values, expected).pvalue > 0.001
    assert abs(np.mean(values) - expected) < 2.0


def test_no_show_and_cancel_rates_match_their_probabilities() -> None:
    res = {
        "rate_per_hour": 8,
        "lead_time": {"type": "exponential", "mean": 3, "unit": "h"},
        "window": {"type": "uniform", "low": 30, "high": 90},
        "no_show_probability": 0.2,
        "cancel_probability": 0.1,
        "reserved_share": {"REGULAR": 1.0},
    }
    rec = simulate(validate_scenario(scenario(res, {"REGULAR": 200}, horizon_days=10)))
    f = figures(rec)
    assert f["acceptance_pct"] == 100.0  # 200 spots never run out
    resolved = int(f["arrivals"] + f["no_shows"] + f["bumped"] + f["cancellations"])
    assert resolved > 1500
    assert stats.binomtest(int(f["no_shows"]), resolved, 0.2).pvalue > 0.001
    assert stats.binomtest(int(f["cancellations"]), resolved, 0.1).pvalue > 0.001
    assert f["no_show_pct"] == pytest.approx(100 * f["no_shows"] / resolved)
    assert f["bumped"] == 0 and f["late_arrivals"] == 0


# --------------------------------------------------------------------------- invariants

BUSY = {
    "rate_per_hour": 3,
    "lead_time": {"type": "exponential", "mean": 4, "unit": "h"},
    "window": {"type": "uniform", "low": 1, "high": 4, "unit": "h"},
    "dwell": {"type": "lognormal", "mean": 2.5, "sd": 1.5, "unit": "h"},
    "spot_types": {"REGULAR": 0.8, "EV": 0.2},
    "reserved_share": {"REGULAR": 0.5, "EV": 1.0},
    "overbooking_factor": 1.5,
    "cancel_probability": 0.1,
    "no_show_probability": 0.15,
    "arrival_offset": {
        "early_share": 0.5,
        "early": {"type": "uniform", "low": 0, "high": 25},
        "late": {"type": "uniform", "low": 0, "high": 20},
    },
    "deposit": 5,
    "no_show_penalty": 5,
    "free_cancel_before_h": 2,
    "late_cancel_refund_share": 0.5,
}
WALK_INS = [
    {
        "name": "cars",
        "rate_per_hour": 6,
        "ev_share": 0.2,
        "dwell": {"type": "exponential", "mean": 1.5, "unit": "h"},
    }
]


def busy_data() -> dict:
    """Ten spots, walk-ins who wait for a spot, and the busy booking stream: four days."""
    return scenario(
        BUSY,
        {"REGULAR": 8, "EV": 2},
        horizon_days=4,
        demand=WALK_INS,
        behaviour={"when_full": "wait", "patience": {"type": "exponential", "mean": 20}},
    )


def busy_run() -> RunRecord:
    return simulate(validate_scenario(busy_data()))


def test_holds_never_double_book_a_spot_with_walk_ins_present() -> None:
    rec = busy_run()
    f = figures(rec)
    frame = bookings(rec)
    horizon = rec.scenario.horizon_s
    # the run exercises every path: waits for a hold, bumps, walk-ins refused, overstays
    assert f["hold_waits"] > 0 and f["bumped"] > 0 and f["walk_ins_turned_away"] > 0
    assert f["late_arrivals"] > 0 and f["late_cancellations"] > 0
    assert f["requested"] == f["accepted"] + sum(v for k, v in f.items() if k[:9] == "rejected.")
    # every use of a spot over the run: walk-ins, holders parked, and holds waiting for them
    uses = []
    parked = rec.spot >= 0
    for spot, a, b in zip(rec.spot[parked], rec.entry_t[parked], rec.leave_t[parked], strict=True):
        uses.append((spot, a, horizon if np.isnan(b) else b, "walk-in"))
    index_of = {s.id: s.index for s in rec.lot.spots}  # the frame names spots by id
    for row in frame.itertuples():
        if pd.isna(row.spot):
            continue
        spot = index_of[row.spot]
        came = not np.isnan(row.arrived_t)
        if not np.isnan(row.held_from):
            held_until = row.arrived_t if came else row.closed_t
            uses.append(
                (spot, row.held_from, horizon if np.isnan(held_until) else held_until, "hold")
            )
        if came:
            left = horizon if np.isnan(row.left_t) else row.left_t
            uses.append((spot, row.arrived_t, left, "holder"))
    uses.sort()
    assert len(uses) > 100
    for (s1, a1, b1, w1), (s2, a2, b2, w2) in itertools.pairwise(uses):
        if s1 == s2:
            assert b1 <= a2, f"spot {s1}: {w1} [{a1}, {b1}) overlaps {w2} [{a2}, {b2})"
    # at the end: every OCCUPIED spot has exactly one open session, and the counters recount
    lot = rec.lot
    sessions = lot.sessions()
    occupied = sorted(s.index for s in lot.spots if s.status is SpotStatus.OCCUPIED)
    assert sorted(s.spot.index for s in sessions) == occupied
    reserved = sum(s.status is SpotStatus.RESERVED for s in lot.spots)
    assert reserved == sum(lot_book_held(rec, t) for t in SpotType)
    assert lot.n_occupied == len(occupied)
    assert lot.n_available == sum(s.status is SpotStatus.AVAILABLE for s in lot.spots)
    for stype in SpotType:
        count = sum(s.status is SpotStatus.OCCUPIED and s.type == stype for s in lot.spots)
        assert lot.occupied_by_type[stype] == count
    for level in range(len(lot.levels)):
        for stype in SpotType:
            free = sum(
                s.level == level and s.type == stype and s.status is SpotStatus.AVAILABLE
                for s in lot.spots
            )
            assert lot.available[level][stype] == free
    # holders still parked at the end are exactly the ARRIVED reservations
    assert (frame["status"] == "arrived").sum() == (
        ~frame["arrived_t"].isna() & frame["left_t"].isna()
    ).sum()


def lot_book_held(rec: RunRecord, stype: SpotType) -> int:
    """Spots the book holds now: the run's component is the only holder in this scenario."""
    frame = bookings(rec)
    open_hold = frame["held_from"].notna() & frame["arrived_t"].isna() & frame["closed_t"].isna()
    return int((open_hold & (frame["spot_type"] == stype.name)).sum())


def test_money_identities_and_determinism() -> None:
    rec = busy_run()
    f = figures(rec)
    frame = bookings(rec)
    assert f["revenue"] == pytest.approx(
        f["exit_revenue"] + f["deposit_revenue"] + f["penalty_revenue"]
    )
    # a completed stay pays the lot's tariff for its actual time ($2 per started hour)
    done = frame[frame["status"] == "completed"]
    hours = np.ceil((done["left_t"] - done["arrived_t"]) / H)
    np.testing.assert_array_equal(done["captured_cents"], 200 * hours)
    assert f["exit_revenue"] == pytest.approx(done["captured_cents"].sum() / 100)
    # no-shows forfeit deposit + penalty; late cancellations keep half the $5 deposit
    assert (frame.loc[frame["status"] == "no_show", "captured_cents"] == 1000).all()
    cancelled = frame[frame["status"] == "cancelled"]
    assert set(cancelled["captured_cents"]) <= {0, 250}
    assert (cancelled["captured_cents"] + cancelled["refunded_cents"] <= 500).all()
    # same seed, same figures; the walk-ins' own figures stay in the model's metrics
    assert figures(busy_run()) == f
    assert metrics(rec)["arrivals"] > 0


def test_unknown_lot_is_a_clear_error() -> None:
    data = scenario({**TINY, "lot": "B"})
    with pytest.raises(ValueError, match=r"operations\.reservations\.lot: unknown lot 'B'"):
        simulate(validate_scenario(data))


# --------------------------------------------------------------------------- end to end


def run_two_replications(data: dict, path: Path) -> dict:
    """``parktwin run`` of ``data`` (written to ``path``) with two replications, as a user
    would; the metrics of the summary.json it writes beside the file."""
    path.write_text(yaml.safe_dump(data))
    out = path.parent / "out"
    result = CliRunner().invoke(app, ["run", str(path), "--replications", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text())["metrics"]


def test_cli_run_reports_reservation_figures(tmp_path: Path) -> None:
    data = copy.deepcopy(scenario(BUSY, {"REGULAR": 8, "EV": 2}, horizon_days=2))
    data["demand"] = WALK_INS
    path = tmp_path / "res.yaml"
    summary = run_two_replications(data, path)
    for name in ("acceptance_pct", "no_show_pct", "idle_spot_hours", "walk_ins_turned_away"):
        assert len(summary[f"reservations.{name}"]["values"]) == 2
    revenue = summary["reservations.revenue"]["values"]
    parts = [
        summary[f"reservations.{k}"]["values"]
        for k in ("exit_revenue", "deposit_revenue", "penalty_revenue")
    ]
    assert revenue == pytest.approx([sum(p) for p in zip(*parts, strict=True)])
    assert summary["reservations.accepted"]["mean"] > 0
    low, high = summary["reservations.acceptance_pct"]["ci95"]
    assert low <= summary["reservations.acceptance_pct"]["mean"] <= high
    # a bad lot name is a one-line error, exit 2
    data["operations"]["reservations"]["lot"] = "nowhere"
    path.write_text(yaml.safe_dump(data))
    bad = CliRunner().invoke(app, ["run", str(path)])
    assert bad.exit_code == 2
    assert "unknown lot 'nowhere'" in bad.output and "Traceback" not in bad.output


# --------------------------------------------------------------------------- with payments on

CARDS = {
    "decline_probability": 0.1,
    "partial_probability": 0.05,
    "card_limit": {"type": "uniform", "low": 0, "high": 20},
}


def busy_run_with_payments(payments: dict) -> tuple[RunRecord, object]:
    data = busy_data()
    data["operations"]["payments"] = payments
    model = ParkingModel(validate_scenario(data))
    rec = model.run()
    (pay,) = [c for c in model.components if c.name == "payments"]
    return rec, pay


def test_with_payments_every_reservation_capture_goes_through_the_shared_processor() -> None:
    rec, pay = busy_run_with_payments(CARDS)
    f = figures(rec)
    frame = bookings(rec)
    proc = pay.processor
    # which booking each processor payment belongs to: its authorization's key res-<id>/...
    owner: dict[int, int] = {}
    for p in proc.payments.values():
        key = proc.authorizations[p.authorization_id].key
        if key.startswith("res-"):
            rid = int(key[4 : key.index("/")])
            owner[rid] = owner.get(rid, 0) + p.amount_cents
    accepted = frame[frame["reservation"] >= 0]
    got = accepted["reservation"].map(lambda rid: owner.get(rid, 0))
    np.testing.assert_array_equal(got, accepted["captured_cents"])
    assert set(owner) <= set(accepted["reservation"])
    assert f["captured"] * 100 == accepted["captured_cents"].sum() == sum(owner.values()) > 0
    assert f["revenue"] == f["captured"]  # the book's revenue is what the processor took
    # the processor's total is the exit lanes' ledger plus the reservations
    bills = rec.component_frames["payments_bills"]
    assert proc.captured_cents() == bills["captured_cents"].sum() + sum(owner.values())
    # no-shows forfeit deposit + penalty from their full hold; stays pay the tariff from the
    # hold, and a top-up the card declines is unpaid
    assert (frame.loc[frame["status"] == "no_show", "captured_cents"] == 1000).all()
    done = frame[frame["status"] == "completed"]
    hours = np.ceil((done["left_t"] - done["arrived_t"]) / H)
    assert f["unpaid"] * 100 == (200 * hours - done["captured_cents"]).sum()
    # declined or partly approved holds refused their bookings; the partial ones were voided
    declined = frame["status"] == "rejected:payment_declined"
    assert declined.sum() == f["rejected.payment_declined"] == f["declined_holds"] > 5
    assert f["requested"] == f["accepted"] + sum(v for k, v in f.items() if k[:9] == "rejected.")
    assert f["accepted"] == (frame["reservation"] >= 0).sum()
    # every hold still open belongs to a reservation still live at the horizon
    live = frame["status"].isin(["confirmed", "arrived"])
    open_res = {a.id for a in proc.open_authorizations() if a.key.startswith("res-")}
    assert open_res == set(frame.loc[live, "authorization_id"]) - {""}
    res_auths = [a for a in proc.authorizations.values() if a.key.startswith("res-")]
    assert f["authorizations"] == len(res_auths)
    assert f["voids"] == sum(a.status.value == "voided" for a in res_auths) > 0
    # same seed, same figures; other payment settings, same booking stream
    assert figures(busy_run_with_payments(CARDS)[0]) == f
    np.testing.assert_array_equal(bookings(busy_run())["request_t"], frame["request_t"])


def test_a_declined_or_partial_hold_refuses_the_booking() -> None:
    plain = figures(busy_run())
    assert plain["accepted"] > 20  # without payments: today's behaviour, nothing declined
    assert plain["rejected.payment_declined"] == 0 and "declined_holds" not in plain
    rec, pay = busy_run_with_payments({"decline_probability": 1.0})
    f = figures(rec)
    assert f["requested"] == plain["requested"]
    assert f["accepted"] == f["arrivals"] == f["no_shows"] == 0
    assert f["declined_holds"] == f["requested"] - sum(
        v for k, v in f.items() if k[:9] == "rejected." and k != "rejected.payment_declined"
    )
    assert f["declined_holds"] >= plain["accepted"]
    assert f["revenue"] == f["captured"] == f["idle_spot_hours"] == 0
    assert set(bookings(rec)["status"]) <= {
        "rejected:payment_declined",
        "rejected:cap_reached",
        "rejected:expected_full",
    }
    # a card that can pay $1 gets a partial approval, which is voided at once
    limited = {"partial_probability": 1.0, "card_limit": {"type": "constant", "value": 1}}
    rec, pay = busy_run_with_payments(limited)
    f = figures(rec)
    assert f["accepted"] == 0 and f["declined_holds"] > 0
    assert f["voids"] == f["authorizations"] == f["declined_holds"]
    assert not [a for a in pay.processor.open_authorizations() if a.key.startswith("res-")]


def test_cli_run_reports_reservation_payment_figures(tmp_path: Path) -> None:
    data = scenario(BUSY, {"REGULAR": 8, "EV": 2}, horizon_days=2, demand=WALK_INS)
    data["operations"]["payments"] = CARDS
    summary = run_two_replications(data, tmp_path / "res_pay.yaml")
    for name in ("authorizations", "captures", "captured", "voids", "declined_holds"):
        assert len(summary[f"reservations.{name}"]["values"]) == 2
    assert summary["reservations.captured"]["mean"] > 0
    assert (
        summary["reservations.declined_holds"]["values"]
        == (summary["reservations.rejected.payment_declined"]["values"])
    )
