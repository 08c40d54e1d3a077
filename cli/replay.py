"""`parktwin replay`: a recorded gate log's actual cars run through the model (issue 11)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .common import api, app, fail, hold_out, load_or_exit, wide_console


@app.command("replay")
def replay_command(
    ctx: typer.Context,
    log: Annotated[
        Path, typer.Argument(help="Recorded feed (JSONL/CSV of feed events) or ticket export.")
    ],
    scenario: Annotated[Path, typer.Option(help="Scenario YAML (one lot) to replay through.")],
    mapping: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.yaml",
            help="Column mapping of a foreign ticket export (see adapters/sources/mapping.py).",
            show_default=False,
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="A change to replay under too, e.g. tariff.per_period=2 (repeatable).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Write days.csv, trace.csv, summary.json and dead_letter.jsonl here.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed for what the log does not say.", show_default=False)
    ] = None,
) -> None:
    """Replay a recorded gate log's actual cars (arrivals AND stays) through the scenario as
    it is and, with --set, through the changed scenario; print per day the log beside both
    replays: arrivals, parked, turned away, revenue, mean and peak occupancy."""
    from twin.compare import parse_sets
    from twin.live.replay import ReplayError

    try:
        changes = parse_sets(set_ or [])
    except ValueError as exc:
        fail([str(exc)])
    base = load_or_exit(scenario)
    if changes:
        load_or_exit(scenario, changes)  # a bad --set is one line before anything is read
    hold_out(ctx, out)
    try:
        result = api.replay(
            log,
            base if not changes else scenario,
            changes=changes,
            mapping=mapping,
            out=out,
            seed=seed,
        )
    except (ReplayError, api.ScenarioError, ValueError) as exc:
        fail(str(exc).splitlines()[:1])
    from twin.views.replay import replay_notes, replay_table

    console = wide_console()
    console.print(replay_table(result))
    for line in replay_notes(result):
        console.print(escape(line), highlight=False)
    if out is not None:
        console.print(f"Wrote days.csv, trace.csv and summary.json to {escape(str(out))}")
