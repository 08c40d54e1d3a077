"""`parktwin run`: simulate a scenario and print its figures (tables in twin/views/run.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .common import (
    ExecutorOption,
    Format,
    SchedulerOption,
    WorkersOption,
    api,
    app,
    console,
    err_console,
    executor_or_exit,
    fail,
    hold_out,
    load_or_exit,
    start_state_or_exit,
)


@app.command()
def run(
    ctx: typer.Context,
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file (see scenarios/).")],
    seed: Annotated[
        int | None, typer.Option(help="Random seed; default: the scenario's.", min=0)
    ] = None,
    days: Annotated[
        float | None, typer.Option(help="Simulated days; overrides horizon_days.")
    ] = None,
    replications: Annotated[
        int | None, typer.Option(help="Independent replications; default: the scenario's.", min=1)
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the vehicles, occupancy and lanes tables and summary.json."),
    ] = None,
    format: Annotated[Format, typer.Option(help="Table format for --out.")] = Format.parquet,
    no_vehicles: Annotated[
        bool,
        typer.Option(
            "--no-vehicles",
            help="Write no per-vehicle table to --out (memory then stays flat however many "
            "replications and days; the figures are the same). Without --out none is kept.",
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace the outputs of an earlier run in --out (only ParkTwin's own files "
            "there are deleted). Without it such a folder is refused.",
        ),
    ] = False,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    warmup: Annotated[
        str | None,
        typer.Option(
            help="Warm-up excluded from every figure: HOURS, or 'auto' to detect it with MSER-5 "
            "on the mean occupancy of 5 pilot replications. Default: the scenario's warmup_hours."
        ),
    ] = None,
    precision: Annotated[
        float | None,
        typer.Option(
            help="Instead of a fixed number of replications, add them until the 95% CI "
            "half-width of --metric is at most this (in the figure's units, e.g. 0.5 = ±0.5 "
            "percentage points of blocked_pct; with --relative a fraction of the mean). A "
            "zero-width interval (every replication the same) never counts as precise.",
        ),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="Figure --precision watches, as named in summary.json. Default: the first of "
            "blocked_pct, reneged_pct, balked_pct, occupancy.mean, revenue_per_day that varies "
            "over the first replications (the run says which).",
            show_default=False,
        ),
    ] = None,
    relative: Annotated[
        bool,
        typer.Option(
            "--relative", help="--precision is relative: half-width <= precision x |mean|."
        ),
    ] = False,
    min_replications: Annotated[
        int, typer.Option(help="With --precision: never stop before this many.", min=2)
    ] = 5,  # api.MIN_SEQUENTIAL_REPLICATIONS, spelled out to keep --help light (tested)
    max_replications: Annotated[
        int, typer.Option(help="With --precision: stop here even if the target is not met.", min=2)
    ] = 100,
    start_state: Annotated[
        str | None,
        typer.Option(
            "--start-state",
            help="Begin from a state instead of an empty lot: a JSON/YAML state file (its time "
            "becomes the start; see docs/start_state.md), or 'steady' (the lot's typical state "
            "at the start's time of day). Warm-up 0 unless --warmup is given.",
        ),
    ] = None,
) -> None:
    """Simulate SCENARIO and print arrivals, blocking, occupancy, revenue and lane waits.

    With several replications every figure comes with its 95% t confidence interval. The same
    scenario and seed always give the same numbers. With --precision the run adds replications
    until the chosen figure is known to the precision asked (replication r is always the same,
    so stopping at n gives exactly the numbers of a plain run with n replications).
    """
    sc = load_or_exit(scenario, {"warmup_hours": warmup} if warmup is not None else None)
    if start_state is not None:
        sc = start_state_or_exit(sc, start_state, warmup is not None)
    hold_out(ctx, out, run_overwrite=overwrite)
    reps = replications or sc.replications
    if precision is not None:
        reps = max_replications
    pool = executor_or_exit(executor, workers, scheduler)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(
            *columns, console=err_console, transient=True, disable=not err_console.is_terminal
        ) as bar:
            task = bar.add_task(f"{sc.name}: {reps} replication(s)", total=reps)

            def progress(r: int, fraction: float) -> None:
                bar.update(task, completed=r + fraction)

            result = api.run(
                sc,
                seed=seed,
                days=days,
                replications=replications,
                progress=progress,
                executor=pool,
                precision=precision,
                metric=metric,
                relative=relative,
                min_replications=min_replications,
                max_replications=max_replications,
                frames=kept_frames(out, no_vehicles),
            )
    except ValueError as exc:
        fail([str(exc)], str(scenario))
    except api.ExecutorError as exc:
        fail([str(exc)])
    finally:
        if pool is not None:
            pool.close()
    from twin.views.run import statistics_notes, summary_tables, unreliable_note

    for table in summary_tables(result):
        console.print(table)
    if result.replications > 1 and (note := unreliable_note(result.summary())):
        console.print(note, highlight=False, soft_wrap=True)
    notes, warnings = statistics_notes(result)
    for line in notes:
        console.print(line, highlight=False, soft_wrap=True)
    for line in warnings:
        err_console.print(line, highlight=False, soft_wrap=True)
    if result.trace_dropped:
        console.print(
            f"[yellow]note[/]: {result.trace_dropped} trace rows fell outside the horizon "
            "and were not replayed"
        )
    if out is not None:
        written = result.write(out, format.value, overwrite=overwrite)
        console.print(
            f"wrote {len(written)} files to {out}/: " + ", ".join(p.name for p in written)
        )


def kept_frames(out: Path | None, no_vehicles: bool) -> tuple[str, ...]:
    """The tables ``run`` keeps: none without --out (the terminal shows figures only, so
    memory stays flat however many replications and days), and for --out every one but the
    per-vehicle table with --no-vehicles."""
    if out is None:
        return ()
    return tuple(f for f in api.FRAMES if not (no_vehicles and f == "vehicles"))
