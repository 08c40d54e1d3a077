"""What real logs and count series hold, found and set aside with a reason, never dropped.

A calibration is only as honest as its inputs. Real ticket logs hold zero-length and negative
stays, tickets never closed, rows written twice, stays of months and rows out of time order;
real occupancy series hold counts above capacity, negative counts, gaps, duplicate timestamps,
frozen counters (of any length, across nights) and counter offsets (a whole day shifted by
phantom or lost cars). Each problem is counted by reason, the affected rows are kept in a
``set_aside`` frame with their reason (the calibration's dead letter), and every row is either
used or set aside: ``used + set aside = received`` for each use (arrivals, stays), always.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from scipy import stats

#: Stays longer than this are not parking stays but lost tickets, abandoned cars or a clock
#: fault ("stays of months"); they are set aside from the stay fit (still counted as arrivals).
LONG_STAY_DAYS = 30.0
#: A run of unchanged counts is a frozen counter when that many unchanged readings in a row
#: would happen by chance, given how often this site's count stays put at those hours, with
#: probability below FROZEN_ALPHA / (the site's number of steps between readings): see
#: :func:`frozen_runs`.
FROZEN_ALPHA = 0.01
#: A day's count is offset (a counter carrying phantom cars, or missing real ones) when its
#: opening level and the night's step into it are both beyond chance for the site (two-sided
#: p below OFFSET_ALPHA / the site's number of days): see :func:`offset_days`.
OFFSET_ALPHA = 0.01
#: How often a count stays put is estimated per hour of day and level band: the count as a
#: share of the site's usual peak (its 95th percentile). A lot near its peak moves little
#: (a full or nearly full lot cycles a few spaces); one half full at 10:00 moves a lot.
LEVEL_BANDS = (0.5, 0.8, 0.95)
#: A lot holding at most this share of its capacity is (nearly) empty: a car or two staying
#: put for hours is what an empty lot does, not a frozen counter.
EMPTY_SHARE = 0.02
#: A gap is an interval longer than this multiple of the site's median interval (same day).
GAP_FACTOR = 2.5


class CalibrationInputError(ValueError):
    """An input cannot be used at all (missing column, no parseable rows): one line, exit 2."""


@dataclass
class Cleaning:
    """What cleaning found: counts per reason, what was done, and the rows set aside."""

    received: int
    counts: dict[str, int] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)
    set_aside: pd.DataFrame = field(default_factory=pd.DataFrame)
    used: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, n: int, action: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + int(n)
        self.actions[reason] = action

    def as_dict(self) -> dict:
        return {
            "received": self.received,
            "problems": {
                r: {"count": self.counts[r], "action": self.actions[r]} for r in self.counts
            },
            "used": dict(self.used),
        }


def parse_columns(
    text: str | Mapping[str, str], required: tuple[str, ...], allowed: tuple[str, ...]
) -> dict[str, str]:
    """``entry=In,exit=Out`` (or a mapping) → ``{"entry": "In", "exit": "Out"}``, checked."""
    if isinstance(text, Mapping):
        mapping = {str(k).strip(): str(v).strip() for k, v in text.items()}
    else:
        mapping = {}
        for part in (p for p in text.split(",") if p.strip()):
            if "=" not in part:
                raise CalibrationInputError(
                    f"--columns: {part.strip()!r} is not ROLE=COLUMN (roles: {', '.join(allowed)})"
                )
            role, column = part.split("=", 1)
            mapping[role.strip()] = column.strip()
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise CalibrationInputError(
            f"--columns: unknown role {', '.join(unknown)} (allowed: {', '.join(allowed)})"
        )
    missing = [r for r in required if r not in mapping]
    if missing:
        raise CalibrationInputError(f"--columns: needs {', '.join(r + '=COLUMN' for r in missing)}")
    return mapping


def _check_present(frame: pd.DataFrame, columns: Mapping[str, str], source: str) -> None:
    absent = [c for c in columns.values() if c not in frame.columns]
    if absent:
        raise CalibrationInputError(
            f"{source}: no column {', '.join(map(repr, absent))} "
            f"(has {', '.join(map(str, frame.columns))})"
        )


def parse_times(values: pd.Series) -> pd.Series:
    """Parse date-times; a UTC offset is dropped, keeping the local wall-clock time (profiles
    are by local hour and weekday; offsets that change at a DST switch would split an hour)."""
    try:
        t = pd.to_datetime(values, errors="coerce", format="mixed")
    except ValueError:  # mixed offsets: element by element
        t = pd.Series([_one_time(v) for v in values], index=values.index, dtype="datetime64[ns]")
    if isinstance(t.dtype, pd.DatetimeTZDtype):
        return t.dt.tz_localize(None)
    return t


def _one_time(value: object) -> datetime | None:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    return None if ts is pd.NaT else ts.tz_localize(None) if ts.tzinfo else ts


# -- ticket logs --------------------------------------------------------------------------------
def clean_tickets(
    raw: pd.DataFrame, columns: Mapping[str, str], source: str = "log"
) -> tuple[pd.DataFrame, Cleaning]:
    """Standardise a ticket log and flag its problems.

    Returns a frame with ``entry, exit, stay_min, amount, site, vehicle_class, row`` and two
    booleans: ``for_arrivals`` (the row is a real arrival: parseable entry, not a duplicate) and
    ``for_stays`` (also a closed ticket with 0 < stay <= LONG_STAY_DAYS). Out-of-order rows are
    sorted, not set aside. Amounts that are missing or negative keep the row for arrivals and
    stays but leave it out of the tariff search.
    """
    _check_present(raw, columns, source)
    n = len(raw)
    report = Cleaning(received=n)
    df = pd.DataFrame({"row": np.arange(n) + 2})  # file line numbers (header is line 1)
    df["entry"] = parse_times(raw[columns["entry"]]).to_numpy()
    df["exit"] = parse_times(raw[columns["exit"]]).to_numpy()
    df["site"] = raw[columns["site"]].astype(str).to_numpy() if "site" in columns else "site"
    df["vehicle_class"] = (
        raw[columns["class"]].astype(str).str.upper().to_numpy()
        if "class" in columns
        else "REGULAR"
    )
    if "amount" in columns:
        # "$2.50", "£ 2.50", "EUR 2.50": the currency is the scenario's (--currency), not the cell's
        text = raw[columns["amount"]].astype("string").str.replace(r"^\s*[^\d\-.]*", "", regex=True)
        df["amount"] = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    else:
        df["amount"] = np.nan
    reason = pd.Series("", index=df.index, dtype=object)

    bad_entry = df["entry"].isna()
    reason[bad_entry] = "unparseable_entry"
    report.add("unparseable_entry", bad_entry.sum(), "set aside (no arrival time)")

    key = ["site", "entry", "exit", "vehicle_class", "amount"]
    dup = df.duplicated(subset=key, keep="first") & ~bad_entry
    reason[dup] = "duplicate"
    report.add("duplicate", dup.sum(), "set aside (first copy kept)")

    ok = ~bad_entry & ~dup
    # out of order: an entry earlier than the one written before it (per site, in file order)
    order_broken = (df.loc[ok].groupby("site")["entry"].diff() < pd.Timedelta(0)).sum()
    report.add("out_of_order", order_broken, "kept; the log is sorted by entry time")

    open_ticket = ok & df["exit"].isna()
    stay = (df["exit"] - df["entry"]).dt.total_seconds() / 60.0
    df["stay_min"] = stay
    negative = ok & (stay < 0)
    zero = ok & (stay == 0)
    long = ok & (stay > LONG_STAY_DAYS * 1440)
    report.add("open_ticket", open_ticket.sum(), "arrival counted; left out of the stay fit")
    report.add("negative_stay", negative.sum(), "arrival counted; left out of the stay fit")
    report.add("zero_stay", zero.sum(), "arrival counted; left out of the stay fit")
    report.add(
        "stay_over_30_days", long.sum(), "arrival counted; left out of the stay fit (lost ticket?)"
    )
    for mask, name in (
        (open_ticket, "open_ticket"),
        (negative, "negative_stay"),
        (zero, "zero_stay"),
        (long, "stay_over_30_days"),
    ):
        reason[mask] = name
    bad_amount = ok & df["amount"].notna() & (df["amount"] < 0)
    if "amount" in columns:
        missing_amount = ok & df["amount"].isna()
        report.add("amount_missing", missing_amount.sum(), "left out of the tariff search")
        report.add("amount_negative", bad_amount.sum(), "left out of the tariff search (refund?)")
    df.loc[bad_amount, "amount"] = np.nan

    df["for_arrivals"] = ok
    df["for_stays"] = ok & ~open_ticket & ~negative & ~zero & ~long
    report.counts = {k: v for k, v in report.counts.items() if v}
    report.actions = {k: report.actions[k] for k in report.counts}
    aside = df.loc[reason != "", ["row", "site", "entry", "exit", "amount"]].copy()
    aside["reason"] = reason[reason != ""]
    report.set_aside = aside.reset_index(drop=True)
    report.used = {
        "arrivals": int(df["for_arrivals"].sum()),
        "stays": int(df["for_stays"].sum()),
        "receipts": int((df["for_stays"] & df["amount"].notna()).sum()),
    }
    df = df.sort_values(["site", "entry"], kind="stable").reset_index(drop=True)
    return df, report


# -- occupancy series ---------------------------------------------------------------------------
def clean_series(
    raw: pd.DataFrame, columns: Mapping[str, str], source: str = "series"
) -> tuple[pd.DataFrame, Cleaning]:
    """Standardise an occupancy count series and flag its problems.

    Returns ``time, site, occupied, capacity, usable, row`` sorted by site and time, where
    ``usable`` marks the readings a fit may use. Handling:

    - unparseable time or count: set aside;
    - duplicate (site, time): the first reading kept, the others set aside;
    - negative count: set aside (a counter fault, not an empty lot);
    - count above capacity: kept and clipped to capacity (real lots overfill by a few cars,
      and sensors miscount; up to 5 % over is usual in Birmingham);
    - frozen counter (the same raw count for more readings in a row than the site's own
      movement at those hours makes likely, within a day or across nights: see
      :func:`frozen_runs`; an empty lot repeating 0 or a full lot repeating its capacity is
      not frozen): the repeats after the first set aside;
    - counter offset (a day whose opening count and the night's step into it are both beyond
      chance for the site, and the days after it while the opening stays so: a counter that
      gained or lost hundreds of cars overnight; see :func:`offset_days`): the whole day set
      aside;
    - gaps (a same-day interval > GAP_FACTOR × the site's median interval) and days with no
      readings: counted and reported; nothing is interpolated (the fit uses the readings there are).
    """
    _check_present(raw, columns, source)
    n = len(raw)
    report = Cleaning(received=n)
    df = pd.DataFrame({"row": np.arange(n) + 2})
    df["time"] = parse_times(raw[columns["time"]]).to_numpy()
    df["site"] = raw[columns["site"]].astype(str).to_numpy() if "site" in columns else "site"
    df["occupied"] = pd.to_numeric(raw[columns["occupied"]], errors="coerce").to_numpy()
    df["capacity"] = pd.to_numeric(raw[columns["capacity"]], errors="coerce").to_numpy()
    reason = pd.Series("", index=df.index, dtype=object)

    unparseable = df["time"].isna() | df["occupied"].isna() | ~(df["capacity"] > 0)
    reason[unparseable] = "unparseable"
    report.add("unparseable", unparseable.sum(), "set aside")
    df = df.sort_values(["site", "time", "row"], kind="stable")
    reason = reason[df.index]
    dup = df.duplicated(subset=["site", "time"], keep="first") & ~unparseable[df.index]
    reason[dup] = "duplicate_timestamp"
    report.add("duplicate_timestamp", dup.sum(), "set aside (first reading kept)")
    negative = (df["occupied"] < 0) & (reason == "")
    reason[negative] = "negative_count"
    report.add("negative_count", negative.sum(), "set aside")
    over = (df["occupied"] > df["capacity"]) & (reason == "")
    report.add("above_capacity", over.sum(), "kept, clipped to capacity")
    df["raw_occupied"] = df["occupied"]
    df.loc[over, "occupied"] = df.loc[over, "capacity"]

    frozen = frozen_runs(df[reason == ""])
    reason[frozen[frozen].index] = "frozen_counter"
    report.add(
        "frozen_counter",
        int(frozen.sum()),
        "repeats after the first set aside (unchanged beyond chance for the site and hours)",
    )
    offset = offset_days(df[reason == ""])
    reason[offset[offset].index] = "counter_offset"
    report.add(
        "counter_offset",
        int(offset.sum()),
        "set aside (the day's count shifted beyond chance from the site's: phantom or lost cars)",
    )

    good = reason == ""
    g = df[good]
    gaps = missing_days = 0
    if len(g):
        norm = g["time"].dt.normalize()
        step = g.groupby([g["site"], norm])["time"].diff().dt.total_seconds()
        median = step.groupby(g["site"]).transform("median")
        gaps = int((step > GAP_FACTOR * median).sum())
        per_site = pd.DataFrame({"site": g["site"], "day": norm}).groupby("site")["day"]
        span_days = (per_site.max() - per_site.min()).dt.days + 1
        missing_days = int((span_days - per_site.nunique()).clip(lower=0).sum())
    report.add("gap", gaps, "counted; not interpolated")
    report.add("missing_day", missing_days, "counted (site-days inside a site's range, no reading)")

    df["usable"] = (reason == "").to_numpy()
    report.counts = {k: v for k, v in report.counts.items() if v}
    report.actions = {k: report.actions[k] for k in report.counts}
    aside = df.loc[reason != "", ["row", "site", "time", "raw_occupied", "capacity"]].copy()
    aside["reason"] = reason[reason != ""]
    report.set_aside = aside.rename(columns={"raw_occupied": "occupied"}).reset_index(drop=True)
    report.used = {"readings": int(df["usable"].sum())}
    return df.drop(columns="raw_occupied").reset_index(drop=True), report


def frozen_runs(readings: pd.DataFrame) -> pd.Series:
    """True for each reading that repeats a frozen counter's value (the run's first is kept).

    ``readings``: usable readings sorted by site and time, with ``site, time, raw_occupied,
    capacity``. A step from one reading to the next is *still* when the count is unchanged.
    How often a site's count stays still depends on the hour (a lot moves less at lunchtime
    than at 09:00), on how full it is (a lot near its usual peak cycles a few spaces) and
    across a night it hardly ever does, so the probability q of a still step is estimated
    per site and class of step (the hour of day it ends in and the level band of the count,
    LEVEL_BANDS; steps across a night are one class of their own) from the site's own
    readings other than the run being judged, shrunk towards the site's overall share of
    still steps by a prior worth two steps (a class seen a few times says little). A run of
    still steps, of any length, within a day or across nights, has chance Π q under
    independence; it is frozen when that is below FROZEN_ALPHA / (the site's number of
    steps: a run may start at any of them). So three unchanged readings in a busy lot's
    morning rise can be beyond chance while six at a lot at its usual peak are not. A lot
    (nearly) empty (at most EMPTY_SHARE of capacity) or full (at or above capacity) is still
    by nature: those steps are neither counted in q nor ever frozen.
    """
    out = pd.Series(False, index=readings.index)
    for _, r in readings.groupby("site", sort=False):
        v = r["raw_occupied"].to_numpy(dtype=float)
        if len(v) < 3:
            continue
        day = r["time"].dt.normalize().to_numpy()
        level = np.searchsorted(LEVEL_BANDS, v[1:] / max(np.quantile(v, 0.95), 1.0), "right")
        nb = len(LEVEL_BANDS) + 1
        cls = np.where(day[1:] == day[:-1], r["time"].dt.hour.to_numpy()[1:] * nb + level, 24 * nb)
        cap = r["capacity"].to_numpy(dtype=float)[1:]
        natural = (v[1:] <= EMPTY_SHARE * cap) | (v[1:] >= cap)
        still = (v[1:] == v[:-1]) & ~natural
        n_cls = 24 * nb + 1
        total = np.bincount(cls[~natural], minlength=n_cls)
        stills = np.bincount(cls[still], minlength=n_cls)
        edges = np.diff(np.concatenate([[0], still.astype(int), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        limit = math.log(FROZEN_ALPHA / len(still))  # a run may start at any step
        flag = np.zeros(len(v), dtype=bool)
        for a, b in zip(starts, ends, strict=True):  # still steps a..b-1: readings a..b
            own = np.bincount(cls[a:b], minlength=n_cls)  # the run is not its own reference
            overall = (still.sum() - (b - a) + 1) / ((~natural).sum() - (b - a) + 2)
            q = (stills - own + 2 * overall) / (total - own + 2)
            if np.log(q[cls[a:b]]).sum() < limit:
                flag[a + 1 : b + 1] = True
        out[r.index[flag]] = True
    return out


def _robust_z(x: np.ndarray, ref: np.ndarray, floor: float) -> np.ndarray:
    """(x − median(ref)) / scale, the scale 1.4826·MAD of ``ref`` but at least ``floor``."""
    med = float(np.median(ref))
    scale = max(1.4826 * float(np.median(np.abs(ref - med))), floor)
    return (x - med) / scale


def offset_days(readings: pd.DataFrame) -> pd.Series:
    """True for every reading of a day whose whole count is shifted (a counter offset).

    ``readings`` as for :func:`frozen_runs`. A counter that gains or loses hundreds of cars
    overnight (missed exits, a bad reset) shows a normal daily shape at the wrong level; a
    fit and a backtest must not take it for demand. Per site, a day's *opening* (its first
    reading, when taken within an hour of the site's usual first reading time) is compared
    with the openings of the site's other days of the same type (Mon–Fri, Sat, Sun), and the
    *night step* into it (opening minus the previous day's closing, consecutive days only)
    with the site's night steps: robust z-scores (median and 1.4826·MAD, the scale at least
    √median and 1 % of capacity, so a nearly empty lot's few cars are not "beyond chance").
    An offset is additive: the level moves, the day's movement does not. So a day is offset
    only while its *rise* (the mean of its readings minus its opening) is within chance for
    its day type; a day of more or less demand scales its whole curve, rise included, and is
    a special day for the calibration to find (:mod:`twin.calibrate.occupancy_calendar`),
    not a fault. An offset starts on a day where the opening and the night step are both
    beyond chance in the same direction (two-sided p below OFFSET_ALPHA / the site's days)
    and lasts while later days' openings stay beyond chance in that direction. An event day
    opens normally (its crowd arrives after the opening) and a day after a full evening drops
    overnight as usual: neither is an offset.
    """
    out = pd.Series(False, index=readings.index)
    for _, r in readings.groupby("site", sort=False):
        days = r["time"].dt.normalize()
        per_day = r.groupby(days, sort=True)
        t_open = per_day["time"].first()
        t_close = per_day["time"].last()
        n = len(t_open)
        if n < 8:
            continue
        opening = per_day["raw_occupied"].first().to_numpy(dtype=float)
        closing = per_day["raw_occupied"].last().to_numpy(dtype=float)
        capacity = float(r["capacity"].max())
        h_open = (t_open - t_open.dt.normalize()).dt.total_seconds().to_numpy() / 3600
        h_close = (t_close - t_close.dt.normalize()).dt.total_seconds().to_numpy() / 3600
        open_ok = np.abs(h_open - np.median(h_open)) <= 1.0
        close_ok = np.abs(h_close - np.median(h_close)) <= 1.0
        weekday = t_open.index.day_of_week.to_numpy()
        kind = np.where(weekday < 5, 0, np.where(weekday == 5, 1, 2))
        rise = per_day["raw_occupied"].mean().to_numpy(dtype=float) - opening
        z_open, z_rise = np.full(n, np.nan), np.full(n, np.nan)
        for k in range(3):
            idx = np.flatnonzero((kind == k) & open_ok)
            if len(idx) < 4:
                continue
            for j in idx:
                for value, z in ((opening, z_open), (rise, z_rise)):
                    ref = value[idx[idx != j]]
                    floor = max(math.sqrt(max(abs(float(np.median(ref))), 1.0)), 0.01 * capacity)
                    z[j] = _robust_z(value[j], ref, floor)
        gap = np.diff(t_open.index.to_numpy()) == np.timedelta64(1, "D")
        night = np.flatnonzero(gap & open_ok[1:] & close_ok[:-1])
        z_night = np.full(n, np.nan)  # z_night[i]: the step into day i
        if len(night) >= 4:
            steps = opening[night + 1] - closing[night]
            floor = max(math.sqrt(max(float(np.median(np.abs(steps))), 1.0)), 0.01 * capacity)
            z_night[night + 1] = _robust_z(steps, steps, floor)
        crit = float(stats.norm.isf(OFFSET_ALPHA / n / 2))
        shifted = np.zeros(n, dtype=bool)
        direction = 0.0
        ordinary_rise = np.abs(z_rise) <= crit  # NaN (no opening to compare): False
        for i in range(n):
            zo, zn = z_open[i], z_night[i]
            if not ordinary_rise[i]:
                continue
            if abs(zo) > crit and abs(zn) > crit and np.sign(zo) == np.sign(zn):
                shifted[i], direction = True, float(np.sign(zo))
            elif i and shifted[i - 1] and direction * zo > crit:
                shifted[i] = True
        bad = t_open.index[shifted]
        out[r.index[days.isin(bad).to_numpy()]] = True
    return out
