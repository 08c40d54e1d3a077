"""The mirror's state: a fold of feed events into the core objects the simulator uses.

:class:`Fold` holds a core :class:`~twin.core.lot.Lot` and the core detection layer and turns
each feed event into calls on them (see :mod:`twin.live.mirror` for the ordering, the
snapshots and the replay of late events, which live there). Gate entries open *pending*
sessions; the bay sensor that then reads occupied binds the newest pending car that fits
(``Lot.allocate_spot``), a bay reading free ends the core session (the car drives out) and the
exit gate prices it; the exit's ``spaceId`` repairs identities the binding got wrong. Checks
of sensors against gates (a bay free under a car that has not left, occupied with no car from
the gates, still occupied after its car left, a car no bay reports) and silence against the
heartbeat period raise alerts; a distrusted or silent sensor's confidence decays by the core
model and its level leans on the counters (or the gate picture) for that bay. What is read
from the fold afterwards (free bays per level, the start state, the fingerprint) is its base
class, :class:`~twin.live.fold_readout.FoldReadout`.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

from twin.core.errors import InvalidTransition, NoCompatibleSpot, UnknownTicket
from twin.core.lot import Lot
from twin.core.sensors import (
    AvailabilityEstimator,
    ConfidenceModel,
    Detection,
    LevelCounters,
    SensorBank,
    SensorMode,
)
from twin.core.types import SPOT_CAPACITY, SpotStatus, Vehicle, VehicleClass
from twin.live.entry_queue import EntryQueue
from twin.live.fold_readout import FoldReadout
from twin.scenario.state import MAX_STATE_MIN

if TYPE_CHECKING:
    from twin.live.divergence import Divergence

_AVAILABLE = SpotStatus.AVAILABLE
_OCCUPIED = SpotStatus.OCCUPIED
_RESERVED = SpotStatus.RESERVED
_MAINTENANCE = SpotStatus.MAINTENANCE
#: The source name of the mirror's claims on spots (``Lot.apply_feed_status``): a feed's
#: ``closed``/``unknown`` reading is a claim ``feed:closed``/``feed:unknown``, lifted by a later
#: free/occupied reading; other owners' holds and closures are never touched.
FEED = "feed"
_FEED_CLAIMS = (f"{FEED}:closed", f"{FEED}:unknown")


#: Longest stretch of feed time between the mirror's clock and an event (366 days, as long as a
#: start state's ages may be): the fold ticks every ``tick_s`` across it.
MAX_GAP_S = MAX_STATE_MIN * 60.0


class FeedGap(ValueError):
    """A feed event too far from the mirror's clock to step to (one line)."""


@dataclass(frozen=True)
class MirrorConfig:
    """How the mirror reads a feed (feed-time seconds throughout)."""

    #: Interval at which bay sensors send heartbeats; silence is judged against it.
    heartbeat_s: float = 900.0
    #: A sensor is *silent* once this many heartbeat intervals pass without a word from it.
    missed_heartbeats: float = 1.5
    #: The core confidence model of a silent sensor (:class:`ConfidenceModel`).
    half_life_s: float = 900.0
    threshold: float = 0.5
    #: Time a bay sensor gets to confirm a gate exit, or a gate to explain an occupied bay.
    grace_s: float = 300.0
    #: Time from the entry gate to a bay reading occupied (drive, wait for a bay).
    grace_in_s: float = 600.0
    #: A car that entered with no fitting bay free and has not parked after this long gave
    #: up; it no longer takes a bay that reads occupied. (1 h looks right for drivers whose
    #: patience is minutes, but measured it raised false "stuck free" alerts: a car the
    #: mirror counted as waiting may have parked under another car's identity; see the
    #: closing note. A feed that sends an exit for drivers who give up makes this moot.)
    give_up_s: float = 86_400.0
    #: Time from a bay reading free to its car passing the exit gate (drive, exit queue).
    grace_out_s: float = 600.0
    #: A car read at the entry barrier and neither admitted nor seen leaving the lane after
    #: this long is taken as gone (a feed that does not report drivers giving up).
    queue_keep_s: float = 7200.0
    #: Clock tick of the fold (silence, contradictions, divergence sampling).
    tick_s: float = 60.0
    checkpoint_s: float = 7200.0
    #: How far back a late event can still be folded in exactly.
    keep_s: float = 6 * 3600.0
    #: Events are held this long (feed time) before being applied, so that ordinary jitter
    #: between devices needs no replay (a live MQTT feed: a few seconds). 0: applied at once,
    #: late ones replayed in a batch before the next in-order event or read.
    reorder_s: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "heartbeat_s",
            "missed_heartbeats",
            "half_life_s",
            "grace_s",
            "grace_in_s",
            "give_up_s",
            "grace_out_s",
            "queue_keep_s",
            "tick_s",
            "checkpoint_s",
            "keep_s",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if not (math.isfinite(self.reorder_s) and self.reorder_s >= 0):
            raise ValueError(f"reorder_s must be a finite number >= 0, got {self.reorder_s}")
        if self.checkpoint_s % self.tick_s:
            raise ValueError("checkpoint_s must be a multiple of tick_s")


@dataclass(frozen=True)
class Alert:
    """Something the duty manager should look at: what, where, since when, detected when."""

    kind: str
    subject: str
    #: Feed time the condition is believed to have begun (seconds since the epoch).
    since_t: float
    #: Feed time the mirror raised it.
    raised_t: float
    message: str
    cleared_t: float | None = None

    def key(self) -> tuple[str, str]:
        return (self.kind, self.subject)


def _vehicle(vehicle_type: str | None, ident: str) -> Vehicle:
    """A core Vehicle from a feed's ``vehicleType`` ("REGULAR", "compact+ev", "LARGE/handicap")."""
    vclass, ev, handicap = VehicleClass.REGULAR, False, False
    if vehicle_type:
        for part in vehicle_type.replace("/", "+").replace(",", "+").split("+"):
            word = part.strip().upper()
            if word in VehicleClass.__members__:
                vclass = VehicleClass[word]
            elif word == "EV":
                ev = True
            elif word in ("HANDICAP", "ACCESSIBLE", "DISABLED"):
                handicap = True
    return Vehicle(ident, vclass, handicap, ev)


class Fold(FoldReadout):
    """Everything the mirror knows, as a fold of events and ticks (picklable, deterministic).

    Apply events in observed order with :meth:`apply` (it runs the ticks due first).
    """

    def __init__(self, lot: Lot, config: MirrorConfig, t0: float, divergence: Divergence | None):
        self.config = config
        self.lot = lot
        self.spot_of: dict[str, int] = {s.id: s.index for s in lot.spots}
        self.level_of: dict[str, int] = {lv.name: lv.index for lv in lot.levels}
        n, n_levels = len(lot.spots), len(lot.levels)
        self.confidence = ConfidenceModel(config.half_life_s, config.threshold)
        self.bank = SensorBank.from_lot(lot, self.confidence, t0)
        self.counters = LevelCounters([0] * n_levels)
        self.estimator = AvailabilityEstimator(
            Detection.BOTH, lot.capacity_by_level, self.bank, self.counters
        )
        self.t = t0  # feed time of the last event applied
        self.first_t: float | None = None  # feed time of the first event applied
        #: Where the fold's clock starts: the minute (tick) of the first event, not the epoch.
        #: Ticks judge the lot (silence, divergence); before its first event a feed has said
        #: nothing, and stepping from the scenario's start to a feed that begins months later
        #: cost seconds and scored months of an empty lot (benchmarks/bench_late_feed.py).
        self.start_t = t0
        self.next_tick = (math.floor(t0 / config.tick_s) + 1) * config.tick_s
        # sessions
        self.sessions: dict[str, int] = {}  # sessionId -> core ticket
        #: entered at the gate, not yet seen on a bay: sessionId -> (entry time, vehicle)
        self.pending: dict[str, tuple[float, Vehicle]] = {}
        self.on_bay: dict[int, str] = {}  # bay -> sessionId its sensor saw arrive
        self.waiting: set[str] = set()  # pending cars that entered with no fitting bay free
        self.out_by_bay: dict[int, str] = {}  # bay -> sessionId that left it, not yet exited
        #: left its bay, not yet through the exit gate: sessionId -> (session, bay, when)
        self.driving_out: dict[str, tuple[Any, int, float]] = {}
        self.last_free_t: list[float] = [-math.inf] * n
        self.guessed = 0  # sessions placed by the strategy, no sensor having seen them
        self.entries = 0
        self.exits = 0
        self.plates_in = 0
        self.queue = EntryQueue(config.queue_keep_s)  # plate read at the barrier, not admitted
        #: bays read occupied before any gate event: cars parked before the feed began
        self.parked_before_feed = 0
        self.priced_cents = 0  # what the core tariff charges the exits seen
        # sensors
        self.heard: list[float] = [t0] * n
        self.silent: list[bool] = [False] * n
        self.distrusted: list[bool] = [False] * n  # contradicts the gates: not used for counts
        self._heard_fifo: deque[tuple[float, int]] = deque()
        self.heartbeats = 0
        # counters (FIWARE OffStreetParking snapshots)
        self.site_counter: dict[str, int] | None = None
        self.level_counter: dict[int, dict[str, int]] = {}
        # payments
        self.paid_cents = 0
        self.payments: Counter[str] = Counter()
        # reservations
        self.reservations: dict[str, int] = {}  # reservationId -> spot index held
        # bookkeeping
        self.kinds: dict[str, int] = {}
        self.anomalies: Counter[str] = Counter()
        self.alerts: list[Alert] = []
        self._open_alerts: dict[tuple[str, str], int] = {}
        #: (due time, bay or -1, session id or exit time, what): checks of sensors vs gates
        self._checks: list[tuple[float, int, str, str]] = []
        self.divergence = divergence
        self.epoch: datetime | None = None  # set by the Mirror: feed instants to core seconds
        self._apply = self._handlers()

    def _handlers(self) -> dict[str, Any]:
        """The handler of each event kind (bound methods: rebuilt, not pickled)."""
        return {
            "gate_entry": self._entry,
            "gate_exit": self._exit,
            "spot_reading": self._reading,
            "heartbeat": self._heartbeat,
            "counter": self._counter,
            "payment": self._payment,
            "reservation": self._reservation,
            "plate_read": self._plate,
        }

    def seconds_of(self, when: datetime) -> float:
        assert self.epoch is not None
        return (when - self.epoch).total_seconds()

    # -- pickling: the prediction a divergence holds is shared, not state ------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_apply"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("start_t", 0.0)  # a snapshot from before the clock started late
        self.__dict__.update(state)
        self._apply = self._handlers()

    # -- the entry point ------------------------------------------------------------------
    def apply(self, event: Any, t: float) -> None:
        """Apply one event observed at feed time ``t`` (not earlier than the last one)."""
        if self.first_t is None:
            self.check_gap(t)  # the first event against the epoch (later ones: the Mirror)
            self.first_t = t
            self.start(t)
        elif t >= self.next_tick:
            self.advance(t)
        self.t = t
        kind = event.kind
        kinds = self.kinds
        kinds[kind] = kinds.get(kind, 0) + 1
        self._apply[kind](event, t)

    def check_gap(self, t: float) -> None:
        """Raise :class:`FeedGap` if feed time ``t`` is more than :data:`MAX_GAP_S` from the
        fold's clock (the last event, or the epoch before the first). After the first event
        the fold ticks through every minute between, so a feed dated in another century would
        never finish; the first event is only held to the scenario's calendar (its start,
        weekdays and tariff bands are the mirror's), which one dated years away is not."""
        gap = t - self.t
        if abs(gap) <= MAX_GAP_S:
            return
        limit = f"at most {MAX_GAP_S / 86_400:.0f} days"
        if self.first_t is None:
            what, why, fix = (
                "the scenario's start",
                "whose calendar the feed is mirrored on",
                f"set the scenario's start near it ({limit})",
            )
        else:
            what, why, fix = (
                "the last event",
                "which steps through every minute of the feed",
                f"mirror the feed before and after the gap apart ({limit})",
            )
        raise FeedGap(
            f"an event dated {_date(t, self.epoch)} is {abs(gap) / 86_400:,.0f} days "
            f"{'after' if gap > 0 else 'before'} the mirror's clock ({_date(self.t, self.epoch)}, "
            f"{what}), {why}: {fix}"
        )

    def start(self, t: float) -> None:
        """Start the clock at the tick at or before ``t`` (the first event's time): the
        first tick is the next one. A feed that begins at the epoch ticks as it always did;
        one that begins later has no ticks before it (no empty interval judged)."""
        step = self.config.tick_s
        self.start_t = math.floor(t / step) * step
        self.next_tick = self.start_t + step

    def advance(self, t: float) -> None:
        """Run every clock tick due at or before ``t`` (none before the first event: the
        clock starts there, :meth:`start`)."""
        if self.first_t is None:
            return
        step = self.config.tick_s
        while self.next_tick <= t:
            self.tick(self.next_tick)
            self.next_tick += step

    def tick(self, now: float) -> None:
        """Time-driven checks: sensors fallen silent, sensor-vs-gate checks due, divergence."""
        cfg = self.config
        if self.heartbeats:  # silence means something only on a feed that sends heartbeats
            limit = now - cfg.missed_heartbeats * cfg.heartbeat_s
            fifo, heard, silent = self._heard_fifo, self.heard, self.silent
            while fifo and fifo[0][0] < limit:
                t_heard, i = fifo.popleft()
                if heard[i] == t_heard and not silent[i]:
                    silent[i] = True
                    if not self.distrusted[i]:
                        self.bank.set_mode(i, SensorMode.SILENT, t_heard)
                    self.raise_alert(
                        "dead_sensor",
                        self.lot.spots[i].id,
                        t_heard,
                        now,
                        f"no heartbeat since {_hm(t_heard, self.epoch)} "
                        f"({(now - t_heard) / cfg.heartbeat_s:.1f} intervals)",
                    )
        checks = self._checks
        while checks and checks[0][0] <= now:
            _, i, sid, what = heappop(checks)
            self._check(i, sid, what, now)
        if self.queue.waiting:
            self.queue.prune(now)
        if self.divergence is not None:
            self.divergence.tick(self, now)

    # -- gates and bays ---------------------------------------------------------------------
    # A gate entry opens a *pending* session (the gate does not know the bay); the first bay
    # sensor that then reads occupied binds the oldest pending car that fits it, through
    # Lot.allocate_spot, so the mirror's bays are the sensors' bays. A car no sensor confirms
    # within grace_in is placed by the lot's own strategy (the simulator's path) and flagged.
    def _entry(self, ev: Any, t: float) -> None:
        self.entries += 1
        sid = ev.sessionId or ev.id
        if sid in self.sessions or sid in self.pending:
            self.anomalies["session_reopened"] += 1
            return
        vehicle = _vehicle(ev.vehicleType, ev.identifiedVehicle or sid)
        self.pending[sid] = (t, vehicle)
        self.queue.admitted(ev.identifiedVehicle)
        if not self.lot.has_space_for(vehicle):
            self.waiting.add(sid)  # it will wait for a bay, or give up: no sensor is to blame
        heappush(self._checks, (t + self.config.grace_in_s, -1, sid, "unconfirmed"))

    def _exit(self, ev: Any, t: float) -> None:
        self.exits += 1
        sid = ev.sessionId
        bay = self.spot_of.get(ev.spaceId) if ev.spaceId is not None else None
        if sid is not None and bay is not None and bay in self.out_by_bay:
            left = self.out_by_bay[bay]
            if left != sid:
                # the gate names the bay this car left: the mirror had the two cars'
                # identities swapped (pending cars are bound to bays by time only)
                self._swap(sid, left)
        if sid is not None and sid in self.driving_out:
            session, b, _ = self.driving_out.pop(sid)
            if self.out_by_bay.get(b) == sid:
                del self.out_by_bay[b]
            self.priced_cents += self.lot.price(session, t)  # priced at the gate, as a lot does
        elif sid is not None and sid in self.sessions:
            self._close(sid, t)  # its bay never read free (a sensor stuck or dead)
        elif sid is not None and sid in self.pending:
            del self.pending[sid]
            self.waiting.discard(sid)
            self.anomalies["exit_never_parked"] += 1
        elif ev.actualStart is not None and self.seconds_of(ev.actualStart) < (
            self.first_t if self.first_t is not None else t
        ):
            # parked before the feed began (no entry in the feed): priced by its ticket
            tariff = self.lot.tariff
            if tariff is not None:
                self.priced_cents += tariff.price(self.seconds_of(ev.actualStart), t)
        else:
            self.anomalies["exit_without_entry"] += 1
        if bay is not None:  # the car left this bay: it must have read free since it came
            start = self.seconds_of(ev.actualStart) if ev.actualStart is not None else t
            heappush(self._checks, (t + self.config.grace_s, bay, f"{t!r}|{start!r}", "exit"))

    def _swap(self, a: str, b: str) -> None:
        """Exchange the identities of sessions ``a`` and ``b`` wherever the mirror holds them."""

        def where(sid: str) -> str | None:
            for name in ("sessions", "driving_out", "pending"):
                if sid in getattr(self, name):
                    return name
            return None

        wa, wb = where(a), where(b)
        if wa is None or wb is None:
            return
        va, vb = getattr(self, wa).pop(a), getattr(self, wb).pop(b)
        getattr(self, wa)[b] = va
        getattr(self, wb)[a] = vb
        for sid_new, (name, value) in ((b, (wa, va)), (a, (wb, vb))):
            if name == "sessions":
                self.on_bay[self.lot.session(value).spot.index] = sid_new
            elif name == "driving_out":
                self.out_by_bay[value[1]] = sid_new
        for x, y in ((a, b), (b, a)):
            if x in self.waiting and y not in self.waiting:
                self.waiting.discard(x)
                self.waiting.add(y)
        self.anomalies["identity_swapped"] += 1

    def _close(self, sid: str, t: float) -> None:
        """End ``sid``'s core session at ``t`` (its bay is free from now), priced at ``t``."""
        ticket = self.sessions.pop(sid)
        try:
            session = self.lot.release(ticket, t)
        except (UnknownTicket, ValueError, InvalidTransition):
            self.anomalies["bad_exit"] += 1
            return
        if self.on_bay.get(session.spot.index) == sid:
            del self.on_bay[session.spot.index]
        self.priced_cents += session.amount_cents or 0

    def _place(self, i: int, sid: str, vehicle: Vehicle, entry_t: float) -> bool:
        """Open ``sid``'s core session on bay ``i`` (the bay its sensor saw it on)."""
        try:
            session = self.lot.allocate_spot(i, vehicle, entry_t, enforce_rules=False)
        except (NoCompatibleSpot, InvalidTransition):
            return False
        self.sessions[sid] = session.ticket
        self.on_bay[i] = sid
        return True

    def _bind(self, i: int, t: float) -> None:
        """Bay ``i`` reads occupied: the oldest pending car that fits it parked there."""
        spot = self.lot.spots[i]
        if spot.status is _OCCUPIED:
            if self.on_bay.get(i) is None:
                self.anomalies["bay_taken_by_guess"] += 1
            return
        if spot.status is _MAINTENANCE:
            self.anomalies["car_on_closed_bay"] += 1
            return
        size = SPOT_CAPACITY[spot.type]
        # the newest pending car that fits: a car reaches its bay seconds after the gate, and an
        # old pending car (one that gave up waiting) must not take every later car's bay
        # (cars that found a fitting bay free at the gate first: one that entered with none
        # free may have given up waiting, and must not take the bay of a car that did park)
        waiting = self.waiting
        for pass_waiting in (False, True):
            for sid in reversed(self.pending):
                if (sid in waiting) is not pass_waiting:
                    continue
                entry_t, vehicle = self.pending[sid]
                if pass_waiting and t - entry_t > self.config.give_up_s:
                    continue
                if vehicle.vclass <= size and self._place(i, sid, vehicle, entry_t):
                    del self.pending[sid]
                    waiting.discard(sid)
                    return
        # no gate session for this car: parked before the feed began, or a phantom reading
        vclass = VehicleClass(min(size, int(VehicleClass.REGULAR)))
        sid = f"bay:{spot.id}"
        if not self._place(i, sid, Vehicle(sid, vclass), t):
            return
        if self.entries or self.exits:
            heappush(self._checks, (t + self.config.grace_s, i, sid, "orphan"))
        else:  # no gate event yet: the feed began with this car parked (a running lot)
            self.parked_before_feed += 1

    def _unbind(self, i: int, t: float) -> None:
        """Bay ``i`` reads free: its car left the bay, as in the simulator the core session
        ends here (the bay can take the next car); the car is *driving out* until its exit
        gate event, which prices it."""
        self.last_free_t[i] = t
        sid = self.on_bay.pop(i, None)
        if sid is None:
            return
        ticket = self.sessions.pop(sid)
        try:
            session = self.lot.release(ticket, t)
        except (UnknownTicket, ValueError, InvalidTransition):
            self.anomalies["bad_exit"] += 1
            return
        if sid.startswith("bay:"):
            return  # no gate session to wait for
        self.driving_out[sid] = (session, i, t)
        self.out_by_bay[i] = sid
        heappush(self._checks, (t + self.config.grace_out_s, i, sid, "left"))

    def _plate(self, ev: Any, t: float) -> None:
        if ev.direction == "in":
            self.plates_in += 1
            self.queue.arrived(ev.identifiedVehicle, t)
        elif ev.direction == "out":
            self.queue.left(ev.identifiedVehicle)

    # -- sensors --------------------------------------------------------------------------
    def _spot(self, space_id: str | None, device: str) -> int | None:
        i = self.spot_of.get(space_id) if space_id is not None else None
        if i is None:
            self.anomalies["unknown_spot"] += 1
        return i

    def _heard_from(self, i: int, t: float) -> None:
        self.heard[i] = t
        self._heard_fifo.append((t, i))
        if self.silent[i]:
            self.silent[i] = False
            if not self.distrusted[i]:
                self.bank.set_mode(i, SensorMode.HEALTHY, t)
            self.clear_alert("dead_sensor", self.lot.spots[i].id, t)

    def _reading(self, ev: Any, t: float) -> None:
        i = self._spot(ev.spaceId, ev.refDevice)
        if i is None:
            return
        self._heard_from(i, t)
        status = ev.status
        bank = self.bank
        if status == "occupied":
            bank.car_arrived(i, t)
            self._reopen(i, t)
            self._bind(i, t)
        elif status == "free":
            bank.car_left(i, t)
            self._reopen(i, t)
            self._unbind(i, t)
        else:  # closed, unknown: the core's feed claims (a bay the twin cannot see is not
            # offered); a car on it keeps its session, the claim waits for it to leave
            self.lot.apply_feed_status(i, status, t, FEED)
            self.anomalies[f"{status}_reading"] += 1
        self._agree(i, t)

    def _reopen(self, i: int, t: float) -> None:
        """A bay read free or occupied: the feed's own closed/unknown claims on it end."""
        claims = self.lot.spots[i].claims
        if claims:
            for reason in _FEED_CLAIMS:
                if reason in claims:
                    self.lot.claim(i, _AVAILABLE, t, reason)

    def _heartbeat(self, ev: Any, t: float) -> None:
        self.heartbeats += 1
        if ev.spaceId is not None:
            i = self.spot_of.get(ev.spaceId)
            if i is not None:
                self._heard_from(i, t)

    # -- sensors against gates --------------------------------------------------------------
    def _check(self, i: int, sid: str, what: str, now: float) -> None:
        """A due check: does a bay sensor agree with what the gates say?"""
        cfg = self.config
        if what == "unconfirmed":  # a car entered; no bay sensor has seen it park
            if sid not in self.pending:
                return
            entry_t, vehicle = self.pending[sid]
            if sid in self.waiting or not self.lot.has_space_for(vehicle):
                # nothing free that fits: it is waiting for a bay (or gave up); look again
                if now - entry_t < self.config.give_up_s:
                    heappush(self._checks, (now + cfg.grace_in_s, -1, sid, "unconfirmed"))
                else:
                    del self.pending[sid]
                    self.waiting.discard(sid)
                    self.anomalies["entered_never_parked"] += 1
                return
            session = self.lot.try_allocate(vehicle, entry_t)
            if session is not None:  # placed where the model's strategy would put it
                del self.pending[sid]
                self.waiting.discard(sid)
                self.sessions[sid] = session.ticket
                self.guessed += 1
            self.raise_alert(
                "sensor_vs_gate",
                "unseen car",
                entry_t,
                now,
                f"a car entered at {_hm(entry_t, self.epoch)} and no bay sensor has reported it "
                "(a sensor stuck free or dead?)",
            )
            return
        if self.silent[i]:
            return  # a silent sensor is the dead-sensor alert's business
        reading = self.bank.reading[i]
        if what == "orphan":  # bay read occupied with no gate session to explain it
            if self.on_bay.get(i) == sid and reading:
                self._contradiction(
                    i,
                    now - cfg.grace_s,
                    now,
                    "reads occupied with no car from the gates",
                    "stuck occupied",
                )
        elif what == "left":  # bay read free but its car has not left by the exit gate
            sid = self.out_by_bay.get(i, "")
            out = self.driving_out.get(sid)
            if out is not None and not reading and out[2] <= now - cfg.grace_out_s:
                self._contradiction(
                    i,
                    out[2],
                    now,
                    "reads free but its car has not left by the exit gate",
                    "stuck free",
                )
                if self.lot.spots[i].status is _AVAILABLE:  # the car is still on the bay
                    session = out[0]
                    if self._place(i, sid, session.vehicle, session.entry_t):
                        del self.driving_out[sid]
                        del self.out_by_bay[i]
        elif what == "exit":  # a car left this bay at the exit gate: it must read free
            exit_t, start_t = (float(x) for x in sid.split("|"))
            if reading and self.last_free_t[i] < start_t:
                self._contradiction(
                    i,
                    exit_t,
                    now,
                    "still reads occupied after its car left by the exit gate",
                    "stuck occupied",
                )

    def _contradiction(self, i: int, since: float, now: float, message: str, kind: str) -> None:
        spot_id = self.lot.spots[i].id
        if not self.distrusted[i]:
            self.distrusted[i] = True
            # Confidence decays from when the sensor was last right (core decay model): the
            # level's figure leans on the gate picture for this bay once it is stale.
            self.bank.set_mode(i, SensorMode.SILENT, since)
        self.raise_alert("sensor_vs_gate", spot_id, since, now, f"sensor {message} ({kind}?)")

    def _agree(self, i: int, t: float) -> None:
        """A distrusted sensor whose reading matches the gates again is trusted again."""
        if not self.distrusted[i]:
            return
        occupied = self.lot.spots[i].status is _OCCUPIED and self.on_bay.get(i) is not None
        if self.bank.present[i] == occupied and not self.on_bay.get(i, "").startswith("bay:"):
            self.distrusted[i] = False
            if not self.silent[i]:
                self.bank.set_mode(i, SensorMode.HEALTHY, t)
            self.clear_alert("sensor_vs_gate", self.lot.spots[i].id, t)

    # -- counters, payments, reservations ---------------------------------------------------
    def _counter(self, ev: Any, t: float) -> None:
        snap = {
            "available": ev.availableSpotNumber,
            "total": ev.totalSpotNumber,
            "entries": ev.vehicleEntranceCount,
            "exits": ev.vehicleExitCount,
            # what the loops counted in minus out: unclamped, unlike availableSpotNumber,
            # so a full lot does not hide a counter's misses
            "counted": ev.vehicleEntranceCount - ev.vehicleExitCount,
            "t": t,
        }
        if ev.level is None:
            # what the gates said at the same instant, to compare like with like
            snap["gates"] = self.entries - self.exits
            self.site_counter = snap
            return
        lv = self.level_of.get(ev.level)
        if lv is None:
            self.anomalies["unknown_level"] += 1
            return
        bank = self.bank  # bays on the level whose sensor reads occupied, at the same instant
        snap["sensors"] = bank.n_sensors[lv] - bank.trusted_free[lv] - bank.stale_free[lv]
        self.level_counter[lv] = snap
        self.counters.calibrate(lv, max(ev.totalSpotNumber - ev.availableSpotNumber, 0))

    def _payment(self, ev: Any, t: float) -> None:
        self.payments[ev.status] += 1
        if ev.status == "ok":
            self.paid_cents += round(ev.value * 100)

    def _reservation(self, ev: Any, t: float) -> None:
        rid = ev.reservationId
        if ev.action == "created":
            if ev.spaceId is None:
                return
            i = self.spot_of.get(ev.spaceId)
            if i is None:
                self.anomalies["unknown_spot"] += 1
                return
            self.lot.claim(i, _RESERVED, t, f"reservation:{rid}")
            self.reservations[rid] = i
        else:
            i = self.reservations.pop(rid, None)
            if i is None:
                return
            self.lot.claim(i, _AVAILABLE, t, f"reservation:{rid}")

    # -- alerts ---------------------------------------------------------------------------
    def raise_alert(self, kind: str, subject: str, since: float, now: float, message: str) -> None:
        """Raise an alert unless the same one is open already."""
        key = (kind, subject)
        if key in self._open_alerts:
            return
        self._open_alerts[key] = len(self.alerts)
        self.alerts.append(Alert(kind, subject, since, now, message))

    def clear_alert(self, kind: str, subject: str, now: float) -> None:
        k = self._open_alerts.pop((kind, subject), None)
        if k is not None:
            a = self.alerts[k]
            self.alerts[k] = Alert(a.kind, a.subject, a.since_t, a.raised_t, a.message, now)

    def open_alerts(self) -> list[Alert]:
        return [self.alerts[k] for k in self._open_alerts.values()]


def _date(t: float, epoch: datetime | None) -> str:
    """Feed seconds as a date and time (seconds from the epoch with none)."""
    if epoch is None:
        return f"t = {t:,.0f} s"
    from datetime import timedelta

    try:
        return f"{epoch + timedelta(seconds=t):%Y-%m-%d %H:%M}"
    except OverflowError:
        return f"{t / 86_400:,.0f} days from {epoch:%Y-%m-%d %H:%M}"


def _hm(t: float, epoch: datetime | None = None) -> str:
    """Feed seconds as weekday hh:mm for alert messages (d<days> hh:mm with no epoch)."""
    if epoch is not None:
        from datetime import timedelta

        return (epoch + timedelta(seconds=t)).strftime("%a %H:%M")
    day, rest = divmod(int(t), 86_400)
    return f"d{day} {rest // 3600:02d}:{rest % 3600 // 60:02d}"


__all__ = ["FEED", "MAX_GAP_S", "Alert", "FeedGap", "Fold", "MirrorConfig"]
