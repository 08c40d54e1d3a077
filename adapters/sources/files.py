"""File sources: replay of a recorded feed (JSONL or CSV in the event schema) at a chosen
speed, and foreign ticket exports through a column mapping (``mapping.py``).

Replay keeps the file's order (a recording is the order events *arrived*) and runs a replay
clock: the feed time the recording has reached at each line. It moves to a line's observed
time unless the line's neighbours say that is ahead (the median of the ``window`` timed lines
either side is earlier), and never goes back (``replay_clock``). So one device whose clock
runs ahead cannot drag it along, on a feed in time order it is each line's own time, and
uploads from a device's buffer (``buffered: true``, old by design) do not move it. The clock
does two jobs:

* each payload is stamped with it as its receive time, so the intake judges future
  timestamps and clock skew on a replay as fast as possible or at ×N as it would live (the
  wall clock would say nothing about a feed played faster than real time). A recording that
  kept each payload's receive time (a ``receivedAt`` field (JSONL) or column (CSV)) is
  stamped with that instead; ``window=None`` stamps nothing (the checks are skipped);
* pacing follows it: ``speed=None`` as fast as possible, ``1`` real time, ``N`` N× (clock and
  sleep injectable, so a test replays a day without waiting). A line whose own time is far
  ahead does not stall the replay.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .base import Raw

T = TypeVar("T")


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def _peek_received(payload: str) -> datetime | None:
    key = payload.find('"receivedAt"')
    if key < 0:
        return None
    start = payload.find('"', payload.find(":", key) + 1)
    end = payload.find('"', start + 1)
    return _when(payload[start + 1 : end]) if start > 0 and end > 0 else None


#: Lines the replay clock reads at a time: its medians are taken a block at a time in numpy
#: (a Python loop over a sorted window cost ~2 µs a line, a fifth of the intake's budget).
BLOCK = 2048


def _medians(times: np.ndarray, first: int, count: int, w: int) -> np.ndarray:
    """The median (upper, an element: sorted index len // 2) of ``times[max(0, i - w) : i + w
    + 1]`` for ``i`` in ``first .. first + count - 1``; each has ``w`` times after it."""
    out = np.empty(count)
    short = min(count, max(0, w - first))  # near the stream's start: fewer than w before
    for j in range(short):
        near = np.sort(times[: first + j + w + 1])
        out[j] = near[len(near) // 2]
    if count > short:
        rows = sliding_window_view(times, 2 * w + 1)[first + short - w : first + count - w]
        out[short:] = np.partition(rows, w, axis=1)[:, w]
    return out


def replay_clock(
    items: Iterable[tuple[T, float | None]], window: int
) -> Iterator[tuple[T, float | None]]:
    """Each item with the replay clock when it is replayed (epoch seconds).

    ``items`` are (item, observed time in epoch seconds or None). The clock moves to a timed
    item's own time unless its neighbours say that is ahead: to the smaller of its time and
    the median time of the ``window`` timed items on either side (near the start: the ones
    before it and ``window`` after; near the end: as many on each side as there are after),
    and never goes back. On items in time order that is each item's own time; one item far
    ahead moves it by one rank at most (except the very last item, which has no neighbour
    after it). Items without a time get the clock as it stands (None before the first
    timed item). Reads ``BLOCK`` items at a time, and ``window`` timed items past them.
    """
    w = window
    it = iter(items)
    pending: list[tuple[T, float | None]] = []
    context: list[float] = []  # times of the last (up to) w timed items released
    clock: float | None = None
    while block := list(islice(it, BLOCK)):
        pending += block
        times = [t for _, t in pending if t is not None]
        ready = len(times) - w  # timed items with w timed items after them: released now
        if ready <= 0:
            continue
        told = np.array(context + times)
        c = len(context)
        told = np.minimum(told[c : c + ready], _medians(told, c, ready, w))
        told = np.maximum.accumulate(told)
        if clock is not None:
            np.maximum(told, clock, out=told)
        clocks = told.tolist()
        j = 0
        for k, (item, t) in enumerate(pending):
            if t is not None:
                if j == ready:
                    del pending[:k]
                    break
                clock = clocks[j]
                j += 1
            yield item, clock
        else:
            pending.clear()
        context = (context + times[:ready])[-w:] if w else []
    # The last items: fewer than w after them, so as many before as after.
    rest = context + [t for _, t in pending if t is not None]
    done = len(context)
    for head, ht in pending:
        if ht is not None:
            after = len(rest) - done - 1
            before = min(done, after)
            near = sorted(rest[done - before : done + after + 1])
            told_ = min(ht, near[len(near) // 2])
            if clock is None or told_ > clock:
                clock = told_
            done += 1
        yield head, clock


def _buffered(line: str) -> bool:
    """An upload from a device's buffer (``"buffered": true``): old by design, so its time
    says nothing about the time the recording has reached."""
    return '"buffered"' in line and ('"buffered":true' in line or '"buffered": true' in line)


@dataclass
class FileReplay:
    """Raw payloads of a JSONL (one event per line) or CSV (one per row, the schema's field
    names as columns) recording, paced by ``speed``, each stamped with its receive time on
    the replay clock (the median observed time of the ``window`` lines either side; None: no
    receive times)."""

    path: Path
    speed: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    window: int | None = 15

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.speed is not None and not self.speed > 0:
            raise ValueError(f"speed must be > 0 (None: as fast as possible), got {self.speed}")
        if self.window is not None and self.window < 0:
            raise ValueError(
                f"window must be >= 0 lines (None: no receive times), got {self.window}"
            )

    def __iter__(self) -> Iterator[Raw]:
        rows = self._csv() if self.path.suffix.lower() == ".csv" else self._jsonl()
        paced = Pacer(self.speed, self.clock, self.sleep) if self.speed is not None else None
        if self.window is None:
            for (payload, recorded, where, seen, _), _ in rows:
                if paced is not None:  # paced on each line's own time: no replay clock runs
                    paced.wait(seen)
                yield Raw(payload, recorded, where)
            return
        seconds: float | None = None
        received: datetime | None = None
        for (payload, recorded, where, seen, at), now in replay_clock(rows, self.window):
            if now != seconds:
                seconds = now
                # Mostly the line's own time (a feed in time order): reuse its datetime.
                if at is not None and at == now:
                    received = seen
                else:
                    received = datetime.fromtimestamp(now, UTC)  # type: ignore[arg-type]
                if paced is not None:
                    paced.wait(received)
            yield Raw(payload, recorded or received, where)

    def _jsonl(self) -> Iterator[tuple[tuple[Any, datetime | None, str, Any, Any], Any]]:
        """((payload, recorded receive time, where, observed time, the same in epoch s),
        observed time in epoch s); the observed time is None when unreadable or not needed,
        or the line is buffered. One loop, no call per line but the date parse: it runs for
        every line of a replay."""
        name = self.path.name
        timed = self.window is not None or self.speed is not None
        # utf-8-sig: a byte-order mark (Windows tools write one) is not part of the first line
        with self.path.open(encoding="utf-8-sig", errors="surrogateescape") as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                t = at = None
                if timed and not ('"buffered"' in line and _buffered(line)):
                    key = line.find('"dateObserved"')  # its value, cheaply: no JSON parse
                    if key >= 0:
                        start = line.find('"', line.find(":", key) + 1)
                        end = line.find('"', start + 1)
                        if start > 0 and end > 0:
                            t = _when(line[start + 1 : end])
                            if t is not None:
                                at = t.timestamp()
                rec = _peek_received(line) if '"receivedAt"' in line else None
                yield (line, rec, f"{name}:{n}", t, at), at

    def _csv(self) -> Iterator[tuple[tuple[Any, datetime | None, str, Any, Any], Any]]:
        name = self.path.name
        with self.path.open(encoding="utf-8-sig", newline="") as f:  # BOM: not in 'kind'
            for n, row in enumerate(csv.DictReader(f), 2):
                obj = {k: v for k, v in row.items() if k is not None and v not in ("", None)}
                received = _when(obj.pop("receivedAt", None))
                late = str(obj.get("buffered", "")).lower() in ("true", "1")
                t = None if late else _when(obj.get("dateObserved"))
                at = None if t is None else t.timestamp()
                yield (obj, received, f"{name}:{n}", t, at), at


class Pacer:
    """Waits so feed time runs ``speed`` × wall time; times that go back do not wait."""

    def __init__(
        self, speed: float | None, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.speed, self.clock, self.sleep = speed, clock, sleep
        self.start: tuple[float, datetime] | None = None

    def wait(self, t: datetime | None) -> None:
        if self.speed is None or t is None:
            return
        if self.start is None:
            self.start = (self.clock(), t)
            return
        due = self.start[0] + (t - self.start[1]).total_seconds() / self.speed
        wait = due - self.clock()
        if wait > 0:
            self.sleep(wait)


def write_jsonl(path: Path, lines: Iterator[str] | list[str]) -> int:
    """Write JSON lines atomically-enough for a recording (temp file + rename); returns count."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(line)
            f.write("\n")
            n += 1
    tmp.replace(path)
    return n


__all__ = ["FileReplay", "Pacer", "replay_clock", "write_jsonl"]
