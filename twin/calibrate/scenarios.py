"""Fitted estimates → scenario YAML, always through the pydantic schema.

A dict is validated into :class:`~twin.scenario.model.Scenario` and dumped back
(``model_dump(exclude_unset=True)``: what was set, including an explicit ``daily_max: null``
on a band), so a file written here always loads with :mod:`twin.scenario.loader`.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from twin.outputs import write_text
from twin.scenario.loader import load_scenario
from twin.scenario.model import DAY_NAMES, Scenario


def slug(site: str) -> str:
    """A file name for a site: letters, digits, '-' and '_' only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(site)).strip("_") or "site"


def _sunday_before(day: datetime) -> datetime:
    day = datetime(day.year, day.month, day.day)
    return day - timedelta(days=(day.weekday() + 1) % 7)


#: Day factors with a smaller CV than this are written as none: below it the factor changes
#: a day's arrivals by less than its Poisson noise for any lot the size of a car park.
MIN_DAY_FACTOR_CV = 0.005


def day_factor(cv: float) -> dict | None:
    """The ``day_factor`` key for an estimated CV, or None when there is none to write (not
    estimable, NaN, or no overdispersion beyond Poisson)."""
    if not math.isfinite(cv) or cv < MIN_DAY_FACTOR_CV:
        return None
    return {"cv": round(float(cv), 4)}


def ticket_scenario(site: str, fit, source: str, currency: str = "USD") -> Scenario:
    """A scenario for one site of a ticket log (``fit``: :class:`tickets.SiteTickets`).

    One level with the site's capacity (given, else the most cars the log shows parked at
    once); one stream per vehicle class with its weekday profiles and stay law (by arrival-hour
    band when stays depend on it), its day-to-day factor and its special days (``dates`` with
    the profile each had); the fitted tariff. It starts on a Sunday with 24 h of
    warm-up so the measured week is Monday to Monday with the long stays already in.
    """
    spots = {"REGULAR": max(1, int(fit.capacity))}
    streams = []
    for cls, (arrivals, stays) in fit.streams.items():
        stream = {
            "name": cls.lower(),
            "vehicle_class": cls
            if cls in ("MOTORCYCLE", "COMPACT", "REGULAR", "LARGE")
            else "REGULAR",
            "profile": {DAY_NAMES[d]: [round(r, 4) for r in arrivals.rates(d)] for d in range(7)},
            "dwell": stays.overall.dist,
        }
        if stays.bands:
            stream["dwell_by_hour"] = [{"hours": list(h), "dwell": f.dist} for h, f in stays.bands]
        factor = day_factor(arrivals.day_factor_cv)
        if factor is not None:
            stream["day_factor"] = factor
        if arrivals.special_profiles:  # each special day as it was (not its weekday's profile)
            stream["dates"] = [
                {"name": "special day", "dates": [day], "profile": [round(v, 4) for v in counts]}
                for day, counts in sorted(arrivals.special_profiles.items())
            ]
        streams.append(stream)
    if "LARGE" in fit.streams:
        spots["LARGE"] = max(1, int(fit.large_peak))
        spots["REGULAR"] = max(1, spots["REGULAR"] - spots["LARGE"])
    data = {
        "name": slug(site),
        "description": (
            f"Fitted by 'parktwin calibrate tickets' from {source}, site {site}: "
            f"{fit.n_tickets} tickets {fit.first:%Y-%m-%d} to {fit.last:%Y-%m-%d}."
        ),
        "start": _sunday_before(fit.first).isoformat(),
        "horizon_days": 8,
        "warmup_hours": 24,
        "facility": {"name": str(site), "levels": [{"name": "L1", "spots": spots}]},
        "demand": streams,
    }
    if fit.tariff is not None and fit.tariff.spec is not None:
        tariff = fit.tariff.spec.model_dump(mode="json", exclude_unset=True)
        tariff["currency"] = currency
        data["tariff"] = tariff
    return Scenario.model_validate(data)


def occupancy_scenario(fit, source: str, first: datetime) -> Scenario:
    """A scenario for one site of a count series (``fit``: :class:`occupancy.SiteFit`).

    Its week starts on a Sunday at 00:00 with no warm-up: under the fit's assumption the lot
    is empty at the start of each day (no arrivals after the last observed hour). The
    day-to-day CV, when there is one, becomes the stream's ``day_factor``; special days and
    weeks with a level of their own (see :mod:`twin.calibrate.occupancy_calendar`) become
    ``dates`` entries with their multiplier (a fit without ``calendar_entries`` has none)."""
    data = {
        "name": slug(fit.site),
        "description": (
            f"Fitted by 'parktwin calibrate occupancy' from {source}, site {fit.site}: "
            f"{fit.n_readings} readings on {fit.n_days} days; stays {fit.law.family}; "
            f"day-to-day demand CV {fit.day_factor_cv:.3f}."
        ),
        "start": _sunday_before(first).isoformat(),
        "horizon_days": 7,
        "warmup_hours": 0,
        "facility": {
            "name": str(fit.site),
            "levels": [{"name": "L1", "spots": {"REGULAR": int(fit.capacity)}}],
        },
        "demand": [
            {
                "name": "arrivals",
                # Mon–Fri as the shared profile, then each weekday's own where the fit has
                # one (the schema's day names win over "weekday")
                "profile": {
                    k: [round(r, 4) for r in fit.blocks.hourly(fit.rates[k])]
                    for k in ("weekday", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
                    if k in fit.rates
                },
                "dwell": fit.law.as_scenario(),
            }
        ],
    }
    factor = day_factor(fit.day_factor_cv)
    if factor is not None:
        data["demand"][0]["day_factor"] = factor
    dates = [
        {
            "name": "special day (from counts)" if len(days) == 1 else f"week of {days[0]}",
            "dates": days,
            "multiplier": round(k, 4),
        }
        for days, k in (fit.calendar_entries() if hasattr(fit, "calendar_entries") else [])
    ]
    if dates:  # special days and weeks at their own level, found against chance
        data["demand"][0]["dates"] = dates
    return Scenario.model_validate(data)


def write_scenario(scenario: Scenario, path: Path, header: str = "") -> Path:
    """Dump through the schema, write atomically, and check the file loads as written."""
    data = scenario.model_dump(mode="json", exclude_unset=True)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    lines = "".join(f"# {line}\n" for line in header.splitlines())
    write_text(path, lines + text)
    load_scenario(path)  # raises ScenarioError naming the problem, should the schema move
    return path
