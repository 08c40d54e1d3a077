"""`parktwin optimize`: search tariff parameters for an objective (tables and heading in
twin/views/optimize.py; the search in twin/optimize.py)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .common import api, app, err_console, fail, hold_out, load_or_exit, wide_console


class ObjectiveName(StrEnum):
    revenue = "revenue"
    occupancy_target = "occupancy-target"
    blocking = "blocking"


class SearchMethod(StrEnum):
    grid = "grid"
    scipy = "scipy"


@app.command()
def optimize(
    ctx: typer.Context,
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file with a tariff: section.")],
    objective: Annotated[
        ObjectiveName,
        typer.Option(
            help="revenue: maximise revenue per day (with --max-blocking as a constraint). "
            "occupancy-target: bring occupancy in the busy window to --target. blocking: "
            "turn the fewest drivers away (blocked + reneged) while earning at least "
            "--min-revenue."
        ),
    ] = ObjectiveName.revenue,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="KEY=LOW:HIGH",
            help="A numeric tariff key (dotted, as in the file) and its range, money in "
            "dollars (examples above). Repeat for more keys. Default: tariff.per_period from "
            "half to three times its current value.",
            show_default=False,
        ),
    ] = None,
    target: Annotated[
        float,
        typer.Option(
            help="occupancy-target: the occupancy to aim for, as a fraction (Shoup: 0.85)."
        ),
    ] = 0.85,
    window: Annotated[
        str | None,
        typer.Option(
            metavar="'DAYS HH:MM-HH:MM'",
            help="Days and hours in which occupancy is measured for the target, e.g. "
            "'weekdays 11:00-15:00' or '12:00-16:00' (every day). Default: the busiest 4 "
            "consecutive hours of the busier day type at the current tariff.",
            show_default=False,
        ),
    ] = None,
    max_blocking: Annotated[
        float | None,
        typer.Option(
            help="revenue: at most this % of drivers turned away (blocked + reneged), on "
            "average. Points above it are penalised by a day's current revenue per point over.",
            show_default=False,
        ),
    ] = None,
    min_revenue: Annotated[
        float | None,
        typer.Option(
            help="blocking: earn at least this many $/day. Default: the current tariff's "
            "revenue; 0 for no floor.",
            show_default=False,
        ),
    ] = None,
    replications: Annotated[
        int, typer.Option(help="Paired replications per tariff (the same ones for every tariff).")
    ] = 5,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed shared by every tariff; default: the scenario's.", min=0),
    ] = None,
    method: Annotated[
        SearchMethod,
        typer.Option(
            help="grid: every combination of --grid-points values per key. scipy: bounded "
            "Brent (one key, plus both ends) or Nelder-Mead (several keys), --max-evals calls."
        ),
    ] = SearchMethod.grid,
    grid_points: Annotated[int, typer.Option(help="grid: values per key, ends included.")] = 7,
    max_evals: Annotated[
        int, typer.Option(help="scipy: objective calls at most (repeated points are cached).")
    ] = 30,
    days: Annotated[
        float | None,
        typer.Option(help="Simulated days per replication; default: the scenario's horizon."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for optimize.csv (one row per tariff, every figure with its 95% CI), "
            "optimize.json and optimize.png (1 or 2 keys).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Search tariff parameters for an objective: which price does what you want, and how sure?

    Every tariff tried runs with the same seed and replication indexes, so each replication
    sees the same drivers under every tariff (common random numbers): the search is
    deterministic, and differences between tariffs are paired, with 95% paired t intervals.
    Prints every tariff simulated (best first), whether the best is distinguishable from the
    runner-up, and the best against the current tariff (paired verdicts). See docs/optimize.md.

    Ranges (`-p KEY=LOW:HIGH`), e.g.: `tariff.per_period=0.5:6.0`, `tariff.daily_max=10:40`,
    `tariff.bands.0.per_period=1:8`, `tariff.free_minutes=0:60`.
    """
    sc = load_or_exit(scenario)
    hold_out(ctx, out)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(
            *columns, console=err_console, transient=True, disable=not err_console.is_terminal
        ) as bar:
            task = bar.add_task("current tariff", total=None)

            def progress(done: int, total: int, label: str) -> None:
                bar.update(task, completed=done, total=total, description=label or "tariffs")

            result = api.optimize(
                sc,
                objective.value,
                param or [],
                method=method.value,
                grid_points=grid_points,
                max_evals=max_evals,
                replications=replications,
                seed=seed,
                days=days,
                target=target,
                window=window,
                max_blocking=max_blocking,
                min_revenue=min_revenue,
                progress=progress,
            )
    except (api.OptimizeError, api.ScenarioError) as exc:
        fail(exc.problems, getattr(exc, "source", str(scenario)))
    except ValueError as exc:
        fail([str(exc)], str(scenario))
    from twin.views.optimize import OPTIMIZE_TABLE_ROWS, optimize_heading, optimize_tables

    wide = wide_console()
    wide.print(optimize_heading(result), highlight=False, soft_wrap=True)
    tables = optimize_tables(result)
    wide.print(tables[0])
    if len(result.table) > OPTIMIZE_TABLE_ROWS:
        wide.print(
            f"[dim]… {len(result.table) - OPTIMIZE_TABLE_ROWS} more in optimize.csv (--out)[/]"
        )
    wide.print(tables[1])
    for line in result.statements():
        wide.print(f"• {escape(line)}", highlight=False, soft_wrap=True)
    for line in result.notes:
        wide.print(f"[yellow]note[/]: {escape(line)}", highlight=False, soft_wrap=True)
    if out is not None:
        try:
            written = result.write(out)
        except OSError as exc:
            fail([f"cannot write to {out}: {exc.strerror or exc}"])
        wide.print(
            f"wrote {', '.join(p.name for p in written)} to {escape(str(out))}/",
            highlight=False,
            soft_wrap=True,
        )
