"""`parktwin emit`: a simulated lot's feed events, with scheduled faults (twin/live/emit.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .common import app, console, fail, load_or_exit, start_state_or_exit


@app.command()
def emit(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML (one lot).")],
    mqtt: Annotated[
        str | None,
        typer.Option(
            metavar="HOST:PORT", help="Publish to this MQTT broker (QoS 1).", show_default=False
        ),
    ] = None,
    topic: Annotated[str, typer.Option(help="MQTT topic.")] = "parktwin/events",
    out: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.jsonl", help="Write the feed as JSON lines.", show_default=False
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            help="Feed time per wall time (1: real time, 60: a minute a second); "
            "default as fast as possible.",
            show_default=False,
        ),
    ] = None,
    days: Annotated[
        float | None,
        typer.Option(
            help="Simulated days (default: the scenario's horizon); any length, the warm-up "
            "too is sent.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed; default: the scenario's.", show_default=False, min=0)
    ] = None,
    faults: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.yaml", help="Fault schedule (see twin/live/emit.py).", show_default=False
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.json",
            help="Ground truth of the injected faults (default: beside --out as NAME.faults.json).",
            show_default=False,
        ),
    ] = None,
    heartbeat_min: Annotated[float, typer.Option(help="Sensor heartbeat period, minutes.")] = 15.0,
    counter_min: Annotated[float, typer.Option(help="Counter snapshot period, minutes.")] = 5.0,
    start_state: Annotated[
        str | None,
        typer.Option(
            "--start-state",
            help="Begin the lot from a state instead of empty: 'steady' (its typical state at "
            "the start's time of day) or a JSON/YAML state file (docs/start_state.md); the feed "
            "then starts with those cars parked.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a simulated lot and publish its gate, sensor and payment events (MQTT or JSONL),
    with faults injected on a schedule, so the twin can be shown and tested without hardware.
    """
    from twin.live import emit as feed

    if mqtt is None and out is None:
        fail(["give --mqtt HOST:PORT or --out FILE.jsonl (or both)"])
    for name, value in (
        ("--speed", speed),
        ("--heartbeat-min", heartbeat_min),
        ("--counter-min", counter_min),
        ("--days", days),
    ):
        if value is not None and not (math.isfinite(value) and value > 0):
            fail([f"{name} must be a number > 0, got {value:g}"])
    for name, value in (("--heartbeat-min", heartbeat_min), ("--counter-min", counter_min)):
        if value < feed.MIN_PERIOD_MIN:
            fail([f"{name} must be at least {feed.MIN_PERIOD_MIN:g} minute, got {value:g}"])
    address = None
    if mqtt is not None:
        from parktwin.adapters.sources.mqtt import parse_address

        try:
            address = parse_address(mqtt)
        except ValueError as exc:
            fail([f"--mqtt: {exc}"])
    if truth is None and out is not None:
        truth = out.with_name(f"{out.stem}.faults.json")
    for flag, path in (("--out", out), ("--truth", truth)):
        # Checked before simulating: a week of the downtown garage takes seconds.
        if path is not None and (path.is_dir() or not path.parent.is_dir()):
            fail([f"{flag} {path}: must be a file in an existing folder"])
    sc = load_or_exit(scenario)
    if start_state is not None:
        sc = start_state_or_exit(sc, start_state, keep_warmup=True)
    try:
        schedule = [] if faults is None else feed.load_faults(faults, sc.start)
        emitted = feed.emit(
            sc,
            faults=schedule,
            seed=seed,
            days=days,
            heartbeat_min=heartbeat_min,
            counter_min=counter_min,
        )
    except (feed.FaultError, ValueError) as exc:
        fail([str(exc)])
    try:
        if out is not None:
            from parktwin.adapters.sources.files import write_jsonl

            write_jsonl(out, emitted.lines)
            console.print(f"wrote {len(emitted.lines):,} events to {escape(str(out))}")
        if truth is not None:
            feed.write_ground_truth(emitted, truth)
            console.print(f"fault ground truth: {escape(str(truth))} ({len(schedule)} faults)")
    except OSError as exc:
        fail([f"cannot write {exc.filename or out}: {exc.strerror or exc}"])
    if address is not None:
        from parktwin.adapters.sources.mqtt import MqttPublisher

        pub = MqttPublisher(address[0], address[1], topic)
        n = feed.send(emitted, pub.publish, speed)
        missing = pub.close()
        if missing:
            fail([f"the broker at {mqtt} did not acknowledge {missing} of {n} events"])
        console.print(f"published {n:,} events to mqtt://{escape(mqtt)}/{escape(topic)} (QoS 1)")
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(emitted.counts.items()))
    console.print(f"events by kind: {kinds}")
    if emitted.initial:
        console.print(f"the feed begins with {emitted.initial:,} cars parked (start state)")
