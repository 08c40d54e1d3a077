"""The cars the feed shows waiting at the entry: plate read at the barrier, no admission yet.

A car whose plate the entrance camera reads (``plate_read``, direction ``in``) is at the
barrier; it leaves the queue when the entry gate admits it (``gate_entry`` with its plate) or
when the camera sees it leave the lane (``plate_read``, direction ``out``: it gave up; ``parktwin
emit`` sends one for drivers refused or reneging). A feed that never says a car gave up would
keep it for ever: a car is dropped after ``keep_s`` in the queue. The mirror's ``state()``
exports the queue (``twin.scenario.state.QueuedState``), so a forecast starts those cars in
the entry's waiting line with their time waited.
"""

from __future__ import annotations

__all__ = ["EntryQueue"]


class EntryQueue:
    """Plates waiting at the entry, in the order they reached the barrier (picklable)."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self.waiting: dict[str, float] = {}  # plate -> when it was read at the barrier
        self.gave_up = 0  # left the lane (an ``out`` read)
        self.dropped = 0  # kept longer than keep_s with no word: taken as gone

    def __len__(self) -> int:
        return len(self.waiting)

    def arrived(self, plate: str, t: float) -> None:
        """The entrance camera read ``plate`` at the barrier."""
        self.waiting.pop(plate, None)  # read again: it waits from now (order: latest read)
        self.waiting[plate] = t

    def admitted(self, plate: str | None) -> None:
        """The entry gate let ``plate`` in."""
        if plate is not None:
            self.waiting.pop(plate, None)

    def left(self, plate: str) -> None:
        """The camera saw ``plate`` leave the lane: it gave up waiting."""
        if self.waiting.pop(plate, None) is not None:
            self.gave_up += 1

    def prune(self, now: float) -> None:
        """Drop the cars read more than ``keep_s`` ago (oldest first: reads are in order)."""
        waiting = self.waiting
        limit = now - self.keep_s
        while waiting:
            plate = next(iter(waiting))
            if waiting[plate] >= limit:
                break
            del waiting[plate]
            self.dropped += 1

    def cars(self, now: float) -> list[tuple[str, float]]:
        """(plate, seconds waited) of the cars waiting at ``now``, longest-waiting first
        (those past ``keep_s`` left out, pruned or not)."""
        return [
            (plate, max(now - t, 0.0))
            for plate, t in self.waiting.items()
            if now - t <= self.keep_s
        ]
