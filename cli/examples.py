"""`parktwin examples`: list or copy the shipped scenarios, studies and sweeps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from twin import installed

from .common import app, console, fail


@app.command()
def examples(
    copy: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Copy every example to DIR (keeping its studies/, sweeps/ and scale/ folders) "
            "to run or edit; never overwrites a file.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """List the example scenarios, studies and sweeps shipped with ParkTwin, or copy them.

    `parktwin examples --copy my_lots` then `parktwin run my_lots/surface_lot.yaml`. The
    regression gate (`parktwin regress`) and `parktwin locking` use the shipped files by default.
    """
    if copy is not None:
        try:
            installed.copy_examples(copy)
        except installed.ExamplesError as exc:
            fail([str(exc)])
    console.print(installed.examples_table(copy))
    if copy is None:
        console.print("Copy them with `parktwin examples --copy DIR` to run or edit them.")
