"""The mirror's fold loop and the cyclic garbage collector (``twin.live.mirror.few_collections``).

While a feed is folded the collector's young threshold is raised (the mirror's heap is bounded;
the default rescans the kept log every few hundred events), and the caller's thresholds come
back afterwards, also when the source fails. Cyclic garbage is still collected during the loop.
"""

from __future__ import annotations

import gc

import pytest

from parktwin.adapters.sources import Intake, Raw
from twin import api
from twin.live.mirror import FOLD_GC_THRESHOLD, Live, Mirror, few_collections


@pytest.fixture(scope="module")
def scenario():
    return api.load("scenarios/downtown_garage.yaml")


@pytest.fixture
def thresholds():
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def payloads(seen: list[int], n: int = 5, garbage: int = 0):
    """``n`` malformed payloads (dead-lettered: the loop runs without a lot to fold), noting
    the collector's young threshold as each is read, after ``garbage`` reference cycles."""
    for k in range(n):
        for _ in range(garbage):
            cycle: list[object] = []
            cycle.append(cycle)
        seen.append(gc.get_threshold()[0])
        yield Raw("{not json", None, f"test:{k}")


def test_the_loop_raises_the_threshold_and_restores_the_callers(scenario, thresholds):
    gc.set_threshold(900, 7, 5)
    seen: list[int] = []
    live = Live(Mirror(scenario), Intake()).run(payloads(seen))
    assert seen == [FOLD_GC_THRESHOLD] * 5
    assert gc.get_threshold() == (900, 7, 5)
    assert live.feed()["by_reason"] == {"malformed_json": 5}
    # Mirror.consume too (already validated events)
    inside: list[int] = []

    def events():
        inside.append(gc.get_threshold()[0])
        yield from ()

    Mirror(scenario).consume(events())
    assert inside == [FOLD_GC_THRESHOLD]
    assert gc.get_threshold() == (900, 7, 5)


def test_restored_when_the_source_fails_and_when_nested(scenario, thresholds):
    def failing():
        yield Raw("{not json", None, "test:0")
        raise OSError("feed lost")

    with pytest.raises(OSError, match="feed lost"):
        Live(Mirror(scenario), Intake()).run(failing())
    assert gc.get_threshold() == (700, 10, 10)
    with few_collections():
        with few_collections(threshold=5):  # nested: the outer's setting holds, never lowered
            assert gc.get_threshold()[0] == FOLD_GC_THRESHOLD
        assert gc.get_threshold()[0] == FOLD_GC_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10)


def test_a_caller_who_disabled_automatic_collection_keeps_it_disabled(scenario, thresholds):
    gc.set_threshold(0)
    seen: list[int] = []
    Live(Mirror(scenario), Intake()).run(payloads(seen, n=2))
    assert seen == [0, 0]
    assert gc.get_threshold()[0] == 0


def test_cyclic_garbage_is_still_collected_during_the_loop(scenario, thresholds):
    collections = []

    def count(phase, info):
        if phase == "stop" and gc.get_threshold()[0] == FOLD_GC_THRESHOLD:  # in the loop
            collections.append(info["collected"])

    seen: list[int] = []
    gc.collect()
    gc.callbacks.append(count)
    try:
        Live(Mirror(scenario), Intake()).run(
            payloads(seen, n=3, garbage=FOLD_GC_THRESHOLD // 2 + 1000)
        )
    finally:
        gc.callbacks.remove(count)
    assert seen == [FOLD_GC_THRESHOLD] * 3
    # 1.5 thresholds of cycles: at least one collection ran inside the loop and freed them
    assert collections and sum(collections) >= FOLD_GC_THRESHOLD // 2
