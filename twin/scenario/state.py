"""A lot's state at one instant, as a file: where a run can begin instead of an empty lot.

A planner writes one by hand (``parktwin run SCENARIO --start-state FILE``), the live mirror
hands its own to the forecast, and :func:`twin.sim.snapshot.state_from_record` takes one from
a simulated run. Time is local wall-clock time, like a scenario's ``start``; the run begins at
``time`` (which sets the weekday and the time of day).

A queue holds the cars waiting at an entry for a spot (a full lot whose drivers wait): the
run starts them in the entry's waiting line, longest-waiting first, their patience drawn from
its law conditioned on the time already waited (twin.sim.initial_queue).

Sessions say what is known about a parked car: where (an exact spot id, or a level and/or a
spot type, or nothing: then the lot allocates as for any car), what vehicle, and how long it
has been parked (``elapsed_min``, or ``entered`` as a date-time; neither: unknown). Its
remaining stay is drawn in the run from the dwell law conditioned on that elapsed time (see
twin.sim.initial), unless ``remaining_min`` says when it leaves (a booked departure, or a
snapshot of a simulation); a car of unknown age gets age and remaining stay together from the
lot's steady state at the state's time (a car of its class parked then, drawn at random).

The schema is the scenario's (unknown keys are errors, floats finite); bad files exit 2 with
one line naming the field, through the same error formatting as scenario files.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError, model_validator

from twin.scenario.common import (
    LocalDateTime,
    Spec,
    SpotTypeName,
    VehicleClassName,
    naive_local,
)

#: The state file format; bumped when a field changes meaning.
STATE_VERSION = 1
#: Longest age, remaining stay or wait a state may give, in minutes (366 days): beyond it a car
#: is abandoned, not parked, and an absurd value (1e300) made the conditional stay draw hang.
MAX_STATE_MIN = 366 * 24 * 60


class SessionState(Spec):
    """One parked car at the state's time."""

    spot: str | None = Field(default=None, description="exact spot id, e.g. P2-017")
    level: str | None = Field(default=None, description="level name, when the spot is unknown")
    spot_type: SpotTypeName | None = Field(
        default=None, description="bay type, when the spot is unknown"
    )
    vehicle_class: VehicleClassName | None = Field(
        default=None,
        description="default: what the named spot takes (at most REGULAR), else REGULAR",
    )
    ev: bool = Field(default=False, description="an electric vehicle (prefers EV bays)")
    handicap: bool = Field(default=False, description="holds an accessible-parking permit")
    elapsed_min: float | None = Field(
        default=None, ge=0, le=MAX_STATE_MIN, description="minutes parked so far"
    )
    entered: LocalDateTime | None = Field(default=None, description="entry time (local)")
    remaining_min: float | None = Field(
        default=None,
        ge=0,
        le=MAX_STATE_MIN,
        description="known minutes until it leaves (else drawn)",
    )
    stream: str | None = Field(
        default=None, description="demand stream whose dwell law applies (default: inferred)"
    )
    ticket: str | None = Field(default=None, description="ticket number (kept as its id)")
    plate: str | None = Field(default=None, description="licence plate (kept as its id)")
    prepaid: bool = Field(default=False, description="bought the event product at entry")
    validation: int | None = Field(default=None, ge=0, description="tariff validation index")

    @model_validator(mode="after")
    def _one_age(self) -> SessionState:
        if self.elapsed_min is not None and self.entered is not None:
            raise ValueError("give one of 'elapsed_min' or 'entered', not both")
        return self

    @property
    def age_known(self) -> bool:
        """Whether the state says how long the car has been parked. Without it (a count from
        a gate counter, a sensor without history) the run draws its age and remaining stay
        jointly from the lot's steady state at that time (twin.sim.initial)."""
        return self.elapsed_min is not None or self.entered is not None


class SpotHoldState(Spec):
    """Spots out of walk-in use at the state's time: held (reserved) or closed."""

    status: Literal["held", "closed"] = Field(description="held (reserved) or closed")
    spot: str | None = Field(default=None, description="one spot id")
    level: str | None = Field(default=None, description="a whole level (with no spot)")
    spot_type: SpotTypeName | None = Field(default=None, description="only this type")
    # any year (9999: until further notice); only the offset is refused
    until: Annotated[datetime, AfterValidator(naive_local)] | None = Field(
        default=None, description="back in use then (local)"
    )

    @model_validator(mode="after")
    def _where(self) -> SpotHoldState:
        if self.spot is None and self.level is None:
            raise ValueError("give a 'spot' id or a 'level'")
        if self.spot is not None and (self.level is not None or self.spot_type is not None):
            raise ValueError("give a 'spot' id, or a 'level' (and 'spot_type'), not both")
        return self


class QueuedState(Spec):
    """A car waiting at the entry for a spot at the state's time (its plate read at the
    barrier, no admission yet), with how long it has waited."""

    vehicle_class: VehicleClassName | None = Field(default=None, description="default REGULAR")
    ev: bool = Field(default=False, description="an electric vehicle (prefers EV bays)")
    handicap: bool = Field(default=False, description="holds an accessible-parking permit")
    waited_min: float | None = Field(
        default=None,
        ge=0,
        le=MAX_STATE_MIN,
        description="minutes waited so far (neither this nor since: 0)",
    )
    since: LocalDateTime | None = Field(default=None, description="when it began to wait (local)")
    stream: str | None = Field(
        default=None, description="demand stream it belongs to (default: inferred)"
    )
    plate: str | None = Field(default=None, description="licence plate (kept as its id)")

    @model_validator(mode="after")
    def _one_wait(self) -> QueuedState:
        if self.waited_min is not None and self.since is not None:
            raise ValueError("give one of 'waited_min' or 'since', not both")
        return self


class LotState(Spec):
    lot: str | None = Field(default=None, description="lot name (default: the scenario's one)")
    sessions: list[SessionState] = Field(default_factory=list)
    holds: list[SpotHoldState] = Field(default_factory=list)
    queue: list[QueuedState] = Field(
        default_factory=list, description="cars waiting at the entry, longest-waiting first"
    )


class StartState(Spec):
    """Where a run begins: the instant, and per lot the parked cars and out-of-use spots."""

    version: Literal[1] = Field(default=STATE_VERSION, description="state file format")
    time: LocalDateTime = Field(description="the state's instant (local); the run starts here")
    lots: list[LotState] = Field(default_factory=list, description="per lot: cars and holds")

    @model_validator(mode="after")
    def _entered_before_time(self) -> StartState:
        # an age or wait given as a date is bounded as the minutes are (MAX_STATE_MIN): a
        # date centuries back would be an age the conditional stay draw cannot handle
        earliest = self.time - timedelta(minutes=MAX_STATE_MIN)
        for k, lot in enumerate(self.lots):
            dates = [(f"sessions.{j}.entered", s.entered) for j, s in enumerate(lot.sessions)]
            dates += [(f"queue.{j}.since", q.since) for j, q in enumerate(lot.queue)]
            for where, when in dates:
                if when is None:
                    continue
                if when > self.time:
                    raise ValueError(
                        f"lots.{k}.{where} ({when}) is after the state's time ({self.time})"
                    )
                if when < earliest:
                    raise ValueError(
                        f"lots.{k}.{where} ({when}) is more than {MAX_STATE_MIN // 1440} days "
                        f"before the state's time ({self.time}); allowed from {earliest}"
                    )
            for j, h in enumerate(lot.holds):
                if h.until is not None and h.until <= self.time:
                    raise ValueError(
                        f"lots.{k}.holds.{j}.until ({h.until}) is not after the state's "
                        f"time ({self.time})"
                    )
        return self

    @property
    def n_sessions(self) -> int:
        return sum(len(lot.sessions) for lot in self.lots)

    @property
    def n_queued(self) -> int:
        """Cars waiting at the entries."""
        return sum(len(lot.queue) for lot in self.lots)

    def dump(self) -> dict[str, Any]:
        """Plain data for a JSON/YAML file (what :func:`load_state` reads back)."""
        return self.model_dump(mode="json", exclude_defaults=True)


class StateError(ValueError):
    """A state file that cannot be used; ``str()`` is one line naming the file and field."""


def load_state(source: str | Path | dict[str, Any]) -> StartState:
    """Read and validate a state from a JSON or YAML file (or an already-parsed mapping)."""
    import yaml

    name = "<state>"
    if isinstance(source, dict):
        data: Any = source
    else:
        name = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise StateError(f"{name}: cannot read ({exc.strerror or exc})") from None
        try:
            data = yaml.safe_load(text)  # JSON is YAML
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise StateError(f"{name}: not valid JSON/YAML{where}") from None
    if not isinstance(data, dict):
        raise StateError(f"{name}: expected a mapping with 'time' and 'lots'")
    try:
        return StartState.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise StateError(f"{name}: {field}: {msg}{more}") from None
