"""`emit` for the cars a run parks outside its drivers (twin/live/emit_stays.py): reservations
and their holders (emit → JSONL file → intake → mirror shows the held bays), and a feed that
begins from the steady state (its cars parked at the first instant, no false alarm for them)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from parktwin.adapters.events import parse_json
from parktwin.adapters.sources import FileReplay, Intake
from twin import api
from twin.live.emit import emit
from twin.live.mirror import Mirror, MirrorConfig

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600.0
#: the feeds here send a heartbeat an hour (fewer events: faster tests)
HOURLY = MirrorConfig(heartbeat_s=HOUR)


def held_truth(bookings: pd.DataFrame, t: float) -> set[str]:
    """Bays the model's reservation book holds at ``t``: from the hold's start to the holder's
    arrival, or to the reservation's end (cancelled, no-show, expired)."""
    out = set()
    for r in bookings.itertuples():
        if pd.isna(r.reservation) or not isinstance(r.spot, str) or math.isnan(r.held_from):
            continue
        ends = [x for x in (r.arrived_t, r.closed_t) if not math.isnan(x)]
        if r.held_from <= t < min(ends, default=math.inf):
            out.add(r.spot)
    return out


def test_reservations_reach_the_mirror_through_a_file_and_it_holds_their_bays(tmp_path):
    sc = api.load(ROOT / "scenarios" / "downtown_operations.yaml")
    feed = emit(sc, days=1.5, heartbeat_min=60)
    assert feed.counts["reservation"] > 0 and feed.reservations > 0
    path = tmp_path / "ops.jsonl"
    path.write_text("\n".join(feed.lines) + "\n", encoding="utf-8")
    bookings = feed.bookings  # the run's own reservation book, booking by booking
    mirror = Mirror(sc, HOURLY)
    checks = [q * HOUR / 4 for q in range(13 * 4, 36 * 4)]  # every 15 min
    compared = holding = 0
    with Intake(dead_letter=tmp_path / "dead.jsonl") as intake:
        for ev in intake.events(FileReplay(path)):
            t = (ev.dateObserved - mirror.epoch).total_seconds()
            while checks and t > checks[0]:
                fold = mirror.fold
                held = {fold.lot.spots[i].id for i in fold.reservations.values()}
                assert held == held_truth(bookings, checks[0]), checks[0] / HOUR
                # and the core lot has those bays out of walk-in use
                assert all(
                    fold.lot.spots[i].status.name == "RESERVED"
                    for i in fold.reservations.values()
                    if fold.lot.spots[i].status.name != "OCCUPIED"
                )
                compared += 1
                holding += bool(held)
                checks.pop(0)
            mirror.offer(ev)
    mirror.flush()
    assert intake.report()["dead_lettered"] == 0
    assert compared == len(range(13 * 4, 36 * 4)) and holding >= 15
    # holders park in their bays like walk-ins: no sensor or gate contradictions, and the
    # state a forecast starts from has the holds
    assert mirror.alerts() == []
    assert mirror.summary()["anomalies"] == {}
    state = mirror.state()
    held = {h.spot for h in state.lots[0].holds if h.status == "held"}
    assert held == {mirror.fold.lot.spots[i].id for i in mirror.fold.reservations.values()}
    # what the holders paid is in the feed's payments (the pay stations see them)
    holders = bookings[bookings["left_t"].notna()]
    paid_by_holders = sum(
        json.loads(x)["value"]
        for x in feed.lines
        if '"kind":"payment"' in x and ':pay"' in x and '"sessionId":"R' in x
    )
    assert paid_by_holders == pytest.approx(holders["captured_cents"].sum() / 100)


def test_a_feed_from_the_steady_state_starts_with_its_cars_parked_and_raises_no_alarm():
    sc = api.load(ROOT / "scenarios" / "downtown_garage.yaml")
    feed = emit(sc, days=1, start_state="steady", heartbeat_min=60)
    assert feed.initial > 100  # Sunday noon: the cars of the morning are there
    first = [json.loads(x) for x in feed.lines[: feed.initial + 50]]
    at_start = [e for e in first if e["dateObserved"].startswith("2026-01-04T12:00:00.")]
    occupied = [e for e in at_start if e["kind"] == "spot_reading" and e["status"] == "occupied"]
    assert len(occupied) == feed.initial
    # the site counter counted them in before the feed began
    counter = next(json.loads(x) for x in feed.lines if '"id":"cnt-0"' in x)
    assert counter["totalSpotNumber"] - counter["availableSpotNumber"] >= feed.initial - 20
    mirror = Mirror(sc, HOURLY).consume(parse_json(x) for x in feed.lines)
    s = mirror.summary()
    assert s["parked_before_feed"] == feed.initial
    assert s["anomalies"] == {}  # their exits are not exits without an entry
    assert mirror.alerts() == []  # no "occupied with no car from the gates" for them
    # their exits are priced from the ticket's actualStart, like the pay stations charge
    assert s["priced"] == pytest.approx(s["paid"], rel=0.01)


def test_cli_emit_from_the_steady_state_and_a_bad_state_file(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    out = tmp_path / "feed.jsonl"
    args = ["emit", str(ROOT / "scenarios" / "downtown_garage.yaml"), "--days", "0.6"]
    runner = CliRunner()
    done = runner.invoke(
        app, [*args, "--heartbeat-min", "60", "--start-state", "steady", "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    assert "cars parked (start state)" in done.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("time: 2026-01-05T08:00:00\nlots: [{queue: [{stream: nope}]}]\n")
    done = runner.invoke(app, [*args, "--start-state", str(bad), "--out", str(out)])
    assert done.exit_code == 2
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "unknown stream 'nope'" in lines[0]


def test_a_feed_from_a_state_file_carries_its_cars_closures_and_holds():
    sc = api.load(ROOT / "scenarios" / "downtown_garage.yaml")
    state = {
        "time": "2026-01-05T09:30:00",  # Monday, not the scenario's start
        "lots": [
            {
                "sessions": [{"spot": "P1-R0005", "elapsed_min": 30}, {"level": "P2"}],
                "holds": [
                    {"status": "closed", "level": "P4"},
                    {"status": "held", "spot": "G-E0003", "until": "2026-01-05T12:00:00"},
                    {"status": "closed", "spot": "P1-R0005"},  # a car stands there: it wins
                ],
            }
        ],
    }
    feed = emit(sc, days=1, start_state=state, heartbeat_min=60)
    assert feed.initial == 2 and feed.epoch.isoformat().startswith("2026-01-05T09:30")
    events = [parse_json(x) for x in feed.lines]
    mirror = Mirror(sc, HOURLY)  # epoch: the scenario's start; the feed's times place it
    first_hour = [e for e in events if e.dateObserved < events[0].dateObserved.replace(hour=10)]
    for e in first_hour:
        mirror.offer(e)
    held = {lv["level"]: lv["held"] for lv in mirror.levels()}
    assert held["P4"] == 100 and held["G"] == 1 and held["P1"] == 0
    mirror.consume(events[len(first_hour) :])
    held = {lv["level"]: lv["held"] for lv in mirror.levels()}
    assert held["P4"] == 100 and held["G"] == 0  # the hold ended at noon, P4 stays closed
    assert mirror.alerts() == []
    # the two cars' exits are of cars parked before the feed began, not anomalies
    assert mirror.summary()["anomalies"] == {"closed_reading": 100}
    assert mirror.summary()["parked_before_feed"] == 2
