"""The ``permits:`` section of a scenario: monthly permit holders, accessible bays, EV charging.

In the simulator (``twin.sim.ops_permits``) permit holders are drivers of the demand streams
named in :class:`MonthlyPermitsSpec` ``streams``: their arrivals and stays are drawn like every
other driver's, so they show in every table and figure. The rules become core objects
(:class:`~twin.core.permits.HandicapEnforcement`, :class:`~twin.core.permits.ChargingPolicy`)
through ``build()``. Money is written in currency units and held as integer cents; energies
in kWh. This module does not import :mod:`twin.scenario.model`, so the scenario schema can
import it without a cycle.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field, field_validator, model_validator

from twin.core.permits import ChargingPolicy, HandicapEnforcement
from twin.core.types import SPOT_CAPACITY, SpotType, VehicleClass
from twin.scenario.common import Days, Spec, SpotTypeName, VehicleClassName, cents
from twin.scenario.dists import Dist, Duration
from twin.scenario.tariff import Money

#: Visit settings of the stand-alone holder description; with ``streams`` the demand streams
#: say all this, so giving them as well would be two answers to one question.
_VISIT_KEYS = (
    "vehicle_class",
    "ev_share",
    "visit_days",
    "visit_probability",
    "arrival_time",
    "dwell",
)


class MonthlyPermitsSpec(Spec):
    """Contract parkers: how many, when they come, and whether a spot is kept for them.

    Two ways to say when holders come. ``streams`` names demand streams whose drivers are the
    holders (``holder_share`` of them): what the simulator runs, because the model's drivers all
    come from ``demand``. The visit keys (``arrival_time``, ``dwell``, ``visit_days``, ...)
    describe holders on their own, for studies of the core; the simulator refuses them.
    """

    holders: int = Field(ge=1, description="number of monthly permits sold")
    streams: list[str] | None = Field(
        default=None,
        min_length=1,
        description="demand streams whose drivers are the permit holders (their arrivals, "
        "stays, vehicle class and EV flags come from there); each arrival takes a plate of a "
        "permit whose cars are all outside",
    )
    holder_share: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="share of those streams' drivers who hold a permit; the rest pay",
    )
    plates_per_permit: int = Field(default=1, ge=1, description="cars registered per permit")
    vehicle_class: VehicleClassName = "REGULAR"
    ev_share: float = Field(default=0.0, ge=0, le=1)
    visit_days: Days = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"],
        description="days holders come (mon..sun, weekdays, weekend, all)",
    )
    visit_probability: float = Field(
        default=0.9, ge=0, le=1, description="chance a holder comes on a visit day"
    )
    arrival_time: Dist | None = Field(
        default=None,
        description="time of day of arrival, from midnight, e.g. {type: uniform, low: 7.5, "
        "high: 9.5, unit: h} (without 'streams')",
    )
    dwell: Duration | None = Field(default=None, description="stay length (without 'streams')")
    assigned_spots: int = Field(
        default=0, ge=0, description="holders with a spot kept for them (out of allocation)"
    )
    assigned_spot_type: SpotTypeName = "REGULAR"
    monthly_fee: Money = Field(default=Decimal(0), description="paid per permit per month")
    valid_from: datetime | None = Field(default=None, description="default: simulation start")
    valid_until: datetime | None = Field(default=None, description="default: never expires")

    @model_validator(mode="after")
    def _consistent(self) -> MonthlyPermitsSpec:
        if self.streams is not None:
            both = [k for k in _VISIT_KEYS if k in self.model_fields_set]
            if both:
                raise ValueError(
                    "with 'streams', holders' arrivals, stays, class and EV share come from those "
                    f"demand streams: remove {', '.join(repr(k) for k in both)}"
                )
            if len(set(self.streams)) != len(self.streams):
                raise ValueError(f"'streams' names a stream twice: {self.streams}")
        elif self.arrival_time is None or self.dwell is None:
            raise ValueError(
                "give 'streams' (demand streams whose drivers hold the permits), or "
                "'arrival_time' and 'dwell'"
            )
        if self.assigned_spots > self.holders:
            raise ValueError(
                f"assigned_spots ({self.assigned_spots}) cannot exceed holders ({self.holders})"
            )
        if self.assigned_spots:
            stype = SpotType[self.assigned_spot_type]
            if stype is SpotType.HANDICAP:
                raise ValueError(
                    "HANDICAP bays cannot be assigned: they stay open to every permit holder"
                )
            # with 'streams', class and EV share are the streams': the simulator checks them
            if self.streams is None:
                if SPOT_CAPACITY[stype] < VehicleClass[self.vehicle_class]:
                    raise ValueError(
                        f"a {self.vehicle_class} vehicle does not fit a {stype.name} assigned spot"
                    )
                if stype is SpotType.EV and self.ev_share < 1:
                    raise ValueError("EV assigned spots need ev_share: 1 (only EVs may use them)")
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_until <= self.valid_from
        ):
            raise ValueError("valid_until must be after valid_from")
        return self


class HandicapSpec(Spec):
    """Accessible bays: how often drivers without a permit use them, and how often it is caught."""

    violation_probability: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="chance a driver without a permit who finds no legal spot takes a free "
        "HANDICAP bay anyway",
    )
    enforcement_probability: float = Field(
        ge=0, le=1, description="chance an illegal stay is caught and fined"
    )
    fine: Money = Field(default=Decimal(0))

    def build(self) -> HandicapEnforcement:
        return HandicapEnforcement(self.enforcement_probability, cents(self.fine))


class EVChargingSpec(Spec):
    """Chargers at EV bays: power, energy wanted per car, and what charging and idling cost."""

    charger_power_kw: float = Field(gt=0, le=1000, description="power of each charger")
    energy_kwh: Dist = Field(
        description="energy each EV wants, in kWh (the distribution's unit key is ignored)"
    )
    fee_per_kwh: Money = Field(default=Decimal(0))
    fee_per_hour: Money = Field(default=Decimal(0), description="per hour of charging")
    idle_fee_per_hour: Money = Field(
        default=Decimal(0), description="per hour plugged in after charging ended, after grace"
    )
    idle_grace_min: float = Field(default=0.0, ge=0)

    @field_validator("energy_kwh")
    @classmethod
    def _positive_mean(cls, v: Dist) -> Dist:
        if not v.mean_value > 0:
            raise ValueError("the mean energy per EV must be > 0 kWh")
        return v

    def build(self) -> ChargingPolicy:
        return ChargingPolicy(
            power_kw=self.charger_power_kw,
            fee_cents_per_kwh=cents(self.fee_per_kwh),
            fee_cents_per_hour=cents(self.fee_per_hour),
            idle_fee_cents_per_hour=cents(self.idle_fee_per_hour),
            idle_grace_s=self.idle_grace_min * 60.0,
        )


class PermitsSpec(Spec):
    """Every special-access rule of the lot; leave a part out to switch it off."""

    monthly: MonthlyPermitsSpec | None = None
    handicap: HandicapSpec | None = None
    ev_charging: EVChargingSpec | None = None

    @model_validator(mode="after")
    def _something(self) -> PermitsSpec:
        if self.monthly is None and self.handicap is None and self.ev_charging is None:
            raise ValueError("give at least one of 'monthly', 'handicap' or 'ev_charging'")
        return self
