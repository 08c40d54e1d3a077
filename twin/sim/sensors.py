"""The detection layer inside a simulation run: sensor failures, gateway outages, displays.

:class:`SensorLayer` draws what the field devices do (from the scenario's ``sensors:`` section,
:class:`~twin.scenario.sensors.SensorsSpec`) and drives the pure core in
:mod:`twin.core.sensors` with it:

* every spot sensor alternates working / failed, up time ~ ``failures.between`` (MTBF), down
  time ~ ``failures.repair`` (MTTR), the failure mode drawn with ``failures.modes``;
* every level's gateway goes down as a Poisson process (``gateway_outages.rate_per_day``) for
  ``gateway_outages.duration``: all the level's sensors silent at once (correlated outage);
* each car passing a level's entry or exit loop is missed with ``counter_miss_probability``;
  every ``counter_recount_hours`` staff recount the levels and the counters restart from it;
* the level boards and the app republish the estimate every ``displays.*_refresh_s``.

The model tells the layer what really happens (:meth:`SensorLayer.on_park`,
:meth:`SensorLayer.on_leave`) and asks it what drivers see (:meth:`SensorLayer.displayed_free`,
:meth:`SensorLayer.lot_shows_full`, :meth:`SensorLayer.driver_turns_away`,
:meth:`SensorLayer.search`). At the end :meth:`SensorLayer.finish` returns the measures.

Events are plain callbacks pushed onto SimPy's queue (the same lean scheme as
:func:`twin.sim.events.call_at`; this module does not import the model, so the model can import
it). Random numbers come from numpy Generators passed in, one per purpose
(:class:`SensorRngs`), and are drawn in bulk; the failure process of a seed is therefore the
same whatever the demand, the displays or the detection rule do (common random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from heapq import heappush
from typing import Literal

import numpy as np
import pandas as pd
import simpy

from twin.core.facility import Spot
from twin.core.lot import Lot
from twin.core.sensors import (
    FAILURE_MODES,
    AvailabilityEstimator,
    Display,
    LevelCounters,
    SearchResult,
    SensorBank,
    SensorMode,
    guided_search,
)
from twin.scenario.sensors import SensorsSpec
from twin.sim.rng import Streams

#: SimPy priority of the layer's events: after departures (0) at equal times, like arrivals.
PRIORITY = 1
DAY_S = 86_400.0


@dataclass(frozen=True)
class SensorRngs:
    """One Generator per purpose, so drawing more for one never shifts another."""

    failures: np.random.Generator  # time from repair (or start) to the next failure
    repairs: np.random.Generator  # time to repair
    modes: np.random.Generator  # which failure mode
    outages: np.random.Generator  # gateway up and down times
    counters: np.random.Generator  # counter misses
    drivers: np.random.Generator  # turn-away decisions, extra search times

    @classmethod
    def from_streams(cls, streams: Streams, prefix: str = "sensors") -> SensorRngs:
        """Named streams of a replication (``sensors.failures``, ``sensors.repairs``, ...)."""
        return cls(**{f.name: streams.get(f"{prefix}.{f.name}") for f in fields(cls)})

    @classmethod
    def from_seed(cls, seed: int, replication: int = 0) -> SensorRngs:
        return cls.from_streams(Streams(seed, replication))


class _Draws:
    """Values drawn in chunks and handed out one at a time (bulk draws, scalar use)."""

    __slots__ = ("_buffer", "_chunk", "_draw", "_pos")

    def __init__(self, draw: Callable[[int], np.ndarray], chunk: int = 256) -> None:
        self._draw = draw
        self._chunk = chunk
        self._buffer: list = []
        self._pos = 0

    def take(self, n: int) -> list:
        """``n`` values in one bulk draw (after any left in the buffer)."""
        out = self._buffer[self._pos :]
        self._buffer, self._pos = [], 0
        if n > len(out):
            out.extend(self._draw(n - len(out)).tolist())
        else:
            self._buffer, out = out[n:], out[:n]
        return out

    def __call__(self) -> float:
        if self._pos == len(self._buffer):
            self._buffer = self._draw(self._chunk).tolist()
            self._pos = 0
        value = self._buffer[self._pos]
        self._pos += 1
        return value


class _Event:
    """The smallest object ``simpy.Environment.step`` processes (cf. ``twin.sim.events.Call``)."""

    __slots__ = ("_ok", "_value", "callbacks")

    def __init__(self, callback: Callable[[_Event], None], value: object) -> None:
        self.callbacks = [callback]
        self._ok = True
        self._value = value


class SensorLayer:
    """Sensors, counters and displays of one lot in one replication (see module docstring).

    Plugging it into a model takes a few lines::

        layer = SensorLayer(env, lot, spec, SensorRngs.from_streams(streams))
        layer.start(horizon)                       # schedules failures, outages, refreshes
        ... layer.on_park(session.spot, t)         # after every allocate
        ... layer.on_leave(session.spot, t)        # after every release
        ... if layer.driver_turns_away(t): ...     # at arrival, before the barrier
        measures = layer.finish(horizon)
    """

    def __init__(
        self,
        env: simpy.Environment,
        lot: Lot,
        spec: SensorsSpec,
        rngs: SensorRngs,
        priority: int = PRIORITY,
    ) -> None:
        self.env = env
        self.lot = lot
        self.spec = spec
        self.rngs = rngs
        self.priority = priority
        self.t0 = t0 = float(env.now)
        self.level_names = [lv.name for lv in lot.levels]
        n_levels = len(lot.levels)
        self.bank = (
            SensorBank.from_lot(lot, spec.confidence.model(), t0) if spec.uses_sensors else None
        )
        self.counters = LevelCounters(lot.occupied_by_level) if spec.uses_counters else None
        self.estimator = AvailabilityEstimator(
            spec.mode, lot.capacity_by_level, self.bank, self.counters
        )
        for level in range(n_levels):
            self.estimator.set_held(level, self._held(level))
        true = [self._true_free(level) for level in range(n_levels)]
        self.board = Display("board", self.estimator, spec.displays.board_refresh_s, true, t0)
        self.app = Display("app", self.estimator, spec.displays.app_refresh_s, true, t0)
        self.displays = (self.board, self.app)
        self._audits = (self.board.audit, self.app.audit)
        #: Levels in the order a driver following the boards tries them: nearest first.
        self.search_order = sorted(range(n_levels), key=lambda k: lot.levels[k].entrance_distance)

        # Misses as a Bernoulli process: draw the number of passes up to the next miss
        # (geometric) instead of one uniform per car; one decrement per car on the hot path.
        miss = spec.counter_miss_probability
        self._miss_gap = _Draws(lambda k: rngs.counters.geometric(miss, k), 256) if miss else None
        self._until_miss = int(self._miss_gap()) if self._miss_gap is not None else -1
        self._driver_u = _Draws(rngs.drivers.random, 256)
        search = spec.drivers.search_per_wrong_level
        self._search_s = _Draws(lambda k: search.sample_seconds(rngs.drivers, k), 64)
        failures = spec.failures
        if failures is not None:
            self._up_s = _Draws(lambda k: failures.between.sample_seconds(rngs.failures, k))
            self._repair_s = _Draws(lambda k: failures.repair.sample_seconds(rngs.repairs, k))
            p = np.array(failures.modes.probabilities())
            self._mode = _Draws(lambda k: rngs.modes.choice(len(FAILURE_MODES), size=k, p=p))
        outages = spec.gateway_outages
        if outages is not None:
            mean_up = DAY_S / outages.rate_per_day
            self._outage_gap_s = _Draws(lambda k: rngs.outages.exponential(mean_up, k), 64)
            self._outage_len_s = _Draws(
                lambda k: outages.duration.sample_seconds(rngs.outages, k), 64
            )

        self.horizon = math.inf
        self.started = False
        #: Failure and outage events: (time, kind, sensor or level index, mode or 0).
        self.log: list[tuple[float, str, int, int]] = []
        self.failures_by_mode = dict.fromkeys(FAILURE_MODES, 0)
        self._failed_since: dict[int, float] = {}
        self._sensor_down_s = 0.0
        self._gateway_since: dict[int, float] = {}
        self._gateway_down_s = [0.0] * n_levels
        self.gateway_outages = [0] * n_levels
        self.counter_missed = 0
        self.recounts = 0
        self.shown_full = 0  # arrivals that saw the lot FULL
        self.turned_away = 0
        self.turned_away_with_space = 0
        self.searches = 0
        self.wrong_level_visits = 0
        self.skipped_with_space = 0
        self.extra_search_s = 0.0

    # -- truth, as the Lot has it -----------------------------------------------------------
    def _true_free(self, level: int) -> int:
        return sum(self.lot.available[level])

    def _held(self, level: int) -> int:
        lot = self.lot
        return (
            lot.capacity_by_level[level] - lot.occupied_by_level[level] - sum(lot.available[level])
        )

    def _truth(self, level: int, t: float) -> None:
        free = sum(self.lot.available[level])
        for audit in self._audits:
            audit.set_true(level, t, free)

    # -- scheduling -------------------------------------------------------------------------
    def _at(self, t: float, callback: Callable[[_Event], None], value: object) -> None:
        if t < self.horizon:
            env = self.env
            heappush(env._queue, (t, self.priority, next(env._eid), _Event(callback, value)))

    def start(self, horizon: float = math.inf) -> None:
        """Schedule the first failure of every sensor, the first outage of every gateway and
        the first refresh of each display; events at or after ``horizon`` are not scheduled."""
        if self.started:
            raise RuntimeError("SensorLayer.start() was already called")
        self.started = True
        self.horizon = horizon
        t0 = self.t0
        if self.bank is not None and self.spec.failures is not None:
            for i, up in enumerate(self._up_s.take(len(self.lot.spots))):
                self._at(t0 + up, self._fail, i)
        if self.bank is not None and self.spec.gateway_outages is not None:
            for level, up in enumerate(self._outage_gap_s.take(len(self.lot.levels))):
                self._at(t0 + up, self._gateway_down, level)
        for display in self.displays:
            self._at(t0 + display.refresh_s, self._refresh, (display, 1))
        if self.counters is not None and self.spec.counter_recount_hours is not None:
            self._at(t0 + self.spec.counter_recount_hours * 3600.0, self._recount, 1)

    def _fail(self, event: _Event) -> None:
        i, t = event._value, self.env.now
        mode = FAILURE_MODES[self._mode()]
        self.bank.set_mode(i, mode, t)  # type: ignore[union-attr]
        self.failures_by_mode[mode] += 1
        self._failed_since[i] = t
        self.log.append((t, "fail", i, int(mode)))
        self._at(t + self._repair_s(), self._repair, i)

    def _repair(self, event: _Event) -> None:
        i, t = event._value, self.env.now
        self.bank.set_mode(i, SensorMode.HEALTHY, t)  # type: ignore[union-attr]
        self._sensor_down_s += t - self._failed_since.pop(i)
        self.log.append((t, "repair", i, 0))
        self._at(t + self._up_s(), self._fail, i)

    def _gateway_down(self, event: _Event) -> None:
        level, t = event._value, self.env.now
        self.bank.set_gateway(level, False, t)  # type: ignore[union-attr]
        self.gateway_outages[level] += 1
        self._gateway_since[level] = t
        self.log.append((t, "gateway_down", level, 0))
        self._at(t + self._outage_len_s(), self._gateway_up, level)

    def _gateway_up(self, event: _Event) -> None:
        level, t = event._value, self.env.now
        self.bank.set_gateway(level, True, t)  # type: ignore[union-attr]
        self._gateway_down_s[level] += t - self._gateway_since.pop(level)
        self.log.append((t, "gateway_up", level, 0))
        self._at(t + self._outage_gap_s(), self._gateway_down, level)

    def _refresh(self, event: _Event) -> None:
        display, k = event._value
        t = self.env.now
        # held bays change through Lot.set_status, which nobody reports: resync, O(levels)
        for level in range(len(self.lot.levels)):
            self.estimator.set_held(level, self._held(level))
            self._truth(level, t)
        display.refresh(t)
        self._at(self.t0 + (k + 1) * display.refresh_s, self._refresh, (display, k + 1))

    def _recount(self, event: _Event) -> None:
        """Staff count every level: counters restart from the true occupancy."""
        k = event._value
        for level, occupied in enumerate(self.lot.occupied_by_level):
            self.counters.calibrate(level, occupied)  # type: ignore[union-attr]
        self.recounts += 1
        step = self.spec.counter_recount_hours * 3600.0  # type: ignore[operator]
        self._at(self.t0 + (k + 1) * step, self._recount, k + 1)

    # -- what really happens (the model calls these) ----------------------------------------
    def _missed(self) -> bool:
        """Whether the loop misses this car (the next geometric gap has run out)."""
        self._until_miss -= 1
        if self._until_miss:  # also -1, -2, ... forever when misses are off
            return False
        self._until_miss = int(self._miss_gap())  # type: ignore[misc]
        self.counter_missed += 1
        return True

    def on_park(self, spot: Spot, t: float) -> None:
        """A car took ``spot`` (call after ``Lot.allocate``): sensor, counter, audit."""
        level = spot.level
        if self.bank is not None:
            self.bank.car_arrived(spot.index, t)
        if self.counters is not None:
            self.counters.car_entered(level, self._missed())
        self._truth(level, t)

    def on_leave(self, spot: Spot, t: float) -> None:
        """The car on ``spot`` left it (call after ``Lot.release``): sensor, counter, audit."""
        level = spot.level
        if self.bank is not None:
            self.bank.car_left(spot.index, t)
        if self.counters is not None:
            self.counters.car_left(level, self._missed())
        self._truth(level, t)

    # -- what drivers see -------------------------------------------------------------------
    def _display(self, display: Literal["board", "app"]) -> Display:
        return self.board if display == "board" else self.app

    def displayed_free(
        self, level: int, t: float | None = None, display: Literal["board", "app"] = "board"
    ) -> int:
        """Free spots ``display`` shows for ``level``: its last published value.

        ``t`` is accepted for symmetry with the other calls; the value does not depend on it,
        because a display shows what it last published until its next scheduled refresh.
        """
        return self._display(display).shown[level]

    def lot_shows_full(self, display: Literal["board", "app"] = "board") -> bool:
        """Every level shows FULL on ``display``."""
        return self._display(display).lot_shows_full()

    def driver_turns_away(self, t: float) -> bool:
        """An arriving driver reads the boards: if the lot shows FULL, leaves with probability
        ``drivers.turn_away_on_full``. Counts those who left although a bay was free."""
        if not self.board.lot_shows_full():
            return False
        self.shown_full += 1
        if self._driver_u() < self.spec.drivers.turn_away_on_full:
            self.turned_away += 1
            self.turned_away_with_space += self.lot.n_available > 0
            return True
        return False

    def search(self, t: float) -> tuple[SearchResult, float]:
        """A driver entering now follows the boards (nearest level first, skipping levels shown
        FULL): where they find a bay, and the extra search seconds for the levels shown free
        that were full. Call before ``Lot.allocate`` (the truth the driver meets)."""
        true = [sum(row) for row in self.lot.available]
        result = guided_search(self.board.shown, true, self.search_order)
        extra = sum(self._search_s() for _ in range(result.wrong_levels))
        self.searches += 1
        self.wrong_level_visits += result.wrong_levels
        self.skipped_with_space += result.skipped_with_space
        self.extra_search_s += extra
        return result, extra

    # -- results ----------------------------------------------------------------------------
    def records(self, t: float) -> list[tuple[str, str, str, float]]:
        """Every measure up to ``t`` as (scope, level, measure, value); level ``all`` = total.

        Minutes for time and spot-time; counts as floats. Closing is idempotent for a given
        ``t`` (ongoing failures and outages are credited up to ``t`` without being ended).
        """
        rows: list[tuple[str, str, str, float]] = []
        names = self.level_names

        def add(scope: str, measure: str, per_level: list[float], total: bool = True) -> None:
            if total:
                rows.append((scope, "all", measure, float(sum(per_level))))
            rows.extend(
                (scope, name, measure, float(v)) for name, v in zip(names, per_level, strict=True)
            )

        for display in self.displays:
            display.close(t)
            a = display.audit
            n = range(len(names))
            add(display.name, "wrong_min", [a.wrong_s(k) / 60 for k in n])
            add(display.name, "full_when_free_min", [x / 60 for x in a.full_when_free_s])
            add(display.name, "free_when_full_min", [x / 60 for x in a.free_when_full_s])
            add(display.name, "phantom_full_spot_min", [x / 60 for x in a.phantom_full_spot_s])
            add(display.name, "phantom_free_spot_min", [x / 60 for x in a.phantom_free_spot_s])
            add(display.name, "fallback_min", [x / 60 for x in display.fallback_s])
        if self.bank is not None:
            failures = sum(self.failures_by_mode.values())
            rows.append(("sensors", "all", "failures", float(failures)))
            for mode, count in self.failures_by_mode.items():
                rows.append(("sensors", "all", f"failures_{mode.name.lower()}", float(count)))
            down = self._sensor_down_s + sum(t - s for s in self._failed_since.values())
            rows.append(("sensors", "all", "sensor_down_min", down / 60))
            gateway = list(self._gateway_down_s)
            for level, since in self._gateway_since.items():
                gateway[level] += t - since
            add("sensors", "gateway_outages", list(self.gateway_outages))
            add("sensors", "gateway_down_min", [x / 60 for x in gateway])
        if self.counters is not None:
            c = self.counters
            rows.append(("counters", "all", "missed", float(self.counter_missed)))
            drift = [c.occupied(k) - self.lot.occupied_by_level[k] for k in range(len(names))]
            add("counters", "drift", drift, total=False)
        rows.append(("drivers", "all", "shown_full", float(self.shown_full)))
        rows.append(("drivers", "all", "turned_away", float(self.turned_away)))
        rows.append(
            ("drivers", "all", "turned_away_with_space", float(self.turned_away_with_space))
        )
        rows.append(("drivers", "all", "wrong_level_visits", float(self.wrong_level_visits)))
        rows.append(("drivers", "all", "skipped_with_space", float(self.skipped_with_space)))
        rows.append(("drivers", "all", "extra_search_min", self.extra_search_s / 60))
        return rows

    def finish(self, t: float) -> dict[str, float]:
        """Measures up to ``t`` as a flat dict: ``scope.measure`` for totals and
        ``scope.measure.LEVEL`` per level, e.g. ``board.wrong_min.P1``."""
        return {
            f"{scope}.{measure}" if level == "all" else f"{scope}.{measure}.{level}": value
            for scope, level, measure, value in self.records(t)
        }

    def frame(self, t: float) -> pd.DataFrame:
        """The measures as a tidy frame: scope, level, measure, value."""
        return pd.DataFrame(self.records(t), columns=["scope", "level", "measure", "value"])
