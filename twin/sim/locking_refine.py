"""A strategy's ceiling to within a few per cent: bisect the coarse sweep's bracket, repeated.

The sweep's offered rates go up in steps of 1.4-1.7×, so a ceiling read off it is only known
to within one step (about ±40 %), and on a real store one noisy point can move it a whole step.
:func:`refine_ceilings` takes each strategy's bracket from a finished sweep (the last passing
and the first failing offered rate) and, for each of ``repeats`` independent repeats, bisects it
(geometric midpoints) until the bracket is narrower than ``1 + rel_tol``. Each repeat runs with
its own seed (``spec.seed + repeat``): in the model that is an independent replication; on a
real store, other arrivals and the machine's own noise. A repeat first checks its bracket's
ends (a lower end that fails moves down a step, an upper end that passes moves up), so a
repeat is not forced into a bracket its own points contradict. The spread of the repeats'
ceilings is the measurement's uncertainty: that is what a model is to be held to.

``point`` is the same callable as :func:`twin.sim.locking_study.run_locking_study`'s: the
simulated point by default, a :class:`twin.locking_live.LiveStudy` to bisect on real stores.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from twin.scenario.locking import LockingStudySpec
from twin.sim.locking_measure import COLUMNS, passes

__all__ = ["REFINED_COLUMNS", "RefinedCeilings", "bracket", "refine_ceilings"]

Point = Callable[[LockingStudySpec, str, float], dict[str, object]]

#: One row per strategy × repeat of the refined ceilings.
REFINED_COLUMNS = (
    "strategy",
    "repeat",
    "seed",
    "ceiling_tps",  # achieved at the highest passing offered rate of this repeat
    "passing_offered_tps",
    "failing_offered_tps",
    "points",
)


@dataclass
class RefinedCeilings:
    """Every point the bisection ran (the study's columns plus ``repeat``), each repeat's
    ceiling, and per strategy the median, range and relative spread of those ceilings."""

    points: pd.DataFrame
    repeats: pd.DataFrame
    summary: pd.DataFrame


def bracket(table: pd.DataFrame, strategy: str) -> tuple[float, float] | None:
    """The coarse sweep's last passing and first failing offered rate for ``strategy``; None
    when every point passed (no ceiling inside the sweep). A strategy whose lowest rate failed
    gets (lowest / 4, lowest)."""
    group = table[table["strategy"] == strategy].sort_values("offered_tps")
    ok = [passes(row) for _, row in group.iterrows()]
    if all(ok):
        return None
    first_bad = ok.index(False)
    hi = float(group["offered_tps"].iloc[first_bad])
    lo = float(group["offered_tps"].iloc[first_bad - 1]) if first_bad else hi / 4
    return lo, hi


def refine_ceilings(
    spec: LockingStudySpec,
    table: pd.DataFrame,
    point: Point,
    *,
    strategies: list[str] | None = None,
    repeats: int = 3,
    rel_tol: float = 0.12,
    max_moves: int = 6,
    progress: Callable[[str], None] | None = None,
) -> RefinedCeilings:
    """Bisect each strategy's bracket in ``table`` (a sweep of ``spec``) ``repeats`` times.

    A repeat stops when its passing and failing rates are within a factor ``1 + rel_tol`` (the
    default 0.12 leaves a ceiling known to about ±6 %). Strategies whose sweep never failed are
    left out of ``repeats`` and reported in ``summary`` as not reached."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    if rel_tol <= 0:
        raise ValueError("rel_tol must be > 0")
    names = strategies or list(dict.fromkeys(table["strategy"]))
    points: list[dict[str, object]] = []
    rows: list[dict[str, object]] = []
    for name in names:
        found = bracket(table, name)
        if found is None:
            continue
        for k in range(repeats):
            seeded = spec.model_copy(update={"seed": spec.seed + k})
            rows.append(
                _bisect(seeded, name, found, point, k, rel_tol, max_moves, points, progress)
            )
    repeat_table = pd.DataFrame(rows, columns=list(REFINED_COLUMNS))
    return RefinedCeilings(
        pd.DataFrame(points, columns=[*COLUMNS, "repeat"]),
        repeat_table,
        _summary(repeat_table, names),
    )


def _bisect(
    spec: LockingStudySpec,
    name: str,
    found: tuple[float, float],
    point: Point,
    repeat: int,
    rel_tol: float,
    max_moves: int,
    points: list[dict[str, object]],
    progress: Callable[[str], None] | None,
) -> dict[str, object]:
    lo, hi = found
    step = hi / lo  # one step of the coarse grid here
    measured: dict[float, dict[str, object]] = {}

    def run(rate: float) -> bool:
        rate = float(round(rate))
        if rate not in measured:
            if progress is not None:
                progress(f"{name} repeat {repeat + 1}: {rate:,.0f} TPS")
            row = point(spec, name, rate)
            measured[rate] = row
            points.append({**row, "repeat": repeat})
        return passes(measured[rate])

    for _ in range(max_moves):  # the lower end must pass for this repeat
        if run(lo):
            break
        lo, hi = lo / step, lo
    else:
        lo = 0.0  # still failing max_moves steps down: no passing rate found
    if lo > 0:
        for _ in range(max_moves):  # and the upper end must fail
            if not run(hi):
                break
            lo, hi = hi, hi * step
        else:
            hi = math.inf
    while lo > 0 and math.isfinite(hi) and hi / lo > 1 + rel_tol:
        mid = math.sqrt(lo * hi)
        if round(mid) in (round(lo), round(hi)):
            break
        if run(mid):
            lo = mid
        else:
            hi = mid
    ceiling = float(measured[float(round(lo))]["achieved_tps"]) if lo > 0 else math.nan
    return {
        "strategy": name,
        "repeat": repeat,
        "seed": spec.seed,
        "ceiling_tps": ceiling,
        "passing_offered_tps": float(round(lo)) if lo > 0 else math.nan,
        "failing_offered_tps": float(round(hi)) if math.isfinite(hi) else math.inf,
        "points": len(measured),
    }


def _summary(repeats: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    rows = []
    for name in names:
        found = repeats[repeats["strategy"] == name]["ceiling_tps"].dropna().tolist()
        if not found:
            rows.append({"strategy": name, "repeats": 0, "ceiling_tps": math.nan})
            continue
        median = statistics.median(found)
        rows.append(
            {
                "strategy": name,
                "repeats": len(found),
                "ceiling_tps": median,
                "min_tps": min(found),
                "max_tps": max(found),
                # the repeats' range relative to their median: how well the ceiling is known
                "spread": (max(found) - min(found)) / median if median > 0 else math.nan,
            }
        )
    return pd.DataFrame(
        rows, columns=["strategy", "repeats", "ceiling_tps", "min_tps", "max_tps", "spread"]
    )
