"""One replication: run the model once and turn its record into figures and frames.

A pure function of its arguments (scenario, replication index, seed), so executors can run it
anywhere (:mod:`twin.executors`) and the statistics over many of them (:mod:`twin.experiments`)
do not depend on where it ran.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.results import lanes_frame, metrics, occupancy_frame, rates_frame, vehicles_frame
from twin.scenario.model import Scenario
from twin.sim.model import RunRecord, simulate
from twin.tasks import FRAMES

__all__ = ["Replication", "from_record", "replicate"]


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
    rates: pd.DataFrame | None = None
    extra_frames: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)


def replicate(
    scenario: Scenario,
    replication: int,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
    frames: tuple[str, ...] = FRAMES,
) -> Replication:
    """Run replication ``replication`` alone; the result depends only on its arguments.

    ``frames`` names the tables to build (the others come back empty): a sweep that keeps
    only figures should not pay for per-vehicle tables.
    """
    rec = simulate(scenario, replication=replication, seed=seed, progress=progress)
    return from_record(rec, frames)


def from_record(rec: RunRecord, frames: tuple[str, ...] = FRAMES) -> Replication:
    """The figures and the frames named in ``frames`` of a finished run's record."""
    keep_vehicles = "vehicles" in frames and rec.scenario.output.vehicles
    return Replication(
        index=rec.replication,
        metrics=metrics(rec),
        vehicles=vehicles_frame(rec) if keep_vehicles else pd.DataFrame(),
        occupancy=occupancy_frame(rec) if "occupancy" in frames else pd.DataFrame(),
        lanes=lanes_frame(rec) if "lanes" in frames else pd.DataFrame(),
        trace_dropped=rec.drivers.trace_dropped,
        rates=rates_frame(rec) if rec.scenario.pricing_policy is not None else None,
        extra_frames={
            name: _with_replication(frame, rec.replication)
            for name, frame in rec.component_frames.items()
        },
    )


def _with_replication(frame: pd.DataFrame, replication: int) -> pd.DataFrame:
    """A component's frame with ``replication`` as its first column, ``int64`` as in every
    other frame, so the frames of a run read and join alike (docs/data_dictionary.md)."""
    out = frame.copy()
    out.insert(0, "replication", np.full(len(out), replication, dtype=np.int64))
    return out
