"""Named random streams for common random numbers.

Each purpose (arrivals of one stream, its dwell times, its willingness to pay, ...) gets its own
numpy Generator whose seed depends only on (scenario seed, replication, stream name). Adding a
stream, changing a policy or drawing more from one stream never shifts another, so two policies
run with the same seed see the same drivers: the basis of paired comparisons.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np


def stream_key(name: str) -> int:
    """A stable 32-bit key for a stream name (``hash()`` is salted per process; crc32 is not)."""
    return zlib.crc32(name.encode("utf-8"))


class Streams:
    """Factory of independent, reproducible Generators for one replication."""

    def __init__(self, seed: int, replication: int = 0) -> None:
        self.seed = int(seed)
        self.replication = int(replication)

    def get(self, name: str) -> np.random.Generator:
        seq = np.random.SeedSequence(
            entropy=self.seed, spawn_key=(self.replication, stream_key(name))
        )
        return np.random.Generator(np.random.PCG64(seq))


class BlockDraws:
    """Values of one Generator drawn ``block`` at a time and handed out one per call: a scalar
    numpy call per simulated step would cost more than the step itself. The values are those
    of the bulk draws in order, so the block size does not change a run's numbers."""

    __slots__ = ("_block", "_buf", "_draw", "_i")

    def __init__(self, draw: Callable[[int], np.ndarray], block: int = 4096) -> None:
        self._draw = draw
        self._block = block
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        if self._i == len(self._buf):
            self._buf = self._draw(self._block).tolist()
            self._i = 0
        self._i += 1
        return self._buf[self._i - 1]
