"""Detection layer: what the operator and the drivers *see* of a lot, beside what is true.

The truth is the :class:`~twin.core.lot.Lot`'s state. Nobody at a real garage reads it: the
operator and the drivers see an *estimate* built from field devices, and that estimate can be
stale or wrong. This module is that layer, in pure Python with the time passed in, so the
simulator and a live twin run the same code. Nothing here draws a random number: failures,
gateway outages and counter misses arrive as calls and arguments (the simulator draws them in
:mod:`twin.sim.sensors`; a live adapter passes what the devices actually did).

Two detection modes (a scenario picks one or both)
--------------------------------------------------
Per-spot sensors (:class:`SensorBank`)
    One sensor per bay reports "occupied" or "free". A *healthy* sensor reports the true state
    on every change; a *stuck-occupied* / *stuck-free* one reports a fixed value (at the moment
    it sticks, and again whenever it reconnects); a *silent* one reports nothing. A level's
    gateway can go down, which silences every sensor on the level at once.
Entry/exit counters per level (:class:`LevelCounters`)
    Loops at each level's ramp count cars in and out. Counted occupancy is
    ``initial + entries - exits``; a counter that misses a car drifts, and it never knows.

Confidence (reference design)
-----------------------------
A talking sensor (healthy or stuck: a stuck sensor still sends heartbeats, which is exactly why
it is hard to catch) has confidence 1. A silent sensor's confidence decays from the moment it
was last heard: ``c = 0.5 ** (silent_for / half_life)``. When ``c`` falls *below* the
threshold the sensor is *stale*; that happens at the fixed age
``stale_after = half_life * log2(1 / threshold)``, so a heap of deadlines turns sensors stale
without ever scanning them.

How a level's free count is estimated (:class:`AvailabilityEstimator`)
----------------------------------------------------------------------
``spot_sensors``
    Every sensor's last reading, stale or not (with no counters, a stale sensor's last word is
    all there is; the reported confidence says how much it is worth).
``counters``
    ``capacity - counted occupancy`` (clamped to the level's capacity).
``both`` (a **blend**, chosen over an all-or-nothing switch)
    Trusted sensors give their readings; the occupancy of the *stale* bays is inferred from the
    counters: ``counted occupancy - occupied reported by trusted sensors``, clamped to
    ``[0, n_stale]``. With no stale sensor this is pure sensor data, with every sensor stale
    (a gateway outage that outlived ``stale_after``) it is exactly the counter arithmetic
    ``capacity - counted occupancy``, and in between one dead sensor does not throw away the
    other 199 readings. Why blend: a single silent sensor would otherwise freeze one bay's state
    forever (sensor mode) or force the whole level onto drifting counters (switch mode).

Spots held out of service (RESERVED, MAINTENANCE) are empty, so their sensors read free; the
operator knows them, so :meth:`AvailabilityEstimator.set_held` subtracts them from every
estimate.

Every query is O(1): per-level aggregates (trusted-free count, stale count, stale-free count,
sums of decay weights) are updated on each event, and staleness is applied from a heap of
deadlines whose top is checked on each query. No query walks the spots.

Displays and what they cost (:class:`Display`, :class:`DisplayAudit`)
---------------------------------------------------------------------
A display (the per-level boards at the entrance, the app) publishes the estimate every N
seconds and shows that value until the next refresh: what drivers see can be stale (old
estimate) or wrong (bad estimate). :class:`DisplayAudit` integrates, per level, over time:

* *wrong display* seconds: the display is wrong in the sign that matters to a driver, i.e. it
  shows FULL (0 free) while spots are free, or shows free spots while the level is full;
* *phantom-full* spot-seconds: ``max(true - shown, 0)`` (free bays the display hides);
* *phantom-free* spot-seconds: ``max(shown - true, 0)`` (bays the display promises that are
  not there).

All times are core seconds (see :mod:`twin.core.clock`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from heapq import heappop, heappush
from typing import TYPE_CHECKING, NamedTuple

from twin.core.types import SpotStatus

if TYPE_CHECKING:
    from twin.core.lot import Lot


class SensorMode(IntEnum):
    """Health of one spot sensor; every mode but HEALTHY is a failure mode."""

    HEALTHY = 0
    STUCK_OCCUPIED = 1
    STUCK_FREE = 2
    SILENT = 3


#: Failure modes in the order scenario probabilities list them.
FAILURE_MODES: tuple[SensorMode, ...] = (
    SensorMode.STUCK_OCCUPIED,
    SensorMode.STUCK_FREE,
    SensorMode.SILENT,
)


class Detection(StrEnum):
    """Which devices feed the availability estimate."""

    SPOT_SENSORS = "spot_sensors"
    COUNTERS = "counters"
    BOTH = "both"


class Source(StrEnum):
    """Where a level's estimate came from."""

    SENSORS = "sensors"
    COUNTERS = "counters"
    BLEND = "sensors+counters"


class Estimate(NamedTuple):
    """A level's estimated free spots, where the figure came from, and how much to trust it."""

    free: int
    source: Source
    #: Mean over the level's bays of the confidence of whatever stands for that bay: a talking
    #: sensor 1, a silent one its decayed confidence, a bay inferred from counters the
    #: estimator's ``counter_confidence``.
    confidence: float


@dataclass(frozen=True, slots=True)
class ConfidenceModel:
    """Exponential decay of a silent sensor's confidence, and the staleness threshold."""

    half_life_s: float
    #: A sensor whose confidence falls below this is stale; 0 means never.
    threshold: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.half_life_s) and self.half_life_s > 0):
            raise ValueError(f"half_life_s must be a finite number > 0, got {self.half_life_s}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {self.threshold}")

    def confidence(self, silent_for: float) -> float:
        """Confidence of a sensor last heard ``silent_for`` seconds ago."""
        return 0.5 ** (max(silent_for, 0.0) / self.half_life_s)

    @property
    def stale_after(self) -> float:
        """Silence after which confidence is below the threshold (inf when threshold is 0)."""
        if self.threshold <= 0.0:
            return math.inf
        return self.half_life_s * math.log2(1.0 / self.threshold)

    def trusted(self, silent_for: float) -> bool:
        """Whether a sensor silent this long is still used (confidence >= threshold)."""
        return silent_for <= self.stale_after


#: Decay weights are stored as 2**((t_silent - reference) / half_life); the reference moves
#: forward before a weight could overflow (2**512 leaves room for any realistic sensor count).
_REBASE_EXPONENT = 512.0


class SensorBank:
    """Per-spot sensors with their failure modes, and O(1) per-level aggregates over them.

    The caller tells the bank what really happens (a car arrives at or leaves a spot, a sensor
    fails or is repaired, a gateway goes down or up); the bank works out what each sensor
    reported and keeps, per level:

    * ``trusted_free`` - bays whose trusted (not stale) sensor last reported free,
    * ``n_stale`` / ``stale_free`` - stale sensors, and those of them last reporting free,
    * ``n_silent`` - sensors not talking now (own failure or gateway down),
    * sums of decay weights of silent sensors, so a level's mean confidence is O(1).

    A sensor that starts talking again (repair, gateway back) reports its current value at
    once, as real sensors resynchronise on reconnect.
    """

    def __init__(
        self,
        spot_levels: Sequence[int],
        occupied: Sequence[bool],
        confidence: ConfidenceModel,
        t0: float = 0.0,
        n_levels: int | None = None,
    ) -> None:
        if len(spot_levels) != len(occupied):
            raise ValueError(f"{len(spot_levels)} spot levels but {len(occupied)} occupancy flags")
        n = len(spot_levels)
        n_levels = (max(spot_levels) + 1 if n else 0) if n_levels is None else n_levels
        if n and not 0 <= min(spot_levels) <= max(spot_levels) < n_levels:
            raise ValueError(f"spot levels must lie in 0..{n_levels - 1}")
        self.model = confidence
        self._stale_after = confidence.stale_after
        self._half_life = confidence.half_life_s
        # per spot (plain lists indexed by spot index)
        self.level: list[int] = list(spot_levels)
        self.present: list[bool] = [bool(x) for x in occupied]  # the truth: a car on the bay
        self.mode: list[SensorMode] = [SensorMode.HEALTHY] * n
        self.reading: list[bool] = list(self.present)  # last reported: True = occupied
        self.reading_t: list[float] = [float(t0)] * n  # when it was reported
        self.heard_t: list[float] = [float(t0)] * n  # last heard; meaningful while silent
        self.talking: list[bool] = [True] * n
        self.stale: list[bool] = [False] * n
        self._generation: list[int] = [0] * n  # invalidates old staleness deadlines
        self._due: list[tuple[float, int, int]] = []  # (stale deadline, generation, spot)
        self._members: list[list[int]] = [[] for _ in range(n_levels)]
        for i, lv in enumerate(self.level):
            self._members[lv].append(i)
        # per level
        self.gateway_up: list[bool] = [True] * n_levels
        self.n_sensors: list[int] = [len(m) for m in self._members]
        self.trusted_free: list[int] = [0] * n_levels
        for i, lv in enumerate(self.level):
            if not self.reading[i]:
                self.trusted_free[lv] += 1
        self.n_silent: list[int] = [0] * n_levels
        self.n_stale: list[int] = [0] * n_levels
        self.stale_free: list[int] = [0] * n_levels
        self._weight_fresh: list[float] = [0.0] * n_levels  # silent, still trusted
        self._weight_stale: list[float] = [0.0] * n_levels
        self._reference = float(t0)
        self.reports = 0  # messages received, for the curious

    @classmethod
    def from_lot(cls, lot: Lot, confidence: ConfidenceModel, t0: float = 0.0) -> SensorBank:
        """A bank with one healthy sensor per spot of a core ``Lot``, reading its state now."""
        return cls(
            [s.level for s in lot.spots],
            [s.status == SpotStatus.OCCUPIED for s in lot.spots],
            confidence,
            t0,
            n_levels=len(lot.levels),
        )

    # -- what really happens ---------------------------------------------------------------
    def car_arrived(self, spot: int, t: float) -> None:
        """A car stopped on ``spot`` (truth); a healthy talking sensor reports it."""
        self.present[spot] = True
        if self.talking[spot] and self.mode[spot] is SensorMode.HEALTHY:
            self._report(spot, True, t)

    def car_left(self, spot: int, t: float) -> None:
        """The car on ``spot`` left (truth); a healthy talking sensor reports it."""
        self.present[spot] = False
        if self.talking[spot] and self.mode[spot] is SensorMode.HEALTHY:
            self._report(spot, False, t)

    def set_mode(self, spot: int, mode: SensorMode | int, t: float) -> None:
        """The sensor on ``spot`` fails into ``mode``, or is repaired (``HEALTHY``)."""
        mode = SensorMode(mode)
        was = self.talking[spot]
        self.mode[spot] = mode
        now = mode is not SensorMode.SILENT and self.gateway_up[self.level[spot]]
        self._transition(spot, was, now, t)

    def set_gateway(self, level: int, up: bool, t: float) -> None:
        """A level's gateway goes down (every sensor on it silent) or comes back.

        O(sensors on the level): an outage is an event, not a query.
        """
        if self.gateway_up[level] == up:
            return
        self.gateway_up[level] = up
        for i in self._members[level]:
            self._transition(i, self.talking[i], up and self.mode[i] is not SensorMode.SILENT, t)

    # -- what the operator can ask ----------------------------------------------------------
    def value(self, spot: int) -> bool:
        """What the sensor would report now if asked (its mode applied to the truth)."""
        mode = self.mode[spot]
        if mode is SensorMode.STUCK_OCCUPIED:
            return True
        if mode is SensorMode.STUCK_FREE:
            return False
        return self.present[spot]

    def confidence(self, spot: int, t: float) -> float:
        """1 for a talking sensor, else decayed from when it was last heard."""
        if self.talking[spot]:
            return 1.0
        return self.model.confidence(t - self.heard_t[spot])

    def silent_confidence(self, level: int, t: float) -> tuple[float, float]:
        """Sums of confidences at ``t`` of the level's silent sensors: (still trusted, stale)."""
        scale = 2.0 ** ((self._reference - t) / self._half_life)
        fresh = self.n_silent[level] - self.n_stale[level]
        return (
            min(float(fresh), max(0.0, self._weight_fresh[level] * scale)),
            min(float(self.n_stale[level]), max(0.0, self._weight_stale[level] * scale)),
        )

    def expire(self, t: float) -> int:
        """Turn stale every silent sensor whose confidence is below the threshold at ``t``.

        Cost O(k log n) for the k sensors that turn stale; O(1) when none does, so every query
        calls it and the caller never needs to sweep (though it may, e.g. on a timer).
        """
        due = self._due
        n = 0
        while due and due[0][0] < t:
            _, generation, i = heappop(due)
            if generation != self._generation[i]:
                continue  # the sensor talked again since this deadline was set
            lv = self.level[i]
            self.stale[i] = True
            self.n_stale[lv] += 1
            w = self._weight(self.heard_t[i])
            self._weight_fresh[lv] -= w
            self._weight_stale[lv] += w
            if self.n_stale[lv] == self.n_silent[lv]:
                self._weight_fresh[lv] = 0.0  # no fresh silent sensor left: no rounding residue
            if not self.reading[i]:
                self.trusted_free[lv] -= 1
                self.stale_free[lv] += 1
            n += 1
        return n

    # -- internals --------------------------------------------------------------------------
    def _weight(self, s: float) -> float:
        return 2.0 ** ((s - self._reference) / self._half_life)

    def _rebase(self, s: float) -> None:
        factor = 2.0 ** ((self._reference - s) / self._half_life)
        self._weight_fresh = [w * factor for w in self._weight_fresh]
        self._weight_stale = [w * factor for w in self._weight_stale]
        self._reference = s

    def _report(self, i: int, occupied: bool, t: float) -> None:
        """A message from a talking (hence trusted) sensor."""
        self.reports += 1
        if self.reading[i] != occupied:
            self.trusted_free[self.level[i]] += -1 if occupied else 1
            self.reading[i] = occupied
        self.reading_t[i] = t

    def _transition(self, i: int, was: bool, now: bool, t: float) -> None:
        lv = self.level[i]
        if was and not now:  # falls silent: last heard now
            self.talking[i] = False
            self.heard_t[i] = t
            self.n_silent[lv] += 1
            if (t - self._reference) / self._half_life > _REBASE_EXPONENT:
                self._rebase(t)
            self._weight_fresh[lv] += self._weight(t)
            self._generation[i] += 1
            if self._stale_after < math.inf:
                heappush(self._due, (t + self._stale_after, self._generation[i], i))
        elif now and not was:  # talks again
            self.talking[i] = True
            self._generation[i] += 1
            w = self._weight(self.heard_t[i])
            if self.stale[i]:
                self.stale[i] = False
                self.n_stale[lv] -= 1
                self._weight_stale[lv] -= w
                if not self.reading[i]:
                    self.stale_free[lv] -= 1
                    self.trusted_free[lv] += 1
            else:
                self._weight_fresh[lv] -= w
            self.n_silent[lv] -= 1
            if self.n_stale[lv] == 0:
                self._weight_stale[lv] = 0.0
            if self.n_silent[lv] == self.n_stale[lv]:
                self._weight_fresh[lv] = 0.0
            self._report(i, self.value(i), t)
        elif now:  # kept talking, changed mode (failed stuck, or repaired from stuck)
            self._report(i, self.value(i), t)


class LevelCounters:
    """Entry/exit loop counters per level; ``occupied = initial + entries - exits``.

    A miss is data: the caller says the loop did not see this car (``missed=True``), and the
    counter drifts from the truth by exactly the misses, as a real one would.
    """

    def __init__(self, initial_occupied: Sequence[int]) -> None:
        n = len(initial_occupied)
        self.initial: list[int] = [int(x) for x in initial_occupied]
        self.entries: list[int] = [0] * n
        self.exits: list[int] = [0] * n
        self.missed_entries: list[int] = [0] * n
        self.missed_exits: list[int] = [0] * n

    def car_entered(self, level: int, missed: bool = False) -> None:
        """A car drove onto ``level``; counted unless the loop missed it."""
        if missed:
            self.missed_entries[level] += 1
        else:
            self.entries[level] += 1

    def car_left(self, level: int, missed: bool = False) -> None:
        """A car drove off ``level``; counted unless the loop missed it."""
        if missed:
            self.missed_exits[level] += 1
        else:
            self.exits[level] += 1

    def occupied(self, level: int) -> int:
        """Counted occupancy, unclamped: drift can push it below 0 or above capacity."""
        return self.initial[level] + self.entries[level] - self.exits[level]

    def drift(self, level: int) -> int:
        """Counted minus true occupancy, from the misses the caller reported."""
        return self.missed_exits[level] - self.missed_entries[level]

    def calibrate(self, level: int, occupied: int) -> None:
        """Reset a level's count to a known occupancy (a manual recount, a nightly sync)."""
        self.initial[level] = int(occupied)
        self.entries[level] = self.exits[level] = 0
        self.missed_entries[level] = self.missed_exits[level] = 0


class AvailabilityEstimator:
    """Free spots per level as the operator believes them: ``estimate(level, t)``, O(1).

    See the module docstring for the rule of each detection mode.
    """

    def __init__(
        self,
        detection: Detection | str,
        capacity_by_level: Sequence[int],
        sensors: SensorBank | None = None,
        counters: LevelCounters | None = None,
        counter_confidence: float = 1.0,
    ) -> None:
        self.detection = Detection(detection)
        if self.detection is not Detection.COUNTERS and sensors is None:
            raise ValueError(f"detection {self.detection.value!r} needs a SensorBank")
        if self.detection is not Detection.SPOT_SENSORS and counters is None:
            raise ValueError(f"detection {self.detection.value!r} needs LevelCounters")
        if not 0.0 <= counter_confidence <= 1.0:
            raise ValueError(f"counter_confidence must be in [0, 1], got {counter_confidence}")
        self.capacity: list[int] = [int(c) for c in capacity_by_level]
        if sensors is not None and sensors.n_sensors != self.capacity:
            raise ValueError(
                f"sensors per level {sensors.n_sensors} differ from capacity {self.capacity}: "
                "every bay needs one sensor"
            )
        self.sensors = sensors
        self.counters = counters
        self.counter_confidence = counter_confidence
        #: Empty bays the operator holds out of service (reserved, maintenance) per level.
        self.held: list[int] = [0] * len(self.capacity)

    def set_held(self, level: int, n: int) -> None:
        """Bays of ``level`` held out of service: empty (sensors read free) but not offered."""
        self.held[level] = int(n)

    def estimate(self, level: int, t: float) -> Estimate:
        """Estimated free spots of ``level`` at ``t``, its source and confidence; O(1)."""
        cap = self.capacity[level]
        if self.detection is Detection.COUNTERS:
            counted = min(max(self.counters.occupied(level), 0), cap)  # type: ignore[union-attr]
            free, source, confidence = cap - counted, Source.COUNTERS, self.counter_confidence
        else:
            bank = self.sensors
            assert bank is not None
            bank.expire(t)
            n_stale = bank.n_stale[level]
            fresh, stale = bank.silent_confidence(level, t)
            talking = cap - bank.n_silent[level]
            if self.detection is Detection.SPOT_SENSORS or n_stale == 0:
                free = bank.trusted_free[level] + bank.stale_free[level]
                source = Source.SENSORS
                weight = talking + fresh + stale
            else:
                trusted = cap - n_stale
                trusted_occupied = trusted - bank.trusted_free[level]
                counted = self.counters.occupied(level)  # type: ignore[union-attr]
                stale_occupied = min(max(counted - trusted_occupied, 0), n_stale)
                free = bank.trusted_free[level] + n_stale - stale_occupied
                source = Source.COUNTERS if trusted == 0 else Source.BLEND
                weight = talking + fresh + n_stale * self.counter_confidence
            confidence = weight / cap if cap else 1.0
        free -= self.held[level]
        return Estimate(free if free > 0 else 0, source, confidence)


class DisplayAudit:
    """Integrates, per level, how wrong a display was: seconds and spot-seconds (module doc).

    Values are piecewise constant: each :meth:`update` first credits the time since the
    level's previous update to the values that held over it, then sets the new ones.
    """

    def __init__(self, shown: Sequence[int], true_free: Sequence[int], t0: float = 0.0) -> None:
        if len(shown) != len(true_free):
            raise ValueError("shown and true_free need one value per level")
        n = len(shown)
        self.shown: list[int] = [int(x) for x in shown]
        self.true_free: list[int] = [int(x) for x in true_free]
        self.last_t: list[float] = [float(t0)] * n
        self.t0 = float(t0)
        self.full_when_free_s: list[float] = [0.0] * n
        self.free_when_full_s: list[float] = [0.0] * n
        self.phantom_full_spot_s: list[float] = [0.0] * n
        self.phantom_free_spot_s: list[float] = [0.0] * n

    def update(
        self, level: int, t: float, shown: int | None = None, true_free: int | None = None
    ) -> None:
        """Credit the elapsed time of ``level``, then record a new shown and/or true value."""
        if t != self.last_t[level]:
            self._credit(level, t)
        if shown is not None:
            self.shown[level] = int(shown)
        if true_free is not None:
            self.true_free[level] = int(true_free)

    def set_true(self, level: int, t: float, true_free: int) -> None:
        """``update(level, t, true_free=...)`` for the hot path: one per park and per leave."""
        if t != self.last_t[level]:
            self._credit(level, t)
        self.true_free[level] = true_free

    def _credit(self, level: int, t: float) -> None:
        dt = t - self.last_t[level]
        if not dt >= 0:
            raise ValueError(f"time went backwards on level {level}: {t} < {self.last_t[level]}")
        s, r = self.shown[level], self.true_free[level]
        if s <= 0 < r:
            self.full_when_free_s[level] += dt
        elif r <= 0 < s:
            self.free_when_full_s[level] += dt
        if r > s:
            self.phantom_full_spot_s[level] += (r - s) * dt
        elif s > r:
            self.phantom_free_spot_s[level] += (s - r) * dt
        self.last_t[level] = t

    def close(self, t: float) -> None:
        """Credit every level up to ``t`` (call before reading the totals)."""
        for level in range(len(self.shown)):
            self.update(level, t)

    def wrong_s(self, level: int) -> float:
        """Seconds the display was wrong in the sign that matters (either direction)."""
        return self.full_when_free_s[level] + self.free_when_full_s[level]


class Display:
    """A display (level boards, app) that publishes the estimate every ``refresh_s`` seconds.

    Drivers read :attr:`shown`, the value last published, which stays until the next
    :meth:`refresh` whatever happens meanwhile: displays are stale by design. The display keeps
    its own :class:`DisplayAudit`; the caller reports true changes with :meth:`truth`.
    """

    def __init__(
        self,
        name: str,
        estimator: AvailabilityEstimator,
        refresh_s: float,
        true_free: Sequence[int],
        t0: float = 0.0,
    ) -> None:
        if not (math.isfinite(refresh_s) and refresh_s > 0):
            raise ValueError(f"refresh_s must be a finite number > 0, got {refresh_s}")
        self.name = name
        self.estimator = estimator
        self.refresh_s = float(refresh_s)
        n = len(estimator.capacity)
        self.shown: list[int] = [0] * n
        self.shown_t: list[float] = [float(t0)] * n
        self.source: list[Source] = [Source.SENSORS] * n
        self.confidence: list[float] = [1.0] * n
        #: Seconds during which the published figure did not come from sensors alone.
        self.fallback_s: list[float] = [0.0] * n
        self._credited_t: list[float] = [float(t0)] * n  # fallback time credited up to here
        self.refreshes = 0
        self.audit = DisplayAudit([0] * n, true_free, t0)
        self.refresh(t0)

    def refresh(self, t: float) -> None:
        """Publish the estimator's current figure for every level."""
        estimate = self.estimator.estimate
        audit = self.audit
        for level in range(len(self.shown)):
            self._credit(level, t)
            e = estimate(level, t)
            self.shown[level] = e.free
            self.source[level] = e.source
            self.confidence[level] = e.confidence
            self.shown_t[level] = t
            audit.update(level, t, shown=e.free)
        self.refreshes += 1

    def truth(self, level: int, true_free: int, t: float) -> None:
        """The level's true free count changed at ``t`` (for the audit only)."""
        self.audit.update(level, t, true_free=true_free)

    def close(self, t: float) -> None:
        """Credit audit and fallback time up to ``t``; then read the measures."""
        self.audit.close(t)
        for level in range(len(self.shown)):
            self._credit(level, t)

    def _credit(self, level: int, t: float) -> None:
        if self.source[level] is not Source.SENSORS:
            self.fallback_s[level] += t - self._credited_t[level]
        self._credited_t[level] = t

    def free(self, level: int) -> int:
        return self.shown[level]

    def shows_full(self, level: int) -> bool:
        return self.shown[level] <= 0

    def lot_shows_full(self) -> bool:
        """Every level shows FULL (what the entrance sign and the app's lot badge say)."""
        return all(x <= 0 for x in self.shown)


class SearchResult(NamedTuple):
    """How a driver who follows the displays fares."""

    #: Level where they find a bay, or None if none of the levels the display offers has one.
    level: int | None
    #: Levels the display showed free that had no free bay: each a wasted drive round.
    wrong_levels: int
    #: Levels with free bays the driver skipped because the display showed them FULL.
    skipped_with_space: int


def guided_search(
    shown: Sequence[int], true_free: Sequence[int], order: Sequence[int] | None = None
) -> SearchResult:
    """Follow the displays: try levels in ``order`` (default 0, 1, ...), skip those shown FULL.

    O(levels). The driver stops at the first level visited that truly has a free bay.
    """
    wrong = skipped = 0
    for level in range(len(shown)) if order is None else order:
        if shown[level] <= 0:
            if true_free[level] > 0:
                skipped += 1
            continue
        if true_free[level] > 0:
            return SearchResult(level, wrong, skipped)
        wrong += 1
    return SearchResult(None, wrong, skipped)
