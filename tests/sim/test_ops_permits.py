"""The permits component in the model: monthly holders, accessible-bay enforcement, EV charging.

Most scenarios replay short hand-written traces, so every figure can be worked out on paper
(the arithmetic is in the comments); one generated scenario checks the model's invariants and
the enforcement probability with a binomial test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from cli import app
from twin.core.types import SpotType
from twin.results import metrics
from twin.scenario.loader import ScenarioError, validate_scenario
from twin.sim.model import BLOCKED, PARKED, TURNED_AWAY, ParkingModel, RunRecord
from twin.sim.ops_permits import PermitsComponent

HOURLY = {"period_minutes": 60, "per_period": 2}  # $2 per started hour


def trace(tmp_path: Path, name: str, rows: list[tuple], **flags: bool) -> dict:
    """A demand stream replaying ``rows`` of (arrival h, dwell min, *flag columns)."""
    columns = ["arrival", "dwell", *flags]
    path = tmp_path / f"{name}.csv"
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    spec = {"path": str(path), "time_unit": "h", "dwell_column": "dwell", "dwell_unit": "min"}
    for flag in flags:
        spec[f"{flag}_column"] = flag
    return {"name": name, "trace": spec}


def build(spots: dict, demand: list[dict], permits: dict, **extra) -> dict:
    return {
        "name": "permits",
        "horizon_days": 1,
        "facility": {"levels": [{"name": "G", "spots": spots}]},
        "demand": demand,
        "tariff": HOURLY,
        "operations": {"permits": permits},
        **extra,
    }


def run(data: dict, replication: int = 0) -> tuple[RunRecord, dict, PermitsComponent]:
    model = ParkingModel(validate_scenario(data), replication)
    rec = model.run()
    (component,) = (c for c in model.components if isinstance(c, PermitsComponent))
    return rec, metrics(rec), component


def figures(m: dict, part: str) -> dict:
    prefix = f"permits.{part}." if part else "permits."
    return {k[len(prefix) :]: v for k, v in m.items() if k.startswith(prefix)}


# =========================================================================== monthly permits


def test_holders_park_free_in_their_assigned_spot_which_walk_ins_never_get(tmp_path) -> None:
    # 2 REGULAR spots, one assigned to the only permit (one plate). Drivers in arrival order:
    # staff 8h-10h (assigned spot), visitor 9h-10h (the other spot), staff 10h-12h (the
    # assigned spot again: the 10h departure goes first), staff 11h-12h (the plate is inside:
    # a paying walk-in, the other spot), visitor 11:30 (both spots busy: blocked).
    staff = trace(tmp_path, "staff", [(8, 120), (10, 120), (11, 60)])
    visitors = trace(tmp_path, "visitors", [(9, 60), (11.5, 30)])
    monthly = {"holders": 1, "streams": ["staff"], "assigned_spots": 1, "monthly_fee": "36.50"}
    rec, m, comp = run(build({"REGULAR": 2}, [staff, visitors], {"monthly": monthly}))
    f = figures(m, "monthly")
    assert f["entries"] == 2 and f["assigned_entries"] == 2 and f["exits"] == 2
    assert f["plates_exhausted"] == 1 and f["refused_full"] == 0 and f["not_valid"] == 0
    assert f["waived_revenue"] == 8.0  # two stays of 2 h at $2/h
    # the assigned spot is held empty over [0, 8h) and [12h, 24h): 20 spot-hours of 24
    assert f["assigned_idle_spot_hours"] == pytest.approx(20.0)
    assert f["assigned_idle_share"] == pytest.approx(20 / 24)
    assert f["fee_revenue_per_day"] == pytest.approx(36.5 * 12 / 365)
    # drivers by arrival: staff, visitor, staff, staff (paying), visitor (blocked)
    np.testing.assert_array_equal(rec.amount_cents[:4], [0, 200, 0, 200])
    assert rec.outcome[4] == BLOCKED and m["blocked_pct"] == 20.0
    assert m["revenue"] == 4.0  # the visitor's hour and the plate-less staff car's hour
    assigned = comp.assigned[0]
    assert rec.spot[0] == rec.spot[2] == assigned
    assert assigned not in (rec.spot[1], rec.spot[3])
    visits = comp.frames()["visits"]
    assert visits["assigned_spot"].all() and visits["waived"].sum() == 8.0


def test_second_car_on_one_permit_takes_a_general_spot(tmp_path) -> None:
    staff = trace(tmp_path, "staff", [(8, 120), (9, 60)])
    monthly = {"holders": 1, "plates_per_permit": 2, "streams": ["staff"], "assigned_spots": 1}
    rec, m, comp = run(build({"REGULAR": 3}, [staff], {"monthly": monthly}))
    f = figures(m, "monthly")
    assert (f["entries"], f["assigned_entries"], f["assigned_busy"]) == (2, 1, 1)
    assert f["waived_revenue"] == 6.0 and m["revenue"] == 0.0  # 2 h + 1 h, nobody pays
    assert rec.spot[0] == comp.assigned[0] != rec.spot[1]
    assert set(comp.frames()["visits"]["plate"]) == {"P00000-0", "P00000-1"}


def test_a_holder_at_a_full_lot_is_turned_away(tmp_path) -> None:
    staff = trace(tmp_path, "staff", [(9, 60)])
    visitors = trace(tmp_path, "visitors", [(8, 240)])
    monthly = {"holders": 5, "streams": ["staff"]}
    rec, m, _ = run(build({"REGULAR": 1}, [staff, visitors], {"monthly": monthly}))
    assert figures(m, "monthly")["refused_full"] == 1 and figures(m, "monthly")["entries"] == 0
    assert rec.outcome[1] == TURNED_AWAY and rec.outcome[0] == PARKED
    assert m["turned_away_pct"] == 50.0 and m["blocked_pct"] == 0.0


def test_validity_window_holds_the_spot_on_time_and_claims_it_from_a_walk_in(tmp_path) -> None:
    # Permit valid 12h-18h. Staff at 9h: not valid yet, pays 1 h. A visitor takes the best
    # spot (the one to be assigned) 10h-13h; at 12h the permit starts but the spot is busy,
    # so it is claimed when the visitor leaves at 13h, and the staff car arriving at 13h
    # parks in it. Held empty: 14h-18h = 4 spot-hours; released at 18h.
    staff = trace(tmp_path, "staff", [(9, 60), (13, 60)])
    visitors = trace(tmp_path, "visitors", [(10, 180)])
    monthly = {
        "holders": 1,
        "streams": ["staff"],
        "assigned_spots": 1,
        "valid_from": "2026-01-05T12:00:00",
        "valid_until": "2026-01-05T18:00:00",
    }
    rec, m, comp = run(build({"REGULAR": 2}, [staff, visitors], {"monthly": monthly}))
    f = figures(m, "monthly")
    assert (f["not_valid"], f["entries"], f["assigned_entries"]) == (1, 1, 1)
    assert f["waived_revenue"] == 2.0
    assert f["assigned_idle_spot_hours"] == pytest.approx(4.0)
    assert m["revenue"] == 2.0 + 6.0  # staff at 9h, visitor's 3 h
    assert rec.spot[1] == rec.spot[2] == comp.assigned[0]  # visitor, then the holder
    assert comp.ctx.lots[0].spots[comp.assigned[0]].status.name == "AVAILABLE"  # after 18h


def test_a_driver_waiting_gets_the_assigned_spot_when_its_permit_ends(tmp_path) -> None:
    # 2 REGULAR spots, one held for a permit valid until 12h. A 10h-16h takes the other spot;
    # B arrives at 11h and waits (patience 2 h): the held spot frees at 12h and B parks then.
    visitors = trace(tmp_path, "visitors", [(10, 360), (11, 60)])
    staff = trace(tmp_path, "staff", [(20, 60)])
    monthly = {
        "holders": 1,
        "streams": ["staff"],
        "assigned_spots": 1,
        "valid_until": "2026-01-05T12:00:00",
    }
    behaviour = {"when_full": "wait", "patience": {"type": "constant", "value": 120}}
    data = build({"REGULAR": 2}, [visitors, staff], {"monthly": monthly}, behaviour=behaviour)
    rec, m, comp = run(data)
    assert rec.entry_t[1] == 12 * 3600.0 and rec.spot[1] == comp.assigned[0]
    assert figures(m, "monthly")["assigned_idle_spot_hours"] == pytest.approx(12.0)
    assert figures(m, "monthly")["not_valid"] == 1  # staff at 20h: the permit has ended


def test_reservation_holders_at_chargers_are_billed_too() -> None:
    # No walk-ins: every car is a reservation holder of an EV bay (kept by the reservations
    # component, not one of the model's drivers). Each stays its 2 h window and wants 15 kWh
    # at 10 kW: 1.5 h charging and 0.5 h idle, $15 at $1/kWh.
    data = build(
        {"REGULAR": 2, "EV": 3},
        [{"name": "nobody", "rate_per_hour": 0, "dwell": {"type": "constant", "value": 60}}],
        {
            "ev_charging": {
                "charger_power_kw": 10,
                "energy_kwh": {"type": "constant", "value": 15},
                "fee_per_kwh": 1,
            }
        },
        seed=4,
    )
    data["operations"]["reservations"] = {
        "rate_per_hour": 1,
        "spot_types": {"EV": 1},
        "lead_time": {"type": "constant", "value": 60},
        "window": {"type": "constant", "value": 120},
        "reserved_share": {"EV": 1},
    }
    _, m, comp = run(data)
    ev = figures(m, "ev")
    arrived = m["reservations.arrivals"]
    assert arrived - 3 <= ev["sessions"] <= arrived and ev["sessions"] > 10
    assert ev["charge_hours"] == pytest.approx(1.5 * ev["sessions"])
    assert ev["idle_hours"] == pytest.approx(0.5 * ev["sessions"])
    assert ev["charging_revenue"] == 15 * ev["sessions"]
    assert (comp.frames()["charging"]["driver"] == -1).all()


# =========================================================================== accessible bays


@pytest.mark.parametrize(
    ("violate", "enforce", "expected"),
    [
        # (illegal parkings, inspected, violations, caught, fines $), blocked
        (1.0, 1.0, ((1, 2, 1, 1, 50.0), 25.0)),
        (1.0, 0.0, ((1, 2, 1, 0, 0.0), 25.0)),
        (0.0, 1.0, ((0, 1, 0, 0, 0.0), 50.0)),
    ],
)
def test_drivers_who_find_no_legal_spot_may_take_the_accessible_bay(
    tmp_path, violate, enforce, expected
) -> None:
    # 1 REGULAR + 1 HANDICAP bay. A 8h-9h takes the REGULAR spot; B (no placard) at 8:30 finds
    # no legal spot and, if they ignore the sign, takes the HANDICAP bay until 9:30; C at 8:45
    # finds nothing; D (placard) at 10h uses the HANDICAP bay legally.
    rows = [(8, 60, 0), (8.5, 60, 0), (8.75, 30, 0), (10, 60, 1)]
    visitors = trace(tmp_path, "visitors", rows, handicap=True)
    handicap = {"violation_probability": violate, "enforcement_probability": enforce, "fine": 50}
    rec, m, _ = run(build({"REGULAR": 1, "HANDICAP": 1}, [visitors], {"handicap": handicap}))
    f = figures(m, "handicap")
    got = tuple(f[k] for k in ("illegal_parkings", "inspected", "violations", "caught", "fines"))
    assert (got, m["blocked_pct"]) == expected
    assert f["fines_per_day"] == f["fines"]  # a one-day run
    if violate:
        assert rec.amount_cents[1] == 200  # the illegal stay still pays its parking


# =========================================================================== EV charging


def test_ev_charging_bills_energy_time_and_idle_minutes(tmp_path) -> None:
    # 1 EV bay (10 kW) + 1 REGULAR. E1 8h-11h wants 20 kWh: 2 h charging, 1 h idle, 45 min
    # billable after 15 min grace. E2 9h-10h finds the charger busy: REGULAR spot. E3 12h-13h
    # charges 1 h = 10 kWh of its 20.
    evs = trace(tmp_path, "evs", [(8, 180, 1), (9, 60, 1), (12, 60, 1)], ev=True)
    charging = {
        "charger_power_kw": 10,
        "energy_kwh": {"type": "constant", "value": 20},
        "fee_per_kwh": "0.30",
        "fee_per_hour": 1,
        "idle_fee_per_hour": 6,
        "idle_grace_min": 15,
    }
    spots = {"REGULAR": 1, "EV": 1}
    rec, m, comp = run(build(spots, [evs], {"ev_charging": charging}))
    f = figures(m, "ev")
    assert f["sessions"] == 2 and f["parked_without_charger"] == 1
    assert f["kwh"] == pytest.approx(30.0) and f["charge_hours"] == pytest.approx(3.0)
    assert f["idle_hours"] == pytest.approx(1.0) and f["billable_idle_hours"] == pytest.approx(0.75)
    assert f["energy_fees"] == 9.0  # 30 kWh x $0.30
    assert f["time_fees"] == 3.0  # 180 charging minutes at $1/h
    assert f["idle_fees"] == 4.5  # 45 minutes at $6/h
    assert f["charging_revenue"] == 16.5 == f["charging_revenue_per_day"]
    assert len(comp.frames()["charging"]) == 2
    # parking amounts are not touched by charging: the same run without chargers
    plain, _, _ = run(build(spots, [evs], {"handicap": {"enforcement_probability": 0}}))
    np.testing.assert_array_equal(rec.amount_cents, plain.amount_cents)
    assert m["revenue"] == 6.0 + 2.0 + 2.0


# =========================================================================== invariants

STAFF = {
    "name": "staff",
    "rate_per_hour": 3,
    "dwell": {"type": "gamma", "mean": 5, "sd": 2, "unit": "h"},
}
VISITORS = {
    "name": "visitors",
    "rate_per_hour": 14,
    "ev_share": 0.3,
    "handicap_share": 0.05,
    "dwell": {"type": "exponential", "mean": 1.5, "unit": "h"},
}
ALL_PARTS = {
    "monthly": {"holders": 15, "streams": ["staff"], "assigned_spots": 6, "monthly_fee": 90},
    "handicap": {"violation_probability": 0.5, "enforcement_probability": 0.3, "fine": 80},
    "ev_charging": {
        "charger_power_kw": 7,
        "energy_kwh": {"type": "uniform", "low": 4, "high": 30},
        "fee_per_kwh": "0.35",
        "idle_fee_per_hour": 5,
        "idle_grace_min": 10,
    },
}


def busy_scenario() -> dict:
    return build(
        {"REGULAR": 30, "HANDICAP": 6, "EV": 5},
        [STAFF, VISITORS],
        ALL_PARTS,
        horizon_days=3,
        warmup_hours=6,
        seed=11,
    )


def test_model_invariants_with_every_part_on() -> None:
    rec, m, comp = run(busy_scenario())
    t0, t1 = 6 * 3600.0, 3 * 86400.0
    lot = rec.lots[0]
    parked = rec.spot >= 0
    # no spot is ever held by two cars at once
    for spot in np.unique(rec.spot[parked]):
        mine = np.flatnonzero(rec.spot == spot)
        order = mine[np.argsort(rec.entry_t[mine])]
        leave = np.nan_to_num(rec.leave_t[order], nan=np.inf)
        assert (rec.entry_t[order][1:] >= leave[:-1]).all()
    # every staff arrival is admitted on a permit, refused (full), or falls back to paying
    f = figures(m, "monthly")
    staff = rec.drivers.stream == 0
    arrived = int((staff & (rec.drivers.arrival >= t0)).sum())
    fell = f["refused_full"] + f["plates_exhausted"] + f["not_valid"]
    assert arrived == f["entries"] + fell and f["entries"] > 50
    # only holders ever park in assigned spots, and holders never pay
    visits = comp.frames()["visits"]
    holders = visits["driver"].to_numpy()
    in_assigned = np.isin(rec.spot, comp.assigned)
    assert staff[in_assigned].all()
    assert (rec.amount_cents[holders] == 0).all()
    assert set(rec.spot[holders[visits["assigned_spot"]]]) <= set(comp.assigned)
    # waived = what the tariff would have charged those stays (exits after the warm-up)
    after = visits[visits["exit_s"] >= t0]
    price = [lot.tariff.price(a, b) for a, b in zip(after["entry_s"], after["exit_s"], strict=True)]
    assert f["waived_revenue"] == pytest.approx(sum(price) / 100) == after["waived"].sum()
    assert f["exits"] == len(after)
    # revenue counts paying stays only; every figure stays non-negative
    paid = (rec.leave_t >= t0) & (rec.leave_t < t1)
    assert m["revenue"] == pytest.approx(np.nansum(rec.amount_cents[paid]) / 100)
    assert all(v >= 0 for v in figures(m, "monthly").values())
    # EV: energy = power x charging time; charging + idle = the EVs' stays at chargers
    ev = figures(m, "ev")
    assert ev["kwh"] == pytest.approx(7 * ev["charge_hours"])
    types = np.array([s.type for s in lot.spots])
    at_charger = parked & rec.drivers.ev & (types[np.maximum(rec.spot, 0)] == SpotType.EV) & paid
    stays = (rec.leave_t - rec.entry_t)[at_charger].sum() / 3600
    assert ev["charge_hours"] + ev["idle_hours"] == pytest.approx(stays)
    assert ev["sessions"] == at_charger.sum() > 20
    # accessible bays: violations are the stays without placard that left in the window,
    # taken only when no REGULAR spot was free, and caught with the enforcement probability
    h = figures(m, "handicap")
    bay = parked & (types[np.maximum(rec.spot, 0)] == SpotType.HANDICAP)
    illegal = bay & ~rec.drivers.handicap
    assert h["violations"] == (illegal & paid).sum() > 30
    assert h["inspected"] == (bay & paid).sum()
    regular = parked & (types[np.maximum(rec.spot, 0)] == SpotType.REGULAR)
    leave = np.nan_to_num(rec.leave_t, nan=np.inf)
    for e in rec.entry_t[illegal]:
        taken = set(rec.spot[regular & (rec.entry_t <= e) & (leave > e)])
        assert len(taken | set(comp.assigned)) == 30  # every REGULAR spot occupied or held
    assert stats.binomtest(int(h["caught"]), int(h["violations"]), 0.3).pvalue > 0.001
    assert h["fines"] == 80 * h["caught"]


def test_same_seed_same_figures_other_replication_other_figures() -> None:
    data = busy_scenario()
    data["horizon_days"] = 1
    a = figures(run(data)[1], "")
    assert a == figures(run(data)[1], "")
    b = figures(run(data, replication=1)[1], "")
    assert a["monthly.entries"] != b["monthly.entries"] or a["ev.kwh"] != b["ev.kwh"]


# =========================================================================== scenario errors


def test_visit_keys_and_streams_do_not_mix() -> None:
    bad = build({"REGULAR": 2}, [STAFF], {"monthly": {"holders": 2, "streams": ["staff"]}})
    bad["operations"]["permits"]["monthly"]["dwell"] = {"type": "constant", "value": 60}
    with pytest.raises(ScenarioError, match="remove 'dwell'"):
        validate_scenario(bad)
    bad["operations"]["permits"]["monthly"] = {"holders": 2}
    with pytest.raises(ScenarioError, match="give 'streams'"):
        validate_scenario(bad)


@pytest.mark.parametrize(
    ("monthly", "message"),
    [
        ({"holders": 2, "streams": ["staf"]}, "unknown demand stream(s) 'staf'"),
        ({"holders": 2, "streams": ["staff"], "assigned_spots": 2}, "2 REGULAR spots asked"),
        (
            {"holders": 2, "streams": ["staff"], "assigned_spots": 1, "assigned_spot_type": "EV"},
            "need holders' streams with ev_share: 1",
        ),
        (
            {
                "holders": 1,
                "arrival_time": {"type": "constant", "value": 8},
                "dwell": STAFF["dwell"],
            },
            "name them in 'streams'",
        ),
    ],
)
def test_scenario_mistakes_exit_2_with_one_line(tmp_path, monthly, message) -> None:
    data = build({"REGULAR": 1, "EV": 1}, [STAFF], {"monthly": monthly})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_cli_run_writes_permit_figures_to_summary_json(tmp_path) -> None:
    data = busy_scenario()
    data["horizon_days"] = 1
    path = tmp_path / "permits.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["run", str(path), "--replications", "2", "--out", str(out), "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())["metrics"]
    for name in (
        "permits.monthly.entries",
        "permits.monthly.waived_revenue",
        "permits.monthly.assigned_idle_spot_hours",
        "permits.handicap.caught",
        "permits.ev.kwh",
        "permits.ev.charging_revenue",
    ):
        entry = summary[name]
        assert len(entry["values"]) == 2 and entry["ci95"][0] <= entry["mean"] <= entry["ci95"][1]
    assert summary["permits.monthly.entries"]["mean"] > 0
    assert summary["permits.monthly.fee_revenue_per_day"]["sd"] == 0  # sold permits, not random
