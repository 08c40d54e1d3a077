"""`parktwin report`: a self-contained HTML page of a run's results folder (twin/report.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from twin.outputs import OutputError

from .common import app, console, fail


@app.command()
def report(
    results_dir: Annotated[
        Path, typer.Argument(help="Folder written by `parktwin run SCENARIO --out DIR`.")
    ],
    scenario: Annotated[
        Path | None,
        typer.Option(
            help="The scenario YAML the run used, to split revenue by tariff band; default: "
            "`scenarios/<scenario name>.yaml` in the working folder, beside the results folder "
            "or among the shipped examples."
        ),
    ] = None,
) -> None:
    """Write RESULTS_DIR/report.html: a self-contained page to forward (charts embedded).

    It holds the run parameters, the headline figures with 95% intervals and charts (also
    saved as PNGs in RESULTS_DIR/plots/): occupancy by level and hour, occupancy over time with
    the spread of replications, arrivals and lost drivers by hour, barrier queues, revenue by
    tariff band and spot type, the intervals of the headline figures, and rate trajectories
    when the folder holds rates.parquet (adaptive pricing).
    """
    from twin.report import ReportError, build_report

    try:
        page = build_report(results_dir, scenario)
    except (ReportError, OutputError) as exc:
        fail([str(exc)])
    plots = sorted((results_dir / "plots").glob("*.png"))
    console.print(
        f"wrote {escape(str(page))} ({page.stat().st_size / 1e6:.1f} MB, self-contained) and "
        f"{len(plots)} charts in {escape(str(results_dir / 'plots'))}/",
        highlight=False,
        soft_wrap=True,
    )
