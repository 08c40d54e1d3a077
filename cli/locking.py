"""`parktwin locking`: claim strategies under contention, simulated or on real stores
(tables in twin/views/locking.py; docs/locking.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from twin import installed

from .common import Format, api, app, console, err_console, fail, hold_out, wide_console

#: The study `parktwin locking` runs without an argument (shipped with the examples).
DEFAULT_LOCKING_STUDY = installed.locking_study()


@app.command()
def locking(
    ctx: typer.Context,
    study: Annotated[
        Path | None,
        typer.Argument(
            help="Locking study YAML; default: the shipped `studies/locking_study.yaml` "
            "(`parktwin examples`).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for locking_study and locking_ceilings tables and locking_study.png."
        ),
    ] = None,
    format: Annotated[Format, typer.Option(help="Table format for --out.")] = Format.parquet,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; default: the study's.", min=0)
    ] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only this strategy (repeatable): pessimistic, optimistic, atomic, queue.",
            metavar="NAME",
            show_default=False,
        ),
    ] = None,
    backend: Annotated[
        list[str] | None,
        typer.Option(
            help="Measure on a real store instead of simulating (repeatable): "
            "postgres://... runs pessimistic and optimistic, redis://... atomic and queue. "
            "Needs the 'stores' extra.",
            metavar="URL",
            show_default=False,
        ),
    ] = None,
    clients: Annotated[
        int, typer.Option(min=1, help="With --backend: client processes, one connection each.")
    ] = 8,
) -> None:
    """Claim strategies under contention: how many claims per second each one sustains.

    Claims for lot/type counter units arrive as a Poisson process at each offered rate of the
    study's sweep and are decided by a pessimistic row lock, an optimistic version check with
    retries, an atomic INCR/DECR counter or a single serialising queue, with latencies from the
    study file (round trip, lock hold, DB and Redis service, back-off, consumer time). Prints
    achieved throughput, latency and conflict counts per strategy and load, and each strategy's
    ceiling: the load where it stops keeping up or breaks the p95 objective. See
    docs/locking.md. The same study and seed always give the same table.

    With --backend the same sweep runs against real PostgreSQL / Redis stores with --clients
    processes, and the tables report what was measured.
    """
    from twin.locking_live import run_study
    from twin.scenario.locking import load_locking_study
    from twin.sim.locking_study import choose_strategies
    from twin.views.locking import locking_tables

    path = study if study is not None else DEFAULT_LOCKING_STUDY
    try:
        spec = load_locking_study(path, None if seed is None else {"seed": seed})
    except api.ScenarioError as exc:
        fail(exc.problems, exc.source)
    try:
        chosen = choose_strategies(spec, strategy)
    except ValueError as exc:
        fail([str(exc)])
    hold_out(ctx, out)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, console=err_console, transient=True, disable=not err_console.is_terminal
    ) as bar:
        task = bar.add_task("locking study", total=len(chosen) * len(spec.offered_tps))

        def progress(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, description=label)

        try:
            result = run_study(
                spec,
                chosen,
                backend_urls=backend,
                only_asked=bool(strategy),
                clients=clients,
                progress=progress,
            )
        except ValueError as exc:
            fail([str(exc)])
    wide = wide_console()
    for table in locking_tables(result):
        wide.print(table)
    if out is not None:
        try:
            written = result.write(out, format.value)
        except OSError as exc:
            fail([f"cannot write to {out}: {exc.strerror or exc}"])
        console.print(
            f"wrote {', '.join(p.name for p in written)} to {escape(str(out))}/",
            highlight=False,
            soft_wrap=True,
        )
