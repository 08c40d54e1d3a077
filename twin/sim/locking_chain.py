"""The serial chain on a locked row, reconstructed from per-operation client timestamps.

A trace holds one record per pessimistic claim and release, ``(row, kind, start, first, done)``
(kind 0 a claim, 1 a release): when the client started it, when its locking statement's answer
came back (the row is then its own) and when its COMMIT's answer came back (the row was handed
on just before), in seconds on one clock. The live clients record it on ``CLOCK_MONOTONIC``,
which every process shares (``adapters/stores/load.py``), and the simulated study records the
same instants at its simulated clients (:func:`twin.sim.locking_study.trace_point`), so the two
chains are measured by one rule.

On one row, ordered by when each got the lock:

* **hold**, ``done - first``: the row as its holder's client sees it held, from the lock's
  answer to the commit's;
* **hand-off**, ``first(next) - done``, counted when the next one had asked before the row was
  freed (``start(next) < done``): from the holder's commit answer to the next one's grant,
  the time the row spends being passed on;
* **busy**: the share of the window the row spent held or being handed on; near 1 the row is
  the bottleneck, and the row's ceiling is one lock per ``hold + hand-off``;
* **order**: at each grant with two or more waiters, the granted one's rank among them by when
  they asked (``answers[0]``, BEGIN's answer, after which the locking statement goes out; else
  ``start``), 0 the oldest and 1 the newest: a lock manager's FIFO queue gives 0 every time,
  any waiter alike (random order) 0.5 on average.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["TRACE_COLUMNS", "row_chain", "wakeups_from_round_trips"]

TRACE_COLUMNS = ("row", "kind", "start", "first", "done")


def _ms(values: pd.Series, q: float | None = None) -> float:
    if values.empty:
        return math.nan
    return 1000 * float(values.mean() if q is None else values.quantile(q))


def row_chain(
    trace: Iterable[tuple],
    *,
    row: int = 0,
    since: float = -math.inf,
    until: float = math.inf,
) -> dict[str, float]:
    """The chain on ``row`` for the locks granted in ``[since, until)``: counts, hold and
    hand-off (mean, p50, p95, in ms; a claim's and a release's mean hold apart), the share of
    hand-offs that had a waiter, the busy share of the span and the locks per second."""
    records = [(*r[:5], r[5][0] if len(r) > 5 and r[5] else r[2]) for r in trace]
    frame = pd.DataFrame(records, columns=[*TRACE_COLUMNS, "asked"])
    frame = frame[frame["row"] == row].sort_values("first", kind="stable").reset_index(drop=True)
    ranks = _ranks(frame, since, until)
    hold = frame["done"] - frame["first"]
    nxt_first, nxt_start = frame["first"].shift(-1), frame["start"].shift(-1)
    waited = (nxt_start < frame["done"]).fillna(False)
    handoff = (nxt_first - frame["done"]).where(waited)
    inside = (frame["first"] >= since) & (frame["first"] < until)
    hold, handoff, frame, waited = hold[inside], handoff[inside], frame[inside], waited[inside]
    span = float(frame["first"].iloc[-1] - frame["first"].iloc[0]) if len(frame) > 1 else math.nan
    busy = float(hold.sum() + handoff.clip(lower=0).sum())
    kind = frame["kind"]
    return {
        "locks": float(len(frame)),
        "locks_per_s": (len(frame) - 1) / span if span and span > 0 else math.nan,
        "hold_ms": _ms(hold),
        "hold_p50_ms": _ms(hold, 0.5),
        "hold_p95_ms": _ms(hold, 0.95),
        "claim_hold_ms": _ms(hold[kind == 0]),
        "release_hold_ms": _ms(hold[kind == 1]),
        "handoff_ms": _ms(handoff.dropna()),
        "handoff_p50_ms": _ms(handoff.dropna(), 0.5),
        "handoff_p95_ms": _ms(handoff.dropna(), 0.95),
        "waited_share": float(np.mean(waited)) if len(waited) else math.nan,
        "busy": busy / span if span and span > 0 else math.nan,
        "contested": float(len(ranks)),
        "oldest_share": float(np.mean(ranks == 0)) if len(ranks) else math.nan,
        "mean_rank": float(np.mean(ranks)) if len(ranks) else math.nan,
    }


def _ranks(frame: pd.DataFrame, since: float, until: float) -> np.ndarray:
    """Per grant in the window with two or more waiters: the granted one's rank among them
    by asking time, scaled to 0 (oldest) … 1 (newest)."""
    asked, first = frame["asked"].to_numpy(), frame["first"].to_numpy()
    out = []
    for i in range(len(frame)):
        if not since <= first[i] < until:
            continue
        later = asked[i:]
        waiting = np.sort(later[later < first[i]])  # asked before this grant, granted from it on
        if len(waiting) >= 2:
            out.append(np.searchsorted(waiting, asked[i]) / (len(waiting) - 1))
    return np.asarray(out, dtype=float)


def wakeups_from_round_trips(seconds: Iterable[float]) -> tuple[float, float]:
    """The run queue's wait per wake-up as round trips suffer it: (mean in ms, coefficient of
    variation), from round trips that wait for no lock and no flush.

    Each round trip is its fixed part (the network, the client's and the server's CPU) plus two
    waits, the server's process woken by the request and the client's by the answer. The fixed
    part is taken as the fastest 1 %; the excess over it, ``e``, is the two waits' sum, so one
    wait has mean ``E[e] / 2`` and, the two being independent and alike, a coefficient of
    variation ``sqrt(2) * sd(e) / E[e]``. Exponential waits give 1; a machine that now and
    then deschedules a process for a time slice gives more."""
    trips = np.asarray(list(seconds), dtype=float) * 1000
    excess = np.clip(trips - np.quantile(trips, 0.01), 0, None)
    mean = float(excess.mean())
    if mean <= 0:
        return 0.0, 1.0
    return mean / 2, float(np.clip(math.sqrt(2) * excess.std() / mean, 0.05, 20))
