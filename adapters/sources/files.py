"""File sources: replay of a recorded feed (JSONL or CSV in the event schema) at a chosen
speed, and foreign ticket exports through a column mapping (``mapping.py``).

Replay keeps the file's order (a recording is the order events *arrived*); pacing follows
the events' observed times: ``speed=None`` as fast as possible, ``1`` real time, ``N`` N×
(clock and sleep injectable, so a test replays a day without waiting). A recording may carry
each payload's receive time in a ``receivedAt`` field (JSONL) or column (CSV): the intake
then judges future timestamps and clock skew as it would have live.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .base import Raw


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def _peek_time(payload: str) -> datetime | None:
    """The payload's dateObserved, cheaply, for pacing (None when it has none we can read)."""
    key = payload.find('"dateObserved"')
    if key < 0:
        return None
    start = payload.find('"', payload.find(":", key) + 1)
    end = payload.find('"', start + 1)
    return _when(payload[start + 1 : end]) if start > 0 and end > 0 else None


def _peek_received(payload: str) -> datetime | None:
    key = payload.find('"receivedAt"')
    if key < 0:
        return None
    start = payload.find('"', payload.find(":", key) + 1)
    end = payload.find('"', start + 1)
    return _when(payload[start + 1 : end]) if start > 0 and end > 0 else None


@dataclass
class FileReplay:
    """Raw payloads of a JSONL (one event per line) or CSV (one per row, the schema's field
    names as columns) recording, paced by ``speed``."""

    path: Path
    speed: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.speed is not None and not self.speed > 0:
            raise ValueError(f"speed must be > 0 (None: as fast as possible), got {self.speed}")

    def __iter__(self) -> Iterator[Raw]:
        if self.path.suffix.lower() == ".csv":
            yield from self._csv()
        else:
            yield from self._jsonl()

    def _jsonl(self) -> Iterator[Raw]:
        name = self.path.name
        with self.path.open(encoding="utf-8", errors="surrogateescape") as f:
            if self.speed is None:  # the fast path: no peeking at times
                for n, line in enumerate(f, 1):
                    line = line.rstrip("\n")
                    if line.strip():
                        rec = _peek_received(line) if '"receivedAt"' in line else None
                        yield Raw(line, rec, f"{name}:{n}")
                return
            paced = Pacer(self.speed, self.clock, self.sleep)
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if line.strip():
                    paced.wait(_peek_time(line))
                    yield Raw(line, _peek_received(line), f"{name}:{n}")

    def _csv(self) -> Iterator[Raw]:
        name = self.path.name
        with self.path.open(encoding="utf-8", newline="") as f:
            rows = csv.DictReader(f)
            paced = Pacer(self.speed, self.clock, self.sleep)
            for n, row in enumerate(rows, 2):
                obj = {k: v for k, v in row.items() if k is not None and v not in ("", None)}
                received = _when(obj.pop("receivedAt", None))
                paced.wait(_when(obj.get("dateObserved")))
                yield Raw(obj, received, f"{name}:{n}")


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


__all__ = ["FileReplay", "Pacer", "write_jsonl"]
