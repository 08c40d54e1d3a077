"""Claims at the gates (``claims:``, twin.sim.claims): the core's strategies in the main model.

What is checked: off by default (no figure, no change); every strategy on a small lot whose
last units are contended keeps the invariants (never a unit granted twice, every parked car
holds a granted unit, no claim left unanswered), refuses at the last units and differs from the
others the way its mechanism says (row lock: waits; version check: conflicts; counter: neither;
queue: waits for the consumer); with every latency at zero the run is the run without claims;
same seed, same numbers; and the schema's refusals and documentation.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest

from twin.core.reservations import RS
from twin.core.types import SpotType
from twin.results import metrics
from twin.scenario.claims import ClaimsSpec
from twin.scenario.loader import ScenarioError, validate_scenario
from twin.scenario.locking import LockingStudySpec
from twin.scenario.reference import claims_reference
from twin.sim.model import PARKED, ParkingModel

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ("pessimistic", "optimistic", "atomic", "queue")

#: 12 spots, ~1.7 arrivals a second staying ~8 s on average: full most of the time, so claims
#: race for the last units; 40 ms round trips make claims overlap.
CONTENDED = {
    "name": "contended",
    "horizon_days": 0.0125,  # 18 min
    "warmup_hours": 0.05,
    "seed": 5,
    "facility": {"levels": [{"name": "G", "spots": {"REGULAR": 12}}]},
    "demand": [
        {
            "name": "cars",
            "rate_per_hour": 6000,
            "dwell": {"type": "exponential", "mean": 8, "unit": "s"},
        }
    ],
}
SLOW = {"rtt_ms": 40.0, "app_ms": 5.0, "commit_ms": 5.0, "consumer_ms": 20.0}


def _scenario(base: dict, **claims: object):
    data = copy.deepcopy(base)
    if claims:
        data["claims"] = claims
    return validate_scenario(data)


def _run(sc, replication: int = 0):
    model = ParkingModel(sc, replication)
    rec = model.run()
    return model, rec, metrics(rec)


def test_off_by_default_and_no_claim_figures() -> None:
    sc = _scenario(CONTENDED)
    assert sc.claims is None
    _, _, m = _run(sc)
    assert not [k for k in m if k.startswith("claims.")]


@pytest.fixture(scope="module")
def contended() -> dict[str, tuple]:
    """Each strategy's run of the contended lot, once for the module's tests."""
    return {s: _run(_scenario(CONTENDED, strategy=s, **SLOW)) for s in STRATEGIES}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_invariants_under_contention(strategy: str, contended: dict[str, tuple]) -> None:
    model, rec, m = contended[strategy]
    claims = next(c for c in model.components if c.name == "claims")
    lot = model.lot
    assert m["claims.double_bookings"] == 0
    # every car still parked holds a granted unit; the store never holds more than it has
    assert lot.n_occupied <= claims.core.held(0) <= lot.capacity
    parked_now = np.flatnonzero((rec.outcome == PARKED) & np.isnan(rec.leave_t))
    assert len(parked_now) == lot.n_occupied
    assert set(claims.holding) == set(parked_now.tolist())  # exactly the parked cars hold units
    # the last units are contended: some claims are refused because the row is full
    assert m["claims.refused_pct"] + m["claims.failed_pct"] > 1.0
    assert m["claims.unfinished"] <= 2  # only claims begun in the last moments
    # a refused driver is a blocked one (no patience in this scenario)
    assert m["blocked_pct"] > 1.0


def test_strategies_differ_by_their_mechanism(contended: dict[str, tuple]) -> None:
    seen = {strategy: run[2] for strategy, run in contended.items()}
    # a row lock makes claims wait for each other; a version check makes them conflict
    assert seen["pessimistic"]["claims.waited_pct"] > 5.0
    assert seen["pessimistic"]["claims.conflicts_per_day"] == 0
    assert seen["optimistic"]["claims.conflicts_per_day"] > 0
    optimistic = seen["optimistic"]
    assert 0 < optimistic["claims.retries_per_day"] <= optimistic["claims.conflicts_per_day"]
    assert seen["optimistic"]["claims.waited_pct"] == 0
    # the counter neither waits nor conflicts, and answers fastest
    assert seen["atomic"]["claims.waited_pct"] == 0
    assert seen["atomic"]["claims.conflicts_per_day"] == 0
    fastest = min(seen, key=lambda s: seen[s]["claims.wait_ms.mean"])
    assert fastest == "atomic"
    # the queue's one consumer makes requests wait for each other
    assert seen["queue"]["claims.waited_pct"] > 0
    # the claim's time is time at the gate: the row lock's is the longest here
    assert seen["pessimistic"]["claims.wait_ms.p95"] > seen["atomic"]["claims.wait_ms.p95"]


ZERO = {
    "rtt_ms": 0.0,
    "app_ms": 0.0,
    "statement_ms": 0.0,
    "commit_ms": 0.0,
    "redis_op_ms": 0.0,
    "consumer_ms": 0.0,
    "backoff_base_ms": 0.0,
}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_claims_that_take_no_time_change_nothing(strategy: str) -> None:
    """With every latency at zero a claim is answered at the instant it is made, so the run is
    the run without claims: same drivers (common random numbers), same figures."""
    data = yaml_scenario("surface_lot.yaml")
    data["horizon_days"] = 2
    data["replications"] = 1
    off = _run(validate_scenario(data))[2]
    on = _run(_scenario(data, strategy=strategy, **ZERO))[2]
    assert on["claims.double_bookings"] == 0
    assert on["claims.wait_ms.max"] == 0
    for name in ("arrivals", "parked", "blocked_pct", "reneged_pct", "revenue_per_day"):
        assert on[name] == off[name], name
    assert on["occupancy.mean"] == pytest.approx(off["occupancy.mean"], abs=1e-12)


def test_waiting_drivers_claim_freed_units() -> None:
    """``when_full: wait``: drivers in the line get freed spots through claims of their own."""
    data = copy.deepcopy(CONTENDED)
    data["behaviour"] = {
        "when_full": "wait",
        "patience": {"type": "exponential", "mean": 20, "unit": "s"},
    }
    model, rec, m = _run(_scenario(data, strategy="pessimistic", **SLOW))
    claims = next(c for c in model.components if c.name == "claims")
    assert m["claims.double_bookings"] == 0
    assert model.lot.n_occupied <= claims.core.held(0) <= model.lot.capacity
    waited = (rec.entry_t - rec.gate_t) > 1.0  # parked well after the store first answered
    assert waited.sum() > 10
    assert m["reneged_pct"] > 0


def test_same_seed_same_numbers(contended: dict[str, tuple]) -> None:
    again = _run(_scenario(CONTENDED, strategy="optimistic", **SLOW))[2]
    np.testing.assert_equal(again, contended["optimistic"][2])  # NaN equals NaN here


def test_claims_keep_the_drivers() -> None:
    """Claims draw from streams of their own: the arrivals are the run without claims'."""
    off = _run(_scenario(CONTENDED))[1]
    on = _run(_scenario(CONTENDED, strategy="queue", **SLOW))[1]
    assert (on.drivers.arrival == off.drivers.arrival).all()
    assert (on.drivers.dwell == off.drivers.dwell).all()


def test_schema_refuses_what_claims_do_not_cover() -> None:
    data = copy.deepcopy(CONTENDED)
    data["claims"] = {"strategy": "row-lock"}
    with pytest.raises(ScenarioError, match=r"claims\.strategy"):
        validate_scenario(data)
    ops = yaml_scenario("downtown_operations.yaml")
    ops["claims"] = {"strategy": "atomic"}
    with pytest.raises(ScenarioError, match="permits"):
        validate_scenario(ops)
    del ops["operations"]["permits"]  # reservations claim through the store
    assert validate_scenario(ops).claims is not None


def test_an_absurd_latency_is_refused_not_run() -> None:
    """rtt_ms: 1e300 used to run: every claim unanswered, no car parked, revenue $0."""
    data = copy.deepcopy(CONTENDED)
    data["claims"] = {"strategy": "pessimistic", "rtt_ms": 1e300}
    with pytest.raises(ScenarioError, match=r"claims\.rtt_ms: .*less than or equal to 60000"):
        validate_scenario(data)
    data["claims"]["rtt_ms"] = 60_000
    assert validate_scenario(data).claims.rtt_ms == 60_000
    study = LockingStudySpec().model_dump()
    study["network"]["rtt_ms"] = 1e9
    with pytest.raises(ValueError, match="less than or equal to 60000"):
        LockingStudySpec.model_validate(study)


def test_defaults_are_the_locking_studys() -> None:
    study = LockingStudySpec()
    claims = ClaimsSpec(strategy="atomic")
    pairs = {
        "rtt_ms": study.network.rtt_ms,
        "app_ms": study.client.app_ms,
        "service_cv": study.service_cv,
        "connections": study.database.connections,
        "workers": study.database.workers,
        "statement_ms": study.database.statement_ms,
        "commit_ms": study.database.commit_ms,
        "statements_in_lock": study.pessimistic.statements_in_lock,
        "max_retries": study.optimistic.max_retries,
        "backoff_base_ms": study.optimistic.backoff_base_ms,
        "backoff_cap_ms": study.optimistic.backoff_cap_ms,
        "redis_servers": study.atomic.servers,
        "redis_op_ms": study.atomic.op_ms,
        "consumer_ms": study.queue.consumer_ms,
    }
    assert {k: getattr(claims, k) for k in pairs} == pairs


def test_reference_in_docs_is_current() -> None:
    text = (ROOT / "docs" / "locking.md").read_text()
    match = re.search(r"<!-- claims reference -->\n(.*?)<!-- /claims reference -->", text, re.S)
    assert match, "docs/locking.md lost its claims reference block"
    assert match.group(1) == claims_reference(), (
        "regenerate it: python -m twin.scenario.reference claims"
    )


def yaml_scenario(name: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / "scenarios" / name).read_text())


def test_a_grant_no_spot_fits_goes_back() -> None:
    """A lot's row counts all its spots: a car granted a unit whose only free spot is a
    motorcycle bay is refused, and its unit goes back to the store."""
    data = copy.deepcopy(CONTENDED)
    data["facility"] = {"levels": [{"name": "G", "spots": {"REGULAR": 3, "MOTORCYCLE": 3}}]}
    model, rec, m = _run(_scenario(data, strategy="atomic", **SLOW))
    claims = next(c for c in model.components if c.name == "claims")
    assert m["claims.no_spot_per_day"] > 0
    assert m["claims.double_bookings"] == 0
    # the motorcycle bays stay empty and hold no unit: only the parked cars hold units
    assert model.lot.n_occupied <= 3
    assert set(claims.holding) == set(
        np.flatnonzero((rec.outcome == PARKED) & np.isnan(rec.leave_t)).tolist()
    )


@pytest.mark.parametrize("strategy", ["pessimistic", "atomic"])
def test_a_start_states_cars_hold_units(strategy: str) -> None:
    """``initial: steady``: the lot begins full of cars; their units are granted at time 0
    and go back through the store as they leave, so walk-ins claim them afterwards."""
    data = yaml_scenario("surface_lot.yaml")
    data.update(horizon_days=1, replications=1, initial="steady", start="2026-01-05T11:00:00")
    model, rec, m = _run(_scenario(data, strategy=strategy))
    claims = next(c for c in model.components if c.name == "claims")
    lot = model.lot
    seeded_left = sum(1 for _, s in model.seeded.sessions if s.exit_t is None)
    assert len(model.seeded.sessions) > 20  # the start state did place cars
    assert m["claims.double_bookings"] == 0
    assert lot.n_occupied <= claims.core.held(0) <= lot.capacity
    # units are held by the drivers still parked and the start state's cars still there
    parked_now = np.flatnonzero((rec.outcome == PARKED) & np.isnan(rec.leave_t))
    assert set(claims.holding) == set(parked_now.tolist())
    assert lot.n_occupied == len(parked_now) + seeded_left
    assert m["parked"] > 100  # walk-ins got the units the start state's cars gave back


# -- app reservations claim through the same store --------------------------------------------

#: The contended lot with app reservations racing the gates for its last units: a booking
#: every ~6 s for a window starting ~20 s later, held 6 s before its start, up to 6 of the
#: 12 spots held at once; half the holders come early, before their hold.
RESERVED = copy.deepcopy(CONTENDED) | {
    "operations": {
        "reservations": {
            "rate_per_hour": 600,
            "lead_time": {"type": "exponential", "mean": 20, "unit": "s"},
            "window": {"type": "exponential", "mean": 10, "unit": "s"},
            "dwell": {"type": "exponential", "mean": 8, "unit": "s"},
            "spot_types": {"REGULAR": 1.0},
            "reserved_share": {"REGULAR": 0.5},
            "accounts": 100000,
            "hold_lead_min": 0.1,
            "grace_min": 0.2,
            # half the holders come up to 30 s early, most before their hold starts: they
            # claim a unit at the gate
            "early_arrival_min": 0.5,
            "arrival_offset": {
                "early_share": 0.5,
                "early": {"type": "uniform", "low": 0, "high": 30, "unit": "s"},
                "late": {"type": "exponential", "mean": 2, "unit": "s"},
            },
            "cancel_probability": 0.1,
            "no_show_probability": 0.1,
        }
    }
}


@pytest.fixture(scope="module")
def reserved() -> dict[str, tuple]:
    """Each strategy's run of the contended lot with reservations, once for the module."""
    return {s: _run(_scenario(RESERVED, strategy=s, **SLOW)) for s in STRATEGIES}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_lanes_and_app_reservations_race_for_the_last_units(
    strategy: str, reserved: dict[str, tuple]
) -> None:
    model, rec, m = reserved[strategy]
    claims = next(c for c in model.components if c.name == "claims")
    res = next(c for c in model.components if c.name == "reservations")
    lot, book = model.lot, res.book
    assert m["claims.double_bookings"] == 0
    # both kinds of claimant claimed, and both met a full row
    assert m["claims.app.per_day"] > 1000 and m["reservations.arrivals"] > 30
    assert m["claims.refused_pct"] + m["claims.failed_pct"] > 1.0
    assert m["claims.app.refused_pct"] + m["claims.app.failed_pct"] > 1.0
    # every parked car and every held spot holds a granted unit, none more than the row has
    held = sum(book.held(t) for t in SpotType)
    assert lot.n_occupied + held <= claims.core.held(0) <= lot.capacity
    # the units the app holds are exactly those of the holds and of the holders parked now
    assert set(res.units.values()) == claims.app_units
    holding = {r.id for r in book if r.hold_t is not None or r.status is RS.ARRIVED}
    assert set(res.units) == holding
    assert held == sum(1 for r in book if r.hold_t is not None)
    # the gates' units are exactly the parked walk-ins'
    parked_now = np.flatnonzero((rec.outcome == PARKED) & np.isnan(rec.leave_t))
    assert set(claims.holding) == set(parked_now.tolist())
    assert lot.n_occupied == len(parked_now) + sum(1 for r in book if r.status is RS.ARRIVED)
    # a refused hold waits like one the lot had no spot for; a holder refused at the gate
    # without a held spot is bumped
    assert m["reservations.hold_waits"] > 0
    assert m["reservations.bumped"] > 0
    assert m["claims.app.unfinished"] <= 2


def test_reservation_claims_same_seed_same_numbers(reserved: dict[str, tuple]) -> None:
    again = _run(_scenario(RESERVED, strategy="pessimistic", **SLOW))[2]
    np.testing.assert_equal(again, reserved["pessimistic"][2])


def test_without_reservations_no_app_figures(contended: dict[str, tuple]) -> None:
    assert not [k for k in contended["atomic"][2] if k.startswith("claims.app.")]


def test_reservations_claims_keep_the_bookings() -> None:
    """The bookings and their holders' behaviour are drawn as without claims (CRN)."""
    off = ParkingModel(_scenario(RESERVED), 0)
    off.run()
    on = ParkingModel(_scenario(RESERVED, strategy="atomic", **SLOW), 0)
    on.run()
    a, b = (next(c for c in m.components if c.name == "reservations").draws for m in (off, on))
    for field in ("request_t", "start", "end", "fate", "arrive_t", "leave_t"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


@pytest.mark.parametrize("strategy", ["pessimistic"])
def test_reservation_claims_that_take_no_time_change_nothing(strategy: str) -> None:
    """With every latency at zero, holds and holders get their units at the instant they ask,
    in the book's order (a waiting hold before the walk-ins' line): the downtown garage's week
    with its reservations gives the run without claims' drivers, revenue and reservation
    figures (a shorter run does not reach the moments where the order matters)."""
    data = yaml_scenario("downtown_operations.yaml")
    data["operations"] = {"reservations": data["operations"]["reservations"]}
    data["replications"] = 1
    off = _run(validate_scenario(data))[2]
    on = _run(_scenario(data, strategy=strategy, **ZERO))[2]
    assert on["claims.double_bookings"] == 0
    assert on["claims.app.per_day"] > 10
    names = ["arrivals", "parked", "blocked_pct", "reneged_pct", "revenue_per_day"]
    names += [k for k in off if k.startswith("reservations.")]
    for name in names:
        assert on[name] == off[name] or (np.isnan(on[name]) and np.isnan(off[name])), name
    assert on["occupancy.mean"] == pytest.approx(off["occupancy.mean"], abs=1e-12)
