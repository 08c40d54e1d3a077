"""What a tariff search is asked: the searched parameters, the occupancy window, the settings.

Everything here is validated before anything is simulated, and every problem is a readable line
(:class:`OptimizeError`). The search itself is in :mod:`twin.optimize.search`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from twin.experiments import RunResult
from twin.scenario.common import DAY_NAMES, Days
from twin.scenario.model import Scenario
from twin.scenario.tariff import TariffSpec, TimeOfDay

ObjectiveName = Literal["revenue", "occupancy-target", "blocking"]
MethodName = Literal["grid", "scipy"]
OBJECTIVES: tuple[str, ...] = ("revenue", "occupancy-target", "blocking")


#: Length of the default occupancy window: SFpark's rate bands were 3-5 hours long, and four
#: hours covers a lunchtime or morning peak without diluting it with the shoulders.
DEFAULT_WINDOW_HOURS = 4

#: Penalty weights (see :mod:`twin.optimize`): violating a constraint by one unit costs as much
#: as the objective's whole scale.
BLOCKING_PENALTY_DAYS = 1.0  # days of current revenue per pp over --max-blocking
REVENUE_PENALTY_PP = 100.0  # pp of turned-away share per 1 % of revenue below --min-revenue


class OptimizeError(ValueError):
    """A search that cannot run as asked; ``problems`` holds one readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# -- parameters --------------------------------------------------------------------------------
_MONEY = ("flat", "per_period", "first_period_min", "daily_max")
_MINUTES = ("free_minutes", "period_minutes", "grace_minutes")
_RATE_KEYS = _MONEY + _MINUTES
_DYNAMIC = ("event_multiplier", "min_multiplier", "max_multiplier")

#: How each kind of value is rounded (the tariff holds whole cents and whole minutes; rounding
#: also lets the cache recognise points an optimiser proposes twice) and its smallest value.
KINDS: dict[str, tuple[int, float]] = {  # kind -> (decimals, minimum)
    "money": (2, 0.0),
    "minutes": (0, 0.0),
    "multiplier": (4, 1e-4),
    "fraction": (4, 0.0),
}

NUMERIC_KEYS_HELP = (
    "tariff.<key> or tariff.bands.<i>.<key> with <key> one of "
    + ", ".join(_RATE_KEYS)
    + "; tariff.events.<i>.flat; tariff.dynamic.{"
    + ",".join(_DYNAMIC)
    + "}; tariff.dynamic.occupancy_bands.<i>.{multiplier,min_occupancy}; "
    "tariff.dynamic.time_bands.<i>.multiplier; lots.<i>.tariff.... for a lot of a network"
)


class ParamRange(BaseModel):
    """One searched parameter: a dotted tariff key and the closed range ``[low, high]``.

    Money is in dollars (rounded to cents), minute keys are whole minutes, multipliers and
    occupancy thresholds keep four decimals.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(description="dotted key as in the scenario file, e.g. tariff.per_period")
    low: float
    high: float

    @field_validator("low", "high")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError(f"must be a finite number, got {v}")
        return v

    @property
    def leaf(self) -> str:
        return self.key.rsplit(".", 1)[-1]

    @property
    def kind(self) -> str:
        leaf = self.leaf
        if leaf in _MONEY:
            return "money"
        if leaf in _MINUTES:
            return "minutes"
        return "fraction" if leaf == "min_occupancy" else "multiplier"

    def snap(self, x: float) -> float:
        """``x`` clipped to the range and rounded to what the tariff can hold."""
        decimals, _ = KINDS[self.kind]
        value = round(min(max(float(x), self.low), self.high), decimals)
        return float(int(value)) if decimals == 0 else value

    def grid(self, points: int) -> list[float]:
        """``points`` evenly spaced values from low to high, rounded, without duplicates."""
        return list(dict.fromkeys(self.snap(x) for x in np.linspace(self.low, self.high, points)))

    def label(self, value: float | None) -> str:
        """A value as a planner reads it: ``$2.50``, ``30 min``, ``1.25``; None: not set."""
        if value is None:
            return "none"
        if self.kind == "money":
            return f"${value:,.2f}"
        if self.kind == "minutes":
            return f"{value:.0f} min"
        return f"{value:g}"


def parse_param(text: str) -> ParamRange:
    """``"tariff.per_period=0.5:6"`` → a :class:`ParamRange`; ValueError with a readable line."""
    key, sep, span = text.partition("=")
    key = key.strip()
    low_text, colon, high_text = span.partition(":")
    if not sep or not key or not colon:
        raise ValueError(f"--param {text!r}: expected KEY=LOW:HIGH, e.g. tariff.per_period=0.5:6.0")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        raise ValueError(
            f"--param {text!r}: LOW and HIGH must be numbers, got {low_text!r} and {high_text!r}"
        ) from None
    try:
        return ParamRange(key=key, low=low, high=high)
    except ValidationError as exc:
        raise ValueError(f"--param {text!r}: {exc.errors()[0]['msg']}") from None


def tariff_path(key: str, scenario: Scenario) -> tuple[str, str | None]:
    """Split a key into (where the tariff is, key inside it) or explain why it is not one.

    Returns ``("tariff", "per_period")`` or ``("lots.0.tariff", "bands.1.daily_max")``; on a
    bad key the second item is None and the first is the reason.
    """
    parts = key.split(".")
    not_numeric = f"not a numeric tariff key; searchable keys are {NUMERIC_KEYS_HELP}"
    if parts[0] == "tariff":
        if scenario.tariff is None:
            if scenario.lots:
                return "the scenario has no top-level tariff; use lots.<i>.tariff....", None
            return "the scenario has no tariff to change; add a tariff: section", None
        inner = ".".join(parts[1:])
        return ("tariff", inner) if inner else (not_numeric, None)
    if parts[0] == "lots" and len(parts) >= 3 and parts[2] == "tariff":
        if not parts[1].isdigit() or int(parts[1]) >= len(scenario.lots):
            return f"the scenario has {len(scenario.lots)} lots; no lot {parts[1]!r}", None
        lot = scenario.lots[int(parts[1])]
        if lot.tariff is None and scenario.tariff is None:
            return f"lot {lot.name!r} has no tariff to change", None
        inner = ".".join(parts[3:])
        return (f"lots.{parts[1]}.tariff", inner) if inner else (not_numeric, None)
    return f"not a tariff key; searchable keys are {NUMERIC_KEYS_HELP}", None


def check_inner(inner: str, tariff: TariffSpec) -> str | None:
    """Why ``inner`` is not a numeric key of ``tariff`` (None when it is)."""
    parts = inner.split(".")
    not_numeric = f"not a numeric tariff key; searchable keys are {NUMERIC_KEYS_HELP}"
    if len(parts) == 1:
        return None if parts[0] in _RATE_KEYS else not_numeric

    def indexed(items: Sequence[Any], what: str, index: str) -> str | None:
        if not index.isdigit() or int(index) >= len(items):
            return f"the tariff has {len(items)} {what}; no item {index!r}"
        return None

    if parts[0] == "bands" and len(parts) == 3:
        return indexed(tariff.bands, "bands", parts[1]) or (
            None if parts[2] in _RATE_KEYS else not_numeric
        )
    if parts[0] == "events" and len(parts) == 3:
        return indexed(tariff.events, "events", parts[1]) or (
            None if parts[2] == "flat" else not_numeric
        )
    if parts[0] == "dynamic":
        if tariff.dynamic is None:
            return "the tariff has no dynamic: section to change"
        if len(parts) == 2:
            return None if parts[1] in _DYNAMIC else not_numeric
        if len(parts) == 4 and parts[1] == "occupancy_bands":
            return indexed(tariff.dynamic.occupancy_bands, "occupancy bands", parts[2]) or (
                None if parts[3] in ("multiplier", "min_occupancy") else not_numeric
            )
        if len(parts) == 4 and parts[1] == "time_bands":
            return indexed(tariff.dynamic.time_bands, "time bands", parts[2]) or (
                None if parts[3] == "multiplier" else not_numeric
            )
    return not_numeric


def tariff_at(scenario: Scenario, where: str) -> TariffSpec:
    if where == "tariff":
        assert scenario.tariff is not None
        return scenario.tariff
    lot = scenario.lots[int(where.split(".")[1])]
    tariff = lot.tariff if lot.tariff is not None else scenario.tariff
    assert tariff is not None
    return tariff


def current_value(tariff: TariffSpec, inner: str) -> float | None:
    """The value a key has now (None: not set, e.g. no daily maximum or an inherited rate)."""
    node: Any = tariff
    for part in inner.split("."):
        node = node[int(part)] if isinstance(node, list) else getattr(node, part)
        if node is None:
            return None
    return float(node)


# -- the window the occupancy target is measured in -------------------------------------------
class Window(BaseModel):
    """Days of the week and hours of the day (``[start, end)``, may wrap past midnight)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: Days = Field(default_factory=lambda: ["all"])
    start: TimeOfDay
    end: TimeOfDay

    @property
    def minutes(self) -> tuple[int, int]:
        def m(hhmm: str) -> int:
            hh, mm = hhmm.split(":")
            return int(hh) * 60 + int(mm)

        return m(self.start), m(self.end)

    def describe(self) -> str:
        days = self.days
        names = (
            "every day"
            if len(days) == 7
            else "weekdays"
            if days == list(DAY_NAMES[:5])
            else "weekends"
            if days == list(DAY_NAMES[5:])
            else ",".join(days)
        )
        return f"{names} {self.start}-{self.end}"

    def mask(self, times: pd.Series) -> np.ndarray:
        """Which timestamps fall inside the window."""
        day_numbers = [DAY_NAMES.index(d) for d in self.days]
        minute = (times.dt.hour * 60 + times.dt.minute).to_numpy()
        lo, hi = self.minutes
        inside = (minute >= lo) & (minute < hi) if lo < hi else (minute >= lo) | (minute < hi)
        return inside & np.isin(times.dt.day_of_week.to_numpy(), day_numbers)


def parse_window(text: str) -> Window:
    """``"11:00-15:00"``, ``"weekdays 11:00-15:00"`` or ``"sat,sun 12:00-16:00"`` → Window."""
    words = text.split()
    if len(words) not in (1, 2) or "-" not in words[-1]:
        raise ValueError(
            f"--window {text!r}: expected [DAYS] HH:MM-HH:MM, e.g. 'weekdays 11:00-15:00'"
        )
    start, _, end = words[-1].partition("-")
    days = words[0].split(",") if len(words) == 2 else ["all"]
    try:
        window = Window(days=days, start=start, end=end)
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ValueError(f"--window {text!r}: {msg}") from None
    if window.start == window.end:
        raise ValueError(f"--window {text!r}: start and end are equal")
    return window


def total_occupancy(run_result: RunResult) -> pd.DataFrame:
    """Total-occupancy samples after the warm-up: replication, time, occupancy."""
    occ = run_result.occupancy
    sc = run_result.scenario
    keep = (
        (occ["group_kind"] == "total")
        & (occ["time_s"] >= sc.warmup_s)
        & (occ["time_s"] < sc.horizon_s)
    )
    return occ.loc[keep, ["replication", "time", "occupancy"]]


def busiest_window(run_result: RunResult, hours: int = DEFAULT_WINDOW_HOURS) -> Window:
    """The ``hours`` consecutive hours with the highest mean occupancy, on the busier day type.

    Hourly means are taken over the measured samples of weekdays and of weekend days separately
    (each over all replications); blocks may wrap past midnight but use only hours that were
    sampled. With no full block sampled (a horizon shorter than the block) the window is
    every sampled hour.
    """
    samples = total_occupancy(run_result)
    weekday = samples["time"].dt.day_of_week.to_numpy()
    hour = samples["time"].dt.hour.to_numpy()
    occupancy = samples["occupancy"].to_numpy(dtype=float)
    best: tuple[float, list[str], int] | None = None
    for days, numbers in ((["weekdays"], range(5)), (["weekend"], range(5, 7))):
        on = np.isin(weekday, list(numbers))
        if not on.any():
            continue
        means = np.full(24, np.nan)
        for h in range(24):
            sel = on & (hour == h)
            if sel.any():
                means[h] = occupancy[sel].mean()
        for start in range(24):
            block = means[[(start + k) % 24 for k in range(hours)]]
            if np.isnan(block).any():
                continue
            value = float(block.mean())
            if best is None or value > best[0]:
                best = (value, days, start)
    if best is None:  # horizon shorter than the block: every sampled hour
        return Window(days=["all"], start="00:00", end="24:00")
    _, days, start = best
    end = (start + hours) % 24
    return Window(days=days, start=f"{start:02d}:00", end=f"{end:02d}:00" if end else "24:00")


# -- settings ---------------------------------------------------------------------------------
class OptimizeSpec(BaseModel):
    """Everything a search is asked to do; validated before anything is simulated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objective: ObjectiveName = "revenue"
    params: list[ParamRange] = Field(default_factory=list)
    method: MethodName = "grid"
    grid_points: int = Field(default=7, ge=2, le=101, description="values per parameter")
    max_evals: int = Field(default=30, ge=3, description="scipy: objective calls at most")
    replications: int = Field(default=5, ge=2, description="paired replications per point")
    seed: int | None = Field(default=None, ge=0)
    target: float = Field(default=0.85, description="occupancy target (fraction)")
    window: Window | None = None
    max_blocking: float | None = Field(default=None, ge=0, le=100, description="pp")
    min_revenue: float | None = Field(default=None, ge=0, description="$/day")

    @field_validator("target")
    @classmethod
    def _fraction(cls, value: float) -> float:
        """A share, not a percentage: 85 would be read as 8,500 % and refused unexplained."""
        if not 0 < value < 1:
            hint = f" ({value:g} % is {value / 100:g})" if 2 <= value <= 100 else ""
            raise ValueError(f"must be a fraction of the spots between 0 and 1{hint}")
        return value


def make_spec(
    *,
    objective: str = "revenue",
    params: Mapping[str, tuple[float, float]] | Sequence[str | ParamRange] | None = None,
    window: str | Window | None = None,
    **options: Any,
) -> OptimizeSpec:
    """An :class:`OptimizeSpec` from friendly inputs; every problem as an OptimizeError line.

    ``params`` is ``{"tariff.per_period": (0.5, 6.0)}``, or ``["tariff.per_period=0.5:6"]``
    (the CLI's form), or ParamRange objects; ``window`` a string such as ``"weekdays
    11:00-15:00"``. Other ``options`` are OptimizeSpec fields (``method``, ``grid_points``,
    ``replications``, ...); problems name them as CLI options (``--grid-points``).
    """
    problems: list[str] = []
    ranges: list[ParamRange] = []
    items: Any = params or []
    if isinstance(items, Mapping):
        items = [ParamRange(key=k, low=lo, high=hi) for k, (lo, hi) in items.items()]
    for item in items:
        try:
            ranges.append(item if isinstance(item, ParamRange) else parse_param(item))
        except ValueError as exc:
            problems.append(str(exc))
    if isinstance(window, str):
        try:
            window = parse_window(window)
        except ValueError as exc:
            problems.append(str(exc))
            window = None
    if objective not in OBJECTIVES:
        problems.append(f"--objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    try:
        spec = OptimizeSpec(objective=objective, params=ranges, window=window, **options)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            name = str(err["loc"][0]) if err["loc"] else "?"
            if name == "objective":
                continue  # reported above, with the choices
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"--{name.replace('_', '-')}: {msg} (got {err.get('input')!r})")
        if not problems:  # pragma: no cover - every field error is listed above
            problems.append(str(exc))
        raise OptimizeError(problems) from None
    if problems:
        raise OptimizeError(problems)
    return spec
