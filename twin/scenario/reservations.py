"""The ``reservations:`` section of a scenario: who books in advance and the booking rules.

Two halves. The *booking stream* (rate or hourly profile, lead time, window length, how many
cancel or do not show, how early or late holders arrive) is what the simulator draws from. The
*rules* (grace, hold lead, overbooking, reserved-share caps, money, rate limit, strikes) become
a core :class:`~twin.core.reservations.ReservationPolicy` through :meth:`ReservationsSpec.policy`,
so the rules tested in the twin are the rules a booking service runs.

Times are written in minutes/hours/days as the key names say; money in currency units (``5``,
``"2.50"``), held as integer cents. This module does not import :mod:`twin.scenario.model`, so
the scenario schema can import it without a cycle.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, field_validator, model_validator

from twin.core.reservations import ReservationPolicy
from twin.core.types import SPOT_CAPACITY, SpotType, VehicleClass
from twin.scenario.common import Spec, SpotTypeName, VehicleClassName, cents
from twin.scenario.dists import Dist, Duration
from twin.scenario.tariff import Money


class BookingProfileSpec(Spec):
    """Bookings made per hour of the day (24 values from 00:00), all days or weekday/weekend.

    The more specific key wins (``weekday``/``weekend`` over ``all``).
    """

    all: list[float] | None = None
    weekday: list[float] | None = None
    weekend: list[float] | None = None

    @field_validator("*")
    @classmethod
    def _hours(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            if len(v) != 24:
                raise ValueError(f"needs 24 hourly booking rates (00:00..23:00), got {len(v)}")
            if min(v) < 0:
                raise ValueError("hourly booking rates must be >= 0")
        return v

    @model_validator(mode="after")
    def _covers_week(self) -> BookingProfileSpec:
        if self.all is None and (self.weekday is None or self.weekend is None):
            raise ValueError("give 'all', or both 'weekday' and 'weekend'")
        return self

    def for_day(self, weekday: int) -> list[float]:
        """Hourly rates for a weekday (0 = Monday)."""
        group = self.weekday if weekday < 5 else self.weekend
        chosen = group if group is not None else self.all
        assert chosen is not None  # guaranteed by the validator
        return chosen


class ArrivalOffsetSpec(Spec):
    """When holders who come arrive, relative to their window start.

    A share ``early_share`` arrive early by a draw of ``early``; the rest late by a draw of
    ``late`` (late beyond the grace period makes them no-shows).
    """

    early_share: float = Field(ge=0, le=1, description="fraction arriving before the start")
    early: Dist | None = Field(default=None, description="how early, for early arrivals")
    late: Dist | None = Field(default=None, description="how late, for late arrivals")

    @model_validator(mode="after")
    def _both_sides(self) -> ArrivalOffsetSpec:
        if self.early_share > 0 and self.early is None:
            raise ValueError("early_share > 0 needs an 'early' distribution")
        if self.early_share < 1 and self.late is None:
            raise ValueError("early_share < 1 needs a 'late' distribution")
        return self


class RateLimitSpec(Spec):
    max_bookings: int = Field(ge=1, description="bookings one account may make ...")
    per_hours: float = Field(default=24.0, gt=0, description="... in any window this long")


class ReservationsSpec(Spec):
    """Advance bookings: the booking stream the simulator draws and the rules that judge it."""

    # -- the booking stream ------------------------------------------------------------------
    lot: str | None = Field(
        default=None, description="lot taking the bookings, in a network (default: the first)"
    )
    rate_per_hour: float | None = Field(default=None, ge=0, description="constant booking rate")
    profile: BookingProfileSpec | None = None
    spot_types: dict[SpotTypeName, float] = Field(
        default_factory=lambda: {"REGULAR": 1.0},
        description="share of bookings per spot type booked (sums to 1)",
    )
    vehicle_class: VehicleClassName = "REGULAR"
    accounts: int = Field(
        default=1000, ge=1, description="distinct customers booking (rate limit and strikes)"
    )
    lead_time: Dist = Field(description="time from booking to window start")
    window: Duration = Field(description="length of the booked window")
    dwell: Duration | None = Field(
        default=None, description="stay after arrival; default: until the window ends"
    )
    cancel_probability: float = Field(default=0.0, ge=0, le=1)
    cancel_before_start: Dist | None = Field(
        default=None, description="how long before the start cancellations come (default: any time)"
    )
    no_show_probability: float = Field(default=0.0, ge=0, le=1)
    arrival_offset: ArrivalOffsetSpec | None = Field(
        default=None, description="early/late arrival; default: exactly at the start"
    )
    # -- the rules ---------------------------------------------------------------------------
    grace_min: float = Field(default=15.0, ge=0, description="after start, then no-show")
    hold_lead_min: float = Field(default=15.0, ge=0, description="spot held from start - this")
    early_arrival_min: float | None = Field(
        default=None, ge=0, description="earliest arrival before start (default: hold_lead_min)"
    )
    pending_ttl_min: float = Field(default=15.0, gt=0, description="time to confirm a booking")
    max_lead_days: float | None = Field(default=None, gt=0, description="booking horizon")
    overbooking_factor: float = Field(default=1.0, ge=1, le=3)
    reserved_share: dict[SpotTypeName, float] = Field(
        description="largest share of each type's spots held for reservations at once"
    )
    deposit: Money = Field(
        default=Decimal(0), description="captured on no-show; counts towards the price"
    )
    no_show_penalty: Money = Field(default=Decimal(0), description="captured on no-show, on top")
    free_cancel_before_h: float = Field(
        default=1.0, ge=0, description="cancel at least this early for a full refund"
    )
    late_cancel_refund_share: float = Field(
        default=0.0, ge=0, le=1, description="share of the deposit refunded on a late cancel"
    )
    rate_limit: RateLimitSpec | None = None
    strike_threshold: int | None = Field(
        default=None, ge=1, description="no-shows after which an account cannot book"
    )

    @field_validator("reserved_share")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("give the reservable share for at least one spot type")
        bad = {k: s for k, s in v.items() if not 0 < s <= 1}
        if bad:
            raise ValueError(f"reserved shares must be in (0, 1], got {bad}")
        return v

    @field_validator("spot_types")
    @classmethod
    def _mix(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("give at least one spot type to book")
        bad = {k: s for k, s in v.items() if not s > 0}
        if bad:
            raise ValueError(f"booking shares must be > 0, got {bad}")
        total = sum(v.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"booking shares must sum to 1, got {total:g}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ReservationsSpec:
        given = [k for k in ("rate_per_hour", "profile") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'rate_per_hour' or 'profile' for bookings")
        if self.cancel_probability + self.no_show_probability > 1 + 1e-9:
            raise ValueError(
                f"cancel_probability + no_show_probability = "
                f"{self.cancel_probability + self.no_show_probability:g} exceeds 1"
            )
        unreservable = sorted(set(self.spot_types) - set(self.reserved_share))
        if unreservable:
            raise ValueError(
                f"bookings for {unreservable} would all be refused: add them to 'reserved_share'"
            )
        size = VehicleClass[self.vehicle_class]
        too_small = sorted(t for t in self.spot_types if SPOT_CAPACITY[SpotType[t]] < size)
        if too_small:
            raise ValueError(f"a {self.vehicle_class} vehicle does not fit {too_small} spots")
        return self

    def policy(self) -> ReservationPolicy:
        """The core rules these settings describe (seconds, cents)."""
        return ReservationPolicy(
            reserved_share={SpotType[k]: v for k, v in self.reserved_share.items()},
            overbooking_factor=self.overbooking_factor,
            grace_s=self.grace_min * 60.0,
            hold_lead_s=self.hold_lead_min * 60.0,
            early_arrival_s=None if self.early_arrival_min is None else self.early_arrival_min * 60,
            pending_ttl_s=self.pending_ttl_min * 60.0,
            max_lead_s=None if self.max_lead_days is None else self.max_lead_days * 86_400.0,
            deposit_cents=cents(self.deposit),
            no_show_penalty_cents=cents(self.no_show_penalty),
            free_cancel_before_s=self.free_cancel_before_h * 3600.0,
            late_cancel_refund_share=self.late_cancel_refund_share,
            rate_limit_max=None if self.rate_limit is None else self.rate_limit.max_bookings,
            rate_limit_window_s=86_400.0
            if self.rate_limit is None
            else self.rate_limit.per_hours * 3600.0,
            strike_threshold=self.strike_threshold,
        )
