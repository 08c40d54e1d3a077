"""The replay's terminal table: per day, the recorded log beside the replay of its cars under
the scenario as it is and under the change (the CLI prints it; days.csv holds the same)."""

from __future__ import annotations

from rich.table import Table


def _cell(column: str, value: float) -> str:
    if value != value:  # NaN: the log does not say (turn-aways; revenue without payments)
        return "—"
    if column == "revenue":
        return f"{value:,.2f}"
    if column.startswith("occupancy"):
        return f"{100.0 * value:.1f}"
    return f"{int(value):d}"


def replay_table(result) -> Table:
    """One row per (day, source): arrivals, parked, turned away, revenue ($), mean and peak
    occupancy (% of that run's capacity); then the totals over the days."""
    title = "Recorded cars replayed" + (f" (changed: {result.change})" if result.change else "")
    columns = ["arrivals", "parked", "turned_away", "revenue", "occupancy_mean", "occupancy_peak"]
    table = Table(
        "date",
        "source",
        "arrivals",
        "parked",
        "turned away",
        "revenue $",
        "occ. mean %",
        "occ. peak %",
        title=title,
    )
    for row in result.days.itertuples(index=False):
        table.add_row(row.date, row.source, *(_cell(c, getattr(row, c)) for c in columns))
    totals = result.totals()
    if result.days["date"].nunique() > 1:
        for source, row in totals.iterrows():
            table.add_row("all days", str(source), *(_cell(c, row[c]) for c in columns))
    return table


def replay_notes(result) -> list[str]:
    """Plain lines: what the intake and the pairing set aside, open tickets, the difference
    the change makes, and what the replay assumes."""
    log = result.log
    intake = log.intake
    lines = [
        f"{intake['received']} events received, {intake['applied']} applied, "
        f"{intake['dead_lettered']} dead-lettered"
        + (
            " (" + ", ".join(f"{k} {v}" for k, v in intake["by_reason"].items()) + ")"
            if intake["by_reason"]
            else ""
        ),
        f"{len(log.cars)} recorded cars replayed; "
        f"{int(log.cars['exit'].isna().sum())} still parked at the log's end (stay cut there)",
    ]
    if log.set_aside:
        lines.append(
            "not replayed: " + ", ".join(f"{k} {v}" for k, v in sorted(log.set_aside.items()))
        )
    totals = result.totals()
    if "changed" in totals.index:
        a, b = totals.loc["as-is"], totals.loc["changed"]
        lines.append(
            f"change: revenue {b.revenue - a.revenue:+,.2f} $, "
            f"turned away {int(b.turned_away - a.turned_away):+d}, "
            f"mean occupancy {100.0 * (b.occupancy_mean - a.occupancy_mean):+.1f} pp"
        )
        lines.append(
            "the recorded cars take the price as it is (no price response); a smaller "
            "facility turns them away"
        )
    return lines
