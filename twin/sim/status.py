"""Exact spot-status figures of a run, from the lots' status logs and the per-car records.

Every status change that is not a session's goes through ``Lot._apply`` and lands in
``Lot.status_log``, so the number of held (RESERVED) and closed (MAINTENANCE) spots is a step
function known at every instant; with the cars' entry and leave times, so is the number of
spots a walk-in could not get. The figures integrate those step functions over the measured
window [warm-up, horizon): no sampling, no interval error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from twin.core.types import SpotStatus

if TYPE_CHECKING:
    from twin.core.lot import Lot, Session
    from twin.scenario.model import Scenario

_RESERVED, _CLOSED = SpotStatus.RESERVED, SpotStatus.MAINTENANCE


def _steps(init: float, times: np.ndarray, deltas: np.ndarray, t0: float, t1: float):
    """The step function ``init + Σ deltas[t_i <= t]`` on [t0, t1): (segment starts, lengths,
    values)."""
    order = np.argsort(times, kind="stable")
    times, deltas = times[order], deltas[order]
    before = times <= t0
    start_value = init + deltas[before].sum()
    inside = (times > t0) & (times < t1)
    t_in, d_in = times[inside], deltas[inside]
    starts = np.concatenate(([t0], t_in))
    ends = np.concatenate((t_in, [t1]))
    values = start_value + np.concatenate(([0.0], np.cumsum(d_in)))
    return starts, ends - starts, values


def held_and_closed(lot: Lot) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
    """(held at the start, closed at the start, change times, held deltas, closed deltas)."""
    log = lot.status_log
    t = np.array([c[0] for c in log], dtype=float)
    dr = np.array([(c[3] is _RESERVED) - (c[2] is _RESERVED) for c in log], dtype=float)
    dc = np.array([(c[3] is _CLOSED) - (c[2] is _CLOSED) for c in log], dtype=float)
    return int(lot.n_reserved - dr.sum()), int(lot.n_closed - dc.sum()), t, dr, dc


def status_metrics(
    lots: Sequence[Lot],
    spot: np.ndarray,
    entry: np.ndarray,
    leave: np.ndarray,
    external: Sequence[tuple[int, Session]],
    scenario: Scenario,
) -> dict[str, float]:
    """``held_spot_h_per_day``, ``closed_spot_h_per_day`` and ``no_free_spot_pct`` (share of
    the measured time in which no spot of the whole facility was free: every one occupied,
    held or closed)."""
    t0, t1 = scenario.warmup_s, scenario.horizon_s
    if not t1 > t0:
        return {}
    days = (t1 - t0) / 86400.0
    init_r = init_c = 0
    times, d_r, d_c = [], [], []
    for lot in lots:
        r, c, t, dr, dc = held_and_closed(lot)
        init_r, init_c = init_r + r, init_c + c
        times.append(t)
        d_r.append(dr)
        d_c.append(dc)
    t_status = np.concatenate(times) if times else np.zeros(0)
    d_r_all = np.concatenate(d_r) if d_r else np.zeros(0)
    d_c_all = np.concatenate(d_c) if d_c else np.zeros(0)
    out = {}
    for name, init, deltas in (
        ("held_spot_h_per_day", init_r, d_r_all),
        ("closed_spot_h_per_day", init_c, d_c_all),
    ):
        _, length, value = _steps(init, t_status, deltas, t0, t1)
        out[name] = float((length * value).sum()) / 3600.0 / days
    # spots a walk-in cannot get: occupied (drivers and component-parked cars), held, closed
    parked = spot >= 0
    arrive_t = entry[parked]
    leave_t = leave[parked]
    ext_in = np.array([s.entry_t for _, s in external], dtype=float)
    ext_out = np.array([np.inf if s.exit_t is None else s.exit_t for _, s in external])
    leaves = np.concatenate((leave_t[~np.isnan(leave_t)], ext_out[np.isfinite(ext_out)]))
    t_all = np.concatenate((t_status, arrive_t, ext_in, leaves))
    d_all = np.concatenate(
        (
            d_r_all + d_c_all,
            np.ones(len(arrive_t) + len(ext_in)),
            -np.ones(len(leaves)),
        )
    )
    capacity = sum(lot.capacity for lot in lots)
    _, length, value = _steps(init_r + init_c, t_all, d_all, t0, t1)
    out["no_free_spot_pct"] = 100.0 * float(length[value >= capacity].sum()) / (t1 - t0)
    return out
