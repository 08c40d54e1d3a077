"""Paired comparisons with common random numbers: the arithmetic, the verdicts and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from twin import figures
from twin.api import ScenarioError, compare, load
from twin.compare import load_variant, parse_sets, quantity, verdict

ROOT = Path(__file__).resolve().parents[2]
SURFACE = ROOT / "scenarios" / "surface_lot.yaml"
runner = CliRunner()

#: Short runs and no willingness to pay: with every driver parking whatever the price, doubling
#: the rate and the daily maximum doubles every amount charged, exactly.
NO_BUDGET = {"horizon_days": 2, "behaviour.willingness_to_pay": None}
DOUBLED = {**NO_BUDGET, "tariff.per_period": 3.0, "tariff.daily_max": 24}


def test_a_scenario_compared_with_itself_differs_by_exactly_nothing() -> None:
    sc = load(SURFACE, {"horizon_days": 2})
    c = compare(sc, sc, replications=3)
    assert len(c.table) > 20
    assert (c.table["diff"] == 0).all() and (c.table["sd"].fillna(0) == 0).all()
    assert (c.paired()["diff"].fillna(0) == 0).all()
    defined = [m for m in figures.headline(c.table.index) if not np.isnan(c.table.loc[m, "a_mean"])]
    assert len(c.verdicts) == len(defined) >= 10  # one per headline figure the lot has
    assert all("unchanged" in v for v in c.verdicts), c.verdicts
    assert "Revenue unchanged (identical in all 3 replications)" in c.verdicts


def test_doubling_the_price_raises_revenue_and_crn_narrows_the_interval() -> None:
    a = load_variant(SURFACE, NO_BUDGET)
    b = load_variant(SURFACE, DOUBLED)
    c = compare(a, b, replications=5)
    ra = c.a.metrics["revenue_per_day"].to_numpy()
    rb = c.b.metrics["revenue_per_day"].to_numpy()
    np.testing.assert_allclose(rb, 2 * ra)  # same drivers, same stays, every amount doubled
    row = c.table.loc["revenue_per_day"]
    assert row["unit"] == "$/day"
    assert row["diff"] == pytest.approx(ra.mean())
    assert row["ci_low"] > 0
    # B − A = A per replication, so the paired sd is A's sd, while independent runs would give
    # sqrt(sd_A² + sd_B²) = sqrt(5)·sd_A: pairing must remove exactly 80% of the variance.
    assert row["sd"] == pytest.approx(np.std(ra, ddof=1))
    assert row["unpaired_sd"] == pytest.approx(math.sqrt(5) * np.std(ra, ddof=1))
    assert row["variance_reduction"] == pytest.approx(0.8)
    assert row["half_width"] < row["unpaired_half_width"]
    revenue = next(v for v in c.verdicts if "revenue" in v)
    assert revenue.startswith("B raises revenue by $")
    assert revenue.endswith("/day (95% CI)")
    # nothing about who parks changed: blocking and occupancy are identical
    assert "Blocking unchanged (identical in all 5 replications)" in c.verdicts
    assert c.table.loc["occupancy.mean", "diff"] == 0
    assert any("80% of its variance removed" in line for line in c.crn_lines())


def test_units_and_verdict_wording() -> None:
    unit_of = figures.unit_of
    assert unit_of("blocked_pct").diff == "pp"
    assert unit_of("occupancy.level[A].mean") == unit_of("occupancy.mean")
    assert unit_of("occupancy.mean").scale == 100.0
    assert unit_of("occupancy.mean").diff == "pp"
    assert unit_of("revenue_per_day").symbol == "$/day"
    assert unit_of("entry_wait_s.p95").symbol == "s"
    assert quantity(1240.4, "$/day", 0) == "$1,240/day"
    assert quantity(-3.5, "$", 2) == "-$3.50"
    base = {"unit": "%", "n": 5, "diff": -0.05, "ci_low": -0.3, "ci_high": 0.2}
    base |= {"half_width": 0.25, "sd": 0.2}
    row = pd.Series(base)
    assert verdict("blocked_pct", row) == (
        "Blocking unchanged within ±0.30 pp (95% CI -0.30 pp … 0.20 pp)"
    )
    # occupancy is stored as a fraction (as in summary()) and spoken of in percentage points
    occ = base | {"unit": "share", "diff": 0.012, "ci_low": 0.010, "ci_high": 0.014}
    occ |= {"half_width": 0.002}
    assert verdict("occupancy.mean", pd.Series(occ)) == (
        "B raises mean occupancy by 1.20 pp ± 0.20 pp (95% CI)"
    )
    up = {"unit": "$/day", "n": 5, "diff": 1240.0, "ci_low": 930.0, "ci_high": 1550.0}
    up |= {"half_width": 310.0, "sd": 250.0}
    assert verdict("revenue_per_day", pd.Series(up)) == (
        "B raises revenue by $1,240/day ± $310/day (95% CI)"
    )
    down = pd.Series(up | {"diff": -1240.0, "ci_low": -1550.0, "ci_high": -930.0})
    assert verdict("revenue_per_day", down).startswith("B lowers revenue by $1,240/day")


def test_one_unit_per_figure_in_compare_and_summary() -> None:
    """compare's table and run().summary() give every figure in the same (registry) unit: the
    compare means are the summary means, occupancy included (a fraction in both)."""
    a = load_variant(SURFACE, NO_BUDGET)
    b = load_variant(SURFACE, DOUBLED)
    c = compare(a, b, replications=2)
    sa, sb = c.a.summary(), c.b.summary()
    assert 0 < c.table.loc["occupancy.mean", "a_mean"] <= 1
    for name, row in c.table.iterrows():
        assert row["unit"] == sa.loc[name, "unit"] == figures.unit_of(name).symbol, name
        for side, s in (("a_mean", sa), ("b_mean", sb)):
            expected = s.loc[name, "mean"]
            assert row[side] == pytest.approx(expected, nan_ok=True), (name, side)


def test_parse_sets_reads_yaml_scalars() -> None:
    assert parse_sets(["tariff.per_period=3", "facility.strategy=spread", "x=[1, 2]"]) == {
        "tariff.per_period": 3,
        "facility.strategy": "spread",
        "x": [1, 2],
    }
    assert parse_sets(["warmup_hours=auto", "behaviour.willingness_to_pay="]) == {
        "warmup_hours": "auto",
        "behaviour.willingness_to_pay": None,
    }
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_sets(["facility.strategy"])


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("facility.strategyy", "facility.strategyy: unknown key (allowed: name, strategy"),
        ("demand.7.multiplier", "demand.7.multiplier: demand has 3 items (0..2), no item 7"),
        ("demand.first.multiplier", "demand is a list: use an item number (0..2), not 'first'"),
        ("name.x", "name.x: name is a single value ('surface_lot'), it has no key 'x'"),
    ],
)
def test_load_variant_turns_bad_keys_into_readable_lines(key: str, fragment: str) -> None:
    with pytest.raises(ScenarioError) as err:
        load_variant(SURFACE, {key: 2})
    assert any(fragment in p for p in err.value.problems), err.value.problems


def test_both_auto_warmups_are_measured_over_a_common_window() -> None:
    a = load_variant(SURFACE, {**NO_BUDGET, "warmup_hours": "auto"})
    b = load_variant(SURFACE, {**DOUBLED, "warmup_hours": "auto", "facility.strategy": "spread"})
    c = compare(a, b, replications=2)
    assert c.a.warmup is not None and c.b.warmup is not None
    assert c.a.scenario.warmup_hours == c.b.scenario.warmup_hours
    assert c.a.scenario.warmup_hours == max(c.a.warmup.hours, c.b.warmup.hours)


def test_compare_needs_two_replications() -> None:
    sc = load(SURFACE, {"horizon_days": 1})
    with pytest.raises(ValueError, match="at least 2 replications"):
        compare(sc, sc, replications=1)


# -- CLI --------------------------------------------------------------------------------------
def test_cli_compare_with_set_and_out(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    data = yaml.safe_load(SURFACE.read_text())
    data["behaviour"].pop("willingness_to_pay")
    base.write_text(yaml.safe_dump(data))
    out = tmp_path / "cmp"
    args = ["compare", str(base), "--set", "tariff.per_period=3", "--set", "tariff.daily_max=24"]
    result = runner.invoke(app, [*args, "--days", "2", "--replications", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "with tariff.per_period=3, tariff.daily_max=24" in result.output
    assert "• B raises revenue by $" in result.output
    assert "common random numbers: the revenue difference" in result.output
    table = pd.read_csv(out / "comparison.csv").set_index("metric")
    assert table.loc["revenue_per_day", "ci_low"] > 0
    assert table.loc["blocked_pct", "diff"] == 0
    saved = json.loads((out / "comparison.json").read_text())
    assert saved["replications"] == 4 and saved["seed"] == data["seed"]
    assert any(v.startswith("B raises revenue") for v in saved["verdicts"])
    rev = saved["metrics"]["revenue_per_day"]
    assert rev["b_values"] == pytest.approx([2 * v for v in rev["a_values"]])


def test_cli_compare_two_files(tmp_path: Path) -> None:
    data = yaml.safe_load(SURFACE.read_text())
    data["facility"]["levels"][0]["spots"]["REGULAR"] = 60  # smaller: drivers give up waiting
    smaller = tmp_path / "smaller.yaml"
    smaller.write_text(yaml.safe_dump(data))
    result = runner.invoke(
        app, ["compare", str(SURFACE), str(smaller), "--days", "2", "--replications", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "• B raises reneging by" in result.output
    assert "• Arrivals unchanged (identical in all 3 replications)" in result.output


def test_cli_compare_bad_input_exits_2_readably(tmp_path: Path) -> None:
    cases = {
        ("--set", "facility.strategyy=spread"): "facility.strategyy: unknown key (allowed:",
        ("--set", "demand.9.multiplier=2"): "demand has 3 items (0..2), no item 9",
        ("--set", "nonsense"): "expected KEY=VALUE",
        ("--set", "tariff.per_period=[1"): "the value is not valid YAML",
        (): "give a second scenario B or at least one --set",
        ("--set", "facility.strategy=spread", "--replications", "1"): "",
    }
    for extra, fragment in cases.items():
        result = runner.invoke(app, ["compare", str(SURFACE), *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert "Traceback" not in result.output
        assert fragment in result.output, (extra, result.output)
    missing = runner.invoke(app, ["compare", str(SURFACE), str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "cannot read file" in missing.output
