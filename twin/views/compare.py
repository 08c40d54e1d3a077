"""What `parktwin compare` prints: the headline figures of A and B and their paired
difference."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from twin.compare import Comparison


def comparison_table(comparison: Comparison) -> Table:
    """Headline figures of A and B and the paired difference with its 95% interval."""
    from twin import figures
    from twin.tables import comparison_cells

    t = comparison.table
    table = Table(
        title=f"B − A over {comparison.replications} paired replications, seed "
        f"{comparison.seed} (common random numbers) — mean (95% CI)",
        title_justify="left",
    )
    for name, justify in (("figure", "left"), ("A", "right"), ("B", "right")):
        table.add_column(name, justify=justify)
    table.add_column("B − A (95% CI)", justify="right")
    table.add_column("CRN variance cut", justify="right")
    for metric in figures.headline(t.index):
        if math.isnan(t.loc[metric, "a_mean"]):
            continue
        row = t.loc[metric]
        cut = row["variance_reduction"]
        unchanged = row["sd"] == 0 and row["diff"] == 0  # B changed nothing: no CRN figure
        table.add_row(
            escape(figures.label_of(metric)),
            *comparison_cells(metric, row),
            "–" if math.isnan(cut) or unchanged else f"{100 * cut:.0f} %",
        )
    return table
