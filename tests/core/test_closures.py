"""Spot status owned by the core: claims, closures (``facility.closures``) and their figures.

The lot decides every status that is not a session's from the claims on a spot, so holds,
closures and feeds cannot undo each other; the Closures component drives that one path on a
timetable without touching the per-car fast paths; the figures it yields are exact.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest

from twin.core.errors import InvalidTransition, LotFull
from twin.core.facility import Level, Spot
from twin.core.lot import Lot
from twin.core.types import SpotStatus, SpotType, Vehicle
from twin.results import metrics
from twin.scenario.loader import ScenarioError, load_scenario, validate_scenario
from twin.scenario.reference import closures_reference
from twin.sim.closures import Closures
from twin.sim.components import MOMENTS, acts_on, build_components
from twin.sim.model import ParkingModel

ROOT = Path(__file__).resolve().parents[2]
AVAILABLE, OCCUPIED = SpotStatus.AVAILABLE, SpotStatus.OCCUPIED
RESERVED, CLOSED = SpotStatus.RESERVED, SpotStatus.MAINTENANCE


def small_lot(n: int = 4, levels: int = 1, strategy: str = "nearest") -> Lot:
    spots = [
        Spot(index=i, id=f"S{i}", level=i % levels, type=SpotType.REGULAR, distance=float(i))
        for i in range(n)
    ]
    return Lot(spots, [Level(k, f"L{k}") for k in range(levels)], strategy=strategy)


# ------------------------------------------------------------------------- the core's claims


@pytest.mark.parametrize("strategy", ["nearest", "spread", "random_free"])
def test_a_hold_ending_during_a_closure_leaves_the_spot_closed(strategy):
    lot = small_lot(strategy=strategy)
    held = lot.hold_spot(SpotType.REGULAR, 0.0)  # a permit or reservation hold (unnamed)
    assert held is not None and held.status is RESERVED
    lot.close([s.index for s in lot.spots], 10.0, "closure")
    assert held.status is CLOSED and lot.n_available == 0
    lot.set_status(held.index, AVAILABLE, 20.0)  # the hold ends, as permits/reservations do
    assert held.status is CLOSED, "a hold ending must not reopen a closed spot"
    with pytest.raises(LotFull):
        lot.allocate(Vehicle("walk-in"), 21.0)
    lot.reopen([s.index for s in lot.spots], 30.0, "closure")
    assert all(s.status is AVAILABLE for s in lot.spots) and lot.n_available == 4
    assert sorted(s.index for s in lot.free_spots()) == [0, 1, 2, 3]
    assert lot.strategy.index_entries() <= len(lot.spots)


def test_a_closure_of_an_occupied_spot_waits_for_the_car_and_is_logged_and_hooked():
    lot = small_lot(2)
    seen = []
    lot.add_hook(lambda spot, old, new, t, reason: seen.append((spot.index, old, new, t, reason)))
    s = lot.allocate(Vehicle("a"), 0.0)
    with pytest.raises(InvalidTransition):  # unnamed: a session never loses its spot
        lot.set_status(s.spot.index, CLOSED, 1.0)
    lot.close([0, 1], 1.0, "sweep")
    assert s.spot.status is OCCUPIED and lot.spots[1].status is CLOSED
    lot.release(s.ticket, 5.0)
    assert s.spot.status is CLOSED and lot.n_occupied == 0 and lot.n_closed == 2
    lot.reopen([0, 1], 9.0, "sweep")
    assert lot.n_available == 2
    assert seen == [
        (1, AVAILABLE, CLOSED, 1.0, "sweep"),
        (0, OCCUPIED, CLOSED, 5.0, "release"),
        (0, CLOSED, AVAILABLE, 9.0, "sweep"),
        (1, CLOSED, AVAILABLE, 9.0, "sweep"),
    ]
    assert lot.status_log == [(t, i, old, new, why) for i, old, new, t, why in seen]


def test_named_claims_layer_and_only_their_owner_lifts_them():
    lot = small_lot(1)
    lot.close([0], 0.0, "closure")
    lot.close([0], 1.0, "feed:unknown")  # the live twin: a sensor says 'unknown'
    lot.reopen([0], 2.0, "closure")
    assert lot.spots[0].status is CLOSED  # still unknown to the feed
    assert lot.claims_of(0) == {"feed:unknown": CLOSED}
    lot.set_status(0, RESERVED, 3.0, reason="booking")
    lot.reopen([0], 4.0, "feed:unknown")
    assert lot.spots[0].status is RESERVED
    session = lot.allocate_spot(0, Vehicle("holder"), 5.0)  # the holder takes it: hold ends
    lot.release(session.ticket, 6.0)
    assert lot.spots[0].status is AVAILABLE and lot.claims_of(0) == {}


# ------------------------------------------------------------------------- the scenario key

SCENARIO = {
    "name": "closures",
    "horizon_days": 3,
    "seed": 7,
    "facility": {
        "strategy": "first_fit",
        "levels": [
            {"name": "A", "spots": {"REGULAR": 20}},
            {"name": "B", "spots": {"REGULAR": 10}},
        ],
        "closures": [{"name": "deck", "levels": ["B"], "start": "10:00", "end": "12:00"}],
    },
    "demand": [
        {
            "name": "cars",
            "rate_per_hour": 2.0,
            "dwell": {"type": "exponential", "mean": 1, "unit": "h"},
        }
    ],
}


def with_closures(closures: list[dict], **facility) -> dict:
    data = copy.deepcopy(SCENARIO)
    data["facility"]["closures"] = closures
    data["facility"].update(facility)
    return data


@pytest.mark.parametrize(
    ("closure", "message"),
    [
        ({"levels": ["Z"], "start": "10:00", "end": "11:00"}, "unknown level 'Z'"),
        ({"levels": ["A"], "spots": ["A-R0001"], "start": "10:00", "end": "11:00"},
         "exactly one of levels"),
        ({"levels": ["A"], "start": "10:00", "end": "10:00"}, "no length"),
        ({"levels": ["A"], "start": "25:00", "end": "10:00"}, "HH:MM"),
        ({"levels": ["A"], "start": "10:00", "end": "11:00", "days": ["funday"]}, "unknown day"),
        ({"levels": ["A"], "start": "10:00", "end": "11:00", "colour": "red"}, "colour"),
    ],
)  # fmt: skip
def test_bad_closures_are_one_line_errors_naming_the_field(closure, message):
    with pytest.raises(ScenarioError) as err:
        validate_scenario(with_closures([closure]), "x.yaml")
    text = str(err.value)
    assert "facility" in text and "closures" in text and message in text
    assert len(text.splitlines()) == 1
    assert "Traceback" not in text


def test_an_unknown_spot_id_is_named():
    sc = validate_scenario(
        with_closures([{"spots": ["B-R0099"], "start": "10:00", "end": "11:00"}])
    )
    with pytest.raises(ValueError, match=r"facility.closures\[0\].spots: unknown spot id"):
        ParkingModel(sc).run()


def test_closed_level_is_never_entered_and_closed_hours_are_exact():
    sc = validate_scenario(SCENARIO)
    rec = ParkingModel(sc).run()
    lot = rec.lot
    on_b = np.array([lot.spots[s].level == 1 if s >= 0 else False for s in rec.spot])
    hour = (rec.entry_t % 86400.0) / 3600.0
    in_window = (hour >= 10.0) & (hour < 12.0)
    assert not (on_b & in_window).any(), "a car took a bay on the closed level"
    # first_fit and light demand: level B (spots 20..29) is never occupied at 10:00, so it is
    # closed exactly 10 spots x 2 h on each of the 3 days; the figure is that, exactly
    assert not on_b.any()
    got = metrics(rec)
    assert got["closed_spot_h_per_day"] == pytest.approx(20.0, abs=1e-9)
    assert got["held_spot_h_per_day"] == 0.0
    assert got["no_free_spot_pct"] == 0.0
    assert sum(c[3] is CLOSED for c in lot.status_log) == 30


def test_a_full_closure_makes_no_free_spot_time_exact():
    data = with_closures(
        [{"levels": ["A", "B"], "start": "06:00", "end": "09:00", "days": "weekdays"}]
    )
    data["start"] = "2026-01-05T00:00:00"  # a Monday: three weekdays
    rec = ParkingModel(validate_scenario(data)).run()
    got = metrics(rec)
    # the whole lot closed 3 h a day (cars parked at 06:00 keep their bays: still no free one)
    assert got["no_free_spot_pct"] == pytest.approx(100.0 * 3 / 24, abs=1e-9)


def test_a_closure_that_never_happens_changes_no_per_car_record():
    """A component with nothing to do for a car leaves the per-car paths (and numbers) alone."""
    plain = ParkingModel(load_scenario(ROOT / "scenarios" / "downtown_garage.yaml")).run()
    data_path = ROOT / "scenarios" / "downtown_garage.yaml"
    sc = load_scenario(
        data_path,
        {
            "facility.closures": [
                {"levels": ["P4"], "start": "08:00", "end": "12:00", "dates": ["2030-01-01"]}
            ]
        },
    )
    model = ParkingModel(sc)
    assert [type(c) for c in model.components] == [Closures]
    closed = model.run()
    for column in ("entry_t", "leave_t", "spot", "amount_cents", "exit_t", "outcome"):
        np.testing.assert_array_equal(getattr(plain, column), getattr(closed, column))


def test_closures_act_on_no_per_car_moment_and_are_declared():
    assert not any(acts_on(Closures.__new__(Closures), m) for m in MOMENTS)
    assert not Closures.keeps_sessions
    assert build_components(validate_scenario(SCENARIO))[0].name == "closures"


def test_the_shipped_closures_scenario_closes_spots():
    sc = load_scenario(ROOT / "scenarios" / "downtown_closures.yaml", {"replications": 1})
    assert len(sc.lot_specs[0].facility.closures) == 3


def test_closures_reference_in_docs_is_current():
    text = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    match = re.search(
        r"<!-- closures-reference:start -->\n(.*?)<!-- closures-reference:end -->", text, re.S
    )
    assert match and match.group(1) == closures_reference(), (
        "docs/scenarios.md's closures table is stale: regenerate it with "
        "`python -m twin.scenario.reference closures`"
    )


# ------------------------------------------------------------------------- random_free in a run


def test_random_free_is_seeded_from_the_replication_streams():
    data = copy.deepcopy(SCENARIO)
    data["facility"]["strategy"] = "random_free"
    data["facility"]["closures"] = []
    sc = validate_scenario(data)
    a, b = ParkingModel(sc, 0).run(), ParkingModel(sc, 0).run()
    c = ParkingModel(sc, 1).run()
    np.testing.assert_array_equal(a.spot, b.spot)
    assert not np.array_equal(a.spot[:20], c.spot[:20])
    # not the first-fit order: some car took a bay other than the lowest free one
    assert (a.spot[a.spot >= 0] > 0).any()


# ------------------------------------------------------------------------- the live twin's path


def test_feed_statuses_go_through_the_same_claims():
    lot = small_lot(3)
    lot.close([0, 1, 2], 0.0, "closure")  # a scheduled closure
    lot.apply_feed_status(0, "unknown", 1.0)
    lot.apply_feed_status(0, "free", 2.0)  # the sensor is back and sees no car...
    assert lot.spots[0].status is CLOSED  # ...but the closure still holds
    lot.reopen([0, 1, 2], 3.0, "closure")
    lot.apply_feed_status(1, "closed", 4.0)
    assert [s.status for s in lot.spots] == [AVAILABLE, CLOSED, AVAILABLE]
    session = lot.apply_feed_status(2, "occupied", 5.0)
    assert session is not None and lot.spots[2].status is OCCUPIED
    assert lot.apply_feed_status(2, "occupied", 6.0) is None  # already occupied: no new car
    lot.apply_feed_status(2, "free", 7.0)
    assert lot.spots[2].status is AVAILABLE and lot.open_sessions == 0
    lot.apply_feed_status(1, "unknown", 8.0)  # closed -> unknown replaces, never stacks
    assert lot.claims_of(1) == {"feed:unknown": CLOSED}
    with pytest.raises(ValueError, match="allowed"):
        lot.apply_feed_status(0, "broken", 9.0)


def test_closures_with_permits_and_reservations_never_let_a_car_into_a_closed_bay():
    """Holds (assigned permits, reservations) ending or arriving during a closure: the run
    completes and nobody - driver or holder - starts a stay in a closed bay."""
    sc = load_scenario(
        ROOT / "scenarios" / "downtown_operations.yaml",
        {
            "horizon_days": 2.5,
            "facility.closures": [
                {"levels": ["G", "P1", "P2", "P3", "P4"], "start": "09:00", "end": "11:00"}
            ],
        },
    )
    rec = ParkingModel(sc).run()
    hour = lambda t: (np.asarray(t, dtype=float) % 86400.0) / 3600.0 + 12.0  # noqa: E731
    # the run starts at 12:00: core second t is (t/3600 + 12) o'clock
    in_window = lambda t: ((hour(t) % 24.0) >= 9.0) & ((hour(t) % 24.0) < 11.0)  # noqa: E731
    assert not in_window(rec.entry_t[rec.spot >= 0]).any()
    ext = rec.external_stays
    assert ext is not None and len(ext) and not in_window(ext["entry_t"]).any()
    got = metrics(rec)
    assert got["held_spot_h_per_day"] > 0.0 and got["closed_spot_h_per_day"] > 0.0
    assert got["no_free_spot_pct"] > 0.0
