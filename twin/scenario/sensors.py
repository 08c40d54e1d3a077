"""The ``sensors:`` settings of a scenario: detection devices, their failures, the displays.

The ``operations.sensors`` key of :class:`~twin.scenario.model.Scenario`, wired into the model
by :mod:`twin.sim.ops_sensors`. :class:`~twin.sim.sensors.SensorLayer` reads it, draws the
failures it describes and drives the pure core in :mod:`twin.core.sensors` (see
``docs/sensors.md``).

Example (every key optional; these are the defaults except where noted)::

    sensors:
      detection: both                  # spot_sensors | counters | both
      failures:                        # per spot sensor (default: sensors never fail)
        between: {type: exponential, mean: 180, unit: d}   # time between failures (MTBF)
        repair: {type: lognormal, mean: 2, sd: 1, unit: d} # time to repair (MTTR)
        modes: {stuck_occupied: 0.3, stuck_free: 0.2, silent: 0.5}
      gateway_outages:                 # a whole level's sensors silent (default: none)
        rate_per_day: 0.05             # outages per level per day, Poisson
        duration: {type: exponential, mean: 45, unit: min}
      confidence: {half_life_min: 10, threshold: 0.5}
      counter_miss_probability: 0.0    # per car passing a level's entry or exit loop
      counter_recount_hours: null      # reset counters to a manual recount every ... h
      displays: {board_refresh_s: 30, app_refresh_s: 60}
      drivers:
        turn_away_on_full: 0.8         # share of arriving drivers who leave on a FULL sign
        search_per_wrong_level: {type: constant, value: 90, unit: s}
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from twin.core.sensors import FAILURE_MODES, ConfidenceModel, Detection, SensorMode
from twin.scenario.common import Spec
from twin.scenario.dists import UNIT_SECONDS, Constant, Dist


def _probability(name: str, value: float) -> float:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a probability between 0 and 1, got {value!r}")
    return float(value)


def _positive_mean(name: str, dist: Dist) -> None:
    if not dist.mean_value > 0:
        raise ValueError(f"{name} must have a mean > 0, got {dist.mean_value}")


def _seconds(dist: Dist) -> float:
    return dist.mean_value * UNIT_SECONDS[dist.unit]


class FailureModes(Spec):
    """What a failed sensor does; probabilities of the three modes, summing to 1.

    A mode left out has probability 0; with no ``modes`` key at all, failed sensors go silent.
    """

    stuck_occupied: float = Field(default=0.0, description="reports occupied whatever happens")
    stuck_free: float = Field(default=0.0, description="reports free whatever happens")
    silent: float = Field(default=0.0, description="reports nothing (confidence decays)")

    @field_validator("stuck_occupied", "stuck_free", "silent")
    @classmethod
    def _probabilities(cls, v: float, info: ValidationInfo) -> float:
        return _probability(info.field_name, v)

    @model_validator(mode="after")
    def _sum_to_one(self) -> FailureModes:
        total = self.stuck_occupied + self.stuck_free + self.silent
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(
                "failure mode probabilities must sum to 1, got "
                f"stuck_occupied {self.stuck_occupied} + stuck_free {self.stuck_free} + "
                f"silent {self.silent} = {total:g}"
            )
        return self

    def probabilities(self) -> tuple[float, float, float]:
        """In the order of :data:`twin.core.sensors.FAILURE_MODES`."""
        by_mode = {
            SensorMode.STUCK_OCCUPIED: self.stuck_occupied,
            SensorMode.STUCK_FREE: self.stuck_free,
            SensorMode.SILENT: self.silent,
        }
        a, b, c = (by_mode[m] for m in FAILURE_MODES)
        return a, b, c


class SensorFailures(Spec):
    """Each spot sensor alternates working / failed: up ~ ``between``, down ~ ``repair``."""

    between: Dist = Field(description="time from a repair (or the start) to the next failure")
    repair: Dist = Field(description="time from a failure to its repair")
    modes: FailureModes = FailureModes(silent=1.0)

    @model_validator(mode="after")
    def _positive(self) -> SensorFailures:
        _positive_mean("failures.between", self.between)
        _positive_mean("failures.repair", self.repair)
        return self

    @property
    def availability(self) -> float:
        """Long-run share of time a sensor works: MTBF / (MTBF + MTTR)."""
        up, down = _seconds(self.between), _seconds(self.repair)
        return up / (up + down)


class GatewayOutages(Spec):
    """Outages of a level's gateway: every sensor on the level silent at once."""

    rate_per_day: float = Field(description="outages per level per day (Poisson while up)")
    duration: Dist = Field(description="how long an outage lasts")

    @field_validator("rate_per_day")
    @classmethod
    def _rate(cls, v: float) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"rate_per_day must be > 0 outages per level per day, got {v}")
        return v

    @model_validator(mode="after")
    def _positive(self) -> GatewayOutages:
        _positive_mean("gateway_outages.duration", self.duration)
        return self


class ConfidenceSpec(Spec):
    """How fast a silent sensor loses credibility, and when the estimate stops using it."""

    half_life_min: float = Field(default=10.0, description="confidence halves every ... minutes")
    threshold: float = Field(
        default=0.5, description="below this confidence a silent sensor is stale (0: never)"
    )

    @field_validator("half_life_min")
    @classmethod
    def _half_life(cls, v: float) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"half_life_min must be > 0 minutes, got {v}")
        return v

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, v: float) -> float:
        if not (math.isfinite(v) and 0.0 <= v < 1.0):
            raise ValueError(
                f"threshold must be >= 0 and < 1 (1 would drop a sensor the moment it "
                f"falls silent), got {v}"
            )
        return v

    def model(self) -> ConfidenceModel:
        """The core confidence model (seconds)."""
        return ConfidenceModel(self.half_life_min * 60.0, self.threshold)


class DisplaysSpec(Spec):
    """How often the level boards and the app republish the estimate."""

    board_refresh_s: float = Field(default=30.0, description="level boards at the entrance")
    app_refresh_s: float = Field(default=60.0, description="the drivers' app")

    @field_validator("board_refresh_s", "app_refresh_s")
    @classmethod
    def _refresh(cls, v: float, info: ValidationInfo) -> float:
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{info.field_name} must be > 0 seconds, got {v}")
        return v


class DriversSpec(Spec):
    """How drivers react to what the displays show."""

    turn_away_on_full: float = Field(
        default=0.8, description="share of arriving drivers who leave when the lot shows FULL"
    )
    search_per_wrong_level: Dist = Field(
        default=Constant(type="constant", value=90.0, unit="s"),
        description="extra search time per level visited that the board showed free but was full",
    )

    @field_validator("turn_away_on_full")
    @classmethod
    def _turn_away(cls, v: float) -> float:
        return _probability("turn_away_on_full", v)


class SensorsSpec(Spec):
    """Detection devices, their failures, the displays and the drivers' reaction to them."""

    detection: Literal["spot_sensors", "counters", "both"] = Field(
        default="both", description="which devices feed the availability estimate"
    )
    failures: SensorFailures | None = Field(
        default=None, description="spot sensor failures (default: sensors never fail)"
    )
    gateway_outages: GatewayOutages | None = None
    confidence: ConfidenceSpec = ConfidenceSpec()
    counter_miss_probability: float = Field(
        default=0.0, description="per car passing a level's entry or exit loop"
    )
    counter_recount_hours: float | None = Field(
        default=None,
        description="staff recount each level and reset its counter every ... hours "
        "(default: never, so drift accumulates over the whole run)",
    )
    displays: DisplaysSpec = DisplaysSpec()
    drivers: DriversSpec = DriversSpec()

    @field_validator("counter_miss_probability")
    @classmethod
    def _miss(cls, v: float) -> float:
        return _probability("counter_miss_probability", v)

    @field_validator("counter_recount_hours")
    @classmethod
    def _recount(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ValueError(f"counter_recount_hours must be > 0 hours, got {v}")
        return v

    @model_validator(mode="after")
    def _devices_exist(self) -> SensorsSpec:
        if self.detection == "counters":
            for key in ("failures", "gateway_outages"):
                if getattr(self, key) is not None:
                    raise ValueError(
                        f"{key} describes spot sensors, but detection is 'counters' "
                        "(use 'spot_sensors' or 'both', or remove it)"
                    )
        if self.detection == "spot_sensors":
            for key in ("counter_miss_probability", "counter_recount_hours"):
                if getattr(self, key):
                    raise ValueError(
                        f"{key} describes level counters, but detection is "
                        "'spot_sensors' (use 'counters' or 'both', or remove it)"
                    )
        return self

    @property
    def mode(self) -> Detection:
        return Detection(self.detection)

    @property
    def uses_sensors(self) -> bool:
        return self.mode is not Detection.COUNTERS

    @property
    def uses_counters(self) -> bool:
        return self.mode is not Detection.SPOT_SENSORS
