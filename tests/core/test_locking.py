"""Claim strategies in the core: exact behaviour, and invariants under random interleavings.

The random tests play the scheduler: at every turn they start a claim, perform one pending
step of some transaction, release a granted unit, or let time pass, in an order hypothesis
chooses. After every step they check that no target has more holders than its capacity (so a
spot never has two), that the store's own count agrees and is never negative, and that a
refusal was legitimate. At the end they let every transaction run out and check that each
claim resolved and nothing is left blocked.
"""

from __future__ import annotations

from collections.abc import Hashable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.core.locking import (
    CLAIM_STRATEGIES,
    AtomicCounter,
    ClaimError,
    ClaimStrategy,
    Kind,
    Op,
    OptimisticVersion,
    PessimisticLock,
    SerialQueue,
    Status,
    Step,
    backoff_delay,
    make_claim_strategy,
)

NAMES = list(CLAIM_STRATEGIES)


# -- exact behaviour of each strategy --------------------------------------------------------
def test_pessimistic_second_claimant_blocks_and_waiters_are_served_fifo() -> None:
    s = PessimisticLock({"row": 2})
    for cid in "abc":
        assert s.begin(cid, "row", 0.0).next_op is Op.LOCK
    assert s.step("a", 1.0).next_op is Op.COMMIT  # a holds the row
    assert s.step("b", 2.0).status is Status.BLOCKED
    assert s.step("c", 3.0).status is Status.BLOCKED
    assert s.lock_owner("row") == "a" and s.waiting("row") == ("b", "c")
    with pytest.raises(ClaimError, match="blocked"):
        s.step("b", 3.5)
    done = s.step("a", 4.0)
    assert done.status is Status.GRANTED
    assert [w.claim_id for w in done.woken] == ["b"]  # FIFO: b before c
    assert done.woken[0].next_op is Op.COMMIT and s.lock_owner("row") == "b"
    woken_c = s.step("b", 5.0).woken
    assert [w.claim_id for w in woken_c] == ["c"]
    # the row is full when c reads it under the lock: c rolls back and is refused
    assert woken_c[0].next_op is Op.ABORT
    assert s.step("c", 6.0).status is Status.REFUSED
    assert s.lock_owner("row") is None
    assert s.held("row") == 2 and s.store_value("row") == 2
    assert s.stats.blocks == 2 and s.stats.wait_s == pytest.approx((4.0 - 2.0) + (5.0 - 3.0))


def test_pessimistic_pick_hands_the_row_to_the_chosen_waiter() -> None:
    """``pick(n)`` chooses among the n waiters, oldest first (PostgreSQL's order is not FIFO);
    the others keep waiting in their order, and a single waiter needs no choice."""
    asked: list[int] = []

    def newest(n: int) -> int:
        asked.append(n)
        return n - 1

    s = make_claim_strategy("pessimistic", {"row": 5}, pick=newest)
    for cid in "abcd":
        s.begin(cid, "row", 0.0)
    s.step("a", 1.0)  # a holds the row; b, c, d wait in that order
    for t, cid in enumerate("bcd", start=2):
        assert s.step(cid, float(t)).status is Status.BLOCKED
    done = s.step("a", 5.0)  # a commits
    assert [w.claim_id for w in done.woken] == ["d"] and s.waiting("row") == ("b", "c")
    assert [w.claim_id for w in s.step("d", 6.0).woken] == ["c"]
    assert [w.claim_id for w in s.step("c", 7.0).woken] == ["b"]
    assert asked == [3, 2]  # the last hand-off had one waiter: no choice asked
    assert s.step("b", 8.0).status is Status.GRANTED and s.held("row") == 4


def test_pessimistic_release_waits_for_the_row_lock() -> None:
    s = PessimisticLock({"row": 1})
    s.begin("a", "row", 0)
    s.step("a", 0)
    s.step("a", 0)  # granted
    s.begin("b", "row", 1)
    assert s.step("b", 1).next_op is Op.ABORT  # b holds the lock, sees the row full
    assert s.release("a", 2).next_op is Op.UPDATE
    assert s.step("a", 2).status is Status.BLOCKED  # the exit waits for b's transaction
    refused = s.step("b", 3)
    assert refused.status is Status.REFUSED
    assert refused.woken[0].claim_id == "a" and refused.woken[0].kind is Kind.RELEASE
    assert s.step("a", 4).status is Status.RELEASED
    assert s.held("row") == 0 and s.store_value("row") == 0


def test_optimistic_conflict_retry_and_give_up() -> None:
    s = OptimisticVersion({"row": 5}, max_retries=1)
    for cid in "ab":
        s.begin(cid, "row", 0)
        assert s.step(cid, 0).next_op is Op.CAS  # both read version 0
    assert s.step("a", 1).status is Status.GRANTED
    lost = s.step("b", 1)
    assert lost.status is Status.CONFLICT and lost.next_op is Op.READ and lost.attempt == 1
    assert s.step("b", 2).next_op is Op.CAS  # re-read: version 1
    s.begin("c", "row", 2)
    s.step("c", 2)
    assert s.step("c", 3).status is Status.GRANTED  # c overtakes b again
    gave_up = s.step("b", 3)
    assert gave_up.status is Status.FAILED and gave_up.attempt == 2
    assert (s.stats.conflicts, s.stats.retries, s.stats.failed) == (2, 1, 1)
    assert s.held("row") == 2 and s.version("row") == 2


def test_optimistic_release_leaves_readers_valid_and_the_count_exact() -> None:
    """A release between a read and its CAS must not cost a retry, nor be lost."""
    s = OptimisticVersion({"row": 1}, max_retries=0)
    s.begin("a", "row", 0)
    s.step("a", 0)
    s.step("a", 0)  # a holds the only unit
    s.begin("b", "row", 1)
    assert s.step("b", 1).status is Status.REFUSED  # full at the read
    s.release("a", 2)
    assert s.step("a", 2).status is Status.RELEASED
    s.begin("c", "row", 2)
    s.step("c", 2)  # c reads used 0
    s.begin("d", "row", 2)
    s.step("d", 2)  # d reads the same version
    assert s.step("c", 3).status is Status.GRANTED
    assert s.step("d", 3).status is Status.FAILED  # d lost to c; no retries allowed
    s.begin("e", "row", 4)
    s.step("e", 4)  # e reads used 1: refused, never over capacity
    assert s.held("row") == 1 and s.store_value("row") == 1
    assert s.stats.conflicts == 1
    two = OptimisticVersion({"row": 2}, max_retries=0)
    two.begin("g", "row", 0)
    two.step("g", 0)
    two.step("g", 0)  # g holds one of two units
    two.begin("f", "row", 1)
    two.step("f", 1)  # f reads used 1, version 1
    two.release("g", 2)
    two.step("g", 2)  # g's release lands between f's read and CAS
    assert two.version("row") == 1
    assert two.step("f", 3).status is Status.GRANTED  # no needless conflict, nothing lost
    assert two.store_value("row") == 1 and two.holders("row") == {"f"}


def test_optimistic_refuses_at_the_read_when_full() -> None:
    s = OptimisticVersion({"spot": 1})
    s.begin("a", "spot", 0)
    s.step("a", 0)
    s.step("a", 0)
    s.begin("b", "spot", 1)
    assert s.step("b", 1).status is Status.REFUSED
    assert s.stats.conflicts == 0


def test_atomic_counter_backs_out_and_counts_a_spurious_refusal() -> None:
    s = AtomicCounter({"lot": 1})
    s.begin("a", "lot", 0)
    assert s.step("a", 0).status is Status.GRANTED
    s.begin("b", "lot", 1)
    assert s.step("b", 1).next_op is Op.DECR  # INCR gave 2 > 1: back out
    assert s.store_value("lot") == 2  # raw counter above capacity, never granted
    s.release("a", 2)
    assert s.step("a", 2).status is Status.RELEASED
    assert s.store_value("lot") == 1 and s.held("lot") == 0
    s.begin("c", "lot", 3)
    assert s.step("c", 3).next_op is Op.DECR  # sees b's surplus: refused with a unit free
    assert s.step("b", 4).status is Status.REFUSED
    assert s.step("c", 5).status is Status.REFUSED
    assert s.store_value("lot") == 0
    assert s.stats.refused == 2 and s.stats.spurious_refusals == 1


def test_serial_queue_serves_in_arrival_order_one_at_a_time() -> None:
    s = SerialQueue({"x": 1, "y": 1})
    for cid, target in (("a", "x"), ("b", "y"), ("c", "x")):
        s.begin(cid, target, 0)
    assert s.step("a", 0).next_op is Op.SERVE and s.serving == "a"
    assert s.step("b", 0).status is Status.BLOCKED
    assert s.step("c", 0).status is Status.BLOCKED
    assert s.queued() == ("b", "c")
    first = s.step("a", 1)
    assert first.status is Status.GRANTED and first.woken[0].claim_id == "b"
    second = s.step("b", 2)
    assert second.status is Status.GRANTED and second.woken[0].claim_id == "c"
    third = s.step("c", 3)
    assert third.status is Status.REFUSED and third.woken == ()
    assert s.serving is None


@pytest.mark.parametrize("name", NAMES)
def test_protocol_misuse_is_an_error(name: str) -> None:
    s = make_claim_strategy(name, {"t": 1})
    assert isinstance(s, ClaimStrategy)
    with pytest.raises(ClaimError, match="unknown target"):
        s.begin(1, "nope", 0)
    with pytest.raises(ClaimError, match="holds no unit"):
        s.release(1, 0)
    with pytest.raises(ClaimError, match="no transaction"):
        s.step(1, 0)
    s.begin(1, "t", 5)
    with pytest.raises(ClaimError, match="already"):
        s.begin(1, "t", 5)
    with pytest.raises(ClaimError, match="backwards"):
        s.step(1, 4)


def test_bad_construction() -> None:
    with pytest.raises(ValueError, match="at least one target"):
        PessimisticLock({})
    with pytest.raises(ValueError, match="int >= 0"):
        AtomicCounter({"a": -1})
    with pytest.raises(ValueError, match="max_retries"):
        OptimisticVersion({"a": 1}, max_retries=-1)
    with pytest.raises(ValueError, match="allowed: pessimistic, optimistic, atomic, queue"):
        make_claim_strategy("redis", {"a": 1})


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    assert backoff_delay(1, 0.001, 0.05, 0.5) == pytest.approx(0.0005)
    assert backoff_delay(4, 0.001, 0.05, 0.5) == pytest.approx(0.004)
    assert backoff_delay(30, 0.001, 0.05, 0.999) == pytest.approx(0.04995)
    assert backoff_delay(3, 0.001, 0.05, 0.0) == 0.0
    with pytest.raises(ValueError):
        backoff_delay(0, 0.001, 0.05, 0.5)
    with pytest.raises(ValueError):
        backoff_delay(1, 0.001, 0.05, 1.0)


# -- random interleavings --------------------------------------------------------------------
class Scheduler:
    """Drives one strategy with the caller's choices and checks the invariants after each step.

    Keeps its own book of who holds what, built only from the steps it saw, and compares it
    with the strategy's view, so a strategy that lost or duplicated a grant is caught.
    """

    def __init__(self, strategy: ClaimStrategy, caps: dict[Hashable, int]) -> None:
        self.s = strategy
        self.caps = caps
        self.book: dict[Hashable, set[int]] = {k: set() for k in caps}
        self.target: dict[int, Hashable] = {}
        self.runnable: dict[int, Step] = {}  # next_op is known
        self.blocked: set[int] = set()
        self.final: dict[int, Status] = {}  # claims' answers
        self.granted_ever: set[int] = set()
        self.releasable: list[int] = []
        self.t = 0.0
        self.steps = 0

    def start(self, target: Hashable) -> None:
        cid = len(self.target)
        self.target[cid] = target
        self.runnable[cid] = self.s.begin(cid, target, self.t)

    def release(self, cid: int) -> None:
        self.releasable.remove(cid)
        self.runnable[cid] = self.s.release(cid, self.t)

    def advance(self, cid: int) -> None:
        before = self.runnable.pop(cid)
        if before.status is Status.CONFLICT:
            assert isinstance(self.s, OptimisticVersion) and before.next_op is Op.READ
        step = self.s.step(cid, self.t)
        self.steps += 1
        self._record(step)
        for woken in step.woken:
            assert woken.claim_id in self.blocked, "woke a claim that was not waiting"
            assert woken.status is Status.PENDING and woken.next_op is not None
            self.blocked.discard(woken.claim_id)
            self.runnable[woken.claim_id] = woken
        self.check(step)

    def _record(self, step: Step) -> None:
        cid, target = step.claim_id, self.target[step.claim_id]
        if step.status is Status.BLOCKED:
            self.blocked.add(cid)
        elif step.status is Status.GRANTED:
            assert step.kind is Kind.CLAIM and cid not in self.granted_ever
            self.granted_ever.add(cid)
            self.book[target].add(cid)
            self.releasable.append(cid)
            self.final[cid] = step.status
        elif step.status is Status.RELEASED:
            assert step.kind is Kind.RELEASE
            self.book[target].remove(cid)
        elif step.status in (Status.REFUSED, Status.FAILED):
            assert step.kind is Kind.CLAIM
            self.final[cid] = step.status
            if step.status is Status.REFUSED:
                self.check_refusal(target)
        else:
            self.runnable[cid] = step

    def check_refusal(self, target: Hashable) -> None:
        """Locks, versions and the queue refuse only a full target; INCR-then-check may not."""
        if isinstance(self.s, AtomicCounter):
            return
        assert len(self.book[target]) == self.caps[target], "refused with a unit free"

    def overshooting(self, target: Hashable) -> int:
        """Atomic claims between a losing INCR and its DECR: the counter's legal surplus."""
        return sum(
            1
            for cid, st_ in self.runnable.items()
            if self.target[cid] == target and st_.kind is Kind.CLAIM and st_.next_op is Op.DECR
        )

    def check(self, step: Step) -> None:
        if isinstance(self.s, OptimisticVersion) and self.s.max_retries is not None:
            assert step.attempt <= self.s.max_retries + 1, "retried beyond max_retries"
        if isinstance(self.s, SerialQueue):
            serving = [c for c, st_ in self.runnable.items() if st_.next_op is Op.SERVE]
            assert len(serving) <= 1, f"the one consumer serves {serving} at once"
        for target, cap in self.caps.items():
            holders = self.book[target]
            assert len(holders) <= cap, f"{target!r}: {len(holders)} holders > capacity {cap}"
            assert self.s.holders(target) == holders
            assert self.s.held(target) == len(holders)
            value = self.s.store_value(target)
            assert value >= 0
            if isinstance(self.s, AtomicCounter):
                assert value == len(holders) + self.overshooting(target)
            else:
                assert value == len(holders) <= cap

    def drain(self, pick) -> None:
        """Run every transaction out; with bounded retries this must terminate."""
        budget = 50 * (len(self.target) + 1) * (len(self.caps) + 1) * 10
        while self.runnable:
            budget -= 1
            assert budget > 0, "transactions did not resolve (livelock?)"
            order = sorted(self.runnable)
            self.advance(order[pick(len(order))])
        assert not self.blocked, f"claims left blocked for ever: {sorted(self.blocked)}"


ACTIONS = st.sampled_from(["start", "start", "step", "step", "step", "release", "wait"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(NAMES),
    caps=st.lists(st.integers(0, 3), min_size=1, max_size=3),
    data=st.data(),
)
def test_invariants_hold_under_random_interleavings(name: str, caps: list[int], data) -> None:
    capacities: dict[Hashable, int] = {f"t{i}": c for i, c in enumerate(caps)}
    strategy = make_claim_strategy(name, capacities, max_retries=2)
    sched = Scheduler(strategy, capacities)
    targets = list(capacities)
    for _ in range(data.draw(st.integers(1, 60), label="turns")):
        action = data.draw(ACTIONS)
        if action == "start" and len(sched.target) < 25:
            sched.start(data.draw(st.sampled_from(targets)))
        elif action == "step" and sched.runnable:
            sched.advance(data.draw(st.sampled_from(sorted(sched.runnable))))
        elif action == "release" and sched.releasable:
            sched.release(data.draw(st.sampled_from(list(sched.releasable))))
        else:
            sched.t += data.draw(st.floats(0, 1))
    sched.drain(lambda n: data.draw(st.integers(0, n - 1)))
    # every claim got an answer; a retried claim ended granted, refused or failed
    assert set(sched.final) == set(sched.target)
    assert strategy.stats.claims == len(sched.target)
    answers = list(sched.final.values())
    assert strategy.stats.granted == answers.count(Status.GRANTED)
    assert strategy.stats.refused == answers.count(Status.REFUSED)
    assert strategy.stats.failed == answers.count(Status.FAILED)
    if name != "optimistic":
        assert strategy.stats.failed == 0 and strategy.stats.conflicts == 0
    # giving everything back empties every target and the store agrees
    for cid in list(sched.releasable):
        sched.release(cid)
    sched.drain(lambda n: 0)
    for target in targets:
        assert strategy.held(target) == 0 and strategy.store_value(target) == 0


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(NAMES), order=st.permutations(list(range(8))))
def test_a_single_spot_is_never_granted_twice(name: str, order: list[int]) -> None:
    """Eight claimants race for one spot, each step in a hypothesis-chosen order."""
    strategy = make_claim_strategy(name, {"spot": 1}, max_retries=3)
    sched = Scheduler(strategy, {"spot": 1})
    for _ in order:
        sched.start("spot")
    # interleave: one step of each claimant in the drawn order, round after round
    while sched.runnable:
        for cid in order:
            if cid in sched.runnable:
                sched.advance(cid)
    assert not sched.blocked
    granted = [cid for cid, status in sched.final.items() if status is Status.GRANTED]
    assert len(granted) == 1
    assert strategy.holders("spot") == frozenset(granted)


@pytest.mark.parametrize("max_retries", [0, 1, 4])
def test_bounded_retries_end_even_against_an_adversarial_schedule(max_retries: int) -> None:
    """Between each read and CAS of claim 0, a fresh claimant commits: claim 0 can never win,
    and must give up after exactly ``max_retries`` retries instead of spinning for ever."""
    s = OptimisticVersion({"row": 100}, max_retries=max_retries)
    sched = Scheduler(s, {"row": 100})
    sched.start("row")
    rivals = 0
    while 0 in sched.runnable:
        if sched.runnable[0].next_op is Op.CAS:
            sched.start("row")
            rivals += 1
            while rivals in sched.runnable:
                sched.advance(rivals)
        sched.advance(0)
    assert sched.final[0] is Status.FAILED
    assert s.stats.conflicts == max_retries + 1 and s.stats.retries == max_retries
    assert rivals == max_retries + 1 and s.held("row") == rivals


def test_the_checker_catches_a_double_grant() -> None:
    """Control: a broken strategy that grants without checking fails the invariant."""

    class Broken(AtomicCounter):
        def _perform(self, tx, op, t):  # grants every INCR
            self._value[tx.target] += 1
            return self._finish(tx, Status.GRANTED, t)

    sched = Scheduler(Broken({"spot": 1}), {"spot": 1})
    sched.start("spot")
    sched.start("spot")
    sched.advance(0)
    with pytest.raises(AssertionError, match="holders > capacity"):
        sched.advance(1)


# -- RemoteClaim: the core deciding for a store that performs the operations -----------------
def test_remote_claim_decides_as_the_in_memory_strategies() -> None:
    from twin.core.locking import Outcome, RemoteClaim

    pess = RemoteClaim("pessimistic", "a", "row")
    assert pess.start(0.0).next_op is Op.LOCK
    assert pess.observe(Outcome(used=2, capacity=2), 1.0).next_op is Op.ABORT  # full
    assert pess.observe(Outcome(), 2.0).status is Status.REFUSED
    rel = RemoteClaim("pessimistic", "a", "row", Kind.RELEASE)
    assert rel.start(0.0).next_op is Op.UPDATE
    assert rel.observe(Outcome(used=1, capacity=2), 1.0).next_op is Op.COMMIT
    assert rel.observe(Outcome(), 2.0).status is Status.RELEASED

    opt = RemoteClaim("optimistic", "b", "row", max_retries=1)
    opt.start(0.0)
    step = opt.observe(Outcome(used=0, capacity=1, version=7), 0.0)
    assert (step.next_op, opt.seen_version) == (Op.CAS, 7)
    step = opt.observe(Outcome(matched=False), 0.0)
    assert (step.status, step.attempt, step.next_op) == (Status.CONFLICT, 1, Op.READ)
    opt.observe(Outcome(used=0, capacity=1, version=8), 0.0)
    step = opt.observe(Outcome(matched=False), 0.0)
    assert (step.status, step.attempt) == (Status.FAILED, 2)  # gave up after max_retries
    with pytest.raises(ClaimError):
        opt.observe(Outcome(), 0.0)  # nothing left to perform

    atom = RemoteClaim("atomic", "c", "row")
    atom.start(0.0)
    assert atom.observe(Outcome(used=3, capacity=2), 0.0).next_op is Op.DECR  # the surplus
    assert atom.observe(Outcome(used=2, capacity=2), 0.0).status is Status.REFUSED

    que = RemoteClaim("queue", "d", "row")
    assert que.start(0.0).next_op is Op.ENQUEUE
    assert que.observe(Outcome(), 0.0).next_op is Op.SERVE
    with pytest.raises(ClaimError):
        que.observe(Outcome(), 0.0)  # the consumer must answer with a decision
    with pytest.raises(ValueError, match="unknown claim strategy"):
        RemoteClaim("nope", "e", "row")


@pytest.mark.parametrize("name", NAMES)
def test_remote_claims_on_a_store_of_record_match_the_in_memory_strategy(name: str) -> None:
    """Sequential claims through RemoteClaim, with each operation performed on a plain dict,
    give the same answers as the in-memory strategy: one set of decisions."""
    from twin.core.locking import Outcome, RemoteClaim, serve_request

    cap, row = 2, {"used": 0, "version": 0, "counter": 0}

    def perform(claim: RemoteClaim, op: Op) -> Outcome:
        if op in (Op.LOCK, Op.READ):
            return Outcome(used=row["used"], capacity=cap, version=row["version"])
        if op is Op.COMMIT:
            row["used"] += 1 if claim.kind is Kind.CLAIM else -1
        if op is Op.CAS:
            row["used"] += 1
            row["version"] += 1
            return Outcome(matched=True)
        if op is Op.INCR:
            row["counter"] += 1
            return Outcome(used=row["counter"], capacity=cap)
        if op is Op.DECR:
            row["counter"] -= 1
        if op is Op.SERVE:
            status, row["used"] = serve_request(claim.kind, row["used"], cap)
            return Outcome(status=status)
        if op is Op.UPDATE and name == "pessimistic":
            return Outcome(used=row["used"], capacity=cap)
        if op is Op.UPDATE:
            row["used"] -= 1
        return Outcome()

    def run(claim: RemoteClaim) -> Status:
        step = claim.start(0.0)
        while not step.status.final:
            step = claim.observe(perform(claim, step.next_op), 0.0)
        return step.status

    core = make_claim_strategy(name, {"row": cap})
    for i, kind in enumerate([Kind.CLAIM] * 3 + [Kind.RELEASE] + [Kind.CLAIM] * 2):
        cid = i if kind is Kind.CLAIM else 0
        remote = run(RemoteClaim(name, cid, "row", kind))
        step = core.begin(cid, "row", 0.0) if kind is Kind.CLAIM else core.release(cid, 0.0)
        while not step.status.final:
            step = core.step(cid, 0.0)
        assert remote is step.status, (name, i)
