"""The live mirror: a simulated feed (``twin.live.emit``) folded into core objects.

One day of the downtown garage is emitted once per module; the tests replay it through the
intake and the mirror, in order, in pieces (snapshot + tail) and with a gate's events held
back an hour and uploaded in one burst, and check the state is the same every way.
"""

from __future__ import annotations

import json
import math
import random
from datetime import timedelta

import pytest

from parktwin.adapters.events import parse_json
from parktwin.adapters.sources import FileReplay, Intake, Tolerances
from twin import api
from twin.core.lot import Lot
from twin.core.sensors import AvailabilityEstimator, SensorBank
from twin.live.emit import emit, parse_faults
from twin.live.mirror import Mirror, MirrorConfig

HOUR = 3600.0


@pytest.fixture(scope="module")
def scenario():
    return api.load("scenarios/downtown_garage.yaml")


@pytest.fixture(scope="module")
def feed(scenario):
    return emit(scenario, days=1.0)


def events_of(lines):
    return [parse_json(x) for x in lines]


def truth_at_end(lines):
    """Each bay's last reading and the gate count, straight from the feed."""
    bays: dict[str, str] = {}
    inside = 0
    for line in lines:
        ev = json.loads(line)
        if ev["kind"] == "spot_reading":
            bays[ev["spaceId"]] = ev["status"]
        elif ev["kind"] == "gate_entry":
            inside += 1
        elif ev["kind"] == "gate_exit":
            inside -= 1
    return bays, inside


def test_mirror_holds_the_feed_in_core_objects(scenario, feed, tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(feed.lines) + "\n", encoding="utf-8")
    intake = Intake(dead_letter=tmp_path / "dead.jsonl")
    mirror = Mirror(scenario).consume(intake.events(FileReplay(path)))
    report = intake.report()
    assert report["applied"] == report["received"] == len(feed.lines)
    assert mirror.summary()["applied"] == len(feed.lines)
    fold = mirror.fold
    # the same core objects the simulator uses
    assert isinstance(fold.lot, Lot)
    assert isinstance(fold.bank, SensorBank)
    assert isinstance(fold.estimator, AvailabilityEstimator)
    bays, inside = truth_at_end(feed.lines)
    occupied_bays = {b for b, s in bays.items() if s == "occupied"}
    # every bay the sensors say is taken holds a core session, and no other bay does
    on_lot = {s.id for s in fold.lot.spots if s.status.name == "OCCUPIED"}
    assert on_lot == occupied_bays
    assert fold.entries - fold.exits == inside
    # per level, the operator's figure is the sensors' (all healthy on a fault-free feed)
    for row in mirror.levels():
        level_bays = {b for b in occupied_bays if b.startswith(row["level"] + "-")}
        assert row["occupied"] == len(level_bays), row
        assert row["source"] == "sensors"
    # exits priced by the core tariff agree with what was paid (the same tariff)
    s = mirror.summary()
    assert s["paid"] > 0
    assert abs(s["priced"] - s["paid"]) <= 0.01 * s["paid"]
    # a fault-free feed raises no alert about a sensor
    assert [a for a in mirror.alerts()] == []


def test_snapshot_plus_tail_is_the_full_fold(scenario, feed):
    events = events_of(feed.lines)
    full = Mirror(scenario).consume(events)
    cut = len(events) * 3 // 5
    first = Mirror(scenario).consume(events[:cut])
    blob = first.snapshot()
    again = Mirror.restore(blob, scenario).consume(events[cut:])
    assert again.fingerprint() == full.fingerprint()
    # and a snapshot is a value: restoring it twice gives the same state
    assert Mirror.restore(blob, scenario).fingerprint() == first.fingerprint()


def test_gate_offline_for_an_hour_then_a_burst_ends_in_the_live_state(scenario, feed):
    events = events_of(feed.lines)
    live = Mirror(scenario).consume(events)
    # the entry and exit gates lose their uplink from 10:00 to 11:00 on Monday (22-23 h
    # after the start) and upload their buffer in one burst when it comes back, in their
    # own order but after everything else observed meanwhile
    start = feed.epoch + timedelta(hours=22)
    end = start + timedelta(hours=1)
    held = [
        e
        for e in events
        if e.refDevice in ("gate-in", "gate-out") and start <= e.dateObserved < end
    ]
    assert len(held) > 20
    held_ids = {e.id for e in held}
    rest = [e for e in events if e.id not in held_ids]
    k = next(i for i, e in enumerate(rest) if e.dateObserved >= end)
    burst = rest[:k] + held + rest[k:]
    mirror = Mirror(scenario).consume(burst)
    assert mirror.replays >= 1
    assert mirror.fingerprint() == live.fingerprint()


def shifted(events, by: timedelta):
    """The same events observed ``by`` later (every date-time field moved)."""
    from datetime import datetime

    return [
        e.model_copy(update={k: v + by for k, v in e.__dict__.items() if isinstance(v, datetime)})
        for e in events
    ]


def test_a_feed_starting_weeks_after_the_scenario_is_mirrored_from_its_first_event(scenario, feed):
    """The mirror's clock starts at the feed's first event: a feed nine weeks after the
    scenario's start (the same time of week) folds exactly as the same feed at the start, with
    the same alerts nine weeks on. Before, the fold ticked through the 63 empty days first:
    slow, and the detectors judged an empty lot against the model (alerts, samples of
    zeros) and counted the warm-up's settling from the scenario's start, not the feed's."""
    from twin.live.divergence import Divergence, DivergenceConfig, Prediction

    prediction = Prediction.from_scenario(scenario, 2, seed=910_000)
    # thresholds low enough that a fault-free day raises alerts to compare
    config = DivergenceConfig(settle_s=12 * HOUR, cusum_h=1.0, cusum_drop_h=1.0, band_z=1.0)
    by = timedelta(days=63)
    events = events_of(feed.lines)
    late_events = shifted(events, by)
    runs = []
    for evs in (events, late_events):
        div = Divergence(prediction, config)
        runs.append(Mirror(scenario, divergence=div).consume(evs))
    at_start, late = runs
    s = by.total_seconds()
    first = late.seconds(min(e.dateObserved for e in events) + by)
    assert late.fold.start_t == math.floor(first / 60) * 60 > 0
    # ticks from the first event's minute on only: as many as the feed at the start ran
    assert late.fold.next_tick - late.fold.start_t == at_start.fold.next_tick - 0.0
    samples = late.fold.divergence.samples
    assert samples and samples[0][0] >= first
    assert [(t - s, *rest) for t, *rest in samples] == [
        tuple(x) for x in at_start.fold.divergence.samples
    ]
    assert at_start.alerts(), "a day of the garage raises some alert to compare"
    assert [
        (a.kind, a.subject, a.since_t - s, a.raised_t - s, a.message) for a in late.alerts()
    ] == [(a.kind, a.subject, a.since_t, a.raised_t, a.message) for a in at_start.alerts()]
    assert late.levels() == at_start.levels()
    drop = ("time",)
    assert {k: v for k, v in late.summary().items() if k not in drop} == {
        k: v for k, v in at_start.summary().items() if k not in drop
    }
    # deterministic whatever the arrival order: the feed's first 40 events and its first 40
    # gate entries held back and uploaded in one burst are replayed from before the first
    # event (the clock restarts at the true first event), to the same state
    held = late_events[:40] + [e for e in late_events[40:] if e.kind == "gate_entry"][:40]
    ids = {e.id for e in held}
    rest = [e for e in late_events if e.id not in ids]
    div = Divergence(prediction, config)
    burst = Mirror(scenario, divergence=div).consume(rest[:5000] + held + rest[5000:])
    assert burst.replays >= 1
    assert burst.fold.start_t == late.fold.start_t
    assert burst.fingerprint() == late.fingerprint()
    assert burst.fold.divergence.samples == samples


def test_jittered_arrival_order_gives_the_same_state(scenario, feed):
    """Events of different devices a few seconds out of order: the fold does not care."""
    events = events_of(feed.lines[:20000])
    live = Mirror(scenario).consume(events)
    rng = random.Random(5)
    jittered = sorted(events, key=lambda e: e.dateObserved + timedelta(seconds=rng.uniform(0, 30)))
    assert jittered != events
    # applied at once and late ones replayed in batches, or held in a reorder buffer
    for config, replays in ((MirrorConfig(), True), (MirrorConfig(reorder_s=40.0), False)):
        mirror = Mirror(scenario, config).consume(jittered)
        assert mirror.fingerprint() == live.fingerprint()
        assert (mirror.replays > 0) is replays


def test_events_older_than_the_kept_log_are_set_aside(scenario, feed):
    events = events_of(feed.lines)
    config = MirrorConfig(keep_s=2 * HOUR)
    mirror = Mirror(scenario, config)
    old = events[:50]
    mirror.consume(events[50:])
    mirror.consume(old)
    assert len(mirror.set_aside) == 50
    assert mirror.summary()["too_late"] == 50
    assert mirror.summary()["applied"] == len(events) - 50


def test_faulty_sensors_are_flagged_and_the_level_falls_back(scenario, feed):
    lines = feed.lines
    # a bay with a car at 08:00 Monday (20 h) and a bay that talks all day
    bays: dict[str, str] = {}
    cutoff = (feed.epoch + timedelta(hours=20)).isoformat()
    for line in lines:
        ev = json.loads(line)
        if ev["dateObserved"] >= cutoff:
            break
        if ev["kind"] == "spot_reading":
            bays[ev["spaceId"]] = ev["status"]
    taken = sorted(b for b, s in bays.items() if s == "occupied")[0]
    faults = parse_faults(
        [
            {"kind": "sensor_stuck", "spot": taken, "state": "free", "start": 20},
            {"kind": "sensor_dead", "spot": "P3-R0050", "start": 5},
        ],
        scenario.start,
    )
    faulty = emit(scenario, days=1.0, faults=faults)
    mirror = Mirror(scenario).consume(events_of(faulty.lines))
    alerts = {(a.kind, a.subject): a for a in mirror.alerts()}
    stuck = alerts[("sensor_vs_gate", taken)]
    assert 0 < stuck.raised_t - 20 * HOUR <= 15 * 60
    dead = alerts[("dead_sensor", "P3-R0050")]
    assert 0 < dead.raised_t - 5 * HOUR <= 2 * 15 * 60  # two missed 15-min heartbeats
    # nothing else, but possibly a car parking later on one of the two bays, which no
    # sensor reports (the site-wide "unseen car" alert)
    assert set(alerts) - {("sensor_vs_gate", "unseen car")} == {
        ("sensor_vs_gate", taken),
        ("dead_sensor", "P3-R0050"),
    }
    # the dead sensor's level now leans on the gate picture for that bay (core blend)
    p3 = next(r for r in mirror.levels() if r["level"] == "P3")
    assert p3["silent_sensors"] >= 1
    assert p3["source"] == "sensors+counters"
    # the stuck bay's car is still held by the mirror (it never left by the exit gate)
    fold = mirror.fold
    spot = fold.lot.spots[fold.spot_of[taken]]
    assert spot.status.name == "OCCUPIED"


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="heartbeat_s"):
        MirrorConfig(heartbeat_s=0)
    with pytest.raises(ValueError, match="reorder_s"):
        MirrorConfig(reorder_s=float("nan"))


def parked_then(*later: str) -> list[str]:
    """A car entering at the scenario's start and parking on P1-C0001, then heartbeats of its
    bay at the ``later`` ISO dates (a feed with gaps)."""
    site = '"refParkingSite":"Downtown Garage"'
    bay = '"refDevice":"sensor-P1-C0001","spaceId":"P1-C0001"'
    return [
        '{"kind":"gate_entry","id":"S1:in","refDevice":"gate-in","sessionId":"S1",'
        f'"identifiedVehicle":"PT1","vehicleType":"COMPACT","dateObserved":"{later[0]}",{site}}}',
        f'{{"kind":"spot_reading","id":"S1:occ",{bay},"status":"occupied","level":"P1",'
        f'"dateObserved":"{later[0]}",{site}}}',
        *(
            f'{{"kind":"heartbeat","id":"hb-{k}",{bay},"batteryLevel":0.9,'
            f'"dateObserved":"{when}",{site}}}'
            for k, when in enumerate(later[1:])
        ),
    ]


def test_a_feed_dated_years_away_is_refused_not_stepped_through(scenario):
    """The fold ticks every minute: an event a century on used to tick (and checkpoint) for
    hours; any event more than MAX_GAP_S from the mirror's clock is one line now."""
    from twin.live.fold import MAX_GAP_S, FeedGap

    assert MAX_GAP_S == 366 * 86_400
    cases = [
        (["2126-01-04T12:01:00+00:00"], "36,524 days after the mirror's clock"),
        (["2016-01-04T12:01:00+00:00"], "3,653 days before the mirror's clock"),
        (["2026-01-04T12:01:00+00:00", "2027-03-05T06:00:00+00:00"], "425 days after"),
    ]
    for dates, message in cases:
        with pytest.raises(FeedGap, match=message):
            Mirror(scenario).consume(events_of(parked_then(*dates)))
    # 366 days on is still stepped to (the bound is the gap, not the date)
    within = parked_then("2026-01-04T12:01:00+00:00", "2026-06-01T00:00:00+00:00")
    assert Mirror(scenario).consume(events_of(within)).fold.heartbeats == 1


def test_a_car_parked_longer_than_a_start_state_allows_is_one_line(scenario):
    """Gaps under a year each, but a car on its bay for 399 days: the mirror's state (what a
    forecast starts from) is refused with a StateError naming the car, not a pydantic dump."""
    from twin.scenario.state import StateError

    dates = ["2026-01-04T12:01:00+00:00", "2026-07-01T00:00:00+00:00", "2027-02-08T00:00:00+00:00"]
    coarse = MirrorConfig(tick_s=86_400.0, checkpoint_s=864_000.0)  # a day a tick: fast
    mirror = Mirror(scenario, coarse).consume(events_of(parked_then(*dates)))
    with pytest.raises(StateError, match=r"car S1 has been on bay P1-C0001 for 399 days"):
        mirror.state()
    fine = Mirror(scenario, coarse).consume(events_of(parked_then(*dates[:2])))
    assert fine.state().lots[0].sessions[0].elapsed_min == pytest.approx(177.5 * 1440, abs=1)


# -- the API and the command ----------------------------------------------------------------


@pytest.fixture(scope="module")
def short_feed(scenario, tmp_path_factory):
    path = tmp_path_factory.mktemp("feed") / "short.jsonl"
    lines = emit(scenario, days=0.75).lines
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, lines


def test_api_mirror_replays_a_file_and_accounts_for_every_event(scenario, short_feed, tmp_path):
    path, lines = short_feed
    bad = tmp_path / "with_bad.jsonl"
    bad.write_text(path.read_text() + "{not json\n" + lines[5] + "\n", encoding="utf-8")
    live = api.mirror(bad, scenario, prediction=0, dead_letter=tmp_path / "dead.jsonl")
    feed = live.feed()
    assert feed["received"] == len(lines) + 2
    assert feed["applied"] == len(lines)
    assert feed["by_reason"] == {"malformed_json": 1, "duplicate": 1}
    assert live.mirror.summary()["applied"] == len(lines)
    dead = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert [d["reason"] for d in dead] == ["malformed_json", "duplicate"]
    # the same state as folding the events directly
    assert live.mirror.fingerprint() == Mirror(scenario).consume(events_of(lines)).fingerprint()
    # and its state starts a forecast: every car on a bay is a session of the state
    state = live.mirror.state()
    assert state.n_sessions >= live.mirror.summary()["occupied"]


def test_api_mirror_calibrates_thresholds_on_null_replications(scenario, short_feed):
    """null_replications adds fault-free replications for the thresholds only: the prediction
    the feed is compared with is the same (common random numbers: the first ones are shared)."""
    from twin.live.divergence import for_scenario

    path, _ = short_feed
    live = api.mirror(path, scenario, prediction=2, null_replications=3, seed=7)
    pred = live.mirror.fold.divergence.prediction
    assert (pred.replications, pred.replicas.replications) == (2, 3)
    alone = for_scenario(scenario, 2, seed=7).prediction
    assert alone.replicas.replications == 2
    assert (pred.entries_mean == alone.entries_mean).all()
    assert (pred.revenue_mean == alone.revenue_mean).all()
    for bad, message in ((1, "must be >= 2"), (2.5, "whole number"), (True, "whole number")):
        with pytest.raises(ValueError, match=message):
            api.mirror(path, scenario, prediction=2, null_replications=bad)
    with pytest.raises(ValueError, match="needs a prediction"):
        api.mirror(path, scenario, prediction=0, null_replications=40)


def test_live_command_replays_and_writes_a_report(short_feed, tmp_path):
    from typer.testing import CliRunner

    from cli import app

    path, _ = short_feed
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "live",
            "scenarios/downtown_garage.yaml",
            "--replay",
            str(path),
            "--replications",
            "2",
            "--null-replications",
            "3",
            "--hours",
            "1",
            "--report",
            str(out),
        ],
        env={"COLUMNS": "120"},
    )
    assert result.exit_code == 0, result.output
    assert "applied" in result.output and "forecast" in result.output
    page = (out / "index.html").read_text()
    assert "Alerts" in page and "data:image/png;base64," in page
    for png in ("occupancy.png", "arrivals_revenue.png", "forecast.png"):
        assert (out / png).stat().st_size > 10_000


def test_live_command_refuses_a_feed_dated_years_away_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    path = tmp_path / "century.jsonl"
    path.write_text("\n".join(parked_then("2126-01-04T12:01:00+00:00")) + "\n")
    result = CliRunner().invoke(
        app,
        ["live", "scenarios/downtown_garage.yaml", "--replay", str(path), "--replications", "0"],
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "century.jsonl" in lines[0] and "36,524 days after" in lines[0]


@pytest.mark.parametrize("kind", ["empty", "all set aside"])
def test_live_command_with_nothing_to_mirror_says_so_and_exits_1(short_feed, tmp_path, kind):
    """An empty feed, or one whose every event is set aside, used to print the board of an
    empty lot at the scenario's start and exit 0: a quiet lot, to a duty manager's script."""
    from typer.testing import CliRunner

    from cli import app

    _, lines = short_feed
    path = tmp_path / "feed.jsonl"
    dead = tmp_path / "dead.jsonl"
    if kind == "empty":
        path.write_text("")
    else:  # a wrong schema version and a broken line: both refused
        path.write_text(lines[0].replace("{", '{"v":9,', 1) + "\n{not json\n")
    args = [
        "live",
        "scenarios/downtown_garage.yaml",
        "--replay",
        str(path),
        "--replications",
        "0",
        "--dead-letter",
        dead,
    ]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    lines_out = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines_out) == 1 and "Traceback" not in result.output, result.output
    (line,) = lines_out
    assert line.startswith(f"warning: {path}: no event applied:")
    if kind == "empty":
        assert "the feed is empty (0 events read)" in line
    else:
        assert "all 2 read set aside (malformed_json 1, unsupported_version 1)" in line, line
        assert f"each with its reason in {dead}" in line
        assert len(dead.read_text().splitlines()) == 2
    # a feed with one good event among the bad is mirrored as before (exit 0)
    path.write_text(lines[0] + "\n{not json\n")
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "received 2  applied 1  dead-lettered 1" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give one of --source"),
        (["--source", "http://x:1/t"], "expected mqtt://"),
        (["--replay", "no/such/file.jsonl"], "no such feed file"),
        (["--replay", "x.jsonl", "--source", "mqtt://h:1/t"], "give one of"),
        # thresholds calibrated on fewer replications than the prediction has, or on none
        (["--replay", "x.jsonl", "--null-replications", "10"], "--null-replications must be >= 20"),
        (["--replay", "x.jsonl", "--replications", "1", "--null-replications", "1"], ">= 2"),
        (["--replay", "x.jsonl", "--replications", "0", "--null-replications", "60"], "needs a"),
        (["--replay", "x.jsonl", "--null-replications", "-3"], "must be >= 20, got -3"),
        # a forecast over 366 days used to be a ValueError traceback from the forecast
        (["--replay", "x.jsonl", "--hours", "1e7"], "--hours must be a number from 0 to 8784"),
    ],
)
def test_live_command_bad_input_is_one_line_and_exit_2(args, message):
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["live", "scenarios/downtown_garage.yaml", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_mirror_from_a_real_mosquitto_equals_the_file_replay(scenario, short_feed, broker):
    pytest.importorskip("paho.mqtt")
    from parktwin.adapters.sources.mqtt import MqttPublisher
    from twin.live.mirror import open_source

    _, lines = short_feed
    lines = lines[:6000]
    try:
        url = f"mqtt://127.0.0.1:{broker.port}/lot/feed"
        source = open_source(url, idle_s=3.0, client_id="mirror-test")
        source.start()
        assert source.connected.wait(10)
        pub = MqttPublisher("127.0.0.1", broker.port, "lot/feed")
        for line in lines:
            pub.publish(line)
        assert pub.close() == 0
        # published as fast as possible, a day's feed arrives in seconds: receive times say
        # nothing about the devices' clocks here, so the clock checks are off
        relaxed = Intake(tolerances=Tolerances(future_s=math.inf, skew_s=math.inf))
        live = api.mirror(source, scenario, prediction=0, intake=relaxed)
    finally:
        broker.stop()
    assert live.feed()["applied"] == len(lines), live.feed()
    assert live.mirror.fingerprint() == Mirror(scenario).consume(events_of(lines)).fingerprint()


def test_closed_and_unknown_readings_take_a_bay_out_until_it_reads_again(scenario):
    from parktwin.adapters.events import parse_obj

    def reading(n, minute, status):
        return parse_obj(
            {
                "kind": "spot_reading",
                "id": f"r{n}",
                "refDevice": "sensor-P1-R0001",
                "spaceId": "P1-R0001",
                "status": status,
                "dateObserved": (scenario.start + timedelta(minutes=minute)).isoformat() + "+00:00",
            }
        )

    mirror = Mirror(scenario)
    p1 = lambda: next(r for r in mirror.levels() if r["level"] == "P1")  # noqa: E731
    before = p1()
    mirror.consume([reading(1, 1, "closed")])
    closed = p1()
    assert (closed["held"], closed["free"]) == (before["held"] + 1, before["free"] - 1)
    # a bay the lot closed itself (another owner's claim) is not reopened by the feed
    mirror.fold.lot.claim(mirror.fold.spot_of["P1-R0001"], 3, 60.0, "operator")
    mirror.consume([reading(2, 2, "free")])
    assert p1()["held"] == before["held"] + 1
    mirror.fold.lot.claim(mirror.fold.spot_of["P1-R0001"], 0, 180.0, "operator")
    assert p1() == before
    mirror.consume([reading(3, 4, "unknown")])
    assert p1()["held"] == before["held"] + 1
    mirror.consume([reading(4, 5, "occupied")])  # a car with no gate session: an orphan
    assert p1()["held"] == before["held"] and p1()["occupied"] == before["occupied"] + 1
    assert mirror.summary()["anomalies"] == {"closed_reading": 1, "unknown_reading": 1}
