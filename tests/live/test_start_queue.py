"""A start state's entry queue (issue 11): cars waiting at the barrier when a run begins start
in the model's waiting line, longest-waiting first, with their patience conditioned on the time
already waited; the mirror exports the queue the feed shows (plate read, no admission yet)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from parktwin.adapters.events import parse_obj
from twin import api
from twin.scenario.dists import Lognormal
from twin.scenario.loader import validate_scenario
from twin.scenario.state import StateError
from twin.sim.build import calendar_for
from twin.sim.initial_queue import queue_drivers
from twin.sim.model import ParkingModel
from twin.sim.rng import Streams

T0 = datetime(2026, 1, 7, 9, 0)  # a Wednesday
PATIENCE = {"type": "lognormal", "mean": 60, "sd": 10, "unit": "min"}


def lot(when_full: str = "wait", patience=None) -> dict:
    """Two levels, 90 REGULAR bays (plus bays regular cars may not use); no arrivals of its
    own, so only the state's cars move."""
    return {
        "name": "queue_lot",
        "start": T0.isoformat(),
        "horizon_days": 1,
        "seed": 3,
        "facility": {
            "levels": [
                {"name": "G", "spots": {"REGULAR": 40, "HANDICAP": 4, "EV": 4}},
                {"name": "P1", "spots": {"REGULAR": 50, "COMPACT": 10}},
            ]
        },
        "behaviour": {"when_full": when_full}
        | ({"patience": patience or PATIENCE} if when_full == "wait" else {}),
        "demand": [
            {
                "name": "cars",
                "rate_per_hour": 0,
                "dwell": {"type": "exponential", "mean": 60, "unit": "min"},
            }
        ],
    }


def full_lot_state(queue: list[dict], free_after_min: float = 10.0) -> dict:
    """Every REGULAR bay taken (89 cars for 10 h, one leaving after ``free_after_min``)."""
    parked = [{"elapsed_min": 30, "remaining_min": 600} for _ in range(89)]
    parked.append({"elapsed_min": 30, "remaining_min": free_after_min})
    return {"time": T0.isoformat(), "lots": [{"sessions": parked, "queue": queue}]}


def run(data: dict, state: dict):
    sc = api.start_from(validate_scenario(data), state)
    return api.run(sc, replications=1, frames=("vehicles",)).vehicles


def test_queued_patience_is_conditioned_on_the_time_waited():
    n, waited = 1_500, 50.0
    sc = api.start_from(
        validate_scenario(lot()),
        {"time": T0.isoformat(), "lots": [{"queue": [{"waited_min": waited}] * n}]},
    )
    cols = queue_drivers(sc, sc.initial, Streams(11, 0), calendar_for(sc), 0)
    rest = cols["patience"] / 60.0
    frozen = Lognormal(type="lognormal", mean=60, sd=10, unit="min").frozen()
    cdf = lambda r: 1 - frozen.sf(waited + r) / frozen.sf(waited)  # noqa: E731
    assert stats.kstest(rest, cdf).pvalue > 0.01
    # a fresh driver's patience would be rejected: the draw is conditioned on the wait
    assert stats.kstest(rest, frozen.cdf).pvalue < 0.01
    assert (cols["arrival"] == 0).all() and np.isinf(cols["wtp_cents"]).all()


def test_a_full_lot_serves_its_queue_longest_waiting_first_and_the_rest_renege():
    queue = [{"waited_min": 2, "plate": "B"}, {"waited_min": 15, "plate": "A"}, {"since": None}]
    v = run(lot(), full_lot_state(queue))
    mine = v[v["arrival_s"] == 0].reset_index(drop=True)
    assert len(mine) == 3
    # the one bay that frees (at 10 min) goes to the car that has waited longest (15 min)
    first = mine.iloc[0]
    assert first["outcome"] == "parked" and first["entry_s"] == pytest.approx(600.0)
    # the others wait on (patience ~1 h): the only bay that comes free is that one again,
    # each time its car leaves, and it goes to the next in line; a car whose patience runs
    # out first gives up (the line keeps its order)
    for i in (1, 2):
        row = mine.iloc[i]
        if row["outcome"] == "parked":
            assert row["entry_s"] == mine.iloc[i - 1]["leave_s"]
        else:
            assert row["outcome"] == "reneged"
    # the same state and seed give the same run
    assert run(lot(), full_lot_state(queue)).equals(v)


def test_a_queue_finds_room_at_once_and_a_lot_without_waiting_turns_it_away():
    queue = [{"waited_min": 5}, {"waited_min": 1, "vehicle_class": "COMPACT"}]
    room = {"time": T0.isoformat(), "lots": [{"queue": queue}]}
    v = run(lot(), room)
    assert (v["outcome"] == "parked").all() and (v["entry_s"] == 0).all() and len(v) == 2
    # drivers of this lot do not wait: a queued car that finds no bay it fits leaves at
    # once (the COMPACT one fits a free compact bay: only the regular bays are taken)
    v = run(lot(when_full="leave"), full_lot_state(queue))
    assert v[v["arrival_s"] == 0]["outcome"].tolist() == ["blocked", "parked"]


def test_queued_cars_do_not_change_the_runs_own_drivers():
    data = lot() | {"demand": [lot()["demand"][0] | {"rate_per_hour": 30}]}
    empty = {"time": T0.isoformat(), "lots": [{}]}
    queued = {"time": T0.isoformat(), "lots": [{"queue": [{"waited_min": 3}] * 4}]}
    a = ParkingModel(api.start_from(validate_scenario(data), empty)).drivers
    b = ParkingModel(api.start_from(validate_scenario(data), queued)).drivers
    assert len(b) == len(a) + 4
    np.testing.assert_array_equal(b.arrival[4:], a.arrival)
    np.testing.assert_array_equal(b.dwell[4:], a.dwell)
    np.testing.assert_array_equal(b.patience[4:], a.patience)


@pytest.mark.parametrize(
    ("queue", "message"),
    [
        ([{"stream": "nope"}], "lots.0.queue.0.stream: unknown stream 'nope'"),
        ([{"waited_min": -1}], "lots.0.queue.0.waited_min"),
        ([{"waited_min": 1, "since": T0.isoformat()}], "give one of 'waited_min' or 'since'"),
        ([{"since": (T0 + timedelta(minutes=5)).isoformat()}], "is after the state's time"),
    ],
)
def test_bad_queues_are_one_line_errors(queue, message):
    with pytest.raises(StateError, match=message.replace("(", r"\(")) as err:
        api.start_from(
            validate_scenario(lot()), {"time": T0.isoformat(), "lots": [{"queue": queue}]}
        )
    assert "\n" not in str(err.value)


# -- the mirror's queue ------------------------------------------------------------------------
def event(kind: str, eid: str, minute: float, **fields):
    """An event ``minute`` minutes after the downtown garage's start (Sunday noon)."""
    when = datetime(2026, 1, 4, 12, 0) + timedelta(minutes=minute)
    return parse_obj(
        {"kind": kind, "id": eid, "refDevice": "cam-in", "dateObserved": f"{when}+00:00"} | fields
    )


def test_the_mirror_exports_the_cars_waiting_at_the_barrier():
    from twin.live.mirror import Mirror

    sc = api.load("scenarios/downtown_garage.yaml")
    mirror = Mirror(sc)
    start = 21 * 60.0  # Monday 09:00
    for ev in [
        event("plate_read", "a", start + 1, identifiedVehicle="A", direction="in"),
        event("plate_read", "b", start + 2, identifiedVehicle="B", direction="in"),
        event("plate_read", "c", start + 3, identifiedVehicle="C", direction="in"),
        event("gate_entry", "b-in", start + 4, identifiedVehicle="B", sessionId="SB"),
        event("plate_read", "c-out", start + 6, identifiedVehicle="C", direction="out"),
    ]:
        mirror.offer(ev)
    mirror.advance((start + 11) * 60)
    queue = mirror.state().lots[0].queue
    # at the state's time (the last event's) A has waited 5 min; B was admitted; C gave up
    assert [(q.plate, round(q.waited_min, 6)) for q in queue] == [("A", 5.0)]
    assert mirror.summary()["queue"] == 1
    # a forecast from this state starts A in the entry's waiting line
    v = api.run(api.start_from(sc, mirror.state()), days=0.05, replications=1).vehicles
    assert (v["arrival_s"] == 0).sum() >= 1
    # a car read long ago and never admitted nor seen leaving is taken as gone
    mirror.advance((start + 11) * 60 + mirror.config.queue_keep_s + 60)
    assert mirror.state().lots[0].queue == []


def test_an_emitted_feed_reports_every_driver_who_gives_up_and_leaves_no_queue():
    import json

    from parktwin.adapters.events import parse_json
    from twin.live.emit import emit
    from twin.live.mirror import Mirror, MirrorConfig

    sc = api.load("scenarios/downtown_garage.yaml")
    feed = emit(sc, days=1.5, heartbeat_min=60)
    reads = [json.loads(x) for x in feed.lines if '"kind":"plate_read"' in x]
    came = {e["identifiedVehicle"]: e["dateObserved"] for e in reads if e["direction"] == "in"}
    gone = {e["identifiedVehicle"]: e["dateObserved"] for e in reads if e["direction"] == "out"}
    entered = {json.loads(x)["identifiedVehicle"] for x in feed.lines if '"kind":"gate_entry"' in x}
    # every car read at the barrier either entered or was seen leaving the lane, not both,
    # and it leaves after it came (at once when blocked, when its patience ran out if it waited)
    assert len(gone) > 0 and set(came) == entered | set(gone) and not entered & set(gone)
    assert all(gone[p] >= came[p] for p in gone)
    assert any(gone[p] > came[p] for p in gone)  # some waited before giving up
    mirror = Mirror(sc, MirrorConfig(heartbeat_s=3600)).consume(parse_json(x) for x in feed.lines)
    assert mirror.fold.queue.gave_up == len(gone)
    assert mirror.state().lots[0].queue == []


def test_cli_run_starts_a_state_files_queue_in_the_waiting_line(tmp_path):
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from cli import app

    sc_path = tmp_path / "lot.yaml"
    sc_path.write_text(json.dumps(lot()))  # JSON is YAML
    state = tmp_path / "state.json"
    state.write_text(json.dumps(full_lot_state([{"waited_min": 4}, {"waited_min": 9}])))
    out = tmp_path / "out"
    args = ["run", str(sc_path), "--start-state", str(state), "--replications", "1"]
    result = CliRunner().invoke(app, [*args, "--days", "0.5", "--out", str(out), "--format", "csv"])
    assert result.exit_code == 0, result.output
    v = pd.read_csv(out / "vehicles.csv")
    queued = v[v["arrival_s"] == 0]
    assert len(queued) == 2
    # the car that waited longest gets the bay that frees at 10 min
    assert queued.iloc[0]["entry_s"] == pytest.approx(600.0)
