"""Runs that begin from a state (issue 11): the conditional remaining-stay law, placement
through the core Lot, holds and closures, determinism, the steady-state start, and bad files."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pytest
from scipy import integrate, stats

from twin import api
from twin.results import occupancy_frame
from twin.scenario.dists import Constant, Empirical, Exponential, Lognormal
from twin.scenario.loader import validate_scenario
from twin.scenario.state import StartState, StateError, load_state
from twin.sim.initial import remaining_stays
from twin.sim.model import ParkingModel, simulate
from twin.sim.snapshot import state_from_record

T0 = datetime(2026, 1, 7, 9, 0)  # a Wednesday


def lot(demand_rate: float = 0.0, dwell=None, **extra) -> dict:
    """A two-level lot; ``demand_rate`` 0 means no arrivals: only the state's cars move."""
    return {
        "name": "two_levels",
        "start": T0.isoformat(),
        "horizon_days": 1,
        "seed": 5,
        "facility": {
            "levels": [
                {"name": "G", "spots": {"REGULAR": 40, "HANDICAP": 4, "EV": 4}},
                {"name": "P1", "spots": {"REGULAR": 50, "COMPACT": 10}},
            ]
        },
        "demand": [
            {
                "name": "cars",
                "rate_per_hour": demand_rate,
                "dwell": dwell or {"type": "exponential", "mean": 60, "unit": "min"},
            }
        ],
        **extra,
    }


def sessions(n: int, elapsed_min: float = 600.0, **fields) -> list[dict]:
    return [{"elapsed_min": elapsed_min, **fields} for _ in range(n)]


def state(*lot_sessions: dict, holds: list[dict] | None = None, when: datetime = T0) -> dict:
    return {
        "time": when.isoformat(),
        "lots": [{"sessions": list(lot_sessions), "holds": holds or []}],
    }


# -- the conditional law --------------------------------------------------------------------
def test_exponential_remaining_stay_is_memoryless():
    law = Exponential(type="exponential", mean=60, unit="min")
    u = np.random.default_rng(1).random(20_000)
    rest = remaining_stays(law, np.full(u.size, 600 * 60.0), u) / 60.0
    # the same law as a fresh stay, though the car has been parked 10 means already
    assert stats.kstest(rest, stats.expon(scale=60).cdf).pvalue > 0.01
    assert rest.mean() == pytest.approx(60, rel=0.03)


@pytest.mark.parametrize("elapsed_h", [0.5, 3.0, 12.0])
def test_lognormal_remaining_stay_matches_the_conditional_law(elapsed_h):
    law = Lognormal(type="lognormal", mean=4, sd=3, unit="h")
    frozen = law.frozen()
    u = np.random.default_rng(2).random(20_000)
    rest = remaining_stays(law, np.full(u.size, elapsed_h * 3600.0), u) / 3600.0
    # E[X - e | X > e] = integral of the survival beyond e / survival at e
    expected = integrate.quad(frozen.sf, elapsed_h, np.inf)[0] / frozen.sf(elapsed_h)
    assert rest.mean() == pytest.approx(expected, rel=0.03)
    cdf = lambda r: 1 - frozen.sf(elapsed_h + r) / frozen.sf(elapsed_h)  # noqa: E731
    assert stats.kstest(rest, cdf).pvalue > 0.01
    # not memoryless: the remaining stay's law is not a fresh stay's
    assert stats.kstest(rest, frozen.cdf).pvalue < 0.01


def test_empirical_and_constant_remaining_stays():
    law = Empirical(type="empirical", values=[10, 20, 30, 40], unit="min")
    u = np.random.default_rng(3).random(4_000)
    rest = remaining_stays(law, np.full(u.size, 25 * 60.0), u) / 60.0
    assert set(np.round(rest).astype(int)) == {5, 15}  # only recorded stays above 25 min
    longer = remaining_stays(law, np.full(u.size, 50 * 60.0), u) / 60.0
    assert longer.mean() == pytest.approx(25, rel=0.1)  # none longer: memoryless, mean 25
    const = Constant(type="constant", value=90, unit="min")
    assert remaining_stays(
        const, np.array([30 * 60.0, 100 * 60.0]), np.array([0.5, 0.5])
    ).tolist() == [
        3600.0,
        0.0,
    ]


# -- placement and departures ---------------------------------------------------------------
def run_from(scenario_data: dict, state_data: dict, replication: int = 0):
    sc = api.start_from(validate_scenario(scenario_data), state_data)
    model = ParkingModel(sc, replication)
    return model, model.run()


def test_state_with_n_sessions_gives_occupancy_n_and_exits_follow_the_conditional_law():
    n = 80
    model, rec = run_from(lot(), state(*sessions(n, elapsed_min=600.0)))
    assert len(model.seeded.sessions) == n and model.seeded.not_placed == 0
    occ = occupancy_frame(rec)
    total = occ[occ["group_kind"] == "total"].set_index("time_s")["occupied"]
    assert total.loc[0.0] == n
    assert total.iloc[-1] < n  # they leave
    ext = rec.external_stays
    assert (ext["entry_t"] == -600 * 60.0).all()
    left = ext["leave_t"].dropna().to_numpy() / 60.0
    # exponential dwell, 10 h parked already: the remaining stays are Exp(60 min) again
    assert len(left) == n
    assert stats.kstest(left, stats.expon(scale=60).cdf).pvalue > 0.01


def test_lognormal_sessions_leave_per_the_law_conditioned_on_their_age():
    dwell = {"type": "lognormal", "mean": 3, "sd": 2, "unit": "h"}
    frozen = Lognormal(type="lognormal", mean=3, sd=2, unit="h").frozen()
    _, rec = run_from(lot(dwell=dwell) | {"horizon_days": 3}, state(*sessions(90, elapsed_min=300)))
    rest = rec.external_stays["leave_t"].to_numpy() / 3600.0
    cdf = lambda r: 1 - frozen.sf(5 + r) / frozen.sf(5)  # noqa: E731
    assert stats.kstest(rest, cdf).pvalue > 0.01
    # a fresh stay's law would be rejected: the draw is really conditioned on the age
    assert stats.kstest(rest, frozen.cdf).pvalue < 0.01


def test_exact_spot_placement_and_level_placement():
    spots = [{"elapsed_min": 30, "spot": s} for s in ("P1-R0005", "G-R0001", "P1-C0009")]
    on_level = [
        {"elapsed_min": 30, "level": "P1", "spot_type": "COMPACT", "vehicle_class": "COMPACT"}
    ]
    model, _ = run_from(lot(), state(*spots, *on_level))
    placed = {model.lots[0].spots[s.spot.index].id for _, s in model.seeded.sessions}
    assert {"P1-R0005", "G-R0001", "P1-C0009"} <= placed
    compact = [s for _, s in model.seeded.sessions if s.vehicle.vclass.name == "COMPACT"]
    assert compact[0].spot.type.name == "COMPACT" and compact[0].spot.level == 1


def test_closed_and_held_spots_are_not_allocated_until_their_end():
    until = T0 + timedelta(hours=6)
    holds = [
        {"status": "closed", "level": "P1"},
        {"status": "held", "level": "G", "spot_type": "REGULAR", "until": until.isoformat()},
    ]
    data = lot(demand_rate=60, dwell={"type": "exponential", "mean": 120, "unit": "min"})
    sc = api.start_from(validate_scenario(data), state(holds=holds))
    rec = simulate(sc, 0)
    fac_level = np.array([s.level for s in rec.lot.spots])
    fac_type = np.array([s.type.name for s in rec.lot.spots])
    parked = rec.spot >= 0
    assert parked.sum() > 100
    # level P1 closed all day: nobody parks there
    assert not (fac_level[rec.spot[parked]] == 1).any()
    # G's regular bays held until 6 h: none taken before, some taken after
    regular_g = (fac_level[rec.spot[parked]] == 0) & (fac_type[rec.spot[parked]] == "REGULAR")
    entries = rec.entry_t[parked]
    assert not (regular_g & (entries < 6 * 3600)).any()
    assert (regular_g & (entries >= 6 * 3600)).any()
    # the others were blocked meanwhile (EV and HANDICAP bays are not open to them)
    assert (rec.outcome == 1).sum() > 0


def test_same_state_and_seed_give_the_same_numbers_and_other_replications_differ():
    data = lot(demand_rate=20, dwell={"type": "lognormal", "mean": 2, "sd": 1, "unit": "h"})
    st = state(*sessions(40, elapsed_min=45), *sessions(20, elapsed_min=200))
    _, a = run_from(data, st)
    _, b = run_from(data, st)
    _, c = run_from(data, st, replication=1)
    fa, fb, fc = (occupancy_frame(r) for r in (a, b, c))
    assert fa.equals(fb)
    assert not fa["occupied"].equals(fc["occupied"])
    # the run's own arrivals are the same as from an empty lot (common random numbers)
    empty = simulate(api.start_from(validate_scenario(data), "empty"), 0)
    assert np.array_equal(a.drivers.arrival, empty.drivers.arrival)


def test_run_from_a_state_through_the_api_counts_the_state_cars():
    data = lot(demand_rate=10)
    st = state(*sessions(70, elapsed_min=20))
    result = api.run(validate_scenario(data), start_state=st, replications=2, frames=("occupancy",))
    occ = result.occupancy
    at0 = occ[(occ["group_kind"] == "total") & (occ["time_s"] == 0)]
    assert (at0["occupied"] == 70).all()
    assert result.scenario.start == T0 and result.scenario.warmup_hours == 0


def test_snapshot_of_a_run_round_trips_through_a_file(tmp_path):
    sc = api.load("scenarios/surface_lot.yaml")
    rec = simulate(sc, 0)
    at = 2 * 86400 + 10 * 3600.0
    snap = state_from_record(rec, at)
    path = tmp_path / "state.json"
    path.write_text(json.dumps(snap.dump()))
    back = load_state(path)
    assert back == snap
    parked_then = ((rec.entry_t <= at) & ~(rec.leave_t <= at) & (rec.spot >= 0)).sum()
    assert back.n_sessions == parked_then > 20
    model = ParkingModel(api.start_from(sc, back), 0)
    model.run()
    placed = sorted(model.lots[0].spots[s.spot.index].id for _, s in model.seeded.sessions)
    assert placed == sorted(s.spot for s in back.lots[0].sessions)


def test_sessions_of_unknown_age_take_ages_from_the_steady_state():
    # a counter says 200 cars are parked, nothing about since when: their ages are drawn
    # from the lot's steady state (length-biased: mean age E[X^2] / (2 E[X]) = 8.2 h here)
    data = lot(demand_rate=30, dwell={"type": "lognormal", "mean": 10, "sd": 8, "unit": "h"})
    data["facility"]["levels"][1]["spots"]["REGULAR"] = 800
    unknown = [{"level": "P1"} for _ in range(200)]
    ages = []
    for r in range(4):
        model, _ = run_from(data, state(*unknown), replication=r)
        assert len(model.seeded.sessions) == 200
        ages += [-s.entry_t / 3600.0 for _, s in model.seeded.sessions]
    assert np.mean(ages) == pytest.approx(8.2, rel=0.08)
    assert min(ages) > 0


# -- steady-state start ---------------------------------------------------------------------
def test_steady_start_has_the_m_g_inf_count_and_length_biased_ages():
    # 30 arrivals/h, stays lognormal mean 10 h sd 8 h, a lot big enough never to fill:
    # cars present ~ Poisson(300), their mean age E[X^2] / (2 E[X]) = (64 + 100) / 20 = 8.2 h
    data = lot(demand_rate=30, dwell={"type": "lognormal", "mean": 10, "sd": 8, "unit": "h"})
    data["facility"]["levels"][1]["spots"]["REGULAR"] = 800
    sc = api.start_from(validate_scenario(data), "steady")
    counts, ages = [], []
    for r in range(12):
        model = ParkingModel(sc, r)
        model.run()
        counts.append(len(model.seeded.sessions))
        ages += [-s.entry_t / 3600.0 for _, s in model.seeded.sessions]
    assert np.mean(counts) == pytest.approx(300, abs=4 * np.sqrt(300 / 12))
    assert np.mean(ages) == pytest.approx(8.2, rel=0.06)
    # an empty start is far below that
    assert ParkingModel(validate_scenario(data), 0).run().external_stays.empty


def test_steady_start_is_deterministic_and_leaves_the_runs_drivers_alone():
    data = lot(demand_rate=10, dwell={"type": "gamma", "mean": 3, "sd": 2, "unit": "h"})
    sc = api.start_from(validate_scenario(data), "steady")
    a, b = simulate(sc, 3), simulate(sc, 3)
    assert a.external_stays.equals(b.external_stays) and len(a.external_stays) > 10
    empty = simulate(validate_scenario(data), 3)
    assert np.array_equal(a.drivers.arrival, empty.drivers.arrival)


# -- bad states -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("{not json", "not valid JSON/YAML"),
        (json.dumps({"lots": []}), "time: Field required"),
        (
            json.dumps(state({"elapsed_min": 3, "entered": "2026-01-07T08:00:00"})),
            "one of 'elapsed_min' or 'entered', not both",
        ),
        (json.dumps(state({"elapsed_min": -3})), "elapsed_min"),
        (json.dumps(state({"elapsed_min": 3, "vehicle_class": "TRUCK"})), "vehicle_class"),
        (json.dumps(state({"elapsed_min": 3, "spot": "Z-999"})), "no spot 'Z-999'"),
        (json.dumps(state({"elapsed_min": 3, "level": "P9"})), "unknown level 'P9'"),
        (
            json.dumps(state({"elapsed_min": 3, "spot": "P1-C0001", "vehicle_class": "LARGE"})),
            "does not fit COMPACT spot P1-C0001",
        ),
        (json.dumps(state({"elapsed_min": 3, "stream": "nobody"})), "unknown stream"),
        (
            json.dumps(state({"elapsed_min": 1e300})),  # used to hang in the conditional draw
            "elapsed_min: Input should be less than or equal to 527040",
        ),
        (
            json.dumps(
                state({"elapsed_min": 3, "spot": "G-R0001"}, {"elapsed_min": 4, "spot": "G-R0001"})
            ),
            "two cars",
        ),
        (
            json.dumps(state(*sessions(11, level="P1", spot_type="COMPACT"))),
            "no free bay on level P1 of type COMPACT",
        ),
        (
            json.dumps(
                state(*sessions(1, level="P1"), holds=[{"status": "closed", "level": "P1"}])
            ),
            "no free bay on level P1",
        ),
        (
            json.dumps(
                state(holds=[{"status": "closed", "level": "G", "until": "2026-01-01T00:00:00"}])
            ),
            "is not after",
        ),
        # an age given as a date is bounded as elapsed_min is (centuries back: a huge age)
        (
            json.dumps(state({"entered": "2024-06-01T08:00:00"})),
            "lots.0.sessions.0.entered (2024-06-01 08:00:00) is more than 366 days before",
        ),
        (
            json.dumps(state({"entered": "1700-01-01T00:00:00"})),
            "is more than 366 days before the state's time",
        ),
        (
            json.dumps(state({"entered": "0001-01-01T00:00:00"})),
            "lots.0.sessions.0.entered: must be between 1678-01-01 and 2262-01-01",
        ),
        (
            json.dumps({"time": T0.isoformat(), "lots": [{"queue": [{"since": "1900-01-01"}]}]}),
            "lots.0.queue.0.since (1900-01-01 00:00:00) is more than 366 days before",
        ),
        (
            json.dumps(state({"entered": "2026-01-07T08:00:00+02:00"})),
            "lots.0.sessions.0.entered: use a local date-time without a UTC offset",
        ),
        (json.dumps(state(when=datetime(9999, 1, 1))), "time: must be between 1678-01-01"),
        (
            json.dumps({"time": "2026-01-07T09:00:00Z", "lots": []}),
            "time: use a local date-time without a UTC offset",
        ),
    ],
)
def test_bad_state_files_fail_with_one_line_naming_the_field(tmp_path, body, needle):
    path = tmp_path / "bad.json"
    path.write_text(body)
    with pytest.raises(StateError) as err:
        api.start_from(validate_scenario(lot()), path)
    message = str(err.value)
    assert needle in message and "\n" not in message and str(path) in message


def test_dates_within_the_bounds_are_taken_and_a_hold_may_last_until_further_notice():
    """The date bounds cut only what cannot be: a car in since 365 days, a queue since
    an hour, a closure until 9999 start a run like their minutes do."""
    body = state(
        {"entered": (T0 - timedelta(days=365)).isoformat(), "level": "G"},
        holds=[{"status": "closed", "level": "P1", "until": "9999-12-31T23:59:59"}],
    )
    body["lots"][0]["queue"] = [{"since": (T0 - timedelta(hours=1)).isoformat()}]
    st = load_state(body)
    assert st.lots[0].sessions[0].entered == T0 - timedelta(days=365)
    rec = simulate(api.start_from(validate_scenario(lot()), st), 0)
    occ = occupancy_frame(rec)
    at0 = occ[(occ["group_kind"] == "total") & (occ["time_s"] == 0)]["occupied"].iloc[0]
    assert at0 == 1


def test_state_time_must_match_an_inline_scenario_start():
    st = StartState.model_validate(state(*sessions(1)))
    data = lot()
    data["initial"] = st.dump()
    data["start"] = (T0 + timedelta(hours=1)).isoformat()
    with pytest.raises(Exception, match="must be the scenario's start"):
        validate_scenario(data)


# -- the command line -----------------------------------------------------------------------
def test_cli_run_from_a_state_file_and_a_bad_one(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    sc_path = tmp_path / "lot.yaml"
    sc_path.write_text(json.dumps(lot(demand_rate=5)))  # JSON is YAML
    good = tmp_path / "state.json"
    good.write_text(json.dumps(state(*sessions(30, elapsed_min=10))))
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["run", str(sc_path), "--start-state", str(good), "--replications", "2"]
    result = runner.invoke(app, [*args, "--days", "0.25", "--out", str(out), "--format", "csv"])
    assert result.exit_code == 0, result.output
    import pandas as pd

    occ = pd.read_csv(out / "occupancy.csv")
    first = occ[(occ["group_kind"] == "total") & (occ["time_s"] == 0)]
    assert (first["occupied"] == 30).all()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(state({"elapsed_min": 3, "level": "P7"})))
    result = runner.invoke(app, ["run", str(sc_path), "--start-state", str(bad)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "unknown level 'P7'" in lines[0] and "Traceback" not in result.output
    steady = runner.invoke(app, ["run", str(sc_path), "--start-state", "steady", "--days", "0.1"])
    assert steady.exit_code == 0, steady.output
    # a car that entered centuries ago (a typo in the year) is one line too, not a huge age
    old = tmp_path / "old.json"
    old.write_text(json.dumps(state({"entered": "1726-01-07T08:00:00"})))
    result = runner.invoke(app, ["run", str(sc_path), "--start-state", str(old)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "old.json" in lines[0] and "sessions.0.entered" in lines[0] and "366 days" in lines[0]


def test_docs_state_reference_is_current():
    import re
    from pathlib import Path

    from twin.scenario.reference import state_reference

    text = (Path(__file__).resolve().parents[2] / "docs" / "start_state.md").read_text()
    match = re.search(
        r"<!-- state-reference:start -->\n(.*?)<!-- state-reference:end -->", text, re.S
    )
    assert match, "docs/start_state.md lost its state-reference markers"
    assert match.group(1) == state_reference(), (
        "docs/start_state.md's state table is stale: run `python -m twin.scenario.reference state` "
        "and paste it between the markers"
    )


def test_initial_steady_in_a_scenario_file_keeps_its_own_warmup():
    data = lot(demand_rate=10, dwell={"type": "lognormal", "mean": 5, "sd": 3, "unit": "h"})
    data |= {"initial": "steady", "warmup_hours": 2}
    sc = validate_scenario(data)
    assert sc.initial == "steady" and sc.warmup_hours == 2
    rec = simulate(sc, 0)
    occ = occupancy_frame(rec)
    at0 = occ[(occ["group_kind"] == "total") & (occ["time_s"] == 0)]["occupied"].iloc[0]
    assert at0 == len(rec.external_stays) > 20  # ~ 10/h x 5 h parked at the start
