"""The feed event schema: one versioned, typed record per thing a lot's devices report.

Why one schema: gates, spot sensors, counters and pay stations of different vendors all end
up in the same twin; each adapter turns its vendor's payloads into these events, and the
twin (``twin/live/``) only ever sees these. Field names follow the public standards so real
integrations map cleanly (``docs/feed_events.md`` has the tables, generated from this file):

* FIWARE Smart Data Models ``ParkingSpot`` (``status`` free/occupied/closed/unknown,
  ``refParkingSite``, ``refDevice``, ``dateObserved``) and ``OffStreetParking``
  (``availableSpotNumber``, ``totalSpotNumber``, ``vehicleEntranceCount``,
  ``vehicleExitCount``);
* APDS (Alliance for Parking Data Standards) sessions (``actualStart``, ``actualEnd``,
  ``spaceId``, ``identifiedVehicle``) and payments (``transactionID``, ``value``).

Every event has an ``id`` (unique per event: the twin deduplicates on it, so a redelivered
MQTT message or a re-uploaded buffer counts once), a ``refDevice`` and a ``dateObserved``
(the device's clock, timezone-aware). ``v`` is the schema version: a consumer refuses
versions it does not know instead of misreading them.

Validation is one pydantic ``TypeAdapter`` over a union discriminated by ``kind``, so a JSON
payload is parsed and checked in pydantic-core (Rust) in one call: the later mirror's target is
50,000 events/s (``benchmarks/bench_feed.py`` measures it).

Every time (``dateObserved``, ``actualStart``, ``actualEnd``) is the same instant in the stdlib's
``datetime.UTC`` once validated, whatever offset the payload wrote: pydantic-core's own zone
(``TzInfo``) is asked for its ``utcoffset()`` by a method call at each use, so subtracting or
comparing two of them took 0.5-0.75 µs against 0.05-0.15 µs between two stdlib UTC
datetimes, and the intake and the mirror do that several times per event.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter


def _to_utc(t: datetime) -> datetime:
    """The same instant in ``datetime.UTC`` (see the module docstring: why)."""
    return t.astimezone(UTC)


#: A timezone-aware time, validated by pydantic and kept as the same instant in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]

#: The version this code writes and reads; bump on an incompatible change.
SCHEMA_VERSION = 1

#: ParkingSpot.status (FIWARE): the only values a spot reading may carry.
SpotStatus = Literal["free", "occupied", "closed", "unknown"]
#: Payment outcome at the pay station or gate.
PaymentStatus = Literal["ok", "declined", "offline"]
#: What happened to a reservation.
ReservationAction = Literal["created", "cancelled", "honoured", "expired"]


class _Event(BaseModel):
    """Fields every event has."""

    # Unknown extra fields are ignored (a vendor may add its own); frozen so the mirror's log
    # cannot be edited in place.
    model_config = ConfigDict(extra="ignore", frozen=True)

    v: Literal[1] = Field(default=1, description="schema version (1)")
    id: str = Field(min_length=1, description="unique event id; duplicates are set aside")
    refDevice: str = Field(min_length=1, description="the device that observed it")
    dateObserved: UtcDatetime = Field(description="when the device observed it (its clock)")
    refParkingSite: str | None = Field(default=None, description="the lot (site) id")
    buffered: bool = Field(
        default=False,
        description="uploaded late from the device's buffer (after an outage), not live",
    )


class GateEntry(_Event):
    """A vehicle passed an entry barrier: an APDS session starts."""

    kind: Literal["gate_entry"]
    sessionId: str | None = Field(default=None, description="ticket or session id")
    identifiedVehicle: str | None = Field(default=None, description="licence plate, if read")
    vehicleType: str | None = Field(default=None, description="vehicle class, if known")
    spaceId: str | None = Field(default=None, description="the spot taken, if known (APDS)")


class GateExit(_Event):
    """A vehicle passed an exit barrier: its APDS session ends (``actualEnd``)."""

    kind: Literal["gate_exit"]
    sessionId: str | None = Field(default=None, description="ticket or session id")
    identifiedVehicle: str | None = Field(default=None, description="licence plate, if read")
    actualStart: UtcDatetime | None = Field(
        default=None, description="session start printed on the ticket, if known"
    )
    spaceId: str | None = Field(default=None, description="the spot left, if known (APDS)")


class PlateRead(_Event):
    """A camera read a licence plate (at a gate or on a level)."""

    kind: Literal["plate_read"]
    identifiedVehicle: str = Field(min_length=1, description="licence plate as read")
    confidence: float | None = Field(default=None, ge=0, le=1, description="read confidence")
    direction: Literal["in", "out"] | None = Field(default=None, description="lane direction")


class SpotReading(_Event):
    """A bay sensor's reading: FIWARE ParkingSpot.status of ``spaceId``."""

    kind: Literal["spot_reading"]
    spaceId: str = Field(min_length=1, description="the spot (bay) id")
    status: SpotStatus = Field(description="free | occupied | closed | unknown")
    level: str | None = Field(default=None, description="the level (ParkingGroup), if known")


class Heartbeat(_Event):
    """A device says it is alive (no reading changed); silence means dead or disconnected."""

    kind: Literal["heartbeat"]
    spaceId: str | None = Field(default=None, description="the spot of a bay sensor")
    batteryLevel: float | None = Field(default=None, ge=0, le=1, description="0..1")


class CounterSnapshot(_Event):
    """FIWARE OffStreetParking counters, for the site (``level`` None) or one level."""

    kind: Literal["counter"]
    level: str | None = Field(default=None, description="None: the whole site")
    availableSpotNumber: int = Field(ge=0, description="free spots the counter believes in")
    totalSpotNumber: int = Field(ge=0, description="capacity counted")
    vehicleEntranceCount: int = Field(ge=0, description="entries since the counter's reset")
    vehicleExitCount: int = Field(ge=0, description="exits since the counter's reset")


class Payment(_Event):
    """A payment attempt (APDS payment): ok, declined, or the payment system offline."""

    kind: Literal["payment"]
    transactionID: str = Field(min_length=1, description="the payment's transaction id")
    value: float = Field(ge=0, allow_inf_nan=False, description="amount, currency units")
    currency: str = Field(default="USD", description="ISO 4217 code")
    status: PaymentStatus = Field(description="ok | declined | offline")
    sessionId: str | None = Field(default=None, description="the session paid for")


class Reservation(_Event):
    """A reservation created, cancelled, honoured (car arrived) or expired."""

    kind: Literal["reservation"]
    reservationId: str = Field(min_length=1, description="the reservation's id")
    action: ReservationAction = Field(description="created | cancelled | honoured | expired")
    spaceId: str | None = Field(default=None, description="the spot held, if one")
    actualStart: UtcDatetime | None = Field(default=None, description="reserved from")
    actualEnd: UtcDatetime | None = Field(default=None, description="reserved until")


#: Every kind of event, in documentation order.
EVENT_TYPES: tuple[type[_Event], ...] = (
    GateEntry,
    GateExit,
    PlateRead,
    SpotReading,
    Heartbeat,
    CounterSnapshot,
    Payment,
    Reservation,
)
#: kind → class.
KINDS: dict[str, type[_Event]] = {
    t.model_fields["kind"].annotation.__args__[0]: t  # type: ignore[union-attr]
    for t in EVENT_TYPES
}

Event = Annotated[
    GateEntry
    | GateExit
    | PlateRead
    | SpotReading
    | Heartbeat
    | CounterSnapshot
    | Payment
    | Reservation,
    Field(discriminator="kind"),
]
EVENT = TypeAdapter(Event)


def parse_json(raw: str | bytes) -> _Event:
    """One JSON payload → its event; raises pydantic.ValidationError."""
    return EVENT.validate_json(raw)


def parse_obj(obj: Any) -> _Event:
    """A parsed mapping (CSV row, mapped export) → its event; raises pydantic.ValidationError."""
    return EVENT.validate_python(obj)


def to_json(event: _Event) -> str:
    """The event as one compact JSON line (``None`` fields left out, ``kind`` kept)."""
    return event.model_dump_json(exclude_none=True)


def observed(event: _Event) -> datetime:
    """The event's observed time (kept as a function so sorting code reads well)."""
    return event.dateObserved


#: Where each field name comes from (the doc's mapping column).
STANDARD: dict[str, str] = {
    "v": "ParkTwin (schema version)",
    "id": "FIWARE/NGSI `id` (of the observation); APDS object id",
    "kind": "ParkTwin (event type; NGSI `type` of the entity it updates in the doc table)",
    "refDevice": "FIWARE `refDevice` (ParkingSpot, Device)",
    "dateObserved": "FIWARE `dateObserved`",
    "refParkingSite": "FIWARE `refParkingSite` (ParkingSpot → OffStreetParking)",
    "buffered": "ParkTwin",
    "sessionId": "APDS Session id",
    "identifiedVehicle": "APDS `identifiedVehicle` (Session)",
    "vehicleType": "FIWARE `allowedVehicleType` values (DATEX II VehicleTypeEnum) where they fit",
    "spaceId": "APDS `spaceId` (Session segment); FIWARE ParkingSpot `id`",
    "actualStart": "APDS `actualStart` (Session)",
    "actualEnd": "APDS `actualEnd` (Session)",
    "confidence": "ParkTwin",
    "direction": "ParkTwin",
    "status": "FIWARE ParkingSpot `status`; APDS payment status (payment)",
    "level": "FIWARE `refParkingGroup` (the level's group)",
    "batteryLevel": "FIWARE Device `batteryLevel`",
    "availableSpotNumber": "FIWARE OffStreetParking `availableSpotNumber`",
    "totalSpotNumber": "FIWARE OffStreetParking `totalSpotNumber`",
    "vehicleEntranceCount": "FIWARE OffStreetParking `vehicleEntranceCount`",
    "vehicleExitCount": "FIWARE OffStreetParking `vehicleExitCount`",
    "transactionID": "APDS `transactionID` (payment)",
    "value": "APDS `value` (payment amount)",
    "currency": "APDS currency (ISO 4217)",
    "reservationId": "APDS Right/reservation id",
    "action": "ParkTwin",
}

_BEGIN = "<!-- generated: python -m parktwin.adapters.events docs/feed_events.md -->"
_END = "<!-- end generated -->"


def _type_name(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "").replace("pydantic.types.", "")
    text = text.replace("<class '", "").replace("'>", "").replace("datetime.datetime", "datetime")
    text = text.replace("Annotated[datetime, Timezone]", "datetime").replace("NoneType", "None")
    for name in ("AwareDatetime", "Annotated[datetime, AwareDatetime]"):
        text = text.replace(name, "datetime (with zone)")
    # UtcDatetime: the conversion to UTC is said once in the doc's prose, not in every row
    text = re.sub(r"Annotated\[(datetime \(with zone\)), AfterValidator\([^)]*\)\]", r"\1", text)
    if text.startswith("Optional[") and text.endswith("]"):
        text = f"{text[9:-1]} or None"
    return text.replace("|", "or")


def markdown_tables() -> str:
    """The schema as markdown: one table per kind (field, type, required, meaning, standard)."""
    out = [_BEGIN, ""]
    for model in EVENT_TYPES:
        kind = model.model_fields["kind"].annotation.__args__[0]  # type: ignore[union-attr]
        doc = (model.__doc__ or "").strip().splitlines()[0]
        out += [
            f"### `{kind}`",
            "",
            doc,
            "",
            "| field | type | required | meaning | standard |",
            "|---|---|---|---|---|",
        ]
        for name, info in model.model_fields.items():
            if name == "kind":
                meaning, typ = f"always `{kind}`", "str"
            else:
                meaning, typ = info.description or "", _type_name(info.annotation)
            req = "yes" if info.is_required() else "no"
            out.append(f"| `{name}` | {typ} | {req} | {meaning} | {STANDARD.get(name, '')} |")
        out.append("")
    out.append(_END)
    return "\n".join(out)


def update_doc(path: str) -> bool:
    """Rewrite the generated block of ``path``; True when it changed."""
    from pathlib import Path

    p = Path(path)
    text = p.read_text(encoding="utf-8")
    head, _, rest = text.partition(_BEGIN)
    _, _, tail = rest.partition(_END)
    new = head + markdown_tables() + tail
    if new != text:
        p.write_text(new, encoding="utf-8")
    return new != text


def doc_block(text: str) -> str:
    """The generated block as it stands in a document (for the drift test)."""
    start = text.find(_BEGIN)
    end = text.find(_END)
    return text[start : end + len(_END)] if start >= 0 and end >= 0 else ""


__all__ = [
    "EVENT",
    "EVENT_TYPES",
    "KINDS",
    "SCHEMA_VERSION",
    "CounterSnapshot",
    "Event",
    "GateEntry",
    "GateExit",
    "Heartbeat",
    "Payment",
    "PlateRead",
    "Reservation",
    "SpotReading",
    "observed",
    "parse_json",
    "parse_obj",
    "to_json",
]


if __name__ == "__main__":  # python -m parktwin.adapters.events docs/feed_events.md
    import sys

    for target in sys.argv[1:]:
        print(f"{target}: {'updated' if update_doc(target) else 'up to date'}")
