"""The Python API behind the CLI: what a notebook calls directly.

>>> from twin.api import load, run
>>> result = run(load("scenarios/surface_lot.yaml"), replications=2)   # doctest: +SKIP
>>> result.summary().loc["blocked_pct"]                                 # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twin.experiments import Progress, RunResult
from twin.experiments import run as _run
from twin.scenario.loader import ScenarioError, load_scenario
from twin.scenario.model import Scenario

__all__ = ["RunResult", "Scenario", "ScenarioError", "load", "run"]


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
) -> RunResult:
    """Run a scenario (object or file) with optional overrides of seed, horizon, replications."""
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
    return _run(scenario, replications=replications, seed=seed, progress=progress)
