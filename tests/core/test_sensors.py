"""Sensors, counters and displays: the detection layer between the lot's truth and what drivers
see (``twin.core.sensors``), its SimPy failure process (``twin.sim.sensors``) and the
``sensors:`` scenario spec (``twin.scenario.sensors``).

Scripted scenarios state every event, so the expected measures are computed by hand in the
comments; a brute-force reference recomputes every estimate from per-spot state to check the
O(1) aggregates.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats

from twin.core.facility import Level, build_spots
from twin.core.lot import Lot
from twin.core.sensors import (
    AvailabilityEstimator,
    ConfidenceModel,
    Detection,
    Display,
    DisplayAudit,
    LevelCounters,
    SensorBank,
    SensorMode,
    Source,
    guided_search,
)
from twin.core.types import SpotStatus, SpotType, Vehicle
from twin.scenario.sensors import SensorsSpec
from twin.sim.sensors import SensorLayer, SensorRngs

H = 600.0  # half-life used by most tests: 10 min
CAR = Vehicle("car")


def make_lot(per_level: tuple[int, ...] = (4, 4)) -> Lot:
    levels = [Level(k, f"P{k + 1}", 60.0 * k) for k in range(len(per_level))]
    spots = build_spots(
        [(lv, {SpotType.REGULAR: n}) for lv, n in zip(levels, per_level, strict=True)]
    )
    return Lot(spots, levels, strategy="first_fit")


def make_estimator(
    detection: str = "both",
    levels: tuple[int, ...] = (4,),
    occupied: tuple[bool, ...] | None = None,
    threshold: float = 0.5,
    t0: float = 0.0,
) -> tuple[SensorBank, LevelCounters, AvailabilityEstimator]:
    spot_levels = [lv for lv, n in enumerate(levels) for _ in range(n)]
    occupied = occupied or (False,) * len(spot_levels)
    bank = SensorBank(spot_levels, occupied, ConfidenceModel(H, threshold), t0, len(levels))
    initial = [0] * len(levels)
    for lv, occ in zip(spot_levels, occupied, strict=True):
        initial[lv] += occ
    counters = LevelCounters(initial)
    return bank, counters, AvailabilityEstimator(detection, list(levels), bank, counters)


# --------------------------------------------------------------------------- confidence


def test_confidence_halves_every_half_life_and_stale_age_follows_the_threshold():
    model = ConfidenceModel(H, 0.25)
    assert model.confidence(0.0) == 1.0
    assert model.confidence(H) == pytest.approx(0.5)
    assert model.confidence(3 * H) == pytest.approx(0.125)
    assert model.stale_after == pytest.approx(2 * H)  # 0.5 ** 2 = 0.25
    assert model.trusted(2 * H) and not model.trusted(2 * H + 1e-6)
    assert ConfidenceModel(H, 0.0).stale_after == math.inf
    with pytest.raises(ValueError, match="half_life_s"):
        ConfidenceModel(0.0, 0.5)
    with pytest.raises(ValueError, match="threshold"):
        ConfidenceModel(H, 1.5)


def test_silent_sensor_confidence_decays_from_when_it_was_last_heard():
    bank, _, _ = make_estimator(levels=(2,))
    bank.set_mode(0, SensorMode.SILENT, 100.0)
    assert bank.confidence(0, 100.0) == 1.0
    assert bank.confidence(0, 100.0 + H) == pytest.approx(0.5)
    assert bank.confidence(1, 100.0 + H) == 1.0  # a talking sensor stays at 1
    bank.set_mode(0, SensorMode.HEALTHY, 100.0 + 2 * H)  # repaired: talks again
    assert bank.confidence(0, 100.0 + 5 * H) == 1.0


def test_fallback_to_counter_arithmetic_switches_exactly_at_the_threshold():
    # 4 bays, bays 0 and 1 occupied; the gateway goes down at t=100, then car 0 leaves at
    # t=150: the sensors cannot say so, the exit counter can.
    bank, counters, est = make_estimator(occupied=(True, True, False, False))
    bank.set_gateway(0, False, 100.0)
    bank.car_left(0, 150.0)
    counters.car_left(0)
    stale_at = 100.0 + bank.model.stale_after  # threshold 0.5: one half-life
    assert stale_at == pytest.approx(100.0 + H)

    before = est.estimate(0, stale_at)  # confidence == threshold: still trusted
    assert before.source is Source.SENSORS
    assert before.free == 2  # the frozen readings: stale and now wrong
    assert before.confidence == pytest.approx(0.5)

    after = est.estimate(0, stale_at + 1e-6)  # just below the threshold: counters take over
    assert after.source is Source.COUNTERS
    assert after.free == 3  # capacity 4 - counted occupancy 1 == the truth
    assert after.confidence == 1.0  # counter_confidence
    assert bank.n_stale[0] == 4

    bank.set_gateway(0, True, stale_at + 10.0)  # back: sensors resynchronise with the truth
    back = est.estimate(0, stale_at + 10.0)
    assert back == (3, Source.SENSORS, 1.0)
    assert bank.n_stale[0] == 0


def test_spot_sensor_mode_keeps_stale_readings_with_decayed_confidence():
    bank, _, _ = make_estimator(occupied=(True, False, False, False))
    est = AvailabilityEstimator("spot_sensors", [4], bank)
    bank.set_mode(0, SensorMode.SILENT, 0.0)
    bank.car_left(0, 10.0)  # unseen
    e = est.estimate(0, 3 * H)  # long stale: no counters to fall back on
    assert e.free == 3  # one bay still believed occupied
    assert e.source is Source.SENSORS
    assert e.confidence == pytest.approx((3 + 0.125) / 4)


def test_blend_uses_trusted_sensors_and_fills_stale_bays_from_counters():
    # 4 bays; bays 0 and 1 go silent and stale; cars come and go on all bays; counters exact.
    bank, counters, est = make_estimator()
    for i in (0, 1):
        bank.set_mode(i, SensorMode.SILENT, 0.0)
    t = 2 * H  # both stale
    for i, arrive in [(0, True), (2, True), (1, True), (0, False)]:
        (bank.car_arrived if arrive else bank.car_left)(i, t)
        (counters.car_entered if arrive else counters.car_left)(0)
        truth = 4 - sum(bank.present)
        e = est.estimate(0, t)
        assert e.source is Source.BLEND
        assert e.free == truth
        # 2 talking sensors at 1, 2 bays inferred from counters at counter_confidence 1
        assert e.confidence == 1.0
        t += 1.0
    # a counter that misses cars is clamped to what the stale bays can hold
    for _ in range(5):
        counters.car_entered(0)
    assert est.estimate(0, t).free == 4 - sum(bank.present[2:]) - 2  # stale bays "all full"


# --------------------------------------------------------------------------- counters


def test_counter_arithmetic_with_misses_drifts_by_exactly_the_misses():
    counters = LevelCounters([3, 0])
    est = AvailabilityEstimator("counters", [10, 5], counters=counters)
    assert est.estimate(0, 0.0) == (7, Source.COUNTERS, 1.0)
    counters.car_entered(0)
    counters.car_entered(0, missed=True)  # really 5 cars, counted 4
    counters.car_left(0)
    counters.car_left(0)
    counters.car_left(0, missed=True)  # really 2 cars, counted 3 - 1 = ... see below
    true_occupied = 3 + 2 - 3
    assert counters.occupied(0) == 3 + 1 - 2 == 2
    assert counters.drift(0) == counters.occupied(0) - true_occupied == 0  # misses cancel
    counters.car_left(0, missed=True)
    assert counters.drift(0) == 1  # a missed exit over-counts
    assert est.estimate(0, 1.0).free == 10 - 2
    # drift beyond the level's bounds is clamped
    for _ in range(4):
        counters.car_left(1)
    assert counters.occupied(1) == -4
    assert est.estimate(1, 1.0).free == 5
    for _ in range(12):
        counters.car_entered(1)
    assert est.estimate(1, 1.0).free == 0
    counters.calibrate(1, 2)
    assert counters.occupied(1) == 2 and counters.drift(1) == 0
    assert est.estimate(1, 1.0).free == 3


# --------------------------------------------------------------------------- truth when healthy


@pytest.mark.parametrize("detection", ["spot_sensors", "counters", "both"])
def test_healthy_devices_estimate_exactly_the_lots_truth(detection):
    lot = make_lot((5, 3, 4))
    bank = SensorBank.from_lot(lot, ConfidenceModel(H, 0.5))
    counters = LevelCounters(lot.occupied_by_level)
    est = AvailabilityEstimator(detection, lot.capacity_by_level, bank, counters)
    rnd = random.Random(7)
    open_sessions = []
    t = 0.0
    for _ in range(400):
        t += rnd.expovariate(1 / 30)
        roll = rnd.random()
        if roll < 0.5 and lot.n_available:
            s = lot.allocate(CAR, t)
            open_sessions.append(s)
            bank.car_arrived(s.spot.index, t)
            counters.car_entered(s.spot.level)
        elif roll < 0.9 and open_sessions:
            s = open_sessions.pop(rnd.randrange(len(open_sessions)))
            lot.release(s.ticket, t)
            bank.car_left(s.spot.index, t)
            counters.car_left(s.spot.level)
        else:  # take a free bay out of service or put one back (sensors read it free)
            spot = rnd.choice(lot.spots)
            if spot.status is SpotStatus.AVAILABLE:
                lot.set_status(spot.index, SpotStatus.MAINTENANCE, t)
            elif spot.status is SpotStatus.MAINTENANCE:
                lot.set_status(spot.index, SpotStatus.AVAILABLE, t)
            lv = spot.level
            held = lot.capacity_by_level[lv] - lot.occupied_by_level[lv] - sum(lot.available[lv])
            est.set_held(lv, held)
        for lv in range(3):
            e = est.estimate(lv, t)
            assert e.free == sum(lot.available[lv])
            assert e.confidence == 1.0
            assert e.source is (Source.COUNTERS if detection == "counters" else Source.SENSORS)
    assert open_sessions  # the walk really filled the lot a bit


# --------------------------------------------------------------------------- failure modes


def test_stuck_sensors_report_their_fixed_value_until_repaired():
    bank, _, est = make_estimator(occupied=(True, False, False, False))
    bank.set_mode(0, SensorMode.STUCK_OCCUPIED, 10.0)
    bank.set_mode(1, SensorMode.STUCK_OCCUPIED, 10.0)  # a free bay now reads occupied
    assert est.estimate(0, 10.0).free == 2  # truth 3
    bank.car_left(0, 20.0)  # stuck: no change reported
    bank.car_arrived(1, 20.0)
    assert bank.reading[:2] == [True, True]
    assert est.estimate(0, 20.0) == (2, Source.SENSORS, 1.0)  # stuck looks perfectly healthy
    bank.set_mode(2, SensorMode.STUCK_FREE, 30.0)
    bank.car_arrived(2, 31.0)
    assert est.estimate(0, 31.0).free == 2  # truth 1: bay 2 hidden
    bank.set_mode(0, SensorMode.HEALTHY, 40.0)  # repair resynchronises
    bank.set_mode(2, SensorMode.HEALTHY, 40.0)
    assert bank.reading[:3] == [False, True, True]
    assert bank.reading_t[0] == 40.0
    assert est.estimate(0, 40.0).free == 4 - sum(bank.present) == 2


def test_silent_sensor_freezes_its_reading_and_gateway_outage_silences_a_whole_level():
    bank, _, _ = make_estimator(levels=(2, 2))
    bank.set_mode(0, SensorMode.SILENT, 5.0)
    bank.car_arrived(0, 6.0)
    assert bank.reading[0] is False and bank.reading_t[0] == 0.0
    bank.set_gateway(1, False, 7.0)
    assert bank.n_silent == [1, 2]
    bank.car_arrived(3, 8.0)
    assert bank.reading[3] is False
    bank.set_mode(2, SensorMode.STUCK_OCCUPIED, 9.0)  # fails during the outage: no report
    assert bank.reading[2] is False
    bank.set_gateway(1, True, 10.0)
    assert bank.reading[2:] == [True, True] and bank.reading_t[2:] == [10.0, 10.0]
    bank.set_mode(3, SensorMode.SILENT, 11.0)
    bank.set_gateway(1, False, 12.0)
    bank.set_gateway(1, True, 13.0)
    assert bank.n_silent == [1, 1]  # its own failure keeps sensor 3 silent
    assert bank.heard_t[3] == 11.0


# --------------------------------------------------------------------------- brute-force reference


class Reference:
    """Per-spot state replayed from scratch: what each sensor said, and the estimate by scan."""

    def __init__(self, spot_levels, occupied, model):
        self.level, self.model = spot_levels, model
        self.present = list(occupied)
        self.mode = [SensorMode.HEALTHY] * len(spot_levels)
        self.up = [True] * (max(spot_levels) + 1)
        self.reading = list(occupied)
        self.heard = [None] * len(spot_levels)  # None while talking

    def talking(self, i):
        return self.mode[i] is not SensorMode.SILENT and self.up[self.level[i]]

    def settle(self, t):
        for i in range(len(self.level)):
            if self.talking(i):
                self.heard[i] = None
                self.reading[i] = {
                    SensorMode.STUCK_OCCUPIED: True,
                    SensorMode.STUCK_FREE: False,
                }.get(self.mode[i], self.present[i])
            elif self.heard[i] is None:
                self.heard[i] = t

    def estimate(self, detection, level, t, counted, cap):
        bays = [i for i in range(len(self.level)) if self.level[i] == level]
        age = {i: 0.0 if self.heard[i] is None else t - self.heard[i] for i in bays}
        conf = {i: self.model.confidence(age[i]) for i in bays}
        trusted = [i for i in bays if self.model.trusted(age[i])]
        stale = [i for i in bays if i not in trusted]
        if detection == "counters":
            return cap - min(max(counted, 0), cap), 1.0
        if detection == "spot_sensors" or not stale:
            return sum(not self.reading[i] for i in bays), sum(conf.values()) / cap
        trusted_occ = sum(self.reading[i] for i in trusted)
        stale_occ = min(max(counted - trusted_occ, 0), len(stale))
        free = sum(not self.reading[i] for i in trusted) + len(stale) - stale_occ
        return free, (sum(conf[i] for i in trusted) + len(stale)) / cap


ops = st.lists(
    st.tuples(
        st.sampled_from([0.0, 1.0, 60.0, 400.0, 2000.0, 5e5]),  # includes decay-weight rebases
        st.sampled_from(["arrive", "leave", "mode", "gateway", "query"]),
        st.integers(0, 6),
        st.integers(0, 3),
        st.booleans(),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(ops, st.sampled_from(["spot_sensors", "counters", "both"]), st.sampled_from([0.3, 0.9]))
def test_o1_aggregates_match_a_brute_force_scan(script, detection, threshold):
    spot_levels = [0, 0, 0, 0, 1, 1, 1]
    occupied = [True, False, True, False, False, True, False]
    bank = SensorBank(spot_levels, occupied, ConfidenceModel(H, threshold), 0.0, 2)
    counters = LevelCounters([2, 1])
    est = AvailabilityEstimator(detection, [4, 3], bank, counters)
    ref = Reference(spot_levels, occupied, bank.model)
    t = 0.0
    for dt, op, i, k, missed in script:
        t += dt
        lv = spot_levels[i]
        if op == "arrive" and not ref.present[i]:
            ref.present[i] = True
            bank.car_arrived(i, t)
            counters.car_entered(lv, missed)
        elif op == "leave" and ref.present[i]:
            ref.present[i] = False
            bank.car_left(i, t)
            counters.car_left(lv, missed)
        elif op == "mode":
            ref.mode[i] = SensorMode(k)
            bank.set_mode(i, k, t)
        elif op == "gateway":
            ref.up[k % 2] = missed
            bank.set_gateway(k % 2, missed, t)
        ref.settle(t)
        for level, cap in ((0, 4), (1, 3)):
            free, conf = ref.estimate(detection, level, t, counters.occupied(level), cap)
            got = est.estimate(level, t)
            assert got.free == free
            assert got.confidence == pytest.approx(conf, abs=1e-9)


class CountingList(list):
    """A list that counts element reads and writes: the per-spot arrays under observation."""

    touched = 0

    def __getitem__(self, key):
        CountingList.touched += 1
        return super().__getitem__(key)

    def __setitem__(self, key, value):
        CountingList.touched += 1
        super().__setitem__(key, value)

    def __iter__(self):
        CountingList.touched += len(self)
        return super().__iter__()


def test_estimate_never_reads_per_spot_state():
    n = 2_000
    bank, _, est = make_estimator(levels=(n // 2, n // 2))
    for i in range(0, n, 7):
        bank.car_arrived(i, 1.0)
    for i in range(0, n, 11):
        bank.set_mode(i, SensorMode.SILENT, 2.0)  # silent, deadlines pending in the heap
    for name in ("level", "present", "mode", "reading", "reading_t", "heard_t", "talking"):
        setattr(bank, name, CountingList(getattr(bank, name)))
    bank.stale = CountingList(bank.stale)
    bank._generation = CountingList(bank._generation)
    CountingList.touched = 0
    for q in range(1_000):
        est.estimate(q % 2, 3.0 + q * 0.01)  # before any sensor turns stale
    assert CountingList.touched == 0
    # expiring touches only the sensors that expire, once each (a handful of reads apiece)
    silent = len(range(0, n, 11))
    est.estimate(0, 2.0 + bank.model.stale_after + 1.0)
    assert bank.n_stale[0] + bank.n_stale[1] == silent
    assert 0 < CountingList.touched <= 8 * silent
    CountingList.touched = 0
    for q in range(1_000):
        est.estimate(q % 2, 5 * H + q)
    assert CountingList.touched == 0
    bank.car_arrived(1, 5 * H)  # control: an event does touch per-spot state
    assert CountingList.touched > 0


# --------------------------------------------------------------------------- displays and audit


def test_display_shows_the_last_published_value_until_its_next_refresh():
    bank, counters, est = make_estimator()
    board = Display("board", est, 60.0, [4], 0.0)
    assert board.shown == [4] and not board.lot_shows_full()
    for i in range(4):
        bank.car_arrived(i, 10.0 + i)
        counters.car_entered(0)
    assert est.estimate(0, 20.0).free == 0  # the estimate knows at once ...
    assert board.free(0) == 4  # ... the board still shows the old figure
    board.refresh(60.0)
    assert board.shown == [0] and board.shown_t == [60.0] and board.lot_shows_full()
    assert board.refreshes == 2  # the first on construction


def test_audit_of_a_scripted_display_by_hand():
    # one level; truth and display in seconds:
    #   true 2 on [0,30), 1 on [30,45), 0 on [45,70), 1 on [70,120)
    #   shown 2 on [0,60), 0 on [60,120)
    audit = DisplayAudit([2], [2], 0.0)
    audit.update(0, 30.0, true_free=1)
    audit.update(0, 45.0, true_free=0)
    audit.update(0, 60.0, shown=0)
    audit.update(0, 70.0, true_free=1)
    audit.close(120.0)
    assert audit.free_when_full_s == [15.0]  # [45,60): shows 2, none free
    assert audit.full_when_free_s == [50.0]  # [70,120): shows FULL, 1 free
    assert audit.wrong_s(0) == 65.0
    assert audit.phantom_free_spot_s == [1 * 15 + 2 * 15]  # [30,45) by 1, [45,60) by 2
    assert audit.phantom_full_spot_s == [1 * 50]
    with pytest.raises(ValueError, match="backwards"):
        audit.update(0, 100.0, shown=1)


def test_guided_search_counts_wrong_levels_and_skipped_space():
    assert guided_search([3, 2], [3, 2]) == (0, 0, 0)
    assert guided_search([3, 2, 1], [0, 0, 1]) == (2, 2, 0)  # two levels promised, full
    assert guided_search([0, 2], [1, 2]) == (1, 0, 1)  # level 0 hidden by a FULL sign
    assert guided_search([1, 1], [0, 0]) == (None, 2, 0)
    assert guided_search([1, 1], [1, 1], order=[1, 0]) == (1, 0, 0)


# --------------------------------------------------------------------------- SimPy layer


def spec(**kw) -> SensorsSpec:
    return SensorsSpec.model_validate(kw)


def script(env, lot, layer, events):
    """Scripted parks (+) and leaves (-): [(t, +1 | -ticket)], through the layer's hooks."""
    sessions = {}

    def run():
        for t, what in events:
            yield env.timeout(t - env.now)
            if what > 0:
                s = lot.allocate(CAR, env.now)
                sessions[s.ticket] = s
                layer.on_park(s.spot, env.now)
            else:
                s = lot.release(-what - 1, env.now)
                layer.on_leave(s.spot, env.now)

    env.process(run())


def test_layer_measures_on_a_scripted_day_by_hand():
    # P1 and P2 with 2 bays each, first_fit fills P1 first. Board every 60 s, app every 300 s.
    # Cars: park at 30 (ticket 0) and 45 (ticket 1) on P1; ticket 0 leaves at 70. Until 120.
    # Board P1: shows 2 until the refresh at 60, then 0 (the refresh at 120 is after `until`).
    # Hand figures as in test_audit_of_a_scripted_display_by_hand; P2 always right.
    lot = make_lot((2, 2))
    env = simpy.Environment()
    layer = SensorLayer(
        env, lot, spec(displays={"board_refresh_s": 60, "app_refresh_s": 300}), rngs()
    )
    layer.start()
    script(env, lot, layer, [(30, 1), (45, 1), (70, -1)])
    env.run(until=90)
    assert layer.displayed_free(0) == 0 and layer.displayed_free(1) == 2
    assert layer.displayed_free(0, display="app") == 2  # the app has not refreshed yet
    assert not layer.lot_shows_full()
    env.run(until=120)
    m = layer.finish(120.0)
    assert m["board.free_when_full_min.P1"] == pytest.approx(15 / 60)
    assert m["board.full_when_free_min.P1"] == pytest.approx(50 / 60)
    assert m["board.wrong_min"] == pytest.approx(65 / 60)
    assert m["board.phantom_free_spot_min.P1"] == pytest.approx(45 / 60)
    assert m["board.phantom_full_spot_min.P1"] == pytest.approx(50 / 60)
    assert m["board.wrong_min.P2"] == 0 and m["board.phantom_free_spot_min.P2"] == 0
    # the app showed 2 on P1 all along: true 2,1,0,1 -> free-when-full [45,70) = 25 s,
    # phantom-free 1*15 + 2*25 + 1*50 = 115 spot-s
    assert m["app.free_when_full_min.P1"] == pytest.approx(25 / 60)
    assert m["app.phantom_free_spot_min.P1"] == pytest.approx(115 / 60)
    assert m["counters.drift.P1"] == 0 and m["board.fallback_min"] == 0
    frame = layer.frame(120.0)
    assert set(frame.columns) == {"scope", "level", "measure", "value"}
    assert len(frame) == len(m)


def rngs(seed: int = 1) -> SensorRngs:
    return SensorRngs.from_seed(seed)


def test_constant_failure_cycle_drives_the_board_wrong_by_hand():
    # 1 level, 2 free bays, no cars. Every sensor sticks "occupied" at 100 s, is repaired at
    # 150 s, sticks again at 250 s. Board refreshes at 60 (2 free), 120 (0: both stuck),
    # 180 (2), 240 (2). Until 290 s: FULL shown on [120,180) while 2 bays free.
    lot = make_lot((2,))
    env = simpy.Environment()
    s = spec(
        detection="spot_sensors",
        failures={
            "between": {"type": "constant", "value": 100, "unit": "s"},
            "repair": {"type": "constant", "value": 50, "unit": "s"},
            "modes": {"stuck_occupied": 1},
        },
        displays={"board_refresh_s": 60, "app_refresh_s": 60},
    )
    layer = SensorLayer(env, lot, s, rngs())
    layer.start()
    env.run(until=290)
    m = layer.finish(290.0)
    assert m["board.full_when_free_min"] == pytest.approx(1.0)
    assert m["board.phantom_full_spot_min"] == pytest.approx(2.0)
    assert m["board.phantom_free_spot_min"] == 0
    assert m["sensors.failures"] == 4 and m["sensors.failures_stuck_occupied"] == 4
    assert m["sensors.sensor_down_min"] == pytest.approx(2 * (50 + 40) / 60)
    assert [(t, kind) for t, kind, _, _ in layer.log] == [
        (100, "fail"),
        (100, "fail"),
        (150, "repair"),
        (150, "repair"),
        (250, "fail"),
        (250, "fail"),
    ]
    with pytest.raises(RuntimeError, match="already"):
        layer.start()


RANDOM = {
    "detection": "both",
    "failures": {
        "between": {"type": "exponential", "mean": 10, "unit": "h"},
        "repair": {"type": "exponential", "mean": 2, "unit": "h"},
        "modes": {"stuck_occupied": 0.2, "stuck_free": 0.3, "silent": 0.5},
    },
    "gateway_outages": {"rate_per_day": 3, "duration": {"type": "exponential", "mean": 30}},
    "counter_miss_probability": 0.1,
}


def random_run(seed: int, per_level=(100, 100), days: float = 2.0, **overrides):
    lot = make_lot(per_level)
    env = simpy.Environment()
    layer = SensorLayer(env, lot, spec(**{**RANDOM, **overrides}), rngs(seed))
    horizon = days * 86_400.0
    layer.start(horizon)
    traffic = np.random.default_rng(99)  # same cars in every run

    def cars():
        while True:
            yield env.timeout(float(traffic.exponential(120.0)))
            layer.search(env.now)
            try:
                session = lot.allocate(CAR, env.now)
            except Exception:
                continue
            layer.on_park(session.spot, env.now)
            env.process(leave(session, float(traffic.exponential(4 * 3600.0))))

    def leave(session, stay):
        yield env.timeout(stay)
        lot.release(session.ticket, env.now)
        layer.on_leave(session.spot, env.now)

    env.process(cars())
    env.run(until=horizon)
    return layer, layer.finish(horizon)


def test_failure_process_is_deterministic_for_a_seed():
    a, ma = random_run(5, days=1)
    b, mb = random_run(5, days=1)
    c, mc = random_run(6, days=1)
    assert mc != ma
    assert a.log == b.log and ma == mb
    assert len(a.log) > 50 and {kind for _, kind, _, _ in a.log} >= {"fail", "gateway_down"}
    assert a.log != c.log
    # the failure draws do not depend on what else the layer draws (common random numbers)
    d, _ = random_run(5, days=1, counter_miss_probability=0.0)
    assert [x for x in d.log if x[1] in ("fail", "repair")] == [
        x for x in a.log if x[1] in ("fail", "repair")
    ]


def test_failure_process_matches_mtbf_mttr_and_mode_probabilities():
    layer, m = random_run(11, per_level=(150, 150), days=8, gateway_outages=None)
    # long-run share of sensor time failed = MTTR / (MTBF + MTTR) = 2 / 12
    share = m["sensors.sensor_down_min"] / (300 * 8 * 1440)
    assert share == pytest.approx(2 / 12, abs=0.015)
    counts = [m[f"sensors.failures_{k}"] for k in ("stuck_occupied", "stuck_free", "silent")]
    expected = np.array([0.2, 0.3, 0.5]) * sum(counts)
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    # the failures cost something: the board was wrong some of the time, and counters drifted
    assert m["board.phantom_full_spot_min"] > 0 and m["board.phantom_free_spot_min"] > 0
    # each loop pass is missed with probability 0.1, and the drift is exactly the misses
    c = layer.counters
    missed = int(m["counters.missed"])
    passes = sum(c.entries) + sum(c.exits) + missed
    assert stats.binomtest(missed, passes, 0.1).pvalue > 1e-3
    assert [m["counters.drift.P1"], m["counters.drift.P2"]] == [c.drift(0), c.drift(1)]


def test_counter_misses_and_driver_reactions_in_the_layer():
    # every loop misses every car: counters stay at the start, drift = -(parked now)
    lot = make_lot((2, 2))
    env = simpy.Environment()
    s = spec(
        detection="counters",
        counter_miss_probability=1.0,
        drivers={
            "turn_away_on_full": 1.0,
            "search_per_wrong_level": {"type": "constant", "value": 90, "unit": "s"},
        },
        displays={"board_refresh_s": 60, "app_refresh_s": 60},
    )
    layer = SensorLayer(env, lot, s, rngs())
    layer.start()
    script(env, lot, layer, [(10, 1), (11, 1), (12, 1)])
    env.run(until=20)
    # P1 full, P2 has 1 bay; the board (published at 0) still says 2 and 2
    result, extra = layer.search(20.0)
    assert result == (1, 1, 0) and extra == 90.0  # P1 promised, full: one wrong level
    assert not layer.driver_turns_away(20.0)
    env.run(until=100)
    m = layer.finish(100.0)
    assert m["counters.missed"] == 3
    assert m["counters.drift.P1"] == -2 and m["counters.drift.P2"] == -1
    assert m["drivers.wrong_level_visits"] == 1 and m["drivers.extra_search_min"] == 1.5
    assert m["board.fallback_min"] == pytest.approx(2 * 100 / 60)  # counters, both levels
    # fill the lot and let the board catch up: FULL shown, drivers turn away
    lot2 = make_lot((1,))
    env2 = simpy.Environment()
    layer2 = SensorLayer(env2, lot2, spec(drivers={"turn_away_on_full": 1.0}), rngs())
    layer2.start()
    script(env2, lot2, layer2, [(5, 1), (40, -1)])
    env2.run(until=35)
    assert layer2.lot_shows_full() and layer2.driver_turns_away(35.0)
    env2.run(until=65)  # the car left at 40; the board still showed FULL until 60
    assert not layer2.lot_shows_full()
    m2 = layer2.finish(65.0)
    assert m2["drivers.turned_away"] == 1 and m2["drivers.turned_away_with_space"] == 0
    assert m2["board.full_when_free_min"] == pytest.approx(20 / 60)


def test_counter_recount_removes_the_drift_accumulated_so_far():
    # every pass missed; staff recount every 0.01 h = 36 s
    lot = make_lot((3,))
    env = simpy.Environment()
    s = spec(detection="counters", counter_miss_probability=1.0, counter_recount_hours=0.01)
    layer = SensorLayer(env, lot, s, rngs())
    layer.start()
    script(env, lot, layer, [(10, 1), (20, 1), (50, 1), (60, -1)])
    env.run(until=35)
    assert layer.finish(35.0)["counters.drift.P1"] == -2  # two parks unseen
    env.run(until=40)  # recount at 36
    assert layer.finish(40.0)["counters.drift.P1"] == 0
    assert layer.estimator.estimate(0, 40.0).free == 1
    env.run(until=70)  # +1 park and -1 leave unseen since: they cancel
    m = layer.finish(70.0)
    assert m["counters.drift.P1"] == 0 and m["counters.missed"] == 4
    assert layer.recounts == 1


# --------------------------------------------------------------------------- scenario spec


def test_spec_defaults_and_core_translation():
    s = SensorsSpec()
    assert s.mode is Detection.BOTH and s.uses_sensors and s.uses_counters
    assert s.confidence.model() == ConfidenceModel(600.0, 0.5)
    f = spec(**RANDOM).failures
    assert f.availability == pytest.approx(10 / 12)
    assert f.modes.probabilities() == (0.2, 0.3, 0.5)
    assert spec(failures={**RANDOM["failures"], "modes": {"silent": 1}}).failures.modes.silent == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"failures": {**RANDOM["failures"], "modes": {"silent": 0.5, "stuck_free": 0.2}}},
            "must sum to 1",
        ),
        ({"detection": "counters", "failures": RANDOM["failures"]}, "describes spot sensors"),
        (
            {"detection": "spot_sensors", "counter_miss_probability": 0.1},
            "describes level counters",
        ),
        ({"detection": "radar"}, "detection"),
        ({"counter_miss_probability": 1.5}, "probability between 0 and 1"),
        ({"detection": "spot_sensors", "counter_recount_hours": 24}, "describes level counters"),
        ({"counter_recount_hours": 0}, "counter_recount_hours must be > 0"),
        ({"confidence": {"threshold": 1.0}}, "threshold must be >= 0 and < 1"),
        ({"confidence": {"half_life_min": 0}}, "half_life_min must be > 0"),
        ({"displays": {"board_refresh_s": -1}}, "board_refresh_s must be > 0"),
        (
            {"gateway_outages": {"rate_per_day": 0, "duration": {"type": "constant", "value": 5}}},
            "rate_per_day must be > 0",
        ),
        (
            {"failures": {**RANDOM["failures"], "repair": {"type": "constant", "value": 0}}},
            "failures.repair must have a mean > 0",
        ),
        ({"drivers": {"turn_away_on_full": -0.1}}, "probability"),
        ({"display": {}}, "Extra inputs are not permitted"),
    ],
)
def test_spec_rejects_bad_settings_with_a_clear_message(data, message):
    with pytest.raises(ValidationError, match=message):
        SensorsSpec.model_validate(data)
