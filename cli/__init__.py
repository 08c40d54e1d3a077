"""`parktwin`: command-line front end. Thin on purpose: every command parses its arguments,
calls twin.api and prints what twin/views/ makes of the result.

Installed as `parktwin.cli` (the repository's `cli/` package); tests import it as `cli`.

    cli/common.py    the typer `app`, consoles, lazy `twin.api`, shared options and the
                     one-line error helpers (fail, hold_out, load_or_exit, executor_or_exit)
    cli/<command>.py one module per command (or typer sub-app), registering itself on `app`:
                     run, regress, report, compare, sweep, locking, optimize, emit, examples,
                     calibrate (the `calibrate tickets|occupancy` sub-app), backtest, replay

Presentation (rich tables, note lines) lives in twin/views/<command>.py, imported lazily by
the command; argument handling that is domain logic lives in twin (e.g. twin.api.parse_grid,
twin.sim.locking_study.choose_strategies).

A new command is a new module here, imported below (the order is the order of `--help`).
"""

from __future__ import annotations

import sys

from rich.markup import escape

from twin import installed

# Each module registers its commands on `app`; `--help` lists them in this order.
# isort: off
from . import run, regress, report, compare, sweep, locking, optimize  # noqa: F401
from . import emit, live, examples, calibrate, backtest, replay  # noqa: F401

# isort: on
from .common import app, console, err_console
from .locking import DEFAULT_LOCKING_STUDY

__all__ = ["DEFAULT_LOCKING_STUDY", "app", "console", "console_main", "err_console"]


def console_main() -> None:
    """The `parktwin` command: the app, plus a one-line hint instead of a traceback when a
    command needs an optional extra that is not installed (the base install is light)."""
    try:
        app()
    except Exception as exc:
        message = installed.missing_extra(exc)
        if message is None:
            raise
        err_console.print(f"[bold red]error[/]: {escape(message)}", highlight=False)
        sys.exit(2)
