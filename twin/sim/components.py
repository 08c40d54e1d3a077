"""Operations components: optional parts of the model that watch and steer its cars.

Reservations, permits, payments, sensors and scheduled closures each live in a component of
their own that the model calls at a few fixed moments of a car's visit. Components are
*declared*: each registers itself once (``@register(key, order=..., spec=...)``) with the
order it runs in and how to find its part of a scenario; ``build_components`` builds the ones a
scenario asks for. The model calls a component only at the moments it overrides, so one that
has nothing to do for a car (closures act on a schedule only) leaves the per-car fast paths on.
A scenario without any has no components, and the model's hot path does not look for them.

Moments (all times in core seconds, ``i`` the driver's index, ``k`` the lot's index):

* ``start(ctx)`` once before the run: schedule own events with ``ctx.call_at``.
* ``on_arrival(i, k, t)`` when a driver reaches a lot, before price and barrier. Return
  ``None`` to let the model carry on, :data:`TURN_AWAY` to send the driver away (counted as
  ``turned_away``, e.g. a display showing FULL), or a core ``Session`` when the component parked
  the car itself (a reservation holder or permit holder in the spot kept for them).
* ``on_refused(i, k, t)`` when the lot had no spot for a walk-in.
* ``on_park(i, k, session, t)`` after every allocation.
* ``on_leave(i, k, session, t) -> float`` after the spot is released and priced; the component
  may change ``session.amount_cents`` (a permit holder pays nothing) and returns extra seconds
  the car spends at the exit barrier (payment latency, retries).
* ``on_external_park(k, session, t)`` / ``on_external_leave(k, session, t)`` when another
  component parked or released a car that is not one of the model's drivers (a reservation
  holder): the lot's state changed, so sensors and displays must hear of it.
* ``finish(t) -> dict[str, float]`` after the run: figures merged into the replication's
  metrics (names prefixed by the component), and ``frames()`` for tidy tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from twin.sim.rng import Streams

if TYPE_CHECKING:
    from twin.core.lot import Lot, Session
    from twin.scenario.model import Scenario
    from twin.sim.demand import Drivers

#: ``on_arrival`` verdict: the driver leaves this lot (and may divert, in a network).
TURN_AWAY = "turn away"


@dataclass
class ModelContext:
    """What a component may use: the run's lots, drivers, scenario, clock and streams."""

    scenario: Scenario
    lots: list[Lot]
    drivers: Drivers
    streams: Streams
    env: Any  # simpy.Environment
    call_at: Callable[[float, Callable[[float], None]], None]
    horizon: float
    #: A component freed a spot at lot k (a holder left, a hold ended): serve waiting drivers.
    spot_freed: Callable[[int, float], None] = lambda k, t: None
    #: A component parked / released a car of its own: tell the other components.
    external_park: Callable[[int, Session, float], None] = lambda k, s, t: None
    external_leave: Callable[[int, Session, float], None] = lambda k, s, t: None
    #: When a car leaving its spot at lot k at time t would reach the exit barrier's service
    #: (t itself without barriers): payments judge the network at that moment.
    exit_barrier_time: Callable[[int, float], float] = lambda k, t: t
    #: Another component by name (e.g. reservations asking payments for its processor).
    component: Callable[[str], Component | None] = lambda name: None


class Component:
    """Base class: every moment is a no-op, so a component overrides only what it needs."""

    name: ClassVar[str] = "component"
    #: The component may keep the sessions it is shown (then the model does not recycle them).
    keeps_sessions: ClassVar[bool] = True

    def start(self, ctx: ModelContext) -> None:
        self.ctx = ctx

    def on_arrival(self, i: int, k: int, t: float) -> Session | str | None:
        return None

    def on_refused(self, i: int, k: int, t: float) -> None:
        return None

    def on_park(self, i: int, k: int, session: Session, t: float) -> None:
        return None

    def on_leave(self, i: int, k: int, session: Session, t: float) -> float:
        return 0.0

    def on_external_park(self, k: int, session: Session, t: float) -> None:
        return None

    def on_external_leave(self, k: int, session: Session, t: float) -> None:
        return None

    def finish(self, t: float) -> dict[str, float]:
        return {}

    def frames(self) -> dict[str, pd.DataFrame]:
        return {}


#: The moments a component may override, and so be called at.
MOMENTS = (
    "on_arrival",
    "on_refused",
    "on_park",
    "on_leave",
    "on_external_park",
    "on_external_leave",
)


def acts_on(component: Component, moment: str) -> bool:
    """Whether ``component`` overrides ``moment`` (the model calls it only then)."""
    return getattr(type(component), moment) is not getattr(Component, moment)


def _operations(key: str) -> Callable[[Scenario], Any]:
    def spec_of(scenario: Scenario) -> Any:
        return getattr(getattr(scenario, "operations", None), key, None)

    return spec_of


@dataclass(frozen=True)
class Registration:
    """One optional part of the model: its key, place in the run order, where its part of a
    scenario is, and the builder ``(spec, scenario) -> Component``."""

    key: str
    order: int
    spec_of: Callable[[Scenario], Any]
    build: Callable[[Any, Scenario], Component]


#: Every optional part by key (filled by ``register`` as the modules of ``MODULES`` load).
REGISTRY: dict[str, Registration] = {}
#: Modules that hold components; importing one registers its components.
MODULES = ("ops_permits", "ops_reservations", "ops_sensors", "ops_payments", "closures", "claims")


def register(key: str, order: int = 100, spec: Callable[[Scenario], Any] | None = None) -> Callable:
    """Class decorator: make a component buildable when ``spec(scenario)`` is not None (by
    default the scenario's ``operations.<key>``); components run in ``order``, lowest first."""

    def wrap(cls: type[Component]) -> type[Component]:
        REGISTRY[key] = Registration(key, order, spec or _operations(key), cls)
        return cls

    return wrap


def build_components(scenario: Scenario) -> list[Component]:
    """The components a scenario asks for, in their registered order."""
    _import_components()
    ops = getattr(scenario, "operations", None)
    for key in type(ops).model_fields if ops is not None else ():
        if getattr(ops, key) is not None and key not in REGISTRY:
            raise ValueError(f"operations.{key} is not available in this build")
    out = []
    for reg in sorted(REGISTRY.values(), key=lambda r: (r.order, r.key)):
        spec = reg.spec_of(scenario)
        if spec is not None:
            out.append(reg.build(spec, scenario))
    return out


def _import_components() -> None:
    """Components register themselves on import; import those that exist."""
    import importlib

    for module in MODULES:
        try:
            importlib.import_module(f"twin.sim.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"twin.sim.{module}":
                raise


def uniform(streams: Streams, name: str, n: int) -> np.ndarray:
    """Bulk uniforms from a named stream: components draw like the model does."""
    return streams.get(name).random(n)
