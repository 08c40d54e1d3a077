"""Paired comparison of two scenarios with common random numbers: "what does B change?"

Both scenarios run with the same seed and the same replication indexes. Random streams depend
only on ``(seed, replication, stream name)`` (:mod:`twin.sim.rng`), so replication *r* of A and
replication *r* of B see the same drivers arrive at the same instants wanting the same stays;
only what the policy does with them differs. The comparison is therefore *paired*: for every
figure it takes the per-replication differences ``B_r − A_r``, and their t interval (paired t,
``scipy.stats.ttest_rel``). The shared drivers make A_r and B_r positively correlated, which
removes most of the noise from the difference; :class:`Comparison` reports how much
(paired sd against the sd the difference would have with independent runs).

The table holds every figure in the unit the figure registry (:mod:`twin.figures`) gives it,
the same unit as ``run(...).summary()``: shares of drivers in %, occupancies as fractions, money
in dollars. Verdicts are plain sentences for the registry's headline figures, shown as people
read them: shares and occupancies in percentage points, revenue in dollars per day, lane waits
in seconds. A figure whose interval contains 0 is reported as *unchanged within ±x*, where x is
the larger end of the interval: the size of an effect the data cannot rule out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from twin import figures
from twin.experiments import (
    COUNT_SHARES,
    UNRELIABLE_NOTE,
    Progress,
    RunResult,
    WarmupDetection,
    resolve_warmup,
    run,
)
from twin.figures import quantity, significant_decimals
from twin.outputs import claim, write_frame, write_json
from twin.scenario.loader import load_scenario
from twin.scenario.model import Scenario
from twin.stats import (
    PairedDifference,
    count_share_interval,
    paired_difference,
    rare_paired_difference,
)

__all__ = [
    "Comparison",
    "compare",
    "load_variant",
    "parse_sets",
    "quantity",
]

#: Figures whose CRN variance reduction is reported in words (revenue is the headline one).
CRN_REPORTED: tuple[str, ...] = ("revenue_per_day", "blocked_pct", "occupancy.mean")


@dataclass
class Comparison:
    """A paired comparison of B against A: the per-figure table, verdicts, and the runs.

    ``table`` is indexed by figure, in the registry's units (as ``summary()``), with columns
    ``unit, a_mean, b_mean, diff, ci_low, ci_high, half_width, sd, unpaired_sd,
    unpaired_half_width, variance_reduction, n, unreliable``. ``sd`` is the sd of the
    per-replication differences; ``unpaired_sd`` what it would be with independent random numbers,
    ``sqrt(sd_A² + sd_B²)``; ``variance_reduction`` is ``1 − sd²/unpaired_sd²``.
    """

    a: RunResult
    b: RunResult
    label_a: str
    label_b: str
    table: pd.DataFrame
    verdicts: list[str]
    notes: list[str] = field(default_factory=list)
    confidence: float = 0.95

    @property
    def seed(self) -> int:
        return self.a.seed

    @property
    def replications(self) -> int:
        return self.a.replications

    def paired(self) -> pd.DataFrame:
        """Per replication and figure: A, B and B − A (the registry's units), long format."""
        rows = []
        for metric in self.table.index:
            a = self.a.metrics[metric].to_numpy(dtype=float)
            b = self.b.metrics[metric].to_numpy(dtype=float)
            for r, va, vb in zip(self.a.metrics["replication"], a, b, strict=True):
                rows.append({"replication": int(r), "metric": metric, "a": va, "b": vb})
        frame = pd.DataFrame(rows)
        frame["diff"] = frame["b"] - frame["a"]
        return frame

    def crn_lines(self) -> list[str]:
        """What pairing bought, in words, for revenue and the other figures in CRN_REPORTED."""
        lines = []
        for metric in CRN_REPORTED:
            if metric not in self.table.index:
                continue
            row = self.table.loc[metric]
            if not row["unpaired_sd"] > 0 or (row["sd"] == 0 and row["diff"] == 0):
                continue  # no spread at all, or B changed nothing: nothing to report
            label = figures.lookup(metric).noun
            u = figures.unit_of(metric)
            d = significant_decimals(
                row["unpaired_half_width"] * u.scale, row["unpaired_sd"] * u.scale
            )

            def q(x: float, d: int = d, metric: str = metric) -> str:
                return figures.format_diff(metric, x, d)

            cut = row["variance_reduction"]
            removed = f"{100 * cut:.0f}% of its variance removed" if cut >= 0 else "no gain"
            lines.append(
                f"common random numbers: the {label} difference has sd "
                f"{q(row['sd'])} paired vs {q(row['unpaired_sd'])} with independent runs "
                f"({removed}; 95% CI ±{q(row['half_width'])} instead of "
                f"±{q(row['unpaired_half_width'])})"
            )
        return lines

    def to_dict(self) -> dict[str, Any]:
        """What ``comparison.json`` holds: inputs, verdicts and every figure with its values."""

        def clean(x: Any) -> Any:
            if isinstance(x, float | np.floating):
                return None if math.isnan(x) else float(x)
            if isinstance(x, np.integer):
                return int(x)
            if isinstance(x, np.bool_):
                return bool(x)
            return x

        paired = self.paired()
        figures = {}
        for metric, row in self.table.iterrows():
            values = paired[paired["metric"] == metric]
            figures[metric] = {
                **{k: clean(v) for k, v in row.items() if k not in ("ci_low", "ci_high")},
                "ci95": [clean(row["ci_low"]), clean(row["ci_high"])],
                "a_values": [clean(v) for v in values["a"]],
                "b_values": [clean(v) for v in values["b"]],
            }
        return {
            "a": _side(self.label_a, self.a),
            "b": _side(self.label_b, self.b),
            "seed": self.seed,
            "replications": self.replications,
            "confidence": self.confidence,
            "verdicts": self.verdicts,
            "crn": self.crn_lines(),
            "notes": self.notes,
            "footnotes": {"unreliable": UNRELIABLE_NOTE},
            "metrics": figures,
        }

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write ``comparison.csv`` (the table) and ``comparison.json`` (everything)."""
        with claim(out_dir) as out:
            csv = write_frame(self.table.reset_index(), out / "comparison.csv")
            js = write_json(out / "comparison.json", self.to_dict())
        return [csv, js]


def _side(label: str, result: RunResult) -> dict[str, Any]:
    side: dict[str, Any] = {
        "label": label,
        "scenario": result.scenario.name,
        "horizon_days": result.scenario.horizon_days,
        "warmup_hours": result.scenario.warmup_hours,
    }
    if result.warmup is not None:
        side["warmup_hours_detected"] = result.warmup.hours
    return side


def verdict(metric: str, row: pd.Series, who: str = "B") -> str:
    """One sentence on one figure: raised/lowered by x ± h, or unchanged within ±bound; in the
    registry's words for the figure and in the unit people read its differences in."""
    found = figures.find(metric)
    label = found.noun if found is not None else metric
    shown = figures.unit_of(metric)
    unit = shown.diff
    n = int(row["n"])
    mean, lo, hi, hw = (row[k] * shown.scale for k in ("diff", "ci_low", "ci_high", "half_width"))
    if n < 2 or math.isnan(mean) or math.isnan(lo):
        return f"{label[0].upper()}{label[1:]}: cannot tell from {n} replication{'s' * (n != 1)}"
    if row["sd"] == 0 and mean == 0:
        return f"{label[0].upper()}{label[1:]} unchanged (identical in all {n} replications)"
    d = significant_decimals(hw, mean)
    if lo > 0 or hi < 0:
        verb = "raises" if mean > 0 else "lowers"
        return (
            f"{who} {verb} {label} by {quantity(abs(mean), unit, d)} "
            f"± {quantity(hw, unit, d)} (95% CI)"
        )
    bound = max(abs(lo), abs(hi))
    d = significant_decimals(bound, bound)
    return (
        f"{label[0].upper()}{label[1:]} unchanged within ±{quantity(bound, unit, d)} "
        f"(95% CI {quantity(lo, unit, d)} … {quantity(hi, unit, d)})"
    )


def paired_figure(
    a: pd.DataFrame, b: pd.DataFrame, metric: str, confidence: float = 0.95
) -> tuple[PairedDifference, bool]:
    """B − A for one figure of two per-replication metrics tables, and whether its interval is
    unreliable.

    Every figure gets the paired t interval (:func:`twin.stats.paired_difference`). A share of
    drivers built from counts (:data:`twin.experiments.COUNT_SHARES`) that is rare on both
    sides is skewed, and the paired t interval of five such differences misses; it gets
    :func:`twin.stats.rare_paired_difference` instead (widened by the upper bound on its sd;
    MOVER of the two sides' count intervals when every difference is the same). It is
    unreliable when either side is (too few replications saw the event).
    """
    va, vb = a[metric].to_numpy(dtype=float), b[metric].to_numpy(dtype=float)
    diff = paired_difference(va, vb, confidence)
    if metric not in COUNT_SHARES or "arrivals" not in a.columns or "arrivals" not in b.columns:
        return diff, diff.n < 2 or math.isnan(diff.ci_low)
    ca = count_share_interval(va, a["arrivals"].to_numpy(dtype=float), confidence)
    cb = count_share_interval(vb, b["arrivals"].to_numpy(dtype=float), confidence)
    unreliable = diff.n < 2 or not (ca.reliable and cb.reliable)
    if not (ca.rare and cb.rare):  # one side plentiful: its spread dominates, not the skew
        return diff, unreliable
    keep = ~(np.isnan(va) | np.isnan(vb))
    rho = math.nan
    if keep.sum() > 2 and np.std(va[keep]) > 0 and np.std(vb[keep]) > 0:
        rho = float(np.corrcoef(va[keep], vb[keep])[0, 1])
    return rare_paired_difference(diff, ca, cb, rho), unreliable


def paired_table(a: RunResult, b: RunResult, confidence: float) -> pd.DataFrame:
    """Every figure both runs have, paired B − A, in the registry's units (see Comparison)."""
    names = [m for m in a.metrics.columns if m != "replication" and m in b.metrics.columns]
    rows = []
    for metric in names:
        diff, unreliable = paired_figure(a.metrics, b.metrics, metric, confidence)
        rows.append(
            {
                "metric": metric,
                "unit": figures.unit_of(metric).symbol,
                "a_mean": diff.mean_a,
                "b_mean": diff.mean_b,
                "diff": diff.mean,
                "ci_low": diff.ci_low,
                "ci_high": diff.ci_high,
                "half_width": diff.half_width,
                "sd": diff.sd,
                "unpaired_sd": diff.unpaired_sd,
                "unpaired_half_width": diff.unpaired_half_width,
                "variance_reduction": diff.variance_reduction,
                "n": diff.n,
                "unreliable": unreliable,
            }
        )
    return pd.DataFrame(rows).set_index("metric")


def _common_warmup(
    a: Scenario, b: Scenario, seed: int, pilot_replications: int, first_replication: int = 0
) -> tuple[Scenario, Scenario, WarmupDetection | None, WarmupDetection | None, list[str]]:
    """Detect ``auto`` warm-ups; when both sides ask for auto, measure both after the longer.

    A shared measurement window keeps the pairing tight (replication r of A and of B then
    count the same drivers); the longer of the two cuts is the conservative one.
    """
    ra, da, _ = resolve_warmup(a, seed, pilot_replications, first_replication=first_replication)
    rb, db, _ = resolve_warmup(b, seed, pilot_replications, first_replication=first_replication)
    notes = []
    if da is not None and db is not None and da.hours != db.hours:
        common = max(da.hours, db.hours)
        notes.append(
            f"warm-up detected as {da.hours:g} h (A) and {db.hours:g} h (B); "
            f"both measured after {common:g} h"
        )
        ra = ra.model_copy(update={"warmup_hours": common})
        rb = rb.model_copy(update={"warmup_hours": common})
    if ra.warmup_hours != rb.warmup_hours:
        notes.append(
            f"A and B are measured after different warm-ups ({ra.warmup_hours:g} h and "
            f"{rb.warmup_hours:g} h): their figures cover different windows"
        )
    if a.horizon_days != b.horizon_days:
        notes.append(
            f"A and B have different horizons ({a.horizon_days:g} and {b.horizon_days:g} days)"
        )
    return ra, rb, da, db, notes


def compare(
    a: Scenario,
    b: Scenario,
    *,
    replications: int | None = None,
    seed: int | None = None,
    confidence: float = 0.95,
    label_a: str = "A",
    label_b: str = "B",
    progress: Progress | None = None,
    pilot_replications: int = 5,
    first_replication: int = 0,
) -> Comparison:
    """Run A and B with common random numbers and compare every figure pairwise.

    ``replications`` defaults to A's, ``seed`` to A's; both scenarios use the same ones (that
    is what pairs them). At least two replications are needed for an interval. Figures only
    one of the scenarios has (e.g. the occupancy of a level B adds) are left out. Progress is
    reported as ``progress(k, fraction)`` with ``k`` counting A's replications then B's.
    Both sides run replications ``first_replication ..`` (default 0): comparisons on disjoint
    index ranges are independent of each other.
    """
    reps = a.replications if replications is None else replications
    if reps < 2:
        raise ValueError(f"a comparison needs at least 2 replications, got {reps}")
    seed = a.seed if seed is None else seed
    ra, rb, da, db, notes = _common_warmup(a, b, seed, pilot_replications, first_replication)

    def shifted(offset: int) -> Progress | None:
        if progress is None:
            return None
        return lambda r, f: progress(offset + r, f)

    first = first_replication
    res_a = run(ra, replications=reps, seed=seed, progress=shifted(0), first_replication=first)
    res_b = run(rb, replications=reps, seed=seed, progress=shifted(reps), first_replication=first)
    res_a.warmup, res_b.warmup = da, db
    table = paired_table(res_a, res_b, confidence)
    verdicts = [
        verdict(metric, table.loc[metric])
        for metric in figures.headline(list(table.index))
        if not math.isnan(table.loc[metric, "a_mean"])
    ]
    return Comparison(
        a=res_a,
        b=res_b,
        label_a=label_a,
        label_b=label_b,
        table=table,
        verdicts=verdicts,
        notes=notes,
        confidence=confidence,
    )


# -- B as "A with these settings changed" --------------------------------------------------------
def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["facility.strategy=spread", "tariff.per_period=3"]`` → overrides for the loader.

    Values are parsed as YAML (``3`` is a number, ``auto`` a string, ``[1, 2]`` a list), exactly
    as they would be read from the scenario file. Raises ValueError on an item without ``=``.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. facility.strategy=spread")
        try:
            out[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ValueError(f"--set {item!r}: the value is not valid YAML: {problem}") from None
    return out


def load_variant(path: str | Path, overrides: dict[str, Any]) -> Scenario:
    """Load a scenario file with dotted-key overrides; every problem as a ScenarioError line."""
    return load_scenario(Path(path), overrides)


def _yaml_text(value: Any) -> str:
    """A value as it would be written in the file (``3``, ``spread``, ``[1, 2]``)."""
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix("...").strip()


def describe_sets(label: str, overrides: dict[str, Any]) -> str:
    """A label for B: ``surface_lot with tariff.per_period=3``."""
    if not overrides:
        return label
    changes = ", ".join(f"{k}={_yaml_text(v)}" for k, v in overrides.items())
    return f"{label} with {changes}"
