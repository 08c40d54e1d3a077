"""Sensors, counters and displays as an operations component (``operations.sensors``).

The model knows the truth (which bay holds a car); drivers only see the level boards, which
publish an *estimate* from field devices every few seconds. This component puts one
:class:`~twin.sim.sensors.SensorLayer` beside each lot of a run and lets the boards act on the
drivers:

* **arrival**: when every level of the lot shows FULL, the driver believes it with probability
  ``drivers.turn_away_on_full`` and leaves (:data:`~twin.sim.components.TURN_AWAY`: the model
  counts outcome ``turned_away``, and in a network the driver may divert). Whether the lot
  really had a free bay then is recorded: that is the cost of a wrong FULL sign.
* **barrier**: a walk-in driver follows the boards (nearest level first, skipping levels shown
  FULL); every level shown free that turns out full is a wasted drive round, costing
  ``drivers.search_per_wrong_level``. The model has no hook to delay a car between barrier and
  spot, so this time is a *figure* (mean extra search seconds per driver), not a delay.
* **park / leave**: the truth is forwarded to the layer (sensor readings, counters, audit).

Figures (merged as ``sensors.<name>``) cover ``[warm-up, horizon]`` like every other figure:
the layer's cumulative measures are snapshotted at the end of the warm-up and subtracted.
Time integrals and counts are per day so runs of different lengths compare; see
``docs/sensors.md`` ("In the model") for the list.

Random numbers: device failures, outages and counter misses come from per-lot streams
``sensors/lot<k>/<purpose>`` (the layer draws them in bulk); the drivers' decisions come from
per-driver arrays (``sensors/turn_away/<visit>``, ``sensors/search/<wrong level>``), indexed
by the driver, so driver *i*'s reaction to a FULL sign is the same uniform in every policy run
with the seed (common random numbers), whatever other drivers did before.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from heapq import heappush
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from twin.core.sensors import guided_search
from twin.scenario.sensors import SensorsSpec
from twin.sim.components import TURN_AWAY, Component, ModelContext, register
from twin.sim.sensors import SensorLayer, SensorRngs

if TYPE_CHECKING:
    from twin.core.lot import Session
    from twin.scenario.model import Scenario
    from twin.sim.rng import Streams

DAY_S = 86_400.0

# What a driver has done at the lot they are at (per-driver byte, see SensorsComponent).
_NONE, _READ_BOARDS, _SEARCHED = 0, 1, 2

#: Layer measures that are a state at the end of the run, not an accumulation over it.
_STATES = frozenset({"drift"})

Key = tuple[str, str, str]  # (scope, level name, measure), as SensorLayer.records gives them


class _PerDriver:
    """Per-driver random rows drawn lazily: row ``r`` holds one value for every driver.

    Row ``r`` comes from its own stream ``<prefix>/<r>``, so a driver's ``r``-th value depends
    only on the seed, the replication and the driver's index, never on what others drew. Rows
    are drawn in bulk the first time any driver needs one, so a run where nobody needs a row
    (no FULL sign ever shown) draws nothing.
    """

    def __init__(
        self,
        streams: Streams,
        prefix: str,
        n: int,
        draw: Callable[[np.random.Generator, int], np.ndarray],
    ) -> None:
        self._streams = streams
        self._prefix = prefix
        self._n = n
        self._draw = draw  # (Generator, n) -> ndarray
        self._rows: list[list[float]] = []

    def __call__(self, r: int, i: int) -> float:
        rows = self._rows
        while len(rows) <= r:
            gen = self._streams.get(f"{self._prefix}/{len(rows)}")
            rows.append(self._draw(gen, self._n).tolist())
        return rows[r][i]


@register("sensors", order=30)
class SensorsComponent(Component):
    """One :class:`SensorLayer` per lot; FULL signs turn drivers away, wrong boards cost search.

    Every hook is O(levels) at most (the boards' lot-FULL check and a guided search over the
    levels); device events are scheduled by the layers on SimPy's queue at priority 1 (after
    departures at equal times), which the model's loop hands to ``env.step()``.
    """

    name: ClassVar[str] = "sensors"

    def __init__(self, spec: SensorsSpec, scenario: Scenario) -> None:
        self.spec = spec
        self.scenario = scenario

    # -- moments --------------------------------------------------------------------------
    def start(self, ctx: ModelContext) -> None:
        """Build and start the layers, draw nothing per driver yet, book the warm-up snapshot."""
        super().start(ctx)
        spec, streams = self.spec, ctx.streams
        self.layers = [
            SensorLayer(ctx.env, lot, spec, self._rngs(streams, k))
            for k, lot in enumerate(ctx.lots)
        ]
        for layer in self.layers:
            layer.start(ctx.horizon)
        n = len(ctx.drivers)
        self._state = bytearray(n)
        self._visits = bytearray(n)  # lot entrances each driver has reached so far
        self._wrong_so_far = [0] * n  # wrong levels each driver has met: next search row
        self._turn_u = _PerDriver(streams, "sensors/turn_away", n, lambda g, m: g.random(m))
        search = spec.drivers.search_per_wrong_level
        self._search_s = _PerDriver(streams, "sensors/search", n, search.sample_seconds)
        self._believe = spec.drivers.turn_away_on_full
        warmup = self.scenario.warmup_hours
        self.t0 = 0.0 if warmup == "auto" else float(warmup) * 3600.0
        self.horizon = ctx.horizon
        # Before the warm-up ends nothing is counted; at its end every layer's cumulative
        # measures are snapshotted and later subtracted (zero snapshot without a warm-up).
        self._readers = [0] * len(self.layers)
        self._base: list[dict[Key, float]] = [{} for _ in self.layers]
        self._base_searches = [0] * len(self.layers)
        if 0.0 < self.t0 < ctx.horizon:
            # Before everything else at that instant (departures included), so that events at
            # exactly the warm-up's end count after it, as arrivals and exits do in metrics().
            env = ctx.env
            heappush(env._queue, (self.t0, -1, next(env._eid), _Event(self._snapshot)))

    @staticmethod
    def _rngs(streams: Streams, k: int) -> SensorRngs:
        """Lot ``k``'s device streams, named by index so renaming a lot changes nothing."""
        return SensorRngs(
            **{
                name: streams.get(f"sensors/lot{k}/{name}")
                for name in ("failures", "repairs", "modes", "outages", "counters", "drivers")
            }
        )

    def _snapshot(self, event: _Event) -> None:
        t = self.ctx.env.now
        for k, layer in enumerate(self.layers):
            self._base[k] = _by_key(layer.records(t))
            self._base_searches[k] = layer.searches

    def on_arrival(self, i: int, k: int, t: float) -> str | None:
        """The driver reads the entrance boards: all FULL and believed → turned away."""
        layer = self.layers[k]
        visit = self._visits[i]
        if visit < 255:
            self._visits[i] = visit + 1
        if t >= self.t0:
            self._readers[k] += 1
        if layer.board.lot_shows_full():
            layer.shown_full += 1
            if self._turn_u(visit, i) < self._believe:
                layer.turned_away += 1
                layer.turned_away_with_space += layer.lot.n_available > 0
                self._state[i] = _NONE
                return TURN_AWAY
        self._state[i] = _READ_BOARDS
        return None

    def on_refused(self, i: int, k: int, t: float) -> None:
        """No bay for this walk-in: they drove round every level the boards offered."""
        if self._state[i] == _READ_BOARDS:
            self._search(i, k, None)
            self._state[i] = _SEARCHED

    def on_park(self, i: int, k: int, session: Session, t: float) -> None:
        """Forward the truth; a walk-in who read the boards searched before taking the bay."""
        spot = session.spot
        if self._state[i] == _READ_BOARDS:
            self._search(i, k, spot.level)
        self._state[i] = _NONE
        self.layers[k].on_park(spot, t)

    def on_leave(self, i: int, k: int, session: Session, t: float) -> float:
        self.layers[k].on_leave(session.spot, t)
        return 0.0

    def on_external_park(self, k: int, session: Session, t: float) -> None:
        self.layers[k].on_park(session.spot, t)  # e.g. a reservation holder: sensors see it

    def on_external_leave(self, k: int, session: Session, t: float) -> None:
        self.layers[k].on_leave(session.spot, t)

    def _search(self, i: int, k: int, taken_level: int | None) -> None:
        """Guided search against the truth the driver met, i.e. before their own allocation
        (``taken_level`` gets its bay back); extra seconds from the driver's own draws."""
        layer = self.layers[k]
        true = [sum(row) for row in layer.lot.available]
        if taken_level is not None:
            true[taken_level] += 1
        result = guided_search(layer.board.shown, true, layer.search_order)
        extra = 0.0
        if result.wrong_levels:
            first = self._wrong_so_far[i]
            extra = sum(self._search_s(first + r, i) for r in range(result.wrong_levels))
            self._wrong_so_far[i] = first + result.wrong_levels
        layer.searches += 1
        layer.wrong_level_visits += result.wrong_levels
        layer.skipped_with_space += result.skipped_with_space
        layer.extra_search_s += extra

    # -- results --------------------------------------------------------------------------
    def _windows(self, t: float) -> list[tuple[dict[Key, float], int]]:
        """Per lot: measures over [warm-up, t] (states at t), and searches in that window."""
        out = []
        for k, layer in enumerate(self.layers):
            base = self._base[k]
            window = {
                key: value if key[2] in _STATES else value - base.get(key, 0.0)
                for key, value in _by_key(layer.records(t)).items()
            }
            out.append((window, layer.searches - self._base_searches[k]))
        return out

    def finish(self, t: float) -> dict[str, float]:
        """Headline figures over [warm-up, t]; see the module docstring and docs/sensors.md."""
        days = (t - self.t0) / DAY_S
        windows = self._windows(t)
        multi = len(self.layers) > 1
        lot_ids = [layer.lot.lot_id for layer in self.layers]

        def total(scope: str, measure: str) -> float:
            return sum(w.get((scope, "all", measure), 0.0) for w, _ in windows)

        out: dict[str, float] = {}
        per_day = {
            "wrong_display_min_per_day": ("board", "wrong_min"),
            "full_when_free_min_per_day": ("board", "full_when_free_min"),
            "free_when_full_min_per_day": ("board", "free_when_full_min"),
            "phantom_full_spot_min_per_day": ("board", "phantom_full_spot_min"),
            "phantom_free_spot_min_per_day": ("board", "phantom_free_spot_min"),
            "app_wrong_display_min_per_day": ("app", "wrong_min"),
            "shown_full_per_day": ("drivers", "shown_full"),
            "turned_away_per_day": ("drivers", "turned_away"),
            "turned_away_with_space_per_day": ("drivers", "turned_away_with_space"),
            "wrong_level_visits_per_day": ("drivers", "wrong_level_visits"),
            "skipped_with_space_per_day": ("drivers", "skipped_with_space"),
            "extra_search_min_per_day": ("drivers", "extra_search_min"),
        }
        if self.spec.uses_counters:
            per_day["fallback_min_per_day"] = ("board", "fallback_min")
            per_day["counter_missed_per_day"] = ("counters", "missed")
        if self.spec.uses_sensors:
            per_day["sensor_failures_per_day"] = ("sensors", "failures")
            per_day["sensor_down_min_per_day"] = ("sensors", "sensor_down_min")
            per_day["gateway_outages_per_day"] = ("sensors", "gateway_outages")
            per_day["gateway_down_min_per_day"] = ("sensors", "gateway_down_min")
        for name, (scope, measure) in per_day.items():
            out[name] = total(scope, measure) / days

        readers = sum(self._readers)
        away_free = total("drivers", "turned_away_with_space")
        out["turned_away_with_space_pct"] = 100.0 * away_free / readers if readers else math.nan
        searches = sum(s for _, s in windows)
        extra_s = 60.0 * total("drivers", "extra_search_min")
        out["extra_search_s_per_driver"] = extra_s / searches if searches else math.nan
        if self.spec.uses_counters:
            out["counter_drift_abs"] = sum(
                abs(v) for w, _ in windows for key, v in w.items() if key[2] == "drift"
            )

        # per level (names carry the lot in a network, as in the occupancy figures)
        for (w, _), layer, lot_id in zip(windows, self.layers, lot_ids, strict=True):
            for level in layer.level_names:
                label = f"{lot_id}/{level}" if multi else level
                for name, measure in (
                    ("wrong_display_min_per_day", "wrong_min"),
                    ("phantom_full_spot_min_per_day", "phantom_full_spot_min"),
                    ("phantom_free_spot_min_per_day", "phantom_free_spot_min"),
                ):
                    out[f"{name}.level[{label}]"] = w[("board", level, measure)] / days
        if multi:
            for (w, searches_k), lot_id in zip(windows, lot_ids, strict=True):
                out[f"wrong_display_min_per_day.lot[{lot_id}]"] = (
                    w[("board", "all", "wrong_min")] / days
                )
                out[f"turned_away_with_space_per_day.lot[{lot_id}]"] = (
                    w[("drivers", "all", "turned_away_with_space")] / days
                )
                out[f"extra_search_s_per_driver.lot[{lot_id}]"] = (
                    60.0 * w[("drivers", "all", "extra_search_min")] / searches_k
                    if searches_k
                    else math.nan
                )
        self._final = (t, windows)
        return out

    def frames(self) -> dict[str, pd.DataFrame]:
        """``measures``: every layer measure of every lot over [warm-up, horizon], tidy
        (lot, scope, level, measure, value); window totals, not per day (``drift`` is the
        end state). Levels are named as in the scenario, ``all`` is the lot's total."""
        if not hasattr(self, "_final"):
            self.finish(self.horizon)
        _, windows = self._final
        lots = [spec.name for spec in self.scenario.lot_specs]
        rows = [
            (layer.lot.lot_id, *key, value)
            for (w, _), layer in zip(windows, self.layers, strict=True)
            for key, value in w.items()
        ]
        return {
            "measures": pd.DataFrame(
                rows, columns=["lot", "scope", "level", "measure", "value"]
            ).astype(_MEASURE_TYPES | {"lot": pd.CategoricalDtype(lots)})
        }


#: Types of the ``measures`` frame (its lot is a category of the scenario's lots).
_MEASURE_TYPES = {"scope": "str", "level": "str", "measure": "str", "value": "float64"}


class _Event:
    """The leanest event ``simpy.Environment.step`` accepts (cf. ``twin.sim.events.Call``):
    the model's loop hands events that are not its own to ``env.step()``."""

    __slots__ = ("_ok", "_value", "callbacks")

    def __init__(self, callback: Callable[[_Event], None]) -> None:
        self.callbacks = [callback]
        self._ok = True
        self._value = None


def _by_key(records: list[tuple[str, str, str, float]]) -> dict[Key, float]:
    return {(scope, level, measure): value for scope, level, measure, value in records}
