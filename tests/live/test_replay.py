"""Replay of a recorded day (issue 11): a gate log's actual cars, arrivals and stays, run
through the model. Emitted from a simulated day, replayed through the same scenario, they
give the original run's revenue and occupancy; through a smaller facility, turn-aways."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli import app
from parktwin.adapters.sources import write_jsonl
from twin import api
from twin.live.emit import emit
from twin.live.replay import ReplayError, read_log, replay, run_days

ROOT = Path(__file__).resolve().parents[2]
SURFACE = ROOT / "scenarios" / "surface_lot.yaml"
SMALLER = {"facility.levels.0.spots.REGULAR": 40}
runner = CliRunner()


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """One simulated weekday of the surface lot (lanes, accessible bays, a tariff, drivers
    who balk at the price), its feed as JSONL, and the original run."""
    scenario = api.load(SURFACE).model_copy(update={"warmup_hours": 0.0, "horizon_days": 1.0})
    path = tmp_path_factory.mktemp("replay") / "day.jsonl"
    write_jsonl(path, emit(scenario).lines)
    original = api.run(scenario, replications=1, frames=("vehicles",))
    return scenario, path, original


def test_replay_as_is_equals_the_original_run(day) -> None:
    scenario, path, original = day
    log = read_log(path)
    result = replay(log, scenario)
    veh = original.vehicles
    parked = veh[veh.spot.notna()]
    assert len(log.cars) == len(parked) > 150  # every car through the gate, no other
    got = result.days[result.days.source == "as-is"].drop(columns="source")
    want = run_days(veh, scenario)
    # the original's arrivals include drivers who balked at the price: not in a gate log
    assert (want.arrivals > want.parked).all()
    for col in ("parked", "revenue", "occupancy_peak"):
        assert got[col].tolist() == want[col].tolist(), col
    assert got.turned_away.tolist() == [0]
    # times travel as microseconds in the feed: occupancy agrees to ~1e-12, not bit for bit
    np.testing.assert_allclose(got.occupancy_mean, want.occupancy_mean, rtol=1e-10)
    # the run's own figures too (same window: the lot's start, one day, no warm-up)
    a, b = original.summary()["mean"], result.runs["as-is"].summary()["mean"]
    assert b["revenue"] == a["revenue"] > 0
    assert b["parked"] == a["parked"]
    assert b["occupancy.peak"] == a["occupancy.peak"]
    assert b["occupancy.mean"] == pytest.approx(a["occupancy.mean"], rel=1e-10)
    # car by car: the same stays in the same spots, charged the same
    rep = result.runs["as-is"].vehicles
    np.testing.assert_allclose(rep.entry_s, parked.entry_s, atol=1e-5)
    np.testing.assert_allclose(rep.leave_s, parked.leave_s, atol=1e-5)
    assert rep.spot.tolist() == parked.spot.tolist()
    assert rep.amount.fillna(-1).tolist() == parked.amount.fillna(-1).tolist()
    # and the log's own figures: payments as paid, the same cars
    rec = result.days[result.days.source == "recorded"]
    assert rec.parked.tolist() == want.parked.tolist()
    assert rec.revenue.tolist() == want.revenue.tolist()


def test_smaller_facility_turns_recorded_cars_away(day) -> None:
    scenario, path, _ = day
    smaller = api.load(SURFACE, SMALLER)
    result = replay(read_log(path), scenario, smaller)
    totals = result.totals()
    same, changed = totals.loc["as-is"], totals.loc["changed"]
    assert changed.arrivals == same.arrivals  # the same recorded cars come
    assert changed.turned_away > 0 and same.turned_away == 0
    assert changed.parked + changed.turned_away == changed.arrivals
    assert changed.revenue < same.revenue


def test_api_and_cli_write_the_comparison(day, tmp_path: Path) -> None:
    _, path, _ = day
    out = tmp_path / "out"
    cli = runner.invoke(
        app,
        [
            "replay",
            str(path),
            "--scenario",
            str(SURFACE),
            "--set",
            "tariff.per_period=2.0",
            "--out",
            str(out),
        ],
    )
    assert cli.exit_code == 0, cli.output
    assert "changed" in cli.output and "dead-lettered" in cli.output
    days = pd.read_csv(out / "days.csv")
    assert set(days.source) == {"recorded", "as-is", "changed"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["intake"]["dead_lettered"] == 0
    # a dearer hour: the same cars pay more (the replay has no price response)
    assert summary["totals"]["changed"]["revenue"] > summary["totals"]["as-is"]["revenue"]
    assert summary["totals"]["changed"]["parked"] == summary["totals"]["as-is"]["parked"]
    assert len(pd.read_csv(out / "trace.csv")) == summary["cars"]


EXPORT = """Ticket No;Entry Time;Exit Time;Amount Paid;Registration
T1;05/01/2026 08:00;05/01/2026 10:30;4,50;AB12CDE
T2;05/01/2026 08:10;05/01/2026 17:40;12,00;XY99ZZZ
T3;05/01/2026 09:05;;;
T4;yesterday;05/01/2026 11:00;1,50;
T5;05/01/2026 12:00;05/01/2026 12:20;0,00;
"""
MAPPING = """delimiter: ";"
time_format: "%d/%m/%Y %H:%M"
decimal: ","
site: Surface Lot A
columns: {ticket: "Ticket No", entry: "Entry Time", exit: "Exit Time", paid: "Amount Paid",
          plate: "Registration"}
"""


def test_mapped_foreign_export_replays(tmp_path: Path) -> None:
    export, mapping = tmp_path / "tickets.csv", tmp_path / "tickets.mapping.yaml"
    export.write_text(EXPORT)
    mapping.write_text(MAPPING)
    result = api.replay(export, SURFACE, mapping=mapping, out=tmp_path / "out")
    log = result.log
    assert log.intake["dead_lettered"] == 1  # T4's entry time cannot be read
    assert log.cars.session.tolist() == ["T1", "T2", "T3", "T5"]
    stays = result.trace.set_index("session").dwell
    assert stays["T1"] == 2.5 * 3600 and stays["T5"] == 20 * 60
    assert stays["T3"] > 15 * 3600  # open ticket: still parked at the log's end
    rec = result.days[result.days.source == "recorded"].iloc[0]
    assert rec.revenue == pytest.approx(16.5)  # as paid (T4 set aside)
    as_is = result.days[result.days.source == "as-is"].iloc[0]
    assert as_is.parked == 4
    # the surface lot's tariff charges the stays, not what the export says was paid:
    # T1 2.5 h = 30 free minutes + 2 h at $1.50; T2 9.5 h hits the $12 daily maximum;
    # T5 20 min is free; T3 is still parked at the log's end (not charged inside it)
    assert as_is.revenue == pytest.approx(3.0 + 12.0 + 0.0)
    dead = (tmp_path / "out" / "dead_letter.jsonl").read_text().splitlines()
    assert len(dead) == 1 and "tickets.csv:5" in dead[0]


def test_bad_logs_are_counted_and_refused_in_one_line(day, tmp_path: Path) -> None:
    _, path, _ = day
    lines = path.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    exits = [x for x in lines if '"gate_exit"' in x]
    bad.write_text(
        "\n".join(
            [
                "{not json",
                '{"kind":"teleport","id":"x","refDevice":"d","dateObserved":"2026-01-05T00:00:00Z"}',
                lines[0],
                lines[0],  # duplicate id
                *exits[:1],  # its entry is not in this log
                *[x for x in lines if '"gate_entry"' in x][:3],
            ]
        )
        + "\n"
    )
    log = read_log(bad)
    assert log.intake["by_reason"] == {"malformed_json": 1, "unknown_kind": 1, "duplicate": 1}
    assert log.intake["applied"] + log.intake["dead_lettered"] == log.intake["received"]
    assert log.set_aside["exit_without_entry"] == 1
    assert len(log.cars) == 3
    empty = tmp_path / "empty.jsonl"
    empty.write_text("{not json\n" + "\n".join(exits[:2]) + "\n")
    with pytest.raises(ReplayError, match="no gate entries"):
        read_log(empty)
    for log_path, extra in (
        (empty, []),
        (tmp_path / "missing.jsonl", []),
        (bad, ["--set", "tariff.nonsense=1"]),
        (bad, ["--mapping", str(tmp_path / "nope.yaml")]),
        (bad, ["--scenario", str(ROOT / "scenarios" / "city_network.yaml")]),
    ):
        cli = runner.invoke(app, ["replay", str(log_path), "--scenario", str(SURFACE), *extra])
        assert cli.exit_code == 2, cli.output
        assert "Traceback" not in cli.output
        assert cli.output.count("error") == 1, cli.output


def test_a_log_spanning_centuries_or_past_2262_is_one_line(tmp_path: Path) -> None:
    """The replay runs every day of the log: a last event dated 2226 instead of 2026 ran for
    minutes without an end; one past 2262 failed as a memory estimate or a pandas overflow."""
    entry = (
        '{"kind":"gate_entry","id":"S1:in","refDevice":"gate-in","sessionId":"S1",'
        '"identifiedVehicle":"PT1","dateObserved":"WHEN"}'
    )
    beat = '{"kind":"heartbeat","id":"hb","refDevice":"s1","spaceId":"A-1","dateObserved":"WHEN"}'
    cases = [
        ("2026-01-04T12:00:00Z", "2226-03-05T06:00:00Z", "spans 73,108 days"),
        ("2026-01-04T12:00:00Z", "2300-03-05T06:00:00Z", "dates must be between 1678-01-01"),
        ("2300-01-04T12:00:00Z", "2300-01-05T06:00:00Z", "runs from 2300-01-04 to 2300-01-05"),
    ]
    for first, last, message in cases:
        path = tmp_path / "long.jsonl"
        path.write_text(entry.replace("WHEN", first) + "\n" + beat.replace("WHEN", last) + "\n")
        with pytest.raises(ReplayError, match=message):
            read_log(path)
        cli = runner.invoke(app, ["replay", str(path), "--scenario", str(SURFACE)])
        assert cli.exit_code == 2 and "Traceback" not in cli.output, cli.output
        assert cli.output.count("error") == 1 and message in cli.output, cli.output
    # ten years less a day is still a replay
    path.write_text(
        entry.replace("WHEN", "2026-01-04T12:00:00Z")
        + "\n"
        + beat.replace("WHEN", "2036-01-01T06:00:00Z")
        + "\n"
    )
    assert read_log(path).days == 3650


def test_downtown_cars_replay_car_by_car(tmp_path: Path) -> None:
    """Five levels, barriers, EV and accessible bays, drivers who wait at a full gate: every
    recorded car takes the same spot for the same stay and pays the same (times to the
    feed's microsecond), and each whole day's figures equal the original run's."""
    scenario = api.load(ROOT / "scenarios" / "downtown_garage.yaml", {"horizon_days": 2.5})
    path = tmp_path / "downtown.jsonl"
    write_jsonl(path, emit(scenario).lines)
    original = api.run(scenario, replications=1, frames=("vehicles",)).vehicles
    result = replay(read_log(path), scenario)
    shift = 12 * 3600.0  # the scenario starts at noon, the replay at the log's first midnight
    want = original[original.spot.notna()].sort_values(["entry_s", "spot"])
    got = result.runs["as-is"].vehicles
    got = got.assign(entry_s=got.entry_s - shift, leave_s=got.leave_s - shift)
    got = got.sort_values(["entry_s", "spot"])
    assert len(got) == len(want) > 1000
    assert got.spot.tolist() == want.spot.tolist()
    assert got.amount.fillna(-1).tolist() == want.amount.fillna(-1).tolist()
    np.testing.assert_allclose(got.entry_s, want.entry_s, atol=1e-6)
    np.testing.assert_allclose(got.leave_s, want.leave_s, atol=1e-6, equal_nan=True)
    days = run_days(original, scenario).iloc[1:3]  # the whole days (day 0 starts at noon)
    mine = result.days[result.days.source == "as-is"].iloc[1:3]
    assert mine.parked.tolist() == days.parked.tolist()
    assert mine.revenue.tolist() == days.revenue.tolist()
    np.testing.assert_allclose(mine.occupancy_mean, days.occupancy_mean, rtol=1e-10)
