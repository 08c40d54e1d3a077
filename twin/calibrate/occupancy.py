"""Fit arrivals and stays from occupancy counts alone: the M_t/G/∞ inverse problem.

A lot that publishes only "N cars parked" every half hour still says a lot about its demand:
the morning rise of the count is the arrivals piling up, and how fast it levels off is how
long cars stay. Under the M_t/G/∞ model (Poisson arrivals with hourly rates λ_h, independent
stays X with survival S, no car turned away) the expected count at time t of a day is

    m(t) = Σ_h λ_h ∫_{hour h, s < t} S(t − s) ds = Σ_h λ_h [G(t − a_h) − G(t − min(b_h, t))]

with G(x) = E[min(X, x)] in closed form for each family. m is linear in the rates, so for a
given stay law the rates come from non-negative least squares (variable projection), and the
stay law's two parameters from a search over them. The capacity limit is applied on top: the
count is N ~ Poisson(m) cut at capacity c, whose mean E[min(N, c)] is what is compared with
the data (scipy.optimize.least_squares polishes rates and stay law together on that).

Assumptions (Birmingham publishes 07:45–16:30 only, no nights):

- every lot is empty at the start of the day; arrivals begin EARLY_HOURS before the first
  observed hour (one rate for that early block: it stands for everyone parked before counts
  begin, overnight parkers included) and stop after the last observed hour (the unobserved
  evening has rate 0 in the scenario, which empties the lot overnight, consistently);
- weekdays (Mon–Fri) share one profile, Saturday and Sunday have their own; each weekday
  then gets its own profile (Friday afternoons are not Monday's), fitted with the stay law
  held and shrunk towards the Mon–Fri profile by a prior worth SHRINK_DAYS days of readings,
  so a weekday with few days in the data stays near the shared profile; the stay law is the
  same every day;
- day-to-day variation is a gamma-distributed factor on a day's arrivals (mean 1): its CV is
  estimated from the spread of the daily ratio observed/fitted, less the Poisson noise the
  model itself predicts for that ratio (exact M_t/G/∞ covariances).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import optimize, stats

from twin.calibrate.occupancy_calendar import (
    PERIOD_COLUMNS,
    SPECIAL_COLUMNS,
    calendar_periods,
    day_levels,
    period_dates,
    ratio_noise,
    special_days,
)

#: Fits at most, per site, while finding its special days (see :func:`fit_site_calendar`).
CALENDAR_ROUNDS = 3
#: Hours of arrivals before the first observed hour, fitted as one rate (see module doc).
EARLY_HOURS = 2
#: Day types with their own arrival profile.
DAY_TYPES = ("weekday", "sat", "sun")
#: Day kinds (codes of :func:`day_kind`): the day types, then each weekday with its own
#: profile (shrunk towards "weekday", see _fit_weekdays).
DAY_KINDS = (*DAY_TYPES, "mon", "tue", "wed", "thu", "fri")
#: A weekday's own profile is shrunk towards the Mon–Fri one by a prior worth this many days of
#: that weekday's readings (per rate block): with n days of it, the data weigh about n/(n+k).
SHRINK_DAYS = 2.0
#: Smoothness penalty on neighbouring hourly rates (relative to the data's weight); small: it
#: only settles rates the data cannot tell apart (the unobserved early hours).
SMOOTH = 0.02
#: Fewer readings than this on a day type: it borrows a profile (see _day_types_to_fit).
MIN_READINGS_PER_TYPE = 40
#: Saturday and Sunday together need this many to share a weekend profile (about one day's).
MIN_READINGS_WEEKEND = 15
#: A site needs this many usable training readings and days to be fitted at all.
MIN_READINGS = 150
MIN_DAYS = 7
#: Stay families tried; the one with the lowest AIC (Gaussian residuals) is kept.
FAMILIES = ("lognormal", "gamma", "exponential")
#: Readings are fitted as means per (day type, BIN_MIN minutes of the day).
BIN_MIN = 10
#: Stay cv searched within these bounds: parking stays are neither near-constant nor wilder
#: than this, and from counts alone the stay's shape is weakly identified (a narrower law with
#: a different profile fits almost as well), so the bound keeps the answer plausible.
CV_BOUNDS = (0.3, 3.0)


def day_type(ts: pd.Series) -> np.ndarray:
    """0 Mon–Fri, 1 Saturday, 2 Sunday (indices of DAY_TYPES)."""
    wd = ts.dt.day_of_week.to_numpy()
    return np.where(wd < 5, 0, np.where(wd == 5, 1, 2))


def day_kind(ts: pd.Series) -> np.ndarray:
    """Indices of DAY_KINDS: 3–7 Monday–Friday (each weekday's own profile), 1 Saturday,
    2 Sunday. A fit without per-weekday profiles gives every weekday the Mon–Fri one."""
    wd = ts.dt.day_of_week.to_numpy()
    return np.where(wd < 5, 3 + wd, np.where(wd == 5, 1, 2))


# -- the stay law: G(x) = E[min(X, x)] ----------------------------------------------------------
@dataclass(frozen=True)
class StayLaw:
    """A stay distribution given by its mean and sd in hours (cv = sd/mean)."""

    family: str
    mean_h: float
    sd_h: float

    def frozen(self) -> stats.rv_continuous:
        if self.family == "exponential":
            return stats.expon(scale=self.mean_h)
        if self.family == "gamma":
            k = (self.mean_h / self.sd_h) ** 2
            return stats.gamma(a=k, scale=self.mean_h / k)
        s2 = math.log1p((self.sd_h / self.mean_h) ** 2)
        return stats.lognorm(s=math.sqrt(s2), scale=self.mean_h * math.exp(-s2 / 2))

    def G(self, x: np.ndarray) -> np.ndarray:
        """E[min(X, x)] for x >= 0 (0 for x <= 0), in hours: the expected time a car arriving
        x hours ago has spent parked so far, i.e. ∫_0^x S(u) du."""
        x = np.clip(np.asarray(x, dtype=float), 0.0, None)
        if self.family == "exponential":
            return self.mean_h * -np.expm1(-x / self.mean_h)
        if self.family == "gamma":
            k = (self.mean_h / self.sd_h) ** 2
            theta = self.mean_h / k
            return self.mean_h * stats.gamma.cdf(x, k + 1, scale=theta) + x * stats.gamma.sf(
                x, k, scale=theta
            )
        s2 = math.log1p((self.sd_h / self.mean_h) ** 2)
        s, mu = math.sqrt(s2), math.log(self.mean_h) - s2 / 2
        with np.errstate(divide="ignore"):
            lx = np.log(x)
        return self.mean_h * stats.norm.cdf((lx - mu - s2) / s) + x * stats.norm.sf((lx - mu) / s)

    def as_scenario(self) -> dict:
        if self.family == "exponential":
            return {"type": "exponential", "mean": round(self.mean_h * 60, 2), "unit": "min"}
        return {
            "type": self.family,
            "mean": round(self.mean_h * 60, 2),
            "sd": round(self.sd_h * 60, 2),
            "unit": "min",
        }


# -- the design: which rate blocks a reading at time-of-day t depends on --------------------------
@dataclass(frozen=True)
class Blocks:
    """Arrival-rate blocks of one day: [start, end) in hours; the first is the early block."""

    edges: tuple[float, ...]

    @classmethod
    def for_hours(cls, first_hour: int, last_hour: int) -> Blocks:
        start = max(0, first_hour - EARLY_HOURS)
        return cls((float(start), *[float(h) for h in range(first_hour, last_hour + 2)]))

    @property
    def n(self) -> int:
        return len(self.edges) - 1

    def design(self, law: StayLaw, t: np.ndarray) -> np.ndarray:
        """A[i, j] = ∫ over block j, s < t_i, of S(t_i − s) ds (hours): m(t) = A @ λ."""
        a = np.asarray(self.edges[:-1])[None, :]
        b = np.asarray(self.edges[1:])[None, :]
        tt = np.asarray(t, dtype=float)[:, None]
        return law.G(tt - a) - law.G(tt - np.minimum(b, tt))

    def hourly(self, rates: np.ndarray) -> list[float]:
        """24 hourly rates (cars/h) for a scenario profile; 0 outside the blocks."""
        out = [0.0] * 24
        for j in range(self.n):
            for h in range(int(self.edges[j]), int(self.edges[j + 1])):
                out[h] = float(rates[j])
        return out


def capped_mean(m: np.ndarray, capacity: float) -> np.ndarray:
    """E[min(N, c)] for N ~ Poisson(m): the mean count a lot of ``capacity`` spots shows when
    the infinite-server count would be Poisson(m) (the cars it cannot hold are lost)."""
    c = float(capacity)
    m = np.clip(m, 1e-12, None)
    return m * stats.poisson.cdf(c - 1, m) + c * stats.poisson.sf(c, m)


# -- one site's fit ------------------------------------------------------------------------------
@dataclass
class SiteFit:
    site: str
    capacity: int
    law: StayLaw
    blocks: Blocks
    rates: dict[str, np.ndarray]  # day kind (DAY_KINDS) -> block rates (cars/h)
    fitted_types: list[str]
    n_readings: int
    n_days: int
    rmse_rate: float
    aic: float
    family_aic: dict[str, float] = field(default_factory=dict)
    #: every family's fit (law, rates per day type): from counts alone the families are near
    #: ties, so a user (the backtest) may choose among them by forecast skill instead of AIC
    alternatives: dict[str, tuple[StayLaw, dict[str, np.ndarray]]] = field(
        default_factory=dict, repr=False
    )
    profile_source: dict[str, str] = field(default_factory=dict)
    day_factor_cv: float = float("nan")
    day_factor_sd_raw: float = float("nan")
    day_factors: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    #: dates whose level differs from their weekday's beyond chance, and weeks with a level of
    #: their own (:mod:`twin.calibrate.occupancy_calendar`; empty unless
    #: :func:`fit_site_calendar` made the fit)
    special_days: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=SPECIAL_COLUMNS)
    )
    periods: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PERIOD_COLUMNS))
    period_tests: dict = field(default_factory=dict)

    def rate_table(self) -> np.ndarray:
        """Block rates per day kind, rows in DAY_KINDS order (index with :func:`day_kind` or
        :func:`day_type` codes); a weekday without its own profile has the Mon–Fri one."""
        return np.stack([self.rates.get(d, self.rates["weekday"]) for d in DAY_KINDS])

    def predict(self, t_h: np.ndarray, dtype: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Expected count (capacity-limited) at hours-of-day ``t_h`` on day kinds ``dtype``
        (:func:`day_kind` codes; :func:`day_type` codes give the Mon–Fri profile), with every
        arrival rate times ``scale`` (a day's or week's multiplier)."""
        A = self.blocks.design(self.law, t_h)
        lam = self.rate_table()[dtype]
        return capped_mean(scale * np.einsum("ij,ij->i", A, lam), self.capacity)

    def with_family(self, family: str) -> SiteFit:
        """This fit with another family's stay law and rates (see ``alternatives``); the
        error figures and day factor stay those of the chosen fit."""
        law, rates = self.alternatives[family]
        return replace(self, law=law, rates=dict(rates))

    def pooled(self) -> SiteFit:
        """This fit with one Mon–Fri profile (the per-weekday ones dropped)."""
        return replace(self, rates={d: self.rates[d] for d in DAY_TYPES})

    def rate_at(self, s_h: np.ndarray, kind: str) -> np.ndarray:
        """Arrival rate (cars/h) at hours-of-day ``s_h`` on a ``kind`` day (0 outside)."""
        edges = np.asarray(self.blocks.edges)
        j = np.searchsorted(edges, s_h, side="right") - 1
        inside = (j >= 0) & (j < self.blocks.n)
        rates = self.rates.get(kind, self.rates["weekday"])
        return np.where(inside, rates[np.clip(j, 0, self.blocks.n - 1)], 0.0)

    def age_quantiles(self, t_h: float, kind: str, q: np.ndarray) -> np.ndarray:
        """Quantiles (hours) of how long the cars parked at hour-of-day ``t_h`` have been
        there: under M_t/G/∞ the age density is ∝ λ(t − a)·S(a), 0 <= a <= t − first edge.
        This is the elapsed-stay law a forecast started from an observed count gives the cars
        already parked (their remaining stay is then X | X > age)."""
        span = max(t_h - self.blocks.edges[0], 0.0)
        if span <= 0:
            return np.zeros_like(np.asarray(q, dtype=float))
        a = np.linspace(0.0, span, 2001)
        w = self.rate_at(t_h - a, kind) * self.law.frozen().sf(a)
        cdf = np.concatenate([[0.0], np.cumsum((w[1:] + w[:-1]) / 2 * np.diff(a))])
        if cdf[-1] <= 0:
            return np.zeros_like(np.asarray(q, dtype=float))
        return np.interp(np.asarray(q, dtype=float) * cdf[-1], cdf, a)

    def sample_ages(self, t_h: float, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` ages (hours) of cars parked at ``t_h``, drawn from :meth:`age_quantiles`."""
        return self.age_quantiles(t_h, kind, rng.random(n))

    def arrivals_per_day(self, kind: str) -> float:
        widths = np.diff(self.blocks.edges)
        return float(np.sum(self.rates.get(kind, self.rates["weekday"]) * widths))

    def as_dict(self) -> dict:
        return {
            "site": self.site,
            "capacity": self.capacity,
            "stay": {
                "family": self.law.family,
                "mean_min": self.law.mean_h * 60,
                "sd_min": self.law.sd_h * 60,
            },
            "stay_family_aic": self.family_aic,
            "profiles": {
                d: self.blocks.hourly(self.rates[d]) for d in DAY_KINDS if d in self.rates
            },
            "profiles_fitted": self.fitted_types,
            "profile_fitted_on": self.profile_source,
            "arrivals_per_day": {d: self.arrivals_per_day(d) for d in DAY_KINDS if d in self.rates},
            "n_readings": self.n_readings,
            "n_days": self.n_days,
            "rmse_occupancy_rate": self.rmse_rate,
            "day_factor_cv": self.day_factor_cv,
            "day_factor_sd_observed": self.day_factor_sd_raw,
            "assumptions": [
                "lot empty at the start of each day; arrivals from "
                f"{self.blocks.edges[0]:g}:00, none after {self.blocks.edges[-1]:g}:00",
                "Mon-Fri share one profile; each weekday its own, shrunk towards it by a prior "
                f"worth {SHRINK_DAYS:g} days; Sat and Sun their own",
                "one stay law for every day and hour",
            ],
            "special_days": self.special_days.to_dict(orient="records"),
            "periods": self.periods.to_dict(orient="records"),
            "period_tests": self.period_tests,
        }

    def date_multipliers(self) -> dict[pd.Timestamp, float]:
        """Date → multiplier of the usual rates: each special day's, and each week's with a
        level of its own (its ordinary days, see :func:`occupancy_calendar.period_dates`)."""
        out: dict[pd.Timestamp, float] = {}
        for dates, k in self.calendar_entries():
            out.update({pd.Timestamp(d): k for d in dates})
        return out

    def calendar_entries(self) -> list[tuple[list[str], float]]:
        """(dates, multiplier) for the scenario's ``dates:``: one per week with its own level,
        one per special day."""
        weeks = period_dates(self.periods, self.special_days)
        out = [(weeks[row.week], float(row.multiplier)) for row in self.periods.itertuples()]
        out += [([row.date], float(row.multiplier)) for row in self.special_days.itertuples()]
        return [(d, k) for d, k in out if d]


def _hours_of_day(ts: pd.Series) -> np.ndarray:
    return (ts - ts.dt.normalize()).dt.total_seconds().to_numpy() / 3600.0


def fit_site_calendar(frame: pd.DataFrame, site: str) -> SiteFit:
    """:func:`fit_site` with the calendar: the days whose level differs from their weekday's
    beyond chance are found, the site is refitted without them (so an event day shapes
    neither the ordinary profiles nor the day-to-day CV, as in ``calibrate tickets``) and every
    day is tested again against that fit, until the special days found are the ones left out
    (at most CALENDAR_ROUNDS fits: an extreme event day lifts its weekday's profile in the
    first fit, so its ordinary namesakes look low until it is left out). Each special day
    gets its multiplier against the final fit, and the weeks whose level differs beyond
    chance get theirs (:mod:`twin.calibrate.occupancy_calendar`)."""
    t, kind = _hours_of_day(frame["time"]), day_kind(frame["time"])
    days = frame["time"].dt.normalize()
    fit = fit_site(frame, site)
    left_out: set[str] = set()
    for _ in range(CALENDAR_ROUNDS):
        special = special_days(fit, day_levels(fit, t, kind, frame), t, kind, frame)
        found = set(special["date"])
        ordinary = frame[~days.isin(pd.to_datetime(sorted(found))).to_numpy()]
        if found == left_out or not (
            len(ordinary) >= MIN_READINGS and ordinary["time"].dt.normalize().nunique() >= MIN_DAYS
        ):
            break
        fit, left_out = fit_site(ordinary, site), found
    else:
        special = special_days(fit, day_levels(fit, t, kind, frame), t, kind, frame)
    fit.special_days = special
    is_special = days.isin(pd.to_datetime(special["date"])).to_numpy()
    ordinary = frame[~is_special]
    t_o, kind_o = t[~is_special], kind[~is_special]
    levels = day_levels(fit, t_o, kind_o, ordinary)
    fit.periods, fit.period_tests = calendar_periods(fit, levels, t_o, kind_o, ordinary, special)
    return fit


def _smooth_rows(nb: int, weight: float) -> np.ndarray:
    """Second... first differences between neighbouring hourly rates (not the early block)."""
    rows = []
    for j in range(1, nb - 1):
        r = np.zeros(nb)
        r[j], r[j + 1] = -weight, weight
        rows.append(r)
    return np.array(rows).reshape(-1, nb)


def _binned(t: np.ndarray, dt: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Readings averaged per (day type, BIN_MIN-minute bin of the day): a weighted fit on the
    bin means has the same minimiser in the rates as one on every reading, at a tenth of the
    cost (the model is the same at every reading of a bin, up to the bin's width)."""
    key = dt * 1000 + np.floor(t * 60 / BIN_MIN).astype(int)
    uniq, inv, n = np.unique(key, return_inverse=True, return_counts=True)
    tb = np.bincount(inv, weights=t) / n
    yb = np.bincount(inv, weights=y) / n
    return tb, (uniq // 1000).astype(int), yb, n.astype(float)


def _fit_family(
    family: str,
    blocks: Blocks,
    t: np.ndarray,
    dt: np.ndarray,
    y: np.ndarray,
    capacity: int,
    types: list[int],
) -> tuple[StayLaw, np.ndarray]:
    """Best (law, rates[type, block]) of one family: NNLS rates inside a search over the stay
    law (variable projection), then least_squares with the capacity cut, on binned means."""
    nb = blocks.n
    t, dt, y, w = _binned(t, dt, y)
    sw = np.sqrt(w)
    smooth = _smooth_rows(nb, math.sqrt(SMOOTH * w.sum() / max(nb, 1)))
    fixed_cv = family == "exponential"

    def law_of(mean_h: float, cv: float) -> StayLaw:
        return StayLaw(family, mean_h, mean_h if fixed_cv else mean_h * cv)

    def nnls_sse(mean_h: float, cv: float) -> tuple[float, np.ndarray]:
        A = blocks.design(law_of(mean_h, cv), t) * sw[:, None]
        rates = np.zeros((3, nb))
        sse = 0.0
        for k in types:
            sel = dt == k
            M = np.vstack([A[sel], smooth])
            rhs = np.concatenate([y[sel] * sw[sel], np.zeros(len(smooth))])
            rates[k], rnorm = optimize.nnls(M, rhs)
            sse += rnorm**2
        return sse, rates

    means = np.geomspace(0.5, 16, 8)
    cvs = [1.0] if fixed_cv else [CV_BOUNDS[0], 0.7, 1.2, 2.0]
    _, m0, c0 = min((nnls_sse(m, c)[0], m, c) for m in means for c in cvs)
    if fixed_cv:
        res = optimize.minimize_scalar(
            lambda lm: nnls_sse(math.exp(lm), 1.0)[0],
            bounds=(math.log(0.2), math.log(30)),
            method="bounded",
            options={"xatol": 1e-3},
        )
        m0 = math.exp(res.x)
    else:
        lo_cv, hi_cv = (math.log(c) for c in CV_BOUNDS)
        res = optimize.minimize(
            lambda p: nnls_sse(math.exp(p[0]), math.exp(min(max(p[1], lo_cv), hi_cv)))[0],
            x0=[math.log(m0), math.log(c0)],
            method="Nelder-Mead",
            options={"xatol": 2e-3, "fatol": 1e-9, "maxiter": 80},
        )
        m0, c0 = math.exp(res.x[0]), math.exp(min(max(res.x[1], lo_cv), hi_cv))
    _, rates0 = nnls_sse(m0, c0)
    if not _capacity_binds(blocks, law_of(m0, c0), rates0, capacity, types):
        return law_of(m0, c0), rates0

    # the cap matters somewhere: polish rates and stay law together with it
    def unpack(p: np.ndarray) -> tuple[StayLaw, np.ndarray]:
        rates = np.zeros((3, nb))
        for i, k in enumerate(types):
            rates[k] = p[2 + i * nb : 2 + (i + 1) * nb]
        return law_of(math.exp(p[0]), math.exp(p[1])), rates

    def resid(p: np.ndarray) -> np.ndarray:
        law, rates = unpack(p)
        m = np.einsum("ij,ij->i", blocks.design(law, t), rates[dt])
        r = (capped_mean(m, capacity) - y) * sw
        pen = [smooth @ rates[k] for k in types] if len(smooth) else []
        return np.concatenate([r, *pen])

    p0 = np.concatenate([[math.log(m0), math.log(c0)], *[rates0[k] for k in types]])
    lo = np.concatenate([[math.log(0.1), math.log(CV_BOUNDS[0])], np.zeros(nb * len(types))])
    hi = np.concatenate([[math.log(48), math.log(CV_BOUNDS[1])], np.full(nb * len(types), np.inf)])
    if fixed_cv:
        lo[1], hi[1] = -1e-9, 1e-9
    p0 = np.minimum(np.maximum(p0, lo + 1e-9), np.where(np.isfinite(hi), hi - 1e-9, np.inf))
    sol = optimize.least_squares(resid, p0, bounds=(lo, hi), x_scale="jac", max_nfev=40)
    return unpack(sol.x)


def _capacity_binds(
    blocks: Blocks, law: StayLaw, rates: np.ndarray, capacity: int, types: list[int]
) -> bool:
    """Whether the uncapped mean comes near capacity (then E[min(N, c)] differs from it)."""
    grid = np.linspace(blocks.edges[0], blocks.edges[-1], 60)
    A = blocks.design(law, grid)
    peak = max(float((A @ rates[k]).max()) for k in types)
    return peak + 3 * math.sqrt(max(peak, 1.0)) > capacity


def _day_types_to_fit(dt: np.ndarray) -> tuple[np.ndarray, list[int], list[int]]:
    """Which day types get a profile of their own, and where the others borrow theirs.

    Saturday and Sunday with enough readings each are fitted apart; with too few each but
    enough together they share one weekend profile; otherwise they borrow the weekday's (a
    weekend is nearer another weekend day than a weekday: car parks near offices are half empty).
    Returns the day types as fitted, the fitted types, and the source type of each day type.
    """
    counts = np.bincount(dt, minlength=3)
    ok = counts >= MIN_READINGS_PER_TYPE
    dt_fit = dt.copy()
    source = [0, 1, 2]
    if ok[1] and ok[2]:
        pass
    elif ok[1] or ok[2]:
        have = 1 if ok[1] else 2
        other = 3 - have
        dt_fit[dt == other] = have
        source[other] = have
    elif counts[1] + counts[2] >= MIN_READINGS_WEEKEND:
        dt_fit[dt == 2] = 1
        source[2] = 1
    else:
        dt_fit[dt > 0] = 0
        source[1] = source[2] = 0
    types = sorted(set(dt_fit.tolist()) | {0})
    return dt_fit, types, source


def fit_site(frame: pd.DataFrame, site: str) -> SiteFit:
    """Fit one site from its usable readings (``time``, ``occupied``, ``capacity``)."""
    frame = frame.sort_values("time")
    capacity = int(frame["capacity"].max())
    t = _hours_of_day(frame["time"])
    dt = day_type(frame["time"])
    y = frame["occupied"].to_numpy(dtype=float)
    first_hour, last_hour = int(np.floor(t.min())), int(np.floor(t.max()))
    blocks = Blocks.for_hours(first_hour, last_hour)
    dt_fit, types, source = _day_types_to_fit(dt)
    fits = {}
    for family in FAMILIES:
        law, rates = _fit_family(family, blocks, t, dt_fit, y, capacity, types)
        m = np.einsum("ij,ij->i", blocks.design(law, t), rates[dt_fit])
        sse = float(np.sum((capped_mean(m, capacity) - y) ** 2))
        k = (1 if family == "exponential" else 2) + blocks.n * len(types)
        aic = len(y) * math.log(max(sse, 1e-9) / len(y)) + 2 * k
        fits[family] = (aic, law, rates, sse)
    family = min(fits, key=lambda f: fits[f][0])
    aic, law, rates, sse = fits[family]
    for k in range(3):
        rates[k] = rates[source[k]]  # a day type with too few readings borrows (see below)
    wd = frame["time"].dt.day_of_week.to_numpy()
    days = frame["time"].dt.normalize().to_numpy()
    own = {
        f: _fit_weekdays(blocks, v[1], v[2][0], t, wd, days, y, capacity) for f, v in fits.items()
    }
    fit = SiteFit(
        site=site,
        capacity=capacity,
        law=law,
        blocks=blocks,
        rates={**{DAY_TYPES[k]: rates[k] for k in range(3)}, **own[family]},
        fitted_types=[DAY_TYPES[k] for k in types],
        profile_source={DAY_TYPES[k]: DAY_TYPES[source[k]] for k in range(3)},
        n_readings=len(y),
        n_days=int(frame["time"].dt.normalize().nunique()),
        rmse_rate=math.sqrt(sse / len(y)) / capacity,
        aic=aic,
        family_aic={f: v[0] for f, v in fits.items()},
        alternatives={
            f: (v[1], {**{DAY_TYPES[k]: v[2][source[k]].copy() for k in range(3)}, **own[f]})
            for f, v in fits.items()
        },
    )
    _day_factor(fit, frame, t, day_kind(frame["time"]))
    return fit


def _fit_weekdays(
    blocks: Blocks,
    law: StayLaw,
    pooled: np.ndarray,
    t: np.ndarray,
    wd: np.ndarray,
    days: np.ndarray,
    y: np.ndarray,
    capacity: int,
) -> dict[str, np.ndarray]:
    """Each weekday's own block rates, the stay law held: least squares on that weekday's
    binned readings (capacity cut, the same smoothness penalty) plus a ridge towards the
    Mon–Fri rates ``pooled`` worth SHRINK_DAYS days of that weekday's readings per block (the
    data's information on block j from one day is Σ_i w_i A_ij² / n_days). With many days of
    a weekday its own shape wins; with one or two it stays near the shared profile. A weekday
    with no readings is left out (it keeps the Mon–Fri profile, see SiteFit.rate_table)."""
    out: dict[str, np.ndarray] = {}
    nb = blocks.n
    for d in range(5):
        sel = wd == d
        n_days = len(np.unique(days[sel]))
        if n_days == 0:
            continue
        tb, _, yb, w = _binned(t[sel], np.zeros(int(sel.sum()), dtype=int), y[sel])
        sw = np.sqrt(w)
        A = blocks.design(law, tb)
        info = (w[:, None] * A**2).sum(axis=0) / n_days
        prior = np.sqrt(SHRINK_DAYS * np.maximum(info, 1e-12))
        smooth = _smooth_rows(nb, math.sqrt(SMOOTH * w.sum() / max(nb, 1)))

        def resid(r: np.ndarray, A=A, yb=yb, sw=sw, prior=prior, smooth=smooth) -> np.ndarray:
            fit = capped_mean(A @ r, capacity)
            pen = smooth @ r if len(smooth) else np.zeros(0)
            return np.concatenate([(fit - yb) * sw, pen, prior * (r - pooled)])

        sol = optimize.least_squares(
            resid, np.maximum(pooled, 1e-9), bounds=(0.0, np.inf), x_scale="jac", max_nfev=60
        )
        out[DAY_KINDS[3 + d]] = sol.x
    return out


def _day_factor(fit: SiteFit, frame: pd.DataFrame, t: np.ndarray, dt: np.ndarray) -> None:
    """Estimate the CV of a gamma day factor on arrivals (see module doc).

    A day's factor is Σ observed / Σ predicted over its readings. Without any day factor the
    ratio still varies, by Var(Σ N_i)/(Σ m_i)² with Cov(N(t1), N(t2)) = ∫_{s<t1} λ(s) S(t2−s) ds
    under M_t/G/∞; that noise is subtracted from the observed variance of the ratios.
    """
    pred = fit.predict(t, dt)
    days = frame["time"].dt.normalize().to_numpy()
    obs = frame["occupied"].to_numpy(dtype=float)
    factors, noise = [], []
    for day in np.unique(days):
        sel = days == day
        if sel.sum() < 6 or pred[sel].sum() <= 0:
            continue
        factors.append(obs[sel].sum() / pred[sel].sum())
        noise.append(ratio_noise(fit, t[sel], int(dt[sel][0])))
    if len(factors) < 5:
        return
    f = np.asarray(factors)
    var = float(np.var(f, ddof=1))
    fit.day_factors = pd.Series(f, index=pd.to_datetime(np.unique(days)[: len(f)]))
    fit.day_factor_sd_raw = math.sqrt(var)
    fit.day_factor_cv = math.sqrt(max(0.0, var - float(np.mean(noise))))


# -- all sites -----------------------------------------------------------------------------------
@dataclass
class OccupancyCalibration:
    fits: dict[str, SiteFit]
    unusable: dict[str, str]
    error_by_hour: pd.DataFrame  # site, hour, period, n, mae_rate, bias_rate
    errors: pd.DataFrame  # site, period, n, mae_rate, rmse_rate
    predictions: pd.DataFrame  # site, time, occupied, capacity, period, predicted, multiplier


def calibrate_series(
    clean: pd.DataFrame,
    train_until: pd.Timestamp | None = None,
    sites: list[str] | None = None,
    calendar: bool = True,
) -> OccupancyCalibration:
    """Fit every site of a cleaned series (:func:`twin.calibrate.cleaning.clean_series`) on
    its usable readings up to ``train_until`` (inclusive day; None: all), and measure the
    fitted mean curve against the readings before (fit) and after (held out) that date.
    ``calendar``: find special days and weeks with their own level (:func:`fit_site_calendar`;
    the fitted curve then carries their multipliers on their dates), else :func:`fit_site`."""
    data = clean[clean["usable"]].copy()
    if sites:
        data = data[data["site"].isin(sites)]
    cut = (
        None
        if train_until is None
        else pd.Timestamp(train_until).normalize() + pd.Timedelta(days=1)
    )
    data["period"] = "fit" if cut is None else np.where(data["time"] < cut, "fit", "held_out")
    fits, unusable, preds = {}, {}, []
    for site, frame in data.groupby("site", sort=True):
        train = frame[frame["period"] == "fit"]
        n_days = train["time"].dt.normalize().nunique()
        if len(train) < MIN_READINGS or n_days < MIN_DAYS:
            unusable[str(site)] = (
                f"{len(train)} usable readings on {n_days} days before the cut "
                f"(needs {MIN_READINGS} on {MIN_DAYS})"
            )
            continue
        fit = (fit_site_calendar if calendar else fit_site)(train, str(site))
        fits[str(site)] = fit
        pred = frame[["site", "time", "occupied", "capacity", "period"]].copy()
        t, kind = _hours_of_day(frame["time"]), day_kind(frame["time"])
        scale = frame["time"].dt.normalize().map(fit.date_multipliers()).fillna(1.0).to_numpy()
        A = fit.blocks.design(fit.law, t)
        mean = np.einsum("ij,ij->i", A, fit.rate_table()[kind]) * scale
        pred["predicted"] = capped_mean(mean, fit.capacity)
        pred["multiplier"] = scale
        preds.append(pred)
    predictions = (
        pd.concat(preds, ignore_index=True)
        if preds
        else pd.DataFrame(
            columns=["site", "time", "occupied", "capacity", "period", "predicted", "multiplier"]
        ).astype({"time": "datetime64[ns]", "occupied": float, "capacity": float})
    )
    err = (predictions["predicted"] - predictions["occupied"]) / predictions["capacity"]
    predictions["error_rate"] = err.astype(float)
    predictions["hour"] = predictions["time"].dt.hour
    g = predictions.groupby(["site", "period", "hour"], observed=True)["error_rate"]
    error_by_hour = pd.DataFrame(
        {
            "n": g.size(),
            "mae_rate": g.apply(lambda e: e.abs().mean()),
            "bias_rate": g.mean(),
        }
    ).reset_index()
    g2 = predictions.groupby(["site", "period"], observed=True)["error_rate"]
    errors = pd.DataFrame(
        {
            "n": g2.size(),
            "mae_rate": g2.apply(lambda e: e.abs().mean()),
            "rmse_rate": g2.apply(lambda e: math.sqrt(float((e**2).mean()))),
        }
    ).reset_index()
    return OccupancyCalibration(fits, unusable, error_by_hour, errors, predictions)
