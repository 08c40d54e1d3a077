"""Feed events of the cars a run parks outside its drivers, for ``twin.live.emit``.

Two kinds of car are in a run's ``external_stays`` and not in its vehicles frame:

* **a start state's cars** (``--start-state steady|FILE``): parked before the feed begins. A
  lot the twin joins while running looks like this: its bay sensors report the bays occupied
  at the feed's first instant (what a subscription to a sensor platform returns first), its
  counters count the cars inside (counted in when they came, before the feed), and each car
  leaves like any other (bay free, payment, exit gate with the ``actualStart`` printed on its
  ticket). There is no gate entry: it happened before the feed.
* **reservation holders** (``operations.reservations``): the booking system reports each
  reservation (``reservation`` events: ``created`` when a bay is held for it, with the bay and
  the booked window; ``honoured`` when the holder arrives, just before their entry;
  ``cancelled`` (also a holder bumped for want of a bay), ``expired`` (a no-show, or never
  confirmed)), and the holder's car passes the gates and its bay's sensor like a walk-in.

Why a module of its own: ``twin/live/emit.py`` turns the model's drivers into events; these
cars come from other frames of the same run (``external_stays``, ``reservations_bookings``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from twin.live.emit_events import (
    Add,
    gate_entry,
    gate_exit,
    payment,
    plate_read,
    reservation,
    spot_reading,
)


def initial_events(
    stays: pd.DataFrame,
    spot_ids: list[str],
    level_of: dict[str, str],
    epoch: datetime,
    add: Add,
    devices: tuple[str, str, str],
) -> None:
    """Events of a start state's cars (rows of ``external_stays`` with ``entry_t <= 0``):
    their bays read occupied at the feed's first instant; when they leave, bay free, payment
    and exit gate. ``devices`` is (entry gate, exit gate, pay station)."""
    _, gate_out, pay = devices
    entry = stays["entry_t"].to_numpy(dtype=float)
    leave = stays["leave_t"].to_numpy(dtype=float)
    amount = stays["amount_cents"].to_numpy(dtype=float)
    spots = stays["spot"].to_numpy()
    for j in range(len(stays)):
        sp = spot_ids[int(spots[j])]
        session, level = f"I{j:06d}", level_of.get(sp)
        spot_reading(add, 0.0, session, sp, "occ", "occupied", level)
        if not math.isfinite(leave[j]):
            continue
        spot_reading(add, leave[j], session, sp, "free", "free", level)
        if math.isfinite(amount[j]):
            value = round(float(amount[j]) / 100.0, 2)
            payment(add, leave[j], session, pay, f"T{session}", value)
        start = (epoch + timedelta(seconds=float(entry[j]))).isoformat()
        gate_exit(add, leave[j], session, gate_out, f"PI{j:06d}", sp, start)


def hold_events(state: Any, lot: Any, taken: set[int], horizon: float, add: Add) -> None:
    """Bays a start state holds or closes (``lots[0].holds``), as the feed reports them at its
    first instant: a closed bay's sensor reads ``closed`` (``free`` again at ``until``), a held
    one is a reservation of the booking system (``created``; ``expired`` at ``until``). Bays a
    state's car stands on are left alone, as the run leaves them (the car wins)."""
    if state is None or not state.lots:
        return
    calendar_start = state.time
    for j, hold in enumerate(state.lots[0].holds):
        if hold.spot is not None:
            targets = [s for s in lot.spots if s.id == hold.spot]
        else:
            level = next(lv.index for lv in lot.levels if lv.name == hold.level)
            targets = [
                s
                for s in lot.spots
                if s.level == level and (hold.spot_type is None or s.type.name == hold.spot_type)
            ]
        until = None if hold.until is None else (hold.until - calendar_start).total_seconds()
        back = until is not None and until < horizon
        for s in targets:
            if s.index in taken:
                continue
            key, level_name = f"H{j:03d}-{s.id}", lot.levels[s.level].name
            if hold.status == "closed":
                spot_reading(add, 0.0, key, s.id, "closed", "closed", level_name)
                if back:
                    spot_reading(add, until, key, s.id, "open", "free", level_name)
            else:
                reservation(add, 0.0, key, "created", spaceId=s.id)
                if back:
                    reservation(add, until, key, "expired", spaceId=s.id)


def holder_type(vehicle_class: str, spot_type: str) -> str:
    """The feed's ``vehicleType`` of a holder: the booking's class, EV or accessible by bay."""
    extra = {"EV": "+EV", "HANDICAP": "+HANDICAP"}.get(spot_type, "")
    return f"{vehicle_class}{extra}"


def reservation_events(
    bookings: pd.DataFrame,
    vehicle_class: str,
    epoch: datetime,
    level_of: dict[str, str],
    add: Add,
    devices: tuple[str, str, str, str],
) -> int:
    """Events of the bookings frame (``reservations_bookings``): the reservations and their
    holders' cars (see the module docstring). ``devices`` is (entry camera, entry gate, exit
    gate, pay station). Returns the number of reservations reported."""
    cam, gate_in, gate_out, pay = devices

    def iso(t: float) -> str:
        return (epoch + timedelta(seconds=float(t))).isoformat()

    n = 0
    for row in bookings.itertuples(index=False):
        if pd.isna(row.reservation):
            continue  # refused, or not yet judged when the run ended
        status = str(row.status)
        if status.startswith("rejected") or status == "pending":
            continue
        rid = int(row.reservation)
        key = f"R{rid:06d}"
        spot = row.spot if isinstance(row.spot, str) and row.spot not in ("", "None") else None
        held = float(row.held_from)
        window = {"actualStart": iso(row.start), "actualEnd": iso(row.end)}
        n += 1
        if spot is not None and math.isfinite(held):
            reservation(add, held, key, "created", spaceId=spot, **window)
        else:  # never held a bay (cancelled or expired before its hold began)
            reservation(add, float(row.request_t), key, "created", **window)
        arrived, left, closed = float(row.arrived_t), float(row.left_t), float(row.closed_t)
        if math.isfinite(arrived) and spot is not None:
            _holder(
                row,
                key,
                spot,
                arrived,
                left,
                vehicle_class,
                level_of,
                iso,
                add,
                (cam, gate_in, gate_out, pay),
            )
        elif status in ("cancelled", "no_show", "expired") and math.isfinite(closed):
            action = "cancelled" if status == "cancelled" else "expired"
            reservation(add, closed, key, action, spaceId=spot)
    return n


def _holder(
    row: Any,
    key: str,
    spot: str,
    arrived: float,
    left: float,
    vehicle_class: str,
    level_of: dict[str, str],
    iso: Callable[[float], str],
    add: Add,
    devices: tuple[str, str, str, str],
) -> None:
    """A holder's visit: reservation honoured, then the car as a walk-in's (its bay, paid)."""
    cam, gate_in, gate_out, pay = devices
    plate, level = f"PR{key[1:]}", level_of.get(spot)
    plate_read(add, arrived, key, cam, plate, "plate-in", "in")
    reservation(add, arrived, key, "honoured", spaceId=spot)
    gate_entry(
        add, arrived, key, gate_in, plate, holder_type(vehicle_class, str(row.spot_type)), spot
    )
    spot_reading(add, arrived, key, spot, "occ", "occupied", level)
    if not math.isfinite(left):
        return
    spot_reading(add, left, key, spot, "free", "free", level)
    captured = int(row.captured_cents)
    if captured > 0:
        payment(add, left, key, pay, f"T{key}", round(captured / 100.0, 2))
    gate_exit(add, left, key, gate_out, plate, spot, iso(arrived))


__all__ = [
    "hold_events",
    "holder_type",
    "initial_events",
    "reservation_events",
]
