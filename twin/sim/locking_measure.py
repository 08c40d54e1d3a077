"""What the locking study measures at each point, and where a strategy's ceiling is.

One definition of every column of the study's table, shared by the simulated study
(:mod:`twin.sim.locking_study`) and the measurements on real stores (:mod:`twin.locking_live`):
per-claim records in, one row out (:func:`measure_point`); a strategy's rows in, its ceiling out
(:func:`ceilings`). The workload's row shares and stays (:func:`row_shares_and_stays`) are here
too, because both the model and the live clients draw their claims from them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.core.locking import Status
from twin.scenario.locking import LockingStudySpec, WorkloadSpec

__all__ = [
    "COLUMNS",
    "FAILED",
    "GRANTED",
    "OPEN",
    "OUTCOME_CODE",
    "REFUSED",
    "MeasureWindow",
    "Progress",
    "ceiling_text",
    "ceilings",
    "measure_point",
    "measure_window",
    "passes",
    "round_trips",
    "round_trips_per_answer",
    "row_shares_and_stays",
]

#: Columns of the tidy result table, one row per (strategy, offered rate).
COLUMNS = (
    "strategy",
    "offered_tps",
    "arrived_tps",
    "achieved_tps",
    "claims",
    "granted",
    "refused",
    "refused_while_free",
    "failed",
    "unfinished",
    "conflicts",
    "retries",
    "blocked",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "window_s",
    "tracks",
    "within_slo",
)

#: Outcome codes of per-claim records (OPEN: not answered by the end of the run).
GRANTED, REFUSED, FAILED, OPEN = 0, 1, 2, 3
OUTCOME_CODE = {Status.GRANTED: GRANTED, Status.REFUSED: REFUSED, Status.FAILED: FAILED}
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class MeasureWindow:
    start: float
    end: float
    stop: float  # end of the drain period, where the run stops


def measure_window(spec: LockingStudySpec, offered: float) -> MeasureWindow:
    """Warm-up, then the measured window, then the drain (seconds from the point's start)."""
    m = spec.measure
    length = max(m.min_window_s, m.window_claims / offered)
    return MeasureWindow(m.warmup_s, m.warmup_s + length, m.warmup_s + length + m.drain_s)


def row_shares_and_stays(w: WorkloadSpec, offered: float) -> tuple[list[float], list[float]]:
    """Each row's share of the claims (row 0 is the hot one), and the mean stay that gives
    every row the offered occupancy at this claim rate."""
    if w.rows == 1:
        shares = [1.0]
    else:
        shares = [w.hot_share] + [(1 - w.hot_share) / (w.rows - 1)] * (w.rows - 1)
    stays = [w.occupancy * w.capacity / (offered * s) if s > 0 else math.inf for s in shares]
    return shares, stays


def measure_point(
    spec: LockingStudySpec,
    name: str,
    offered: float,
    win: MeasureWindow,
    *,
    arrival,
    answer,
    code,
    conflicts,
    blocked,
    spurious,
) -> dict[str, object]:
    """One row of the study's table from per-claim records (arrival and answer times in s,
    outcome codes, conflicts, blocked and refused-while-free flags), simulated or measured on
    a real store: one definition of every column for both."""
    slo = spec.slo
    arrival = np.asarray(arrival, dtype=float)
    answer = np.asarray(answer, dtype=float)
    code = np.asarray(code, dtype=np.int8)
    conflicts = np.asarray(conflicts)
    blocked = np.asarray(blocked, dtype=bool)
    spurious = np.asarray(spurious, dtype=bool)
    length = win.end - win.start
    answered = (code == GRANTED) | (code == REFUSED)
    achieved = float(np.count_nonzero(answered & (answer >= win.start) & (answer < win.end)))
    mine = (arrival >= win.start) & (arrival < win.end)
    n = int(np.count_nonzero(mine))
    latency = np.where(code[mine] == OPEN, np.inf, answer[mine] - arrival[mine]) * 1000
    if n:
        p50, p95, p99 = np.quantile(latency, [0.5, 0.95, 0.99], method="inverted_cdf")
    else:  # pragma: no cover - a window always holds claims at the validated sizes
        p50 = p95 = p99 = math.nan
    failed = int(np.count_nonzero(code[mine] == FAILED))
    achieved_tps = achieved / length
    arrived_tps = n / length
    return {
        "strategy": name,
        "offered_tps": float(offered),
        "arrived_tps": arrived_tps,
        "achieved_tps": achieved_tps,
        "claims": n,
        "granted": int(np.count_nonzero(code[mine] == GRANTED)),
        "refused": int(np.count_nonzero(code[mine] == REFUSED)),
        "refused_while_free": int(np.count_nonzero(spurious[mine])),
        "failed": failed,
        "unfinished": int(np.count_nonzero(code[mine] == OPEN)),
        "conflicts": int(conflicts[mine].sum()) + failed,
        "retries": int(conflicts[mine].sum()),
        "blocked": int(np.count_nonzero(blocked[mine])),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "window_s": length,
        # against the claims that did arrive, so Poisson noise is not read as saturation
        "tracks": bool(achieved_tps >= slo.tracking * arrived_tps),
        "within_slo": bool(p95 <= slo.p95_ms),
    }


def round_trips(spec: LockingStudySpec, strategy: str) -> int:
    """Round trips to PostgreSQL of one granted claim and its release, as the model sends
    them (``pessimistic``: optional BEGIN, the locking read, ``statements_in_lock``; the
    release: optional BEGIN and ``release_statements``; ``optimistic``: READ, CAS, UPDATE)."""
    if strategy == "optimistic":
        return 3
    p = spec.pessimistic
    return (1 + p.statements_in_lock) + p.release_statements + 2 * p.begin_round_trip


def round_trips_per_answer(spec: LockingStudySpec, strategy: str, row) -> float:
    """Round trips (statements, Redis commands, queue requests) the claims of one point made
    per answered claim, each granted unit's release included, from the point's own counts
    (``granted``, ``refused``, ``failed``, ``conflicts``: a row of :func:`measure_point`).

    Why: a live point's CPU is measured per answered claim, and the model spends CPU per round
    trip. Dividing by the conflict-free count (:func:`round_trips`) charges every trip for the
    retries the live claims made, and the model then adds its own retries on top: the
    optimistic claim's conflicts counted twice. Per protocol (``spec`` as the live store runs
    it): an optimistic conflict is one more READ and CAS, a refusal at the READ has no CAS and
    no release (``3g + 2c + r``); a refused row lock is [BEGIN,] the locking read and ROLLBACK;
    the atomic counter always takes two commands (INCR, then DECR back or at the release); a
    queued claim is one request, and one more for its release. The releases are taken as one
    per grant (a point's flow is steady: prefilled units leave as granted ones come)."""
    g, r, f = int(row["granted"]), int(row["refused"]), int(row["failed"])
    answered = g + r + f
    if answered == 0:
        return math.nan
    if strategy == "optimistic":
        trips = 3 * g + 2 * int(row["conflicts"]) + r
    elif strategy == "pessimistic":
        trips = round_trips(spec, strategy) * g + (2 + spec.pessimistic.begin_round_trip) * r
    elif strategy == "atomic":
        trips = 2 * (g + r)
    else:  # queue
        trips = 2 * g + r
    return trips / answered


def passes(row) -> bool:
    """A point within the study's objective: it tracks its load and keeps p95 in the SLO."""
    return bool(row["tracks"] and row["within_slo"])


def ceilings(table: pd.DataFrame) -> pd.DataFrame:
    """Each strategy's ceiling: the achieved rate at the highest offered rate up to which every
    point tracks the offered rate and keeps p95 within the objective; and what ended it."""
    rows = []
    for name, group in table.groupby("strategy", sort=False):
        group = group.sort_values("offered_tps")
        ok = (group["tracks"] & group["within_slo"]).to_numpy()
        bad = np.flatnonzero(~ok)
        first_bad = int(bad[0]) if len(bad) else len(group)
        peak = group.loc[group["achieved_tps"].idxmax()]
        row: dict[str, object] = {
            "strategy": name,
            "ceiling_tps": math.nan,
            "ceiling_offered_tps": math.nan,
            "limited_by": "not reached in the sweep",
            "peak_tps": float(peak["achieved_tps"]),
            "peak_offered_tps": float(peak["offered_tps"]),
        }
        if first_bad > 0:
            last = group.iloc[first_bad - 1]
            row["ceiling_tps"] = float(last["achieved_tps"])
            row["ceiling_offered_tps"] = float(last["offered_tps"])
        if first_bad < len(group):
            broken = group.iloc[first_bad]
            reasons = []
            if not broken["tracks"]:
                reasons.append("throughput")
            if not broken["within_slo"]:
                reasons.append("p95")
            row["limited_by"] = f"{' and '.join(reasons)} at {broken['offered_tps']:g} TPS"
        rows.append(row)
    return pd.DataFrame(rows)


def ceiling_text(row: pd.Series, lowest_offered: float) -> str:
    """A ceiling as people read it: ``≥ x`` when the sweep never reached it, ``< x`` when even
    the lowest offered rate failed."""
    if math.isnan(row["ceiling_tps"]):
        return f"< {lowest_offered:,.0f}"
    prefix = "≥ " if str(row["limited_by"]).startswith("not reached") else ""
    return f"{prefix}{row['ceiling_tps']:,.0f}"
