"""Mistakes a new user makes on the command line: each is refused in one line that says what to
do, with exit code 2, before anything is simulated."""

from __future__ import annotations

import re
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "surface_lot.yaml"
SWEEP = ROOT / "scenarios" / "sweeps" / "surface_lot_price_demand.yaml"
STUDY = ROOT / "scenarios" / "studies" / "locking_study.yaml"
runner = CliRunner()


def refused(args: list[str]) -> str:
    """Run the command; it must exit 2 with exactly one line on stderr, which is returned."""
    result = runner.invoke(app, [str(a) for a in args])
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    return lines[0]


@pytest.mark.parametrize("days", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("command", ["run", "compare", "optimize"])
def test_days_must_be_a_finite_number(command: str, days: str) -> None:
    extra = {"run": [], "compare": ["--set", "tariff.per_period=3"]}
    extra["optimize"] = ["-p", "tariff.per_period=1:3"]
    line = refused([command, SCENARIO, *extra[command], "--days", days])
    assert "days must be > 0 and finite" in line, line
    assert "GiB" not in line  # it used to end in a memory estimate of 'nan drivers'


@pytest.mark.parametrize(
    "args",
    [
        ["run", SCENARIO],
        ["compare", SCENARIO, "--set", "tariff.per_period=3"],
        ["sweep", SCENARIO, "--grid", "tariff.per_period=1,2", "--out", "unused"],
        ["optimize", SCENARIO, "-p", "tariff.per_period=1:3"],
        ["emit", SCENARIO, "--out", "unused.jsonl"],
        ["locking"],
    ],
    ids=lambda a: a[0],
)
def test_a_negative_seed_names_the_option(
    args: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [str(a) for a in args] + ["--seed", "-1"])
    assert result.exit_code == 2
    assert "--seed" in result.output, result.output  # was: 'expected non-negative integer'
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "args, found, command",
    [
        (["run", SWEEP], "sweep file, not a scenario file", f"parktwin sweep --file {SWEEP}"),
        (["run", STUDY], "locking study file, not a scenario", f"parktwin locking {STUDY}"),
        (["compare", SCENARIO, SWEEP], "sweep file", f"parktwin sweep --file {SWEEP}"),
        (["locking", SCENARIO], "scenario file, not a locking study", f"parktwin run {SCENARIO}"),
        (["sweep", "--file", SCENARIO, "--out", "x"], "not a sweep file", "parktwin run"),
        (["sweep", "--file", STUDY, "--out", "x"], "locking study file", "parktwin locking"),
    ],
    ids=["run-sweep", "run-study", "compare-sweep", "locking-scenario", "sweep-scenario",
         "sweep-study"],
)  # fmt: skip
def test_a_file_of_another_kind_says_which_command_runs_it(
    args: list, found: str, command: str
) -> None:
    """It used to print one 'unknown key' line per top-level key of the file (up to 20)."""
    line = refused(args)
    assert found in line and command in line, line


def test_a_scenario_with_a_misspelt_key_is_still_a_scenario(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(SCENARIO.read_text().replace("\ntariff:", "\ntarif:"))
    line = refused(["run", path])
    assert "tarif: unknown key" in line and "not a scenario" not in line, line


GARAGE = ROOT / "scenarios" / "downtown_garage.yaml"


def test_live_report_on_a_file_names_the_report_option(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text("")
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    line = refused(["live", GARAGE, "--replay", feed, "--report", taken, "--replications", "1"])
    assert line.startswith(f"error: --report {taken}"), line  # it said --out, which live lacks


def test_live_says_when_it_never_reached_the_broker() -> None:
    """A broker that is not running used to end in an empty board and exit 0."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = f"mqtt://127.0.0.1:{port}/parktwin/events"
    line = refused(["live", GARAGE, "--source", source, "--idle", "1", "--replications", "0"])
    assert f"no connection to a broker at 127.0.0.1:{port}" in line, line


def test_live_on_a_running_broker_with_a_quiet_topic_says_so_not_an_error(broker: Any) -> None:
    """Not the broker error (exit 2) and not the board of an empty lot (which looked like a
    quiet lot, exit 0): one line saying nothing arrived, exit 1 (`parktwin live --help`)."""
    source = f"mqtt://127.0.0.1:{broker.port}/parktwin/quiet-{uuid.uuid4().hex}"
    result = runner.invoke(
        app, ["live", str(GARAGE), "--source", source, "--idle", "1", "--replications", "0"]
    )
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [f"warning: {source}: no event arrived within --idle 1 s"]
    assert result.stdout == ""


def test_the_live_board_fits_an_80_column_terminal_whole() -> None:
    """The 20-column occupancy bar was cut to '█████████…' and 'closed/he…' at 80 columns."""
    from rich.console import Console

    from twin.api import load
    from twin.live.mirror import Mirror
    from twin.live.view import board

    console = Console(width=80, record=True, color_system=None)
    console.print(board(Mirror(load(GARAGE))))
    text = console.export_text()
    assert "…" not in text, text
    assert "░░░░░░░░░░   0%" in text and "closed" in text and "held" in text, text


def test_live_report_without_a_prediction_is_refused_before_the_feed_is_read(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_text("")
    args = ["live", GARAGE, "--replay", feed, "--report", tmp_path / "r", "--replications", "0"]
    assert "needs --replications 1 or more" in refused(args)
    assert not (tmp_path / "r").exists()


def test_an_occupancy_target_given_in_percent_gets_a_hint() -> None:
    args = ["optimize", SCENARIO, "-p", "tariff.per_period=1:3", "--objective"]
    line = refused([*args, "occupancy-target", "--target", "85"])
    assert "--target: must be a fraction of the spots between 0 and 1 (85 % is 0.85)" in line


def test_report_on_a_sweep_or_optimize_folder_says_what_the_folder_holds(tmp_path: Path) -> None:
    sweep, opt = tmp_path / "sweep", tmp_path / "opt"
    common = ["--days", "1", "--replications", "2"]
    # report tells the folders apart by sweep.json / optimize.json: the sweep's charts (~1.3 s
    # of CPU) add nothing here
    grid = ["--grid", "tariff.per_period=1,2", "--no-plots"]
    made = runner.invoke(app, ["sweep", str(SCENARIO), *grid, *common, "--out", sweep])
    assert made.exit_code == 0, made.output
    args = ["optimize", str(SCENARIO), "-p", "tariff.per_period=1:2", "--grid-points", "2"]
    made = runner.invoke(app, [*args, *common, "--out", str(opt)])
    assert made.exit_code == 0, made.output
    assert "a sweep's folder: its charts are in plots/" in refused(["report", sweep])
    assert "an optimize folder: its chart is optimize.png" in refused(["report", opt])
    assert "no summary.json" in refused(["report", tmp_path])


@pytest.mark.parametrize("command", [["calibrate", "tickets"], ["calibrate", "occupancy"],
                                     ["backtest"]])  # fmt: skip
def test_columns_help_explains_the_roles_whole_at_80_columns(command: list[str]) -> None:
    """It was a bare 'time=COL,occupied=COL,capacity=COL[,site=CO…', cut at 80 columns."""
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0
    assert "…" not in result.output, result.output
    text = " ".join(re.sub("[│╭╮╰╯─*]", " ", result.output).split())  # the panel's words
    assert "Which CSV column holds what" in text and "ROLE=COL" in text
    for role in ["entry", "exit"] if command[-1] == "tickets" else ["time", "capacity"]:
        assert role in text


@pytest.mark.parametrize(
    "name, text, hint",
    [
        ("counts.csv", "time,occupied\n2016-10-04 08:00,61\n", "parktwin calibrate"),
        ("feed.jsonl", '{"kind": "heartbeat"}\n{"kind": "heartbeat"}\n', "parktwin live"),
    ],
)
@pytest.mark.parametrize("command", [["run"], ["locking"], ["sweep", "--file"]])
def test_a_data_file_given_as_yaml_says_what_it_is_for(
    tmp_path: Path, name: str, text: str, hint: str, command: list[str]
) -> None:
    path = tmp_path / name
    path.write_text(text)
    args = [*command, path] + (["--out", tmp_path / "out"] if command[0] == "sweep" else [])
    line = refused(args)
    assert "not a ParkTwin YAML file" in line and hint in line, line


@pytest.mark.parametrize(
    "args",
    [["live", GARAGE, "--replications", "0", "--replay"], ["replay", "--scenario", GARAGE]],
    ids=["live", "replay"],
)
def test_a_folder_given_as_the_feed_is_called_a_folder(args: list, tmp_path: Path) -> None:
    line = refused([*args, tmp_path])
    assert f"{tmp_path}: a folder, not a" in line, line  # it said 'no such (feed) file'


def test_report_on_a_file_says_it_wants_the_folder() -> None:
    line = refused(["report", SCENARIO])
    assert "a file; give the folder `parktwin run ... --out DIR` wrote" in line, line
