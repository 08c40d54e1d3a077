"""Demand-responsive pricing: rules that move each time band's hourly rate toward a target.

Pure decision logic, as a city's pricing office would run it: given the current rates and the
occupancy each band saw over the last adjustment period, return the next rates. The simulator
calls it on simulated weeks; an operator could call it on a month of sensor data.

* :class:`SFparkRule` - San Francisco's SFpark (2011-2013): per time band, occupancy >= 80% →
  +$0.25/h, 60-80% unchanged, < 60% → -$0.25/h, rates bounded, at most one step per period.
* :class:`TargetOccupancyRule` - Shoup's rule of thumb: steer each band toward ~85% occupancy,
  moving the rate in proportion to the gap (a damped proportional controller), one bounded step
  per period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SFparkRule:
    """SFpark's occupancy-band rule; every parameter is configurable, defaults are SFpark's."""

    raise_at: float = 0.80
    lower_below: float = 0.60
    step_cents: int = 25
    min_cents: int = 25
    max_cents: int = 600

    def __post_init__(self) -> None:
        if not 0.0 <= self.lower_below <= self.raise_at <= 1.0:
            raise ValueError("need 0 <= lower_below <= raise_at <= 1")
        if self.step_cents <= 0 or not 0 <= self.min_cents <= self.max_cents:
            raise ValueError("need step_cents > 0 and 0 <= min_cents <= max_cents")

    def adjust(self, rates: Mapping[int, int], occupancy: Mapping[int, float]) -> dict[int, int]:
        """Next hourly rate (cents) per band; bands with no occupancy reading keep their rate."""
        out = {}
        for band, rate in rates.items():
            occ = occupancy.get(band)
            step = 0
            if occ is not None:
                if occ >= self.raise_at:
                    step = self.step_cents
                elif occ < self.lower_below:
                    step = -self.step_cents
            out[band] = min(max(rate + step, self.min_cents), self.max_cents)
        return out


@dataclass(frozen=True, slots=True)
class TargetOccupancyRule:
    """Move each band's rate by ``gain × (occupancy − target)``, at most ``max_step`` a period.

    ``gain_cents`` is cents/hour per unit of occupancy gap: with 500, a band 10 points above
    target rises $0.50/h. Rounded to ``resolution_cents`` so posted rates stay tidy.
    """

    target: float = 0.85
    gain_cents: int = 500
    max_step_cents: int = 50
    resolution_cents: int = 5
    min_cents: int = 25
    max_cents: int = 600

    def __post_init__(self) -> None:
        if not 0.0 < self.target < 1.0:
            raise ValueError("target occupancy must be in (0, 1)")
        if self.gain_cents <= 0 or self.max_step_cents <= 0 or self.resolution_cents <= 0:
            raise ValueError("gain, max step and resolution must be > 0")
        if not 0 <= self.min_cents <= self.max_cents:
            raise ValueError("need 0 <= min_cents <= max_cents")

    def adjust(self, rates: Mapping[int, int], occupancy: Mapping[int, float]) -> dict[int, int]:
        out = {}
        for band, rate in rates.items():
            occ = occupancy.get(band)
            step = 0.0
            if occ is not None:
                step = max(
                    -self.max_step_cents,
                    min(self.max_step_cents, self.gain_cents * (occ - self.target)),
                )
            res = self.resolution_cents
            new = round((rate + step) / res) * res
            out[band] = min(max(new, self.min_cents), self.max_cents)
        return out


def elasticity_factor(rate: float, reference: float, elasticity: float, cap: float) -> float:
    """Demand relative to the reference price under constant elasticity, capped at ``cap``.

    ``(rate / reference) ** elasticity``: with elasticity -0.4 (SFpark's estimate), a price 10%
    above the reference loses ~3.7% of demand. A free band (rate 0) gets the cap.
    """
    if reference <= 0:
        return 1.0
    if rate <= 0:
        return cap
    return min((rate / reference) ** elasticity, cap)
