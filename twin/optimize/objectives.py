"""The objective of a tariff search and the evaluator that simulates its candidates.

Every candidate is simulated with the same seed and replication indexes (common random numbers),
once (cached), and its per-replication figures are what the objective and the paired tests read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from twin import figures
from twin.experiments import RunResult, run
from twin.optimize.params import (
    OptimizeError,
    ParamRange,
    Window,
    busiest_window,
    current_value,
    tariff_at,
    tariff_path,
    total_occupancy,
)
from twin.scenario.loader import (
    apply_overrides,
    format_errors,
)
from twin.scenario.model import Scenario
from twin.scenario.tariff import TariffSpec
from twin.stats import confidence_interval


def key_figures(names: list[str] | pd.Index) -> list[str]:
    """Figures every evaluated point reports with a 95 % interval, of ``names`` (a run's): the
    search's own (``no_space_pct``, blocked + reneged, "turned away" in the reports: drivers
    willing to pay who found no space in time, and ``occupancy.window``) and the registry's
    headline figures, in the registry's units and order (:mod:`twin.figures`)."""
    own = figures.in_section(list(names), "optimize")
    lot = [n for n in figures.headline(list(names)) if not figures.lookup(n).section.component]
    return own + lot


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
class Objective:
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
class Evaluator:
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
        self.objective: Objective | None = None
        self.cache: dict[tuple, Evaluation] = {}
        self.order: list[Evaluation] = []
        self.calls = 0  # objective calls, cache hits included
        self.where = {p.key: tariff_path(p.key, base) for p in params}
        self.current = {
            p.key: current_value(tariff_at(base, self.where[p.key][0]), self.where[p.key][1] or "")
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
            raw = tariff_at(self.base, where).model_dump(exclude_unset=True)
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
        metrics["occupancy.window"] = window_means(result, self.window, self.replications)
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


def window_means(result: RunResult, window: Window, replications: int) -> np.ndarray:
    """Mean total occupancy inside the window, per replication (NaN if never sampled)."""
    samples = total_occupancy(result)
    inside = samples[window.mask(samples["time"])]
    means = inside.groupby("replication")["occupancy"].mean()
    return means.reindex(range(replications)).to_numpy(dtype=float)
