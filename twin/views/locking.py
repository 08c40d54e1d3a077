"""What `parktwin locking` prints: strategy × offered load, and each strategy's ceiling."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table


def ms(value: float, roof_ms: float) -> str:
    """A latency in ms; one that was never reached before the run ended reads '> roof'."""
    return f"> {roof_ms:,.0f}" if not math.isfinite(value) or value > roof_ms else f"{value:,.1f}"


def locking_tables(result: Any) -> list[Table]:
    """Strategy × offered load (throughput, p95, conflicts, retries, failures) and ceilings."""
    from twin.sim.locking_study import ceiling_text

    spec, roof = result.spec, result.spec.measure.drain_s * 1000
    slo = f"p95 ≤ {spec.slo.p95_ms:g} ms, achieved ≥ {spec.slo.tracking:.0%} of arrivals"
    points = Table(title=f"{spec.name}: claims by strategy and offered load", title_justify="left")
    for header in ("strategy", "offered TPS", "achieved TPS", "p50 ms", "p95 ms"):
        points.add_column(header, justify="left" if header == "strategy" else "right")
    for header in ("conflicts", "retries", "failed", "refused", "unfinished", "within"):
        points.add_column(header, justify="right")
    previous = None
    for row in result.table.itertuples(index=False):
        ok = row.tracks and row.within_slo
        points.add_row(
            row.strategy if row.strategy != previous else "",
            f"{row.offered_tps:,.0f}",
            f"{row.achieved_tps:,.0f}",
            ms(row.p50_ms, roof),
            ms(row.p95_ms, roof),
            f"{row.conflicts:,}",
            f"{row.retries:,}",
            f"{row.failed:,}",
            f"{row.refused:,}",
            f"{row.unfinished:,}",
            "[green]yes[/]" if ok else "[red]no[/]",
            end_section=False,
        )
        previous = row.strategy
    ceilings = Table(title=f"ceilings ({slo})", title_justify="left")
    ceilings.add_column("strategy")
    ceilings.add_column("ceiling TPS", justify="right")
    ceilings.add_column("ended by")
    ceilings.add_column("peak TPS (at offered)", justify="right")
    low = min(spec.offered_tps)
    for row in result.ceilings.itertuples(index=False):
        ceilings.add_row(
            row.strategy,
            ceiling_text(result.ceilings.set_index("strategy").loc[row.strategy], low),
            row.limited_by,
            f"{row.peak_tps:,.0f} ({row.peak_offered_tps:,.0f})",
        )
    return [points, ceilings]
