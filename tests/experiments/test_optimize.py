"""Tariff search: known optima found, constraints respected, CRN and determinism, CLI errors.

The scenarios are tiny and built as dicts, with a structure whose optimum is known on paper:

* constant-elasticity demand (-0.4) and room for everyone: revenue ∝ p^0.6 rises with the
  price, so the revenue optimum is the upper bound;
* willingness to pay uniform on [0, 10] and a flat price p per visit: revenue ∝ p·(1 − p/10),
  maximal at p = 5 with p(1 − p/10) = 2.5;
* the same drivers in a small lot: the price at which occupancy meets a target exists and the
  search must land on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from twin.api import OptimizeError
from twin.api import optimize as api_optimize
from twin.optimize import (
    OptimizeSpec,
    busiest_window,
    make_spec,
    optimize,
    parse_param,
    parse_window,
)

runner = CliRunner()

#: λ drivers per hour who will pay up to U(0, 10) dollars per visit, 10-minute stays.
RATE = 60.0
WTP_HIGH = 10.0


def wtp_lot(spots: int = 400, dwell: dict | None = None, days: float = 1.0) -> dict[str, Any]:
    """A flat price per visit against uniform willingness to pay.

    The default 400 spots never fill (10-minute stays: about 10 cars at a time); pass fewer
    ``spots`` and longer stays for a lot that does.
    """
    return {
        "name": "wtp_lot",
        "horizon_days": days,
        "seed": 3,
        "facility": {"levels": [{"name": "G", "spots": {"REGULAR": spots}}]},
        "demand": [
            {
                "name": "drivers",
                "rate_per_hour": RATE,
                "dwell": dwell or {"type": "constant", "value": 10, "unit": "min"},
                "willingness_to_pay": {
                    "per": "visit",
                    "distribution": {"type": "uniform", "low": 0, "high": WTP_HIGH},
                },
            }
        ],
        "tariff": {"flat": 3.0},
    }


def elastic_lot() -> dict[str, Any]:
    """SFpark's elasticity (-0.4 around $2/h) and no capacity limit: inelastic demand.

    At most 2 × 30 candidates an hour staying 1.5 h: about 90 cars at a time, 600 spots.
    """
    return {
        "name": "elastic_lot",
        "horizon_days": 1,
        "seed": 5,
        "facility": {"levels": [{"name": "G", "spots": {"REGULAR": 600}}]},
        "demand": [
            {
                "name": "drivers",
                "rate_per_hour": 30,
                "dwell": {"type": "exponential", "mean": 90, "unit": "min"},
                "elasticity": {"value": -0.4, "reference_rate": 2.0},
            }
        ],
        "tariff": {"period_minutes": 60, "per_period": 2.0},
    }


def test_inelastic_demand_puts_the_revenue_optimum_at_the_upper_bound() -> None:
    spec = make_spec(params={"tariff.per_period": (1.0, 6.0)}, grid_points=6, replications=3)
    result = optimize(elastic_lot(), spec)
    assert result.best.values == {"tariff.per_period": 6.0}
    # revenue ∝ p^0.6: it rises at every step of the grid, and each step is beyond noise
    searched = result.table[result.table["searched"]].sort_values("tariff.per_period")
    revenue = searched["revenue_per_day_mean"].to_numpy()
    assert (np.diff(revenue) > 0).all(), revenue
    assert result.distinguishable() is True
    # fewer drivers come as the price rises (deterred), none are turned away for lack of space
    assert (np.diff(searched["deterred_per_day_mean"].to_numpy()) > 0).all()
    assert (searched["no_space_pct_mean"] == 0).all()
    # the analytic ratio between the ends: (6/1)^0.6 = 2.93 (the $1 end is still uncapped)
    assert revenue[-1] / revenue[0] == pytest.approx(6.0**0.6, rel=0.08)


def test_scipy_finds_the_upper_bound_too_because_it_simulates_both_ends() -> None:
    spec = make_spec(
        params={"tariff.per_period": (1.0, 6.0)}, method="scipy", max_evals=12, replications=2
    )
    result = optimize(elastic_lot(), spec)
    assert result.best.values["tariff.per_period"] == 6.0
    assert len(result.evaluations) <= 12 + 3  # calls + both ends + the current tariff


def test_willingness_to_pay_gives_an_interior_maximum_where_theory_puts_it() -> None:
    spec = make_spec(params={"tariff.flat": (1.0, 9.0)}, grid_points=9, replications=3)
    result = optimize(wtp_lot(), spec)
    best = result.best.values["tariff.flat"]
    assert best in (4.0, 5.0, 6.0)  # p·(1 − F(p)) = p(1 − p/10) peaks at 5
    # the figure at the optimum: λ·24·max p(1 − p/10) = 60·24·2.5 = $3,600/day; stays that end
    # after the horizon are not charged (10 of 1,440 minutes), so allow a few per cent
    assert result.best.mean("revenue_per_day") == pytest.approx(RATE * 24 * 2.5, rel=0.04)
    # the ends are far worse: p = 1 and p = 9 earn 0.9 / 2.5 of the optimum
    table = result.table.set_index("tariff.flat")
    for end in (1.0, 9.0):
        assert table.loc[end, "revenue_per_day_mean"] == pytest.approx(RATE * 24 * 0.9, rel=0.08)
        assert table.loc[end, "vs_best_ci_high"] < 0  # paired: significantly below the best
    # the price drove people away, not the lot: balking tracks F(p) = p/10
    assert table.loc[9.0, "balked_pct_mean"] == pytest.approx(90, abs=2)
    assert table.loc[5.0, "balked_pct_mean"] == pytest.approx(50, abs=3)


def test_scipy_brent_lands_near_the_analytic_optimum() -> None:
    spec = make_spec(
        params={"tariff.flat": (1.0, 9.0)}, method="scipy", max_evals=15, replications=3
    )
    result = optimize(wtp_lot(), spec)
    assert result.best.values["tariff.flat"] == pytest.approx(5.0, abs=0.75)
    assert result.best.score <= min(e.score for e in result.evaluations if e.searched)


def test_occupancy_target_chooses_a_price_whose_occupancy_is_on_target() -> None:
    # 50 spots, one-hour stays: occupancy ≈ 60·(1 − p/10)/50 minus blocking; 85 % near p ≈ 3
    scenario = wtp_lot(spots=50, dwell={"type": "exponential", "mean": 60, "unit": "min"}, days=2)
    scenario["warmup_hours"] = 2
    spec = make_spec(
        objective="occupancy-target",
        params={"tariff.flat": (0.5, 9.0)},
        method="scipy",
        max_evals=15,
        replications=3,
        target=0.85,
        window="00:00-24:00",
    )
    result = optimize(scenario, spec)
    occupancy = result.best.mean("occupancy.window")
    assert occupancy == pytest.approx(0.85, abs=0.015)
    assert 2.0 < result.best.values["tariff.flat"] < 4.0
    # the current $3 is already close, but the chosen price is at least as close
    assert abs(occupancy - 0.85) <= abs(result.baseline.mean("occupancy.window") - 0.85)
    # the gap figure of the table is occupancy − target, in percentage points
    row = result.table[result.table["point"] == result.best.index].iloc[0]
    assert row["objective_mean"] == pytest.approx(100 * (occupancy - 0.85))


def test_max_blocking_constraint_moves_the_revenue_optimum_to_a_feasible_price() -> None:
    scenario = wtp_lot(spots=20, dwell={"type": "constant", "value": 60, "unit": "min"})
    free = optimize(
        scenario, make_spec(params={"tariff.flat": (2.0, 9.0)}, grid_points=8, replications=3)
    )
    capped = optimize(
        scenario,
        make_spec(
            params={"tariff.flat": (2.0, 9.0)}, grid_points=8, replications=3, max_blocking=2.0
        ),
    )
    assert free.best.mean("no_space_pct") > 2.0  # the unconstrained optimum turns many away
    assert capped.best.feasible
    assert capped.best.mean("no_space_pct") <= 2.0
    assert capped.best.values["tariff.flat"] > free.best.values["tariff.flat"]
    assert capped.best.mean("revenue_per_day") < free.best.mean("revenue_per_day")
    # every cheaper price breaks the cap (that is why the optimum moved)
    table = capped.table
    cheaper = table[table["tariff.flat"] < capped.best.values["tariff.flat"]]
    assert len(cheaper) and not cheaper["feasible"].any()


def test_blocking_objective_keeps_revenue_at_least_the_current_tariffs() -> None:
    scenario = wtp_lot(spots=20, dwell={"type": "constant", "value": 60, "unit": "min"})
    scenario["tariff"] = {"flat": 4.0}
    result = optimize(
        scenario,
        make_spec(
            objective="blocking",
            params={"tariff.flat": (2.0, 9.0)},
            grid_points=8,
            replications=3,
        ),
    )
    base = result.baseline
    assert result.min_revenue == pytest.approx(base.mean("revenue_per_day"))
    assert result.best.mean("revenue_per_day") >= base.mean("revenue_per_day")
    assert result.best.mean("no_space_pct") < base.mean("no_space_pct")
    # without the floor, the fewest turned away is simply the highest price
    no_floor = optimize(
        scenario,
        make_spec(
            objective="blocking",
            params={"tariff.flat": (2.0, 9.0)},
            grid_points=8,
            replications=3,
            min_revenue=0,
        ),
    )
    assert no_floor.best.values["tariff.flat"] == 9.0


def test_same_inputs_give_the_same_answer() -> None:
    spec = make_spec(
        params={"tariff.flat": (1.0, 9.0)}, method="scipy", max_evals=6, replications=2
    )
    a = optimize(wtp_lot(days=0.5), spec)
    b = optimize(wtp_lot(days=0.5), spec)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.best.values == b.best.values
    assert [e.values for e in a.evaluations] == [e.values for e in b.evaluations]


def test_candidates_share_their_drivers_common_random_numbers() -> None:
    spec = make_spec(params={"tariff.per_period": (1.0, 6.0)}, grid_points=2, replications=2)
    result = optimize(elastic_lot(), spec, keep_runs=True)
    low, high = (e for e in result.evaluations if e.values["tariff.per_period"] in (1.0, 6.0))
    assert low.run.seed == high.run.seed
    for r in range(2):
        va = low.run.vehicles[low.run.vehicles["replication"] == r]
        vb = high.run.vehicles[high.run.vehicles["replication"] == r]
        np.testing.assert_array_equal(va["arrival_s"].to_numpy(), vb["arrival_s"].to_numpy())
        np.testing.assert_array_equal(
            va["intended_dwell_s"].to_numpy(), vb["intended_dwell_s"].to_numpy()
        )
        # same candidates, different prices: who stays away differs (and nests: everyone
        # who comes at $6 also comes at $1)
        came_low = (va["outcome"] != "deterred").to_numpy()
        came_high = (vb["outcome"] != "deterred").to_numpy()
        assert came_high.sum() < came_low.sum()
        assert not (came_high & ~came_low).any()
    # pairing shows in the comparison: revenue's paired sd is below the unpaired one
    row = result.baseline_comparison.table.loc["revenue_per_day"]
    assert row["sd"] < row["unpaired_sd"]


def test_default_window_is_the_busiest_four_hours() -> None:
    scenario = wtp_lot()
    rates = [0.0] * 24
    for h in range(10, 14):
        rates[h] = 80.0
    rates[8] = rates[16] = 20.0
    scenario["demand"][0].pop("rate_per_hour")
    scenario["demand"][0]["profile"] = {"all": rates}
    spec = make_spec(params={"tariff.flat": (1.0, 2.0)}, grid_points=2, replications=2)
    result = optimize(scenario, spec)
    # 2026-01-05 is a Monday: a one-day run only sees a weekday
    assert result.window.describe() == "weekdays 10:00-14:00"
    # the window is chosen on the current tariff's run; the function on that run agrees
    assert busiest_window(_full_run(scenario)) == result.window


def _full_run(scenario: dict) -> Any:
    from twin.api import run
    from twin.optimize import as_scenario

    return run(as_scenario(scenario), replications=2)


def test_nelder_mead_stays_inside_the_box_and_reuses_points() -> None:
    scenario = wtp_lot(days=0.5)
    scenario["tariff"] = {"period_minutes": 60, "per_period": 2.0, "daily_max": 8.0}
    spec = make_spec(
        params={"tariff.per_period": (0.5, 6.0), "tariff.daily_max": (2.0, 12.0)},
        method="scipy",
        max_evals=16,
        replications=2,
    )
    result = optimize(scenario, spec)
    values = pd.DataFrame([e.values for e in result.evaluations])
    assert values["tariff.per_period"].between(0.5, 6.0).all()
    assert values["tariff.daily_max"].between(2.0, 12.0).all()
    assert len(result.evaluations) <= 17  # each point simulated once (cache), plus current
    assert not values.duplicated().any()
    # a 10-minute stay pays one period: the daily maximum only matters below the hourly rate,
    # so the best price per visit min(per_period, daily_max) lands near the U(0,10) optimum 5
    best = result.best.values
    assert min(best["tariff.per_period"], best["tariff.daily_max"]) == pytest.approx(5, abs=1.2)


def test_bad_keys_and_ranges_are_readable_errors() -> None:
    with pytest.raises(OptimizeError, match="not a numeric tariff key"):
        optimize(wtp_lot(), make_spec(params={"tariff.currency": (1, 2)}))
    with pytest.raises(OptimizeError, match="the tariff has 0 bands; no item '0'"):
        optimize(wtp_lot(), make_spec(params={"tariff.bands.0.per_period": (1, 2)}))
    with pytest.raises(OptimizeError, match="no dynamic: section"):
        optimize(wtp_lot(), make_spec(params={"tariff.dynamic.max_multiplier": (1, 2)}))
    with pytest.raises(OptimizeError, match=r"LOW \(5\) must be below HIGH \(1\)"):
        optimize(wtp_lot(), make_spec(params={"tariff.flat": (5, 1)}))
    with pytest.raises(OptimizeError, match="must be >= 0"):
        optimize(wtp_lot(), make_spec(params={"tariff.flat": (-1, 1)}))
    # two searched keys that conflict somewhere in the box: refused before anything runs
    dynamic = wtp_lot()
    dynamic["tariff"] = {"per_period": 2.0, "dynamic": {"min_multiplier": 0.5}}
    ranges = {"tariff.dynamic.min_multiplier": (0.5, 1.5), "tariff.dynamic.max_multiplier": (1, 2)}
    calls: list[int] = []
    with pytest.raises(OptimizeError, match="narrow the ranges"):
        optimize(
            dynamic,
            make_spec(params=ranges, grid_points=3),
            progress=lambda done, total, label: calls.append(done),
        )
    assert calls == []
    with pytest.raises(ValueError, match="expected KEY=LOW:HIGH"):
        parse_param("tariff.flat=3")
    with pytest.raises(ValueError, match="must be numbers"):
        parse_param("tariff.flat=a:b")
    with pytest.raises(ValueError, match=r"expected \[DAYS\] HH:MM-HH:MM"):
        parse_window("lunchtime")
    assert parse_window("sat,sun 12:00-16:00").describe() == "weekends 12:00-16:00"
    with pytest.raises(OptimizeError, match="--replications"):
        make_spec(replications=1)
    with pytest.raises(OptimizeError, match="--objective 'profit'"):
        make_spec(objective="profit")
    assert OptimizeSpec().objective == "revenue"


def test_api_default_parameter_and_days(tmp_path: Path) -> None:
    path = tmp_path / "lot.yaml"
    scenario = wtp_lot()
    scenario["tariff"] = {"period_minutes": 60, "per_period": 2.0}
    path.write_text(yaml.safe_dump(scenario))
    result = api_optimize(path, grid_points=3, replications=2, days=0.5)
    assert [p.key for p in result.params] == ["tariff.per_period"]
    assert (result.params[0].low, result.params[0].high) == (1.0, 6.0)  # ½× and 3× of $2
    assert result.scenario.horizon_days == 0.5
    assert set(result.table["tariff.per_period"]) == {1.0, 2.0, 3.5, 6.0}


# -- CLI -------------------------------------------------------------------------------------
@pytest.fixture
def lot_file(tmp_path: Path) -> Path:
    path = tmp_path / "lot.yaml"
    path.write_text(yaml.safe_dump(wtp_lot()))
    return path


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("tariff.per_perid=1:2", "not a numeric tariff key"),
        ("tariff.flat=6:2", "LOW (6) must be below HIGH (2)"),
        ("tariff.flat=1-2", "expected KEY=LOW:HIGH"),
        ("tariff.flat=one:two", "LOW and HIGH must be numbers"),
        ("facility.strategy=1:2", "not a tariff key"),
        ("tariff.bands.2.per_period=1:2", "no item '2'"),
    ],
)
def test_cli_bad_param_exits_2_with_one_readable_line(
    lot_file: Path, param: str, message: str
) -> None:
    result = runner.invoke(app, ["optimize", str(lot_file), "--param", param])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_cli_other_bad_options_exit_2(lot_file: Path, tmp_path: Path) -> None:
    for args, message in (
        (["--target", "85"], "--target"),
        (["--grid-points", "1"], "--grid-points"),
        (["--window", "lunch"], "--window"),
        (["--days", "-1"], "days must be > 0"),
    ):
        result = runner.invoke(app, ["optimize", str(lot_file), *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
    missing = runner.invoke(app, ["optimize", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "cannot read file" in missing.output


def test_cli_writes_table_json_and_plot(lot_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "opt"
    result = runner.invoke(
        app,
        [
            "optimize",
            str(lot_file),
            "--param",
            "tariff.flat=1:9",
            "--grid-points",
            "5",
            "--replications",
            "2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Best tariff: tariff.flat=$5.00" in result.output
    assert "The best tariff raises revenue by $" in result.output
    table = pd.read_csv(out / "optimize.csv")
    assert len(table) == 5  # $1, $3, $5, $7, $9: the current $3 is on the grid, run once
    assert table.loc[table["baseline"], "tariff.flat"].tolist() == [3.0]
    assert table.loc[0, "tariff.flat"] == 5.0 and table.loc[0, "rank"] == 1
    assert {"objective_mean", "objective_ci_low", "vs_best_ci_high", "feasible"} <= set(table)
    assert table["revenue_per_day_mean"].is_monotonic_decreasing  # sorted by the objective
    data = json.loads((out / "optimize.json").read_text())
    assert data["best"] == {"tariff.flat": 5.0} and data["seed"] == 3
    png = (out / "optimize.png").read_bytes()
    assert png[:4] == b"\x89PNG" and len(png) > 20_000


def test_cli_two_parameters_draw_a_heatmap(lot_file: Path, tmp_path: Path) -> None:
    scenario = wtp_lot(days=0.5)
    scenario["tariff"] = {"period_minutes": 60, "per_period": 2.0, "daily_max": 8.0}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = tmp_path / "opt2"
    result = runner.invoke(
        app,
        [
            "optimize",
            str(path),
            "-p",
            "tariff.per_period=1:7",
            "-p",
            "tariff.daily_max=2:8",
            "--grid-points",
            "3",
            "--replications",
            "2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out / "optimize.csv")) == 9 + 1
    assert (out / "optimize.png").stat().st_size > 20_000
