"""One interface for every feed: a source yields raw payloads, the intake turns them into
validated events or dead letters.

Why split source and intake: files, exports and MQTT differ only in how payloads arrive
(pace, transport, redelivery); what counts as a bad event does not. The intake owns every
check and every counter, so ``applied + dead-lettered == received`` holds for all sources
by construction, and a bad payload is never fatal: it is written with its reason to the
dead-letter JSONL file (one line: ``reason``, ``detail``, ``raw``, ``where``, ``received``)
and counted.

Checks, in order (the first that fails is the reason):

* ``malformed_json``: not JSON (or not a JSON object);
* ``unsupported_version``: ``v`` is not a version this code reads;
* ``unknown_kind``: ``kind`` missing or not one of the schema's kinds;
* ``missing_field`` / ``invalid_field``: a required field absent, or a value not allowed;
* ``duplicate``: an event id already received (MQTT redelivery, re-uploaded buffer);
* ``future_timestamp``: observed later than *now* + ``future_tolerance_s`` (now: the time
  the payload was received, from the source, or the injected clock);
* ``clock_skew``: the device's clock disagrees with the other devices' by more than
  ``skew_tolerance_s``: each device's *latency floor* (smallest received − observed over its
  last live events) is compared with the median floor of the other devices; only live
  events (not ``buffered`` uploads) are judged, and only when receive times are known;
* ``out_of_order``: observed earlier than the same device's latest accepted event by more
  than ``out_of_order_tolerance_s`` (events of *different* devices may interleave freely:
  a gate uploading its buffer after an outage is not out of order).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol

from pydantic import ValidationError

from ..events import EVENT, SCHEMA_VERSION

# The validator itself (TypeAdapter's methods add a Python call per event).
_validate_json = EVENT.validator.validate_json
_validate_python = EVENT.validator.validate_python

#: Every reason an event is set aside, in the order they are checked.
REASONS: tuple[str, ...] = (
    "malformed_json",
    "unsupported_version",
    "unknown_kind",
    "missing_field",
    "invalid_field",
    "duplicate",
    "future_timestamp",
    "clock_skew",
    "out_of_order",
)


class Raw(NamedTuple):
    """One payload as a source delivers it (a tuple: made once per event, so cheap).

    ``payload`` is JSON text/bytes or an already parsed mapping (CSV rows, mapped exports);
    ``received`` the time it reached us (None when unknown, e.g. a file without receive
    times); ``where`` names its origin for people (``file.jsonl:17``, ``mqtt:topic``).
    """

    payload: str | bytes | dict[str, Any]
    received: datetime | None = None
    where: str = ""


class Source(Protocol):
    """Anything that yields raw payloads: ``FileReplay``, ``MappedExport``, ``MqttSource``."""

    def __iter__(self) -> Iterator[Raw]: ...


@dataclass
class Tolerances:
    """How much disorder a feed may show before an event is set aside (seconds)."""

    out_of_order_s: float = 5.0
    future_s: float = 300.0
    skew_s: float = 300.0
    #: how many recent live events make a device's latency floor
    skew_window: int = 8


def _reason(exc: ValidationError) -> tuple[str, str]:
    """The dead-letter reason and a one-line detail for a schema failure."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    kind = first["type"]
    loc = ".".join(str(p) for p in first["loc"])
    if kind in ("json_invalid", "json_type"):
        return "malformed_json", first["msg"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return "unknown_kind", first["msg"]
    if not first["loc"]:
        return "malformed_json", "not a JSON object"
    for err in errors:  # a wrong version explains every other error: report it first
        if err["loc"][-1:] == ("v",):
            return "unsupported_version", f"v: only {SCHEMA_VERSION} is read"
    if kind == "missing":
        return "missing_field", f"{loc}: missing"
    return "invalid_field", f"{loc}: {first['msg']}"


def _text(payload: str | bytes | dict[str, Any]) -> str:
    if isinstance(payload, bytes):
        return payload.decode("utf-8", errors="backslashreplace")
    if isinstance(payload, dict):
        return json.dumps(payload, default=str)
    return payload


@dataclass
class Intake:
    """Validates raw payloads into events; counts and dead-letters the rest.

    ``dead_letter`` is a path (appended, JSONL) or an open text file or None (counted only).
    ``clock`` gives *now* (timezone-aware) when a payload carries no receive time; None means
    the future check needs the source's receive times. ``seen`` keeps every accepted id (the
    dedupe set; ~100 bytes per event).
    """

    dead_letter: Path | IO[str] | None = None
    tolerances: Tolerances = field(default_factory=Tolerances)
    clock: Callable[[], datetime] | None = None
    #: False: ignore receive times and the clock (no future / clock-skew checks), for a
    #: simulated or recorded feed sent faster than real time, whose observed times have
    #: nothing to do with the wall clock (``parktwin emit --speed 60`` read over MQTT).
    receive_times: bool = True
    received: int = 0
    applied: int = 0
    dead: Counter[str] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)
    _last: dict[str, datetime] = field(default_factory=dict)
    _lag: dict[str, deque[float]] = field(default_factory=dict)
    _floor: dict[str, float] = field(default_factory=dict)
    _out: IO[str] | None = None
    _median: float = float("nan")
    _since: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.dead_letter, Path | str):
            path = Path(self.dead_letter)
            path.parent.mkdir(parents=True, exist_ok=True)
            # Line-buffered: a dead letter is on disk once offer() returns, even if we crash.
            self._out = path.open("a", encoding="utf-8", buffering=1)
        else:
            self._out = self.dead_letter

    # -- the one entry point ---------------------------------------------------------------
    def offer(self, raw: Raw) -> Any | None:
        """The event if it passes every check, else None (dead-lettered with its reason)."""
        self.received += 1
        payload = raw[0]
        try:
            is_dict = type(payload) is dict
            event = _validate_python(payload) if is_dict else _validate_json(payload)
        except ValidationError as exc:
            reason, detail = _reason(exc)
            return self._reject(raw, reason, detail)
        eid = event.id
        if eid in self.seen:
            return self._reject(raw, "duplicate", f"id {eid} already received")
        t = event.dateObserved
        device = event.refDevice
        now = raw[1] if self.receive_times else None
        if now is None and self.clock is not None and self.receive_times:
            now = self.clock()
        if now is not None:
            ahead = (t - now).total_seconds()
            tol = self.tolerances
            if ahead > tol.future_s:
                return self._reject(raw, "future_timestamp", f"{ahead:.0f} s after receipt")
            if not event.buffered:
                # The device's latency floor (least received − observed over its last live
                # events) against the fleet's; inline, as this runs for every event.
                window = self._lag.get(device)
                if window is None:
                    window = self._lag[device] = deque(maxlen=tol.skew_window)
                window.append(-ahead)
                floors = self._floor
                floor = floors[device] = min(window)
                if len(floors) > 32:  # _fleet_floor's large-fleet path
                    self._since += 1
                    if self._since >= 1024 or self._median != self._median:
                        self._median = statistics.median(floors.values())
                        self._since = 0
                    fleet = self._median
                else:
                    fleet = self._fleet_floor(device)
                if fleet == fleet and abs(floor - fleet) > tol.skew_s:
                    return self._reject(
                        raw,
                        "clock_skew",
                        f"device {device} latency floor {floor:.0f}"
                        f" s vs {self._fleet_floor(device):.0f} s for the others",
                    )
        last = self._last.get(device)
        if last is not None and t < last:
            behind = (last - t).total_seconds()
            if behind > self.tolerances.out_of_order_s:
                return self._reject(raw, "out_of_order", f"{behind:.0f} s before the device's last")
        else:
            self._last[device] = t
        self.seen.add(eid)
        self.applied += 1
        return event

    def _fleet_floor(self, device: str) -> float:
        """Median latency floor of the other devices. Exact for small fleets; for large ones
        (where one device hardly moves the median) refreshed every 1,024 live events, so the
        check costs O(1) per event instead of a median over every sensor."""
        floors = self._floor
        if len(floors) <= 32:
            others = [v for k, v in floors.items() if k != device]
            return statistics.median(others) if len(others) >= 2 else float("nan")
        self._since += 1
        if self._since >= 1024 or self._median != self._median:
            self._median = statistics.median(floors.values())
            self._since = 0
        return self._median

    def _reject(self, raw: Raw, reason: str, detail: str) -> None:
        self.dead[reason] += 1
        if self._out is not None:
            line = {
                "reason": reason,
                "detail": detail,
                "where": raw.where,
                "received": raw.received.isoformat() if raw.received else None,
                "raw": _text(raw.payload),
            }
            self._out.write(json.dumps(line) + "\n")
        return None

    # -- helpers ---------------------------------------------------------------------------
    def events(self, source: Iterable[Raw]) -> Iterator[Any]:
        """The accepted events of ``source``, in arrival order."""
        offer = self.offer
        for raw in source:
            event = offer(raw)
            if event is not None:
                yield event

    @property
    def dead_lettered(self) -> int:
        return sum(self.dead.values())

    def report(self) -> dict[str, Any]:
        """Counts for people and the twin: received, applied, dead-lettered by reason."""
        assert self.applied + self.dead_lettered == self.received
        return {
            "received": self.received,
            "applied": self.applied,
            "dead_lettered": self.dead_lettered,
            "by_reason": {r: self.dead[r] for r in REASONS if self.dead[r]},
        }

    def snapshot(self) -> dict[str, Any]:
        """The intake's state as JSON-ready data (ids seen, each device's latest observed
        time, the counts), so a mirror rebuilt from a snapshot plus the tail of its log
        still recognises duplicates and late events across the snapshot's boundary."""
        return {
            "received": self.received,
            "applied": self.applied,
            "dead": dict(self.dead),
            "seen": sorted(self.seen),
            "last": {d: t.isoformat() for d, t in self._last.items()},
        }

    def restore(self, snapshot: dict[str, Any]) -> Intake:
        """Continue from ``snapshot`` (see :meth:`snapshot`); returns self."""
        self.received = int(snapshot["received"])
        self.applied = int(snapshot["applied"])
        self.dead = Counter({str(k): int(v) for k, v in snapshot["dead"].items()})
        self.seen = set(snapshot["seen"])
        self._last = {d: datetime.fromisoformat(t) for d, t in snapshot["last"].items()}
        return self

    def __enter__(self) -> Intake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._out is not None and isinstance(self.dead_letter, Path | str):
            self._out.close()
        elif self._out is not None:
            self._out.flush()


def utc_now() -> datetime:
    """The wall clock, timezone-aware (the live default for ``Intake.clock``)."""
    return datetime.now(UTC)


def pace(
    times: Iterable[datetime],
    speed: float | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Yield once per time, waiting so feed time runs ``speed`` × wall time (None: at once).

    Injected ``clock``/``sleep`` let tests replay a day without waiting for it.
    """
    start_wall: float | None = None
    start_feed: datetime | None = None
    for t in times:
        if speed is not None:
            if start_wall is None:
                start_wall, start_feed = clock(), t
            else:
                assert start_feed is not None
                due = start_wall + (t - start_feed).total_seconds() / speed
                wait = due - clock()
                if wait > 0:
                    sleep(wait)
        yield None


__all__ = [
    "REASONS",
    "Intake",
    "Raw",
    "Source",
    "Tolerances",
    "pace",
    "utc_now",
]
