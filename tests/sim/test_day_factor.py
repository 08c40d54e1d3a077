"""Day-to-day demand variation (``day_factor``) and date calendars (``dates``) in scenarios.

Issue 12: real demand varies more from day to day than a Poisson process allows. A gamma day
factor of mean 1 and CV c makes a day's arrivals negative binomial, Var = m + c²m²; these tests
hold the drawn days to that law within sampling error, check that listed dates get their
multiplier or profile, that both keep the horizon-prefix property, that they are off (and draw
nothing) by default, and that calibration writes them as keys that load and round-trip.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from twin.calibrate.occupancy import Blocks, StayLaw
from twin.calibrate.run import calibrate_tickets
from twin.calibrate.scenarios import occupancy_scenario, write_scenario
from twin.core.clock import DAY, Calendar
from twin.scenario.loader import ScenarioError, load_scenario, validate_scenario
from twin.scenario.reference import demand_reference
from twin.sim.demand import day_factors, draw_drivers
from twin.sim.rng import Streams
from twin.sim.size import RunTooLarge, check_size

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 1, 5)  # a Monday


def _scenario(days: float, *streams: dict, start: datetime = START):
    return validate_scenario(
        {
            "name": "dayfactor",
            "start": start.isoformat(),
            "horizon_days": days,
            "facility": {"levels": [{"name": "L1", "spots": {"REGULAR": 50}}]},
            "demand": list(streams),
        }
    )


def _stream(name: str = "cars", **extra) -> dict:
    return {
        "name": name,
        "rate_per_hour": 5.0,
        "dwell": {"type": "exponential", "mean": 60},
        **extra,
    }


def _drivers(scenario, replication: int = 0):
    return draw_drivers(scenario, Streams(scenario.seed, replication), Calendar(scenario.start))


def _daily(drivers, days: int, stream: int | None = None) -> np.ndarray:
    mask = slice(None) if stream is None else np.asarray(drivers.stream) == stream
    day = (np.asarray(drivers.arrival)[mask] // DAY).astype(int)
    return np.bincount(day, minlength=days)[:days]


# -- the negative binomial law --
@pytest.mark.parametrize("cv", [0.3, 0.12])
def test_daily_arrivals_are_negative_binomial(cv):
    """Var of daily totals = m + c²m² (NB with r = 1/c²), within 4 standard errors of the
    sample variance (computed from the NB's own kurtosis), and far from Poisson's m."""
    days = 1500
    counts = _daily(_drivers(_scenario(days, _stream(day_factor={"cv": cv}))), days)
    m = 5.0 * 24
    r = 1 / cv**2
    mean, var, _, kurt = (float(x) for x in stats.nbinom(r, r / (r + m)).stats(moments="mvsk"))
    assert var == pytest.approx(m + cv**2 * m**2)
    se_mean = math.sqrt(var / days)
    assert abs(counts.mean() - mean) < 4 * se_mean
    s2 = counts.var(ddof=1)
    se_var = var * math.sqrt(kurt / days + 2 / (days - 1))
    assert abs(s2 - var) < 4 * se_var, (s2, var, se_var)
    assert s2 > m + 0.5 * cv**2 * m**2  # Poisson (Var = m) is rejected outright
    # and the whole law, not two moments: a chi-square-free check by KS on the NB cdf
    assert stats.kstest(counts, stats.nbinom(r, r / (r + m)).cdf).statistic < 0.06


def test_without_day_factor_days_stay_poisson():
    days = 1500
    counts = _daily(_drivers(_scenario(days, _stream())), days)
    m = 5.0 * 24
    se_var = m * math.sqrt(1 / (m * days) + 2 / (days - 1))  # Poisson: excess kurtosis 1/m
    assert abs(counts.var(ddof=1) - m) < 4 * se_var


def test_off_by_default_draws_nothing():
    """No key, ``cv: 0`` and an empty calendar give exactly the drivers of the plain stream:
    scenarios that do not use the keys keep every number (the regression gate relies on it)."""
    plain = _drivers(_scenario(10, _stream()))
    for extra in ({"day_factor": {"cv": 0.0}}, {"dates": []}):
        other = _drivers(_scenario(10, _stream(**extra)))
        np.testing.assert_array_equal(plain.arrival, other.arrival)
        np.testing.assert_array_equal(plain.dwell, other.dwell)
    varied = _drivers(_scenario(10, _stream(day_factor={"cv": 0.2})))
    assert (_daily(varied, 10) != _daily(plain, 10)).sum() >= 5


def test_a_shared_group_moves_together():
    """Streams naming one group share each day's factor; without a group they are independent."""
    days = 400

    def corr(group: str | None) -> float:
        factor = {"cv": 0.3} if group is None else {"cv": 0.3, "group": group}
        sc = _scenario(days, _stream("a", day_factor=factor), _stream("b", day_factor=dict(factor)))
        d = _drivers(sc)
        return float(np.corrcoef(_daily(d, days, 0), _daily(d, days, 1))[0, 1])

    # both ~NB(120, 0.3): a shared factor gives corr = c²m² / (m + c²m²) ≈ 0.9
    assert corr("lot") > 0.8
    assert abs(corr(None)) < 0.15


def test_replications_draw_other_days():
    sc = _scenario(60, _stream(day_factor={"cv": 0.3}))
    a, b = _daily(_drivers(sc, 0), 60), _daily(_drivers(sc, 1), 60)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.4


# -- calendars --
def test_dates_get_their_multiplier_or_profile():
    days = 14
    holiday, closed, event = date(2026, 1, 7), date(2026, 1, 10), date(2026, 1, 13)
    profile = [0.0] * 24
    profile[18] = 200.0
    sc = _scenario(
        days,
        _stream(
            dates=[
                {"name": "holiday", "dates": [holiday], "multiplier": 3},
                {"name": "closed", "dates": [closed], "multiplier": 0},
                {"name": "concert", "dates": [event], "profile": profile},
            ]
        ),
    )
    d = _drivers(sc)
    counts = _daily(d, days)
    when = pd.Timestamp(START) + pd.to_timedelta(np.asarray(d.arrival), unit="s")
    of = lambda day: when[when.normalize() == pd.Timestamp(day)]  # noqa: E731
    usual = np.delete(counts, [2, 5, 8])
    assert usual.mean() == pytest.approx(120, rel=0.1)
    assert stats.poisson(360).ppf(0.0005) < counts[2] < stats.poisson(360).ppf(0.9995)
    assert counts[5] == 0
    concert = of(event)
    assert set(concert.hour) == {18}
    assert stats.poisson(200).ppf(0.0005) < len(concert) < stats.poisson(200).ppf(0.9995)
    # a date whose slot starts mid-scenario follows the calendar, not the run's day number
    late = _scenario(
        3,
        _stream(dates=[{"dates": [date(2026, 1, 6)], "multiplier": 0}]),
        start=START + timedelta(hours=12),
    )
    t = pd.Timestamp(START + timedelta(hours=12)) + pd.to_timedelta(_drivers(late).arrival, "s")
    assert not (t.normalize() == pd.Timestamp("2026-01-06")).any()
    assert (t.normalize() == pd.Timestamp("2026-01-07")).sum() > 50


def test_day_factor_applies_on_listed_dates_too():
    """A holiday's multiplier scales that day's rates; the day factor still varies the day."""
    sc = _scenario(
        2, _stream(day_factor={"cv": 0.3}, dates=[{"dates": [START.date()], "multiplier": 2}])
    )
    base = _scenario(2, _stream(day_factor={"cv": 0.3}))
    # the same day factor on both (it is keyed by day, not by rate): over replications the
    # listed day holds twice the arrivals of the plain one, the next day as many
    a = sum(_daily(_drivers(sc, r), 2) for r in range(60))
    b = sum(_daily(_drivers(base, r), 2) for r in range(60))
    assert a[0] / b[0] == pytest.approx(2, rel=0.06)
    assert a[1] / b[1] == pytest.approx(1, rel=0.06)


# -- the horizon-prefix property --
def test_prefix_property_holds_with_day_factor_and_dates():
    """The first 7 days of a 30-day run are the 7-day run, driver for driver."""
    streams = (
        _stream(
            "a",
            day_factor={"cv": 0.25, "group": "lot"},
            dates=[{"dates": [date(2026, 1, 8), date(2026, 1, 20)], "multiplier": 1.8}],
        ),
        _stream("b", day_factor={"cv": 0.25, "group": "lot"}),
        _stream("c", day_factor={"cv": 0.1}),
    )
    short, long = _drivers(_scenario(7, *streams)), _drivers(_scenario(30, *streams))
    n = len(short)
    assert len(long) > n and long.arrival[n] >= 7 * DAY
    for name in ("arrival", "dwell", "stream", "ev", "handicap", "vclass"):
        np.testing.assert_array_equal(
            np.asarray(getattr(short, name)), np.asarray(getattr(long, name))[:n], err_msg=name
        )


# -- validation: one line per problem --
@pytest.mark.parametrize(
    "extra, needle",
    [
        ({"day_factor": {"cv": -0.1}}, "demand[0].day_factor.cv"),
        ({"day_factor": {"cv": 3}}, "demand[0].day_factor.cv"),
        ({"day_factor": {"cv": 0.1, "shape": 2}}, "day_factor.shape"),
        ({"dates": [{"dates": ["2026-01-07"]}]}, "exactly one of 'multiplier' or 'profile'"),
        (
            {"dates": [{"dates": ["2026-01-07"], "multiplier": 2, "profile": [1] * 24}]},
            "exactly one of 'multiplier' or 'profile'",
        ),
        ({"dates": [{"dates": ["2026-01-07"], "profile": [1] * 23}]}, "needs 24 hourly rates"),
        ({"dates": [{"dates": ["2026-01-07"], "multiplier": -1}]}, "demand[0].dates[0].multiplier"),
        ({"dates": [{"dates": ["2026-02-30"], "multiplier": 2}]}, "demand[0].dates[0].dates[0]"),
        ({"dates": [{"dates": [], "multiplier": 2}]}, "demand[0].dates[0].dates"),
        (
            {
                "dates": [
                    {"dates": ["2026-01-07"], "multiplier": 2},
                    {"dates": ["2026-01-07"], "multiplier": 3},
                ]
            },
            "2026-01-07 is in dates[0] and dates[1]",
        ),
    ],
)
def test_bad_keys_are_one_line_errors(extra, needle):
    with pytest.raises(ScenarioError) as err:
        _scenario(3, _stream(**extra))
    assert len(err.value.problems) == 1, err.value.problems
    assert "\n" not in err.value.problems[0]
    assert needle in err.value.problems[0], err.value.problems[0]


def test_shared_group_needs_one_cv_and_traces_take_neither(tmp_path):
    with pytest.raises(ScenarioError, match="share day_factor group 'lot' with different cv"):
        _scenario(
            3,
            _stream("a", day_factor={"cv": 0.1, "group": "lot"}),
            _stream("b", day_factor={"cv": 0.2, "group": "lot"}),
        )
    trace = tmp_path / "t.csv"
    trace.write_text("arrival,dwell\n10,30\n")
    with pytest.raises(ScenarioError, match="not a replayed trace"):
        _scenario(
            3,
            {
                "name": "t",
                "trace": {"path": str(trace), "time_unit": "min", "dwell_column": "dwell"},
                "day_factor": {"cv": 0.1},
            },
        )


def test_weibull_stays_by_mean_and_sd_or_shape():
    sc = _scenario(40, _stream(dwell={"type": "weibull", "mean": 90, "sd": 40}))
    dist = sc.demand[0].dwell
    assert dist.frozen().mean() == pytest.approx(90) and dist.frozen().std() == pytest.approx(40)
    dwell = np.asarray(_drivers(sc).dwell) / 60
    assert stats.kstest(dwell, dist.frozen().cdf).pvalue > 1e-3
    by_shape = _scenario(1, _stream(dwell={"type": "weibull", "mean": 90, "shape": 0.8}))
    assert by_shape.demand[0].dwell.frozen().mean() == pytest.approx(90)
    with pytest.raises(ScenarioError, match="exactly one of 'sd' or 'shape'"):
        _scenario(1, _stream(dwell={"type": "weibull", "mean": 90}))


# -- calibration writes the keys --
def _ticket_log(seed: int = 3, days: int = 42, cv: float = 0.2) -> tuple[pd.DataFrame, date]:
    """A gate log with gamma day factors, Weibull stays and one event day (5× arrivals)."""
    rng = np.random.default_rng(seed)
    hourly = np.array([0] * 7 + [30, 40, 30, 20, 20, 20, 20, 20, 20, 30, 30, 10] + [0] * 5, float)
    event = date(2026, 1, 21)
    rows = []
    for k in range(days):
        day = START + timedelta(days=k)
        f = rng.gamma(1 / cv**2, cv**2) * (5 if day.date() == event else 1)
        for h, n in enumerate(rng.poisson(hourly * f)):
            entry = day + pd.to_timedelta(h * 3600 + rng.random(n) * 3600, unit="s")
            stay = stats.weibull_min(c=1.8, scale=150).rvs(size=n, random_state=rng)
            rows.append(pd.DataFrame({"In": entry, "Out": entry + pd.to_timedelta(stay, "min")}))
    return pd.concat(rows, ignore_index=True), event


def test_calibrate_tickets_writes_day_factor_special_dates_and_weibull(tmp_path):
    log, event = _ticket_log()
    cal = calibrate_tickets(log, "entry=In,exit=Out", None, plots=False)
    (sc,) = cal.scenarios.values()
    (stream,) = sc.demand
    assert stream.day_factor is not None and 0.1 < stream.day_factor.cv < 0.3
    listed = {d: e for e in stream.dates for d in e.dates}
    # the event day, with its own profile (5× the usual ~300 a day); with gamma days of CV 0.2
    # over 6 weeks the detector may also flag one extreme ordinary day (calibrate's call)
    assert event in listed and len(listed) <= 2, sorted(listed)
    assert sum(listed[event].profile) > 3 * 300
    assert stream.dwell.type == "weibull"
    assert stream.dwell.frozen().mean() == pytest.approx(
        stats.weibull_min(1.8, scale=150).mean(), rel=0.05
    )
    path = write_scenario(sc, tmp_path / "fitted.yaml")
    again = load_scenario(path)
    assert again.demand[0].day_factor == stream.day_factor
    assert again.demand[0].dates == stream.dates
    assert again.demand[0].dwell == stream.dwell
    assert len(_drivers(again)) > 0


def test_occupancy_scenario_writes_day_factor(tmp_path):
    fit = SimpleNamespace(
        site="P1",
        n_readings=100,
        n_days=20,
        capacity=300,
        law=StayLaw("gamma", 2.5, 1.5),
        blocks=Blocks.for_hours(8, 16),
        day_factor_cv=0.137,
    )
    fit.rates = {k: np.full(fit.blocks.n, 20.0) for k in ("weekday", "sat", "sun")}
    sc = occupancy_scenario(fit, "series.csv", datetime(2016, 10, 4))
    assert sc.demand[0].day_factor.cv == pytest.approx(0.137)
    again = load_scenario(write_scenario(sc, tmp_path / "p1.yaml"))
    assert again.demand[0].day_factor == sc.demand[0].day_factor
    fit.day_factor_cv = float("nan")  # not estimable: no key at all
    assert occupancy_scenario(fit, "s.csv", datetime(2016, 10, 4)).demand[0].day_factor is None


def test_demand_reference_in_docs_is_current():
    text = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    match = re.search(
        r"<!-- demand-reference:start -->\n(.*?)<!-- demand-reference:end -->", text, re.S
    )
    assert match and match.group(1) == demand_reference(), (
        "docs/scenarios.md's demand table is stale: regenerate it with "
        "`python -m twin.scenario.reference demand`"
    )


def test_the_documented_example_loads():
    """The YAML example of docs/scenarios.md's section is a valid stream (profile filled in)."""
    text = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    section = text[text.index("## Day-to-day variation") :]
    block = section[section.index("```yaml\n") + 8 : section.index("```\n")]
    data = yaml.safe_load(block.replace("[...]", "[" + ", ".join(["10"] * 24) + "]"))
    sc = _scenario(3, *data["demand"])
    assert sc.demand[0].day_factor.group == "lot" and len(sc.demand[0].dates) == 2


def test_a_huge_date_is_refused_before_drawing():
    """The memory guard counts listed dates inside the horizon: a calendar entry of a billion
    cars an hour is refused with one line naming the stream, like a profile of one."""
    profile = [1e9] * 24
    huge = _scenario(3, _stream(dates=[{"dates": [date(2026, 1, 6)], "profile": profile}]))
    with pytest.raises(RunTooLarge, match=r"demand\[0\] \('cars'\).*dates"):
        check_size(huge)
    outside = _scenario(3, _stream(dates=[{"dates": [date(2027, 1, 6)], "profile": profile}]))
    check_size(outside)  # not in this run: nothing to refuse
    for bad in ("inf", "nan"):
        with pytest.raises(ScenarioError, match=r"demand\[0\].dates\[0\].multiplier"):
            _scenario(3, _stream(dates=[{"dates": [date(2026, 1, 6)], "multiplier": bad}]))


def test_factors_belong_to_dates_not_to_run_days():
    """Started a day later (same seed), a run sees the same factor on the same date: the
    factor is keyed by the calendar date, so a forecast from mid-week keeps the run's days."""
    stream = _stream(day_factor={"cv": 0.3})
    early, late = _scenario(6, stream), _scenario(5, stream, start=START + timedelta(days=1))
    cal_e, cal_l = Calendar(early.start), Calendar(late.start)
    hours = np.arange(5 * 24) * 3600.0
    f_e = day_factors(early.demand[0], cal_e, hours + DAY, Streams(early.seed, 0))
    f_l = day_factors(late.demand[0], cal_l, hours, Streams(late.seed, 0))
    np.testing.assert_array_equal(f_e, f_l)
    assert len(set(f_l.tolist())) == 5  # one factor per day, five days
