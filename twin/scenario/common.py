"""What every section of the scenario schema shares: its base model, names and money rule.

Kept apart from :mod:`twin.scenario.model` so that the section modules (reservations,
permits, payments, sensors, ...) can use it while ``model`` imports them, without a cycle.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from twin.core.types import SpotType, VehicleClass

SpotTypeName = Literal["MOTORCYCLE", "COMPACT", "REGULAR", "LARGE", "HANDICAP", "EV"]
VehicleClassName = Literal["MOTORCYCLE", "COMPACT", "REGULAR", "LARGE"]
# the file's names and the core's enums must not drift apart
assert set(SpotTypeName.__args__) == set(SpotType.__members__)
assert set(VehicleClassName.__args__) == set(VehicleClass.__members__)


class Spec(BaseModel):
    """A part of a scenario file: unknown keys are errors (a typo must not be ignored), and a
    validated scenario never changes underneath the run that uses it.

    Every float (and Decimal) in every section must be finite: YAML's ``.nan`` and ``.inf``
    pass ``ge``/``le`` bounds unnoticed (NaN compares false both ways) and then change results
    silently, e.g. a NaN willingness to pay never balks. A field where infinity means something
    must say so itself (``Field(allow_inf_nan=True)``) and handle it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def cents(amount: Decimal) -> int:
    """Currency units as written in the file (already a Decimal) to integer cents."""
    return int(amount * 100)
