"""`emit`: a simulated lot's feed, its faults and their ground truth; emit → JSONL → replay
through the intake is lossless."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from parktwin.adapters.sources import FileReplay, Intake
from twin import api
from twin.live.emit import FaultError, emit, parse_faults, write_ground_truth

ROOT = Path(__file__).resolve().parents[2]
SURFACE = ROOT / "scenarios" / "surface_lot.yaml"


@pytest.fixture(scope="module")
def lot():
    return api.load(SURFACE)


def test_emit_jsonl_replay_round_trip(lot, tmp_path: Path) -> None:
    feed = emit(lot, days=1, heartbeat_min=30)
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(feed.lines) + "\n")
    with Intake(dead_letter=tmp_path / "dead.jsonl") as intake:
        events = list(intake.events(FileReplay(path)))
    assert intake.report() == {
        "received": len(feed.lines),
        "applied": len(feed.lines),
        "dead_lettered": 0,
        "by_reason": {},
    }
    kinds = Counter(e.kind for e in events)
    assert kinds == Counter(feed.counts)
    # Every car that passed the barrier: one entry, one plate read; exits match payments.
    assert kinds["gate_entry"] == kinds["plate_read"] > 0
    assert kinds["gate_exit"] == kinds["payment"]
    # Spot readings alternate occupied/free per sensor and the counter's last snapshot agrees
    # with the gates: entries − exits cars inside.
    last: dict[str, str] = {}
    for e in events:
        if e.kind == "spot_reading":
            assert last.get(e.spaceId) != e.status, "a sensor repeated its reading"
            last[e.spaceId] = e.status
    counter = [e for e in events if e.kind == "counter" and e.level is None][-1]
    assert counter.vehicleEntranceCount == kinds["gate_entry"]
    assert counter.vehicleExitCount == kinds["gate_exit"]
    open_sessions = {e.sessionId for e in events if e.kind == "gate_entry"} - {
        e.sessionId for e in events if e.kind == "gate_exit"
    }
    assert counter.totalSpotNumber - counter.availableSpotNumber == len(open_sessions)
    # Cars inside but not on a spot (driving to it or out) are seen by gates, not sensors.
    on_spots = sum(1 for s in last.values() if s == "occupied")
    assert on_spots <= len(open_sessions)
    # The level counters (ramp loops) count cars on spots, as the sensors do.
    levels = {e.level: e for e in events if e.kind == "counter" and e.level is not None}
    assert (
        levels
        and sum(c.totalSpotNumber - c.availableSpotNumber for c in levels.values()) == on_spots
    )
    times = [e.dateObserved for e in events]
    assert times == sorted(times)


def test_faults_edit_the_feed_and_are_recorded(lot, tmp_path: Path) -> None:
    spot_stuck, spot_dead = "G-R0017", "G-R0020"
    faults = parse_faults(
        [
            {"kind": "sensor_stuck", "spot": spot_stuck, "state": "occupied", "start": 6},
            {"kind": "sensor_dead", "spot": spot_dead, "start": 8},
            {"kind": "payment_outage", "start": 10, "end": 14, "mode": "declined"},
            {"kind": "counter_miss", "share": 0.5, "start": 6, "end": 18},
        ],
        lot.start,
    )
    clean = emit(lot, days=1)
    faulty = emit(lot, days=1, faults=faults)
    ev = [json.loads(x) for x in faulty.lines]

    def t(e: dict) -> float:
        observed = datetime.fromisoformat(e["dateObserved"]).replace(tzinfo=None)
        return (observed - lot.start).total_seconds() / 3600

    stuck = [
        e
        for e in ev
        if e["refDevice"] == f"sensor-{spot_stuck}" and e["kind"] == "spot_reading" and t(e) >= 6
    ]
    assert [e["status"] for e in stuck] == ["occupied"]
    dead = [e for e in ev if e["refDevice"] == f"sensor-{spot_dead}" and t(e) >= 8]
    assert dead == []
    assert any(e["refDevice"] == f"sensor-{spot_dead}" and e["kind"] == "heartbeat" for e in ev)
    pays = [e for e in ev if e["kind"] == "payment"]
    assert {e["status"] for e in pays if 10 <= t(e) < 14} == {"declined"}
    assert {e["status"] for e in pays if not 10 <= t(e) < 14} == {"ok"}
    last_clean = [json.loads(x) for x in clean.lines if '"refDevice":"counter-site"' in x][-1]
    last_faulty = [e for e in ev if e["refDevice"] == "counter-site"][-1]
    assert last_faulty["vehicleEntranceCount"] < last_clean["vehicleEntranceCount"]
    truth = json.loads(write_ground_truth(faulty, tmp_path / "t.json").read_text())
    assert truth["schema"] == "parktwin.faults/1"
    assert [f["kind"] for f in truth["faults"]] == [
        "sensor_stuck",
        "sensor_dead",
        "payment_outage",
        "counter_miss",
    ]
    assert truth["faults"][0]["devices"] == [f"sensor-{spot_stuck}"]
    assert truth["faults"][2]["end"] == "2026-01-05T14:00:00+00:00"


def test_demand_surge_adds_arrivals_from_its_start(lot) -> None:
    surge = parse_faults(
        [{"kind": "demand_surge", "percent": 100, "start": 8, "end": 16}], lot.start
    )
    base = emit(lot, days=1)
    more = emit(lot, days=1, faults=surge)

    def entries(feed, lo, hi, kind="plate_read"):
        # arrivals at the barrier are the entrance camera's plate reads; gate entries are
        # capped by the free spots (a car refused at a full lot does not enter)
        n = 0
        for x in feed.lines:
            if f'"kind":"{kind}"' in x:
                h = (
                    datetime.fromisoformat(json.loads(x)["dateObserved"]).replace(tzinfo=None)
                    - lot.start
                ).total_seconds() / 3600
                n += lo <= h < hi
        return n

    assert entries(more, 8, 16) > 1.5 * entries(base, 8, 16)
    assert entries(more, 8, 16, "gate_entry") > entries(base, 8, 16, "gate_entry")
    assert more.ground_truth()["faults"][0]["params"] == {"percent": 100.0}


def test_gate_offline_uploads_its_buffer_in_a_burst(lot, tmp_path: Path) -> None:
    fault = parse_faults(
        [{"kind": "gate_offline", "device": "gate-in", "start": 8, "end": 10}], lot.start
    )
    clean = emit(lot, days=1)
    feed = emit(lot, days=1, faults=fault)
    assert sorted(clean.lines) != sorted(feed.lines)
    ev = [json.loads(x) for x in feed.lines]
    held = [k for k, e in enumerate(ev) if e.get("buffered")]
    assert held and all(ev[k]["refDevice"] == "gate-in" for k in held)
    # One burst: contiguous, after every event observed before the window's end.
    assert held == list(range(held[0], held[0] + len(held)))
    end = datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert all(  # events at the end time itself may come first
        datetime.fromisoformat(e["dateObserved"]) <= end
        for e in ev[: held[0]]
        if not e.get("buffered")
    )
    assert all(datetime.fromisoformat(ev[k]["dateObserved"]) < end for k in held)
    # Same events as without the fault, apart from the flag and the order.
    strip = lambda e: {k: v for k, v in e.items() if k != "buffered"}  # noqa: E731
    assert sorted(json.dumps(strip(e), sort_keys=True) for e in ev) == sorted(
        json.dumps(json.loads(x), sort_keys=True) for x in clean.lines
    )
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(feed.lines) + "\n")
    intake = Intake()
    assert sum(1 for _ in intake.events(FileReplay(path))) == len(ev)
    assert feed.ground_truth()["faults"][0]["devices"] == ["gate-in"]


def test_bad_fault_schedules_are_one_line_errors(lot) -> None:
    with pytest.raises(FaultError, match=r"faults\[0\]\.kind"):
        parse_faults([{"kind": "meteor", "start": 1}], lot.start)
    with pytest.raises(FaultError, match=r"faults\[0\]\.spot"):
        parse_faults([{"kind": "sensor_dead", "start": 1}], lot.start)
    with pytest.raises(FaultError, match="not in Surface Lot"):
        emit(
            lot,
            days=1,
            faults=parse_faults([{"kind": "sensor_dead", "spot": "Z-9", "start": 1}], lot.start),
        )


def test_cli_emit_writes_feed_and_truth(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("faults:\n  - {kind: payment_outage, start: 10, end: 11}\n")
    out = tmp_path / "feed.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "parktwin.cli",
        "emit",
        str(SURFACE),
        "--out",
        str(out),
        "--days",
        "1",
        "--faults",
        str(faults),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.exists() and (tmp_path / "feed.faults.json").exists()
    # The refusals in-process: each new interpreter cost ~2 s of CPU start-up, and the command's
    # way out (exit code, stderr) is the same through the app as through `python -m`.
    from typer.testing import CliRunner

    from cli import app

    bad = CliRunner().invoke(app, [*cmd[3:5], "--days", "1"])
    assert bad.exit_code == 2 and "give --mqtt" in bad.stderr and "Traceback" not in bad.stderr
    nowhere = CliRunner().invoke(
        app, [*cmd[3:5], "--out", str(tmp_path / "no" / "such" / "f.jsonl")]
    )
    assert nowhere.exit_code == 2 and "must be a file in an existing folder" in nowhere.stderr


@pytest.mark.parametrize(
    ("flag", "value"), [("--heartbeat-min", "1e-09"), ("--counter-min", "0.001")]
)
def test_cli_emit_refuses_a_period_under_a_minute(tmp_path: Path, flag: str, value: str) -> None:
    """Every bay reports once a heartbeat period: 1e-9 min used to ask numpy for 6 TiB (a
    MemoryError traceback); under a minute is one line, before anything is simulated."""
    from typer.testing import CliRunner

    from cli import app

    out = tmp_path / "feed.jsonl"
    result = CliRunner().invoke(app, ["emit", str(SURFACE), "--out", str(out), flag, value])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert f"{flag} must be at least 1 minute, got {value}" in lines[0]
    assert not out.exists()


def test_emit_refuses_a_period_under_a_minute(lot) -> None:
    with pytest.raises(ValueError, match="heartbeat_min must be at least 1 minute"):
        emit(lot, days=1, heartbeat_min=0.5)
    with pytest.raises(ValueError, match="counter_min must be at least 1 minute, got nan"):
        emit(lot, days=1, counter_min=float("nan"))


def test_emit_shorter_than_the_warm_up_sends_the_run_from_its_start(lot, tmp_path: Path) -> None:
    """The warm-up only keeps time out of a run's figures: a feed is the same with or without
    it, so `emit --days` shorter than the warm-up (6 h here) is a feed of that many days, not
    an error (it used to be 'not longer than the warm-up')."""
    from typer.testing import CliRunner

    from cli import app

    no_warm_up = lot.model_copy(update={"warmup_hours": 0.0})
    assert lot.warmup_hours == 6
    assert emit(lot, days=0.5).lines == emit(no_warm_up, days=0.5).lines  # 12 h > warm-up
    short = emit(lot, days=0.2)  # 4.8 h < warm-up
    assert short.lines == emit(no_warm_up, days=0.2).lines
    times = [json.loads(x)["dateObserved"] for x in short.lines]
    assert times[0].startswith("2026-") and len(short.lines) > 100
    first, last = (datetime.fromisoformat(t) for t in (min(times), max(times)))
    assert 4 <= (last - first).total_seconds() / 3600 <= 4.8
    out = tmp_path / "feed.jsonl"
    result = CliRunner().invoke(app, ["emit", str(SURFACE), "--out", str(out), "--days", "0.2"])
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == short.lines
