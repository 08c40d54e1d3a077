"""Scoring divergence alerts against a ground truth of injected faults (``twin.live.emit``):
which alert caught which fault, how long after it began, and the alerts no fault explains
(false alarms). Used by benchmarks/bench_divergence.py, the tests and the operator notebook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Which alerts count as catching which injected fault (``subject`` checked for bay faults).
#: Revenue shows a payment outage (money stops coming in) and a surge (its cars pay when
#: they leave, hours later): it counts for both, within ``SHOWS_FOR_S`` of the fault's end.
CATCHES: dict[str, tuple[str, ...]] = {
    "sensor_stuck": ("sensor_vs_gate",),
    "sensor_dead": ("dead_sensor", "sensor_vs_gate"),
    "demand_surge": ("arrival_surge", "occupancy", "revenue"),
    "payment_outage": ("payment_outage", "revenue"),
    "counter_miss": ("counter_vs_gates", "counter_vs_sensors"),
}

#: Faults whose effect outlives them: a counter that missed cars stays off until recalibrated.
LASTING = ("counter_miss",)

#: How long after a fault's end an alert of each kind can still be its consequence (seconds):
#: a surge's cars pay when they leave, up to a long stay (~10 h commuters) after it ends.
SHOWS_FOR_S: dict[str, float] = {"revenue": 12 * 3600.0}


@dataclass
class Score:
    """Each fault's first catching alert and its delay; alerts no fault explains."""

    rows: list[dict[str, Any]]
    false_alarms: list[Any]
    days: float

    @property
    def false_per_day(self) -> float:
        return len(self.false_alarms) / self.days if self.days > 0 else float("nan")


def score(alerts: list[Any], truth: dict[str, Any], days: float, after_s: float = 7200.0) -> Score:
    """Match alerts to the ground truth's faults (times in core seconds from its epoch).

    An alert catches a fault if its kind is one of ``CATCHES[fault kind]``, it is raised
    between the fault's start and ``after_s`` past its end (``SHOWS_FOR_S`` for the kinds
    listed there; any time after, for the ``LASTING`` faults), and for a bay fault it names
    the bay (or is the site-wide "unseen car" alert). Every other alert is a false alarm.
    Each row also gives the first catching alert of each kind (``by_kind``: delays).
    """
    from datetime import datetime

    epoch = datetime.fromisoformat(truth["epoch"])

    def secs(x: str | None) -> float:
        return math.inf if x is None else (datetime.fromisoformat(x) - epoch).total_seconds()

    explained: set[int] = set()
    rows = []
    for f in truth["faults"]:
        start, end = secs(f["start"]), secs(f["end"])
        spot = f["params"].get("spot")
        hit = None
        by_kind: dict[str, float] = {}
        for k, a in enumerate(alerts):
            if a.kind not in CATCHES[f["kind"]]:
                continue
            lag = SHOWS_FOR_S.get(a.kind, after_s)
            until = math.inf if f["kind"] in LASTING else end + lag
            if not start <= a.raised_t <= until:
                continue
            if spot is not None and a.subject not in (spot, "unseen car"):
                continue
            explained.add(k)
            by_kind[a.kind] = min(by_kind.get(a.kind, math.inf), a.raised_t - start)
            if hit is None or a.raised_t < hit.raised_t:
                hit = a
        rows.append(
            {
                "fault": f["kind"],
                "detail": ", ".join(f"{k}={v}" for k, v in f["params"].items()),
                "start_s": start,
                "detected": hit is not None,
                "alert": hit.kind if hit else None,
                "delay_s": (hit.raised_t - start) if hit else None,
                "by_kind": by_kind,
            }
        )
    false = [a for k, a in enumerate(alerts) if k not in explained]
    return Score(rows, false, days)


__all__ = ["CATCHES", "LASTING", "SHOWS_FOR_S", "Score", "score"]
