"""The private SimPy internals the model drives, checked one by one with a message that says
what changed.

For speed the model (``twin.sim.model``; ``twin.sim.ops_sensors`` too) pushes
``(time, priority, event id, event)`` tuples straight onto ``env._queue``, takes ids from
``env._eid``, sets ``env._now`` and hands ``env.step()`` bare objects carrying only
``callbacks``, ``_ok`` and ``_value``. None of that is SimPy's public API, so pyproject.toml
pins SimPy below its next major version; this test names the broken assumption if a SimPy
release changes them anyway.
"""

from __future__ import annotations

import itertools
import tomllib
from heapq import heappush
from pathlib import Path

import simpy
from packaging.requirements import Requirement

from twin.sim.events import ARRIVE, DEPART, Call, call_at

ROOT = Path(__file__).resolve().parents[2]
HOW = (
    "SimPy {version} changed a private internal the model drives ({what}); twin/sim/events.py "
    "(call_at), twin/sim/loop.py (the event loop), twin/sim/model.py (the per-car callbacks) "
    "and twin/sim/ops_sensors.py rely on it. Adapt them, or keep the pin on simpy in "
    "pyproject.toml."
)


def broken(what: str) -> str:
    return HOW.format(version=simpy.__version__, what=what)


def test_simpy_is_pinned_to_the_major_version_tested() -> None:
    major = int(simpy.__version__.split(".")[0])
    assert major == 4, broken(f"tested with SimPy 4, found major version {major}")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # the simulation's dependencies are the `sim` extra (the base install stays light)
    spec = next(
        Requirement(r) for r in project["optional-dependencies"]["sim"] if r.startswith("simpy")
    )
    assert simpy.__version__ in spec.specifier and "5.0" not in spec.specifier, (
        f"pyproject.toml must allow the SimPy tested ({simpy.__version__}) and pin it below 5, "
        f"has {spec}"
    )


def test_environment_keeps_its_clock_queue_and_ids_where_the_model_reads_them() -> None:
    env = simpy.Environment()
    assert isinstance(getattr(env, "_queue", None), list), broken("env._queue is not a list")
    assert isinstance(getattr(env, "_eid", None), itertools.count), broken(
        "env._eid is not an itertools.count"
    )
    assert getattr(env, "_now", None) == env.now, broken("env._now is not env.now")
    env._now = 12.5
    assert env.now == 12.5, broken("setting env._now does not move env.now")


def test_scheduled_events_are_time_priority_id_event_tuples() -> None:
    """The model merges its presorted streams with SimPy's heap in (time, priority, id) order
    and mixes its own entries with SimPy's timeouts (priority NORMAL = 1)."""
    env = simpy.Environment()
    timeout = env.timeout(5.0)
    assert len(env._queue) == 1, broken("a timeout is not one entry of env._queue")
    entry = env._queue[0]
    assert isinstance(entry, tuple) and len(entry) == 4, broken(
        f"a queue entry is {entry!r}, not (time, priority, id, event)"
    )
    t, priority, eid, event = entry
    assert (t, event) == (5.0, timeout), broken("queue entries do not start with the time")
    assert priority == ARRIVE and simpy.core.NORMAL == ARRIVE and simpy.core.URGENT == DEPART, (
        broken("SimPy's event priorities are no longer URGENT = 0, NORMAL = 1")
    )
    assert next(env._eid) == eid + 1, broken("event ids are not drawn in order from env._eid")


def test_step_runs_a_bare_event_in_heap_order() -> None:
    """``env.step()`` must accept the model's bare events (callbacks, _ok, _value only), pop
    the smallest (time, priority, id) first and set the clock to its time."""
    env = simpy.Environment()
    seen: list[tuple[str, float]] = []
    env.timeout(3.0).callbacks.append(lambda ev: seen.append(("timeout", env.now)))
    call_at(env, 3.0, DEPART, lambda ev: seen.append((ev._value, env.now)), "departure")
    call_at(env, 1.0, ARRIVE, lambda ev: seen.append((ev._value, env.now)), "arrival")
    heappush(
        env._queue, (2.0, -1, next(env._eid), Call(lambda ev: seen.append(("first", 2.0)), None))
    )
    for _ in range(4):
        env.step()
    assert seen == [("arrival", 1.0), ("first", 2.0), ("departure", 3.0), ("timeout", 3.0)], broken(
        f"env.step() ran the model's events as {seen}"
    )
    assert not env._queue and env.now == 3.0, broken("env.step() did not consume the queue")
