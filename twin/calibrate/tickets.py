"""Fit a scenario from a ticket or gate log: arrivals, stays and the tariff.

Each estimate is one a planner could check by hand: arrivals per weekday and hour are counts
divided by the number of such days (exact Poisson intervals, widened by the day-to-day
overdispersion the log shows); a special day is one whose arrivals lie beyond chance from its
weekday's; stays are fitted by maximum likelihood with scipy.stats and chosen by AIC, with the
empirical law when no family fits (KS statistic above EMPIRICAL_KS); the tariff is searched
over the documented structures and scored by the real pricing engine (``twin.core.pricing``
through the scenario tariff schema), so "reproduces 99.7 % of receipts to the cent" means the
simulator would charge those amounts.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
from scipy import stats

from twin.core.clock import Calendar
from twin.scenario.tariff import DAY_NAMES, TariffSpec

#: Two-sided confidence level of every interval here.
CONFIDENCE = 0.95
#: A day is special when its arrivals' two-sided p-value is below this, Bonferroni-divided by
#: the number of days tested (so a 70-day log flags ~0.01 ordinary days by chance).
SPECIAL_ALPHA = 0.01
#: Stay families fitted (scipy.stats names) and their scenario names.
FAMILIES = {
    "expon": "exponential",
    "lognorm": "lognormal",
    "gamma": "gamma",
    "weibull_min": "weibull",
}
#: The best family is replaced by the empirical law above this KS statistic (a mixture of
#: commuters and shoppers fits no single family; with thousands of stays the KS *test* rejects
#: everything, so the statistic itself is the yardstick).
EMPIRICAL_KS = 0.05
#: Stays by arrival-hour band: an hour's median stay more than this factor from its band's
#: starts a new band; hours with fewer stays than MIN_BAND_STAYS join their neighbour.
BAND_RATIO = 1.35
MIN_BAND_STAYS = 40
MAX_BANDS = 6
#: Kruskal–Wallis p-value below which stays are said to depend on the arrival hour.
BAND_P = 1e-3
#: Quantiles kept when a law is written as an empirical distribution.
EMPIRICAL_POINTS = 200


def _poisson_ci(total: np.ndarray, alpha: float = 1 - CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) interval for a Poisson mean given the observed total."""
    total = np.asarray(total, dtype=float)
    lo = np.where(total > 0, stats.chi2.ppf(alpha / 2, 2 * total) / 2, 0.0)
    hi = stats.chi2.ppf(1 - alpha / 2, 2 * total + 2) / 2
    return np.nan_to_num(lo), hi


# -- arrivals -----------------------------------------------------------------------------------
@dataclass
class Arrivals:
    profile: pd.DataFrame  # weekday, hour, days, arrivals, rate, ci_low, ci_high
    special_days: pd.DataFrame  # date, weekday, arrivals, expected, z, p_value
    special_profiles: dict[str, list[float]]
    dispersion: dict[str, float]  # weekday name -> variance/mean of daily totals
    days: int
    day_factor_cv: float = float("nan")

    def rates(self, weekday: int) -> list[float]:
        p = self.profile[self.profile["weekday"] == weekday].sort_values("hour")
        return [float(x) for x in p["rate"]]


def fit_arrivals(entries: pd.Series) -> Arrivals:
    """Hourly arrival rates per weekday with intervals, and the special days set apart."""
    entries = pd.Series(pd.to_datetime(entries)).dropna()
    first, last = entries.min().normalize(), entries.max().normalize()
    dates = pd.date_range(first, last, freq="D")
    counts = (
        pd.crosstab(entries.dt.normalize(), entries.dt.hour)
        .reindex(index=dates, columns=range(24), fill_value=0)
        .astype(float)
    )
    totals = counts.sum(axis=1)
    weekday = dates.day_of_week.to_numpy()
    special_rows = []
    tested = len(dates)
    # each day against the median of its weekday's other days; the ordinary day-to-day spread
    # is pooled over all days (relative, robust): 3 other Mondays cannot give a spread
    expected = np.full(len(dates), np.nan)
    for d in range(7):
        idx = np.flatnonzero(weekday == d)
        if len(idx) >= 4:
            x = totals.iloc[idx].to_numpy()
            expected[idx] = [float(np.median(np.delete(x, k))) for k in range(len(idx))]
    live = np.isfinite(expected) & (expected > 0)
    rel = totals.to_numpy()[live] / expected[live] - 1
    rel_sd = 1.4826 * float(np.median(np.abs(rel - np.median(rel)))) if len(rel) else 0.0
    for i in np.flatnonzero(live):
        d, m, x_i = int(weekday[i]), float(expected[i]), float(totals.iloc[i])
        sd = max(math.sqrt(max(m, 1.0)), rel_sd * m)
        z = (x_i - m) / sd
        p = 2 * stats.norm.sf(abs(z))
        if p < SPECIAL_ALPHA / tested:
            special_rows.append(
                {
                    "date": dates[i].date().isoformat(),
                    "weekday": DAY_NAMES[d],
                    "arrivals": int(x_i),
                    "expected": m,
                    "z": z,
                    "p_value": p,
                }
            )
    special = pd.DataFrame(
        special_rows, columns=["date", "weekday", "arrivals", "expected", "z", "p_value"]
    )
    special_dates = set(special["date"])
    keep = np.array([dt.date().isoformat() not in special_dates for dt in dates])
    rows, dispersion = [], {}
    excess, weight = 0.0, 0
    for d in range(7):
        sel = keep & (weekday == d)
        n_days = int(sel.sum())
        day_totals = totals[sel]
        phi = 1.0
        if n_days >= 3 and day_totals.mean() > 0:
            phi = max(1.0, float(day_totals.var(ddof=1) / day_totals.mean()))
            # a gamma day factor of CV c gives Var = m + c²m²: c² = (Var − m)/m², pooled
            m = float(day_totals.mean())
            excess += (n_days - 1) * (float(day_totals.var(ddof=1)) - m) / m**2
            weight += n_days - 1
        dispersion[DAY_NAMES[d]] = phi
        hourly = counts[sel].sum(axis=0).to_numpy()
        lo, hi = _poisson_ci(hourly)
        rate = hourly / max(n_days, 1)
        lo, hi = lo / max(n_days, 1), hi / max(n_days, 1)
        w = math.sqrt(phi)  # quasi-Poisson: widen both sides by the dispersion's square root
        lo = np.clip(rate - (rate - lo) * w, 0, None)
        hi = rate + (hi - rate) * w
        for h in range(24):
            rows.append(
                {
                    "weekday": d,
                    "day": DAY_NAMES[d],
                    "hour": h,
                    "days": n_days,
                    "arrivals": int(hourly[h]),
                    "rate": float(rate[h]),
                    "ci_low": float(lo[h]),
                    "ci_high": float(hi[h]),
                }
            )
    special_profiles = {
        day: [float(v) for v in counts.loc[pd.Timestamp(day)].to_numpy()] for day in special_dates
    }
    cv = math.sqrt(max(0.0, excess / weight)) if weight else float("nan")
    return Arrivals(pd.DataFrame(rows), special, special_profiles, dispersion, len(dates), cv)


# -- stays ---------------------------------------------------------------------------------------
@dataclass
class StayFit:
    """One set of stays (minutes): every family's fit, the choice and its goodness of fit."""

    n: int
    table: pd.DataFrame  # family, params, loglik, aic, ks, mean, sd
    chosen: str  # a FAMILIES value or "empirical"
    ks: float
    dist: dict  # scenario distribution (minutes)
    values: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0))
    frozen: object = field(repr=False, default=None)

    def as_dict(self) -> dict:
        return {
            "n": self.n,
            "chosen": self.chosen,
            "ks": self.ks,
            "scenario": self.dist,
            "families": self.table.to_dict(orient="records"),
        }


def fit_stays(minutes: np.ndarray) -> StayFit:
    """Maximum-likelihood fits (location 0) of each family; lowest AIC wins unless its KS
    statistic exceeds EMPIRICAL_KS, then the empirical law (as quantiles) is used."""
    x = np.asarray(minutes, dtype=float)
    x = x[np.isfinite(x) & (x > 0)]
    if len(x) < 2:
        raise ValueError("fewer than 2 usable stays")
    rows, frozen = [], {}
    for name, label in FAMILIES.items():
        dist = getattr(stats, name)
        with np.errstate(all="ignore"):
            params = dist.fit(x, floc=0)
        f = dist(*params)
        ll = float(np.sum(f.logpdf(x)))
        k = len(params) - 1  # loc fixed
        frozen[label] = f
        rows.append(
            {
                "family": label,
                "params": [float(p) for p in params],
                "loglik": ll,
                "aic": 2 * k - 2 * ll,
                "ks": float(stats.kstest(x, f.cdf).statistic),
                "mean": float(f.mean()),
                "sd": float(f.std()),
            }
        )
    table = pd.DataFrame(rows).sort_values("aic").reset_index(drop=True)
    best = table.iloc[0]
    chosen, ks = str(best["family"]), float(best["ks"])
    if ks > EMPIRICAL_KS:
        q = np.quantile(x, (np.arange(EMPIRICAL_POINTS) + 0.5) / EMPIRICAL_POINTS)
        chosen = "empirical"
        ks = float(
            stats.kstest(x, lambda v: np.searchsorted(np.sort(q), v, "right") / len(q)).statistic
        )
        dist = {"type": "empirical", "values": [round(float(v), 2) for v in q], "unit": "min"}
    elif chosen == "exponential":
        dist = {"type": "exponential", "mean": round(float(best["mean"]), 3), "unit": "min"}
    elif chosen == "weibull":  # by its shape: the scale then follows from the mean
        dist = {
            "type": "weibull",
            "mean": round(float(best["mean"]), 3),
            "shape": round(float(best["params"][0]), 4),
            "unit": "min",
        }
    else:
        dist = {
            "type": chosen,
            "mean": round(float(best["mean"]), 3),
            "sd": round(float(best["sd"]), 3),
            "unit": "min",
        }
    return StayFit(len(x), table, chosen, ks, dist, x, frozen.get(chosen))


@dataclass
class Stays:
    overall: StayFit
    bands: list[tuple[tuple[int, int], StayFit]]
    kruskal_p: float
    median_by_hour: dict[int, float]

    def as_dict(self) -> dict:
        return {
            "overall": self.overall.as_dict(),
            "depends_on_arrival_hour": bool(self.bands),
            "kruskal_wallis_p": self.kruskal_p,
            "median_min_by_arrival_hour": self.median_by_hour,
            "bands": [{"hours": list(h), **f.as_dict()} for h, f in self.bands],
        }


def _bands(hours: np.ndarray, minutes: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous arrival-hour bands of similar median stay (see BAND_RATIO)."""
    med, n = {}, Counter(hours.tolist())
    for h in range(24):
        if n.get(h, 0) >= MIN_BAND_STAYS:
            med[h] = float(np.median(minutes[hours == h]))
    if not med:
        return [(0, 24)]
    hs = sorted(med)
    bands: list[list[int]] = [[hs[0]]]
    for h in hs[1:]:
        ref = np.median(minutes[np.isin(hours, bands[-1])])
        if abs(math.log(med[h] / ref)) > math.log(BAND_RATIO):
            bands.append([h])
        else:
            bands[-1].append(h)
    while len(bands) > MAX_BANDS:  # merge the two neighbours closest in median
        meds = [np.median(minutes[np.isin(hours, b)]) for b in bands]
        i = int(np.argmin([abs(math.log(meds[i + 1] / meds[i])) for i in range(len(bands) - 1)]))
        bands[i : i + 2] = [bands[i] + bands[i + 1]]
    # edges: each band runs from its first hour to the next band's first hour
    starts = [0] + [b[0] for b in bands[1:]]
    ends = [*starts[1:], 24]
    return list(zip(starts, ends, strict=True))


def fit_stays_by_hour(entry: pd.Series, minutes: np.ndarray) -> Stays:
    hours = pd.to_datetime(entry).dt.hour.to_numpy()
    minutes = np.asarray(minutes, dtype=float)
    overall = fit_stays(minutes)
    groups = [minutes[hours == h] for h in range(24) if (hours == h).sum() >= MIN_BAND_STAYS]
    p = float(stats.kruskal(*groups).pvalue) if len(groups) >= 2 else 1.0
    median_by_hour = {
        int(h): float(np.median(minutes[hours == h])) for h in range(24) if (hours == h).any()
    }
    bands = []
    if p < BAND_P:
        edges = _bands(hours, minutes)
        if len(edges) > 1:
            for a, b in edges:
                sel = (hours >= a) & (hours < b)
                if sel.sum() >= 2:
                    bands.append(((a, b), fit_stays(minutes[sel])))
    return Stays(overall, bands, p, median_by_hour)


# -- tariff --------------------------------------------------------------------------------------
PERIODS = (15, 20, 30, 60)
GRACES = (0, 5, 10, 15)
FREES = (0, 15, 30, 60, 120)
#: Entries of a (day type, hour) group below this are priced with the neighbours' table.
MIN_GROUP_RECEIPTS = 8
#: A (day type, hour) cell's candidate tables are ranked on at most this many of its receipts
#: (a year of a busy lot has thousands per cell); the assembled tariff is scored on all.
SEARCH_SAMPLE = 400
DAY_GROUPS = ("weekdays", "sat", "sun")


@dataclass
class TariffFit:
    spec: TariffSpec | None
    share_exact: float
    n: int
    mismatches: pd.DataFrame  # entry, exit, amount, priced
    searched: int
    note: str = ""

    def as_dict(self, limit: int = 50) -> dict:
        return {
            "tariff": None
            if self.spec is None
            else self.spec.model_dump(mode="json", exclude_defaults=True),
            "receipts": self.n,
            "share_reproduced_to_the_cent": self.share_exact,
            "not_reproduced": len(self.mismatches),
            "not_reproduced_examples": self.mismatches.head(limit)
            .astype(str)
            .to_dict(orient="records"),
            "tables_scored": self.searched,
            "note": self.note,
        }


def _price_all(
    spec: TariffSpec, cal: Calendar, entry_s: np.ndarray, exit_s: np.ndarray
) -> np.ndarray:
    """Cents the real engine charges for each stay."""
    tariff = spec.build(cal)
    return np.fromiter(
        (tariff.price(a, b) for a, b in zip(entry_s, exit_s, strict=True)),
        dtype=np.int64,
        count=len(entry_s),
    )


def _money(cents: int | None) -> str | None:
    return None if cents is None else str(Decimal(int(cents)) / 100)


def _table_keys(
    p: int, g: int, f: int, rate: int, cap: int | None, flat: int | None = None
) -> dict:
    return {
        "flat": _money(flat),
        "period_minutes": p,
        "grace_minutes": g,
        "free_minutes": f,
        "per_period": _money(rate),
        "daily_max": _money(cap),
    }


def fit_tariff(
    entry: pd.Series, exit_: pd.Series, amount: pd.Series, name: str = "fitted"
) -> TariffFit:
    """Search period × grace × free period × rate × daily maximum per (day type, entry hour),
    assemble the winners into a default table plus bands, and score it on every receipt."""
    entry = pd.to_datetime(entry).reset_index(drop=True)
    exit_ = pd.to_datetime(exit_).reset_index(drop=True)
    cents = np.round(pd.to_numeric(amount).to_numpy(dtype=float) * 100).astype(np.int64)
    n = len(cents)
    if n == 0:
        return TariffFit(None, float("nan"), 0, pd.DataFrame(), 0, "no receipts")
    first = entry.min().normalize()
    epoch = (first - pd.Timedelta(days=int(first.weekday()))).to_pydatetime()
    cal = Calendar(epoch=epoch)
    entry_s = (entry - pd.Timestamp(epoch)).dt.total_seconds().to_numpy()
    exit_s = (exit_ - pd.Timestamp(epoch)).dt.total_seconds().to_numpy()
    stay_min = (exit_s - entry_s) / 60
    wd = entry.dt.day_of_week.to_numpy()
    dgroup = np.where(wd < 5, 0, np.where(wd == 5, 1, 2))
    hour = entry.dt.hour.to_numpy()
    searched = 0

    def score(keys: dict, sel: np.ndarray) -> int:
        nonlocal searched
        searched += 1
        spec = TariffSpec(name=name, **{k: v for k, v in keys.items() if v is not None})
        return int(np.sum(_price_all(spec, cal, entry_s[sel], exit_s[sel]) == cents[sel]))

    def best_table(sel: np.ndarray) -> tuple[dict | None, int]:
        idx = np.flatnonzero(sel)
        if len(idx) > SEARCH_SAMPLE:  # candidates are ranked on a sample; the whole is scored
            idx = np.sort(np.random.default_rng(len(idx)).choice(idx, SEARCH_SAMPLE, replace=False))
            sel = np.zeros(n, dtype=bool)
            sel[idx] = True
        d, c = stay_min[sel], cents[sel]
        long_amounts = [a for a, _ in Counter(c[d > 8 * 60].tolist()).most_common(3) if a > 0]
        best, best_score = None, -1
        for p in PERIODS:
            for g in GRACES:
                for f in FREES:
                    periods = np.ceil((d - f - g) / p)
                    short = (periods > 0) & (d < 4 * 60) & (c > 0)
                    if short.sum() < 3:
                        continue
                    per = c[short] / periods[short]
                    whole = per[np.isclose(per, np.round(per))].round().astype(int)
                    if len(whole) == 0:
                        continue
                    rate = Counter(whole.tolist()).most_common(1)[0][0]
                    # cheap pre-score (candidate generation only): agreement on short stays
                    pre = np.mean(np.isclose(rate * periods[short], c[short]))
                    if pre < 0.5:
                        continue
                    for cap in [None, *long_amounts]:
                        keys = _table_keys(p, g, f, rate, cap)
                        s = score(keys, sel)
                        if s > best_score:
                            best, best_score = keys, s
        # a flat rate per (started) day, the most common amount whatever the stay: only when
        # short stays pay it too (else it is a daily maximum) and it prices strictly more
        # receipts than every incremental table
        common = [a for a, _ in Counter(c.tolist()).most_common(1) if a > 0]
        if common and np.mean(c == common[0]) >= 0.5 and np.sum((d < 120) & (c == common[0])) >= 3:
            for g in GRACES:
                keys = _table_keys(60, g, 0, 0, None, flat=common[0])
                s = score(keys, sel)
                if s > best_score:
                    best, best_score = keys, s
        return best, best_score

    groups: dict[tuple[int, int], dict] = {}
    for dg in range(3):
        for h in range(24):
            sel = (dgroup == dg) & (hour == h)
            if sel.sum() >= MIN_GROUP_RECEIPTS:
                table, _ = best_table(sel)
                if table is not None:  # else too few short stays to read a rate: filled below
                    groups[(dg, h)] = table
    if not groups:
        table, _ = best_table(np.ones(n, dtype=bool))
        if table is None:
            return TariffFit(
                None,
                float("nan"),
                n,
                pd.DataFrame(),
                searched,
                "no tariff structure fits: too few short paid stays to read a rate",
            )
        groups[(0, 0)] = table
    # the default table: the one chosen for the most (day type, hour) cells, so that the
    # rarer tables become bands (an off-peak table covering nights and weekends is the default);
    # cells without enough receipts to tell take it too (no evidence for a band there)
    cells = Counter(_key(k) for k in groups.values())
    default = dict(cells.most_common(1)[0][0])
    for dg in range(3):
        for h in range(24):
            groups.setdefault((dg, h), default)

    def spec_of(assign: dict[tuple[int, int], dict]) -> TariffSpec:
        return TariffSpec(
            name=name,
            **{k: v for k, v in default.items() if v is not None},
            bands=_assemble_bands(assign, default),
        )

    # local search with the whole tariff: a cell takes a neighbour's (or the default) table
    # when that prices its receipts at least as well (stays straddling a band edge are priced
    # by the engine across the edge, which one table per cell cannot see)
    masks = {c: (dgroup == c[0]) & (hour == c[1]) for c in groups}
    for _ in range(2):
        changed = False
        for cell in sorted(groups):
            sel = masks[cell]
            if not sel.any():
                continue
            dg, h = cell
            options = [
                default,
                groups.get((dg, (h - 1) % 24)),
                groups.get((dg, (h + 1) % 24)),
                *(groups.get((d2, h)) for d2 in range(3) if d2 != dg),
            ]
            current = groups[cell]
            best_s = _score_spec(spec_of(groups), cal, entry_s, exit_s, cents, sel)
            searched += 1
            for option in options:
                if option is None or option == current:
                    continue
                trial = {**groups, cell: option}
                s_opt = _score_spec(spec_of(trial), cal, entry_s, exit_s, cents, sel)
                searched += 1
                if s_opt >= best_s:
                    groups, best_s, changed = trial, s_opt, True
                    current = option
        if not changed:
            break
    spec = spec_of(groups)
    priced = _price_all(spec, cal, entry_s, exit_s)
    ok = priced == cents
    mism = pd.DataFrame(
        {
            "entry": entry[~ok],
            "exit": exit_[~ok],
            "amount": cents[~ok] / 100,
            "priced": priced[~ok] / 100,
        }
    ).reset_index(drop=True)
    return TariffFit(spec, float(ok.mean()), n, mism, searched)


#: Keys of an incremental table; a flat band leaves them to the top level (the engine charges
#: a period of a stay entered elsewhere that starts inside the band at the band's rate).
_INCREMENTAL_KEYS = ("period_minutes", "per_period", "free_minutes")


def _key(keys: dict) -> tuple:
    return tuple(sorted(keys.items(), key=str))


def _score_spec(
    spec: TariffSpec,
    cal: Calendar,
    entry_s: np.ndarray,
    exit_s: np.ndarray,
    cents: np.ndarray,
    sel: np.ndarray,
) -> int:
    return int(np.sum(_price_all(spec, cal, entry_s[sel], exit_s[sel]) == cents[sel]))


def _assemble_bands(groups: dict[tuple[int, int], dict], default: dict) -> list[dict]:
    """Runs of consecutive entry hours whose table is not the default become bands; the same
    run on Saturday and Sunday becomes one weekend band."""
    runs: dict[tuple[int, int, tuple], list[int]] = {}
    for dg in range(3):
        h = 0
        while h < 24:
            keys = groups.get((dg, h))
            if keys is None or keys == default:
                h += 1
                continue
            start = h
            while h < 24 and groups.get((dg, h)) == keys:
                h += 1
            runs.setdefault((start, h, tuple(sorted(keys.items(), key=str))), []).append(dg)
    bands = []
    for (start, end, keys), dgs in sorted(runs.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        days = ["weekdays"] if dgs == [0] else [DAY_GROUPS[d] if d else "weekdays" for d in dgs]
        if 1 in dgs and 2 in dgs:
            days = [d for d in days if d not in ("sat", "sun")] + ["weekend"]
        band = {
            "days": days,
            "start": f"{start:02d}:00",
            "end": "24:00" if end == 24 else f"{end:02d}:00",
        }
        for k, v in dict(keys).items():
            if dict(keys).get("flat") is not None and k in _INCREMENTAL_KEYS:
                continue  # a flat band inherits the rates periods starting in it are charged
            if v != default.get(k) or k == "daily_max":
                band[k] = v
        bands.append(band)
    # a narrower band inside a wider one must come first (first matching band wins)
    bands.sort(key=lambda b: _minutes(b["end"]) - _minutes(b["start"]))
    return bands


def _minutes(hhmm: str) -> int:
    hh, mm = hhmm.split(":")
    return int(hh) * 60 + int(mm)


# -- the whole log -------------------------------------------------------------------------------
@dataclass
class SiteTickets:
    site: str
    capacity: int
    peak_concurrent: int
    streams: dict[str, tuple[Arrivals, Stays]]
    tariff: TariffFit | None
    first: datetime
    last: datetime
    n_tickets: int = 0
    large_peak: int = 0  # most LARGE vehicles parked at once (their own spots)


def peak_concurrent(entry: pd.Series, exit_: pd.Series) -> int:
    """Most cars parked at once (from closed tickets; open tickets count until the log ends)."""
    end = pd.to_datetime(exit_).fillna(pd.to_datetime(entry).max() + timedelta(seconds=1))
    times = np.concatenate([pd.to_datetime(entry).to_numpy(), end.to_numpy()])
    step = np.concatenate([np.ones(len(entry)), -np.ones(len(entry))])
    order = np.lexsort((step, times))  # exits before entries at the same instant
    return int(np.cumsum(step[order]).max()) if len(order) else 0
