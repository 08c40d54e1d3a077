"""Replications and their statistics.

Replication ``r`` of a scenario with seed ``s`` draws every random stream from
``SeedSequence(s, spawn_key=(r, stream))``: replications are independent, any one can be rerun
alone, and two scenarios run with the same seed share their drivers (common random numbers).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from twin.results import lanes_frame, metrics, occupancy_frame, vehicles_frame
from twin.scenario.model import Scenario
from twin.sim.model import simulate

if TYPE_CHECKING:
    from twin.executors import Executor

Progress = Callable[[int, float], None]


def confidence_interval(
    values: np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """Mean, sample sd and the t interval of the mean; NaN interval with a single value."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    n = len(values)
    if n == 0:
        return (math.nan,) * 4
    mean = float(values.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(values.std(ddof=1))
    if sd == 0.0:
        return mean, 0.0, mean, mean
    lo, hi = stats.t.interval(confidence, n - 1, loc=mean, scale=sd / math.sqrt(n))
    return mean, sd, float(lo), float(hi)


@dataclass
class RunResult:
    """Everything one ``run`` produced: per-replication figures and the tidy frames."""

    scenario: Scenario
    seed: int
    metrics: pd.DataFrame  # one row per replication
    vehicles: pd.DataFrame
    occupancy: pd.DataFrame
    lanes: pd.DataFrame
    trace_dropped: int = 0

    @property
    def replications(self) -> int:
        return len(self.metrics)

    def summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """Each figure's mean, sd and confidence interval over the replications."""
        rows = []
        for name in self.metrics.columns:
            if name == "replication":
                continue
            mean, sd, lo, hi = confidence_interval(self.metrics[name].to_numpy(), confidence)
            rows.append(
                {
                    "metric": name,
                    "mean": mean,
                    "sd": sd,
                    "ci_low": lo,
                    "ci_high": hi,
                    "half_width": (hi - lo) / 2,
                    "n": len(self.metrics),
                }
            )
        return pd.DataFrame(rows).set_index("metric")

    def summary_dict(self) -> dict:
        """What ``summary.json`` holds: inputs that identify the run, and every figure."""
        table = self.summary()

        def clean(x: float) -> float | None:
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else x

        return {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "replications": self.replications,
            "horizon_days": self.scenario.horizon_days,
            "warmup_hours": self.scenario.warmup_hours,
            "confidence": 0.95,
            "metrics": {
                name: {
                    "mean": clean(row["mean"]),
                    "sd": clean(row["sd"]),
                    "ci95": [clean(row["ci_low"]), clean(row["ci_high"])],
                    "values": [clean(float(v)) for v in self.metrics[name]],
                }
                for name, row in table.iterrows()
            },
        }

    def write(self, out_dir: str | Path, fmt: str = "parquet") -> list[Path]:
        """Write vehicles, occupancy, lanes (parquet or csv), metrics and summary.json."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, frame in (
            ("vehicles", self.vehicles),
            ("occupancy", self.occupancy),
            ("lanes", self.lanes),
            ("replications", self.metrics),
        ):
            path = out / f"{name}.{fmt}"
            if fmt == "parquet":
                frame.to_parquet(path, index=False)
            elif fmt == "csv":
                frame.to_csv(path, index=False)
            else:
                raise ValueError(f"unknown format {fmt!r}; allowed: parquet, csv")
            written.append(path)
        path = out / "summary.json"
        path.write_text(json.dumps(self.summary_dict(), indent=2, sort_keys=True) + "\n")
        written.append(path)
        return written


@dataclass
class Replication:
    """What one replication hands back: its figures and its tidy frames (picklable, so it can
    come back from a worker process or a Dask worker)."""

    index: int
    metrics: dict[str, float]
    vehicles: pd.DataFrame
    occupancy: pd.DataFrame
    lanes: pd.DataFrame
    trace_dropped: int = 0


def replicate(
    scenario: Scenario,
    replication: int,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> Replication:
    """Run replication ``replication`` alone; the result depends only on its arguments."""
    rec = simulate(scenario, replication=replication, seed=seed, progress=progress)
    return Replication(
        index=replication,
        metrics=metrics(rec),
        vehicles=vehicles_frame(rec),
        occupancy=occupancy_frame(rec),
        lanes=lanes_frame(rec),
        trace_dropped=rec.drivers.trace_dropped,
    )


def collect(scenario: Scenario, seed: int, replications: list[Replication]) -> RunResult:
    """Assemble replications (in index order, whatever order they finished in)."""
    reps = sorted(replications, key=lambda r: r.index)
    return RunResult(
        scenario=scenario,
        seed=seed,
        metrics=pd.DataFrame([{"replication": r.index, **r.metrics} for r in reps]),
        vehicles=pd.concat([r.vehicles for r in reps], ignore_index=True),
        occupancy=pd.concat([r.occupancy for r in reps], ignore_index=True),
        lanes=pd.concat([r.lanes for r in reps], ignore_index=True),
        trace_dropped=sum(r.trace_dropped for r in reps),
    )


def run(
    scenario: Scenario,
    replications: int | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> RunResult:
    """Run ``replications`` independent replications and collect frames and figures.

    With an ``executor`` (see :mod:`twin.executors`) the replications run there, in parallel;
    the result is identical, since each replication depends only on (scenario, index, seed).
    ``progress(r, fraction)`` then reports whole replications: ``r + fraction`` is the number
    finished so far.
    """
    reps = scenario.replications if replications is None else replications
    seed = scenario.seed if seed is None else seed
    if executor is not None:
        from twin.executors import Task

        tasks = (Task(scenario, r, seed) for r in range(reps))
        done = []
        for rep in executor.map_replications(tasks):
            done.append(rep)
            if progress is not None:
                progress(len(done) - 1, 1.0)
        return collect(scenario, seed, done)
    done = []
    for r in range(reps):
        cb = (lambda f, r=r: progress(r, f)) if progress is not None else None
        done.append(replicate(scenario, r, seed, cb))
    return collect(scenario, seed, done)
