"""MQTT feeds against a real Mosquitto started by the test on a free port: every event
reaches the intake exactly once, also when the broker is stopped and restarted mid-feed."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("paho.mqtt")

from parktwin.adapters.sources import Intake
from parktwin.adapters.sources.mqtt import MqttPublisher, MqttSource, parse_address

if TYPE_CHECKING:
    from conftest import Broker  # the broker fixture lives in tests/conftest.py


def _events(n: int, start: int = 0) -> list[str]:
    t0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
    return [
        json.dumps(
            {
                "kind": "spot_reading",
                "id": f"ev-{i}",
                "refDevice": f"sensor-{i % 7}",
                "spaceId": f"P1-{i % 7:03d}",
                "status": "occupied" if i % 2 else "free",
                "dateObserved": (t0 + timedelta(seconds=i)).isoformat(),
            }
        )
        for i in range(start, start + n)
    ]


def test_parse_address() -> None:
    assert parse_address("mqtt://broker:1884/parking") == ("broker", 1884)
    assert parse_address("localhost:1883") == ("localhost", 1883)
    with pytest.raises(ValueError, match="port"):
        parse_address("host:abc")


def test_broker_restart_mid_feed_loses_nothing_counts_nothing_twice(broker: Broker) -> None:
    n = 4000
    topic = "lot/events"
    source = MqttSource("127.0.0.1", broker.port, topic, client_id="twin-test", idle_s=4)
    source.start()
    assert source.connected.wait(10)
    pub = MqttPublisher("127.0.0.1", broker.port, topic, client_id="emit-test")
    payloads = _events(n)
    for p in payloads[: n // 2]:
        pub.publish(p)
    time.sleep(0.05)  # part of the first half delivered, the rest in flight or queued
    broker.stop()  # mid-feed: both clients lose the connection
    for p in payloads[n // 2 :]:
        pub.publish(p)  # queued in the publisher until the broker is back
    time.sleep(0.5)
    broker.start()
    assert pub.close(timeout=60) == 0, "the broker acknowledged every publish"
    intake = Intake()
    got = [e.id for e in intake.events(source)]
    source.stop()
    assert source.connects >= 2, "the subscriber reconnected after the restart"
    assert len(got) == n and set(got) == {f"ev-{i}" for i in range(n)}
    report = intake.report()
    # Redelivered messages (if any) are dead-lettered as duplicates, never applied twice.
    assert report["applied"] == n
    assert report["received"] == n + report["by_reason"].get("duplicate", 0)
    assert set(report["by_reason"]) <= {"duplicate"}


def test_messages_wait_for_an_absent_subscriber(broker: Broker) -> None:
    """The persistent session: what is published while the twin is away is delivered when
    it comes back under the same client id."""
    topic = "lot/events"
    first = MqttSource("127.0.0.1", broker.port, topic, client_id="twin-away", idle_s=1)
    first.start()
    assert first.connected.wait(10)
    first.stop()  # subscribed, then away
    pub = MqttPublisher("127.0.0.1", broker.port, topic, client_id="emit-away")
    for p in _events(50):
        pub.publish(p)
    assert pub.close(timeout=30) == 0
    back = MqttSource("127.0.0.1", broker.port, topic, client_id="twin-away", idle_s=2)
    intake = Intake()
    got = [e.id for e in intake.events(back)]
    back.stop()
    assert sorted(got) == sorted(f"ev-{i}" for i in range(50))


def test_emit_publishes_the_same_feed_it_writes(broker: Broker, tmp_path: Path) -> None:
    """`parktwin emit --mqtt` and `--out` give the same events; the subscriber gets each once."""
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "surface_lot.yaml"
    topic = "lot/emit"
    # read after emit returns, when the broker has acknowledged every publish: what is still in
    # flight is milliseconds away, so 2 s of quiet ends the feed (as in the tests above; was 5)
    source = MqttSource("127.0.0.1", broker.port, topic, client_id="twin-emit", idle_s=2)
    source.start()
    assert source.connected.wait(10)
    out = tmp_path / "feed.jsonl"
    # the command through its app in this process (a new interpreter cost ~2 s of CPU start-up);
    # it publishes with its own client and connection, as `parktwin emit --mqtt` does
    from typer.testing import CliRunner

    from cli import app

    args = ["emit", str(scenario), "--days", "1", "--heartbeat-min", "60"]
    args += ["--mqtt", f"127.0.0.1:{broker.port}", "--topic", topic, "--out", str(out)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    # A simulated day sent in seconds: its observed times are not wall-clock times.
    intake = Intake(receive_times=False)
    got = [e.id for e in intake.events(source)]
    source.stop()
    written = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert len(got) == len(written) and set(got) == set(written)
    assert intake.report()["dead_lettered"] == 0


@pytest.mark.parametrize("stop_after", [10, 25])
def test_payloads_not_yet_applied_come_back_after_a_twin_restart(
    broker: Broker, stop_after: int
) -> None:
    """Acknowledged only once applied (manual acks, in batches of ``ack_every`` = 10): a twin
    that stops with payloads still in its inbox gets them again under the same client id;
    applied ones are not resent, also when it stops past a batch's acknowledgement."""
    topic = "lot/crash"
    first = MqttSource("127.0.0.1", broker.port, topic, client_id="twin-crash", idle_s=2)
    first.start()
    assert first.connected.wait(10)
    pub = MqttPublisher("127.0.0.1", broker.port, topic, client_id="emit-crash")
    for p in _events(50):
        pub.publish(p)
    assert pub.close(timeout=30) == 0
    deadline = time.monotonic() + 10
    while first.pending() < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    applied = []
    for raw in first:
        applied.append(json.loads(raw.payload)["id"])
        if len(applied) == stop_after:
            break  # the twin dies with this payload not yet applied (so not acknowledged)
    first.stop()
    again = MqttSource("127.0.0.1", broker.port, topic, client_id="twin-crash", idle_s=2)
    rest = [json.loads(raw.payload)["id"] for raw in again]
    again.stop()
    everything = {f"ev-{i}" for i in range(50)}
    assert set(applied) | set(rest) == everything
    assert not set(applied[:-1]) & set(rest), "acknowledged payloads were sent again"
    assert applied[-1] in rest, "the payload the twin stopped on was acknowledged"
