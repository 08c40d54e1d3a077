"""What every command shares: the typer `app`, the consoles, the lazily imported `twin.api`,
the options of commands that run replications, and the one-line error helpers (exit code 2).

Command modules (cli/run.py, cli/compare.py, ...) import from here and register their commands
on `app`; cli/__init__.py imports them all. Kept free of heavy imports: `parktwin --help`
loads this module and every command module (tests/cli/test_startup.py).
"""

from __future__ import annotations

import importlib.util
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

import twin
from twin.executors import ExecutorName
from twin.outputs import OutputError, claim

if TYPE_CHECKING:
    from twin import api
else:
    # `parktwin --help` and `--version` must not wait ~1 s for scipy, pandas and pydantic:
    # twin.api is executed at a command's first `api.` lookup (tests/cli/test_startup.py).
    _spec = importlib.util.find_spec("twin.api")
    _spec.loader = importlib.util.LazyLoader(_spec.loader)
    api = sys.modules.setdefault("twin.api", importlib.util.module_from_spec(_spec))
    if api.__spec__ is _spec:
        _spec.loader.exec_module(api)

__all__ = [
    "ExecutorOption",
    "Format",
    "SchedulerOption",
    "WorkersOption",
    "api",
    "app",
    "console",
    "err_console",
    "executor_or_exit",
    "fail",
    "hold_out",
    "load_or_exit",
    "start_state_or_exit",
    "wide_console",
]

app = typer.Typer(
    help="ParkTwin: simulate parking facilities to plan capacity, allocation and pricing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # reflow docstring paragraphs to the terminal's width
)
console = Console()
err_console = Console(stderr=True)


#: Options shared by every command that runs replications (run, sweep).
#: ``--columns`` of an occupancy series (calibrate occupancy, backtest).
SERIES_COLUMNS = (
    "Which CSV column holds what, as ROLE=COLUMN pairs joined by commas (no spaces); roles: "
    "time, occupied, capacity (required) and site (one series per site)"
)

ExecutorOption = Annotated[
    ExecutorName | None,
    typer.Option(
        help="Where runs execute: serial (this process), processes (a local pool) or dask "
        "(a local cluster, or --scheduler). The numbers are the same with each."
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(help="Worker processes (processes: default all cores; dask: 2).", min=1),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        metavar="ADDRESS",
        help="Dask scheduler to use, e.g. tcp://10.0.0.5:8786 (implies --executor dask).",
    ),
]


class Format(StrEnum):
    parquet = "parquet"
    csv = "csv"


def _print_version(value: bool) -> None:
    if value:
        console.print(f"parktwin {twin.__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """ParkTwin: simulate parking facilities to plan capacity, allocation and pricing.

    Describe a facility and its demand in a YAML scenario (`parktwin examples --copy DIR`
    copies the shipped ones to start from; see the README), then `parktwin run SCENARIO`.
    """


def load_or_exit(path: Path, overrides: dict | None = None) -> api.Scenario:
    """The scenario at ``path``, or one line per problem naming the file and exit 2."""
    try:
        return api.load(path, overrides)
    except api.ScenarioError as exc:
        fail(exc.problems, exc.source)


def fail(lines: list[str], source: str | None = None) -> NoReturn:
    """Print user errors one per line and exit 2 (the CLI's code for 'fix your input')."""
    for line in lines:
        where = f"{escape(source)}: " if source else ""
        err_console.print(
            f"[bold red]error[/]: {where}{escape(line)}", highlight=False, soft_wrap=True
        )
    raise typer.Exit(code=2)


def hold_out(
    ctx: typer.Context, out: Path | None, run_overwrite: bool | None = None, option: str = "--out"
) -> None:
    """Claim ``--out`` (or the ``option`` named) for the rest of the command, before anything
    is simulated: a path that cannot be a folder, a folder another process is writing, or
    (``run``) a folder holding another run without ``--overwrite`` ends the command at once
    with one line (exit 2).
    The claim (:func:`twin.outputs.claim`) is released when the command ends, however it ends.
    """
    if out is None:
        return
    try:
        ctx.with_resource(claim(out, option))
        if run_overwrite is not None:
            from twin.experiments import prepare_run_folder

            prepare_run_folder(out, run_overwrite)
    except OutputError as exc:
        fail([str(exc)])


def executor_or_exit(
    name: ExecutorName | None, workers: int | None, scheduler: str | None
) -> api.Executor | None:
    """The executor the options ask for; None for serial (then `run` keeps its fine progress)."""
    try:
        executor = api.make_executor(name, workers=workers, scheduler=scheduler)
    except api.ExecutorError as exc:
        fail([str(exc)])
    return None if executor.name == "serial" else executor


def wide_console() -> Console:
    """CI logs are not terminals (rich assumes 80 columns there): give wide tables room."""
    return console if console.is_terminal else Console(width=max(console.width, 150))


def start_state_or_exit(sc: api.Scenario, start_state: str, keep_warmup: bool) -> api.Scenario:
    """The scenario beginning from ``--start-state``; a bad state file exits 2 with one line."""
    state = start_state if start_state in ("steady", "empty") else Path(start_state)
    try:
        return api.start_from(sc, state, warmup_hours=sc.warmup_hours if keep_warmup else 0.0)
    except api.StateError as exc:
        fail([str(exc)])
