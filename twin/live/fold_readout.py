"""What the operator reads from the mirror's fold: the read side of :class:`~twin.live.fold.Fold`.

:class:`~twin.live.fold.Fold` (in :mod:`twin.live.fold`) turns feed events into calls on the core
objects; this base class holds what is *read* from them afterwards, never called while an event
is folded in: free bays per level as the operator believes them (sensors, falling back to
counters), free spots per type, the cars inside by the gates, the mirrored lot as a start state
for a forecast, and the fingerprint that tells two folds apart. It reads the attributes the fold
keeps (declared below) and changes nothing but the estimator's calibration.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from twin.core.types import SpotStatus, SpotType

if TYPE_CHECKING:
    from collections import Counter

    from twin.core.lot import Lot
    from twin.core.sensors import AvailabilityEstimator, LevelCounters, SensorBank
    from twin.core.types import Vehicle
    from twin.live.entry_queue import EntryQueue
    from twin.live.fold import Alert, MirrorConfig
    from twin.scenario.model import Scenario

_MAINTENANCE = SpotStatus.MAINTENANCE
_RESERVED = SpotStatus.RESERVED


class FoldReadout:
    """The read side of the fold (a base of :class:`~twin.live.fold.Fold`, which sets these)."""

    config: MirrorConfig
    lot: Lot
    bank: SensorBank
    counters: LevelCounters
    estimator: AvailabilityEstimator
    t: float
    sessions: dict[str, int]
    pending: dict[str, tuple[float, Vehicle]]
    on_bay: dict[int, str]
    waiting: set[str]
    driving_out: dict[str, tuple[Any, int, float]]
    last_free_t: list[float]
    queue: EntryQueue
    level_counter: dict[int, dict[str, int]]
    site_counter: dict[str, int] | None
    silent: list[bool]
    distrusted: list[bool]
    entries: int
    exits: int
    priced_cents: int
    paid_cents: int
    payments: Counter[str]
    kinds: dict[str, int]
    anomalies: Counter[str]
    alerts: list[Alert]

    def held_by_level(self) -> list[int]:
        lot = self.lot
        return [
            lot.capacity_by_level[lv] - lot.occupied_by_level[lv] - sum(lot.available[lv])
            for lv in range(len(lot.levels))
        ]

    def sensor_occupied_by_level(self) -> list[int]:
        """Bays whose sensor last read occupied, per level (every sensor, trusted or not)."""
        out = [0] * len(self.lot.levels)
        for i, occupied in enumerate(self.bank.reading):
            if occupied:
                out[self.bank.level[i]] += 1
        return out

    def levels(self, t: float | None = None) -> list[dict[str, Any]]:
        """Per level: capacity, free as the operator believes it (sensors, falling back to
        counters for bays not trusted), its source and confidence, and the gate picture."""
        t = self.t if t is None else t
        held = self.held_by_level()
        lot = self.lot
        out = []
        for lv, level in enumerate(lot.levels):
            if lv not in self.level_counter:
                # no loop counter on this level: the gate picture (sessions on its bays) is
                # what stands in for the bays whose sensors are not trusted
                self.counters.calibrate(lv, lot.occupied_by_level[lv])
            self.estimator.set_held(lv, held[lv])
            e = self.estimator.estimate(lv, t)
            cap = lot.capacity_by_level[lv]
            out.append(
                {
                    "level": level.name,
                    "capacity": cap,
                    "free": e.free,
                    "occupied": cap - held[lv] - e.free,
                    "source": e.source.value,
                    "confidence": e.confidence,
                    "held": held[lv],
                    "gate_occupied": lot.occupied_by_level[lv],
                    "silent_sensors": self.bank.n_silent[lv],
                    "stale_sensors": self.bank.n_stale[lv],
                }
            )
        return out

    def free_by_type(self) -> dict[str, int]:
        """Spots free per spot type by the gate picture (the core Lot's own counters)."""
        return {
            t.name: sum(row[t] for row in self.lot.available)
            for t in SpotType
            if self.lot.capacity_by_type[t]
        }

    def state(self, scenario: Scenario) -> Any:
        """The mirrored lot as a start state (``twin.scenario.state.StartState``): the cars on
        their bays with their age, cars past the gate not yet on a bay, closed and held bays,
        and the cars waiting at the entry barrier (the feed's plate reads not yet admitted).
        A forecast starts from it (``twin.api.forecast``). Raises ``StateError`` (one line) if
        a car has been on its bay longer than a start state allows (``MAX_STATE_MIN``): a feed
        with a gap of over a year."""
        from twin.scenario.state import (
            MAX_STATE_MIN,
            LotState,
            QueuedState,
            SessionState,
            SpotHoldState,
            StartState,
            StateError,
        )

        start = scenario.start.replace(tzinfo=None)
        now = self.t
        lot = self.lot
        sessions = []
        for sid, ticket in self.sessions.items():
            s = lot.session(ticket)
            v = s.vehicle
            known = not sid.startswith("bay:")
            elapsed = max(now - s.entry_t, 0.0) / 60 if known else None
            if elapsed is not None and elapsed > MAX_STATE_MIN:
                since = start + timedelta(seconds=s.entry_t)
                raise StateError(
                    f"car {sid} has been on bay {s.spot.id} for {elapsed / 1440:,.0f} days by "
                    f"the feed's clock (since {since:%Y-%m-%d %H:%M}); a start state allows at "
                    f"most {MAX_STATE_MIN // 1440} days (a gap in the feed?)"
                )
            sessions.append(
                SessionState(
                    spot=s.spot.id,
                    vehicle_class=v.vclass.name,
                    ev=v.ev,
                    handicap=v.handicap,
                    elapsed_min=elapsed,
                    ticket=sid if known else None,
                )
            )
        room = lot.n_available
        for sid, (entry_t, v) in reversed(self.pending.items()):
            if now - entry_t > self.config.grace_in_s or room <= 0:
                continue  # not on a bay long after the gate: gave up (or a sensor missed it)
            room -= 1
            sessions.append(
                SessionState(
                    vehicle_class=v.vclass.name,
                    ev=v.ev,
                    handicap=v.handicap,
                    elapsed_min=max(now - entry_t, 0.0) / 60,
                    ticket=sid,
                )
            )
        holds = []
        for spot in lot.spots:
            if spot.status is _MAINTENANCE:
                holds.append(SpotHoldState(status="closed", spot=spot.id))
            elif spot.status is _RESERVED:
                holds.append(SpotHoldState(status="held", spot=spot.id))
        queue = [QueuedState(waited_min=w / 60, plate=p) for p, w in self.queue.cars(now)]
        return StartState(
            time=start + timedelta(seconds=now),
            lots=[LotState(lot=lot.lot_id, sessions=sessions, holds=holds, queue=queue)],
        )

    def gate_open(self) -> int:
        """Cars inside by the gates: sessions opened at an entry and not yet exited."""
        orphans = sum(1 for sid in self.on_bay.values() if sid.startswith("bay:"))
        return len(self.sessions) - orphans + len(self.pending) + len(self.driving_out)

    def fingerprint(self) -> dict[str, Any]:
        """Everything that defines the state, in plain values: equal folds, equal prints."""
        lot = self.lot
        return {
            "t": self.t,
            "sessions": sorted(
                (sid, lot.session(tk).spot.id, lot.session(tk).entry_t)
                for sid, tk in self.sessions.items()
            ),
            "pending": sorted((sid, t) for sid, (t, _) in self.pending.items()),
            "on_bay": sorted(self.on_bay.items()),
            "driving_out": sorted((sid, b, t) for sid, (_, b, t) in self.driving_out.items()),
            "waiting": sorted(self.waiting),
            "last_free_t": list(self.last_free_t),
            "status": [int(s.status) for s in lot.spots],
            "reading": list(self.bank.reading),
            "talking": list(self.bank.talking),
            "silent": list(self.silent),
            "distrusted": list(self.distrusted),
            "counters": [self.counters.occupied(lv) for lv in range(len(lot.levels))],
            "site_counter": self.site_counter,
            "queue": list(self.queue.waiting.items()),
            "money": (self.priced_cents, self.paid_cents, sorted(self.payments.items())),
            "counts": (
                self.entries,
                self.exits,
                sorted(self.kinds.items()),
                sorted(self.anomalies.items()),
            ),
            "alerts": list(self.alerts),
        }


__all__ = ["FoldReadout"]
