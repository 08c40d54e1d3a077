"""`parktwin compare`: scenario B against A with common random numbers (table in
twin/views/compare.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .common import api, app, err_console, fail, hold_out, load_or_exit, wide_console


@app.command()
def compare(
    ctx: typer.Context,
    a: Annotated[Path, typer.Argument(help="Scenario A, the reference (YAML file).")],
    b: Annotated[
        Path | None,
        typer.Argument(help="Scenario B (YAML file); default: A with the --set changes."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Change a setting of B: KEY=VALUE with a dotted key as in the scenario file, "
            "e.g. facility.strategy=spread, tariff.per_period=3, demand.0.multiplier=1.2 "
            "(values read as YAML). Repeatable. Applied to B's file, or to A's without B.",
        ),
    ] = None,
    replications: Annotated[
        int | None,
        typer.Option(help="Paired replications of each; default: A's replications.", min=2),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed both scenarios share; default: A's.", min=0)
    ] = None,
    days: Annotated[
        float | None, typer.Option(help="Simulated days for both; overrides horizon_days.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for comparison.csv (every figure) and comparison.json."),
    ] = None,
) -> None:
    """Compare scenario B against A: what does the change do, and is it more than noise?

    Both run with the same seed and replication indexes, so each replication of A and of B sees
    the same drivers (common random numbers). For every figure the paired differences B − A
    give a mean and a 95% paired t interval, and each headline figure gets a verdict: raised or
    lowered by so much, or unchanged within a bound the data can vouch for. Units: percentage
    points for % figures and occupancy, $/day for revenue, seconds for lane waits.
    """
    from twin.compare import describe_sets, load_variant, parse_sets
    from twin.views.compare import comparison_table
    from twin.views.run import unreliable_note

    try:
        overrides = parse_sets(set_ or [])
    except ValueError as exc:
        fail([str(exc)])
    if b is None and not overrides:
        fail(["give a second scenario B or at least one --set KEY=VALUE"])
    sc_a = load_or_exit(a)
    b_path = a if b is None else b
    try:
        sc_b = load_variant(b_path, overrides)
    except api.ScenarioError as exc:
        fail(exc.problems, exc.source)
    hold_out(ctx, out)
    label_a = str(a)
    label_b = describe_sets(str(b_path), overrides)
    reps = replications or sc_a.replications
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(
            *columns, console=err_console, transient=True, disable=not err_console.is_terminal
        ) as bar:
            task = bar.add_task(f"A and B: {reps} replications each", total=2 * reps)

            def progress(k: int, fraction: float) -> None:
                bar.update(task, completed=k + fraction)

            comparison = api.compare(
                sc_a,
                sc_b,
                replications=replications,
                seed=seed,
                days=days,
                label_a=label_a,
                label_b=label_b,
                progress=progress,
            )
    except ValueError as exc:
        fail([str(exc)])
    wide = wide_console()
    wide.print(f"A: {escape(label_a)}", highlight=False, soft_wrap=True)
    wide.print(f"B: {escape(label_b)}", highlight=False, soft_wrap=True)
    wide.print(comparison_table(comparison))
    for line in comparison.verdicts:
        wide.print(f"• {escape(line)}", highlight=False, soft_wrap=True)
    for line in comparison.crn_lines():
        wide.print(f"[dim]{escape(line)}[/]", highlight=False, soft_wrap=True)
    for line in comparison.notes:
        wide.print(f"[yellow]note[/]: {escape(line)}", highlight=False, soft_wrap=True)
    if note := unreliable_note(comparison.table):
        wide.print(note, highlight=False, soft_wrap=True)
    if out is not None:
        written = comparison.write(out)
        wide.print(
            f"wrote {', '.join(p.name for p in written)} to {escape(str(out))}/ "
            f"({len(comparison.table)} figures)",
            highlight=False,
            soft_wrap=True,
        )
