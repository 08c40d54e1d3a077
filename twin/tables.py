"""Terminal tables of figures, labelled and formatted by the figure registry.

The CLI's commands build their tables from these pieces, so a figure reads the same in ``run``,
``compare`` and ``optimize``: the registry's label, its unit, its interval clipped to what the
figure can take. Only ``rich`` and :mod:`twin.figures` are imported: no pandas at import time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from rich.markup import escape
from rich.table import Table

from twin import figures
from twin.figures import format_diff, format_value, significant_decimals

#: Rows per group kind a terminal table shows; a city grid has hundreds of lots and levels.
MAX_GROUP_ROWS = 12


def cell(name: str, row: Mapping[str, Any], with_ci: bool) -> str:
    """Mean, and with replicates its 95% interval, clipped to the figure's possible range."""
    text = format_value(name, row["mean"])
    if with_ci and not math.isnan(row["ci_low"]):
        lo, hi = figures.clip(name, row["ci_low"], row["ci_high"])
        text += f"  [dim]({format_value(name, lo)} … {format_value(name, hi)})[/]"
    return text


def busiest(names: list[str], key: Callable[[str], object]) -> tuple[list[str], int]:
    """All names when there are few; else the MAX_GROUP_ROWS with the highest ``key`` (in
    their original order) and how many were left out."""
    if len(names) <= MAX_GROUP_ROWS:
        return names, 0
    top = set(sorted(names, key=key, reverse=True)[:MAX_GROUP_ROWS])
    return [name for name in names if name in top], len(names) - MAX_GROUP_ROWS


def figure_table(title: str, names: list[str], summary: Any, with_ci: bool) -> Table:
    """One row per figure: its registry label, mean, 95% interval (clipped to what the figure
    can take) and unit, in a column of its own so the numbers stay short."""
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    table.add_column("mean", justify="right")
    if with_ci:
        table.add_column("95% CI", justify="right", style="dim")
    table.add_column("unit")
    for name in names:
        row = summary.loc[name]
        cells = [format_value(name, row["mean"], unit=False)]
        if with_ci:
            lo, hi = figures.clip(name, row["ci_low"], row["ci_high"])
            bounds = [format_value(name, x, unit=False) for x in (lo, hi)]
            cells.append("–" if math.isnan(row["ci_low"]) else " … ".join(bounds))
        table.add_row(escape(figures.label_of(name)), *cells, escape(figures.unit_text(name)))
    return table


def operations_tables(summary: Any, with_ci: bool) -> list[Table]:
    """One table per operations component (reservations, permits, payments, sensors): its
    headline figures first, then the rest; per-level and per-lot detail stays in
    summary.json (named in a last row)."""
    tables = []
    for key, section in figures.SECTIONS.items():
        if not section.component:
            continue
        names = figures.in_section(list(summary.index), key)
        if not names:
            continue
        detail = [n for n in names if "[" in n]
        top = [n for n in names if "[" not in n]
        lead = [n for n in top if figures.lookup(n).figure.headline]
        rest = [n for n in top if n not in lead]
        table = figure_table(f"{section.title}", lead + rest, summary, with_ci)
        if lead and rest:
            table.rows[len(lead) - 1].end_section = True
        if detail:
            more = f"[dim]… {len(detail)} per-level/per-lot figures in summary.json[/]"
            table.add_row(more, *[""] * (len(table.columns) - 1))
        tables.append(table)
    return tables


def comparison_cells(name: str, row: Mapping[str, Any]) -> tuple[str, str, str]:
    """A, B (means) and B − A with its interval, from a compare table row (stored units)."""
    u = figures.unit_of(name)
    d = significant_decimals(row["half_width"] * u.scale, row["diff"] * u.scale)
    dv = significant_decimals(
        row["half_width"] * u.scale, max(abs(row["a_mean"]), abs(row["b_mean"])) * u.scale
    )
    diff = format_diff(name, row["diff"], d)
    if not math.isnan(row["ci_low"]):
        lo, hi = format_diff(name, row["ci_low"], d), format_diff(name, row["ci_high"], d)
        diff += f" [dim]({lo} … {hi})[/]"
    return format_value(name, row["a_mean"], dv), format_value(name, row["b_mean"], dv), diff
