"""Replications and their statistics.

Replication ``r`` of a scenario with seed ``s`` draws every random stream from
``SeedSequence(s, spawn_key=(r, stream))``: replications are independent, any one can be rerun
alone, and two scenarios run with the same seed share their drivers (common random numbers).

Two additions on top of a fixed number of replications:

* ``warmup_hours: auto`` — :func:`resolve_warmup` runs pilot replications and cuts the warm-up
  MSER-5 finds in their mean total-occupancy series (:func:`twin.stats.mser`).
* :func:`run_sequential` — add replications until a figure's 95% half-width meets a target.

Statistics themselves (t intervals, MSER-5, paired differences) live in :mod:`twin.stats`;
``confidence_interval`` is re-exported here for existing callers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin import figures
from twin.outputs import FORMATS, OutputError, claim, remove_temporaries, write_frame, write_json
from twin.replication import Replication, from_record, replicate
from twin.results import count_at
from twin.scenario.model import Scenario
from twin.sim.model import RunRecord, simulate
from twin.sim.size import check_size
from twin.stats import (
    MIN_NONZERO_REPLICATIONS,
    confidence_interval,
    count_share_interval,
    describe,
    mser,
)
from twin.tasks import FRAMES

if TYPE_CHECKING:
    from twin.executors import Executor

__all__ = [  # confidence_interval: re-exported from twin.stats for existing callers
    "DEFAULT_PILOT_REPLICATIONS",
    "FRAMES",
    "MIN_SEQUENTIAL_REPLICATIONS",
    "Replication",
    "RunResult",
    "StoppingReport",
    "WarmupDetection",
    "collect",
    "confidence_interval",
    "prepare_run_folder",
    "replicate",
    "resolve_warmup",
    "run",
    "run_folder_files",
    "run_sequential",
]

Progress = Callable[[int, float], None]


#: Shares of drivers in % whose denominator is the replication's ``arrivals`` (the count they are
#: built from is ``share × arrivals / 100``): their interval is the pooled-count one of
#: :func:`twin.stats.count_share_interval`, fit for rare, skewed, bounded figures.
COUNT_SHARES: tuple[str, ...] = (
    "blocked_pct",
    "balked_pct",
    "reneged_pct",
    "turned_away_pct",
    "waiting_pct",
    "in_entry_lane_pct",
    "diverting_pct",
    "diverted_pct",
    "diverted_parked_pct",
    "lost_pct",
)

#: What the ``unreliable`` flag of a summary row means (footnote of tables and summary.json).
UNRELIABLE_NOTE = (
    "interval unreliable at this number of replications: fewer than "
    f"{MIN_NONZERO_REPLICATIONS} replications saw the event (or no spread at all); "
    "run more replications"
)


def figure_interval(
    metrics: pd.DataFrame, name: str, confidence: float = 0.95
) -> dict[str, float | bool]:
    """One summary row for figure ``name`` of a per-replication metrics table: mean, sd,
    interval, half-width, n and ``unreliable``.

    Shares of drivers built from counts (:data:`COUNT_SHARES`, when ``arrivals`` is there) get
    the pooled-count interval (:func:`twin.stats.count_share_interval`), flagged unreliable
    with fewer than :data:`~twin.stats.MIN_NONZERO_REPLICATIONS` replications that saw the event;
    every other figure the t interval (:func:`twin.stats.describe`), flagged unreliable only
    when it cannot be computed. The mean is always the mean of the per-replication values.
    """
    values = metrics[name].to_numpy(dtype=float)
    if name in COUNT_SHARES and "arrivals" in metrics.columns:
        ci = count_share_interval(values, metrics["arrivals"].to_numpy(dtype=float), confidence)
        return {
            "mean": ci.mean,
            "sd": ci.sd,
            "ci_low": ci.ci_low,
            "ci_high": ci.ci_high,
            "half_width": (ci.ci_high - ci.ci_low) / 2,
            "n": ci.n,
            "unreliable": ci.n < 2 or not ci.reliable,
        }
    row = describe(values, confidence)
    return {**row, "unreliable": bool(row["n"] < 2 or math.isnan(row["half_width"]))}


#: Pilot replications behind ``warmup_hours: auto``. A fixed number (not "as many as the run"),
#: so the detected warm-up of a scenario and seed does not change with ``--replications``.
DEFAULT_PILOT_REPLICATIONS = 5

#: Fewest replications a sequential run stops at: a t interval from 2-4 values is so erratic
#: that a lucky early pair could end the run with a badly wrong half-width.
MIN_SEQUENTIAL_REPLICATIONS = 5


@dataclass(frozen=True)
class WarmupDetection:
    """What ``warmup_hours: auto`` cut, and from what evidence."""

    hours: float
    method: str  # "MSER-5"
    pilot_replications: int
    observations: int  # length of the analysed series
    truncated: int  # observations discarded
    step_s: float  # sampling step of the series
    at_boundary: bool  # minimum on the last allowed point: the horizon may be too short

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class StoppingReport:
    """How a sequential run ended: the figure watched, the target and what was reached."""

    metric: str
    precision: float
    relative: bool
    target_half_width: float  # absolute target at the stopping point
    half_width: float
    replications: int
    min_replications: int
    max_replications: int
    met: bool
    reason: str = ""  # why this figure was watched, or why the run could not stop

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


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
    rates: pd.DataFrame | None = None  # adaptive pricing's rate trajectory, if any
    #: Operations components' tables (e.g. payments_bills), all replications, by name.
    extra_frames: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    warmup: WarmupDetection | None = None  # set when the scenario asked for warmup_hours: auto
    stopping: StoppingReport | None = None  # set by run_sequential

    @property
    def replications(self) -> int:
        return len(self.metrics)

    def summary(self, confidence: float = 0.95) -> pd.DataFrame:
        """Each figure's mean, sd and confidence interval over the replications, and the unit
        they are in (the figure registry's, :mod:`twin.figures`: the same in every output)."""
        rows = []
        for name in self.metrics.columns:
            if name == "replication":
                continue
            row = figure_interval(self.metrics, name, confidence)
            unit = figures.unit_of(name).symbol
            rows.append({"metric": name, **row, "n": len(self.metrics), "unit": unit})
        return pd.DataFrame(rows).set_index("metric")

    def summary_dict(self) -> dict:
        """What ``summary.json`` holds: inputs that identify the run, and every figure."""
        table = self.summary()

        def clean(x: float) -> float | None:
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else x

        extra: dict = {}
        if self.warmup is not None:
            extra["warmup_hours_detected"] = self.warmup.hours
            extra["warmup_detection"] = self.warmup.as_dict()
        if self.stopping is not None:
            extra["stopping"] = {
                k: clean(v) if isinstance(v, float) else v
                for k, v in self.stopping.as_dict().items()
            }
        return {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "replications": self.replications,
            "horizon_days": self.scenario.horizon_days,
            "warmup_hours": self.scenario.warmup_hours,
            "confidence": 0.95,
            **extra,
            "notes": {"unreliable": UNRELIABLE_NOTE},
            "metrics": {
                name: {
                    "unit": row["unit"],
                    "mean": clean(row["mean"]),
                    "sd": clean(row["sd"]),
                    "ci95": [clean(row["ci_low"]), clean(row["ci_high"])],
                    "unreliable": bool(row["unreliable"]),
                    "values": [clean(float(v)) for v in self.metrics[name]],
                }
                for name, row in table.iterrows()
            },
        }

    def write(
        self, out_dir: str | Path, fmt: str = "parquet", overwrite: bool = False
    ) -> list[Path]:
        """Write vehicles, occupancy, lanes (parquet or csv), metrics and summary.json.

        Every file is written atomically while the folder is claimed (:mod:`twin.outputs`), and
        ``summary.json``, written last, names the tables of this run (``files``), so a reader
        never takes another run's table for this one's. A folder that already holds a run is
        refused (:class:`~twin.outputs.OutputError`) unless ``overwrite``, which first deletes
        ParkTwin's own files there (see :func:`prepare_run_folder`). The vehicles table is
        left out when it was not kept (``output.vehicles: false`` or ``vehicles=False``).
        """
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
        with claim(out_dir) as out:
            prepare_run_folder(out, overwrite)
            written = []
            for name, frame in (
                *((("vehicles", self.vehicles),) if self.has_vehicles else ()),
                ("occupancy", self.occupancy),
                ("lanes", self.lanes),
                ("replications", self.metrics),
                *((("rates", self.rates),) if self.rates is not None and len(self.rates) else ()),
                *((name, frame) for name, frame in self.extra_frames.items() if len(frame)),
            ):
                written.append(write_frame(frame, out / f"{name}.{fmt}", fmt))
            summary = {**self.summary_dict(), "files": {p.stem: p.name for p in written}}
            written.append(write_json(out / "summary.json", summary))
        return written

    @property
    def has_vehicles(self) -> bool:
        """Whether per-vehicle records were kept (they are not with ``output.vehicles: false``
        or a run that asked for figures only)."""
        return len(self.vehicles.columns) > 0


#: Tables a run folder held before ``summary.json`` named its files (``files``).
RUN_TABLES = ("vehicles", "occupancy", "lanes", "replications", "rates")


def run_folder_files(folder: str | Path) -> list[Path]:
    """ParkTwin's own files in a run folder: ``summary.json``, the tables it names (the standard
    tables, for a folder written before it named them), and what ``report`` added."""
    folder = Path(folder)
    summary = folder / "summary.json"
    names: list[str] = []
    if summary.is_file():
        try:
            names = list(json.loads(summary.read_text(encoding="utf-8")).get("files", {}).values())
        except (OSError, ValueError, AttributeError):
            names = []
    names += [f"{stem}.{fmt}" for stem in RUN_TABLES for fmt in FORMATS]
    names += ["summary.json", "report.html"]
    files = [folder / n for n in dict.fromkeys(names) if "/" not in n and (folder / n).is_file()]
    return files + sorted((folder / "plots").glob("*.png"))


def prepare_run_folder(folder: str | Path, overwrite: bool = False) -> None:
    """Refuse a folder that holds another run's outputs, or with ``overwrite`` delete them
    (ParkTwin's own files only: anything else in the folder stays). Call it while holding the
    folder's claim, before simulating, so a refusal costs nothing."""
    folder = Path(folder)
    files = run_folder_files(folder)
    if not files:
        return
    if not overwrite:
        raise OutputError(
            f"--out {folder} already holds a run's outputs ({files[0].name}): add --overwrite "
            "to replace them, or choose another folder"
        )
    for path in files:
        path.unlink(missing_ok=True)
    remove_temporaries(folder)
    with contextlib.suppress(OSError):
        (folder / "plots").rmdir()  # only if the report's charts were all it held


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
        # every replication replays the same trace rows: say how many fell outside once
        trace_dropped=max(r.trace_dropped for r in reps),
        extra_frames={
            name: pd.concat([r.extra_frames[name] for r in reps], ignore_index=True)
            for name in reps[0].extra_frames
        },
        rates=(
            pd.concat([r.rates for r in reps], ignore_index=True)
            if reps[0].rates is not None
            else None
        ),
    )


def run(
    scenario: Scenario,
    replications: int | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
    pilot_replications: int = DEFAULT_PILOT_REPLICATIONS,
    frames: tuple[str, ...] = FRAMES,
    first_replication: int = 0,
) -> RunResult:
    """Run ``replications`` independent replications and collect frames and figures.

    They are replications ``first_replication .. first_replication + replications − 1``: two
    experiments with the same seed and disjoint index ranges are independent (an analyst's
    design, a coverage study), without relying on different seeds.

    ``frames`` names the tables to keep (a subset of :data:`FRAMES`; the others are empty):
    the figures never depend on it, only the memory a long run holds does.

    With ``warmup_hours: auto`` the warm-up is detected first (:func:`resolve_warmup`) from
    ``pilot_replications`` pilot replications, and ``RunResult.warmup`` says what was cut.

    With an ``executor`` (see :mod:`twin.executors`) the replications run there, in parallel;
    the result is identical, since each replication depends only on (scenario, index, seed).
    ``progress(r, fraction)`` then reports whole replications: ``r + fraction`` is the number
    finished so far.
    """
    reps = scenario.replications if replications is None else replications
    seed = scenario.seed if seed is None else seed
    if first_replication < 0:
        raise ValueError(f"first_replication must be >= 0, got {first_replication}")
    check_size(scenario, reps)  # every replication's frames are kept: refuse before the first
    scenario, detection, pilot = resolve_warmup(
        scenario, seed, pilot_replications, progress, executor, first_replication
    )
    indexes = range(first_replication, first_replication + reps)
    if executor is not None:
        from twin.tasks import Task

        tasks = (Task(scenario, r, seed, keep=frames) for r in indexes)
        done = []
        for rep in executor.map_replications(tasks):
            done.append(rep)
            if progress is not None:
                progress(len(done) - 1, 1.0)
    else:
        done = [
            _replication(scenario, r, seed, pilot, progress, frames, first_replication)
            for r in indexes
        ]
    result = collect(scenario, seed, done)
    result.warmup = detection
    return result


def _callback(progress: Progress | None, r: int) -> Callable[[float], None] | None:
    return (lambda f: progress(r, f)) if progress is not None else None


def _total_occupied(rec: RunRecord) -> np.ndarray:
    """Occupied spots in the whole lot every ``output.interval_min`` (as in occupancy_frame)."""
    step = rec.scenario.output.interval_min * 60.0
    times = np.arange(0.0, rec.scenario.horizon_s + step / 2, step)
    parked = rec.spot >= 0
    return count_at(times, rec.entry_t[parked], rec.leave_t[parked]).astype(float)


def resolve_warmup(
    scenario: Scenario,
    seed: int | None = None,
    pilot_replications: int = DEFAULT_PILOT_REPLICATIONS,
    progress: Progress | None = None,
    executor: Executor | None = None,
    first_replication: int = 0,
) -> tuple[Scenario, WarmupDetection | None, dict[int, RunRecord]]:
    """Replace ``warmup_hours: auto`` by the warm-up MSER-5 detects; pass others through.

    Runs the run's first ``pilot_replications`` replications (from ``first_replication``; same
    seed and streams as the real run),
    averages their total-occupancy series point by point and applies :func:`twin.stats.mser`
    to the average, searching the first half of the horizon only. Averaging across replications
    is the usual practice (Hoad, Robinson & Davies 2010): it damps the noise that makes MSER on a
    single run cut too early or too late, while keeping the transient.

    The warm-up is a whole number of sampling steps (``output.interval_min``). Returns the
    scenario with the detected value, the detection, and (serial runs) the pilot's raw records
    for reuse: the warm-up only changes which part of a replication is measured, never what is
    simulated, so pilot replication ``r`` *is* replication ``r`` of the run.
    """
    if scenario.warmup_hours != "auto":
        return scenario, None, {}
    if pilot_replications < 1:
        raise ValueError(f"pilot_replications must be >= 1, got {pilot_replications}")
    seed = scenario.seed if seed is None else seed
    pilot = scenario.model_copy(update={"warmup_hours": 0.0})
    records: dict[int, RunRecord] = {}
    series: list[np.ndarray] = []
    indexes = range(first_replication, first_replication + pilot_replications)
    if executor is not None:
        from twin.tasks import Task

        tasks = (Task(pilot, r, seed, keep=("occupancy",)) for r in indexes)
        for rep in executor.map_replications(tasks):
            occ = rep.occupancy
            total = occ[occ["group_kind"] == "total"].sort_values("time_s")
            series.append(total["occupied"].to_numpy(dtype=float))
    else:
        for r in indexes:
            rec = simulate(
                pilot,
                replication=r,
                seed=seed,
                progress=_callback(progress, r - first_replication),
            )
            # operations components measure over the warm-up they were given, so a pilot
            # record is reused only when there are none
            if scenario.operations is None:
                records[r] = rec
            series.append(_total_occupied(rec))
    mean_series = np.mean(series, axis=0)
    try:
        cut = mser(mean_series, batch_size=5, max_fraction=0.5)
    except ValueError as exc:
        raise ValueError(
            f"warmup_hours: auto: {exc}; use a longer horizon or a shorter output.interval_min"
        ) from None
    step = scenario.output.interval_min * 60.0
    hours = cut.truncate * step / 3600.0
    detection = WarmupDetection(
        hours=hours,
        method="MSER-5",
        pilot_replications=pilot_replications,
        observations=len(mean_series),
        truncated=cut.truncate,
        step_s=step,
        at_boundary=cut.at_boundary,
    )
    resolved = scenario.model_copy(update={"warmup_hours": hours})
    records = {r: dataclasses.replace(rec, scenario=resolved) for r, rec in records.items()}
    return resolved, detection, records


def _replication(
    scenario: Scenario,
    r: int,
    seed: int,
    pilot: dict[int, RunRecord],
    progress: Progress | None,
    frames: tuple[str, ...] = FRAMES,
    first_replication: int = 0,
) -> Replication:
    """Replication ``r``: from the warm-up pilot's record if it ran there, else simulated.
    Progress counts from ``first_replication`` (the run's first is reported as 0)."""
    rec = pilot.pop(r, None)
    if rec is not None:
        return from_record(rec, frames)
    return replicate(scenario, r, seed, _callback(progress, r - first_replication), frames)


def run_sequential(
    scenario: Scenario,
    precision: float,
    *,
    metric: str | None = None,
    relative: bool = False,
    min_replications: int = MIN_SEQUENTIAL_REPLICATIONS,
    max_replications: int = 100,
    seed: int | None = None,
    confidence: float = 0.95,
    progress: Progress | None = None,
    executor: Executor | None = None,
    pilot_replications: int = DEFAULT_PILOT_REPLICATIONS,
    frames: tuple[str, ...] = FRAMES,
    first_replication: int = 0,
) -> RunResult:
    """Add replications until ``metric``'s confidence half-width is at most the target.

    The target is ``precision`` in the figure's own units, or with ``relative`` the fraction
    ``precision`` of |mean| (``0.05`` asks for ±5 %). The rule is checked after each replication
    from ``min_replications`` on; the run stops at ``max_replications`` whether or not the
    target was met (``RunResult.stopping.met`` says which).

    ``metric`` None watches the first figure of :data:`PRECISION_METRICS` that varies over the
    first ``min_replications`` replications (``stopping.reason`` says which and why). The
    half-width is that of the figure's summary interval (:func:`figure_interval`: pooled counts
    for shares of drivers). A zero-width interval (every replication the same) never stops the
    run: it is not precision. Replications are counted from ``first_replication``.

    Replication ``r`` always draws the same random streams, so the result is identical to
    :func:`run` with the number of replications this one stopped at. With an ``executor`` the
    replications run in rounds of ``executor.workers``; the rule is still checked after each
    replication in index order and any beyond the stopping point are discarded, so the result
    does not depend on the executor either.
    """
    if not precision > 0:
        raise ValueError(f"precision must be > 0, got {precision}")
    if min_replications < 2:
        raise ValueError(f"min_replications must be >= 2, got {min_replications}")
    if max_replications < min_replications:
        raise ValueError(
            f"max_replications ({max_replications}) must be >= min_replications "
            f"({min_replications})"
        )
    seed = scenario.seed if seed is None else seed
    scenario, detection, pilot = resolve_warmup(
        scenario, seed, pilot_replications, progress, executor, first_replication
    )
    done: list[Replication] = []
    target = hw = math.nan
    met = False
    reason = ""
    last = first_replication + max_replications

    def more(count: int) -> list[Replication]:
        """The next ``count`` replications, in index order."""
        first = first_replication + len(done)
        indexes = range(first, min(first + count, last))
        if executor is None:
            return [
                _replication(scenario, r, seed, pilot, progress, frames, first_replication)
                for r in indexes
            ]
        from twin.tasks import Task

        tasks = (Task(scenario, r, seed, keep=frames) for r in indexes)
        reps = list(executor.map_replications(tasks))
        if progress is not None:
            progress(indexes[-1] - first_replication, 1.0)
        return sorted(reps, key=lambda rep: rep.index)

    round_size = 1 if executor is None else max(1, executor.workers)
    while len(done) < max_replications and not met:
        for rep in more(round_size):
            if not done and metric is not None and metric not in rep.metrics:
                names = ", ".join(sorted(rep.metrics))
                raise ValueError(f"unknown metric {metric!r}; this scenario has: {names}")
            done.append(rep)
            if len(done) < min_replications:
                continue
            table = pd.DataFrame([d.metrics for d in done])
            if metric is None:
                metric, reason = choose_precision_metric(table)
            row = figure_interval(table, metric, confidence)
            hw = float(row["half_width"])
            if math.isnan(hw):
                raise ValueError(f"metric {metric!r} is undefined (NaN) here; choose another")
            target = precision * abs(float(row["mean"])) if relative else precision
            if hw == 0.0:
                # every replication gave the same value: a zero-width interval claims a
                # certainty five identical values cannot give, so it never ends the run
                reason = (
                    f"{metric} was the same in all {len(done)} replications: its interval has "
                    "zero width, which is not precision; choose a figure that varies"
                )
                continue
            if hw <= target:
                met = True
                break  # replications past the stopping point are discarded
    result = collect(scenario, seed, done)
    result.warmup = detection
    result.stopping = StoppingReport(
        metric=metric,
        precision=precision,
        relative=relative,
        target_half_width=target,
        half_width=hw,
        replications=len(done),
        min_replications=min_replications,
        max_replications=max_replications,
        met=met,
        reason=reason,
    )
    return result


#: Figures ``--precision`` watches when none is named: the first of them that varies over the
#: first replications (a lot that never blocks has ``blocked_pct`` 0 in every replication,
#: whose zero-width interval says nothing about precision).
PRECISION_METRICS: tuple[str, ...] = (
    "blocked_pct",
    "reneged_pct",
    "balked_pct",
    "occupancy.mean",
    "revenue_per_day",
    "arrivals_per_day",
)


def choose_precision_metric(table: pd.DataFrame) -> tuple[str, str]:
    """The figure a sequential run watches by default, and why, from its first replications:
    the first of :data:`PRECISION_METRICS` whose values are finite and not all equal."""
    constant = []
    for name in PRECISION_METRICS:
        if name not in table.columns:
            continue
        values = table[name].to_numpy(dtype=float)
        if np.isnan(values).any():
            continue
        if np.ptp(values) > 0:
            if not constant:
                return name, f"watching {name} (the default)"
            return name, (
                f"watching {name}: {', '.join(constant)} did not vary over the first "
                f"{len(table)} replications"
            )
        constant.append(f"{name} (always {figures.format_value(name, float(values[0]))})")
    names = [c for c in table.columns if c != "replication"]
    for name in names:
        values = table[name].to_numpy(dtype=float)
        if not np.isnan(values).any() and np.ptp(values) > 0:
            return name, f"watching {name}: none of {', '.join(PRECISION_METRICS)} varied"
    raise ValueError("no figure varies between replications: there is no precision to reach")
