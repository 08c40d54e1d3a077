"""`parktwin calibrate tickets|occupancy`: fit scenarios to real records (twin/calibrate/;
the summary table in twin/views/calibrate.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import SERIES_COLUMNS, api, app, console, fail, hold_out

calibrate_app = typer.Typer(
    help="Fit scenarios to real records: a ticket/gate log, or occupancy counts.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(calibrate_app, name="calibrate")

OutOption = Annotated[
    Path,
    typer.Option(
        "--out",
        metavar="DIR",
        help="Folder for the scenario YAMLs (scenarios/), CSV tables, estimates.json and the "
        "report (report.html, plots/).",
    ),
]
NoPlotsOption = Annotated[
    bool, typer.Option("--no-plots", help="Leave out the PNG plots and the HTML report.")
]


def _calibrate(
    ctx: typer.Context, kind: str, source: Path, columns: str, out: Path, plots: bool, **options
) -> None:
    """Shared body: claim --out, fit, print one line per site (errors: one line, exit 2)."""
    from twin.calibrate.cleaning import CalibrationInputError
    from twin.views.calibrate import calibration_table

    hold_out(ctx, out)
    try:
        result = api.calibrate(kind, source, columns, out, plots=plots, **options)
    except (CalibrationInputError, api.ScenarioError) as exc:
        fail(str(exc).splitlines())
    console.print(calibration_table(result))
    used = ", ".join(f"{k} {v:,}" for k, v in result.cleaning.used.items())
    problems = ", ".join(f"{r} {n:,}" for r, n in result.cleaning.counts.items()) or "none"
    console.print(f"{result.cleaning.received:,} rows: used {used}; problems: {problems}")
    console.print(f"Wrote {len(result.scenarios)} scenario(s) and the report to {out}")


@calibrate_app.command("tickets")
def calibrate_tickets(
    ctx: typer.Context,
    log: Annotated[Path, typer.Argument(help="Ticket or gate log (CSV), one row per ticket.")],
    columns: Annotated[
        str,
        typer.Option(
            metavar="ROLE=COL,...",
            help="Which CSV column holds what, as ROLE=COLUMN pairs joined by commas: entry "
            "and exit (required), amount, site, class; e.g. entry=In,exit=Out,amount=Paid",
        ),
    ],
    out: OutOption,
    capacity: Annotated[
        int | None,
        typer.Option(min=1, help="Spots (default: the most cars the log shows parked at once)."),
    ] = None,
    currency: Annotated[str, typer.Option(help="Currency of the amounts (ISO code).")] = "USD",
    no_plots: NoPlotsOption = False,
) -> None:
    """Fit one scenario per site of a ticket log: arrivals per weekday and hour (with
    intervals; special days listed), stay law (AIC, KS, QQ; by arrival-hour band when stays
    depend on it), the tariff when amounts are given (share of receipts reproduced to the
    cent by the real pricing engine). Dirty rows are counted by reason, never dropped silently."""
    _calibrate(
        ctx, "tickets", log, columns, out, not no_plots, capacity=capacity, currency=currency
    )


@calibrate_app.command("occupancy")
def calibrate_occupancy(
    ctx: typer.Context,
    series: Annotated[Path, typer.Argument(help="Occupancy counts (CSV), one row per reading.")],
    columns: Annotated[str, typer.Option(metavar="ROLE=COL,...", help=SERIES_COLUMNS)],
    out: OutOption,
    train_until: Annotated[
        str | None,
        typer.Option(
            metavar="DATE",
            help="Fit on readings up to this date (inclusive); the rest is held out and scored.",
        ),
    ] = None,
    sites: Annotated[
        str | None, typer.Option(help="Comma-separated sites to fit (default: all).")
    ] = None,
    no_plots: NoPlotsOption = False,
) -> None:
    """Fit, per site, the arrival profile and stay law whose M_t/G/∞ mean occupancy (with the
    capacity limit) reproduces the counts; fit error per hour of day; day-to-day demand CV.
    Nights without readings: the lot is taken to be empty at the start of each day."""
    chosen = [s.strip() for s in sites.split(",") if s.strip()] if sites else None
    _calibrate(
        ctx, "occupancy", series, columns, out, not no_plots, train_until=train_until, sites=chosen
    )
