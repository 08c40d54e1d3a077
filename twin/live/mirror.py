"""The live mirror: a running lot's feed folded into the core objects the simulator uses.

Why the same objects: a gate controller, the simulator and the twin must agree on what a lot
*is*. The mirror therefore holds a core :class:`~twin.core.lot.Lot` (sessions opened at the
gate and closed at the exit, spots held or closed, per-level and per-type availability, exit
prices from the core tariff) and the core detection layer (:class:`~twin.core.sensors.SensorBank`
with its confidence decay, :class:`~twin.core.sensors.LevelCounters`,
:class:`~twin.core.sensors.AvailabilityEstimator`, which falls back to the counters on levels
whose sensors are no longer trusted). Nothing is re-implemented here: the mirror only turns
feed events (``parktwin.adapters.events``) into calls on those objects.

Event sourcing
--------------
The mirror's state is a *fold* of its event log in observed-time order (ties by the order a
car meets the devices: camera, booking system, entry gate, bay, payment, exit gate; then
heartbeats, counters; then by event id), plus clock ticks every ``tick_s`` of feed time
(silence checks, divergence checks). Because the fold's order is a property of the events, not
of their arrival, a gate that was offline for an hour and uploads its buffer in one burst ends
in exactly the state live arrival would have given: a late event is inserted in the log and
the fold is replayed from the newest checkpoint before it (a pickled fold, taken every
``checkpoint_s``). Checkpoints and log are
kept for ``keep_s`` of feed time; an event older than that is set aside and counted
(``too_late``), never applied out of order. A small reorder buffer (``reorder_s``) absorbs the
ordinary jitter between devices without a replay.

``snapshot()`` gives a checkpoint of the current fold (bytes) and ``Mirror.restore`` rebuilds a
mirror from it; applying the tail of the log then gives exactly the state of the full fold
(tests/live/test_mirror.py checks both properties).

Sessions whose gate event names the spot (APDS ``spaceId``) are placed on that spot
(``Lot.allocate_spot``); the others go through the lot's own allocation strategy, the same
path as a simulated car, so the mirror's per-level picture is the model's best guess.
"""

from __future__ import annotations

import gc
import math
import pickle
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from heapq import heappop, heappush
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twin.core.lot import Lot
from twin.core.types import Vehicle
from twin.live.fold import FEED, Alert, Fold, MirrorConfig

if TYPE_CHECKING:
    from twin.live.divergence import Divergence
    from twin.scenario.model import Scenario


#: Tie order of events observed at the same instant: a car meets the camera, the booking system
#: (a holder), the entry gate, its bay, the pay station, the exit gate; device chatter after.
_RANK = {
    "plate_read": "0",
    # a reservation honoured as its holder reaches the gate: the bay's hold ends before the
    # holder's car takes it (a cancellation or expiry at the same instant frees it first too)
    "reservation": "1",
    "gate_entry": "2",
    "spot_reading": "3",
    "payment": "4",
    "gate_exit": "5",
    "heartbeat": "6",
    "counter": "7",
}


#: Net new objects the cyclic collector lets pass between two young collections while a feed
#: is folded (Python's default: 700). The mirror's heap is bounded (the log and checkpoints of
#: ``keep_s``; trimmed events are freed by reference counting), so at the default every few
#: hundred events promote log entries that later collections rescan, full passes included: a
#: fifth of a fast replay's CPU. With this threshold the collector runs only when that many
#: more objects are alive than at its last pass, so cyclic garbage is still collected.
FOLD_GC_THRESHOLD = 100_000

_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] = (700, 10, 10)


@contextmanager
def few_collections(threshold: int | None = None) -> Iterator[None]:
    """Raise the collector's young-generation threshold to ``threshold`` (default
    ``FOLD_GC_THRESHOLD``; never lowered) while the block runs, then restore the caller's
    thresholds; nests and is thread-safe (the first to enter saves, the last to leave
    restores)."""
    global _gc_users, _gc_saved
    if threshold is None:
        threshold = FOLD_GC_THRESHOLD
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()  # type: ignore[assignment]
            first, *rest = _gc_saved
            if 0 < first < threshold:  # 0: the caller disabled automatic collection
                gc.set_threshold(threshold, *rest)
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0:
                gc.set_threshold(*_gc_saved)


def _tie(event: Any) -> str:
    """The order among events observed at one instant (None: after every event)."""
    if event is None:
        return "\uffff"
    return _RANK.get(event.kind, "9") + event.id


_time_of = itemgetter(0)


def _rebuild(cls: type, values: tuple[Any, ...]) -> Any:
    obj = object.__new__(cls)
    for name, value in zip(cls.__slots__, values, strict=True):
        if value is not _UNSET:
            object.__setattr__(obj, name, value)
    return obj


class _Unset:
    def __reduce__(self) -> str:
        return "_UNSET"


_UNSET = _Unset()


_SLOTS: dict[type, Any] = {}  # class -> attrgetter of its slots (one C call per object)


def _reduce_slots(obj: Any) -> tuple[Any, ...]:
    """Pickle a slots dataclass as its slot values: the stdlib's generic dataclass state calls
    ``dataclasses.fields`` per object, which made a checkpoint of a 500-bay lot cost 11 ms."""
    cls = type(obj)
    get = _SLOTS.get(cls)
    if get is None:
        names = cls.__slots__
        get = _SLOTS[cls] = attrgetter(*names) if len(names) > 1 else None
    if get is not None:
        try:
            return _rebuild, (cls, get(obj))
        except AttributeError:  # a slot not set: marked, so the rebuild leaves it unset
            pass
    return _rebuild, (cls, tuple(getattr(obj, name, _UNSET) for name in cls.__slots__))


def _dumps(obj: Any) -> bytes:
    from io import BytesIO

    from twin.core.facility import Level, Spot
    from twin.core.lot import Session

    buf = BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {cls: _reduce_slots for cls in (Spot, Session, Vehicle, Level)}
    pickler.dump(obj)
    return buf.getvalue()


class Mirror:
    """A running lot's feed folded into core objects: ``offer(event)``, then read the state.

    ``epoch`` is the feed instant that is core time 0 (default: the scenario's start, UTC when
    it has no zone), so times of day, weekdays and tariff bands line up with the scenario.
    """

    def __init__(
        self,
        scenario: Scenario,
        config: MirrorConfig | None = None,
        *,
        epoch: datetime | None = None,
        divergence: Divergence | None = None,
        lot: Lot | None = None,
    ) -> None:
        from twin.sim.build import build_lot, calendar_for

        self.scenario = scenario
        self.config = config or MirrorConfig()
        self.calendar = calendar_for(scenario)
        start = scenario.start if epoch is None else epoch
        self.epoch = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
        self._shared = divergence.shared() if divergence is not None else None
        self.fold = Fold(lot or build_lot(scenario, self.calendar), self.config, 0.0, divergence)
        self.fold.epoch = self.epoch
        self._buffer: list[tuple[float, str, Any]] = []  # reorder heap: (t, tie, event)
        self._late: list[tuple[float, Any]] = []  # older than the fold: to replay
        self._settle_after = self.config.checkpoint_s / 2
        self._max_t = -math.inf
        self._log: list[tuple[float, Any]] = []  # (t, event) applied, in fold order, keep_s
        self._checkpoints: list[tuple[float, bytes]] = []  # (time, pickled fold), ascending
        self._next_checkpoint = self.config.checkpoint_s
        self._direct = self.config.reorder_s == 0.0
        self._last_t = -math.inf
        self._last_ev: Any = None  # the last event applied (ties at its instant: _tie)
        self.offered = 0
        self.replays = 0
        self.replayed_events = 0
        #: Events too old to fold in exactly (older than ``keep_s``), set aside with a reason.
        self.set_aside: list[tuple[str, Any]] = []
        self._checkpoints.append((-math.inf, self._pickle()))  # the empty lot: fold's start

    # -- time -----------------------------------------------------------------------------
    def seconds(self, when: datetime) -> float:
        """Core seconds of a feed instant."""
        return (when - self.epoch).total_seconds()

    def when(self, t: float) -> datetime:
        from datetime import timedelta

        return self.epoch + timedelta(seconds=t)

    @property
    def t(self) -> float:
        return self.fold.t

    # -- intake ---------------------------------------------------------------------------
    def offer(self, event: Any) -> None:
        """Take one validated feed event (any order; see the module docstring)."""
        self.offered += 1
        t = (event.dateObserved - self.epoch).total_seconds()
        if self._direct:  # the hot path: in order (the usual case) -> applied at once
            last = self._last_t
            if t > last or (t == last and _tie(event) >= _tie(self._last_ev)):
                # late events are folded in by one replay for many: when the feed has moved
                # on past them by half a checkpoint interval, or when the state is read
                if self._late and t - self._late[0][0] > self._settle_after:
                    self._settle()
                if t >= self._next_checkpoint:
                    self._checkpoint_until(t)
                self._log.append((t, event))
                self.fold.apply(event, t)
                self._last_t, self._last_ev = t, event
            else:
                self._late.append((t, event))
            return
        heappush(self._buffer, (t, _tie(event), event))
        if t > self._max_t:
            self._max_t = t
            self._drain(t - self.config.reorder_s)

    def consume(self, events: Iterable[Any]) -> Mirror:
        """Offer every event of an iterable (e.g. ``Intake.events(source)``), then flush."""
        offer = self.offer
        with few_collections():
            for event in events:
                offer(event)
            self.flush()
        return self

    def flush(self) -> None:
        """Apply every buffered and late event now (call before reading a final state)."""
        self._drain(math.inf)
        self._settle()

    def _settle(self) -> None:
        if self._late:
            late, self._late = self._late, []
            self._replay(late)

    def advance(self, t: float) -> None:
        """Let feed time pass to ``t`` with no event (a live feed's quiet minutes); before
        the feed's first event nothing happens: the fold's clock starts there."""
        self.flush() if self._direct else self._drain(t - self.config.reorder_s)
        self._checkpoint_until(t)
        self.fold.advance(t)

    def _in_order(self, t: float, event: Any) -> bool:
        last = self._last_t
        return t > last or (t == last and _tie(event) >= _tie(self._last_ev))

    def _drain(self, watermark: float) -> None:
        buf = self._buffer
        while buf and buf[0][0] <= watermark:
            t, _, event = heappop(buf)
            if not self._in_order(t, event):
                self._late.append((t, event))
                continue
            if self._late and t - self._late[0][0] > self._settle_after:
                self._settle()
                if not self._in_order(t, event):
                    self._late.append((t, event))
                    continue
            self._apply(t, event)
            self._last_t, self._last_ev = t, event

    def _apply(self, t: float, event: Any) -> None:
        if t >= self._next_checkpoint:
            self._checkpoint_until(t)
        self._log.append((t, event))
        self.fold.apply(event, t)

    def _checkpoint_until(self, t: float) -> None:
        self.fold.check_gap(t)  # a feed dated years on: one line, not years of checkpoints
        step = self.config.checkpoint_s
        if self.fold.first_t is None:
            # nothing folded yet: the fold's clock starts at its first event (Fold.start), and
            # every checkpoint before it would be the empty lot, which the first one is
            self._next_checkpoint = max(self._next_checkpoint, (math.floor(t / step) + 1) * step)
            return
        while self._next_checkpoint <= t:
            cp = self._next_checkpoint
            self.fold.advance(cp)
            self._checkpoints.append((cp, self._pickle()))
            self._next_checkpoint = cp + step
        self._trim()

    def _trim(self) -> None:
        horizon = self._next_checkpoint - self.config.checkpoint_s - self.config.keep_s
        cps = self._checkpoints
        k = 0
        # a checkpoint may go once the next one is itself older than the horizon: events
        # back to the horizon can then still be replayed from that next one
        while k < len(cps) - 1 and cps[k + 1][0] <= horizon:
            k += 1
        if k:
            del cps[:k]
        if cps:
            log = self._log  # in fold order, so ascending in time
            j = bisect_left(log, cps[0][0], key=_time_of)
            if j:
                del log[:j]

    def _replay(self, late: list[tuple[float, Any]]) -> None:
        """Fold late events in: back to the newest checkpoint before the earliest, replay."""
        earliest = min(x[0] for x in late)
        cps = self._checkpoints
        k = len(cps) - 1
        while k >= 0 and cps[k][0] > earliest:
            k -= 1
        if k < 0:  # nothing to go back to: older than what is kept
            keep = []
            for item in late:
                if not cps or item[0] < cps[0][0]:
                    self.set_aside.append(("too_late", item[1]))
                else:
                    keep.append(item)
            if not keep:
                return
            late, k = keep, 0
        cp_t, blob = cps[k]
        tail = [x for x in self._log if x[0] >= cp_t] + late
        tail.sort(key=lambda x: (x[0], _tie(x[1])))
        self._log = [x for x in self._log if x[0] < cp_t]
        del cps[k + 1 :]
        self.fold = self._unpickle(blob)
        step = self.config.checkpoint_s
        self._next_checkpoint = step if cp_t == -math.inf else cp_t + step
        self.replays += 1
        self.replayed_events += len(tail)
        for t, event in tail:
            self._apply(t, event)
        if tail:
            self._last_t, self._last_ev = tail[-1]

    # -- snapshots ------------------------------------------------------------------------
    def _pickle(self) -> bytes:
        div = self.fold.divergence
        shared = div.detach() if div is not None else None
        try:
            return _dumps(self.fold)
        finally:
            if div is not None:
                div.attach(shared)

    def _unpickle(self, blob: bytes) -> Fold:
        fold = pickle.loads(blob)
        if fold.divergence is not None:
            fold.divergence.attach(self._shared)
        return fold

    def snapshot(self) -> bytes:
        """The current state (buffered events applied first) as bytes: ``Mirror.restore``."""
        self.flush()
        return self._pickle()

    @classmethod
    def restore(
        cls,
        snapshot: bytes,
        scenario: Scenario,
        config: MirrorConfig | None = None,
        *,
        epoch: datetime | None = None,
        divergence: Divergence | None = None,
    ) -> Mirror:
        """A mirror continuing from ``snapshot``; offer it the tail of the log."""
        mirror = cls(scenario, config, epoch=epoch, divergence=divergence)
        mirror._shared = divergence.shared() if divergence is not None else None
        mirror.fold = mirror._unpickle(snapshot)
        t = mirror.fold.t
        mirror._checkpoints = [(t, snapshot)]
        mirror._last_t, mirror._last_ev = t, None  # an event at t itself replays from here
        mirror._next_checkpoint = (math.floor(t / mirror.config.checkpoint_s) + 1) * (
            mirror.config.checkpoint_s
        )
        return mirror

    # -- what the operator reads -----------------------------------------------------------
    def levels(self) -> list[dict[str, Any]]:
        self._settle()
        return self.fold.levels()

    def alerts(self) -> list[Alert]:
        self._settle()
        return list(self.fold.alerts)

    def open_alerts(self) -> list[Alert]:
        self._settle()
        return self.fold.open_alerts()

    def fingerprint(self) -> dict[str, Any]:
        self._settle()
        return self.fold.fingerprint()

    def summary(self) -> dict[str, Any]:
        """Counts for people: events offered, applied by kind, anomalies, replays."""
        f = self.fold
        return {
            "time": self.when(f.t).isoformat(),
            "offered": self.offered,
            "applied": sum(f.kinds.values()),
            "buffered": len(self._buffer),
            "by_kind": dict(f.kinds),
            "anomalies": dict(f.anomalies),
            "too_late": len(self.set_aside),
            "replays": self.replays,
            "open_sessions": len(f.sessions),
            "parked_before_feed": f.parked_before_feed,
            "queue": len(f.queue.cars(f.t)),
            "held": len(f.reservations),
            "occupied": f.lot.n_occupied,
            "capacity": f.lot.capacity,
            "priced": f.priced_cents / 100,
            "paid": f.paid_cents / 100,
            "payments": dict(f.payments),
        }

    def state(self) -> Any:
        """The mirrored lot as a ``StartState`` (see :meth:`Fold.state`)."""
        self._settle()
        return self.fold.state(self.scenario)

    def forecast(self, hours: float = 4.0, replications: int = 20, seed: int | None = None) -> Any:
        """Replications of the model run ahead from the mirrored state (what
        ``twin.api.forecast`` does; called directly, since twin.api imports this module)."""
        from twin.live.forecast import forecast
        from twin.sim.initial import start_from

        scenario = start_from(self.scenario, self.state(), warmup_hours=0.0)
        return forecast(scenario, hours=hours, replications=replications, seed=seed)

    def sessions(self) -> Iterator[tuple[str, Any]]:
        """Open sessions: (sessionId, core Session)."""
        lot = self.fold.lot
        for sid, ticket in self.fold.sessions.items():
            yield sid, lot.session(ticket)


# -- a feed source by name, and a mirror fed from it -----------------------------------------


def open_source(
    source: str | Path,
    *,
    mapping: str | Path | None = None,
    speed: float | None = None,
    idle_s: float | None = None,
    client_id: str = "parktwin-twin",
) -> Any:
    """``mqtt://HOST:PORT/TOPIC`` → an MQTT source (QoS 1, persistent session, ends after
    ``idle_s`` quiet seconds); a JSONL/CSV path → a file replay at ``speed``; with ``mapping``
    a foreign export read through it."""
    from parktwin.adapters.sources import FileReplay, MappedExport, Mapping

    text = str(source)
    if text.startswith("mqtt://"):
        from parktwin.adapters.sources.mqtt import MqttSource, parse_address

        host, port = parse_address(text)
        rest = text.removeprefix("mqtt://").split("/", 1)
        topic = rest[1] if len(rest) > 1 and rest[1] else "parktwin/events"
        return MqttSource(host, port, topic, client_id=client_id, idle_s=idle_s)
    path = Path(text)
    if path.is_dir():
        raise FileNotFoundError(f"{path}: a folder, not a feed file (give the .jsonl or .csv)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such feed file")
    if mapping is not None:
        return MappedExport(path, Mapping.load(mapping))
    return FileReplay(path, speed=speed)


@dataclass
class Live:
    """A mirror fed from a source through the intake: what ``twin.api.mirror`` returns."""

    mirror: Mirror
    intake: Any

    def feed(self) -> dict[str, Any]:
        """The intake's counts: received, applied, dead-lettered by reason."""
        return self.intake.report()

    def nothing_mirrored(self) -> str | None:
        """None once an event has been folded in; else why none was, in words for one line:
        the feed was empty, or every event it held was set aside (how many, for which
        reasons: the intake's dead letters and the mirror's ``too_late``). A twin that
        mirrored nothing shows an empty lot at the scenario's start, which looks like a
        quiet lot: ``parktwin live`` says so instead and exits 1."""
        if self.mirror.fold.kinds:
            return None
        feed = self.feed()
        received = feed["received"]
        if not received:
            return "no event applied: the feed is empty (0 events read)"
        reasons = dict(feed["by_reason"])
        if self.mirror.set_aside:
            reasons["too_late"] = len(self.mirror.set_aside)
        why = ", ".join(f"{reason} {n:,}" for reason, n in reasons.items())
        every = "the one" if received == 1 else f"all {received:,}"
        return f"no event applied: {every} read set aside ({why})"

    def run(self, source: Iterable[Any], every: Any = None, every_s: float = 1.0) -> Live:
        """Offer every payload of ``source``; ``every(self)`` at most once per ``every_s``
        wall-clock seconds (a live view's refresh), checked as events arrive."""
        import time

        offer = self.mirror.offer
        clock = time.monotonic
        due = clock() + every_s
        with few_collections():
            for event in self.intake.events(source):
                offer(event)
                if every is not None and clock() >= due:
                    every(self)
                    due = clock() + every_s
            self.mirror.flush()
        return self


__all__ = ["FEED", "Alert", "Fold", "Live", "Mirror", "MirrorConfig", "open_source"]
