"""The tariff search: grid or ``scipy.optimize`` over the candidates, ranked, with its result.

See :mod:`twin.optimize` for the objectives and why every candidate shares its random numbers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from twin.compare import Comparison, paired_table, verdict
from twin.experiments import resolve_warmup
from twin.figures import quantity, significant_decimals
from twin.optimize.objectives import Evaluation, Evaluator, Objective, Progress, key_figures
from twin.optimize.params import (
    BLOCKING_PENALTY_DAYS,
    KINDS,
    REVENUE_PENALTY_PP,
    OptimizeError,
    OptimizeSpec,
    ParamRange,
    Window,
    check_inner,
    tariff_at,
    tariff_path,
)
from twin.optimize.plots import plot_optimization
from twin.outputs import claim, write_frame, write_json
from twin.scenario.loader import (
    apply_overrides,
    format_errors,
    load_scenario,
    validate_scenario,
)
from twin.scenario.model import Scenario
from twin.scenario.tariff import TariffSpec
from twin.stats import PairedDifference, confidence_interval, paired_difference


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
        where, inner = tariff_path(p.key, scenario)
        if inner is None:
            problems.append(f"--param {p.key}: {where}")
            continue
        why = check_inner(inner, tariff_at(scenario, where))
        if why is not None:
            problems.append(f"--param {p.key}: {why}")
            continue
        if not p.low < p.high:
            problems.append(f"--param {p.key}: LOW ({p.low:g}) must be below HIGH ({p.high:g})")
            continue
        minimum = KINDS[p.kind][1]
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
            raw = tariff_at(scenario, where).model_dump(exclude_unset=True)
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
    ev = Evaluator(base, params, spec.replications, seed, keep_runs, progress, total)
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
    objective = Objective(spec.objective, spec.target, spec.max_blocking, min_revenue, penalty)
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
    ev: Evaluator, params: list[ParamRange], spec: OptimizeSpec, baseline: Evaluation
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
        tolerance = max(10.0 ** -KINDS[p.kind][0], 0.01 * (p.high - p.low))
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
