"""MQTT feed benchmark: events/s the twin takes from a local Mosquitto (QoS 1, persistent
session, manual acknowledgements, dedupe by id), with the CPU time it costs.

The broker is a Mosquitto of our own on a free port (``Broker`` from tests/conftest.py:
persistence on, queued messages unlimited, default ``max_inflight_messages``). The feed is
the downtown garage's emitted day (``parktwin emit``: gate, plate, bay, heartbeat, counter
and payment events in their real mix and size), published at QoS 1 by ``MqttPublisher`` in
a separate process (as ``parktwin emit --mqtt`` does), as fast as it goes.

Two ways the twin meets the feed:

  live     the twin is subscribed while the feed is published: events/s from its first
           event to the last one applied (publisher, broker and twin all working);
  backlog  the twin was away (persistent session): the broker holds the whole feed and the
           twin drains it when it comes back (from its start to the last event applied).

The twin's side is what ``parktwin live --source mqtt://...`` runs: ``MqttSource`` →
``Intake`` (schema, dedupe, order checks) → the mirror (``--sink mirror``, the default) or
the intake alone (``--sink intake``). Each run checks that every event was applied exactly
once. CPU times come from the processes themselves (twin: ``time.process_time``; publisher:
its rusage; broker: /proc/PID/stat), so they hold up better than wall time on a loaded
machine; the load average is printed with each run. ``per cpu-s`` is events per second of
the twin's CPU: the rate a twin with a core of its own would reach if nothing else limited it.

    python benchmarks/bench_mqtt.py [--days 1] [--repeat 3] [--mode live backlog] [--sink mirror]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

TARGET = 5_000
TOPIC = "bench/events"


def _publish(address: str, path: str) -> None:
    """The publisher process: every line of ``path`` at QoS 1, then wait for every PUBACK."""
    from parktwin.adapters.sources.mqtt import MqttPublisher, parse_address

    host, port = parse_address(address)
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    pub = MqttPublisher(host, port, TOPIC, client_id="bench-emit")
    for line in lines:
        pub.publish(line)
    missing = pub.close(timeout=300)
    if missing:
        sys.exit(f"publisher: {missing} events not acknowledged by the broker")


def _broker_cpu(pid: int) -> float:
    """utime + stime of a process, seconds (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    """CPU seconds of the child processes waited for so far (the publishers)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _sink(kind: str):
    """(intake, apply) for one run: the intake alone, or the intake and a fresh mirror."""
    from parktwin.adapters.sources import Intake

    intake = Intake(receive_times=False)
    if kind == "intake":
        return intake, None
    from twin import api
    from twin.live.mirror import Mirror

    mirror = Mirror(api.load(ROOT / "scenarios" / "downtown_garage.yaml"))
    return intake, mirror.offer


def one_run(
    mode: str, sink: str, feed: Path, n: int, client: str, inflight: int | None
) -> dict[str, float]:
    """One publish + consume against a fresh broker; the figures of the twin's side."""
    from conftest import Broker

    from parktwin.adapters.sources.mqtt import MqttSource

    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp))
        if inflight is not None:
            with broker.conf.open("a") as conf:
                conf.write(f"max_inflight_messages {inflight}\n")
        broker.start()
        try:
            assert broker.proc is not None
            broker_pid = broker.proc.pid
            source = MqttSource("127.0.0.1", broker.port, TOPIC, client_id=client, idle_s=30)
            source.start()
            if not source.connected.wait(10):
                raise RuntimeError("the twin did not connect to the broker")
            pub_cmd = [sys.executable, __file__, "--publish", f"127.0.0.1:{broker.port}", str(feed)]
            pub_cpu0 = _children_cpu()
            broker_cpu0 = _broker_cpu(broker_pid)
            if mode == "backlog":
                source.stop()  # subscribed, then away: the broker queues the feed for it
                subprocess.run(pub_cmd, check=True)
                source = MqttSource("127.0.0.1", broker.port, TOPIC, client_id=client, idle_s=30)
                publisher = None
            else:
                publisher = subprocess.Popen(pub_cmd)
            intake, apply = _sink(sink)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            first = None
            for event in intake.events(source):
                if first is None:
                    first = time.perf_counter()
                if apply is not None:
                    apply(event)
                if intake.applied == n:
                    break
            wall1, cpu1 = time.perf_counter(), time.process_time()
            source.stop()
            if publisher is not None and publisher.wait(timeout=300) != 0:
                raise RuntimeError("the publisher failed")
            if intake.applied != n or intake.received != n:
                raise RuntimeError(f"applied {intake.applied} of {n} ({intake.report()})")
            start = first if mode == "live" and first is not None else wall0
            return {
                "wall": wall1 - start,
                "cpu": cpu1 - cpu0,
                "pub_cpu": _children_cpu() - pub_cpu0,
                "broker_cpu": _broker_cpu(broker_pid) - broker_cpu0,
                "load": os.getloadavg()[0],
            }
        finally:
            if broker.proc is not None:
                broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=1.0, help="simulated days of feed")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mode", nargs="+", default=["live", "backlog"], choices=["live", "backlog"])
    ap.add_argument("--sink", default="mirror", choices=["mirror", "intake"])
    ap.add_argument(
        "--inflight",
        type=int,
        help="the broker's max_inflight_messages (default: Mosquitto's own, 20; 0: no limit)",
    )
    ap.add_argument("--publish", nargs=2, metavar=("HOST:PORT", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publish:
        _publish(*args.publish)
        return
    from twin import api
    from twin.live.emit import emit

    lines = emit(api.load(ROOT / "scenarios" / "downtown_garage.yaml"), days=args.days).lines
    n = len(lines)
    window = "Mosquitto's default" if args.inflight is None else args.inflight
    print(
        f"feed: downtown garage, {args.days:g} day(s), {n:,} events; sink: {args.sink};"
        f" broker max_inflight_messages: {window}"
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{'mode':8} {'run':>3} {'wall s':>7} {'events/s':>9} {'twin cpu s':>10}"
        f" {'µs/event':>8} {'per cpu-s':>9} {'pub cpu s':>9} {'broker cpu s':>12} {'load':>5}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        feed = Path(tmp) / "feed.jsonl"
        feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
        for mode in args.mode:
            rates = []
            for r in range(args.repeat):
                f = one_run(mode, args.sink, feed, n, f"bench-twin-{mode}-{r}", args.inflight)
                rate = n / f["wall"]
                rates.append(rate)
                print(
                    f"{mode:8} {r + 1:>3} {f['wall']:>7.2f} {rate:>9,.0f} {f['cpu']:>10.2f}"
                    f" {1e6 * f['cpu'] / n:>8.1f} {n / f['cpu']:>9,.0f} {f['pub_cpu']:>9.2f}"
                    f" {f['broker_cpu']:>12.2f}"
                    f" {f['load']:>5.2f}"
                )
            verdict = "meets" if min(rates) >= TARGET else "misses"
            print(
                f"{mode:8} best {max(rates):,.0f}, median {statistics.median(rates):,.0f},"
                f" worst {min(rates):,.0f} events/s: {verdict} the target of {TARGET:,}"
            )


if __name__ == "__main__":
    main()
