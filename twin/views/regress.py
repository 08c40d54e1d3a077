"""What `parktwin regress` prints: the gate's diff table for one scenario."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table


def regress_table(check: Any, confidence: float = 0.99, updating: bool = False) -> Table:
    """The gate's diff table for one scenario: failing rows red, noise-level moves dim.

    With ``updating`` it describes a re-recorded baseline: old against new, and which moves
    the gate would have flagged.
    """
    from twin.regress import format_ci, format_value

    t = check.table
    n = int(t["n"].max()) if len(t) else 0
    bad = len(check.failures)
    level = f"{100 * confidence:g}%"
    paired = f"paired over {n} replication{'s' * (n != 1)}"
    if updating:
        title = f"{check.scenario}: {len(t)} figures changed, {bad} beyond noise ({paired})"
    else:
        title = f"{check.scenario}: {bad} of {len(t)} figures fail ({paired})"
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("metric", "left"),
        ("old baseline" if updating else "baseline mean", "right"),
        ("new baseline" if updating else "current mean", "right"),
        ("difference", "right"),
        (f"{level} CI of difference", "right"),
        ("gate verdict" if updating else "verdict", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name == "metric")  # type: ignore[arg-type]
    for row in t.itertuples():
        m = row.metric
        failed = row.verdict != "pass"
        if updating:
            style = "yellow" if failed else ""
            verdict = f"would fail: {row.reason}" if failed else f"would pass: {row.reason}"
        else:
            style = "bold red" if failed else ("dim" if row.reason == "identical" else "")
            verdict = f"[bold red]FAIL[/] {row.reason}" if failed else f"pass {row.reason}"
        table.add_row(
            escape(m),
            format_value(m, row.baseline_mean),
            format_value(m, row.current_mean),
            format_value(m, row.diff_mean, signed=True),
            format_ci(m, row.ci_low, row.ci_high),
            verdict,
            style=style or None,
        )
    return table
