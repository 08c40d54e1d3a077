"""The backtest's terminal table: MAE per site and horizon for the twin and the baselines,
and the twin's band coverage (the CLI prints it; the files hold the full table)."""

from __future__ import annotations

from rich.table import Table


def backtest_table(result) -> Table:
    """One row per (site, horizon): MAE in points of capacity of the twin, seasonal naive and
    ETS, the twin's 80% and 95% band coverage, and whether the twin beat each baseline."""
    from twin.calibrate.backtest_report import summary_frame

    table = Table(
        *["site", "h", "n", "twin", "naive", "ETS", "cov80", "cov95", "<naive", "<ETS"],
        title="MAE (pp of capacity) and the twin's band coverage (%)",
    )
    for row in summary_frame(result).itertuples(index=False):
        table.add_row(*(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row))
    return table
