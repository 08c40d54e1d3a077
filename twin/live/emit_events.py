"""One builder per kind of a car's feed event, for ``twin.live.emit`` and ``twin.live.emit_stays``.

A car's events are written the same way whoever parked it (a driver of the run, a start
state's car, a reservation holder): the entrance camera's plate read, the booking system's
reservation event, the entry gate, the bay sensor's reading, the payment, the exit gate. Each
builder hands one event to ``add(t, order, kind, id, device, **fields)``, which collects them;
``order`` breaks ties at one instant (camera, booking, entry, sensor, payment, exit). An
event's id is the car's ``key`` (session or reservation) and a tag.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: The booking system's device id.
BOOKING = "booking-system"

#: ``add(t, order, kind, id, device, **fields)``: how emit collects an event.
Add = Callable[..., None]

__all__ = [
    "BOOKING",
    "Add",
    "gate_entry",
    "gate_exit",
    "payment",
    "plate_read",
    "reservation",
    "spot_reading",
]


def plate_read(
    add: Add, t: float, key: str, camera: str, plate: str, tag: str, direction: str
) -> None:
    """The entrance camera reads ``plate`` (``direction`` in: at the barrier; out: gone)."""
    add(
        t,
        0,
        "plate_read",
        f"{key}:{tag}",
        camera,
        identifiedVehicle=plate,
        direction=direction,
        confidence=0.98,
    )


def reservation(add: Add, t: float, key: str, action: str, **fields: Any) -> None:
    """The booking system reports reservation ``key``'s ``action`` (created, honoured,
    cancelled, expired); ``fields``: its bay (``spaceId``) and booked window, if said."""
    add(t, 1, "reservation", f"{key}:{action}", BOOKING, reservationId=key, action=action, **fields)


def gate_entry(
    add: Add, t: float, key: str, gate: str, plate: str, vehicle_type: str, spot: str | None
) -> None:
    """The entry gate opens for session ``key`` (APDS: with the spot the session takes, which
    a replay needs for sessions still open)."""
    add(
        t,
        2,
        "gate_entry",
        f"{key}:in",
        gate,
        sessionId=key,
        identifiedVehicle=plate,
        vehicleType=vehicle_type,
        spaceId=spot,
    )


def spot_reading(
    add: Add, t: float, key: str, spot: str, tag: str, status: str, level: str | None
) -> None:
    """Bay ``spot``'s sensor reads ``status`` (occupied, free, closed)."""
    add(
        t,
        3,
        "spot_reading",
        f"{key}:{tag}",
        f"sensor-{spot}",
        spaceId=spot,
        status=status,
        level=level,
    )


def payment(add: Add, t: float, key: str, pay: str, transaction: str, value: float) -> None:
    """Session ``key`` pays ``value`` at pay station ``pay``."""
    add(
        t,
        4,
        "payment",
        f"{key}:pay",
        pay,
        transactionID=transaction,
        value=value,
        status="ok",
        sessionId=key,
    )


def gate_exit(
    add: Add, t: float, key: str, gate: str, plate: str, spot: str | None, actual_start: str
) -> None:
    """The exit gate lets session ``key`` out (``actual_start``: its ticket's entry time)."""
    add(
        t,
        5,
        "gate_exit",
        f"{key}:out",
        gate,
        sessionId=key,
        identifiedVehicle=plate,
        spaceId=spot,
        actualStart=actual_start,
    )
