"""Reservations taking their units from a claim store (``ReservationBook(units_from_store=True)``).

The book decides when a hold wants a spot and what a refusal means; the store (here the test,
answering by hand) grants or refuses the unit. Checked from the rules in the "Units from a
claim store" part of ``twin/core/reservations.py``'s docstring.
"""

from __future__ import annotations

import pytest

from twin.core.facility import Level, build_spots
from twin.core.lot import Lot
from twin.core.reservations import (
    RS,
    ReservationBook,
    ReservationNotHonoured,
    ReservationPolicy,
)
from twin.core.types import SpotStatus, SpotType, Vehicle

REG = SpotType.REGULAR
MIN = 60.0
CAR = Vehicle("car")


def _book(spots: int = 10, share: float = 0.3, overbooking: float = 1.0) -> ReservationBook:
    level = Level(0, "L0")
    lot = Lot(build_spots([(level, {REG: spots})]), [level])
    policy = ReservationPolicy(
        reserved_share={REG: share},
        grace_s=15 * MIN,
        hold_lead_s=15 * MIN,
        overbooking_factor=overbooking,
    )
    return ReservationBook(lot, policy, units_from_store=True)


def _reserved(book: ReservationBook) -> int:
    return sum(1 for s in book.lot.spots if s.status is SpotStatus.RESERVED)


def test_a_hold_waits_for_its_unit_then_takes_a_spot() -> None:
    book = _book()
    res = book.create_reservation("a", REG, 60 * MIN, 120 * MIN, 0.0)
    book.advance(45 * MIN)  # the hold is due: it asks for a unit instead of taking a spot
    assert res.waiting and res.hold_t is None and _reserved(book) == 0
    assert book.request_units(45 * MIN) == [res.id]
    assert book.request_units(45 * MIN) == []  # asked once until answered
    assert book.unit_granted(res.id, 45 * MIN + 1)
    assert res.hold_t == 45 * MIN + 1 and not res.waiting
    assert _reserved(book) == 1 and book.held(REG) == 1
    assert book.unit_moves() == []


def test_a_refused_unit_waits_like_a_full_lot_and_asks_again() -> None:
    book = _book()
    res = book.create_reservation("a", REG, 60 * MIN, 120 * MIN, 0.0)
    book.advance(45 * MIN)
    for attempt in range(2):
        assert book.request_units(45 * MIN + attempt) == [res.id]
        book.unit_refused(res.id, 45 * MIN + attempt)
        assert res.waiting and res.status is RS.CONFIRMED
    assert book.stats.hold_waits == 1  # one waiting reservation, however many refusals
    assert _reserved(book) == 0


def test_units_go_back_on_cancel_no_show_and_departure() -> None:
    book = _book()
    kept = book.create_reservation("a", REG, 60 * MIN, 120 * MIN, 0.0)
    cancelled = book.create_reservation("b", REG, 60 * MIN, 120 * MIN, 0.0)
    absent = book.create_reservation("c", REG, 60 * MIN, 120 * MIN, 0.0)
    book.advance(45 * MIN)
    assert sorted(book.request_units(45 * MIN)) == [kept.id, cancelled.id, absent.id]
    for res in (kept, cancelled, absent):
        assert book.unit_granted(res.id, 46 * MIN)
    book.cancel(cancelled.id, 50 * MIN)
    assert book.unit_moves() == [(cancelled.id, None)]
    assert book.unit_moves() == []  # emptied by the call
    book.arrive(kept.id, CAR, 55 * MIN)  # the holder keeps the hold's unit
    assert book.unit_moves() == []
    book.advance(75 * MIN)  # start + grace: the absent holder's hold ends
    assert book.unit_moves() == [(absent.id, None)]
    book.depart(kept.id, 100 * MIN)
    assert book.unit_moves() == [(kept.id, None)]
    assert _reserved(book) == 0 and book.lot.n_occupied == 0


def test_a_hold_ending_unused_hands_its_spot_and_unit_to_a_waiting_reservation() -> None:
    book = _book(spots=10, share=0.1, overbooking=2.0)  # one spot held at once, two booked
    first = book.create_reservation("a", REG, 60 * MIN, 120 * MIN, 0.0)
    second = book.create_reservation("b", REG, 70 * MIN, 120 * MIN, 0.0)
    book.advance(45 * MIN)
    assert book.request_units(45 * MIN) == [first.id]
    assert book.unit_granted(first.id, 45 * MIN)
    book.advance(55 * MIN)  # the second hold is due; the cap is reached: it waits, no claim
    assert second.waiting and book.request_units(55 * MIN) == []
    book.cancel(first.id, 56 * MIN)
    assert book.unit_moves() == [(first.id, second.id)]  # the spot and its unit move on
    assert second.hold_t == 56 * MIN and _reserved(book) == 1


def test_a_grant_the_book_cannot_use_is_refused() -> None:
    book = _book()
    res = book.create_reservation("a", REG, 60 * MIN, 120 * MIN, 0.0)
    book.advance(45 * MIN)
    assert book.request_units(45 * MIN) == [res.id]
    book.cancel(res.id, 46 * MIN)  # cancelled while its claim was in flight
    assert not book.unit_granted(res.id, 47 * MIN)
    assert book.unit_moves() == []  # it never held one
    assert _reserved(book) == 0


def test_no_unit_is_asked_for_when_no_spot_of_the_type_is_free() -> None:
    book = _book(spots=4, share=0.5)
    res = book.create_reservation("a", REG, 60 * MIN, 120 * MIN, 0.0)
    for _ in range(4):
        book.lot.try_allocate(CAR, 1.0)
    book.advance(45 * MIN)
    assert res.waiting
    assert book.request_units(45 * MIN) == []  # the lot is full: the core's answer, no claim
    assert book.stats.hold_waits == 1  # counted as without a store
    session = next(iter(book.lot.sessions()))
    book.lot.release(session.ticket, 50 * MIN)
    assert not book.on_spot_freed(session.spot.index, 50 * MIN)  # not taken directly
    assert book.request_units(50 * MIN) == [res.id]


def test_a_holder_refused_at_the_gate_is_bumped() -> None:
    book = _book()
    res = book.create_reservation("a", REG, 60 * MIN, 120 * MIN, 0.0)
    book.advance(45 * MIN)
    assert book.request_units(45 * MIN) == [res.id]
    book.unit_refused(res.id, 45 * MIN)
    with pytest.raises(ReservationNotHonoured):
        book.bump(res.id, 55 * MIN)
    assert res.status is RS.CANCELLED and book.stats.bumped == 1
    assert book.request_units(56 * MIN) == []
