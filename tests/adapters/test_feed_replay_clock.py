"""File replay stamps each payload with its virtual receive time (the replay clock), so the
intake's clock checks (future timestamps, clock skew) work on a replay played faster than real
time, as fast as possible or at ×N, without turning them off."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parktwin.adapters.sources import FileReplay, Intake, files
from parktwin.adapters.sources.files import replay_clock

T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
HONEST = [f"sensor-{k}" for k in range(6)] + ["gate-in"]


def recording(
    path: Path, ahead_s: float = 0.0, behind_s: float = 0.0, minutes: int = 120
) -> dict[str, int]:
    """A recording in arrival order: every device reports every 70 s (staggered), arriving
    1 s after it observed. ``fast`` stamps its events ``ahead_s`` late (its clock runs
    ahead), ``slow`` ``behind_s`` early (its clock runs behind; live, not buffered).
    Returns how many events each device wrote."""
    rows: list[tuple[float, dict]] = []
    devices = [*HONEST, "fast", "slow"]
    for k, device in enumerate(devices):
        offset = {"fast": ahead_s, "slow": -behind_s}.get(device, 0.0)
        for i in range(int(minutes * 60 / 70)):
            seen = 7.0 * k + 70.0 * i
            event = {
                "kind": "heartbeat",
                "id": f"{device}-{i}",
                "refDevice": device,
                "dateObserved": (T0 + timedelta(seconds=seen + offset)).isoformat(),
            }
            rows.append((seen + 1.0, event))  # arrival: one second after the true time
    rows.sort(key=lambda r: r[0])
    path.write_text("\n".join(json.dumps(e) for _, e in rows) + "\n")
    return {d: sum(1 for _, e in rows if e["refDevice"] == d) for d in devices}


def dead_by_device(intake: Intake, dead_letter: Path) -> dict[tuple[str, str], int]:
    intake.close()
    out: dict[tuple[str, str], int] = {}
    for text in dead_letter.read_text().splitlines():
        row = json.loads(text)
        key = (json.loads(row["raw"])["refDevice"], row["reason"])
        out[key] = out.get(key, 0) + 1
    return out


@pytest.mark.parametrize("speed", [None, 600.0])
def test_a_fast_replay_judges_device_clocks_without_the_flag(tmp_path: Path, speed) -> None:
    path = tmp_path / "feed.jsonl"
    counts = recording(path, ahead_s=1200, behind_s=1200)
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    dead = tmp_path / "dead.jsonl"
    intake = Intake(dead_letter=dead)
    replay = FileReplay(path, speed=speed, clock=lambda: now[0], sleep=sleep)
    applied = {e.refDevice for e in intake.events(replay)}
    by = dead_by_device(intake, dead)
    # The device 20 minutes ahead: every event is in the future of the replay clock; the
    # one 20 minutes behind: its latency floor is 20 minutes off the fleet's.
    assert by == {
        ("fast", "future_timestamp"): counts["fast"],
        ("slow", "clock_skew"): counts["slow"],
    }
    assert applied == set(HONEST)
    assert intake.report()["received"] == sum(counts.values())
    if speed is not None:
        # Paced on the replay clock: the 20-minute-ahead device does not stall the replay,
        # the whole recording takes its own length / speed on the injected clock.
        span = 7.0 * 8 + 70.0 * (int(120 * 60 / 70) - 1)
        assert now[0] == pytest.approx(span / speed, rel=0.01)


def test_small_skews_and_honest_feeds_pass(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    recording(path, ahead_s=60, behind_s=60)  # within the 300 s tolerances
    intake = Intake()
    assert sum(1 for _ in intake.events(FileReplay(path))) == intake.received
    assert intake.dead_lettered == 0


def test_window_none_keeps_the_old_behaviour_and_recorded_receive_times_win(
    tmp_path: Path,
) -> None:
    path = tmp_path / "feed.jsonl"
    counts = recording(path, ahead_s=1200, behind_s=1200)
    intake = Intake()
    list(intake.events(FileReplay(path, window=None)))  # no receive times: no clock checks
    assert intake.dead_lettered == 0 and intake.applied == sum(counts.values())
    # A receive time kept in the recording is used as it is.
    first = json.loads(path.read_text().splitlines()[0])
    late = {**first, "id": "kept", "receivedAt": (T0 - timedelta(hours=1)).isoformat()}
    path.write_text(json.dumps(late) + "\n")
    intake = Intake()
    assert not list(intake.events(FileReplay(path)))
    assert intake.report()["by_reason"] == {"future_timestamp": 1}


def test_csv_replays_are_stamped_too(tmp_path: Path) -> None:
    rows = ["kind,id,refDevice,dateObserved"]
    for i in range(40):
        device = "fast" if i == 20 else f"s{i % 4}"
        t = T0 + timedelta(seconds=30 * i + (3600 if device == "fast" else 0))
        rows.append(f"heartbeat,h{i},{device},{t.isoformat()}")
    path = tmp_path / "feed.csv"
    path.write_text("\n".join(rows) + "\n")
    intake = Intake()
    assert len(list(intake.events(FileReplay(path)))) == 39
    assert intake.report()["by_reason"] == {"future_timestamp": 1}


times = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=60)


@given(times, st.integers(min_value=0, max_value=8))
def test_replay_clock_never_goes_back_and_follows_a_feed_in_order(ts, window) -> None:
    clock = [c for _, c in replay_clock(((i, t) for i, t in enumerate(ts)), window)]
    assert len(clock) == len(ts)
    assert all(a <= b for a, b in pairwise(clock))
    ordered = sorted(ts)
    assert [c for _, c in replay_clock(((i, t) for i, t in enumerate(ordered)), window)] == ordered


@given(st.integers(min_value=0, max_value=39), st.floats(min_value=1e4, max_value=1e9))
def test_one_line_far_ahead_moves_the_clock_by_one_rank_at_most(k, ahead) -> None:
    """Lines 0..40 a second apart, one of them (not the last) far ahead: the clock stays with
    the others (so the line ahead is judged against them), at most one second past a line's
    own time once a full window precedes it (near the start it may run a few lines early)."""
    ts = [float(i) for i in range(41)]
    ts[k] = ahead
    clock = [c for _, c in replay_clock(((i, t) for i, t in enumerate(ts)), 15)]
    assert all(c is not None and c <= 40 for c in clock)
    assert all(c <= i + 1 for i, c in enumerate(clock) if i >= 15)


def test_lines_without_a_time_take_the_clock_as_it_stands() -> None:
    items = [("a", None), ("b", 5.0), ("c", None), ("d", 6.0)]
    assert list(replay_clock(items, 2)) == [("a", None), ("b", 5.0), ("c", 5.0), ("d", 6.0)]


def reference_clock(ts: list[float | None], window: int) -> list[float | None]:
    """The replay clock by its definition, line by line (quadratic, obviously right)."""
    timed = [t for t in ts if t is not None]
    out: list[float | None] = []
    clock: float | None = None
    k = 0  # index among the timed lines
    for t in ts:
        if t is not None:
            after = min(window, len(timed) - k - 1)
            before = min(window, k) if after == window else min(k, after)
            near = sorted(timed[k - before : k + after + 1])
            told = min(t, near[len(near) // 2])
            clock = told if clock is None else max(clock, told)
            k += 1
        out.append(clock)
    return out


@given(
    st.lists(st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=80),
    st.integers(min_value=0, max_value=10),
)
def test_replay_clock_matches_its_definition(ts, window) -> None:
    got = [c for _, c in replay_clock(((i, t) for i, t in enumerate(ts)), window)]
    assert got == reference_clock(ts, window)


@given(
    st.lists(st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=80),
    st.integers(min_value=0, max_value=10),
    st.integers(min_value=1, max_value=25),
)
def test_replay_clock_is_the_same_whatever_the_block(ts, window, block) -> None:
    """The clock is computed a block of lines at a time; a window straddling blocks (and the
    stream's start and end inside one block) gives the definition's clock all the same."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(files, "BLOCK", block)
        got = [c for _, c in replay_clock(((i, t) for i, t in enumerate(ts)), window)]
    assert got == reference_clock(ts, window)
