"""The leanest scheduling the model does on SimPy's event queue.

The model creates an event per car that does not leave on the presorted departure stream, so
it pushes bare ``(time, priority, id, event)`` tuples onto ``env._queue`` itself instead of
building ``simpy.Event`` objects (tests/sim/test_simpy_internals.py checks the SimPy internals this
relies on).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush

import simpy

DEPART = 0  # event priorities: departures first at equal times
ARRIVE = 1


class Call:
    """The leanest object SimPy's ``Environment.step`` accepts as an event.

    ``step`` needs only ``callbacks`` and ``_ok``; a full ``simpy.Event`` costs several times
    more to build, and the model creates one per vehicle.
    """

    __slots__ = ("_ok", "_value", "callbacks")

    def __init__(self, callback: Callable, value: object) -> None:
        self.callbacks = [callback]
        self._ok = True
        self._value = value


def call_at(
    env: simpy.Environment, t: float, priority: int, callback: Callable, value: object
) -> None:
    """Schedule ``callback(event)`` at absolute time ``t``.

    Absolute, not ``now + delay``: with a delay the event time is ``now + (t - now)``, which
    can differ from ``t`` in the last bit and break ties that the model's records rely on.
    The per-car callbacks in :meth:`twin.sim.model.ParkingModel.run` push the same tuple
    inline, with recycled events: they run millions of times.
    """
    heappush(env._queue, (t, priority, next(env._eid), Call(callback, value)))
