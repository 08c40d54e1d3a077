"""The Python API behind the CLI: what a notebook calls directly.

>>> from twin.api import load, run
>>> result = run(load("scenarios/surface_lot.yaml"), replications=2)   # doctest: +SKIP
>>> result.summary().loc["blocked_pct"]                                 # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from twin.executors import Executor, ExecutorError, make_executor
from twin.experiments import Progress, RunResult
from twin.experiments import run as _run
from twin.scenario.loader import ScenarioError, load_scenario
from twin.scenario.model import Scenario
from twin.sweep import SweepError, SweepProgress, SweepResult, load_sweep_file, make_spec
from twin.sweep import plan_sweep as _plan_sweep
from twin.sweep import run_sweep as _run_sweep

__all__ = [
    "Executor",
    "ExecutorError",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SweepError",
    "SweepResult",
    "load",
    "make_executor",
    "run",
    "sweep",
]


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Load and validate a scenario file; raises ScenarioError listing every problem."""
    return load_scenario(path, overrides)


def run(
    scenario: Scenario | str | Path,
    *,
    seed: int | None = None,
    days: float | None = None,
    replications: int | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> RunResult:
    """Run a scenario (object or file) with optional overrides of seed, horizon, replications.

    ``executor`` (from :func:`make_executor`, used as a context manager) runs the replications
    in parallel; the numbers are the same as a serial run's.
    """
    if not isinstance(scenario, Scenario):
        scenario = load(scenario)
    if days is not None:
        if days <= 0:
            raise ValueError("days must be > 0")
        scenario = scenario.model_copy(update={"horizon_days": days})
        if scenario.warmup_hours >= days * 24:
            raise ValueError(
                f"--days {days:g} is not longer than the warm-up ({scenario.warmup_hours:g} h)"
            )
    return _run(
        scenario, replications=replications, seed=seed, progress=progress, executor=executor
    )


def sweep(
    scenario: str | Path | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    out: str | Path,
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
) -> SweepResult:
    """Run a grid sweep of a scenario file and write it to ``out`` (see :mod:`twin.sweep`).

    Give ``scenario`` and ``grid`` (``{"facility.strategy": ["nearest", "spread"]}``), or a
    sweep ``file``; ``replications``, ``seed``, ``days`` and ``keep_occupancy`` override the
    file's. ``executor`` is an :class:`Executor` you manage, or a name (``serial``,
    ``processes``, ``dask``) that is started with ``workers``/``scheduler`` and closed here.
    Every point is validated before anything runs. Raises :class:`SweepError` (a
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
    if scenario is None or not grid:
        raise SweepError("sweep", ["give a scenario and at least one grid key, or a sweep file"])
    spec = make_spec(
        scenario,
        grid,
        replications=replications,
        seed=seed,
        days=days,
        keep_occupancy=keep_occupancy,
    )
    plan = _plan_sweep(spec)
    options = {"resume": resume, "overwrite": overwrite, "plots": plots, "progress": progress}
    if isinstance(executor, Executor):
        return _run_sweep(plan, out, executor=executor, **options)
    with make_executor(executor, workers=workers, scheduler=scheduler) as ex:
        return _run_sweep(plan, out, executor=ex, **options)
