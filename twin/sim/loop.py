"""The model's event loop: three time-ordered sources merged in SimPy's own order.

Arrivals (drawn before the run, so a presorted stream), departures of cars that parked on
arrival (they leave at arrival + dwell, also known before the run: one argsort, then a walk that
skips drivers who did not park on arrival), and SimPy's event queue for everything else (gate
passages, departures after waiting, diversions, components' events). The order is exactly
SimPy's (time, priority, event id): a stream departure carries the id it took when the car
parked. Most cars never touch the heap, so an event costs O(1) instead of O(log queue).

A function of its own (not a closure in :meth:`twin.sim.model.ParkingModel.run`): everything
it reads arrives as an argument, i.e. a fast local, and the per-car work stays in the model's
callbacks ``first`` (an arrival) and ``leave`` (a stream departure).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from heapq import heappop

import numpy as np
import simpy

from twin.sim.demand import Drivers
from twin.sim.events import DEPART, Call
from twin.sim.record import OFF_STREAM, ON_STREAM, UNDECIDED


def departure_stream(drivers: Drivers) -> tuple[np.ndarray, np.ndarray]:
    """Departure times if every car parked on arrival, in order, and whose they are; each
    ends with a sentinel (``inf``, driver ``n``) so the loop needs no bounds check."""
    n = len(drivers)
    leave_at = drivers.arrival + drivers.dwell
    by_leave = np.argsort(leave_at, kind="stable")
    return np.append(leave_at[by_leave], math.inf), np.append(by_leave, n).astype(np.int32)


def run_events(
    env: simpy.Environment,
    horizon: float,
    arrival: memoryview,
    dep_t: memoryview,
    dep_i: memoryview,
    stream_state: bytearray,
    eid_of: memoryview,
    paid_j: memoryview,
    first: Callable[[int, float], None],
    leave: Callable[[int, float], float],
) -> None:
    """Process every event before ``horizon``.

    ``stream_state`` per driver: UNDECIDED until its arrival has been handled, then ON_STREAM
    if it parked at once (``first`` sets that and its event id in ``eid_of``), OFF_STREAM if
    not (it may still park later, e.g. after waiting; that departure goes through the heap).
    ``paid_j`` receives what each stream departure paid, in departure order.
    """
    queue = env._queue
    env_step = env.step
    i = j = 0
    # The loop allocates only acyclic objects (sessions, events, heap entries), which
    # reference counting frees; the cyclic collector would rescan every live session and
    # event each few hundred allocations, a cost that grows with the lot's size.
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        while True:
            p = dep_i[j]
            state = stream_state[p]
            if state == OFF_STREAM:
                j += 1
                continue
            # (state UNDECIDED: driver p has not arrived yet, arrival[i] <= dep_t[j])
            ta = arrival[i]
            tp = dep_t[j]
            if queue:
                top = queue[0]
                td = top[0]
                if td <= ta and (
                    state == UNDECIDED
                    or td < tp
                    or (td == tp and (top[1], top[2]) < (DEPART, eid_of[p]))
                ):
                    if td >= horizon:
                        break
                    event = top[3]
                    if event.__class__ is Call:
                        # the model's own callbacks: SimPy's step without its generality
                        heappop(queue)
                        env._now = td
                        event.callbacks[0](event)
                    else:
                        env_step()  # any other SimPy event (processes, timeouts)
                    continue
            if state == ON_STREAM and tp <= ta:
                if tp >= horizon:
                    break
                env._now = tp
                # kept in departure order (written in sequence, not at a random driver)
                paid_j[j] = leave(p, tp)
                j += 1
                continue
            if ta >= horizon:
                break
            env._now = ta
            first(i, ta)
            if stream_state[i] == UNDECIDED:
                stream_state[i] = OFF_STREAM
            i += 1
    finally:
        if gc_enabled:
            gc.enable()
    env._now = horizon
