"""Permits and special spots: monthly permits with assigned spots, accessible-bay enforcement,
EV charging bills. Expected figures are worked out by hand from the rules in
``twin/core/permits.py``'s docstring.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from twin.core.errors import (
    InvalidTransition,
    LotFull,
    NoCompatibleSpot,
    ParkingError,
    UnknownTicket,
)
from twin.core.facility import Level, build_spots
from twin.core.lot import Lot
from twin.core.permits import (
    AlreadyInside,
    ChargingPolicy,
    ChargingStations,
    HandicapEnforcement,
    HandicapEnforcer,
    MonthlyPermit,
    PermitRegistry,
    charge_bill,
)
from twin.core.pricing import RateTable, Tariff
from twin.core.types import SpotStatus, SpotType, Vehicle, VehicleClass
from twin.scenario.permits import PermitsSpec

ST = SpotType
REG = ST.REGULAR
H = 3600.0
MIN = 60.0
DAY = 86_400.0


def make_lot(counts: dict[SpotType, int], tariff: Tariff | None = None) -> Lot:
    level = Level(0, "L0")
    return Lot(build_spots([(level, counts)]), [level], tariff=tariff)


def tariff_2_per_hour() -> Tariff:
    return Tariff("t", RateTable(period_minutes=60, period_cents=200))


def permit(pid="P1", plates=("AB-123",), start=0.0, end=30 * DAY, spot=None) -> MonthlyPermit:
    return MonthlyPermit(pid, frozenset(plates), start, end, assigned_spot=spot)


# =========================================================================== monthly permits


def test_permit_validation():
    with pytest.raises(ValueError, match="plate"):
        MonthlyPermit("P", frozenset(), 0.0, 1.0)
    with pytest.raises(ValueError, match="after valid_from"):
        MonthlyPermit("P", frozenset({"A"}), 10.0, 10.0)
    with pytest.raises(ValueError, match="permit_id"):
        MonthlyPermit("", frozenset({"A"}), 0.0, 1.0)


def test_plates_are_recognised_only_inside_the_validity_window():
    reg = PermitRegistry(make_lot({REG: 2}))
    reg.add(permit(plates=("AB-123", "CD-456"), start=DAY, end=31 * DAY), 0.0)
    assert reg.recognise("AB-123", DAY - 1) is None
    assert reg.recognise("CD-456", DAY).permit_id == "P1"
    assert reg.recognise("AB-123", 31 * DAY - 1).permit_id == "P1"
    assert reg.recognise("AB-123", 31 * DAY) is None  # valid_until is exclusive
    assert reg.recognise("ZZ-999", 2 * DAY) is None
    assert (reg.stats.recognised, reg.stats.not_valid_now) == (2, 2)


def test_permit_holder_parks_free_and_the_tariff_amount_is_waived():
    lot = make_lot({REG: 2}, tariff_2_per_hour())
    reg = PermitRegistry(lot)
    reg.add(permit(), 0.0)
    assert reg.enter(Vehicle("stranger"), H) is None  # pays as usual: the caller's business
    session = reg.enter(Vehicle("AB-123"), H)
    assert reg.is_permit_ticket(session.ticket)
    out = reg.exit(session.ticket, 4 * H)
    assert out.amount_cents == 0
    assert reg.stats.waived_cents == 600  # 3 h at $2
    assert (reg.stats.entries, reg.stats.exits) == (1, 1)
    with pytest.raises(UnknownTicket):
        reg.exit(session.ticket, 5 * H)


def test_anti_passback_and_a_second_car_on_one_permit():
    lot = make_lot({REG: 3})
    reg = PermitRegistry(lot)
    reg.add(permit(plates=("A", "B"), spot=0), 0.0)
    first = reg.enter(Vehicle("A"), H)
    assert first.spot.index == 0 and reg.stats.assigned_entries == 1
    with pytest.raises(AlreadyInside):
        reg.enter(Vehicle("A"), H + 1)
    second = reg.enter(Vehicle("B"), H + 2)  # assigned spot in use: a general spot
    assert second.spot.index != 0 and reg.stats.assigned_busy == 1
    reg.exit(first.ticket, 2 * H)
    assert lot.spots[0].status is SpotStatus.RESERVED  # straight back to the holder
    reg.exit(second.ticket, 2 * H)
    assert lot.spots[second.spot.index].status is SpotStatus.AVAILABLE
    again = reg.enter(Vehicle("A"), 3 * H)  # allowed again after leaving
    assert again.spot.index == 0


def test_assigned_spot_is_held_only_while_the_permit_is_valid():
    lot = make_lot({REG: 2})
    reg = PermitRegistry(lot)
    reg.add(permit(start=DAY, end=2 * DAY, spot=0), 0.0)
    assert lot.spots[0].status is SpotStatus.AVAILABLE  # not yet valid: open to all
    reg.advance(DAY)
    assert lot.spots[0].status is SpotStatus.RESERVED and reg.assigned_held() == {0}
    walk = lot.allocate(Vehicle("w"), DAY)
    assert walk.spot.index == 1
    with pytest.raises(LotFull):
        lot.allocate(Vehicle("w2"), DAY)
    reg.advance(2 * DAY)
    assert lot.spots[0].status is SpotStatus.AVAILABLE and reg.assigned_held() == frozenset()
    assert lot.allocate(Vehicle("w2"), 2 * DAY).spot.index == 0


def test_spot_occupied_by_a_walk_in_when_the_permit_starts_is_claimed_when_it_frees():
    lot = make_lot({REG: 2})
    walk = lot.allocate(Vehicle("w"), 0.0)  # nearest: spot 0
    assert walk.spot.index == 0
    reg = PermitRegistry(lot)
    reg.add(permit(start=H, spot=0), 0.0)
    reg.advance(H)
    assert lot.spots[0].status is SpotStatus.OCCUPIED
    lot.release(walk.ticket, 2 * H)
    assert reg.on_spot_freed(0, 2 * H)
    assert lot.spots[0].status is SpotStatus.RESERVED
    assert not reg.on_spot_freed(1, 2 * H)  # not an assigned spot


def test_renewal_hands_the_spot_over_and_overlaps_are_refused():
    lot = make_lot({REG: 2})
    reg = PermitRegistry(lot)
    reg.add(permit("P1", ("A",), 0.0, 10 * DAY, spot=1), 0.0)
    with pytest.raises(ValueError, match="already assigned"):
        reg.add(permit("P2", ("B",), 5 * DAY, 15 * DAY, spot=1), 0.0)
    reg.add(permit("P3", ("B",), 10 * DAY, 20 * DAY, spot=1), 0.0)
    with pytest.raises(ValueError, match="already registered"):
        reg.add(permit("P3", ("C",), 30 * DAY, 40 * DAY), 0.0)
    reg.advance(10 * DAY)  # P1 ends and P3 starts at the same instant: stays held
    assert lot.spots[1].status is SpotStatus.RESERVED
    assert reg.recognise("A", 10 * DAY) is None
    assert reg.enter(Vehicle("B"), 10 * DAY).spot.index == 1
    with pytest.raises(IndexError):
        reg.add(permit("P9", ("Z",), spot=7), 10 * DAY)


def test_maintenance_spots_refused_at_registration_and_claimed_later_when_taken_after():
    lot = make_lot({REG: 2})
    lot.set_status(0, SpotStatus.MAINTENANCE, 0.0)
    reg = PermitRegistry(lot)
    with pytest.raises(InvalidTransition):
        reg.add(permit(spot=0), 0.0)
    assert len(reg) == 0 and reg.recognise("AB-123", 1.0) is None  # nothing half-registered
    reg.add(permit(start=H, spot=1), 0.0)
    lot.set_status(1, SpotStatus.MAINTENANCE, 10.0)  # out of service before the permit starts
    reg.advance(H)  # no exception in the time loop: the spot is claimed for later
    assert lot.spots[1].status is SpotStatus.MAINTENANCE
    lot.set_status(1, SpotStatus.AVAILABLE, 2 * H)
    assert reg.on_spot_freed(1, 2 * H) and lot.spots[1].status is SpotStatus.RESERVED


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_assigned_spots_are_never_allocated_to_anyone_else(data):
    lot = make_lot({REG: 5, ST.COMPACT: 1})
    reg = PermitRegistry(lot)
    assigned = {0: "A", 2: "B"}
    for spot, plate in assigned.items():
        reg.add(permit(f"P{plate}", (plate, plate + "2"), 0.0, 50 * H, spot=spot), 0.0)
    walk_ins: list[int] = []
    holders: dict[str, int] = {}
    t = 0.0
    for step in range(data.draw(st.integers(5, 60))):
        t += data.draw(st.sampled_from([0.0, 60.0, 600.0, 3600.0]))
        reg.advance(t)
        op = data.draw(st.sampled_from(["walk_in", "walk_in", "leave", "holder_in", "holder_out"]))
        if op == "walk_in":
            size = data.draw(st.sampled_from([VehicleClass.REGULAR, VehicleClass.COMPACT]))
            try:
                session = lot.allocate(Vehicle(f"w{step}", size), t)
            except ParkingError:
                continue
            if t < 50 * H:
                assert session.spot.index not in assigned, "walk-in got an assigned spot"
            walk_ins.append(session.ticket)
        elif op == "leave" and walk_ins:
            ticket = walk_ins.pop(data.draw(st.integers(0, len(walk_ins) - 1)))
            reg.on_spot_freed(lot.release(ticket, t).spot.index, t)
        elif op == "holder_in":
            plate = data.draw(st.sampled_from(["A", "A2", "B", "B2"]))
            if plate not in holders:
                try:
                    session = reg.enter(Vehicle(plate), t)
                except ParkingError:
                    continue
                if session is not None:
                    holders[plate] = session.ticket
        elif op == "holder_out" and holders:
            plate = data.draw(st.sampled_from(sorted(holders)))
            reg.exit(holders.pop(plate), t)
        # invariants: assigned spots are RESERVED unless their own holder is in them
        for spot, plate in assigned.items():
            status = lot.spots[spot].status
            if t < 50 * H:
                if status is SpotStatus.OCCUPIED:
                    owner = [p for p, tk in holders.items() if lot.session(tk).spot.index == spot]
                    assert owner and owner[0].rstrip("2") == plate
                else:
                    assert status is SpotStatus.RESERVED
        n_reserved = sum(s.status is SpotStatus.RESERVED for s in lot.spots)
        assert n_reserved == len(reg.assigned_held())


# =========================================================================== accessible bays


def test_handicap_bays_need_a_permit_and_illegal_stays_are_counted():
    lot = make_lot({REG: 1, ST.HANDICAP: 2})
    enf = HandicapEnforcer(HandicapEnforcement(probability=0.25, fine_cents=25_000))
    legal = lot.allocate(Vehicle("p", handicap=True), 0.0)
    assert legal.spot.type is ST.HANDICAP  # permit holders prefer accessible bays
    lot.allocate(Vehicle("c"), 0.0)
    with pytest.raises(NoCompatibleSpot):  # a HANDICAP bay is free, but not for this car
        lot.allocate(Vehicle("d"), 0.0)
    illegal = enf.park_illegally(lot, Vehicle("d"), 0.0)
    assert illegal.spot.type is ST.HANDICAP and enf.is_violation(illegal)
    assert enf.park_illegally(lot, Vehicle("e"), 0.0) is None  # no bay left
    assert not enf.is_violation(legal)
    assert enf.inspect(illegal, 0.2499) is True
    assert enf.inspect(illegal, 0.25) is False  # caught iff u < probability
    assert enf.inspect(legal, 0.0) is False
    s = enf.stats
    assert (s.inspected, s.violations, s.caught, s.fines_cents) == (3, 2, 1, 25_000)


def test_enforcement_catches_exactly_the_probability_over_stratified_draws():
    lot = make_lot({ST.HANDICAP: 1, REG: 1})
    enf = HandicapEnforcer(HandicapEnforcement(probability=0.3, fine_cents=100))
    illegal = enf.park_illegally(lot, Vehicle("x"), 0.0)
    other = lot.allocate(Vehicle("y"), 0.0)
    for k in range(1000):
        enf.inspect(illegal, k / 1000)
        enf.inspect(other, k / 1000)  # not a HANDICAP bay: not inspected
    assert (enf.stats.inspected, enf.stats.violations, enf.stats.caught) == (1000, 1000, 300)
    assert enf.stats.fines_cents == 30_000
    with pytest.raises(ValueError):
        enf.inspect(illegal, 1.0)
    with pytest.raises(ValueError):
        HandicapEnforcement(probability=1.2)


def test_a_van_never_parks_in_a_bay_it_does_not_fit():
    lot = make_lot({ST.COMPACT: 1})
    enf = HandicapEnforcer(HandicapEnforcement(0.5))
    assert enf.park_illegally(lot, Vehicle("v", VehicleClass.LARGE), 0.0) is None


# =========================================================================== EV charging

POLICY = ChargingPolicy(
    power_kw=11.0, fee_cents_per_kwh=35, idle_fee_cents_per_hour=600, idle_grace_s=15 * MIN
)


def test_charge_then_idle_worked_example():
    bill = charge_bill(POLICY, energy_needed_kwh=22.0, plugged_s=3 * H)
    assert bill.charge_s == pytest.approx(2 * H)  # 22 kWh / 11 kW
    assert bill.idle_s == pytest.approx(H) and bill.idle_minutes == pytest.approx(60)
    assert bill.billable_idle_s == pytest.approx(45 * MIN)
    assert bill.energy_fee_cents == 770  # 22 x 35
    assert bill.idle_fee_cents == 450  # 45 min at $6/h
    assert bill.time_fee_cents == 0 and bill.total_cents == 1220


def test_leaving_before_the_battery_is_full_bills_what_was_delivered():
    bill = charge_bill(POLICY, energy_needed_kwh=22.0, plugged_s=H)
    assert bill.energy_kwh == pytest.approx(11.0)
    assert bill.idle_s == 0.0 and bill.idle_fee_cents == 0
    assert bill.energy_fee_cents == 385


def test_per_hour_fees_are_charged_per_started_minute():
    policy = ChargingPolicy(power_kw=10.0, fee_cents_per_hour=300, idle_fee_cents_per_hour=600)
    bill = charge_bill(policy, energy_needed_kwh=10.0, plugged_s=H + 20)
    assert bill.time_fee_cents == 300  # exactly 60 minutes of charging
    assert bill.idle_fee_cents == 10  # 20 s idle = 1 started minute at 10 c
    slow = charge_bill(policy, energy_needed_kwh=10.0, plugged_s=3 * H, power_kw=7.0)
    assert slow.charge_s == pytest.approx(10 / 7 * H)  # car limited to 7 kW
    assert slow.time_fee_cents == 430  # ceil(85.71 min) = 86 started minutes x 5 c


@settings(max_examples=200, deadline=None)
@given(
    energy=st.floats(0, 100),
    plugged=st.floats(0, 48 * H),
    extra=st.floats(0, 10 * H),
)
def test_charging_accounting_is_consistent(energy, plugged, extra):
    bill = charge_bill(POLICY, energy, plugged)
    assert bill.charge_s + bill.idle_s == pytest.approx(plugged)
    assert bill.energy_kwh == pytest.approx(min(energy, POLICY.power_kw * plugged / H))
    assert 0 <= bill.billable_idle_s <= bill.idle_s
    later = charge_bill(POLICY, energy, plugged + extra)
    assert later.total_cents >= bill.total_cents  # staying longer never costs less


def test_charging_stations_track_sessions_idle_cars_and_totals():
    lot = make_lot({ST.EV: 2, REG: 1})
    stations = ChargingStations(POLICY)
    ev1 = lot.allocate(Vehicle("e1", ev=True), 0.0)
    ev2 = lot.allocate(Vehicle("e2", ev=True), 0.0)
    car = lot.allocate(Vehicle("c"), 0.0)
    with pytest.raises(NoCompatibleSpot):
        stations.plug_in(car, 10.0, 0.0)
    stations.plug_in(ev1, 11.0, 0.0)  # full after 1 h
    stations.plug_in(ev2, 33.0, 0.0, vehicle_max_kw=22.0)  # 11 kW charger wins: 3 h
    with pytest.raises(InvalidTransition):
        stations.plug_in(ev1, 5.0, 0.0)
    assert stations.idle_now(H - 1) == 0 and stations.idle_now(H) == 1
    assert stations.idle_now(3 * H) == 2
    b1 = stations.unplug(ev1.ticket, 2 * H)  # 60 min idle, 45 billable
    b2 = stations.unplug(ev2.ticket, 3 * H)
    assert (b1.idle_fee_cents, b2.idle_fee_cents) == (450, 0)
    s = stations.stats
    assert s.sessions == 2 and s.energy_kwh == pytest.approx(44.0)
    assert s.idle_minutes == pytest.approx(60) and s.billable_idle_minutes == pytest.approx(45)
    assert s.revenue_cents == 44 * 35 + 450 == s.as_dict()["revenue_cents"]
    assert stations.plugged_in == 0
    with pytest.raises(KeyError):
        stations.unplug(ev1.ticket, 4 * H)


def test_charging_policy_validation():
    with pytest.raises(ValueError):
        ChargingPolicy(power_kw=0)
    with pytest.raises(ValueError):
        ChargingPolicy(power_kw=11, fee_cents_per_kwh=-1)
    with pytest.raises(ValueError):
        charge_bill(POLICY, -1.0, H)
    assert math.isclose(charge_bill(POLICY, 0.0, H).idle_s, H)


# =========================================================================== scenario spec

SPEC = {
    "monthly": {
        "holders": 40,
        "arrival_time": {"type": "uniform", "low": 7.5, "high": 9.5, "unit": "h"},
        "dwell": {"type": "lognormal", "mean": 9, "sd": 1, "unit": "h"},
        "assigned_spots": 10,
        "monthly_fee": 150,
        "visit_days": "weekdays",
    },
    "handicap": {"violation_probability": 0.05, "enforcement_probability": 0.3, "fine": 250},
    "ev_charging": {
        "charger_power_kw": 11,
        "energy_kwh": {"type": "uniform", "low": 5, "high": 40},
        "fee_per_kwh": "0.35",
        "idle_fee_per_hour": 6,
        "idle_grace_min": 15,
    },
}


def test_spec_builds_core_policies():
    spec = PermitsSpec.model_validate(SPEC)
    assert spec.ev_charging.build() == POLICY
    assert spec.handicap.build() == HandicapEnforcement(0.3, 25_000)
    assert spec.monthly.visit_days == ["mon", "tue", "wed", "thu", "fri"]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("monthly", "assigned_spots"), 41, "cannot exceed holders"),
        (("monthly", "assigned_spot_type"), "EV", "need ev_share: 1"),
        (("monthly", "assigned_spot_type"), "HANDICAP", "cannot be assigned"),
        (("monthly", "vehicle_class"), "LARGE", "does not fit"),
        (("monthly", "visit_days"), ["mon", "funday"], "unknown day"),
        (("handicap", "enforcement_probability"), 1.5, "less than or equal to 1"),
        (("ev_charging", "fee_per_kwh"), "0.355", "2 decimal places"),
        (("ev_charging", "charger_power_kw"), 0, "greater than 0"),
        (("ev_charging", "energy_kwh"), {"type": "constant", "value": 0}, "mean energy"),
        (("ev_charging", "idle_fee"), 1, "Extra inputs"),
    ],
)
def test_spec_errors_are_clear(path, value, message):
    data = {k: dict(v) for k, v in SPEC.items()}
    data[path[0]][path[1]] = value
    with pytest.raises(ValidationError, match=message):
        PermitsSpec.model_validate(data)


def test_an_empty_permits_section_is_an_error():
    with pytest.raises(ValidationError, match="at least one of"):
        PermitsSpec.model_validate({})
