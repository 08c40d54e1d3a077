"""Scheduled closures (``facility.closures``): levels or spots out of service on a timetable.

A component that acts on its schedule only, never per car, so the model keeps its per-car fast
paths. Each window of each closure is a named claim on the lot (``Lot.close``/``Lot.reopen``):
the lot decides what the spots' statuses are, so a permit or reservation hold that ends during
a closure leaves its spot closed, and a car parked when the closure starts keeps its spot
until it leaves (the spot closes then).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from twin.sim.components import Component, ModelContext, register

if TYPE_CHECKING:
    from twin.core.lot import Lot
    from twin.scenario.model import ClosureSpec, Scenario

DAY_S = 86400.0
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _closures_of(scenario: Scenario) -> list[tuple[int, list[ClosureSpec]]] | None:
    found = [(k, spec.facility.closures) for k, spec in enumerate(scenario.lot_specs)]
    found = [(k, c) for k, c in found if c]
    return found or None


def spots_of(lot: Lot, closure: ClosureSpec, where: str) -> list[int]:
    """Indexes of the spots a closure takes out of service (one-line error for unknown ids)."""
    if closure.levels is not None:
        wanted = {lv.index for lv in lot.levels if lv.name in closure.levels}
        return [s.index for s in lot.spots if s.level in wanted]
    by_id = {s.id: s.index for s in lot.spots}
    unknown = [sid for sid in closure.spots or () if sid not in by_id]
    if unknown:
        sample = ", ".join(list(by_id)[:3])
        raise ValueError(
            f"{where}.spots: unknown spot id {unknown[0]!r} (allowed: the lot's spot ids, "
            f"e.g. {sample})"
        )
    return [by_id[sid] for sid in closure.spots or ()]


def windows(closure: ClosureSpec, start: datetime, horizon_s: float) -> list[tuple[float, float]]:
    """The closure's windows as (begin, end) core seconds overlapping [0, horizon)."""
    midnight = datetime(start.year, start.month, start.day)
    first = (midnight - start).total_seconds()  # <= 0: the start day's midnight
    a, b = closure.window_s
    dates = set(closure.dates) if closure.dates is not None else None
    out = []
    n_days = math.ceil((horizon_s - first) / DAY_S) + 1
    for d in range(-1, n_days):  # from the day before: a window past midnight reaches in
        day = midnight + timedelta(days=d)
        if _DAYS[day.weekday()] not in closure.days:
            continue
        if dates is not None and day.date() not in dates:
            continue
        t0 = first + d * DAY_S + a
        t1 = first + d * DAY_S + b
        if t1 > 0.0 and t0 < horizon_s:
            out.append((max(t0, 0.0), t1))
    return out


@register("closures", order=50, spec=_closures_of)
class Closures(Component):
    """Closes and reopens spots on the scenario's timetable; serves waiting drivers on reopen."""

    name = "closures"
    keeps_sessions = False

    def __init__(self, spec: list[tuple[int, list[ClosureSpec]]], scenario: Scenario) -> None:
        self.spec = spec
        self.scenario = scenario

    def start(self, ctx: ModelContext) -> None:
        super().start(ctx)
        for k, closures in self.spec:
            lot = ctx.lots[k]
            for j, closure in enumerate(closures):
                where = f"facility.closures[{j}]"
                spots = spots_of(lot, closure, where)
                for w, (t0, t1) in enumerate(windows(closure, self.scenario.start, ctx.horizon)):
                    reason = f"closure[{j}]:{closure.name or ''}#{w}"
                    ctx.call_at(t0, self._closer(lot, spots, reason))
                    if t1 < ctx.horizon:
                        ctx.call_at(t1, self._opener(k, lot, spots, reason))

    def _closer(self, lot: Lot, spots: list[int], reason: str):
        def close(t: float) -> None:
            lot.close(spots, t, reason)

        return close

    def _opener(self, k: int, lot: Lot, spots: list[int], reason: str):
        def reopen(t: float) -> None:
            lot.reopen(spots, t, reason)
            self.ctx.spot_freed(k, t)

        return reopen
