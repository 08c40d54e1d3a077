"""The occupancy peak per group, walked in chunks over one shared time order, against brute
force: every event instant, every group, departures first at equal times."""

import itertools

import numpy as np
import pytest

from twin.results import StayEvents


def brute_peaks(gid, n_groups, starts, ends, t0, t1):
    ends = np.where(np.isnan(ends), np.inf, ends)
    peaks = np.zeros(n_groups, dtype=np.int64)
    instants = np.unique(np.concatenate([[t0], starts, ends]))
    for t in instants[(instants >= t0) & (instants < t1)]:
        # at an instant, cars leaving then have left and cars arriving then are in
        inside = (starts <= t) & (ends > t)
        peaks = np.maximum(peaks, np.bincount(gid[inside], minlength=n_groups))
    return peaks


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chunked_peaks_equal_brute_force(monkeypatch, chunk, seed):
    rng = np.random.default_rng(seed)
    n, n_groups = 400, 5
    # integer minutes: many exact ties between arrivals and departures
    starts = rng.integers(0, 300, n).astype(float)
    ends = starts + rng.integers(0, 60, n)
    ends[rng.random(n) < 0.05] = np.nan  # still parked at the horizon
    gid = rng.integers(0, n_groups, n).astype(np.int16)
    monkeypatch.setattr(StayEvents, "CHUNK", chunk)
    events = StayEvents(starts, ends)
    for t0, t1 in ((0.0, 400.0), (100.0, 200.0), (150.0, 151.0)):
        got = events.peaks(gid, n_groups, t0, t1)
        np.testing.assert_array_equal(got, brute_peaks(gid, n_groups, starts, ends, t0, t1))
        total = events.peaks(np.zeros(n, np.int8), 1, t0, t1)
        assert total[0] == brute_peaks(np.zeros(n, np.int64), 1, starts, ends, t0, t1)[0]


def test_arrivals_at_a_departure_instant_do_not_overlap_it():
    """One spot's worth of stays back to back: the peak is 1, not 2 (departures first)."""
    starts = np.array([0.0, 10.0, 20.0])
    ends = np.array([10.0, 20.0, 30.0])
    events = StayEvents(starts, ends)
    assert events.peaks(np.zeros(3, np.int8), 1, 0.0, 40.0)[0] == 1


def brute_full_seconds(gid, n_groups, caps, starts, ends, t0, t1):
    """Seconds of [t0, t1) each group spent at its capacity: the count is constant between
    consecutive event instants."""
    ends = np.where(np.isnan(ends), np.inf, ends)
    instants = np.unique(np.concatenate([[t0, t1], starts, ends]))
    instants = instants[(instants >= t0) & (instants <= t1)]
    full = np.zeros(n_groups)
    for a, b in itertools.pairwise(instants):
        inside = (starts <= a) & (ends > a)
        count = np.bincount(gid[inside], minlength=n_groups)
        full += np.where(count >= caps, b - a, 0.0)
    return full


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
@pytest.mark.parametrize("seed", [1, 2])
def test_time_full_equals_brute_force(monkeypatch, chunk, seed):
    """The seconds each group spends full, from the same chunked walk as the peaks, against
    brute force (capacities near the groups' peaks, so groups are full some of the time)."""
    rng = np.random.default_rng(seed)
    n, n_groups = 300, 4
    starts = rng.integers(0, 300, n).astype(float)
    ends = starts + rng.integers(0, 60, n)
    ends[rng.random(n) < 0.05] = np.nan
    gid = rng.integers(0, n_groups, n).astype(np.int16)
    monkeypatch.setattr(StayEvents, "CHUNK", chunk)
    events = StayEvents(starts, ends)
    for t0, t1 in ((0.0, 400.0), (100.0, 200.0)):
        peaks = brute_peaks(gid, n_groups, starts, ends, t0, t1)
        caps = np.maximum(peaks - 2, 1)
        got_peaks, got_full = events.walk(gid, n_groups, t0, t1, caps)
        np.testing.assert_array_equal(got_peaks, peaks)
        want = brute_full_seconds(gid, n_groups, caps, starts, ends, t0, t1)
        assert want.sum() > 0
        np.testing.assert_allclose(got_full, want)
