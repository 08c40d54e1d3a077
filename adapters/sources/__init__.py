"""Feed sources behind one interface (an iterable of ``Raw`` payloads) and the intake that
validates them: ``Intake(dead_letter=...).events(FileReplay(path))``.

MQTT lives in ``adapters.sources.mqtt`` (imported on demand: paho is the ``mqtt`` extra).
"""

from .base import REASONS, Intake, Raw, Source, Tolerances, utc_now
from .files import FileReplay, write_jsonl
from .mapping import MappedExport, Mapping, MappingError

__all__ = [
    "REASONS",
    "FileReplay",
    "Intake",
    "MappedExport",
    "Mapping",
    "MappingError",
    "Raw",
    "Source",
    "Tolerances",
    "utc_now",
    "write_jsonl",
]
