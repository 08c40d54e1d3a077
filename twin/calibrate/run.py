"""`calibrate tickets` and `calibrate occupancy` end to end: read, clean, fit, write.

Both return a :class:`Calibration` whose ``frames`` are exactly the CSV tables written to
``out`` (when given), whose ``estimates`` is the JSON of every estimate, and whose
``scenarios`` are the validated scenario objects (one per site).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twin.calibrate.cleaning import (
    CalibrationInputError,
    Cleaning,
    clean_series,
    clean_tickets,
    parse_columns,
)
from twin.calibrate.occupancy import calibrate_series
from twin.calibrate.occupancy_calendar import PERIOD_COLUMNS, SPECIAL_COLUMNS
from twin.calibrate.scenarios import occupancy_scenario, slug, ticket_scenario, write_scenario
from twin.calibrate.tickets import (
    SiteTickets,
    fit_arrivals,
    fit_stays_by_hour,
    fit_tariff,
    peak_concurrent,
)
from twin.outputs import write_frame, write_json
from twin.scenario.model import Scenario

TICKET_ROLES = ("entry", "exit", "amount", "site", "class")
SERIES_ROLES = ("time", "site", "occupied", "capacity")


@dataclass
class Calibration:
    kind: str
    frames: dict[str, pd.DataFrame]
    estimates: dict
    scenarios: dict[str, Scenario]
    cleaning: Cleaning
    files: list[Path] = field(default_factory=list)
    fits: dict = field(default_factory=dict)


def _read(source: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        return source, "frame"
    path = Path(source)
    if not path.is_file():
        raise CalibrationInputError(f"{path}: file not found")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]), str(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise CalibrationInputError(f"{path}: not a readable CSV ({exc})") from None


def _finite(obj):
    """JSON-safe: NaN/inf become None, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# -- tickets -------------------------------------------------------------------------------------
def calibrate_tickets(
    source: str | Path | pd.DataFrame,
    columns: str | Mapping[str, str],
    out: str | Path | None = None,
    *,
    capacity: int | None = None,
    currency: str = "USD",
    plots: bool = True,
) -> Calibration:
    """Fit one scenario per site of a ticket log (see :mod:`twin.calibrate.tickets`)."""
    cols = parse_columns(columns, ("entry", "exit"), TICKET_ROLES)
    raw, name = _read(source)
    df, cleaning = clean_tickets(raw, cols, name)
    if not df["for_arrivals"].any():
        raise CalibrationInputError(f"{name}: no row has a readable entry time")
    profiles, specials, stays_rows, mism, scen, sites_est, fits = [], [], [], [], {}, {}, {}
    for site, d in df.groupby("site", sort=True):
        arr_rows = d[d["for_arrivals"]]
        stay_rows = d[d["for_stays"]]
        streams = {}
        for cls, a in arr_rows.groupby("vehicle_class", sort=True):
            s = stay_rows[stay_rows["vehicle_class"] == cls]
            if len(s) < 2:
                continue
            streams[str(cls)] = (
                fit_arrivals(a["entry"]),
                fit_stays_by_hour(s["entry"], s["stay_min"]),
            )
        if not streams:
            continue
        paid = stay_rows[stay_rows["amount"].notna()]
        tariff = fit_tariff(paid["entry"], paid["exit"], paid["amount"]) if len(paid) else None
        peak = peak_concurrent(arr_rows["entry"], arr_rows["exit"])
        large = arr_rows[arr_rows["vehicle_class"] == "LARGE"]
        fit = SiteTickets(
            str(site),
            capacity or peak,
            peak,
            streams,
            tariff,
            arr_rows["entry"].min().floor("s").to_pydatetime(),
            arr_rows["entry"].max().floor("s").to_pydatetime(),
            n_tickets=len(arr_rows),
            large_peak=peak_concurrent(large["entry"], large["exit"]) if len(large) else 0,
        )
        fits[str(site)] = fit
        scen[str(site)] = ticket_scenario(str(site), fit, name, currency)
        est = {
            "capacity": fit.capacity,
            "capacity_from": "given" if capacity else "most cars parked at once in the log",
            "peak_concurrent": peak,
            "tickets": fit.n_tickets,
            "streams": {},
        }
        for cls, (arrivals, stays) in streams.items():
            p = arrivals.profile.assign(site=str(site), stream=cls)
            profiles.append(p)
            specials.append(arrivals.special_days.assign(site=str(site), stream=cls))
            for band, sf in [((0, 24), stays.overall), *stays.bands]:
                for row in sf.table.to_dict(orient="records"):
                    stays_rows.append(
                        {
                            "site": str(site),
                            "stream": cls,
                            "band": f"{band[0]:02d}-{band[1]:02d}",
                            "n": sf.n,
                            **{k: row[k] for k in ("family", "aic", "ks", "mean", "sd")},
                            "chosen": row["family"] == sf.chosen,
                        }
                    )
            est["streams"][cls] = {
                "arrivals_per_day": {
                    d: float(p[p["day"] == d]["rate"].sum()) for d in p["day"].unique()
                },
                "dispersion_by_weekday": arrivals.dispersion,
                "day_factor_cv": arrivals.day_factor_cv,
                "special_days": arrivals.special_days.to_dict(orient="records"),
                "special_day_profiles": arrivals.special_profiles,
                "stays": stays.as_dict(),
            }
        if tariff is not None:
            est["tariff"] = tariff.as_dict()
            if len(tariff.mismatches):
                mism.append(tariff.mismatches.assign(site=str(site)))
        sites_est[str(site)] = est
    frames = {
        "profile": pd.concat(profiles, ignore_index=True) if profiles else pd.DataFrame(),
        "special_days": pd.concat(specials, ignore_index=True) if specials else pd.DataFrame(),
        "stays": pd.DataFrame(stays_rows),
        "tariff_mismatches": pd.concat(mism, ignore_index=True)
        if mism
        else pd.DataFrame(columns=["entry", "exit", "amount", "priced", "site"]),
        "cleaning": _cleaning_frame(cleaning),
        "set_aside": cleaning.set_aside,
    }
    estimates = _finite(
        {
            "kind": "tickets",
            "source": name,
            "columns": cols,
            "cleaning": cleaning.as_dict(),
            "sites": sites_est,
        }
    )
    result = Calibration("tickets", frames, estimates, scen, cleaning, fits=fits)
    if out is not None:
        _write(result, Path(out), plots)
    return result


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Per-site frames stacked, ``site`` first (an empty frame with ``columns`` if none)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _cleaning_frame(c: Cleaning) -> pd.DataFrame:
    return pd.DataFrame(
        [{"reason": r, "count": c.counts[r], "action": c.actions[r]} for r in c.counts],
        columns=["reason", "count", "action"],
    )


# -- occupancy -----------------------------------------------------------------------------------
def calibrate_occupancy(
    source: str | Path | pd.DataFrame,
    columns: str | Mapping[str, str],
    out: str | Path | None = None,
    *,
    train_until: str | pd.Timestamp | None = None,
    sites: list[str] | None = None,
    plots: bool = True,
    calendar: bool = True,
) -> Calibration:
    """Fit one scenario per site of an occupancy count series (see
    :mod:`twin.calibrate.occupancy`), on readings up to ``train_until`` (a date, inclusive).
    ``calendar``: find special days and weeks at their own level, and refit without the
    special days (:func:`twin.calibrate.occupancy.fit_site_calendar`); False fits every
    usable day into the ordinary profiles (the fit before special days existed)."""
    cols = parse_columns(columns, ("time", "occupied", "capacity"), SERIES_ROLES)
    raw, name = _read(source)
    clean, cleaning = clean_series(raw, cols, name)
    if not clean["usable"].any():
        raise CalibrationInputError(f"{name}: no usable reading (time, count and capacity)")
    if train_until is not None:
        try:
            train_until = pd.Timestamp(train_until)
        except ValueError:
            raise CalibrationInputError(
                f"--train-until: {train_until!r} is not a date (YYYY-MM-DD)"
            ) from None
    if sites:
        known = set(clean["site"])
        unknown = [s for s in sites if s not in known]
        if unknown:
            raise CalibrationInputError(
                f"--sites: no site {', '.join(map(repr, unknown))} in {name}"
            )
    cal = calibrate_series(clean, train_until, sites, calendar=calendar)
    rows, scen, est, specials, periods = [], {}, {}, [], []
    first = clean["time"].min().to_pydatetime()
    for site, fit in cal.fits.items():
        err = cal.errors[cal.errors["site"] == site].set_index("period")
        row = {
            "site": site,
            "capacity": fit.capacity,
            "stay_family": fit.law.family,
            "stay_mean_min": fit.law.mean_h * 60,
            "stay_sd_min": fit.law.sd_h * 60,
            **{f"arrivals_per_day_{k}": fit.arrivals_per_day(k) for k in ("weekday", "sat", "sun")},
            "day_factor_cv": fit.day_factor_cv,
            "special_days": len(fit.special_days),
            "weeks_own_level": len(fit.periods),
            "n_readings": fit.n_readings,
            "n_days": fit.n_days,
        }
        for period in ("fit", "held_out"):
            for m in ("mae_rate", "rmse_rate", "n"):
                row[f"{period}_{m}"] = float(err.loc[period, m]) if period in err.index else None
        rows.append(row)
        specials.append(fit.special_days.assign(site=site))
        periods.append(fit.periods.assign(site=site))
        scen[site] = occupancy_scenario(fit, name, first)
        est[site] = {**fit.as_dict(), "fit_error": row}
    frames = {
        "estimates": pd.DataFrame(rows),
        "error_by_hour": cal.error_by_hour,
        "errors": cal.errors,
        "predictions": cal.predictions,
        "special_days": _concat(specials, ["site", *SPECIAL_COLUMNS]),
        "periods": _concat(periods, ["site", *PERIOD_COLUMNS]),
        "unusable": pd.DataFrame(
            [{"site": s, "why": w} for s, w in cal.unusable.items()], columns=["site", "why"]
        ),
        "cleaning": _cleaning_frame(cleaning),
        "set_aside": cleaning.set_aside,
    }
    estimates = _finite(
        {
            "kind": "occupancy",
            "source": name,
            "columns": cols,
            "train_until": None if train_until is None else str(pd.Timestamp(train_until).date()),
            "cleaning": cleaning.as_dict(),
            "unusable": cal.unusable,
            "sites": est,
            "night_assumption": "no readings at night: each lot is taken to be empty at the start "
            "of the day; arrivals are fitted from 2 h before the first observed hour to the end of "
            "the last observed hour, and are 0 outside (the lot empties overnight)",
        }
    )
    result = Calibration("occupancy", frames, estimates, scen, cleaning, fits=cal.fits)
    if out is not None:
        _write(result, Path(out), plots)
    return result


def _write(result: Calibration, out: Path, plots: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    files = []
    names: set[str] = set()
    for site, sc in result.scenarios.items():
        name = slug(site)
        k = 1
        while name.lower() in names:  # "A B" and "A_B" must not share a file
            k += 1
            name = f"{slug(site)}_{k}"
        names.add(name.lower())
        header = (
            f"Fitted by parktwin calibrate {result.kind}; estimates in estimates.json "
            f"under sites.{site}"
        )
        files.append(write_scenario(sc, out / "scenarios" / f"{name}.yaml", header))
    for key, frame in result.frames.items():
        files.append(write_frame(frame, out / f"{key}.csv"))
    files.append(write_json(out / "estimates.json", result.estimates))
    if plots:
        from twin.calibrate.report import write_report

        files.extend(write_report(result, out))
    result.files = files
