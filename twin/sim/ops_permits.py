"""Permits and special spots in the model: monthly permit holders, accessible bays, EV chargers.

The ``operations.permits`` section of a scenario switches this component on. It runs the
production objects of :mod:`twin.core.permits` on the model's cars; every random number is drawn
in bulk at :meth:`PermitsComponent.start`, one named stream per purpose (``permits/holder``,
``permits/plate``, ``permits/violation``, ``permits/inspection``, ``permits/ev_energy``), so a
scenario and seed give the same figures, and switching a part off does not move another's draws.

Monthly permits
    Holders are drivers of the demand streams named in ``monthly.streams`` (``holder_share`` of
    them), so their arrivals and stays are the model's own and show in every table and figure.
    ``holders`` permits are sold, each with ``plates_per_permit`` plates; a holder arriving at
    the permit lot takes, with a pre-drawn uniform, one plate among those whose car is outside
    (each arrival is a distinct physical car, so anti-passback never refuses a simulated car).
    ``PermitRegistry.enter`` parks them: in their assigned spot (held RESERVED while the permit
    is valid, so walk-ins never get it) if it is free, otherwise in a general spot. They pay
    nothing: at exit the tariff amount is set to 0 and counted as *waived*. A holder arriving
    at a full lot is turned away (``turned_away`` outcome, ``monthly.refused_full``): permit
    holders do not queue for a walk-in spot or pay for one. Holders skip the price check and
    the entry barrier (the framework parks a component's car at once).

Accessible bays
    The core never gives a HANDICAP bay to a car without a placard. A driver without one who
    finds no legal spot free takes a free HANDICAP bay anyway with ``violation_probability``
    (decided at arrival, before price and barrier); every stay in a HANDICAP bay is inspected
    once at exit, and an illegal one is caught with ``enforcement_probability`` and fined.

EV charging
    An EV parked in an EV bay plugs in at once and wants ``energy_kwh`` (drawn per driver); it
    charges for ``energy / power`` hours or until it leaves, and the rest of its stay it is
    *idle at the charger*. Energy, time and idle fees are figures of their own: the parking
    amount is unchanged.

Cars another component parks (reservation holders, announced through ``on_external_park`` /
``on_external_leave``) are inspected and billed the same way; not being the model's drivers,
their draws come in chunks from ``permits/external_inspection`` and
``permits/external_ev_energy``, and their leaves let a permit claim the spot they freed.

Figures (``permits.<part>.<name>`` in the metrics and ``summary.json``) count what happened in
``[warm-up, horizon)`` as the model's revenue does: entries and illegal parkings by arrival time,
exits, waivers, inspections, fines and charging sessions by the time the car left its spot. Stays
still open at the horizon are not counted. Money is in currency units, like ``revenue``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.core.errors import LotFull, NoCompatibleSpot
from twin.core.permits import ChargingStations, HandicapEnforcer, MonthlyPermit, PermitRegistry
from twin.core.types import SPOT_CAPACITY, SpotStatus, SpotType, Vehicle, VehicleClass
from twin.sim.build import calendar_for
from twin.sim.components import TURN_AWAY, Component, ModelContext, register

if TYPE_CHECKING:
    from twin.core.lot import Lot, Session
    from twin.scenario.model import Scenario
    from twin.scenario.permits import MonthlyPermitsSpec, PermitsSpec

_HOLDER = 1  # bit of a driver's code: a permit holder (at the permit lot)
_VIOLATOR = 2  # bit: would take a HANDICAP bay illegally when no legal spot is free
_EV = SpotType.EV
_HANDICAP = SpotType.HANDICAP
_DAY = 86_400.0


def _holder_streams(monthly: MonthlyPermitsSpec, scenario: Scenario) -> tuple[list[int], int]:
    """Indexes of the holders' demand streams and of the lot their permits are for.

    Raises ValueError (the CLI shows it as one line, exit 2) for what only the whole scenario
    can tell: unknown stream names, holders spread over several lots, assigned spots the
    holders' cars may not use.
    """
    where = "operations.permits.monthly"
    if monthly.streams is None:
        raise ValueError(
            f"{where}: the simulator takes permit holders from demand streams: name them in "
            "'streams' (the visit keys arrival_time/dwell/visit_days describe holders for core "
            "studies only)"
        )
    names = [s.name for s in scenario.demand]
    unknown = [s for s in monthly.streams if s not in names]
    if unknown:
        raise ValueError(
            f"{where}.streams: unknown demand stream(s) {', '.join(map(repr, unknown))} "
            f"(streams: {', '.join(names)})"
        )
    index = [names.index(s) for s in monthly.streams]
    lot_names = [lot.name for lot in scenario.lot_specs]
    targets = {scenario.demand[k].lot for k in index}
    if "*" in targets or len(targets) > 1:
        raise ValueError(
            f"{where}.streams: permits are for one lot; the holders' streams must all target "
            f"the same lot (got {sorted(str(t) for t in targets)})"
        )
    target = targets.pop()
    lot = 0 if target is None else lot_names.index(target)
    if monthly.assigned_spots:
        stype = SpotType[monthly.assigned_spot_type]
        for k in index:
            stream = scenario.demand[k]
            if SPOT_CAPACITY[stype] < VehicleClass[stream.vehicle_class]:
                raise ValueError(
                    f"{where}: stream {stream.name!r} has {stream.vehicle_class} vehicles, "
                    f"which do not fit {stype.name} assigned spots"
                )
            if stype is _EV and stream.ev_share < 1:
                raise ValueError(
                    f"{where}: EV assigned spots need holders' streams with ev_share: 1 "
                    f"(stream {stream.name!r} has {stream.ev_share:g})"
                )
    return index, lot


def _assign_spots(lot: Lot, stype: SpotType, count: int) -> list[int]:
    """The ``count`` spots of ``stype`` the lot's strategy ranks best (nearest, by default).

    Assigned spots are the premium ones a garage sells; the strategy's free-spot index picks
    them in O(count log n). They are handed back AVAILABLE: the registry holds them itself.
    """
    have = lot.capacity_by_type[stype]
    if count > have:
        raise ValueError(
            f"operations.permits.monthly.assigned_spots: {count} {stype.name} spots asked, "
            f"lot {lot.lot_id!r} has {have}"
        )
    chosen: list[int] = []
    try:
        for _ in range(count):
            spot = lot.hold_spot(stype, 0.0)
            if spot is None:  # pragma: no cover - capacity checked above, lot empty at start
                raise ValueError(f"lot {lot.lot_id!r}: no free {stype.name} spot to assign")
            chosen.append(spot.index)
    finally:
        for index in chosen:
            lot.set_status(index, SpotStatus.AVAILABLE, 0.0)
    return chosen


class _PlatePool:
    """Plates whose car is outside: draw one with a uniform, put it back on exit, both O(1)."""

    def __init__(self, plates: list[str]) -> None:
        self.outside = list(plates)
        self.pos = {plate: j for j, plate in enumerate(self.outside)}

    def __len__(self) -> int:
        return len(self.outside)

    def take(self, u: float) -> str:
        outside, pos = self.outside, self.pos
        j = int(u * len(outside))
        plate = outside[j]
        last = outside.pop()
        if last is not plate:
            outside[j] = last
            pos[last] = j
        del pos[plate]
        return plate

    def give_back(self, plate: str) -> None:
        self.pos[plate] = len(self.outside)
        self.outside.append(plate)


class _Draws:
    """Numbers for cars the model did not draw (another component's), drawn in chunks.

    Reservation holders are not among the model's drivers, so their energy wants and
    inspection draws cannot be per-driver arrays; a chunk of draws at a time keeps scipy off
    the per-car path, and the order of calls (fixed by the event order) keeps runs repeatable.
    """

    def __init__(self, draw: Callable[[int], np.ndarray], chunk: int = 256) -> None:
        self._draw = draw
        self._chunk = chunk
        self._values: list[float] = []
        self._next = 0

    def next(self) -> float:
        if self._next == len(self._values):
            self._values = self._draw(self._chunk).tolist()
            self._next = 0
        self._next += 1
        return self._values[self._next - 1]


@register("permits", order=10)
class PermitsComponent(Component):
    """Monthly permit holders, accessible-bay violations and EV charging on the model's cars."""

    name = "permits"

    def __init__(self, spec: PermitsSpec, scenario: Scenario) -> None:
        self.spec = spec
        self.scenario = scenario
        self.registry: PermitRegistry | None = None
        self.enforcer: HandicapEnforcer | None = None
        self.stations: list[ChargingStations] | None = None
        self.assigned: list[int] = []  # assigned spot indexes in the permit lot
        self._permit_lot = -1
        self._streams: list[int] = []
        if spec.monthly is not None:  # fail before any run, with the scenario's names
            self._streams, self._permit_lot = _holder_streams(spec.monthly, scenario)
        self._n: dict[str, float] = {}  # counted figures (in [warm-up, horizon))
        self._visits: list[tuple] = []
        self._charges: list[tuple] = []

    # -- set-up -------------------------------------------------------------------------------
    def start(self, ctx: ModelContext) -> None:
        """Build the core objects, hold assigned spots and draw every per-driver number."""
        super().start(ctx)
        sc, d = ctx.scenario, ctx.drivers
        n = len(d)
        self.t0 = 0.0 if sc.warmup_hours == "auto" else sc.warmup_s
        self.days = (ctx.horizon - self.t0) / _DAY
        self._n = dict.fromkeys(_COUNTERS, 0.0)
        code = np.zeros(n, dtype=np.int8)
        if self.spec.monthly is not None:
            code |= self._start_monthly(ctx) * np.int8(_HOLDER)
        handicap = self.spec.handicap
        if handicap is not None:
            self.enforcer = HandicapEnforcer(handicap.build())
            self._fine_cents = self.enforcer.policy.fine_cents
            u = ctx.streams.get("permits/violation").random(n)
            code |= (~d.handicap & (u < handicap.violation_probability)) * np.int8(_VIOLATOR)
            self._inspect_u = ctx.streams.get("permits/inspection").random(n).tolist()
            inspection = ctx.streams.get("permits/external_inspection")
            self._external_inspection = _Draws(inspection.random)
            # the lot plans allocations per (class, placard, EV) profile: one vehicle each
            self._walk_in = {
                (c, e): Vehicle(f"sim:{c.name}{':ev' * e}", c, False, bool(e))
                for c in VehicleClass
                for e in (0, 1)
            }
        ev = self.spec.ev_charging
        if ev is not None:
            self.stations = [ChargingStations(ev.build()) for _ in ctx.lots]
            energy = ev.energy_kwh.sample(ctx.streams.get("permits/ev_energy"), n)
            self._energy = np.maximum(energy, 0.0).tolist()
            gen = ctx.streams.get("permits/external_ev_energy")
            self._external_energy = _Draws(
                lambda size: np.maximum(ev.energy_kwh.sample(gen, size), 0.0)
            )
        self._code = code.tolist()
        self._vclass = d.vclass.tolist()
        self._ev = d.ev.tolist()
        self._placard = d.handicap.tolist()

    def _start_monthly(self, ctx: ModelContext) -> np.ndarray:
        """Register the permits, hold their spots and mark holders; returns the holder mask."""
        monthly = self.spec.monthly
        assert monthly is not None
        d, n = ctx.drivers, len(ctx.drivers)
        lot = ctx.lots[self._permit_lot]
        stype = SpotType[monthly.assigned_spot_type]
        self.assigned = _assign_spots(lot, stype, monthly.assigned_spots)
        self._assigned_set = frozenset(self.assigned)
        calendar = calendar_for(ctx.scenario)
        valid_from = (
            calendar.to_seconds(monthly.valid_from) if monthly.valid_from is not None else 0.0
        )
        valid_until = (
            calendar.to_seconds(monthly.valid_until)
            if monthly.valid_until is not None
            else math.inf
        )
        permits = [
            MonthlyPermit(
                permit_id=f"P{p:05d}",
                plates=frozenset(f"P{p:05d}-{c}" for c in range(monthly.plates_per_permit)),
                valid_from=valid_from,
                valid_until=valid_until,
                assigned_spot=self.assigned[p] if p < len(self.assigned) else None,
            )
            for p in range(monthly.holders)
        ]
        registry = self.registry = PermitRegistry(lot)
        registry.add_many(permits, 0.0)
        k = self._permit_lot

        def boundary(t: float) -> None:
            registry.advance(t)
            ctx.spot_freed(k, t)  # expired holds are spots for drivers waiting now

        for t in (valid_from, valid_until):  # holds start and end on time, arrivals or not
            if 0.0 < t < ctx.horizon:
                ctx.call_at(t, boundary)
        self._idle_at_t0 = 0.0
        if self.t0 > 0.0:

            def snapshot(t: float) -> None:
                self._idle_at_t0 = registry.idle_spot_seconds(t)

            ctx.call_at(self.t0, snapshot)
        self._pool = _PlatePool(sorted(p for permit in permits for p in permit.plates))
        self._plate_u = ctx.streams.get("permits/plate").random(n).tolist()
        self._plate_of: dict[int, str] = {}
        self._fee_per_day = float(monthly.monthly_fee) * monthly.holders * 12 / 365
        u = ctx.streams.get("permits/holder").random(n)
        return np.isin(d.stream, self._streams) & (u < monthly.holder_share)

    # -- moments ------------------------------------------------------------------------------
    def on_arrival(self, i: int, k: int, t: float) -> Session | str | None:
        """Park a permit holder or a driver ignoring the accessible-bay sign; else carry on."""
        code = self._code[i]
        if not code:
            return None
        if code & _HOLDER and k == self._permit_lot:
            verdict = self._holder_arrives(i, t)
            if verdict is not None:
                return verdict
        if code & _VIOLATOR:
            return self._park_illegally(i, k, t)
        return None

    def _holder_arrives(self, i: int, t: float) -> Session | str | None:
        registry, pool, n = self.registry, self._pool, self._n
        assert registry is not None
        counted = t >= self.t0
        if not pool:  # more holders' cars inside than plates sold: this one pays
            n["monthly.plates_exhausted"] += counted
            return None
        plate = pool.take(self._plate_u[i])
        vehicle = Vehicle(plate, VehicleClass(self._vclass[i]), self._placard[i], self._ev[i])
        stats = registry.stats
        assigned, busy = stats.assigned_entries, stats.assigned_busy
        try:
            session = registry.enter(vehicle, t)
        except (LotFull, NoCompatibleSpot):
            pool.give_back(plate)
            n["monthly.refused_full"] += counted
            return TURN_AWAY
        if session is None:  # outside the permit's validity: a paying driver
            pool.give_back(plate)
            n["monthly.not_valid"] += counted
            return None
        self._plate_of[i] = plate
        if counted:
            n["monthly.entries"] += 1
            n["monthly.assigned_entries"] += stats.assigned_entries - assigned
            n["monthly.assigned_busy"] += stats.assigned_busy - busy
        return session

    def _park_illegally(self, i: int, k: int, t: float) -> Session | None:
        lot = self.ctx.lots[k]
        if not any(row[_HANDICAP] for row in lot.available):
            return None  # no free accessible bay to misuse
        assert self.enforcer is not None
        vehicle = self._walk_in[(VehicleClass(self._vclass[i]), int(self._ev[i]))]
        if lot.has_space_for(vehicle):
            return None  # a legal spot is free: they take it
        session = self.enforcer.park_illegally(lot, vehicle, t)
        if session is not None and t >= self.t0:
            self._n["handicap.illegal_parkings"] += 1
        return session

    def on_park(self, i: int, k: int, session: Session, t: float) -> None:
        """Plug an EV parked at a charger in."""
        if self.stations is None or not session.vehicle.ev:
            return
        if session.spot.type is _EV:
            self.stations[k].plug_in(session, self._energy[i], t)
        elif t >= self.t0:
            self._n["ev.parked_without_charger"] += 1

    def on_external_park(self, k: int, session: Session, t: float) -> None:
        """Another component's car (a reservation holder) parked: plug it in at a charger."""
        if self.stations is not None and session.vehicle.ev and session.spot.type is _EV:
            self.stations[k].plug_in(session, self._external_energy.next(), t)

    def on_external_leave(self, k: int, session: Session, t: float) -> None:
        """Another component's car left: a permit may claim the spot; inspect, bill the EV."""
        if self.registry is not None and k == self._permit_lot:
            self.registry.on_spot_freed(session.spot.index, t)
        self._bays(-1, k, session, t)

    def on_leave(self, i: int, k: int, session: Session, t: float) -> float:
        """Waive a holder's amount, re-hold assigned spots, inspect accessible bays, bill EVs."""
        counted = t >= self.t0
        n = self._n
        registry = self.registry
        if registry is not None and k == self._permit_lot:
            plate = self._plate_of.pop(i, None)
            if plate is not None:
                entry_t = session.entry_t
                waived = registry.settle_exit(session, t)
                self._pool.give_back(plate)
                assigned = session.spot.index in self._assigned_set
                lot_id = self.ctx.lots[k].lot_id
                self._visits.append(
                    (i, plate, lot_id, session.spot.id, entry_t, t, assigned, waived / 100.0)
                )
                if counted:
                    n["monthly.exits"] += 1
                    n["monthly.waived_cents"] += waived
            else:  # a walk-in freed a spot a permit may be waiting to claim
                registry.on_spot_freed(session.spot.index, t)
        self._bays(i, k, session, t)
        return 0.0

    def _bays(self, i: int, k: int, session: Session, t: float) -> None:
        """Inspect a stay in an accessible bay, settle one at a charger (``i`` -1: external)."""
        counted = t >= self.t0
        n = self._n
        spot_type = session.spot.type
        if spot_type is _HANDICAP and self.enforcer is not None:
            u = self._inspect_u[i] if i >= 0 else self._external_inspection.next()
            fined = self.enforcer.inspect(session, u)
            if counted:
                n["handicap.inspected"] += 1
                n["handicap.violations"] += not session.vehicle.handicap
                n["handicap.caught"] += fined
                n["handicap.fines_cents"] += self._fine_cents * fined
        elif spot_type is _EV and self.stations is not None and session.vehicle.ev:
            bill = self.stations[k].unplug(session.ticket, t)
            self._charges.append(
                (
                    i,
                    self.ctx.lots[k].lot_id,
                    session.spot.id,
                    t - bill.charge_s - bill.idle_s,
                    t,
                    bill.energy_kwh,
                    bill.charge_s / 3600.0,
                    bill.idle_s / 60.0,
                    bill.energy_fee_cents / 100.0,
                    bill.time_fee_cents / 100.0,
                    bill.idle_fee_cents / 100.0,
                )
            )
            if counted:
                n["ev.sessions"] += 1
                n["ev.kwh"] += bill.energy_kwh
                n["ev.charge_hours"] += bill.charge_s / 3600.0
                n["ev.idle_hours"] += bill.idle_s / 3600.0
                n["ev.billable_idle_hours"] += bill.billable_idle_s / 3600.0
                n["ev.energy_fees_cents"] += bill.energy_fee_cents
                n["ev.time_fees_cents"] += bill.time_fee_cents
                n["ev.idle_fees_cents"] += bill.idle_fee_cents

    # -- results ------------------------------------------------------------------------------
    def finish(self, t: float) -> dict[str, float]:
        """The figures of the parts the scenario switched on (see the module docstring)."""
        n, days, out = self._n, self.days, {}
        if self.registry is not None:
            idle_h = (self.registry.idle_spot_seconds(t) - self._idle_at_t0) / 3600.0
            hours = len(self.assigned) * (t - self.t0) / 3600.0
            waived = n["monthly.waived_cents"] / 100.0
            out.update(
                {
                    "monthly.entries": n["monthly.entries"],
                    "monthly.entries_per_day": n["monthly.entries"] / days,
                    "monthly.assigned_entries": n["monthly.assigned_entries"],
                    "monthly.assigned_busy": n["monthly.assigned_busy"],
                    "monthly.refused_full": n["monthly.refused_full"],
                    "monthly.not_valid": n["monthly.not_valid"],
                    "monthly.plates_exhausted": n["monthly.plates_exhausted"],
                    "monthly.exits": n["monthly.exits"],
                    "monthly.waived_revenue": waived,
                    "monthly.waived_revenue_per_day": waived / days,
                    "monthly.assigned_idle_spot_hours": idle_h,
                    "monthly.assigned_idle_share": idle_h / hours if hours else math.nan,
                    "monthly.fee_revenue_per_day": self._fee_per_day,
                }
            )
        if self.enforcer is not None:
            fines = n["handicap.fines_cents"] / 100.0
            out.update(
                {
                    "handicap.illegal_parkings": n["handicap.illegal_parkings"],
                    "handicap.inspected": n["handicap.inspected"],
                    "handicap.violations": n["handicap.violations"],
                    "handicap.caught": n["handicap.caught"],
                    "handicap.fines": fines,
                    "handicap.fines_per_day": fines / days,
                }
            )
        if self.stations is not None:
            fees = {part: n[f"ev.{part}_fees_cents"] / 100.0 for part in ("energy", "time", "idle")}
            revenue = sum(n[f"ev.{part}_fees_cents"] for part in ("energy", "time", "idle")) / 100
            out.update(
                {
                    "ev.sessions": n["ev.sessions"],
                    "ev.kwh": n["ev.kwh"],
                    "ev.kwh_per_day": n["ev.kwh"] / days,
                    "ev.charge_hours": n["ev.charge_hours"],
                    "ev.idle_hours": n["ev.idle_hours"],
                    "ev.billable_idle_hours": n["ev.billable_idle_hours"],
                    "ev.parked_without_charger": n["ev.parked_without_charger"],
                    **{f"ev.{part}_fees": value for part, value in fees.items()},
                    "ev.charging_revenue": revenue,
                    "ev.charging_revenue_per_day": revenue / days,
                }
            )
        return {key: float(value) for key, value in out.items()}

    def frames(self) -> dict[str, pd.DataFrame]:
        """Tidy tables: one row per permit visit and per charging session (whole horizon).

        Typed explicitly, so a replication without a visit gives the same dtypes as one with
        many (lots as the categories of the scenario's lots, as in the vehicles frame)."""
        out = {}
        lots = pd.CategoricalDtype([spec.name for spec in self.scenario.lot_specs])
        if self.registry is not None:
            out["visits"] = pd.DataFrame(
                self._visits,
                columns=[
                    "driver",
                    "plate",
                    "lot",
                    "spot",
                    "entry_s",
                    "exit_s",
                    "assigned_spot",
                    "waived",
                ],
            ).astype(
                {
                    "driver": "int64", "plate": "str", "lot": lots, "spot": "str",
                    "entry_s": "float64", "exit_s": "float64", "assigned_spot": "bool",
                    "waived": "float64",
                }
            )  # fmt: skip
        if self.stations is not None:
            out["charging"] = pd.DataFrame(
                self._charges,
                columns=[
                    "driver",
                    "lot",
                    "spot",
                    "plug_s",
                    "unplug_s",
                    "energy_kwh",
                    "charge_h",
                    "idle_min",
                    "energy_fee",
                    "time_fee",
                    "idle_fee",
                ],
            ).astype({"lot": lots, "spot": "str"} | {c: "float64" for c in _CHARGE_FLOATS})
            # a car a component parked (a reservation holder) is no driver of the vehicles
            # frame: its driver is empty, not -1
            driver = out["charging"]["driver"].astype("Int64")
            out["charging"]["driver"] = driver.mask(driver < 0)
        return out


#: The float columns of the ``charging`` frame.
_CHARGE_FLOATS = (
    "plug_s", "unplug_s", "energy_kwh", "charge_h", "idle_min", "energy_fee", "time_fee",
    "idle_fee",
)  # fmt: skip

#: Every counter a run may fill; parts switched off simply never touch theirs.
_COUNTERS = (
    "monthly.entries",
    "monthly.assigned_entries",
    "monthly.assigned_busy",
    "monthly.refused_full",
    "monthly.not_valid",
    "monthly.plates_exhausted",
    "monthly.exits",
    "monthly.waived_cents",
    "handicap.illegal_parkings",
    "handicap.inspected",
    "handicap.violations",
    "handicap.caught",
    "handicap.fines_cents",
    "ev.sessions",
    "ev.kwh",
    "ev.charge_hours",
    "ev.idle_hours",
    "ev.billable_idle_hours",
    "ev.parked_without_charger",
    "ev.energy_fees_cents",
    "ev.time_fees_cents",
    "ev.idle_fees_cents",
)
