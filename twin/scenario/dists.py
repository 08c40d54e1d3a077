"""Distributions as scenario data, sampled in bulk through scipy.stats.

A distribution is written in a scenario as ``{type: lognormal, mean: 120, sd: 60, unit: min}``.
Means and standard deviations are what planners know from their data, so every family is
parameterised by them and converted to scipy's shape/scale here, once.
"""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator
from scipy import optimize, special, stats

from twin.scenario.common import Spec

#: Seconds per unit; time distributions are sampled in seconds.
UNIT_SECONDS: dict[str, float] = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
Unit = Literal["s", "min", "h", "d"]

#: The longest mean (or sd, or value) a duration may have: a year. A longer stay, wait or
#: service has no meaning in a parking study, and prices are worked out day by day over a stay,
#: so a dwell of 1e300 minutes would hang the run instead of failing.
MAX_DURATION_S = 366 * 86400.0
#: sd/mean beyond these bounds makes lognormal and gamma parameters overflow or collapse to a
#: point (scipy then raises a bare "Domain error in arguments").
SD_RATIO_BOUNDS = (1e-6, 1e6)


def resolve_path(v: Path, info: ValidationInfo) -> Path:
    """Paths in a scenario are relative to the scenario file (the loader passes its folder)."""
    base = (info.context or {}).get("base_dir")
    path = v if v.is_absolute() or base is None else Path(base) / v
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return path


class _Dist(Spec):
    unit: Unit = "min"

    def law(self) -> stats.rv_continuous:
        """:meth:`frozen`, built once per distinct parameter set: building one costs ~2.5 ms
        (scipy formats its docstring), more than drawing a short run's stays from it, and a
        run draws from every dwell, service and budget law of every stream. Cached by value
        in a module table, not on the spec, so specs still compare and pickle as before."""
        return _frozen_law(type(self), tuple(self.__dict__.items()))

    def frozen(self) -> stats.rv_continuous:  # pragma: no cover - overridden
        raise NotImplementedError

    def stated(self) -> list[float]:
        """The sizes the file states (means, sds, bounds, values), in the spec's unit."""
        sizes = (getattr(self, k, None) for k in ("mean", "sd", "high", "value"))
        return [v for v in sizes if v is not None]  # a gamma by shape states no sd

    def problem(self) -> str | None:
        """Why scipy cannot sample these parameters, or None; checked once at load so that a
        bad setting is named instead of failing in the middle of a run."""
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frozen = self.frozen()
                usable = math.isfinite(frozen.mean()) and math.isfinite(frozen.std())
        except (OverflowError, ZeroDivisionError, ValueError, TypeError):
            usable = False
        if usable:
            return None
        shown = ", ".join(
            f"{k} {getattr(self, k):g}"
            for k in ("mean", "sd", "shape")
            if getattr(self, k, None) is not None
        )
        kind = getattr(self, "type", "")
        return f"scipy cannot use a {kind} distribution with {shown} (its mean or sd overflows)"

    @model_validator(mode="after")
    def _usable(self) -> _Dist:
        why = self.problem()
        if why is not None:
            raise ValueError(why)
        return self

    def sample(self, gen: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws in the spec's own unit."""
        return np.asarray(self.law().rvs(size=n, random_state=gen), dtype=float)

    def sample_seconds(self, gen: np.random.Generator, n: int) -> np.ndarray:
        return self.sample(gen, n) * UNIT_SECONDS[self.unit]

    @property
    def mean_value(self) -> float:
        return float(self.law().mean())


class Exponential(_Dist):
    type: Literal["exponential"]
    mean: float = Field(gt=0, description="mean, in `unit`")

    def frozen(self) -> stats.rv_continuous:
        return stats.expon(scale=self.mean)


class Lognormal(_Dist):
    type: Literal["lognormal"]
    mean: float = Field(gt=0)
    sd: float = Field(gt=0)

    def problem(self) -> str | None:
        return _sd_ratio_problem(self.mean, self.sd) or super().problem()

    def frozen(self) -> stats.rv_continuous:
        sigma2 = math.log1p((self.sd / self.mean) ** 2)
        return stats.lognorm(s=math.sqrt(sigma2), scale=self.mean * math.exp(-sigma2 / 2))


class _MeanAndSdOrShape(_Dist):
    """A law given by its mean and exactly one of its sd or its shape (gamma, Weibull)."""

    mean: float = Field(gt=0)
    sd: float | None = Field(default=None, gt=0)
    shape: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_of(self) -> _MeanAndSdOrShape:
        if (self.sd is None) == (self.shape is None):
            raise ValueError("give exactly one of 'sd' or 'shape'")
        return self

    def problem(self) -> str | None:
        if (self.sd is None) == (self.shape is None):
            return None  # _one_of says what is wrong
        ratio = _sd_ratio_problem(self.mean, self.sd) if self.sd is not None else None
        return ratio or super().problem()


class Gamma(_MeanAndSdOrShape):
    type: Literal["gamma"]

    def frozen(self) -> stats.rv_continuous:
        k = self.shape if self.shape is not None else (self.mean / self.sd) ** 2
        return stats.gamma(a=k, scale=self.mean / k)


class Weibull(_MeanAndSdOrShape):
    """Stays whose hazard rises or falls with time parked (shape > 1: the longer a car has
    stayed, the likelier it leaves soon). Given by its mean and either its sd or its shape k,
    as calibration reports it; the scale follows from mean = scale × Γ(1 + 1/k)."""

    type: Literal["weibull"]

    @property
    def k(self) -> float:
        """The shape: given, or solved from sd/mean (cv² + 1 = Γ(1+2/k) / Γ(1+1/k)², which
        falls monotonically in k, so one root in a bracket wide enough for SD_RATIO_BOUNDS)."""
        if self.shape is not None:
            return self.shape
        target = math.log1p((self.sd / self.mean) ** 2)

        def excess(log_k: float) -> float:
            k = math.exp(log_k)
            return float(special.gammaln(1 + 2 / k) - 2 * special.gammaln(1 + 1 / k)) - target

        return math.exp(optimize.brentq(excess, math.log(0.02), math.log(1e8), xtol=1e-12))

    def frozen(self) -> stats.rv_continuous:
        k = self.k
        return stats.weibull_min(c=k, scale=self.mean / math.exp(special.gammaln(1 + 1 / k)))


class Uniform(_Dist):
    type: Literal["uniform"]
    low: float = Field(ge=0)
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high <= self.low:
            raise ValueError(f"'high' ({self.high}) must be greater than 'low' ({self.low})")
        return self

    def problem(self) -> str | None:
        return None  # any finite low < high can be sampled; _ordered checks the order

    def frozen(self) -> stats.rv_continuous:
        return stats.uniform(loc=self.low, scale=self.high - self.low)


class Constant(_Dist):
    type: Literal["constant"]
    value: float = Field(ge=0)

    def problem(self) -> str | None:
        return None

    def sample(self, gen: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value, dtype=float)

    @property
    def mean_value(self) -> float:
        return self.value


class Empirical(_Dist):
    """Resamples recorded values (bootstrap): a planner's own dwell data, as it was."""

    type: Literal["empirical"]
    values: list[float] | None = None
    csv: Path | None = Field(default=None, description="CSV file, relative to the scenario")
    column: str | None = None

    @field_validator("values")
    @classmethod
    def _non_negative(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            if not v:
                raise ValueError("needs at least one value")
            if min(v) < 0:
                raise ValueError("values must be >= 0")
        return v

    @field_validator("csv")
    @classmethod
    def _resolve(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return None if v is None else resolve_path(v, info)

    @model_validator(mode="after")
    def _one_source(self) -> Empirical:
        if (self.values is None) == (self.csv is None):
            raise ValueError("give exactly one of 'values' or 'csv'")
        if self.csv is not None:
            data = self._data()
            if data.size == 0 or (data < 0).any() or not np.isfinite(data).all():
                raise ValueError(f"{self.csv}: needs non-empty, finite, non-negative numbers")
        return self

    def problem(self) -> str | None:
        return None  # checked by _one_source: values present, finite and >= 0

    def stated(self) -> list[float]:
        return [float(self._data().max())]

    def _data(self) -> np.ndarray:
        if self.values is not None:
            return np.asarray(self.values, dtype=float)
        frame = pd.read_csv(self.csv)
        column = self.column or frame.columns[0]
        if column not in frame.columns:
            raise ValueError(f"{self.csv}: no column {column!r} (has {list(frame.columns)})")
        return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)

    def sample(self, gen: np.random.Generator, n: int) -> np.ndarray:
        return gen.choice(self._data(), size=n, replace=True)

    @property
    def mean_value(self) -> float:
        return float(self._data().mean())


@functools.lru_cache(maxsize=4096)
def _frozen_law(kind: type, fields: tuple) -> stats.rv_continuous:
    return kind.model_construct(**dict(fields)).frozen()


def _sd_ratio_problem(mean: float, sd: float) -> str | None:
    low, high = SD_RATIO_BOUNDS
    if low <= sd / mean <= high:
        return None
    return f"sd/mean must be between {low:g} and {high:g} (got sd {sd:g}, mean {mean:g})"


Dist = Annotated[
    Exponential | Lognormal | Gamma | Weibull | Uniform | Constant | Empirical,
    Field(discriminator="type"),
]


def _at_most_a_year(dist: _Dist) -> _Dist:
    """A duration's stated sizes, in seconds, within MAX_DURATION_S (see there why)."""
    largest = max(dist.stated()) * UNIT_SECONDS[dist.unit]
    if largest > MAX_DURATION_S:
        raise ValueError(
            f"a duration of at most {MAX_DURATION_S / 86400:g} days is allowed "
            f"(got {largest / 86400:.4g} days)"
        )
    return dist


#: A distribution of durations (stays, waits, service times): bounded by MAX_DURATION_S.
Duration = Annotated[Dist, AfterValidator(_at_most_a_year)]
