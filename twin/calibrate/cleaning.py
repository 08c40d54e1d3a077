"""What real logs and count series hold, found and set aside with a reason, never dropped.

A calibration is only as honest as its inputs. Real ticket logs hold zero-length and negative
stays, tickets never closed, rows written twice, stays of months and rows out of time order;
real occupancy series hold counts above capacity, negative counts, gaps, duplicate timestamps
and frozen counters. Each problem is counted by reason, the affected rows are kept in a
``set_aside`` frame with their reason (the calibration's dead letter), and every row is either
used or set aside: ``used + set aside = received`` for each use (arrivals, stays), always.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

#: Stays longer than this are not parking stays but lost tickets, abandoned cars or a clock
#: fault ("stays of months"); they are set aside from the stay fit (still counted as arrivals).
LONG_STAY_DAYS = 30.0
#: A count unchanged for this many consecutive readings (the series' own interval) while the
#: lot is open is a frozen counter, not a quiet lot: real counts move every half hour or so.
FROZEN_READINGS = 4
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
    - frozen counter (same raw count for FROZEN_READINGS readings or more in a row, same day,
      below capacity: a full lot repeating its capacity is full, not frozen): the repeats after
      the first set aside;
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

    good = reason == ""
    g = df[good]
    day = g["time"].dt.normalize()
    run_id = (
        (g["raw_occupied"] != g["raw_occupied"].shift())
        | (g["site"] != g["site"].shift())
        | (day != day.shift())
    ).cumsum()
    run_len = run_id.map(run_id.value_counts())
    first_in_run = run_id != run_id.shift()
    # a full lot reporting its capacity (or a few over) for hours is full, not frozen
    below_full = g["raw_occupied"] < g["capacity"]
    frozen = (run_len >= FROZEN_READINGS) & ~first_in_run & (g["occupied"] > 0) & below_full
    frozen_idx = frozen[frozen].index
    reason[frozen_idx] = "frozen_counter"
    report.add("frozen_counter", len(frozen_idx), "repeats after the first set aside")

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
