"""Client processes for tests/adapters/test_stores.py (a module of its own so spawned children can
import it): each opens its own connection and claims and releases units of a small lot."""

from __future__ import annotations

import os
import random
import time

from parktwin.adapters.stores import open_store, run_claim, run_release
from twin.core.locking import Kind, RemoteClaim, Status


def churn(strategy, url, ns, caps, seed, claims, tally, peak, results, hold_ms=2.0):
    """Claim a random target ``claims`` times; hold each grant a moment, then release it.

    ``tally[i]`` counts this lot's holders of target ``i`` across processes: raised after a
    grant came back, lowered before its release is sent, so it never exceeds the true number
    of holders; ``peak[i]`` keeps its maximum. A double grant shows as ``peak > capacity``.
    """
    targets = list(caps)
    rng = random.Random(seed)
    counts = {s.value: 0 for s in (Status.GRANTED, Status.REFUSED, Status.FAILED)}
    store = None
    try:
        store = open_store(strategy, url, namespace=ns, pool_size=1)
        for i in range(claims):
            idx = rng.randrange(len(targets))
            target, cid = targets[idx], f"{seed}-{i}"
            step = run_claim(store, cid, target, max_retries=5, backoff_ms=(0.5, 5.0), rng=rng)
            counts[step.status.value] += 1
            if step.status is not Status.GRANTED:
                continue
            with tally.get_lock():
                tally[idx] += 1
                peak[idx] = max(peak[idx], tally[idx])
            time.sleep(rng.random() * hold_ms / 1000)
            with tally.get_lock():
                tally[idx] -= 1
            assert run_release(store, cid, target).status is Status.RELEASED
        results.put((seed, counts, None))
    except BaseException as exc:  # the parent reports it; a child's traceback is easy to miss
        results.put((seed, counts, repr(exc)))
    finally:
        if store is not None:
            store.close()


def hold_then_lock(url, ns, target, ready):
    """Commit a grant on ``target``, then take its row lock in a second claim and wait there,
    mid-transaction, until killed."""
    store = open_store("pessimistic", url, namespace=ns, pool_size=2)
    assert run_claim(store, "kept", target).status is Status.GRANTED
    claim = RemoteClaim("pessimistic", "doomed", target, Kind.CLAIM)
    store.perform(claim, claim.start(0.0).next_op)  # LOCK: row locked, transaction open
    ready.put(os.getpid())
    time.sleep(600)
