"""Search tariff parameters for an objective, with common random numbers and confidence intervals.

A tariff search asks one question many times: "is this price better than that one?". Over a
noisy simulation the answer is only trustworthy if the noise does not change from candidate to
candidate, so every candidate here is simulated with the **same seed and the same replication
indexes** (common random numbers, :mod:`twin.sim.rng`): replication *r* of every candidate sees
the same drivers arrive at the same instants wanting the same stays and carrying the same
budgets, and only what the tariff does with them differs. Two consequences:

* The objective is a deterministic function of the parameters (same inputs, same answer), so a
  grid is reproducible and ``scipy.optimize`` does not chase noise.
* Differences between candidates are *paired*; their t intervals
  (:func:`twin.stats.paired_difference`) are much narrower than the intervals of the
  candidates themselves, which is what lets the search say whether the best candidate is
  really better than the runner-up.

Objectives (see ``docs/optimize.md`` for the reasoning):

``revenue``
    Maximise revenue per day. With ``max_blocking`` (pp), candidates whose mean *turned-away*
    share (blocked + reneged: drivers willing to pay who found no space) exceeds the cap are
    penalised: each pp over the cap costs a whole day's revenue at the current tariff.
``occupancy-target``
    Minimise the squared gap (pp²) between the mean occupancy in a *window* and ``target``
    (Shoup's 85 %). Which of two tariffs comes closer is judged per replication, on the
    absolute gaps ``|occupancy_r − target|`` (paired). The window is a fixed set of days and
    hours of the day; by default the busiest four consecutive hours of the busier day type
    (weekdays or weekend) at the current tariff, because that is when a lot is scarce and what
    the 85 % rule is about (an all-day mean of a lot that empties every night can never reach
    85 %).
``blocking``
    Minimise the turned-away share subject to revenue per day of at least ``min_revenue``
    (default: the current tariff's revenue, i.e. "turn fewer drivers away without earning
    less"; 0 disables the floor). Each 1 % of revenue short of the floor costs 100 pp. Ties
    (e.g. several prices with nobody turned away) go to the higher revenue.

Penalties are a device for the search; the statistics (intervals, paired comparisons) are
always about the figure itself: revenue, the turned-away share, the gap to the target.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from twin import figures
from twin.compare import Comparison, paired_table, verdict
from twin.experiments import RunResult, resolve_warmup, run
from twin.figures import quantity, significant_decimals
from twin.outputs import claim, save_figure, write_frame, write_json
from twin.scenario.common import DAY_NAMES, Days
from twin.scenario.loader import (
    apply_overrides,
    format_errors,
    load_scenario,
    validate_scenario,
)
from twin.scenario.model import Scenario
from twin.scenario.tariff import TariffSpec, TimeOfDay
from twin.stats import PairedDifference, confidence_interval, paired_difference

__all__ = [
    "OBJECTIVES",
    "Evaluation",
    "OptimizationResult",
    "OptimizeError",
    "OptimizeSpec",
    "ParamRange",
    "Window",
    "key_figures",
    "make_spec",
    "optimize",
    "parse_param",
    "parse_window",
]

ObjectiveName = Literal["revenue", "occupancy-target", "blocking"]
MethodName = Literal["grid", "scipy"]
OBJECTIVES: tuple[str, ...] = ("revenue", "occupancy-target", "blocking")


def key_figures(names: list[str] | pd.Index) -> list[str]:
    """Figures every evaluated point reports with a 95 % interval, of ``names`` (a run's): the
    search's own (``no_space_pct``, blocked + reneged, "turned away" in the reports: drivers
    willing to pay who found no space in time, and ``occupancy.window``) and the registry's
    headline figures, in the registry's units and order (:mod:`twin.figures`)."""
    own = figures.in_section(list(names), "optimize")
    lot = [n for n in figures.headline(list(names)) if not figures.lookup(n).section.component]
    return own + lot


#: Length of the default occupancy window: SFpark's rate bands were 3-5 hours long, and four
#: hours covers a lunchtime or morning peak without diluting it with the shoulders.
DEFAULT_WINDOW_HOURS = 4

#: Penalty weights (see the module docstring): violating a constraint by one unit costs as much
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
_KINDS: dict[str, tuple[int, float]] = {  # kind -> (decimals, minimum)
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
        decimals, _ = _KINDS[self.kind]
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


def _tariff_path(key: str, scenario: Scenario) -> tuple[str, str | None]:
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


def _check_inner(inner: str, tariff: TariffSpec) -> str | None:
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


def _tariff_at(scenario: Scenario, where: str) -> TariffSpec:
    if where == "tariff":
        assert scenario.tariff is not None
        return scenario.tariff
    lot = scenario.lots[int(where.split(".")[1])]
    tariff = lot.tariff if lot.tariff is not None else scenario.tariff
    assert tariff is not None
    return tariff


def _current(tariff: TariffSpec, inner: str) -> float | None:
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


def _total_occupancy(run_result: RunResult) -> pd.DataFrame:
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
    samples = _total_occupancy(run_result)
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
    target: float = Field(default=0.85, gt=0, lt=1, description="occupancy target (fraction)")
    window: Window | None = None
    max_blocking: float | None = Field(default=None, ge=0, le=100, description="pp")
    min_revenue: float | None = Field(default=None, ge=0, description="$/day")


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


@dataclass
class Evaluation:
    """One simulated point: its parameter values and per-replication figures."""

    index: int  # order in which it was first simulated (0 = current tariff)
    values: dict[str, float | None]
    metrics: pd.DataFrame  # one row per replication, with no_space_pct, occupancy.window
    run: RunResult  # frames dropped unless keep_runs
    searched: bool = True  # proposed by the search (False: only the current tariff)
    baseline: bool = False
    primary: np.ndarray = field(default_factory=lambda: np.array([]))  # objective figure
    compared: np.ndarray = field(default_factory=lambda: np.array([]))  # for paired tests
    score: float = math.nan
    feasible: bool = True

    def mean(self, metric: str) -> float:
        if metric not in self.metrics:
            return math.nan
        return confidence_interval(self.metrics[metric].to_numpy(dtype=float))[0]


@dataclass(frozen=True)
class _Objective:
    """The objective of a search, with its constraint resolved to numbers."""

    name: str
    target: float
    max_blocking: float | None
    min_revenue: float | None
    penalty: float  # per unit of constraint violation, in the score's units

    @property
    def metric(self) -> str:
        """Per-replication figure the statistics are about."""
        return {
            "revenue": "revenue_per_day",
            "blocking": "no_space_pct",
            "occupancy-target": "target_gap_pp",
        }[self.name]

    @property
    def label(self) -> str:
        return {
            "revenue": "revenue per day (maximised)",
            "blocking": "turned away, % (minimised)",
            "occupancy-target": f"gap to {100 * self.target:g} % occupancy, pp "
            "(its square minimised)",
        }[self.name]

    def assess(self, ev: Evaluation) -> None:
        """Fill ``primary``, ``compared``, ``score`` (lower is better) and ``feasible``.

        ``primary`` is the objective figure per replication (revenue, turned-away %, signed gap
        to the target in pp); ``compared`` what paired tests between points use: the same,
        except the absolute gap for the occupancy target (closer is better on either side).
        """
        m = ev.metrics
        if self.name == "occupancy-target":
            m["target_gap_pp"] = 100.0 * (m["occupancy.window"] - self.target)
        ev.primary = m[self.metric].to_numpy(dtype=float)
        ev.compared = np.abs(ev.primary) if self.name == "occupancy-target" else ev.primary
        mean = float(np.nanmean(ev.primary)) if np.isfinite(ev.primary).any() else math.nan
        violation = 0.0
        if self.name == "revenue":
            score = -mean
            if self.max_blocking is not None:
                violation = max(0.0, ev.mean("no_space_pct") - self.max_blocking)
        elif self.name == "blocking":
            score = mean
            if self.min_revenue:
                short = self.min_revenue - ev.mean("revenue_per_day")
                violation = max(0.0, 100.0 * short / self.min_revenue)
        else:  # the squared gap of the mean occupancy: smooth for scipy, the same argmin
            score = mean**2
        ev.feasible = violation <= 0.0
        ev.score = score + self.penalty * violation if math.isfinite(score) else math.inf

    def tie_break(self, ev: Evaluation) -> float:
        """Second sort key: less turned away for revenue; more revenue for the others."""
        if self.name == "revenue":
            return ev.mean("no_space_pct")
        return -ev.mean("revenue_per_day")


Progress = Callable[[int, int, str], None]


# -- the evaluator: CRN, cache, derived figures ------------------------------------------------
class _Evaluator:
    """Simulates candidate tariffs with common random numbers, each point once."""

    def __init__(
        self,
        base: Scenario,
        params: list[ParamRange],
        replications: int,
        seed: int,
        keep_runs: bool,
        progress: Progress | None,
        total: int,
    ) -> None:
        self.base = base
        self.params = params
        self.replications = replications
        self.seed = seed
        self.keep_runs = keep_runs
        self.progress = progress
        self.total = total
        self.window: Window | None = None
        self.objective: _Objective | None = None
        self.cache: dict[tuple, Evaluation] = {}
        self.order: list[Evaluation] = []
        self.calls = 0  # objective calls, cache hits included
        self.where = {p.key: _tariff_path(p.key, base) for p in params}
        self.current = {
            p.key: _current(_tariff_at(base, self.where[p.key][0]), self.where[p.key][1] or "")
            for p in params
        }

    def candidate(self, values: Mapping[str, float | None]) -> Scenario:
        """The base scenario with these tariff values (other settings untouched)."""
        by_tariff: dict[str, dict[str, Any]] = {}
        for key, value in values.items():
            if value is None:  # not set now (e.g. an inherited band rate): leave it so
                continue
            where, inner = self.where[key]
            by_tariff.setdefault(where, {})[inner] = value
        update: dict[str, Any] = {}
        lots = list(self.base.lots)
        for where, overrides in by_tariff.items():
            raw = _tariff_at(self.base, where).model_dump(exclude_unset=True)
            try:
                tariff = TariffSpec.model_validate(apply_overrides(raw, overrides))
            except ValidationError as exc:  # e.g. two searched keys that must stay ordered
                point = ", ".join(f"{k}={v}" for k, v in values.items())
                raise OptimizeError(
                    [f"{point}: {line}" for line in format_errors(exc, TariffSpec)]
                    + ["narrow the ranges so that every combination is a valid tariff"]
                ) from None
            if where == "tariff":
                update["tariff"] = tariff
            else:
                k = int(where.split(".")[1])
                lots[k] = lots[k].model_copy(update={"tariff": tariff})
                update["lots"] = lots
        # validated afresh rather than model_copy'd: a copy would keep the cached
        # Scenario.lot_specs of the base, i.e. the old tariff
        fields = {name: getattr(self.base, name) for name in Scenario.model_fields}
        return Scenario.model_validate(fields | update)

    def evaluate(self, values: Mapping[str, float | None], searched: bool = True) -> Evaluation:
        """Simulate (or recall) the point; the same seed and replication indexes every time."""
        self.calls += 1
        key = tuple(values[p.key] for p in self.params)
        if key in self.cache:
            ev = self.cache[key]
            ev.searched = ev.searched or searched
            return ev
        scenario = self.candidate(values)
        if self.progress is not None:
            shown = ", ".join(f"{p.key}={p.label(values[p.key])}" for p in self.params)
            self.progress(len(self.order), self.total, shown)
        result = run(scenario, replications=self.replications, seed=self.seed)
        metrics = result.metrics.copy()
        metrics["no_space_pct"] = metrics["blocked_pct"] + metrics["reneged_pct"]
        if self.window is None:  # the current tariff's run chooses the default window
            self.window = busiest_window(result)
        metrics["occupancy.window"] = _window_means(result, self.window, self.replications)
        if not self.keep_runs:
            empty = pd.DataFrame()
            result = RunResult(
                scenario=scenario,
                seed=result.seed,
                metrics=result.metrics,
                vehicles=empty,
                occupancy=empty,
                lanes=empty,
            )
        result.metrics = metrics
        ev = Evaluation(
            index=len(self.order),
            values=dict(values),
            metrics=metrics,
            run=result,
            searched=searched,
        )
        if self.objective is not None:
            self.objective.assess(ev)
        self.cache[key] = ev
        self.order.append(ev)
        if self.progress is not None:
            self.progress(len(self.order), self.total, "")
        return ev

    def score(self, values: Mapping[str, float]) -> float:
        return self.evaluate(values).score


def _window_means(result: RunResult, window: Window, replications: int) -> np.ndarray:
    """Mean total occupancy inside the window, per replication (NaN if never sampled)."""
    samples = _total_occupancy(result)
    inside = samples[window.mask(samples["time"])]
    means = inside.groupby("replication")["occupancy"].mean()
    return means.reindex(range(replications)).to_numpy(dtype=float)


# -- the result ---------------------------------------------------------------------------------
@dataclass
class OptimizationResult:
    """What a search found, and every point it simulated.

    ``best`` is the top-ranked searched point; ``table`` has one row per simulated point,
    best first (see :meth:`build_table` for its columns); ``baseline_comparison`` is the paired
    comparison of the best tariff (B) against the scenario's current tariff (A);
    ``runner_up_difference`` the paired difference of the objective figure between the best and
    the runner-up (next feasible point), runner-up minus best.
    """

    scenario: Scenario
    spec: OptimizeSpec
    params: list[ParamRange]
    evaluations: list[Evaluation]
    best: Evaluation
    baseline: Evaluation
    runner_up: Evaluation | None
    runner_up_difference: PairedDifference | None
    baseline_comparison: Comparison
    window: Window
    objective_metric: str
    objective_label: str
    seed: int
    min_revenue: float | None
    notes: list[str]
    table: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def replications(self) -> int:
        return self.spec.replications

    def ranked(self) -> list[Evaluation]:
        """Every point, best first, in the order of ``table``."""
        by_index = {ev.index: ev for ev in self.evaluations}
        return [by_index[int(i)] for i in self.table["point"]]

    def describe(self, ev: Evaluation) -> str:
        """``tariff.per_period=$2.50, tariff.daily_max=$20.00``."""
        return ", ".join(f"{p.key}={p.label(ev.values[p.key])}" for p in self.params)

    def distinguishable(self) -> bool | None:
        """Is the best's objective figure better than the runner-up's beyond noise?"""
        d = self.runner_up_difference
        if d is None or math.isnan(d.ci_low):
            return None
        return d.significant

    def statements(self) -> list[str]:
        """Plain sentences: the best tariff, the runner-up test, the current-tariff verdicts."""
        lines = [f"Best tariff: {self.describe(self.best)}"]
        d = self.runner_up_difference
        if self.runner_up is not None and d is not None:
            unit = "$/day" if self.objective_metric == "revenue_per_day" else "pp"
            gap = (
                " (absolute gap to the target)" if self.spec.objective == "occupancy-target" else ""
            )
            what = self.describe(self.runner_up)
            if math.isnan(d.ci_low):
                lines.append(f"Runner-up ({what}): cannot tell with {d.n} replications")
            elif d.sd == 0 and d.mean == 0:
                broken = "the share turned away" if self.spec.objective == "revenue" else "revenue"
                lines.append(
                    f"Runner-up ({what}) scores the same in every replication: a tie, "
                    f"ranked by {broken}"
                )
            else:
                dec = significant_decimals(d.half_width, d.mean)
                verdict_text = (
                    "the best is distinguishable from it"
                    if d.significant
                    else "the data cannot separate them"
                )
                lines.append(
                    f"Runner-up ({what}): runner-up − best{gap} = {quantity(d.mean, unit, dec)}, "
                    f"95% paired CI {quantity(d.ci_low, unit, dec)} … "
                    f"{quantity(d.ci_high, unit, dec)}: {verdict_text}"
                )
            tied = int(self.table["tied_with_best"].sum()) - 1
            if tied > 0:
                lines.append(
                    f"{tied} other point{'s' * (tied > 1)} cannot be told apart from the best "
                    "(paired 95% CI of the difference contains 0)"
                )
        lines.extend(self.baseline_comparison.verdicts)
        return lines

    def to_dict(self) -> dict[str, Any]:
        """What ``optimize.json`` holds: settings, best, baseline comparison, every point."""

        def clean(x: Any) -> Any:
            if isinstance(x, float | np.floating):
                return None if not math.isfinite(x) else float(x)
            if isinstance(x, np.integer | np.bool_):
                return x.item()
            return x

        d = self.runner_up_difference
        return {
            "scenario": self.scenario.name,
            "objective": self.spec.objective,
            "objective_metric": self.objective_metric,
            "method": self.spec.method,
            "replications": self.replications,
            "seed": self.seed,
            "horizon_days": self.scenario.horizon_days,
            "warmup_hours": self.scenario.warmup_hours,
            "window": self.window.describe(),
            "target": self.spec.target,
            "max_blocking": self.spec.max_blocking,
            "min_revenue": self.min_revenue,
            "params": [p.model_dump() for p in self.params],
            "best": {k: clean(v) for k, v in self.best.values.items()},
            "baseline": {k: clean(v) for k, v in self.baseline.values.items()},
            "runner_up": None
            if self.runner_up is None
            else {k: clean(v) for k, v in self.runner_up.values.items()},
            "runner_up_minus_best": None
            if d is None
            else {"mean": clean(d.mean), "ci95": [clean(d.ci_low), clean(d.ci_high)]},
            "statements": self.statements(),
            "notes": self.notes,
            "baseline_comparison": self.baseline_comparison.to_dict(),
            "points": [
                {k: clean(v) for k, v in row.items()} for row in self.table.to_dict("records")
            ],
        }

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write ``optimize.csv`` (one row per point), ``optimize.json`` and ``optimize.png``
        (1 or 2 parameters)."""
        with claim(out_dir) as out:
            csv = write_frame(self.table, out / "optimize.csv")
            js = write_json(out / "optimize.json", self.to_dict(), default=str)
            written = [csv, js]
            if len(self.params) <= 2:
                written.append(plot_optimization(self, out / "optimize.png"))
        return written


def _num(x: float) -> str:
    """Two significant digits after the point for small numbers, grouped thousands for large."""
    if not math.isfinite(x):
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:,.2f}"
    return f"{x:.3g}"


def build_table(
    ranked: list[Evaluation], params: list[ParamRange], best: Evaluation, confidence: float = 0.95
) -> pd.DataFrame:
    """One row per point, best first.

    Columns: ``rank, point`` (evaluation order; 0 is the current tariff), one column per
    parameter, ``searched, baseline, feasible, score`` (the penalised value the ranking uses,
    lower is better), ``objective_mean/_ci_low/_ci_high`` (the objective figure and its 95 %
    t interval over replications), ``vs_best_mean/_ci_low/_ci_high`` (paired difference of
    the objective figure, point − best), ``tied_with_best`` (that interval contains 0), then
    ``<figure>_mean/_ci_low/_ci_high`` for each of :func:`key_figures` the scenario has.
    """
    rows = []
    for rank, ev in enumerate(ranked, start=1):
        mean, _, lo, hi = confidence_interval(ev.primary, confidence)
        diff = paired_difference(best.compared, ev.compared, confidence)
        tied = ev is best or not diff.significant
        row: dict[str, Any] = {"rank": rank, "point": ev.index}
        row.update({p.key: ev.values[p.key] for p in params})
        row.update(
            {
                "searched": ev.searched,
                "baseline": ev.baseline,
                "feasible": ev.feasible,
                "score": ev.score,
                "objective_mean": mean,
                "objective_ci_low": lo,
                "objective_ci_high": hi,
                "vs_best_mean": diff.mean,
                "vs_best_ci_low": diff.ci_low,
                "vs_best_ci_high": diff.ci_high,
                "tied_with_best": tied,
            }
        )
        for name in key_figures(list(ev.metrics.columns)):
            if name in ev.metrics:
                m, _, lo, hi = confidence_interval(ev.metrics[name].to_numpy(dtype=float))
                row.update({f"{name}_mean": m, f"{name}_ci_low": lo, f"{name}_ci_high": hi})
        rows.append(row)
    return pd.DataFrame(rows)


# -- the search -------------------------------------------------------------------------------
def as_scenario(scenario: Scenario | str | Path | Mapping[str, Any]) -> Scenario:
    """A scenario object, file or raw mapping (as in a YAML file) → validated Scenario."""
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, Mapping):
        return validate_scenario(dict(scenario))
    return load_scenario(scenario)


def default_param(scenario: Scenario) -> ParamRange:
    """``tariff.per_period`` from half to three times its current value ($0.50-$6.00 if 0)."""
    current = float(scenario.tariff.per_period) if scenario.tariff is not None else 0.0
    if current <= 0:
        return ParamRange(key="tariff.per_period", low=0.5, high=6.0)
    return ParamRange(
        key="tariff.per_period", low=round(current / 2, 2), high=round(3 * current, 2)
    )


def check_params(scenario: Scenario, params: list[ParamRange]) -> None:
    """Every key must be a numeric key of a tariff the scenario has, every range valid;
    raises :class:`OptimizeError` listing all problems."""
    problems = []
    keys = [p.key for p in params]
    for dup in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(f"--param {dup}: given more than once")
    for p in params:
        where, inner = _tariff_path(p.key, scenario)
        if inner is None:
            problems.append(f"--param {p.key}: {where}")
            continue
        why = _check_inner(inner, _tariff_at(scenario, where))
        if why is not None:
            problems.append(f"--param {p.key}: {why}")
            continue
        if not p.low < p.high:
            problems.append(f"--param {p.key}: LOW ({p.low:g}) must be below HIGH ({p.high:g})")
            continue
        minimum = _KINDS[p.kind][1]
        if p.low < minimum:
            problems.append(f"--param {p.key}: must be >= {minimum:g}, got LOW {p.low:g}")
            continue
        if p.kind == "fraction" and p.high > 1:
            problems.append(f"--param {p.key}: an occupancy threshold is at most 1, got {p.high:g}")
            continue
        if p.leaf == "period_minutes" and p.low < 1:
            problems.append(f"--param {p.key}: a period is at least 1 minute, got {p.low:g}")
            continue
        if p.snap(p.low) == p.snap(p.high):
            unit = "a cent" if p.kind == "money" else "a minute" if p.kind == "minutes" else "1e-4"
            problems.append(f"--param {p.key}: the range is narrower than {unit}")
            continue
        # the tariff must accept both ends (e.g. a max_multiplier below min_multiplier)
        for end in (p.low, p.high):
            raw = _tariff_at(scenario, where).model_dump(exclude_unset=True)
            try:
                TariffSpec.model_validate(apply_overrides(raw, {inner: p.snap(end)}))
            except ValidationError as exc:
                line = format_errors(exc, TariffSpec)[0]
                problems.append(f"--param {p.key}={p.label(p.snap(end))}: {line}")
                break
    if problems:
        raise OptimizeError(problems)


def optimize(
    scenario: Scenario | str | Path | Mapping[str, Any],
    spec: OptimizeSpec | None = None,
    *,
    keep_runs: bool = False,
    progress: Progress | None = None,
) -> OptimizationResult:
    """Search the tariff parameters of ``spec`` for its objective; see the module docstring.

    The current tariff is simulated first (it sets the default occupancy window, the default
    revenue floor and the penalty scale, and is the reference of the final comparison), then
    the candidates of the grid or of ``scipy.optimize``, each once (cached), all with the same
    seed and replication indexes. A scenario with ``warmup_hours: auto`` has its warm-up
    detected once, on the current tariff, and every candidate is measured after it, so all
    points cover the same window. ``keep_runs`` keeps every point's frames (vehicles,
    occupancy) in ``Evaluation.run``; by default only the per-replication figures are kept.
    Raises :class:`OptimizeError` or :class:`ScenarioError` for inputs the caller can fix.
    """
    spec = spec or OptimizeSpec()
    base = as_scenario(scenario)
    if base.tariff is None and not any(lot.tariff is not None for lot in base.lots):
        raise OptimizeError(["the scenario has no tariff to optimise; add a tariff: section"])
    params = list(spec.params) or [default_param(base)]
    check_params(base, params)
    seed = base.seed if spec.seed is None else spec.seed
    notes: list[str] = []
    base, detection, _ = resolve_warmup(base, seed)
    if detection is not None:
        notes.append(
            f"warm-up detected once, on the current tariff: {detection.hours:g} h; every "
            "candidate is measured after it"
        )
    if base.pricing_policy is not None:
        notes.append(
            "the scenario has adaptive pricing: the searched values are starting rates, which "
            "the pricing policy then moves during the run"
        )
    if spec.method == "grid":
        axes = [p.grid(spec.grid_points) for p in params]
        total = math.prod(len(a) for a in axes) + 1
    else:
        axes = []
        total = spec.max_evals + (3 if len(params) == 1 else 1)
    ev = _Evaluator(base, params, spec.replications, seed, keep_runs, progress, total)
    # every grid point (or every corner of the box, for scipy) must be a valid tariff before
    # anything runs: two searched keys can conflict (min_multiplier above max_multiplier)
    keys = [p.key for p in params]
    grid_size = math.prod(len(a) for a in axes) if axes else 0
    checked = axes if axes and grid_size <= 10_000 else [[p.low, p.high] for p in params]
    for combo in itertools.product(*checked):
        ev.candidate(
            dict(zip(keys, (p.snap(v) for p, v in zip(params, combo, strict=True)), strict=True))
        )
    ev.window = spec.window
    # the current tariff is a candidate like any other when it lies inside every range
    inside = all(
        ev.current[p.key] is not None and p.low <= ev.current[p.key] <= p.high for p in params
    )
    baseline = ev.evaluate(ev.current, searched=inside)
    baseline.baseline = True
    window = ev.window
    assert window is not None
    no_samples = np.isnan(baseline.metrics["occupancy.window"]).all()
    if no_samples and spec.objective == "occupancy-target":
        raise OptimizeError(
            [
                f"--window {window.describe()}: no occupancy sample falls in it (measured "
                f"{base.horizon_days:g} days after a {base.warmup_hours:g} h warm-up)"
            ]
        )
    base_revenue = baseline.mean("revenue_per_day")
    min_revenue = spec.min_revenue
    if spec.objective == "blocking" and min_revenue is None:
        min_revenue = base_revenue if base_revenue > 0 else None
    penalty = {
        "revenue": BLOCKING_PENALTY_DAYS * max(abs(base_revenue), 1.0),
        "blocking": REVENUE_PENALTY_PP,
        "occupancy-target": 0.0,
    }[spec.objective]
    objective = _Objective(spec.objective, spec.target, spec.max_blocking, min_revenue, penalty)
    ev.objective = objective
    objective.assess(baseline)

    if spec.method == "grid":
        for combo in itertools.product(*axes):
            ev.evaluate(dict(zip([p.key for p in params], combo, strict=True)))
    else:
        _scipy_search(ev, params, spec, baseline)

    searched = [e for e in ev.order if e.searched]

    def rank_key(e: Evaluation) -> tuple[float, float, int]:
        return (e.score, objective.tie_break(e), e.index)

    ranked = sorted(ev.order, key=rank_key)
    best = min(searched, key=rank_key)
    following = [e for e in sorted(searched, key=rank_key) if e is not best]
    runner_up = next((e for e in following if e.feasible or not best.feasible), None)
    runner_diff = (
        paired_difference(best.compared, runner_up.compared) if runner_up is not None else None
    )
    if not best.feasible:
        notes.append(
            "no searched point meets the constraint; the best is the one that misses it least"
        )
    comparison = _baseline_comparison(baseline, best, params)
    result = OptimizationResult(
        scenario=base,
        spec=spec,
        params=params,
        evaluations=list(ev.order),
        best=best,
        baseline=baseline,
        runner_up=runner_up,
        runner_up_difference=runner_diff,
        baseline_comparison=comparison,
        window=window,
        objective_metric=objective.metric,
        objective_label=objective.label,
        seed=seed,
        min_revenue=min_revenue,
        notes=notes,
    )
    result.table = build_table(ranked, params, best)
    return result


def _scipy_search(
    ev: _Evaluator, params: list[ParamRange], spec: OptimizeSpec, baseline: Evaluation
) -> None:
    """Bounded Brent for one parameter, Nelder-Mead on the unit cube for several.

    Brent's bounded method never evaluates the ends of its interval, yet an optimum at a bound
    is common in pricing (inelastic demand: the higher the better), so both ends are simulated
    too. Nelder-Mead works on each range scaled to [0, 1] (so a $ range and a minute range
    move alike), starts from the current tariff clipped into the ranges, with a first simplex a
    quarter of each range wide, and every proposal is clipped to the bounds.
    """
    from scipy.optimize import minimize, minimize_scalar

    keys = [p.key for p in params]
    if len(params) == 1:
        p = params[0]
        # stop at 1 % of the range: finer steps move the figures by less than their noise
        tolerance = max(10.0 ** -_KINDS[p.kind][0], 0.01 * (p.high - p.low))
        minimize_scalar(
            lambda x: ev.score({p.key: p.snap(x)}),
            bounds=(p.low, p.high),
            method="bounded",
            options={"xatol": tolerance, "maxiter": spec.max_evals},
        )
        ev.evaluate({p.key: p.snap(p.low)})
        ev.evaluate({p.key: p.snap(p.high)})
        return

    def values(u: np.ndarray) -> dict[str, float]:
        u = np.clip(u, 0.0, 1.0)
        return {
            k: p.snap(p.low + ui * (p.high - p.low))
            for k, p, ui in zip(keys, params, u, strict=True)
        }

    start = []
    for p in params:
        now = baseline.values[p.key]
        start.append(0.5 if now is None else min(max((now - p.low) / (p.high - p.low), 0.0), 1.0))
    x0 = np.array(start)
    simplex = [x0]
    for i in range(len(params)):
        step = np.zeros(len(params))
        step[i] = 0.25 if x0[i] <= 0.75 else -0.25
        simplex.append(x0 + step)
    minimize(
        lambda u: ev.score(values(u)),
        x0,
        method="Nelder-Mead",
        bounds=[(0.0, 1.0)] * len(params),
        options={
            "initial_simplex": np.array(simplex),
            "maxfev": spec.max_evals,
            "xatol": 1e-3,
            "fatol": 1e-9,
        },
    )


def _baseline_comparison(
    baseline: Evaluation, best: Evaluation, params: list[ParamRange]
) -> Comparison:
    """Paired comparison (twin.compare) of the best tariff (B) against the current one (A)."""
    table = paired_table(baseline.run, best.run, 0.95)
    verdicts = [
        verdict(metric, table.loc[metric], who="The best tariff")
        for metric in key_figures(list(table.index))
        if not math.isnan(table.loc[metric, "a_mean"])
    ]

    def label(ev: Evaluation) -> str:
        return ", ".join(f"{p.key}={p.label(ev.values[p.key])}" for p in params)

    return Comparison(
        a=baseline.run,
        b=best.run,
        label_a=f"current tariff ({label(baseline)})",
        label_b=f"best tariff ({label(best)})",
        table=table,
        verdicts=verdicts,
    )


# -- the plot -----------------------------------------------------------------------------------
#: What each objective plots: first the objective's own figure, then its companion (the
#: constraint, or what the choice earns). Labels, units and scales come from the figure registry
#: (:mod:`twin.figures`), so the plot and the tables name a figure the same way.
_PLOTTED: dict[str, tuple[str, str]] = {
    "revenue": ("revenue_per_day", "no_space_pct"),
    "blocking": ("no_space_pct", "revenue_per_day"),
    "occupancy-target": ("occupancy.window", "revenue_per_day"),
}


def _axis(name: str) -> tuple[str, str, float, str]:
    """(figure, axis label, scale to shown units, kind) of a plotted figure, from the registry.

    ``kind`` is what the plot does with it: ``money`` ($ ticks), ``pct`` (a share in %, from
    0), ``occ`` (an occupancy: a 0..1 share shown in %, clipped to 100)."""
    import textwrap

    unit = figures.unit_of(name)
    kind = {"money": "money", "frac": "occ"}.get(unit.kind, "pct" if unit.kind == "pct" else "num")
    shown = unit.shown or ""
    label = figures.label_of(name) + (f" ({shown})" if shown else "")
    return name, "\n".join(textwrap.wrap(label, 30)), unit.scale, kind


def _stats(evs: list[Evaluation], metric: str, scale: float) -> tuple[np.ndarray, ...]:
    rows = [confidence_interval(e.metrics[metric].to_numpy(dtype=float)) for e in evs]
    mean = np.array([r[0] for r in rows]) * scale
    lo = np.array([r[2] for r in rows]) * scale
    hi = np.array([r[3] for r in rows]) * scale
    return mean, lo, hi


def _dollars(value: float, decimals: int = 0) -> str:
    """Axis ticks: ``$1,200``, ``-$500``, ``$0.50``."""
    return f"{'-' if value < 0 else ''}${abs(value):,.{decimals}f}"


def _fmt_value(value: float, kind: str) -> str:
    if not math.isfinite(value):
        return "–"
    if kind == "money":
        return f"${value:,.0f}"
    return f"{value:.1f}"


def plot_optimization(result: OptimizationResult, path: str | Path) -> Path:
    """Objective against the parameter(s): a line with its 95 % band over the companion figure
    (1 parameter), or a heatmap / scatter of the objective figure (2 parameters).

    The objective is drawn in the units a planner reads (revenue in $/day, shares and
    occupancy in %), not as the penalised score; the constraint, the occupancy target, the
    current tariff and the best point are marked. Uses matplotlib's object API so it never
    touches a notebook's pyplot state.
    """
    from matplotlib.figure import Figure

    path = Path(path)
    spec = result.spec
    first, second = (_axis(name) for name in _PLOTTED[spec.objective])
    reps = result.replications
    subtitle = (
        f"{result.scenario.name}: mean and 95% CI over {reps} replications, seed "
        f"{result.seed}, the same drivers at every point"
    )
    if spec.objective == "occupancy-target" or first[0] == "occupancy.window":
        subtitle += f"\noccupancy measured {result.window.describe()}"
    if len(result.params) == 1:
        fig = _plot_1d(result, first, second, subtitle, Figure)
    else:
        fig = _plot_2d(result, first, subtitle, Figure)
    return save_figure(fig, path)


def _plot_1d(result: OptimizationResult, first, second, subtitle: str, figure_cls) -> Any:

    p = result.params[0]
    spec = result.spec
    evs = sorted(
        (e for e in result.evaluations if e.values[p.key] is not None),
        key=lambda e: e.values[p.key],
    )
    searched = [e for e in evs if e.searched]
    x = np.array([e.values[p.key] for e in searched], dtype=float)
    fig = figure_cls(figsize=(8.5, 8.0), dpi=120)
    top, middle, bottom = fig.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.8, 1.8]}
    )
    # the paired difference to the best: what common random numbers make visible
    metric, ylabel, scale, kind = first
    best_values = result.best.metrics[metric].to_numpy(dtype=float) * scale
    diffs = [
        paired_difference(best_values, e.metrics[metric].to_numpy(dtype=float) * scale)
        for e in searched
    ]
    d_mean = np.array([d.mean for d in diffs])
    d_lo = np.array([d.ci_low for d in diffs])
    d_hi = np.array([d.ci_high for d in diffs])
    middle.axhline(0.0, color="0.3", linewidth=0.9)
    middle.errorbar(
        x,
        d_mean,
        yerr=np.vstack([np.nan_to_num(d_mean - d_lo), np.nan_to_num(d_hi - d_mean)]),
        marker="o",
        markersize=4,
        capsize=3,
        linewidth=0,
        elinewidth=1.3,
        color="C0",
    )
    unit = "$/day" if kind == "money" else "pp"
    middle.set_ylabel(f"point − best, {unit}\n(paired 95% CI)")
    middle.grid(True, alpha=0.3)
    if kind == "money":
        middle.yaxis.set_major_formatter(_tex_dollars_formatter())
    for ax, (metric, ylabel, scale, kind), colour in ((top, first, "C0"), (bottom, second, "C1")):
        mean, lo, hi = _stats(searched, metric, scale)
        if kind in ("pct", "occ"):
            lo, hi = np.clip(lo, 0, 100), np.clip(hi, 0, 100)

        def lab(text: str, ax: Any = ax) -> str | None:
            return text if ax is top else None  # one legend, on the top panel

        ax.fill_between(x, lo, hi, color=colour, alpha=0.18, linewidth=0, label=lab("95% CI"))
        ax.plot(x, mean, marker="o", markersize=4, color=colour, linewidth=1.6, label=lab("mean"))
        bad = np.array([not e.feasible for e in searched])
        if bad.any():
            ax.plot(
                x[bad],
                mean[bad],
                "x",
                color="C3",
                markersize=8,
                mew=2,
                label=lab("misses the constraint"),
            )
        best_x = result.best.values[p.key]
        bm = _stats([result.best], metric, scale)[0][0]
        ax.plot(
            [best_x],
            [bm],
            marker="*",
            markersize=16,
            color="C2",
            mec="k",
            mew=0.6,
            linestyle="none",
            label=lab("best"),
            zorder=5,
        )
        base = result.baseline
        if base.values[p.key] is not None:
            bx = base.values[p.key]
            bmean = _stats([base], metric, scale)[0][0]
            ax.axvline(bx, color="0.45", linestyle=":", linewidth=1.2)
            ax.plot(
                [bx],
                [bmean],
                marker="D",
                markersize=7,
                color="0.35",
                linestyle="none",
                label=lab("current tariff"),
                zorder=4,
            )
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if kind == "money":
            ax.yaxis.set_major_formatter(_tex_dollars_formatter())
        if kind == "pct":  # shares from 0; money autoscales so an interior optimum shows
            ax.set_ylim(bottom=0)
            ax.set_ylim(bottom=-0.03 * ax.get_ylim()[1])
    # reference lines: target, cap, floor
    if spec.objective == "occupancy-target":
        top.axhline(
            100 * spec.target,
            color="C3",
            linestyle="--",
            linewidth=1.2,
            label=f"target {100 * spec.target:g} %",
        )
    if spec.objective == "revenue" and spec.max_blocking is not None:
        bottom.axhline(
            spec.max_blocking,
            color="C3",
            linestyle="--",
            linewidth=1.2,
            label=f"cap {spec.max_blocking:g} %",
        )
    if spec.objective == "blocking" and result.min_revenue:
        bottom.axhline(
            result.min_revenue,
            color="C3",
            linestyle="--",
            linewidth=1.2,
            label=f"floor ${result.min_revenue:,.0f}/day",
        )
    if first[3] in ("pct", "occ") and top.get_ylim()[1] > 100:
        top.set_ylim(top=101)
    top.legend(fontsize=8, frameon=False, loc="best", ncol=2)
    if bottom.get_legend_handles_labels()[0]:
        bottom.legend(fontsize=8, frameon=False, loc="best")
    if p.kind == "money":  # $ ticks, cents on short ranges where ticks fall between dollars
        bottom.xaxis.set_major_formatter(_tex_dollars_formatter(2 if p.high - p.low < 5 else 0))
        bottom.set_xlabel(p.key)
    else:
        bottom.set_xlabel(f"{p.key} ({p.kind})")
    best_text = f"best: {p.label(result.best.values[p.key])}"
    fig.suptitle(
        _tex(f"{_TITLES[spec.objective]} by {p.key} — {best_text}"),
        fontsize=11.5,
        x=0.015,
        ha="left",
    )
    top.set_title(_tex(subtitle), fontsize=8.5, loc="left", color="0.35")
    fig.subplots_adjust(left=0.155, right=0.97, top=0.9, bottom=0.07, hspace=0.08)
    fig.align_ylabels([top, middle, bottom])
    return fig


_TITLES = {
    "revenue": "Revenue per day",
    "blocking": "Drivers turned away",
    "occupancy-target": "Occupancy against its target",
}


def _tex(text: str) -> str:
    """Text for matplotlib: a literal ``$`` (two of them would start mathtext)."""
    return text.replace("$", r"\$")


def _plot_2d(result: OptimizationResult, first, subtitle: str, figure_cls) -> Any:
    """Grid search: a heatmap of the objective figure over the grid, values in the cells.
    Otherwise (scipy): the points tried, coloured by the figure and numbered in order."""
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    px, py = result.params
    spec = result.spec
    metric, label, scale, kind = first
    searched = [e for e in result.evaluations if e.searched]
    mean = _stats(searched, metric, scale)[0]
    cmap = {"revenue": "viridis", "blocking": "viridis_r", "occupancy-target": "RdBu_r"}[
        spec.objective
    ]
    norm = None
    if spec.objective == "occupancy-target":
        t = 100 * spec.target
        span = max(float(np.nanmax(np.abs(mean - t))), 1.0) if np.isfinite(mean).any() else 1.0
        norm = TwoSlopeNorm(vcenter=t, vmin=t - span, vmax=t + span)
    fig = figure_cls(figsize=(8.5, 6.6), dpi=120)
    ax = fig.add_subplot()
    best, base = result.best, result.baseline

    def point(e: Evaluation) -> str:
        """A tariff as the planner set it: the two decision values."""
        return _tex(f"{px.label(e.values[px.key])}, {py.label(e.values[py.key])}")

    def value(e: Evaluation) -> str:
        return _tex(_fmt_value(_stats([e], metric, scale)[0][0], kind))

    unit_sign = " %" if kind in ("pct", "occ") else ""
    marks: list[tuple[Evaluation, dict[str, Any]]] = [
        (
            base,
            dict(
                marker="D",
                markersize=8,
                color="0.15",
                mfc="none",
                mew=1.8,
                label=f"current tariff ({point(base)}): {value(base)}{unit_sign}",
            ),
        ),
        (
            best,
            dict(
                marker="*",
                markersize=19,
                mec="k",
                mew=0.9,
                label=f"best ({point(best)}): {value(best)}{unit_sign}",
            ),
        ),
    ]
    if spec.method == "grid":
        xs, ys = px.grid(spec.grid_points), py.grid(spec.grid_points)
        grid = np.full((len(ys), len(xs)), np.nan)
        cells = {}
        for e, m in zip(searched, mean, strict=True):
            vx, vy = e.values[px.key], e.values[py.key]
            if vx in xs and vy in ys:
                grid[ys.index(vy), xs.index(vx)] = m
                cells[(ys.index(vy), xs.index(vx))] = e
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap=cmap, norm=norm)
        ax.set_xticks(range(len(xs)), [_tex(px.label(v)) for v in xs], fontsize=8)
        ax.set_yticks(range(len(ys)), [_tex(py.label(v)) for v in ys], fontsize=8)
        for (i, j), e in cells.items():
            shade = float(image.norm(grid[i, j]))
            dark = abs(shade - 0.5) > 0.3 if cmap == "RdBu_r" else shade < 0.5
            if cmap == "viridis_r":
                dark = shade > 0.5
            text = _tex(_fmt_value(grid[i, j], kind)) + ("\n✗" if not e.feasible else "")
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=7.5,
                color="white" if dark else "black",
            )
            if e is best:
                ax.add_patch(
                    Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="C3", linewidth=2.5)
                )

        def where(e: Evaluation) -> tuple[float, float] | None:
            vx, vy = e.values[px.key], e.values[py.key]
            if vx is None or vy is None:
                return None  # e.g. no daily maximum today
            # fractional cell position (the grid is evenly spaced), so off-grid points show too
            return (
                float(np.interp(vx, xs, range(len(xs)))),
                float(np.interp(vy, ys, range(len(ys)))),
            )

        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.set_ylim(-0.5, len(ys) - 0.5)
    else:
        x = np.array([e.values[px.key] for e in searched], dtype=float)
        y = np.array([e.values[py.key] for e in searched], dtype=float)
        image = ax.scatter(x, y, c=mean, cmap=cmap, norm=norm, s=70, edgecolors="0.3")

        def where(e: Evaluation) -> tuple[float, float] | None:
            vx, vy = e.values[px.key], e.values[py.key]
            return None if vx is None or vy is None else (vx, vy)

        # each point labelled with its tariff (the decision values), not the order tried;
        # best and current are named in the legend, and a label that would overprint another
        # is left out (the colour still shows the value)
        shown: list[tuple[float, float]] = [
            ((w[0] - px.low) / (px.high - px.low), (w[1] - py.low) / (py.high - py.low))
            for w in (where(best), where(base))
            if w is not None
        ]
        for e, xi, yi in zip(searched, x, y, strict=True):
            u, v = (xi - px.low) / (px.high - px.low), (yi - py.low) / (py.high - py.low)
            if any(abs(u - a) < 0.16 and abs(v - b) < 0.045 for a, b in shown):
                continue
            shown.append((u, v))
            tag = point(e) + (" ✗" if not e.feasible else "")
            ax.annotate(
                tag, (xi, yi), textcoords="offset points", xytext=(6, 5), fontsize=6.5, color="0.3"
            )

        pad_x, pad_y = 0.04 * (px.high - px.low), 0.04 * (py.high - py.low)
        ax.set_xlim(px.low - pad_x, px.high + pad_x)
        ax.set_ylim(py.low - pad_y, py.high + pad_y)
        ax.grid(True, alpha=0.3)
        for axis, p in ((ax.xaxis, px), (ax.yaxis, py)):
            if p.kind == "money":  # cents on short ranges, where ticks fall between dollars
                axis.set_major_formatter(_tex_dollars_formatter(2 if p.high - p.low < 10 else 0))
    # the best point's star is filled with the colour of its own value on the colour bar
    marks[1][1]["color"] = image.cmap(image.norm(_stats([best], metric, scale)[0][0]))
    for e, style in marks:
        at = where(e)
        if at is not None:
            ax.plot([at[0]], [at[1]], linestyle="none", zorder=5, **style)
    handles, labels = ax.get_legend_handles_labels()
    if any(not e.feasible for e in searched):
        labels.append("✗ misses the constraint")
        handles.append(Rectangle((0, 0), 0, 0, fill=False, edgecolor="none"))
    ax.legend(
        handles,
        labels,
        fontsize=8,
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(0, -0.09),
        ncol=2,
    )
    bar = fig.colorbar(image, ax=ax, pad=0.02)
    text = label.replace("\n", " ")
    if norm is not None:  # "occupancy ... (%; target 85 %)"
        target = f"target {100 * spec.target:g} %"
        text = text[:-1] + f"; {target})" if text.endswith(")") else f"{text} ({target})"
    bar.set_label(_tex(text))
    if kind == "money":
        bar.formatter = _tex_dollars_formatter()
        bar.update_ticks()
    ax.set_xlabel(_tex(px.key))
    ax.set_ylabel(_tex(py.key))
    best_text = f"{px.label(best.values[px.key])}, {py.label(best.values[py.key])}"
    fig.suptitle(
        _tex(f"{_TITLES[spec.objective]} by {px.key} and {py.key} — best: {best_text}"),
        fontsize=11,
        x=0.015,
        ha="left",
    )
    ax.set_title(_tex(subtitle), fontsize=8.5, loc="left", color="0.35")
    fig.subplots_adjust(left=0.12, right=0.98, top=0.88, bottom=0.17)
    return fig


def _tex_dollars_formatter(decimals: int = 0) -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: _tex(_dollars(v, decimals)))
