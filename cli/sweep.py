"""`parktwin sweep`: a grid of scenario settings with common random numbers (table in
twin/views/sweep.py; grid parsing in twin.api.parse_grid)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from .common import (
    ExecutorOption,
    SchedulerOption,
    WorkersOption,
    api,
    app,
    err_console,
    executor_or_exit,
    fail,
    hold_out,
    wide_console,
)


class RunsPerSecond(ProgressColumn):
    """Throughput of the runs finished in this session (resumed runs do not inflate it)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        text = "– runs/s" if speed is None else f"{speed:.2f} runs/s"
        return Text(text, style="progress.data.speed")


@app.command()
def sweep(
    ctx: typer.Context,
    scenario: Annotated[
        Path | None, typer.Argument(help="Scenario YAML file (or give a sweep --file).")
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            "-g",
            metavar="KEY=V1,V2,...",
            help="A scenario setting (dotted key, as in the file) and the values to try "
            "(examples above). Values are YAML scalars (quote one that holds a comma). Repeat "
            "for more keys: every combination is a point; the first key is the x axis of the "
            "plots.",
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            help="Sweep YAML file: scenario (relative to the file), grid (each key with a "
            "list of values), replications, seed, days. Options given here override its values.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the sweep: runs/ (one file per finished run), sweep.json, "
            "sweep.parquet, summary.parquet and plots/. Without it the sweep runs in memory "
            "and only prints its table (no --resume, --overwrite or --keep-occupancy)."
        ),
    ] = None,
    replications: Annotated[
        int | None,
        typer.Option(help="Replications per point; default: the scenario's.", min=1),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed shared by every point; default: the scenario's.", min=0)
    ] = None,
    days: Annotated[
        float | None, typer.Option(help="Simulated days at every point; overrides horizon_days.")
    ] = None,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the sweep stored in --out: runs already on disk are skipped. "
            "Refused if the sweep's definition (scenario, grid, seed, ...) changed.",
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Delete a sweep stored in --out and start again.")
    ] = False,
    keep_occupancy: Annotated[
        bool,
        typer.Option(
            "--keep-occupancy", help="Also keep each run's occupancy time series in runs/."
        ),
    ] = False,
    plots: Annotated[bool, typer.Option(help="Draw `plots/<figure>.png`.")] = True,
) -> None:
    """Run SCENARIO at every combination of --grid values, with common random numbers.

    Every point runs the same replications with the same seed, so points differ only by their
    settings. Each finished run is written to disk at once: an interrupted sweep continues with
    --resume. At the end: sweep.parquet (one row per point and replication), summary.parquet
    (mean and 95% CI per point and figure), plots/ and a table of the headline figures.

    Grids (`--grid KEY=V1,V2,...`), e.g.: `facility.strategy=nearest,spread`,
    `demand.0.multiplier=0.8,1.0,1.2`.
    """
    if out is None and (resume or overwrite or keep_occupancy):
        fail(["--resume, --overwrite and --keep-occupancy need --out DIR"])
    if file is None and (scenario is None or not grid):
        fail(["give SCENARIO and at least one --grid KEY=V1,V2,..., or a sweep --file"])
    try:
        grid_values = api.parse_grid(grid or [])
    except api.ScenarioError as exc:
        fail(exc.problems, exc.source)
    hold_out(ctx, out)
    pool = executor_or_exit(executor, workers, scheduler)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("runs"),
        RunsPerSecond(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    name = (file or scenario).stem  # type: ignore[union-attr]
    try:
        with Progress(
            *columns, console=err_console, transient=True, disable=not err_console.is_terminal
        ) as bar:
            task_id: list[TaskID] = []

            def progress(done: int, total: int) -> None:
                if not task_id:
                    task_id.append(bar.add_task(f"sweep {name}", total=total, completed=done))
                bar.update(task_id[0], completed=done)

            result = api.sweep(
                scenario,
                grid_values,
                out=out,
                file=file,
                replications=replications,
                seed=seed,
                days=days,
                keep_occupancy=keep_occupancy,
                executor=pool,
                resume=resume,
                overwrite=overwrite,
                plots=plots,
                progress=progress,
            )
    except api.ScenarioError as exc:
        fail(exc.problems, exc.source)
    except api.ExecutorError as exc:
        fail([str(exc)])
    except KeyboardInterrupt:
        if out is None:
            err_console.print("interrupted: nothing was saved (no --out)")
            raise typer.Exit(code=130) from None
        err_console.print(
            f"interrupted: {api.runs_on_disk(out)} finished runs are saved in {escape(str(out))}"
            "/runs; run the same command with --resume to finish the sweep",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=130) from None
    finally:
        if pool is not None:
            pool.close()
    from twin.views.sweep import sweep_table

    wide = wide_console()
    for path, reason in result.unreadable:
        wide.print(
            f"[yellow]note[/]: {escape(str(path))} was unreadable ({escape(reason)}); ran it again",
            highlight=False,
            soft_wrap=True,
        )
    wide.print(sweep_table(result))
    done = f"ran {result.ran} runs" + (
        f" ({result.skipped} already on disk)" if result.skipped else ""
    )
    if out is None:
        wide.print(f"{done}; nothing written (no --out)", highlight=False, soft_wrap=True)
        return
    wide.print(
        f"{done}; wrote {escape(str(out))}/sweep.parquet ({len(result.table)} rows), "
        f"summary.parquet and {len(result.plots)} plots in plots/",
        highlight=False,
        soft_wrap=True,
    )
