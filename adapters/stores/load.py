"""A load client: one process, one connection, claims arriving at scheduled times.

The coordinator (``twin.locking_live``) starts several of these and sends each the same kind
of order per load point: its share of the offered rate, the study's row shares and stays, the
shared start instant, and the prefilled units it is to release. The client draws its Poisson
arrivals, runs them in order against its store (every decision the core's, through
:func:`run_claim`), releases granted units after their stays, and sends back one record per
claim: scheduled arrival, answer time (seconds from the start), final status, conflicts. With
``order["trace"]`` it also sends one record per claim and release, ``(row, kind, start, first,
done, answers)``: kind 0 a claim, 1 a release; when it started, when its first operation
returned (a pessimistic claim's locking read, a release's locking UPDATE), when its last did
(COMMIT), and on PostgreSQL when each statement's answer arrived (BEGIN, the locking read, ...),
seconds from the start on ``CLOCK_MONOTONIC``, which every process on the machine shares. A
claim's latency is taken from its *scheduled* arrival, so a client that falls behind shows the
wait instead of hiding it (no coordinated omission). This module imports only the core, the
stores and numpy, so a client process starts in a fraction of a second.
"""

from __future__ import annotations

import heapq
import random
import time

import numpy as np

from twin.core.locking import Status

from . import open_store, run_claim, run_release

__all__ = ["client_main", "run_client_point", "target_name"]


def target_name(row: int) -> str:
    """Rows as level/type names over three levels, so the availability cache has levels."""
    return f"L{row % 3}/row{row}"


def client_main(strategy: str, url: str, ns: str, params: dict, conn) -> None:
    """Process entry point: open the store, say "ready", run each order until None."""
    store = open_store(strategy, url, namespace=ns, pool_size=1)
    try:
        conn.send("ready")
        while (order := conn.recv()) is not None:
            conn.send(run_client_point(store, params, order))
    finally:
        store.close()


def run_client_point(store, params: dict, order: dict) -> dict[str, list]:
    """One load point on this client's connection; see the module docstring."""
    shares, stays = params["shares"], order["stays"]
    rate, stop, t0 = order["rate"], order["stop"], order["t0"]
    seq = np.random.SeedSequence(params["seed"], spawn_key=(order["mtps"], order["index"]))
    gen = np.random.Generator(np.random.PCG64(seq))
    n = int(gen.poisson(rate * stop)) if rate > 0 else 0
    arrival = np.sort(gen.uniform(0, stop, n)).tolist()  # a Poisson process on [0, stop)
    rows = gen.choice(len(shares), size=n, p=shares).tolist()
    stay1 = gen.exponential(1.0, n).tolist()
    rng = random.Random(int(gen.integers(2**31)))
    answer = [float("nan")] * n
    status = [""] * n  # "" = not answered before the run stopped
    conflicts = [0] * n
    heap: list[tuple[float, int, int, str]] = [(a, i, -1, "") for i, a in enumerate(arrival)]
    heap += [(t, n + j, row, cid) for j, (t, row, cid) in enumerate(order["releases"])]
    heapq.heapify(heap)
    retries, backoff = params["max_retries"], params["backoff_ms"]
    prefix = f"{order['mtps']}-{order['index']}-"
    seen = [0]
    trace: list[tuple] | None = [] if order.get("trace") else None
    marks: list[float] = []
    answers: list[float] | None = None
    if trace is not None and hasattr(store, "marks"):  # PostgreSQL: every statement's answer
        answers = store.marks = []

    def count(step) -> None:
        seen[0] += step.status is Status.CONFLICT
        if trace is not None:
            marks.append(time.monotonic() - t0)

    def mark(_step) -> None:
        marks.append(time.monotonic() - t0)

    while heap:
        t, i, row, cid = heapq.heappop(heap)
        now = time.monotonic() - t0
        if t >= stop or now >= stop:
            break
        if t > now:
            time.sleep(t - now)
        begun = time.monotonic() - t0
        marks.clear()
        if answers is not None:
            answers.clear()
        if i >= n:  # a release: of a prefilled unit or of a unit granted here
            run_release(store, cid, target_name(row), on_step=mark if trace is not None else None)
            if trace is not None:
                trace.append((row, 1, begun, marks[0], marks[-1], _since(answers, t0)))
            continue
        row, seen[0] = rows[i], 0
        step = run_claim(
            store,
            prefix + str(i),
            target_name(row),
            max_retries=retries,
            backoff_ms=backoff,
            rng=rng,
            on_step=count,
        )
        done = time.monotonic() - t0
        answer[i], status[i], conflicts[i] = done, step.status.value, seen[0]
        if trace is not None:
            trace.append((row, 0, begun, marks[0], marks[-1], _since(answers, t0)))
        if step.status is Status.GRANTED:
            heapq.heappush(heap, (done + stays[row] * stay1[i], n + i, row, prefix + str(i)))
    out = {"arrival": arrival, "answer": answer, "status": status, "conflicts": conflicts}
    if trace is not None:
        out["trace"] = trace
    return out


def _since(times: list[float] | None, t0: float) -> tuple[float, ...]:
    return tuple(t - t0 for t in times) if times else ()
