"""What a replication task is: the unit of work every executor runs.

Kept apart from :mod:`twin.executors` (where tasks run) and :mod:`twin.replication` (how one
runs) so that both can use it without importing each other. It imports nothing heavy, because
:mod:`twin.executors` imports it and the CLI imports that for ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twin.scenario.model import Scenario

__all__ = ["FRAMES", "Task"]

#: The frames a replication can carry besides its figures. Per-vehicle records are by far the
#: largest (about 0.45 MB per replication-day of the downtown garage), so callers that never
#: show or write them (``parktwin run`` without ``--out``) leave ``vehicles`` out.
FRAMES: tuple[str, ...] = ("vehicles", "occupancy", "lanes")


@dataclass(frozen=True)
class Task:
    """One replication to run. Picklable: it travels to worker processes and Dask workers.

    ``keep`` lists the frames the caller needs (a subset of :data:`FRAMES`); the others come
    back empty. ``tag`` is the caller's own label (e.g. the sweep point), returned untouched.
    """

    scenario: Scenario
    replication: int
    seed: int
    keep: tuple[str, ...] = FRAMES
    tag: Any = None

    def __post_init__(self) -> None:
        unknown = set(self.keep) - set(FRAMES)
        if unknown:
            raise ValueError(f"unknown frames {sorted(unknown)}; allowed: {list(FRAMES)}")
