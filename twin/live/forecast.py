"""Forecast from now: replications of the model run ahead from a lot's current state.

The state is the live mirror's (or a planner's file, or a snapshot of a simulated run); each
replication places its cars through the core Lot, draws their remaining stays from the dwell
law conditioned on the time already parked (twin.sim.initial) and lets the scenario's demand
arrive from the state's time on. Across replications, per lot, level and spot type:

* the occupied count over the horizon: mean, median, 80% band (10th-90th percentiles) and
  95% band (2.5th-97.5th) at every ``step_min``, as predictive bands (see ``forecast``: a
  future trajectory falls inside the 80% band 80% of the time; the 95% band needs >= 40
  replications to reach 95%, with 20 it is the replications' range, ~90%);
* when the group fills (first instant every spot of it is taken), exact per replication: the
  probability it fills within the horizon and, when it does in at least half of them, the
  median fill time with its 80% and 95% intervals (a bound past the horizon is reported as
  "later than the horizon").

Replication r of a forecast is always the same (seeded like a run), so two forecasts from the
same state with the same seed agree, and a policy compared from the same state sees the same
drivers (common random numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from twin.results import group_counts_at, groupings, stays
from twin.scenario.model import Scenario
from twin.sim.model import ParkingModel

#: Band quantiles: name -> probability.
#: Longest forecast, hours (366 days: as far as a start state's ages reach).
MAX_FORECAST_HOURS = 24 * 366
QUANTILES = {"p2_5": 0.025, "p10": 0.10, "p50": 0.50, "p90": 0.90, "p97_5": 0.975}


@dataclass
class Forecast:
    """What :func:`forecast` returns: frames like ``run``'s, plus the fill-time table."""

    scenario: Scenario
    start: datetime
    hours: float
    replications: int
    #: per group and time: capacity, occupied mean and quantiles (see QUANTILES), occupancy
    bands: pd.DataFrame
    #: per group: occupied now, probability of filling within the horizon, fill-time quantiles
    #: (minutes from now; NaN when that quantile is beyond the horizon), a sentence
    fill: pd.DataFrame
    #: per replication, group and time: occupied (the raw trajectories, like run's frame)
    occupancy: pd.DataFrame
    seconds: float = 0.0  # wall-clock time the forecast took
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """One sentence per group: now, in ``hours`` (median and 80% band), fill time."""
        end = self.bands[self.bands["minutes"] == self.bands["minutes"].max()]
        out = []
        for row in self.fill.itertuples(index=False):
            last = end[(end["group_kind"] == row.group_kind) & (end["group"] == row.group)].iloc[0]
            out.append(
                f"{row.group_kind} {row.group}: {row.occupied_now}/{row.capacity} now, "
                f"in {self.hours:g} h {last.p50:.0f} (80%: {last.p10:.0f}-{last.p90:.0f}); "
                f"{row.verdict}"
            )
        return out


def _fill_times(
    starts: np.ndarray,
    ends: np.ndarray,
    gid: np.ndarray,
    caps: np.ndarray,
    horizon: float,
) -> np.ndarray:
    """First instant in [0, horizon) each group's count reaches its capacity (inf: never).

    Exact, from the stays: departures before arrivals at equal times (the model's rule).
    Only start-state cars have starts < 0, and their stays end at >= 0, so the count at 0 is
    the stays spanning 0; full then means full from the start.
    """
    n_groups = len(caps)
    ends = np.where(np.isnan(ends), np.inf, ends)
    out = np.full(n_groups, np.inf)
    now = np.bincount(gid[(starts <= 0) & (ends > 0)], minlength=n_groups)
    out[now >= caps] = 0.0
    later = starts > 0
    t = np.concatenate([starts[later], ends[ends > 0]])
    d = np.concatenate(
        [np.ones(int(later.sum()), np.int64), -np.ones(int((ends > 0).sum()), np.int64)]
    )
    g = np.concatenate([gid[later], gid[ends > 0]]).astype(np.int64)
    order = np.lexsort((d, t, g))
    t, d, g = t[order], d[order], g[order]
    level = np.cumsum(d)
    first = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    offset = level[first] - d[first]
    level = level - np.repeat(offset, np.diff(np.r_[first, len(g)])) + now[g]
    hit = (level >= caps[g]) & (t < horizon)
    for k in np.unique(g[hit]).tolist():
        if out[k] == 0.0:
            continue
        out[k] = float(t[hit & (g == k)][0])
    return out


def _verdict(p_full: float, q: dict[str, float], hours: float, now_full: bool) -> str:
    if now_full:
        return "full now"

    def when(m: float) -> str:
        return "later than the horizon" if math.isnan(m) else f"{m:.0f} min"

    if p_full >= 0.5:
        return (
            f"expected to fill in {when(q['p50'])} (80%: {when(q['p10'])} to {when(q['p90'])}; "
            f"95%: {when(q['p2_5'])} to {when(q['p97_5'])}), probability {100 * p_full:.0f}%"
        )
    return f"not expected to fill within {hours:g} h (probability it does: {100 * p_full:.0f}%)"


def forecast(
    scenario: Scenario,
    *,
    hours: float = 4.0,
    replications: int = 20,
    seed: int | None = None,
    step_min: float = 5.0,
) -> Forecast:
    """Run ``replications`` of ``scenario`` (already beginning from a state: see
    :func:`twin.api.start_from`) over ``hours`` and summarise them (see the module)."""
    import time as _time

    if not 0 < hours <= MAX_FORECAST_HOURS:
        raise ValueError(
            f"hours must be > 0 and at most {MAX_FORECAST_HOURS} (366 days), got {hours:g}"
        )
    if replications < 2:
        raise ValueError("a forecast needs at least 2 replications for its bands")
    t_begin = _time.perf_counter()
    horizon = hours * 3600.0
    sc = scenario.model_copy(
        update={
            "horizon_days": hours / 24.0,
            "warmup_hours": 0.0,
            "output": scenario.output.model_copy(update={"interval_min": step_min}),
        }
    )
    seed = sc.seed if seed is None else seed
    times = np.arange(0.0, horizon + step_min * 30.0, step_min * 60.0)
    times = times[times <= horizon]
    counts = []  # per replication: (groups, times)
    fills = []
    names: list[tuple[str, str, int]] = []
    not_placed = 0
    for r in range(replications):
        model = ParkingModel(sc, r, seed)
        rec = model.run()
        if model.seeded is not None:
            not_placed += model.seeded.not_placed
        spot, starts, ends = stays(rec)
        rows, fill_r = [], []
        names_r = []
        for kind, group_names, caps, gid in groupings(rec, spot):
            rows.append(group_counts_at(times, gid, len(group_names), starts, ends))
            fill_r.append(_fill_times(starts, ends, gid, np.asarray(caps), horizon))
            names_r += [(kind, g, int(c)) for g, c in zip(group_names, caps, strict=True)]
        counts.append(np.concatenate(rows))
        fills.append(np.concatenate(fill_r))
        names = names_r
    cube = np.stack(counts)  # (reps, groups, times)
    fill = np.stack(fills)  # (reps, groups)
    n_groups, n_times = cube.shape[1], cube.shape[2]
    kinds = [k for k, _, _ in names]
    groups = [g for _, g, _ in names]
    caps = np.array([c for _, _, c in names])
    epoch = pd.Timestamp(sc.start)
    # Weibull plotting positions (quantile p at order statistic p(n+1)): a new trajectory falls
    # below the k-th of n with probability k/(n+1), so the 80% band is a predictive 80% band.
    # With 20 replications the 95% band is the min-max range (19/21 = 90% predictive); more
    # replications (>= 40) give it its full width.
    qs = np.quantile(cube, list(QUANTILES.values()), axis=0, method="weibull")
    bands = pd.DataFrame(
        {
            "time": np.tile(epoch + pd.to_timedelta(times, unit="s"), n_groups),
            "minutes": np.tile(times / 60.0, n_groups),
            "group_kind": np.repeat(kinds, n_times),
            "group": np.repeat(groups, n_times),
            "capacity": np.repeat(caps, n_times),
            "mean": cube.mean(axis=0).ravel(),
            **{name: qs[k].ravel() for k, name in enumerate(QUANTILES)},
        }
    )
    bands["occupancy"] = bands["mean"] / bands["capacity"]
    fill_rows = []
    for j in range(n_groups):
        t = fill[:, j]
        p_full = float(np.mean(np.isfinite(t)))
        with np.errstate(invalid="ignore"):
            q = {
                name: float(np.quantile(t, p, method="inverted_cdf")) / 60.0
                for name, p in QUANTILES.items()
            }
        q = {k: (v if math.isfinite(v) else math.nan) for k, v in q.items()}
        now = int(cube[0, j, 0])
        fill_rows.append(
            {
                "group_kind": kinds[j],
                "group": groups[j],
                "capacity": int(caps[j]),
                "occupied_now": now,
                "p_full": p_full,
                **{f"fill_{k}_min": v for k, v in q.items()},
                "verdict": _verdict(p_full, q, hours, now >= caps[j]),
            }
        )
    occupancy = pd.DataFrame(
        {
            "replication": np.repeat(np.arange(replications, dtype=np.int32), n_groups * n_times),
            "time_s": np.tile(times, replications * n_groups),
            "group_kind": np.tile(np.repeat(kinds, n_times), replications),
            "group": np.tile(np.repeat(groups, n_times), replications),
            "occupied": cube.ravel(),
            "capacity": np.tile(np.repeat(caps, n_times), replications),
        }
    )
    occupancy.insert(2, "time", epoch + pd.to_timedelta(occupancy["time_s"], unit="s"))
    occupancy["occupancy"] = occupancy["occupied"] / occupancy["capacity"]
    notes = []
    if not_placed:
        notes.append(
            f"{not_placed / replications:g} car(s) of the state found no spot per replication"
        )
    return Forecast(
        scenario=sc,
        start=sc.start,
        hours=hours,
        replications=replications,
        bands=bands,
        fill=pd.DataFrame(fill_rows),
        occupancy=occupancy,
        seconds=_time.perf_counter() - t_begin,
        notes=notes,
    )
