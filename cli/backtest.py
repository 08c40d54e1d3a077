"""`parktwin backtest`: forecasts scored on data the model was not fitted on (issue 12)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .calibrate import NoPlotsOption
from .common import SERIES_COLUMNS, api, app, console, fail, hold_out


@app.command("backtest")
def backtest_command(
    ctx: typer.Context,
    series: Annotated[Path, typer.Argument(help="Occupancy counts (CSV), one row per reading.")],
    columns: Annotated[str, typer.Option(metavar="ROLE=COL,...", help=SERIES_COLUMNS)],
    train_until: Annotated[
        str, typer.Option(metavar="DATE", help="Fit on readings up to this date (inclusive).")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", metavar="DIR", help="Folder for backtest.csv, the other tables and the report."
        ),
    ],
    horizons: Annotated[str, typer.Option(help="Forecast horizons in hours.")] = "1,2,4",
    sites: Annotated[str | None, typer.Option(help="Comma-separated sites (default: all).")] = None,
    replications: Annotated[int, typer.Option(min=20, help="Twin replications per origin.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the twin's replications.", min=0)] = 0,
    test_days: Annotated[
        int | None, typer.Option(min=1, help="Score only this many days after the cut.")
    ] = None,
    refit_days: Annotated[
        int,
        typer.Option(
            min=0, help="Refit the twin every N test days on the readings before (0: never)."
        ),
    ] = 7,
    online: Annotated[
        bool,
        typer.Option(
            "--online/--no-online",
            help="Correct the twin's forecast and bands day by day from its past errors "
            "(shrinkage toward seasonal naive, conformal bands); --no-online: the twin's own law.",
        ),
    ] = True,
    no_plots: NoPlotsOption = False,
) -> None:
    """Calibrate on the readings up to --train-until, then forecast occupancy from every hourly
    origin after it with the twin (started from the observed count), seasonal naive (a week
    earlier) and ETS (Holt-Winters on the daily slot grid); writes DIR/backtest.csv (site,
    horizon_h, method, n, mae, rmse, coverage80, coverage95), plots and backtest.html."""
    from twin.calibrate.cleaning import CalibrationInputError

    try:
        hours = [int(h) for h in horizons.split(",") if h.strip()]
    except ValueError:
        fail([f"--horizons: whole hours separated by commas, got {horizons!r}"])
    chosen = [s.strip() for s in sites.split(",") if s.strip()] if sites else None
    hold_out(ctx, out)
    try:
        result = api.backtest(
            series,
            columns,
            out,
            train_until=train_until,
            horizons=hours,
            sites=chosen,
            replications=replications,
            seed=seed,
            test_days=test_days,
            plots=not no_plots,
            refit_days=refit_days or None,
            online=online,
        )
    except (CalibrationInputError, api.ScenarioError) as exc:
        fail(str(exc).splitlines())
    from twin.views.backtest import backtest_table

    console.print(backtest_table(result))
    for site, why in result.unusable.items():
        console.print(f"{site}: not backtested ({why})")
    console.print(f"Wrote backtest.csv and the report to {out}")
