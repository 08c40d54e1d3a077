"""Scenario settings for demand-responsive pricing and price elasticity of demand."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, model_validator

from twin.core.adaptive import SFparkRule, TargetOccupancyRule
from twin.scenario.common import Spec


def _cents(dollars: float) -> int:
    return int((Decimal(str(dollars)) * 100).to_integral_value())


class _Spec(Spec):
    adjust_every_days: float = Field(
        default=7.0, gt=0, description="simulated days between rate changes (one step at most)"
    )
    sample_minutes: float = Field(default=15.0, gt=0, description="occupancy sampling step")
    min_rate: float = Field(default=0.25, ge=0, description="$/h floor")
    max_rate: float = Field(default=6.00, gt=0, description="$/h ceiling")

    @model_validator(mode="after")
    def _bounds(self) -> _Spec:
        if self.min_rate > self.max_rate:
            raise ValueError(
                f"min_rate ({self.min_rate}) must not exceed max_rate ({self.max_rate})"
            )
        return self


class SFparkSpec(_Spec):
    """SFpark: ≥ raise_at → +step, < lower_below → −step, else unchanged (per time band)."""

    rule: Literal["sfpark"]
    raise_at: float = Field(default=0.80, ge=0, le=1)
    lower_below: float = Field(default=0.60, ge=0, le=1)
    step: float = Field(default=0.25, gt=0, description="$/h per adjustment")

    @model_validator(mode="after")
    def _order(self) -> SFparkSpec:
        if self.lower_below > self.raise_at:
            raise ValueError("lower_below must not exceed raise_at")
        return self

    def build(self) -> SFparkRule:
        return SFparkRule(
            raise_at=self.raise_at,
            lower_below=self.lower_below,
            step_cents=_cents(self.step),
            min_cents=_cents(self.min_rate),
            max_cents=_cents(self.max_rate),
        )


class TargetOccupancySpec(_Spec):
    """Steer each band toward a target occupancy (Shoup's ~85%) with a bounded step."""

    rule: Literal["target_occupancy"]
    target: float = Field(default=0.85, gt=0, lt=1)
    gain: float = Field(default=5.0, gt=0, description="$/h per unit of occupancy gap")
    max_step: float = Field(default=0.50, gt=0, description="$/h per adjustment, at most")
    resolution: float = Field(default=0.05, gt=0, description="posted rates are multiples")

    def build(self) -> TargetOccupancyRule:
        return TargetOccupancyRule(
            target=self.target,
            gain_cents=_cents(self.gain),
            max_step_cents=_cents(self.max_step),
            resolution_cents=_cents(self.resolution),
            min_cents=_cents(self.min_rate),
            max_cents=_cents(self.max_rate),
        )


PricingPolicySpec = Annotated[SFparkSpec | TargetOccupancySpec, Field(discriminator="rule")]


class ElasticitySpec(Spec):
    """Constant-elasticity demand: arrivals scale by (hourly rate / reference_rate) ** value.

    The stream's rate or profile is what was observed at ``reference_rate``; SFpark's estimate
    of the elasticity is about −0.4.
    """

    value: float = Field(le=0, description="elasticity of demand, e.g. -0.4")
    reference_rate: float = Field(gt=0, description="$/h at which the stream's rate was observed")
    cap: float = Field(
        default=2.0, ge=1, description="most demand can grow when prices fall (× observed)"
    )
