"""Sweeps: grid expansion, validation up front, streamed run files, resume, tables and the CLI.

All sweeps here run the surface lot for one day (18 h measured after its 6 h warm-up), which
takes milliseconds per run, serially.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from cli import app
from twin.compare import load_variant
from twin.executors import Executor, SerialExecutor, Task
from twin.experiments import Replication
from twin.scenario.loader import ScenarioError
from twin.sweep import (
    SweepError,
    expand_grid,
    load_sweep_file,
    make_spec,
    occupancy_path,
    parse_grid,
    parse_grid_option,
    plan_sweep,
    run_path,
    run_sweep,
)

ROOT = Path(__file__).resolve().parents[2]
SURFACE = ROOT / "scenarios" / "surface_lot.yaml"
EXAMPLE = ROOT / "scenarios" / "sweeps" / "surface_lot_price_demand.yaml"
GRID = {"facility.strategy": ["nearest", "spread"], "demand.0.multiplier": [0.8, 1.0, 1.3]}
runner = CliRunner()


def _plan(grid: dict | None = None, replications: int = 2, **kw):
    return plan_sweep(make_spec(SURFACE, grid or GRID, replications=replications, days=1, **kw))


class Recording(Executor):
    """Serial, but remembers which tasks it ran and can simulate a crash after ``stop_after``."""

    def __init__(self, stop_after: int | None = None, check=None) -> None:
        super().__init__()
        self.ran: list[tuple[int, int]] = []
        self.stop_after = stop_after
        self.check = check

    def map_tasks(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, Replication]]:
        for task, rep in SerialExecutor().map_tasks(tasks):
            if self.stop_after is not None and len(self.ran) == self.stop_after:
                raise KeyboardInterrupt
            if self.check is not None:
                self.check(task, self.ran)
            self.ran.append((task.tag, task.replication))
            yield task, rep


# -- grid ------------------------------------------------------------------------------------
def test_grid_values_are_yaml_scalars() -> None:
    assert parse_grid_option("facility.strategy=nearest,spread") == (
        "facility.strategy",
        ["nearest", "spread"],
    )
    key, values = parse_grid_option("demand.0.multiplier=0.8, 1.0,1.2")
    assert key == "demand.0.multiplier" and values == [0.8, 1.0, 1.2]
    assert all(type(v) is float for v in values)
    _, mixed = parse_grid_option("x=3,true,null,'a,b',2026-01-05,text")
    assert mixed == [3, True, None, "a,b", "2026-01-05", "text"]
    assert type(mixed[0]) is int and type(mixed[1]) is bool


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("facility.strategy", "expected KEY=V1,V2"),
        ("=1,2", "expected KEY=V1,V2"),
        ("tariff.per_period=", "at least one value"),
        ("tariff.per_period=[1, 2]", "is not a single value"),
        ("tariff.per_period=1,'2", "cannot read the values"),
    ],
)
def test_bad_grid_options_are_refused(text: str, message: str) -> None:
    with pytest.raises(SweepError) as err:
        parse_grid_option(text)
    assert message in "\n".join(err.value.problems)


def test_a_key_given_twice_is_refused() -> None:
    with pytest.raises(SweepError, match="given twice"):
        parse_grid(["a.b=1", "c=2", "a.b=3"])


def test_grid_expands_to_the_cartesian_product_first_key_slowest() -> None:
    points = expand_grid({"a": [1, 2], "b": ["x", "y", "z"], "c": [True]})
    assert len(points) == 6
    assert points[0] == {"a": 1, "b": "x", "c": True}
    assert points[1] == {"a": 1, "b": "y", "c": True}
    assert points[3] == {"a": 2, "b": "x", "c": True}
    assert [list(p) for p in points] == [["a", "b", "c"]] * 6


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"seed": [1, 2]}, "every point uses the sweep's seed"),
        ({"facility.strategy": []}, "give at least one value"),
        ({"facility.strategy": ["nearest", "nearest"]}, "repeated values"),
        ({"facility..strategy": ["nearest"]}, "is not a dotted scenario key"),
    ],
)
def test_sweep_definitions_are_validated(grid: dict, message: str) -> None:
    with pytest.raises(SweepError) as err:
        make_spec(SURFACE, grid)
    assert message in "\n".join(err.value.problems)


# -- validation of every point before anything runs -----------------------------------------
def test_a_bad_value_names_the_points_it_breaks(tmp_path: Path) -> None:
    grid = {"facility.strategy": ["nearest", "bogus"], "demand.0.multiplier": [1.0, -2.0]}
    with pytest.raises(SweepError) as err:
        plan_sweep(make_spec(SURFACE, grid, days=1))
    lines = err.value.problems
    strategy = [line for line in lines if line.endswith("(got 'bogus')")]
    assert len(strategy) == 1  # one line for the problem, naming every point it breaks
    assert strategy[0].startswith(
        "point 2 (facility.strategy=bogus, demand.0.multiplier=1.0) (also points 3): "
        "facility.strategy: Input should be"
    )
    multiplier = [line for line in lines if "demand[0].multiplier" in line]
    assert multiplier and multiplier[0].startswith("point 1 (")
    assert err.value.source == str(SURFACE)
    assert not list(tmp_path.iterdir())  # nothing ran, nothing was written


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("demand.7.multiplier", "demand has 3 items (0..2), no item 7"),
        ("demand.commuters.multiplier", "demand is a list: use an item number (0..2)"),
        ("facility.strategy.kind", "facility.strategy is a single value ('nearest')"),
        ("facility.colour", "unknown key (allowed: name, strategy"),
    ],
)
def test_bad_keys_give_readable_lines(key: str, message: str) -> None:
    with pytest.raises(SweepError) as err:
        plan_sweep(make_spec(SURFACE, {key: [1]}, days=1))
    assert len(err.value.problems) == 1
    assert message in err.value.problems[0]
    assert err.value.problems[0].startswith(f"point 0 ({key}=1): ")


def test_sweep_and_compare_read_dotted_keys_by_one_rule() -> None:
    """A key that cannot be followed reads the same in both commands, and a negative item
    number counts from the end in both, as the loader applies it."""
    for key in ("demand.7.multiplier", "demand.first.multiplier", "name.x"):
        with pytest.raises(SweepError) as in_sweep:
            plan_sweep(make_spec(SURFACE, {key: [1]}, days=1))
        with pytest.raises(ScenarioError) as in_compare:
            load_variant(SURFACE, {key: 1})
        assert len(in_compare.value.problems) == 1
        assert in_sweep.value.problems == [f"point 0 ({key}=1): {in_compare.value.problems[0]}"]
    plan = plan_sweep(make_spec(SURFACE, {"demand.-1.multiplier": [3.0]}, days=1))
    variant = load_variant(SURFACE, {"demand.-1.multiplier": 3.0})
    for demand in (plan.points[0].scenario.demand, variant.demand):
        assert [s.multiplier for s in demand] == [1.0] * (len(demand) - 1) + [3.0]


def test_overriding_inside_a_yaml_anchor_changes_only_that_stream() -> None:
    """downtown_garage reuses the commuters' profile (&commuter_profile) in two more streams;
    a point that changes the commuters' 09h weekend rate must leave those streams alone."""
    path = ROOT / "scenarios" / "downtown_garage.yaml"
    plan = plan_sweep(make_spec(path, {"demand.0.profile.weekend.9": [55.0]}, days=1))
    demand = plan.points[0].scenario.demand
    assert demand[0].profile.weekend[9] == 55.0
    assert [s.name for s in demand[1:3]] == ["commuters_compact", "motorcycles"]
    assert demand[1].profile.weekend[9] == demand[2].profile.weekend[9] == 10.0


# -- running, streaming, resuming -----------------------------------------------------------
def test_each_run_is_on_disk_before_the_next_is_asked_for(tmp_path: Path) -> None:
    plan = _plan()
    out = tmp_path / "sweep"

    def check(task: Task, ran: list[tuple[int, int]]) -> None:
        for point, r in ran:
            assert run_path(out, point, r).exists()
        assert not run_path(out, task.tag, task.replication).exists()

    executor = Recording(check=check)
    result = run_sweep(plan, out, executor=executor, plots=False)
    assert len(executor.ran) == plan.total == 12
    # replication by replication across the points: a partial sweep covers every point
    assert [r for _, r in executor.ran] == [0] * 6 + [1] * 6
    row = pd.read_parquet(run_path(out, 4, 1))
    assert len(row) == 1
    assert row.loc[0, "facility.strategy"] == "spread"
    assert row.loc[0, "demand.0.multiplier"] == 1.0
    assert row.loc[0, "replication"] == 1 and row.loc[0, "seed"] == plan.seed
    assert result.ran == 12 and result.skipped == 0
    assert not list(out.glob("runs/**/.*.tmp"))


def test_table_and_summary(tmp_path: Path) -> None:
    plan = _plan(replications=3)
    result = run_sweep(plan, tmp_path / "s", plots=False)
    table = pd.read_parquet(tmp_path / "s" / "sweep.parquet")
    pd.testing.assert_frame_equal(table, result.table)
    assert len(table) == 18
    assert list(table.columns[:5]) == [
        "point",
        "facility.strategy",
        "demand.0.multiplier",
        "replication",
        "seed",
    ]
    assert list(table["point"]) == [p for p in range(6) for _ in range(3)]
    assert table["demand.0.multiplier"].dtype == np.float64
    # common random numbers: a single-level lot's strategy cannot change who arrives
    by = table.set_index(["facility.strategy", "demand.0.multiplier", "replication"])
    assert (by.loc["nearest"]["arrivals"] == by.loc["spread"]["arrivals"]).all()
    assert by.loc[("nearest", 1.3)]["arrivals"].mean() > by.loc[("nearest", 0.8)]["arrivals"].mean()
    # summary: mean and the 95% t interval, as scipy computes it
    summary = pd.read_parquet(tmp_path / "s" / "summary.parquet")
    row = summary[(summary["point"] == 2) & (summary["metric"] == "revenue_per_day")].iloc[0]
    values = table.loc[table["point"] == 2, "revenue_per_day"].to_numpy()
    lo, hi = stats.t.interval(0.95, 2, loc=values.mean(), scale=values.std(ddof=1) / math.sqrt(3))
    assert row["mean"] == pytest.approx(values.mean())
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert row["n"] == 3 and row["demand.0.multiplier"] == 1.3
    wide = result.wide(["revenue_per_day"])
    assert len(wide) == 6 and "revenue_per_day.half_width" in wide


def test_resume_runs_only_what_is_missing_and_gives_the_same_table(tmp_path: Path) -> None:
    plan = _plan()
    full = run_sweep(plan, tmp_path / "full", plots=False).table

    out = tmp_path / "broken"
    crashing = Recording(stop_after=5)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(plan, out, executor=crashing, plots=False)
    assert len(list(out.glob("runs/point=*/rep=*.parquet"))) == 5
    assert not (out / "sweep.parquet").exists()
    # a write cut short leaves only a temporary file, which must not count as a finished run
    (out / "runs" / "point=5").mkdir(parents=True, exist_ok=True)
    (out / "runs" / "point=5" / ".rep=1.parquet.123.tmp").write_bytes(b"PAR1 half")
    run_path(out, 0, 0).unlink()  # and one finished run lost as well

    resumed = Recording()
    result = run_sweep(plan, out, executor=resumed, resume=True, plots=False)
    done_before = set(crashing.ran) - {(0, 0)}
    assert set(resumed.ran) == {(p, r) for p in range(6) for r in range(2)} - done_before
    assert len(resumed.ran) == 8 and result.skipped == 4 and result.ran == 8
    assert not (out / "runs" / "point=5" / ".rep=1.parquet.123.tmp").exists()
    pd.testing.assert_frame_equal(result.table, full, check_exact=True)

    # resuming a finished sweep runs nothing and rebuilds the same table
    again = Recording()
    result = run_sweep(plan, out, executor=again, resume=True, plots=False)
    assert again.ran == [] and result.skipped == 12
    pd.testing.assert_frame_equal(result.table, full, check_exact=True)


def test_resume_reruns_truncated_empty_or_unreadable_run_files(tmp_path: Path) -> None:
    """A run file cut short (a full disk, a copy interrupted) once crashed --resume with
    "Parquet magic bytes not found": it is now named, deleted and run again."""
    plan = _plan(keep_occupancy=True)
    out = tmp_path / "s"
    full = run_sweep(plan, out, plots=False).table
    truncated, empty, garbage = run_path(out, 1, 0), run_path(out, 2, 1), run_path(out, 3, 0)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    empty.write_bytes(b"")
    garbage.write_bytes(b"not parquet at all")
    occupancy_path(out, 4, 1).write_bytes(b"")  # the run's other file
    again = Recording()
    result = run_sweep(plan, out, executor=again, resume=True, plots=False)
    assert sorted(again.ran) == [(1, 0), (2, 1), (3, 0), (4, 1)]
    named = {str(path) for path, _ in result.unreadable}
    assert named == {
        "runs/point=1/rep=0.parquet",
        "runs/point=2/rep=1.parquet",
        "runs/point=3/rep=0.parquet",
        "runs/point=4/occupancy-rep=1.parquet",
    }
    assert all(reason for _, reason in result.unreadable)
    pd.testing.assert_frame_equal(result.table, full, check_exact=True)
    # and on the command line, the note names the file (no charts: two drawings of them cost
    # ~2.5 s of CPU and the note does not depend on them)
    empty.write_bytes(b"")
    args = ["sweep", str(SURFACE), "--grid", "tariff.per_period=1,2", "--days", "1", "--no-plots"]
    cli_out = tmp_path / "c"
    assert runner.invoke(app, [*args, "--replications", "1", "--out", str(cli_out)]).exit_code == 0
    run_path(cli_out, 1, 0).write_bytes(b"")
    resumed = runner.invoke(app, [*args, "--replications", "1", "--out", str(cli_out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "runs/point=1/rep=0.parquet was unreadable" in resumed.output


def test_resume_refuses_a_changed_definition(tmp_path: Path) -> None:
    out = tmp_path / "s"
    run_sweep(_plan(replications=1), out, plots=False)
    for changed, what in (
        (_plan(replications=2), "replications differs (stored 1, now 2)"),
        (_plan({"facility.strategy": ["nearest", "spread"]}, replications=1), "grid differs"),
        (_plan(replications=1, seed=5), "seed differs"),
    ):
        with pytest.raises(SweepError) as err:
            run_sweep(changed, out, resume=True, plots=False)
        assert what in "\n".join(err.value.problems)
    with pytest.raises(SweepError, match="already holds a sweep"):
        run_sweep(_plan(replications=1), out, plots=False)
    result = run_sweep(_plan(replications=2), out, overwrite=True, plots=False)
    assert result.ran == 12 and result.skipped == 0


def test_resume_refuses_a_changed_scenario_file(tmp_path: Path) -> None:
    scenario = tmp_path / "lot.yaml"
    shutil.copy(SURFACE, scenario)
    spec = make_spec(scenario, {"facility.strategy": ["nearest"]}, replications=1, days=1)
    run_sweep(plan_sweep(spec), tmp_path / "s", plots=False)
    scenario.write_text(scenario.read_text().replace("per_period: 1.50", "per_period: 2.00"))
    with pytest.raises(SweepError) as err:
        run_sweep(plan_sweep(spec), tmp_path / "s", resume=True, plots=False)
    assert "the scenario's content differs" in err.value.problems[0]


def test_plots_and_occupancy_files(tmp_path: Path) -> None:
    grid = {"demand.0.multiplier": [1.3, 0.8], "facility.strategy": ["nearest", "spread"]}
    plan = _plan(grid, keep_occupancy=True)
    result = run_sweep(plan, tmp_path / "s")
    names = {p.name for p in result.plots}
    assert {"blocked_pct.png", "revenue_per_day.png", "occupancy.mean.png"} <= names
    for path in result.plots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    occupancy = pd.read_parquet(tmp_path / "s" / "runs" / "point=3" / "occupancy-rep=1.parquet")
    assert occupancy["occupancy"].between(0, 1).all() and len(occupancy) > 10


# -- CLI -------------------------------------------------------------------------------------
def test_cli_sweep_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = [
        "sweep",
        str(SURFACE),
        "--grid",
        "facility.strategy=nearest,spread",
        "--grid",
        "demand.0.multiplier=0.8,1.2",
        "--replications",
        "2",
        "--days",
        "1",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "4 points × 2 replications, seed 42" in result.output
    assert "ran 8 runs" in result.output
    table = pd.read_parquet(out / "sweep.parquet")
    assert len(table) == 8 and set(table["facility.strategy"]) == {"nearest", "spread"}
    assert len(list((out / "runs").glob("point=*/rep=*.parquet"))) == 8
    assert (out / "summary.parquet").exists() and (out / "plots" / "reneged_pct.png").exists()
    stored = json.loads((out / "sweep.json").read_text())
    assert stored["grid"] == {
        "facility.strategy": ["nearest", "spread"],
        "demand.0.multiplier": [0.8, 1.2],
    }

    again = runner.invoke(app, [*args, "--resume", "--no-plots"])
    assert again.exit_code == 0, again.output
    assert "ran 0 runs (8 already on disk)" in again.output
    pd.testing.assert_frame_equal(pd.read_parquet(out / "sweep.parquet"), table)

    changed = runner.invoke(app, [*args[:-2], "--replications", "3", "--out", str(out), "--resume"])
    assert changed.exit_code == 2
    assert "replications differs (stored 2, now 3)" in changed.output
    assert "Traceback" not in changed.output
    fresh = runner.invoke(app, args)
    assert fresh.exit_code == 2 and "already holds a sweep" in fresh.output


def test_cli_sweep_file_with_overrides(tmp_path: Path) -> None:
    spec = load_sweep_file(EXAMPLE)
    assert spec.scenario == EXAMPLE.parent / "../surface_lot.yaml"
    assert list(spec.grid) == ["demand.0.multiplier", "tariff.per_period"]
    args = ["sweep", "--file", str(EXAMPLE), "--days", "1", "--replications", "1", "--no-plots"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(tmp_path / "sweep.parquet")
    assert len(table) == 12 and set(table["replication"]) == {0}
    cheap = table[table["tariff.per_period"] == 1.0]["revenue_per_day"].mean()
    dear = table[table["tariff.per_period"] == 2.5]["revenue_per_day"].mean()
    assert dear > cheap


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-g", "facility.strategy=nearest,sideways"], "point 1 (facility.strategy=sideways): "),
        (["-g", "demand.9.multiplier=1"], "demand has 3 items (0..2), no item 9"),
        (["-g", "facility.strategy"], "expected KEY=V1,V2"),
        ([], "give SCENARIO and at least one --grid"),
        (["-g", "a=1", "--executor", "serial", "--scheduler", "tcp://h:1"], "needs the dask"),
    ],
)
def test_cli_sweep_user_errors_exit_2(tmp_path: Path, extra: list[str], message: str) -> None:
    result = runner.invoke(app, ["sweep", str(SURFACE), *extra, "--out", str(tmp_path / "s")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "s" / "runs").exists()


def test_cli_sweep_without_out_prints_its_table_and_needs_one_source(tmp_path: Path) -> None:
    args = ["-g", "tariff.per_period=1.5,3", "--days", "1", "--replications", "2"]
    no_out = runner.invoke(app, ["sweep", str(SURFACE), *args])
    assert no_out.exit_code == 0, no_out.output
    assert "2 points × 2 replications" in no_out.output and "nothing written" in no_out.output
    resume = runner.invoke(app, ["sweep", str(SURFACE), "-g", "a=1,2", "--resume"])
    assert resume.exit_code == 2 and "need --out DIR" in resume.output
    both = runner.invoke(
        app, ["sweep", str(SURFACE), "-g", "a=1", "--file", str(EXAMPLE), "--out", str(tmp_path)]
    )
    assert both.exit_code == 2 and "not both" in both.output
