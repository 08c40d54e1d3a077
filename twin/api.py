"""The Python API behind the CLI: what a notebook calls directly.

>>> from twin.api import load, run
>>> result = run(load("scenarios/surface_lot.yaml"), replications=2)   # doctest: +SKIP
>>> result.summary().loc["blocked_pct"]                                 # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from twin.compare import Comparison
from twin.compare import compare as _compare
from twin.executors import Executor, ExecutorError, make_executor
from twin.experiments import (
    FRAMES,
    MIN_SEQUENTIAL_REPLICATIONS,
    Progress,
    RunResult,
    run_sequential,
)
from twin.experiments import run as _run
from twin.installed import baselines_dir
from twin.optimize import OptimizationResult, OptimizeError
from twin.outputs import OutputError
from twin.regress import BaselineMissing, BaselineUpdate, RegressError, ScenarioCheck
from twin.regress import check as _regress_check
from twin.regress import update as _regress_update
from twin.scenario.loader import ScenarioError, load_mapping, load_scenario, load_text
from twin.scenario.model import Scenario
from twin.sweep import (
    SweepError,
    SweepProgress,
    SweepResult,
    load_sweep_file,
    make_spec,
    parse_grid,
    runs_on_disk,
)
from twin.sweep import plan_sweep as _plan_sweep
from twin.sweep import run_sweep as _run_sweep

__all__ = [
    "FRAMES",
    "MIN_SEQUENTIAL_REPLICATIONS",
    "BaselineMissing",
    "BaselineUpdate",
    "Comparison",
    "Executor",
    "ExecutorError",
    "OptimizationResult",
    "OptimizeError",
    "OutputError",
    "RegressError",
    "RunResult",
    "Scenario",
    "ScenarioCheck",
    "ScenarioError",
    "StartState",
    "StateError",
    "SweepError",
    "SweepResult",
    "compare",
    "forecast",
    "load",
    "load_state",
    "make_executor",
    "mirror",
    "optimize",
    "parse_grid",
    "record_baseline",
    "regress",
    "replay",
    "report",
    "run",
    "runs_on_disk",
    "start_from",
    "sweep",
]


def load(
    source: str | Path | Mapping[str, Any], overrides: dict[str, Any] | None = None
) -> Scenario:
    """Load and validate a scenario; raises ScenarioError listing every problem.

    ``source`` is a scenario file (a path), a mapping of the file's keys, or the YAML text of
    one (a string holding a newline or a ``key: value``; any other string is a path). A
    mapping or text is validated exactly as a file is (same messages, same ``overrides``);
    relative paths inside it (trace files) are read from the current folder.
    """
    if isinstance(source, Mapping):
        return load_mapping(source, overrides)
    if not isinstance(source, str | Path):
        raise ScenarioError(
            "<scenario>",
            [f"expected a file, a mapping or YAML text, got {type(source).__name__}"],
        )
    if isinstance(source, str) and _looks_like_yaml(source):
        return load_text(source, overrides)
    return load_scenario(source, overrides)


def _looks_like_yaml(text: str) -> bool:
    """A string that is scenario text rather than a path: several lines, or ``key: value``."""
    return "\n" in text or (": " in text and not Path(text).exists())


def run(
    scenario: Scenario | str | Path,
    *,
    seed: int | None = None,
    days: float | None = None,
    replications: int | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
    precision: float | None = None,
    metric: str | None = None,
    relative: bool = False,
    min_replications: int = MIN_SEQUENTIAL_REPLICATIONS,
    max_replications: int = 100,
    frames: Sequence[str] = FRAMES,
    first_replication: int = 0,
    start_state: StartState | str | Path | Mapping[str, Any] | None = None,
) -> RunResult:
    """Run a scenario (object or file) with optional overrides of seed, horizon, replications.

    ``start_state`` begins every replication from a state instead of an empty lot (see
    :func:`start_from`): a :class:`StartState`, a state file or mapping, or ``"steady"``.

    ``frames`` names the tables to keep (any of ``vehicles``, ``occupancy``, ``lanes``; the
    others come back empty, the figures are the same): ``frames=()`` is a figures-only run, and
    without ``vehicles`` memory no longer grows with replications × days.

    ``first_replication`` is the index of the first replication (default 0): replication ``r``
    always draws the same random numbers, so two experiments with the same seed and disjoint
    index ranges are independent, and one with ``first_replication=k`` repeats exactly
    replications ``k, k+1, ...`` of a longer run.

    ``executor`` (from :func:`make_executor`, used as a context manager) runs the replications
    in parallel; the numbers are the same as a serial run's.

    With ``precision`` the number of replications is not fixed: replications are added until
    the 95% half-width of ``metric`` is at most ``precision`` (or ``precision × |mean|`` with
    ``relative``), between ``min_replications`` and ``max_replications``; see
    :func:`twin.experiments.run_sequential` and ``RunResult.stopping``. ``metric`` None
    watches the first of ``blocked_pct, reneged_pct, balked_pct, occupancy.mean,
    revenue_per_day`` that varies (``stopping.reason`` says which and why).
    """
    if not isinstance(scenario, Scenario):
        scenario = load(scenario)
    if start_state is not None:
        scenario = start_from(scenario, start_state)
    scenario = _with_days(scenario, days)
    frames = tuple(frames)
    unknown = sorted(set(frames) - set(FRAMES))
    if unknown:
        raise ValueError(f"unknown frames {unknown}; allowed: {', '.join(FRAMES)}")
    if precision is not None:
        if replications is not None:
            raise ValueError("give either a fixed number of replications or a precision, not both")
        return run_sequential(
            scenario,
            precision,
            metric=metric,
            relative=relative,
            min_replications=min_replications,
            max_replications=max_replications,
            seed=seed,
            progress=progress,
            executor=executor,
            frames=frames,
            first_replication=first_replication,
        )
    return _run(
        scenario,
        replications=replications,
        seed=seed,
        progress=progress,
        executor=executor,
        frames=frames,
        first_replication=first_replication,
    )


def _with_days(scenario: Scenario, days: float | None) -> Scenario:
    """The scenario over ``days`` simulated days (None: unchanged), checked against its warm-up."""
    if days is None:
        return scenario
    if not 0 < days < math.inf:  # NaN fails this too
        raise ValueError(f"days must be > 0 and finite, got {days:g}")
    scenario = scenario.model_copy(update={"horizon_days": days})
    if scenario.warmup_hours != "auto" and scenario.warmup_hours >= days * 24:
        raise ValueError(
            f"--days {days:g} is not longer than the warm-up ({scenario.warmup_hours:g} h)"
        )
    return scenario


def compare(
    a: Scenario | str | Path,
    b: Scenario | str | Path,
    *,
    replications: int | None = None,
    seed: int | None = None,
    days: float | None = None,
    label_a: str = "A",
    label_b: str = "B",
    progress: Progress | None = None,
    first_replication: int = 0,
) -> Comparison:
    """Compare B against A with common random numbers (same seed, same replication indexes).

    ``a`` and ``b`` are scenarios or files; ``replications`` and ``seed`` default to A's.
    The result's ``.table`` has every figure's paired difference B − A with its 95% interval,
    and ``.verdicts`` one plain sentence per headline figure. See :mod:`twin.compare`.
    ``first_replication`` (default 0) is the first replication index of both sides.
    """
    if not isinstance(a, Scenario):
        a = load(a)
    if not isinstance(b, Scenario):
        b = load(b)
    return _compare(
        _with_days(a, days),
        _with_days(b, days),
        replications=replications,
        seed=seed,
        label_a=label_a,
        label_b=label_b,
        progress=progress,
        first_replication=first_replication,
    )


def sweep(
    scenario: str | Path | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    out: str | Path | None = None,
    file: str | Path | None = None,
    replications: int | None = None,
    seed: int | None = None,
    days: float | None = None,
    keep_occupancy: bool = False,
    executor: Executor | str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    plots: bool = True,
    progress: SweepProgress | None = None,
    first_replication: int | None = None,
) -> SweepResult:
    """Run a grid sweep of a scenario file and write it to ``out`` (see :mod:`twin.sweep`).

    Give ``scenario`` and ``grid`` (``{"facility.strategy": ["nearest", "spread"]}``), or a
    sweep ``file``; ``replications``, ``seed``, ``days`` and ``keep_occupancy`` override the
    file's. ``executor`` is an :class:`Executor` you manage, or a name (``serial``,
    ``processes``, ``dask``) that is started with ``workers``/``scheduler`` and closed here.
    Every point is validated before anything runs. ``first_replication`` (default 0) is the
    index of every point's first replication, so independent sweeps need not differ by seed.

    Without ``out`` nothing is written: the runs stay in memory (figures only) and the
    result's ``table`` and ``summary`` are the output (``result.out`` is None).
    Raises :class:`SweepError` (a
    :class:`ScenarioError`) or :class:`ExecutorError` for problems the caller can fix.
    """
    if file is not None:
        if scenario is not None or grid:
            raise SweepError(str(file), ["give a sweep file or a scenario and a grid, not both"])
        spec = load_sweep_file(file)
        scenario, grid = spec.scenario, spec.grid
        replications = spec.replications if replications is None else replications
        seed = spec.seed if seed is None else seed
        days = spec.days if days is None else days
        keep_occupancy = keep_occupancy or spec.keep_occupancy
        if first_replication is None:
            first_replication = spec.first_replication
    if out is None and (keep_occupancy or resume or overwrite):
        raise SweepError(
            "sweep", ["keep_occupancy, resume and overwrite need an output folder (out=...)"]
        )
    if scenario is None or not grid:
        raise SweepError("sweep", ["give a scenario and at least one grid key, or a sweep file"])
    spec = make_spec(
        scenario,
        grid,
        replications=replications,
        seed=seed,
        days=days,
        keep_occupancy=keep_occupancy,
        first_replication=first_replication or 0,
    )
    plan = _plan_sweep(spec)
    options = {"resume": resume, "overwrite": overwrite, "plots": plots, "progress": progress}
    if isinstance(executor, Executor):
        return _run_sweep(plan, out, executor=executor, **options)
    with make_executor(executor, workers=workers, scheduler=scheduler) as ex:
        return _run_sweep(plan, out, executor=ex, **options)


def optimize(
    scenario: Scenario | str | Path | Mapping[str, Any],
    objective: str = "revenue",
    params: Mapping[str, tuple[float, float]] | Sequence[str] | None = None,
    *,
    method: str = "grid",
    grid_points: int = 7,
    max_evals: int = 30,
    replications: int = 5,
    seed: int | None = None,
    days: float | None = None,
    target: float = 0.85,
    window: str | None = None,
    max_blocking: float | None = None,
    min_revenue: float | None = None,
    keep_runs: bool = False,
    progress: Any = None,
) -> OptimizationResult:
    """Search tariff parameters for an objective with common random numbers (twin.optimize).

    ``objective`` is ``revenue`` (optionally with ``max_blocking`` pp of drivers turned away),
    ``occupancy-target`` (``target`` occupancy inside ``window``, e.g. ``"weekdays
    11:00-15:00"``; default the busiest 4 hours) or ``blocking`` (with ``min_revenue`` $/day,
    default the current tariff's). ``params`` maps dotted tariff keys to ``(low, high)``
    (dollars for money); default ``tariff.per_period`` from half to three times its value.
    Every point runs with the same seed and replication indexes. The result has ``.best``,
    ``.table`` (one row per point, best first) and ``.baseline_comparison`` (best against the
    current tariff, paired). Raises :class:`OptimizeError` / :class:`ScenarioError` on inputs
    the caller can fix.
    """
    from twin.optimize import as_scenario, make_spec
    from twin.optimize import optimize as _optimize

    spec = make_spec(
        objective=objective,
        params=params,
        window=window,
        method=method,
        grid_points=grid_points,
        max_evals=max_evals,
        replications=replications,
        seed=seed,
        target=target,
        max_blocking=max_blocking,
        min_revenue=min_revenue,
    )
    sc = _with_days(as_scenario(scenario), days)
    return _optimize(sc, spec, keep_runs=keep_runs, progress=progress)


def regress(
    scenario: str | Path,
    baseline_dir: str | Path | None = None,
    *,
    replications: int | None = None,
    confidence: float = 0.99,
) -> ScenarioCheck:
    """Pricing-regression gate for one scenario file against its stored baseline (by default
    in the baselines shipped with ParkTwin, :func:`twin.installed.baselines_dir`).

    ``.passed``, ``.failures`` and ``.table`` (metric, baseline/current mean, difference, its
    paired t interval, verdict) say whether revenue, prices or occupancy moved; see
    ``reports/README.md`` for the rule. Raises :class:`BaselineMissing` / :class:`RegressError`.
    """
    baseline_dir = baselines_dir() if baseline_dir is None else baseline_dir
    return _regress_check(scenario, baseline_dir, replications, confidence)


def record_baseline(
    scenario: str | Path,
    baseline_dir: str | Path | None = None,
    *,
    replications: int | None = None,
) -> BaselineUpdate:
    """(Re)record a scenario's baseline (by default among the shipped baselines, which in an
    editable install are the repository's); ``.changed`` lists the figures that moved."""
    baseline_dir = baselines_dir() if baseline_dir is None else baseline_dir
    return _regress_update(scenario, baseline_dir, replications)


def report(results_dir: str | Path, scenario: str | Path | None = None) -> Path:
    """Write ``results_dir/report.html`` and ``results_dir/plots/*.png``; returns the page.

    Imports matplotlib on first use only, so notebooks that never report stay light.
    """
    from twin.report import build_report

    return build_report(results_dir, scenario)


def calibrate(
    kind: str,
    source: str | Path | Any,
    columns: str | Mapping[str, str],
    out: str | Path | None = None,
    **options: Any,
) -> Any:
    """Fit scenarios to real records (``kind``: ``"tickets"`` or ``"occupancy"``).

    ``source`` is a CSV file or a pandas frame; ``columns`` maps roles to its columns
    (``"entry=In,exit=Out,amount=Paid"`` or a dict). Tickets take ``capacity``, ``currency``;
    occupancy takes ``train_until`` (a date, inclusive), ``sites`` and ``calendar`` (special
    days and weeks from counts, default True). With ``out`` the
    scenario YAMLs, CSV tables (the same frames as ``.frames``), ``estimates.json`` and the
    report are written there (``plots=False`` leaves out the PNGs and HTML). Returns a
    :class:`twin.calibrate.run.Calibration`; raises
    :class:`twin.calibrate.cleaning.CalibrationInputError` on inputs the caller can fix.
    """
    from twin.calibrate.run import calibrate_occupancy, calibrate_tickets

    if kind == "tickets":
        return calibrate_tickets(source, columns, out, **options)
    if kind == "occupancy":
        return calibrate_occupancy(source, columns, out, **options)
    raise ValueError(f"unknown calibration {kind!r}; allowed: tickets, occupancy")


# -- start from a state, forecast from now (issue 11) ------------------------------------------
from twin.scenario.state import StartState, StateError, load_state  # noqa: E402


def start_from(
    scenario: Scenario | str | Path,
    state: StartState | str | Path | Mapping[str, Any],
    *,
    warmup_hours: float | str = 0.0,
) -> Scenario:
    """``scenario`` beginning from ``state`` instead of an empty lot.

    ``state`` is a :class:`StartState`, a JSON/YAML state file or mapping (validated), or
    ``"steady"`` (the lot in its typical state at the scenario's start time, drawn from the
    model's own demand). A state moves the start to its time; the warm-up is 0 unless given.
    Raises :class:`StateError` (one line naming the file and field) on a state that is
    malformed or does not fit the facility.
    """
    from twin.sim.initial import StateMismatch
    from twin.sim.initial import start_from as _start_from

    if not isinstance(scenario, Scenario):
        scenario = load(scenario)
    name = "<state>"
    if isinstance(state, str) and state in ("steady", "empty"):
        resolved: Any = state
    elif isinstance(state, StartState):
        resolved = state
    elif isinstance(state, Mapping):
        resolved = load_state(dict(state))
    else:
        name = str(state)
        resolved = load_state(state)
    try:
        return _start_from(scenario, resolved, warmup_hours=warmup_hours)
    except StateMismatch as exc:
        raise StateError(f"{name}: {exc}") from None


def forecast(
    state: StartState | str | Path | Mapping[str, Any],
    scenario: Scenario | str | Path,
    *,
    hours: float = 4.0,
    replications: int = 20,
    seed: int | None = None,
    step_min: float = 5.0,
):
    """Occupancy from ``state`` over the next ``hours``: per lot, level and spot type, the
    mean and the 80% and 95% bands over ``replications`` runs, and when each is expected to
    fill (with its interval, or the probability that it does not fill within the horizon).
    See :mod:`twin.live.forecast`; returns a :class:`twin.live.forecast.Forecast`."""
    from twin.live.forecast import forecast as _forecast

    sc = start_from(scenario, state)
    return _forecast(sc, hours=hours, replications=replications, seed=seed, step_min=step_min)


# -- backtest: forecasts scored on data the model was not fitted on (issue 12) ------------------
def backtest(
    source: str | Path | Any,
    columns: str | Mapping[str, str],
    out: str | Path | None = None,
    *,
    train_until: str,
    horizons: Sequence[int] = (1, 2, 4),
    sites: Sequence[str] | None = None,
    replications: int = 200,
    seed: int = 0,
    test_days: int | None = None,
    plots: bool = True,
    refit_days: int | None = 7,
    online: bool = True,
) -> Any:
    """Calibrate an occupancy series on readings up to ``train_until`` and forecast from every
    hourly origin after it with the twin, seasonal naive and ETS (see
    :mod:`twin.calibrate.backtest`); the twin is refitted every ``refit_days`` test days on the
    readings before (None or 0: one fit at the cut); ``online`` corrects the twin's point
    forecast and bands day by day from its past errors (shrinkage toward seasonal naive,
    conformal bands; :mod:`twin.calibrate.backtest_bands`). Returns a
    :class:`twin.calibrate.backtest.Backtest` whose ``table`` is ``backtest.csv`` (site,
    horizon_h, method, n, mae, rmse, coverage80, coverage95) and whose ``frames`` are the CSV
    tables written to ``out`` (when given).
    Raises :class:`twin.calibrate.cleaning.CalibrationInputError` on inputs the caller can fix.
    """
    from twin.calibrate.backtest import backtest as _backtest

    return _backtest(
        source,
        columns,
        out,
        train_until=train_until,
        horizons=horizons,
        sites=list(sites) if sites else None,
        replications=replications,
        seed=seed,
        test_days=test_days,
        plots=plots,
        refit_days=refit_days,
        online=online,
    )


def mirror(
    source: Any,
    scenario: Scenario | str | Path,
    *,
    mapping: str | Path | None = None,
    speed: float | None = None,
    dead_letter: str | Path | None = None,
    prediction: int | None = 20,
    null_replications: int | None = None,
    seed: int | None = None,
    idle_s: float | None = 5.0,
    config: Any = None,
    intake: Any = None,
):
    """Mirror a lot's feed: ``source`` is a JSONL/CSV recording (replayed at ``speed``, None
    as fast as possible; ``mapping`` for a foreign ticket export), ``mqtt://HOST:PORT/TOPIC``
    (until ``idle_s`` quiet seconds), or an iterable of raw payloads (``parktwin.adapters``
    ``Raw``). Every payload is validated by the intake (bad ones dead-lettered to
    ``dead_letter``, counted by reason) and folded into the core objects of ``scenario``'s
    lot; with ``prediction`` replications (0: none) the divergence detectors compare it with
    the model, their alert thresholds calibrated on ``null_replications`` fault-free
    replications (default: the prediction's own; at least ``max(prediction, 2)``; more set a
    budget of a few false alarms a day less noisily). ``intake`` replaces the default
    ``Intake`` (e.g. other ``Tolerances``: a recorded feed re-published as fast as possible
    has receive times that say nothing about its devices' clocks). Returns a
    :class:`twin.live.mirror.Live`: ``.mirror`` (levels, alerts, ``state()``, ``forecast()``,
    ``snapshot()``) and ``.feed()`` (the intake's counts)."""
    from parktwin.adapters.sources import Intake
    from twin.live.divergence import for_scenario, null_replications_problem
    from twin.live.mirror import Live, Mirror, open_source

    problem = null_replications_problem(prediction or 0, null_replications, of="prediction")
    if problem is not None:
        raise ValueError(problem)
    sc = scenario if isinstance(scenario, Scenario) else load(scenario)
    divergence = (
        for_scenario(sc, prediction, seed, null_replications=null_replications)
        if prediction
        else None
    )
    if isinstance(source, str | Path):
        source = open_source(source, mapping=mapping, speed=speed, idle_s=idle_s)
    if intake is None:
        intake = Intake(dead_letter=dead_letter)
    live = Live(Mirror(sc, config, divergence=divergence), intake)
    try:
        return live.run(source)
    finally:
        live.intake.close()
        stop = getattr(source, "stop", None)
        if stop is not None:
            stop()


# -- replay of a recorded day (issue 11) ---------------------------------------------------------
def replay(
    log: str | Path,
    scenario: Scenario | str | Path,
    *,
    changes: Mapping[str, Any] | None = None,
    mapping: str | Path | None = None,
    out: str | Path | None = None,
    seed: int | None = None,
):
    """Run a recorded gate log's actual cars (arrivals and stays) through ``scenario`` as it
    is and, with ``changes`` (dotted-key overrides as ``--set`` gives them, e.g.
    ``{"tariff.per_period": 2.0}`` or a smaller facility), through the changed scenario, and
    compare per day with the log: arrivals, parked, turned away, revenue (as paid in the log,
    as charged in the runs), mean and peak occupancy. See :mod:`twin.live.replay`.

    ``log`` is a feed recording (JSONL or CSV of ``parktwin.adapters.events``) or, with
    ``mapping`` (a YAML column mapping), a foreign ticket export. With ``out``: ``days.csv``
    (the comparison), ``trace.csv`` (the cars as replayed), ``summary.json`` (totals, the
    intake's received/applied/dead-lettered counts, what the pairing set aside) and
    ``dead_letter.jsonl``. Returns a :class:`twin.live.replay.Replay`; raises
    :class:`twin.live.replay.ReplayError` or :class:`ScenarioError` (one line each) on inputs
    the caller can fix.
    """
    from twin.live.replay import read_log
    from twin.live.replay import replay as _replay
    from twin.outputs import write_frame, write_json

    base = scenario if isinstance(scenario, Scenario) else load(scenario)
    changed = None
    label = None
    if changes:
        if isinstance(scenario, Scenario):
            changed = load_mapping(scenario.model_dump(mode="json", exclude_unset=True), changes)
        else:
            changed = load(scenario, dict(changes))
        label = ", ".join(f"{k}={v}" for k, v in changes.items())
    dead = Path(out) / "dead_letter.jsonl" if out is not None else None
    if dead is not None:
        dead.parent.mkdir(parents=True, exist_ok=True)
        dead.unlink(missing_ok=True)  # the intake appends: start this replay's file afresh
    recorded = read_log(log, mapping=mapping, dead_letter=dead)
    result = _replay(recorded, base, changed, change=label, seed=seed)
    if out is not None:
        out = Path(out)
        write_frame(result.days, out / "days.csv")
        write_frame(result.trace, out / "trace.csv")
        totals = result.totals()
        write_json(
            out / "summary.json",
            {
                "log": str(log),
                "scenario": base.name,
                "change": label,
                "cars": len(recorded.cars),
                "open_at_end": int(recorded.cars["exit"].isna().sum()),
                "intake": recorded.intake,
                "set_aside": dict(recorded.set_aside),
                "totals": {
                    source: {k: (None if v != v else v) for k, v in row.items()}
                    for source, row in totals.to_dict(orient="index").items()
                },
            },
        )
    return result
