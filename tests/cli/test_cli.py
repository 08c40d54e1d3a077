"""The CLI as a planner uses it: every shipped scenario runs; broken files exit 2, readably."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from twin.api import load

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
runner = CliRunner()


def _short_days(path: Path) -> float:
    """Enough simulated time to get past the warm-up and see a day, without a long test."""
    sc = load(path)
    return min(sc.horizon_days, sc.warmup_hours / 24 + 1.0)


def test_there_are_shipped_scenarios() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {"surface_lot", "downtown_garage", "mall_garage", "airport_long_stay"} <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_run_every_shipped_scenario(path: Path, tmp_path: Path) -> None:
    days = _short_days(path)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["run", str(path), "--days", str(days), "--replications", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "arrivals per day" in result.output
    assert "95% CI" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["replications"] == 2
    assert summary["metrics"]["arrivals"]["mean"] > 0
    assert len(summary["metrics"]["blocked_pct"]["values"]) == 2
    vehicles = pd.read_parquet(out / "vehicles.parquet")
    assert set(vehicles["replication"]) == {0, 1}
    occupancy = pd.read_parquet(out / "occupancy.parquet")
    assert occupancy["occupancy"].between(0, 1).all()


def test_same_seed_gives_identical_summary(tmp_path: Path) -> None:
    path = ROOT / "scenarios" / "surface_lot.yaml"
    texts = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        args = ["run", str(path), "--days", "2", "--replications", "2", "--out", str(out)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        texts.append((out / "summary.json").read_text())
    assert texts[0] == texts[1]
    other = tmp_path / "other"
    args = ["run", str(path), "--days", "2", "--replications", "2", "--seed", "7"]
    result = runner.invoke(app, [*args, "--out", str(other)])
    assert (other / "summary.json").read_text() != texts[0]


def test_csv_format(tmp_path: Path) -> None:
    path = ROOT / "scenarios" / "surface_lot.yaml"
    args = ["run", str(path), "--days", "1", "--replications", "1", "--format", "csv"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "vehicles.csv")
    assert {"arrival_s", "outcome", "amount", "level", "spot"} <= set(frame.columns)


BROKEN = {
    "yaml_syntax": ("name: x\nfacility: [\n", ["line 3, column 1: YAML syntax error"]),
    "duplicate_key": (
        "name: x\nname: y\n",
        ["line 2, column 1: YAML syntax error: duplicate key 'name'"],
    ),
    "not_a_mapping": ("- a\n- b\n", ["expected a mapping of scenario keys, got list"]),
    "empty_file": ("", ["expected a mapping of scenario keys, got an empty file"]),
    "unknown_keys": (
        "name: x\nfacility:\n  levels:\n    - name: A\n      spots: {REGULER: 10}\n"
        "demand:\n  - name: a\n    rate_per_hour: 3\n    dwell: {type: exponential, mean: 5}\n"
        "    colour: red\n",
        [
            "facility.levels[0].spots.REGULER: Input should be 'MOTORCYCLE', 'COMPACT'",
            "demand[0].colour: unknown key (allowed: name, vehicle_class,",
        ],
    ),
    "wrong_types": (
        "name: x\nreplications: many\n"
        "facility:\n  levels:\n    - name: A\n      spots: {REGULAR: 5}\n"
        "demand:\n  - name: a\n    rate_per_hour: lots\n    dwell: {type: exponential, mean: 5}\n",
        [
            "replications: Input should be a valid integer",
            "demand[0].rate_per_hour: Input should be a valid number",
        ],
    ),
    "negative_counts": (
        "name: x\nfacility:\n  levels:\n    - name: A\n      spots: {REGULAR: -5}\n"
        "demand:\n  - name: a\n    rate_per_hour: 3\n    dwell: {type: exponential, mean: 5}\n",
        ["facility.levels[0].spots: spot counts must be >= 0, got {'REGULAR': -5}"],
    ),
    "impossible_distributions": (
        "name: x\nfacility:\n  levels:\n    - name: A\n      spots: {REGULAR: 5}\n"
        "demand:\n  - name: a\n    rate_per_hour: 3\n"
        "    dwell: {type: lognormal, mean: -2, sd: 1}\n"
        "  - name: b\n    rate_per_hour: 3\n    dwell: {type: pareto, mean: 5}\n"
        "  - name: c\n    rate_per_hour: 3\n    dwell: {type: uniform, low: 5, high: 1}\n",
        [
            "demand[0].dwell.mean: Input should be greater than 0 (got -2)",
            "demand[1].dwell: unknown or missing 'type' (allowed: 'exponential', 'lognormal'",
            "demand[2].dwell: 'high' (1.0) must be greater than 'low' (5.0)",
        ],
    ),
    "empty_facility": (
        "name: x\nfacility:\n  levels:\n    - name: A\n      spots: {REGULAR: 0}\n"
        "demand:\n  - name: a\n    rate_per_hour: 3\n    dwell: {type: exponential, mean: 5}\n",
        ["facility: the facility has no spots"],
    ),
    "no_levels_no_demand": (
        "name: x\nfacility:\n  levels: []\ndemand: []\n",
        ["facility: the facility needs at least one level", "demand: List should have at least 1"],
    ),
    "missing_required": ("description: nothing else\n", ["name: required key is missing"]),
    "warmup_too_long": (
        "name: x\nhorizon_days: 1\nwarmup_hours: 30\nfacility:\n  levels:\n    - name: A\n"
        "      spots: {REGULAR: 5}\ndemand:\n  - name: a\n    rate_per_hour: 3\n"
        "    dwell: {type: exponential, mean: 5}\n",
        ["(top level): warmup_hours (30.0) must be shorter than the horizon (24 h)"],
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_scenario_exits_2_with_readable_lines(case: str, tmp_path: Path) -> None:
    text, expected = BROKEN[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert all(ln.startswith(f"error: {path}: ") for ln in lines), lines
    for fragment in expected:
        assert any(fragment in ln for ln in lines), (fragment, lines)


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "cannot read file" in result.output


def test_help_explains() -> None:
    result = runner.invoke(app, ["run", "--help"])
    assert result.exit_code == 0
    for option in ("--seed", "--days", "--replications", "--out", "--format"):
        assert option in result.output


def test_a_city_grid_summary_shows_the_busiest_groups_not_hundreds_of_rows(tmp_path: Path) -> None:
    """A planner's terminal gets the MAX_GROUP_ROWS busiest lots and levels and a pointer to the
    files with all of them, not a table of every level of a city."""
    from twin.tables import MAX_GROUP_ROWS

    scenario = tmp_path / "grid.yaml"
    scenario.write_text(
        """
name: grid
horizon_days: 0.25
lot_grid:
  count: 30
  columns: 6
  spacing_km: 0.4
  facility:
    levels:
      - {name: P1, spots: {REGULAR: 20}}
      - {name: P2, spots: {REGULAR: 20}}
network: {speed_kmh: 20}
tariff: {name: city, period_minutes: 60, per_period: 2.5}
demand:
  - {name: drivers, lot: "*", rate_per_hour: 600, dwell: {type: exponential, mean: 1, unit: h}}
"""
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(scenario), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sum("revenue per day, L" in line for line in lines) == MAX_GROUP_ROWS
    assert sum("│ lot L" in line for line in lines) == MAX_GROUP_ROWS
    assert sum("│ level L" in line for line in lines) == MAX_GROUP_ROWS
    assert "18 more lots" in result.output and "48 more levels" in result.output
    figures = json.loads((out / "summary.json").read_text())["metrics"]
    peaks = [k for k in figures if k.startswith("occupancy.level[") and k.endswith(".peak")]
    assert len(peaks) == 60  # every level is still in the file


def test_a_figure_no_replication_saw_is_footnoted_as_a_bound_not_as_too_few() -> None:
    """The downtown garage never blocks: its blocked share is an upper bound (rule of three),
    and the footnote says so instead of asking for more replications."""
    result = runner.invoke(
        app, ["run", str(ROOT / "scenarios" / "downtown_garage.yaml"), "--days", "2"]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "blocked (no spot)" in text and "not seen in any replication" in text
    assert "one-sided 95% bound" in text
