"""Output statistics: t intervals, MSER-5 warm-up detection, sequential stopping.

MSER-5 is checked on synthetic series whose answer is known (a transient that decays, a
stationary series) and against a brute-force evaluation of its statistic; ``warmup_hours: auto``
on the airport scenario, which fills over days; sequential stopping against plain runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from cli import app
from twin.api import ScenarioError, load
from twin.executors import SerialExecutor, run_task
from twin.experiments import confidence_interval as reexported
from twin.experiments import figure_interval, replicate, resolve_warmup, run, run_sequential
from twin.stats import confidence_interval, half_width, mser, paired_difference

ROOT = Path(__file__).resolve().parents[2]
SURFACE = ROOT / "scenarios" / "surface_lot.yaml"
AIRPORT = ROOT / "scenarios" / "airport_long_stay.yaml"
runner = CliRunner()


# -- confidence intervals ---------------------------------------------------------------------
def test_confidence_interval_is_the_student_t_interval() -> None:
    x = np.array([3.0, 5.0, 4.0, 8.0, 6.0])
    mean, sd, lo, hi = confidence_interval(x)
    t = sps.t.ppf(0.975, df=4)
    assert mean == pytest.approx(5.2)
    assert sd == pytest.approx(np.std(x, ddof=1))
    assert (lo, hi) == pytest.approx((5.2 - t * sd / math.sqrt(5), 5.2 + t * sd / math.sqrt(5)))
    assert half_width(x) == pytest.approx(t * sd / math.sqrt(5))
    assert reexported is confidence_interval  # experiments keeps its old name working


def test_confidence_interval_edge_cases() -> None:
    assert confidence_interval(np.array([2.0, 2.0, 2.0])) == (2.0, 0.0, 2.0, 2.0)
    mean, sd, lo, hi = confidence_interval(np.array([7.0, np.nan]))
    assert math.isnan(hi)
    assert mean == 7.0 and math.isnan(sd) and math.isnan(lo)
    assert all(math.isnan(v) for v in confidence_interval(np.array([np.nan])))


def test_paired_difference_against_hand_computation() -> None:
    a = np.array([10.0, 12.0, 9.0, 14.0, 11.0])
    b = np.array([12.5, 14.0, 11.5, 17.0, 12.0])
    d = b - a
    p = paired_difference(a, b)
    t = sps.t.ppf(0.975, df=4)
    se = np.std(d, ddof=1) / math.sqrt(5)
    assert p.mean == pytest.approx(d.mean())
    assert (p.ci_low, p.ci_high) == pytest.approx((d.mean() - t * se, d.mean() + t * se))
    assert p.unpaired_sd == pytest.approx(math.hypot(np.std(a, ddof=1), np.std(b, ddof=1)))
    paired = sps.ttest_rel(b, a).confidence_interval(0.95)
    welch = sps.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert (p.ci_low, p.ci_high) == pytest.approx((paired.low, paired.high))
    assert (p.unpaired_low, p.unpaired_high) == pytest.approx((welch.low, welch.high))
    assert p.significant
    # strongly correlated pairs: pairing removes most of the variance
    assert p.variance_reduction > 0.8
    assert p.half_width < p.unpaired_half_width


def test_paired_difference_of_identical_samples_is_exactly_zero() -> None:
    a = np.array([1.0, 4.0, 2.0])
    p = paired_difference(a, a.copy())
    assert (p.mean, p.sd, p.ci_low, p.ci_high) == (0.0, 0.0, 0.0, 0.0)
    assert not p.significant


# -- MSER-5 -----------------------------------------------------------------------------------
def _mser_brute_force(x: np.ndarray, m: int = 5) -> tuple[int, list[float]]:
    k = len(x) // m
    z = x[: k * m].reshape(k, m).mean(axis=1)
    values = [float(np.sum((z[d:] - z[d:].mean()) ** 2) / (k - d) ** 2) for d in range(k // 2 + 1)]
    return int(np.argmin(values)) * m, values


def test_mser_matches_a_brute_force_evaluation() -> None:
    rng = np.random.default_rng(3)
    x = 40 * np.exp(-np.arange(403) / 30.0) + rng.normal(0, 4, 403)  # 403: partial last batch
    cut = mser(x)
    expected, values = _mser_brute_force(x)
    assert cut.truncate == expected
    assert cut.batch_size == 5
    assert np.allclose(cut.statistic, values, rtol=1e-9)


def test_mser_cuts_a_decaying_transient_in_the_first_half() -> None:
    """Exponential approach to a level, tau = 50 observations, plus noise, 30 seeds.

    After ln(10)·tau ≈ 115 observations only 10% of the initial bias is left: MSER-5 must cut
    at least that far, and never beyond the first half.
    """
    t = np.arange(1000.0)
    cuts = []
    for seed in range(30):
        x = 100 * (1 - np.exp(-t / 50)) + np.random.default_rng(seed).normal(0, 5, len(t))
        result = mser(x)
        assert not result.at_boundary
        cuts.append(result.truncate)
    assert min(cuts) >= math.log(10) * 50
    assert max(cuts) <= 500
    assert np.median(cuts) < 300  # and it does not throw away far more than needed


def test_mser_leaves_a_stationary_series_alone() -> None:
    cuts = [mser(np.random.default_rng(100 + s).normal(50, 5, 1000)).truncate for s in range(50)]
    assert np.median(cuts) == 0
    assert np.mean(np.array(cuts) <= 50) >= 0.9  # at most 5% of the data cut in 9 runs of 10
    assert mser(np.full(200, 7.0)).truncate == 0  # flat: nothing to cut, ties go to d = 0


def test_mser_flags_a_series_that_never_settles() -> None:
    trend = np.arange(500.0)  # still rising at the end: no steady state to find
    result = mser(trend)
    assert result.at_boundary
    assert result.truncate == 250


def test_mser_rejects_unusable_input() -> None:
    with pytest.raises(ValueError, match="at least 10 observations"):
        mser(np.ones(9))
    with pytest.raises(ValueError, match="NaN"):
        mser(np.array([1.0] * 20 + [np.nan]))


# -- warmup_hours: auto -----------------------------------------------------------------------
def test_scenario_accepts_auto_and_rejects_nonsense() -> None:
    sc = load(SURFACE, {"warmup_hours": "auto"})
    assert sc.warmup_hours == "auto"
    with pytest.raises(ValueError, match="auto"):
        _ = sc.warmup_s  # metrics cannot silently measure from an unresolved warm-up
    with pytest.raises(ScenarioError) as err:
        load(SURFACE, {"warmup_hours": "soon"})
    assert err.value.problems == ["warmup_hours: must be hours >= 0 or 'auto', got 'soon'"]


def test_airport_warmup_is_detected_as_several_days() -> None:
    """The airport lot starts empty and stays are ~4 days: it takes days to fill."""
    sc = load(AIRPORT, {"warmup_hours": "auto"})
    result = run(sc, replications=3, pilot_replications=3)
    w = result.warmup
    assert w is not None and w.method == "MSER-5" and not w.at_boundary
    assert 3 * 24 <= w.hours <= sc.horizon_days * 24 / 2
    assert result.scenario.warmup_hours == w.hours
    # the cut is where the fill has levelled off: mean occupancy after it is near steady state
    occ = result.occupancy
    total = occ[occ["group_kind"] == "total"].groupby("time_s")["occupancy"].mean()
    after = total[total.index >= w.hours * 3600]
    assert total.iloc[0] == 0.0 and after.iloc[0] > 0.9 * after.mean()
    summary = result.summary_dict()
    assert summary["warmup_hours_detected"] == w.hours
    assert summary["warmup_hours"] == w.hours
    # pilot replications are reused as run replications: identical to simulating them afresh
    fresh = replicate(result.scenario, 2, result.seed)
    assert fresh.metrics == result.metrics.iloc[2].drop("replication").to_dict()


def test_detected_warmup_does_not_depend_on_the_number_of_replications() -> None:
    sc = load(SURFACE, {"warmup_hours": "auto", "horizon_days": 2})
    one = run(sc, replications=2, pilot_replications=4)
    six = run(sc, replications=6, pilot_replications=4)
    assert one.warmup == six.warmup
    pd.testing.assert_frame_equal(one.metrics, six.metrics.iloc[:2])
    _, detection, records = resolve_warmup(sc, None, 4)
    assert detection == one.warmup and sorted(records) == [0, 1, 2, 3]


# -- sequential stopping ----------------------------------------------------------------------
def test_sequential_stops_at_the_first_n_meeting_the_target_and_equals_a_fixed_run() -> None:
    sc = load(SURFACE, {"horizon_days": 2})
    target = 1.2  # balked_pct, percentage points
    reference = run(sc, replications=20)
    # the rule watches the figure's summary interval (pooled counts for a share of drivers)
    table = reference.metrics

    def hw(n: int) -> float:
        return float(figure_interval(table.iloc[:n], "balked_pct")["half_width"])

    expected_n = next(n for n in range(5, 21) if hw(n) <= target)
    assert expected_n > 5  # the rule has to do some work in this case

    seq = run_sequential(sc, target, metric="balked_pct", max_replications=20)
    stop = seq.stopping
    assert stop is not None and stop.met
    assert seq.replications == stop.replications == expected_n
    assert stop.half_width <= target < hw(expected_n - 1)
    # replication r is always the same: identical to a plain run of that many replications
    plain = run(sc, replications=expected_n)
    pd.testing.assert_frame_equal(seq.metrics, plain.metrics)
    pd.testing.assert_frame_equal(seq.summary(), plain.summary())
    with_stop = seq.summary_dict()
    assert with_stop.pop("stopping")["met"] is True
    assert with_stop == plain.summary_dict()


def test_sequential_relative_target_and_the_cap() -> None:
    sc = load(SURFACE, {"horizon_days": 2})
    rel = run_sequential(sc, 0.10, metric="revenue_per_day", relative=True, max_replications=20)
    mean = rel.metrics["revenue_per_day"].mean()
    assert rel.stopping.met and rel.stopping.half_width <= 0.10 * mean
    assert rel.stopping.target_half_width == pytest.approx(0.10 * mean)
    capped = run_sequential(sc, 1e-6, metric="revenue_per_day", max_replications=6)
    assert not capped.stopping.met and capped.replications == 6
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        run_sequential(sc, 1.0, metric="nope")
    with pytest.raises(ValueError, match="precision must be > 0"):
        run_sequential(sc, 0.0)


# -- CLI --------------------------------------------------------------------------------------
def test_cli_run_with_precision_reports_replications_and_warns_at_the_cap(tmp_path: Path) -> None:
    table = run(load(SURFACE, {"horizon_days": 2}), replications=20).metrics
    n = next(
        n
        for n in range(5, 21)
        if figure_interval(table.iloc[:n], "balked_pct")["half_width"] <= 1.2
    )
    base = ["run", str(SURFACE), "--days", "2", "--metric", "balked_pct"]
    ok = runner.invoke(app, [*base, "--precision", "1.2", "--out", str(tmp_path / "ok")])
    assert ok.exit_code == 0, ok.output
    assert "balked_pct 95% half-width" in ok.output and f"after {n} replications" in ok.output
    summary = json.loads((tmp_path / "ok" / "summary.json").read_text())
    assert summary["replications"] == summary["stopping"]["replications"] == n
    capped = runner.invoke(app, [*base, "--precision", "0.001", "--max-replications", "5"])
    assert capped.exit_code == 0, capped.output  # a warning, not an error
    assert "warning: stopped at the cap of 5 replications" in capped.output
    both = runner.invoke(app, [*base, "--precision", "1", "--replications", "3"])
    assert both.exit_code == 2 and "not both" in both.output
    unknown = runner.invoke(app, [*base[:-1], "nope", "--precision", "1"])
    assert unknown.exit_code == 2 and "unknown metric 'nope'" in unknown.output
    assert "Traceback" not in unknown.output


def test_cli_run_with_auto_warmup_reports_the_cut(tmp_path: Path) -> None:
    args = ["run", str(SURFACE), "--days", "2", "--replications", "2", "--warmup", "auto"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    hours = summary["warmup_hours_detected"]
    assert summary["warmup_detection"]["method"] == "MSER-5"
    assert f"warm-up: auto → cut the first {hours:g} h" in result.output
    bad = runner.invoke(app, ["run", str(SURFACE), "--warmup", "soon"])
    assert bad.exit_code == 2
    assert "warmup_hours: must be hours >= 0 or 'auto', got 'soon'" in bad.output


class _BatchExecutor(SerialExecutor):
    """Three 'workers' that hand results back in reverse order, as a pool may."""

    @property
    def workers(self) -> int:
        return 3

    def map_tasks(self, tasks):  # type: ignore[no-untyped-def]
        done = [(task, run_task(task)) for task in tasks]
        yield from reversed(done)


def test_sequential_and_auto_warmup_give_the_same_result_on_an_executor() -> None:
    """Rounds of parallel replications may overshoot the stopping point; the extra ones are
    dropped, so the result is the serial one."""
    sc = load(SURFACE, {"horizon_days": 2, "warmup_hours": "auto"})
    serial = run_sequential(sc, 1.2, metric="balked_pct", max_replications=20)
    with _BatchExecutor() as ex:
        parallel = run_sequential(sc, 1.2, metric="balked_pct", max_replications=20, executor=ex)
    assert parallel.warmup == serial.warmup
    assert parallel.stopping == serial.stopping
    pd.testing.assert_frame_equal(parallel.metrics, serial.metrics)
