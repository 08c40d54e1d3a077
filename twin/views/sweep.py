"""What `parktwin sweep` prints: one row per point with its compact figures."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from twin.sweep import SweepResult


SWEEP_TABLE_ROWS = 40


def sweep_table(result: SweepResult) -> Table:
    """One row per point: its parameters, then each compact figure (twin.figures) as mean ±
    95% half-width (units in the headers, so the cells stay narrow enough for a terminal)."""
    from twin import figures

    plan = result.plan
    reps = plan.replications
    title = (
        f"{plan.base.name}: {len(plan.points)} points × {reps} replication{'s' * (reps > 1)}, "
        f"seed {plan.seed} (same drivers at every point)"
        + (" — mean ± 95% CI half-width" if reps > 1 else "")
    )
    table = Table(title=title, title_justify="left")
    table.add_column("point", justify="right")
    for key in plan.grid:
        table.add_column(escape(key), no_wrap=True)
    summary = result.summary.set_index(["point", "metric"])
    first = plan.points[0].index
    shown = figures.compact(list(summary.loc[first].index))
    for name in shown:  # the unit in the header keeps the cells narrow enough for a terminal
        table.add_column(escape(figures.column_header(name)), justify="right")
    for point in plan.points[:SWEEP_TABLE_ROWS]:
        cells = [str(point.index), *(escape(str(v)) for v in point.overrides.values())]
        for name in shown:
            row = summary.loc[(point.index, name)]
            text = figures.format_number(name, row["mean"])
            if reps > 1 and not math.isnan(row["half_width"]) and not math.isnan(row["mean"]):
                if row["ci_low"] == row["mean"] == 0 < row["ci_high"]:  # upper bound only
                    text += f" [dim]≤ {figures.format_number(name, row['ci_high'])}[/]"
                else:
                    text += f" [dim]± {figures.format_number(name, row['half_width'])}[/]"
            cells.append(text)
        table.add_row(*cells)
    if len(plan.points) > SWEEP_TABLE_ROWS:
        more = len(plan.points) - SWEEP_TABLE_ROWS
        table.caption = f"… {more} more points" + (" in summary.parquet" if result.out else "")
    return table
