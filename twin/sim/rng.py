"""Named random streams for common random numbers.

Each purpose (arrivals of one stream, its dwell times, its willingness to pay, ...) gets its own
numpy Generator whose seed depends only on (scenario seed, replication, stream name). Adding a
stream, changing a policy or drawing more from one stream never shifts another, so two policies
run with the same seed see the same drivers: the basis of paired comparisons.
"""

from __future__ import annotations

import zlib

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
