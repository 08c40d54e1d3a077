"""`parktwin live`: the twin of a running lot beside its feed (mirror, forecast, alerts)."""

from __future__ import annotations

import gc
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .common import app, console, err_console, fail, hold_out, load_or_exit


@app.command()
def live(
    ctx: typer.Context,
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML describing the lot (one lot).")],
    source: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Mirror a live MQTT feed: mqtt://HOST:PORT/TOPIC.",
            show_default=False,
        ),
    ] = None,
    replay: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="Replay a recorded feed (JSONL/CSV).", show_default=False
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.yaml",
            help="Column mapping of a foreign ticket export given to --replay.",
            show_default=False,
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            help="Replay pace: feed time per wall time (1: real time); default as fast as "
            "possible.",
            show_default=False,
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Write charts of actual against predicted (PNG) and an HTML page here.",
            show_default=False,
        ),
    ] = None,
    dead_letter: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.jsonl",
            help="Bad events with their reason (default: dead_letter.jsonl in the --report "
            "folder).",
            show_default=False,
        ),
    ] = None,
    replications: Annotated[
        int, typer.Option(help="Replications of the model for the prediction (0: none).", min=0)
    ] = 20,
    null_replications: Annotated[
        int | None,
        typer.Option(
            help="Fault-free replications the alert thresholds are calibrated on (default: "
            "--replications; at least that and 2). More set a budget of a few false alarms a "
            "day less noisily, at the cost of start-up time.",
            show_default=False,
        ),
    ] = None,
    hours: Annotated[float, typer.Option(help="Forecast horizon, hours (0: no forecast).")] = 4.0,
    idle: Annotated[float, typer.Option(help="MQTT: stop after this many quiet seconds.")] = 30.0,
    no_clock_checks: Annotated[
        bool,
        typer.Option(
            "--no-clock-checks",
            help="Do not judge devices' clocks by receive times (future timestamps, skew): for "
            "an MQTT feed played faster than real time (emit --speed N), whose wall-clock "
            "receive times say nothing about the devices' clocks. A --replay is stamped with "
            "its replay clock and judged at any --speed.",
        ),
    ] = False,
) -> None:
    """Mirror a running lot from its feed: levels like the lot's display boards, the forecast
    with its band and fill time, alerts where reality leaves the model, and the feed's applied
    and dead-lettered counts. `--report DIR` writes the comparison for a duty manager.

    Exit codes: 0 the feed was mirrored; 1 there was nothing to mirror (an empty feed, an MQTT
    topic silent for `--idle` seconds, or every event set aside: one line says how many were
    read and why they were set aside; no board, forecast or report); 2 bad input (one line)."""
    if (source is None) == (replay is None):
        fail(["give one of --source mqtt://HOST:PORT/TOPIC or --replay FILE"])
    if source is not None and not source.startswith("mqtt://"):
        fail([f"--source: expected mqtt://HOST:PORT/TOPIC, got '{source}'"])
    if mapping is not None and replay is None:
        fail(["--mapping goes with --replay (a foreign export file)"])
    for name, value in (("--speed", speed), ("--idle", idle)):
        if value is not None and not (math.isfinite(value) and value > 0):
            fail([f"{name} must be a number > 0, got {value:g}"])
    from twin.live.divergence import for_scenario, null_replications_problem
    from twin.live.forecast import MAX_FORECAST_HOURS

    if not (math.isfinite(hours) and 0 <= hours <= MAX_FORECAST_HOURS):
        fail([f"--hours must be a number from 0 to {MAX_FORECAST_HOURS} (366 days), got {hours:g}"])
    problem = null_replications_problem(
        replications, null_replications, name="--null-replications", of="--replications"
    )
    if problem is not None:
        fail([problem])
    if report is not None and not replications:  # said so only after the whole feed was read
        fail(["--report compares the feed with the model: it needs --replications 1 or more"])
    sc = load_or_exit(scenario)
    if len(sc.lot_specs) != 1:
        fail([f"{scenario}: live mirrors one lot; this scenario has {len(sc.lot_specs)}"])
    from rich.live import Live

    from parktwin.adapters.sources import Intake, MappingError
    from twin.live.fold import FeedGap
    from twin.live.mirror import Live as Session
    from twin.live.mirror import Mirror, open_source
    from twin.live.view import board, write_report
    from twin.scenario.state import StateError

    hold_out(ctx, report, option="--report")  # claimed (checked, locked) before anything runs
    if report is not None:
        dead_letter = dead_letter or report / "dead_letter.jsonl"
    try:
        feed = open_source(
            source or replay,
            mapping=mapping,
            speed=speed,
            idle_s=idle,  # type: ignore[arg-type]
        )
    except (FileNotFoundError, MappingError, ValueError) as exc:
        fail([str(exc)])
    divergence = None
    if replications:
        null = f", thresholds on {null_replications}" if null_replications else ""
        with console.status(f"model prediction: {replications} replications of {sc.name}{null}"):
            divergence = for_scenario(sc, replications, null_replications=null_replications)
    # Without clock checks the intake ignores receive times altogether (cheaper than infinite
    # tolerances, which still track every device's latency).
    intake = Intake(dead_letter=dead_letter, receive_times=not no_clock_checks)
    session = Session(Mirror(sc, divergence=divergence), intake)
    # What is alive now (modules, the scenario, the model's prediction) lives as long as the
    # command: frozen, the collector's full passes scan only what the feed adds (on a fast
    # replay they were a quarter of the CPU; benchmarks/bench_mirror.py).
    gc.collect()
    gc.freeze()
    live_view = Live(console=console, refresh_per_second=2, transient=speed is None)
    try:
        with live_view:
            session.run(feed, every=lambda s: live_view.update(board(s.mirror, s.feed())))
    except KeyboardInterrupt:
        session.mirror.flush()
    except FeedGap as exc:  # a feed dated years from the scenario's start or its last event
        fail([f"{source or replay}: {exc}"])
    finally:
        session.intake.close()
        if hasattr(feed, "stop"):
            feed.stop()
    if getattr(feed, "connects", None) == 0:  # an MQTT source that never reached its broker
        fail(
            [
                f"--source {source}: no connection to a broker at {feed.host}:{feed.port} "
                f"within --idle {idle:g} s (is it running, on that port?)"
            ]
        )
    nothing = session.nothing_mirrored()
    if nothing is not None:  # an empty lot at the scenario's start would look like a quiet lot
        if source is not None and not session.feed()["received"]:
            nothing = f"no event arrived within --idle {idle:g} s"
        elif dead_letter is not None and session.feed()["dead_lettered"]:
            nothing += f"; each with its reason in {dead_letter}"
        err_console.print(
            f"[bold yellow]warning[/]: {escape(str(source or replay))}: {escape(nothing)}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=1)
    forecast = None
    if hours > 0 and session.mirror.fold.kinds:
        try:
            forecast = session.mirror.forecast(hours=hours)
        except StateError as exc:  # the mirrored lot cannot start a run (a gap in the feed)
            fail([f"{source or replay}: {exc}"])
    console.print(board(session.mirror, session.feed(), forecast))
    if report is not None:
        try:
            page = write_report(session.mirror, report, session.feed(), forecast)
        except ValueError as exc:
            fail([f"--report: {exc}"])
        console.print(f"report: {escape(str(page))}")
