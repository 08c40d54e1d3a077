"""What `parktwin run` prints: the headline and occupancy tables and the statistics notes
(automatic warm-up, how a --precision run stopped, figures resting on too few replications).

Functions return rich tables and markup lines; the CLI decides where they go.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from twin.figures import measured_days

if TYPE_CHECKING:
    from twin.api import RunResult


def summary_tables(result: RunResult) -> list[Table]:
    """Headline figures and occupancy by level and spot type, each ± its 95% CI; then each
    operations component's figures (labels and units from twin.figures)."""
    from twin import figures
    from twin.tables import MAX_GROUP_ROWS, busiest, cell, figure_table, operations_tables

    sc = result.scenario
    n = result.replications
    ci = n > 1
    summary = result.summary()
    title = (
        f"{sc.name}: {measured_days(sc.horizon_days, sc.warmup_hours)} measured after a "
        f"{sc.warmup_hours:g} h warm-up, "
        f"{n} replication{'s' * (n > 1)}, seed {result.seed}" + (" — mean (95% CI)" if ci else "")
    )
    main = [n for n in figures.headline(summary.index) if not figures.lookup(n).section.component]
    per_lot = figures.matching(list(summary.index), "revenue_per_day.lot[{lot}]")
    shown, hidden = busiest(per_lot, lambda name: summary.loc[name, "mean"])
    head = figure_table(title, main + shown, summary, ci)
    if hidden:
        more = f"[dim]… {hidden} more lots in summary.json[/]"
        head.add_row(more, *[""] * (len(head.columns) - 1))
    n_levels = sum(n.startswith("occupancy.level[") and n.endswith(".mean") for n in summary.index)
    occ = Table(
        title="occupancy by level and spot type"
        + (f" (the {MAX_GROUP_ROWS} highest peaks of each)" if n_levels > MAX_GROUP_ROWS else ""),
        title_justify="left",
    )
    occ.add_column("level / spot type")
    occ.add_column("mean", justify="right")
    occ.add_column("peak", justify="right")
    for kind in ("lot", "level", "spot_type"):
        prefix = f"occupancy.{kind}["
        groups = [
            name[len(prefix) : -len("].mean")]
            for name in summary.index
            if name.startswith(prefix) and name.endswith(".mean")
        ]
        shown, hidden = busiest(  # highest peak first, then highest mean
            groups,
            lambda g, p=prefix: (
                summary.loc[f"{p}{g}].peak", "mean"],
                summary.loc[f"{p}{g}].mean", "mean"],
            ),
        )
        for group in shown:
            peak = summary.loc[f"{prefix}{group}].peak"]
            label = f"{kind} {group}" if kind in ("lot", "level") else group
            occ.add_row(
                escape(label),
                cell(f"{prefix}{group}].mean", summary.loc[f"{prefix}{group}].mean"], ci),
                cell(f"{prefix}{group}].peak", peak, ci),
            )
        if hidden:
            occ.add_row(f"[dim]… {hidden} more {kind}s in summary.json[/]", "", "")
    return [head, occ, *operations_tables(summary, ci)]


def unreliable_note(table: Any) -> str | None:
    """The footnote for figures whose interval rests on too few replications that saw the
    event (the ``unreliable`` column of summary() / compare's table; in summary.json too), as
    rich markup; None when no figure is flagged."""
    from twin import figures
    from twin.experiments import UNRELIABLE_NOTE

    if "unreliable" not in table.columns:
        return None
    flagged = [n for n in table.index if bool(table.loc[n, "unreliable"])]
    if not flagged:
        return None
    # a figure no replication saw at all (mean 0, an upper bound only) is said plainly: its
    # interval is a one-sided bound, and more replications only matter if the bound does
    never = [n for n in flagged if "mean" in table.columns and table.loc[n, "mean"] == 0]
    few = [n for n in flagged if n not in never]
    lines = []
    if few:
        names = ", ".join(figures.label_of(n) for n in few)
        lines.append(f"[yellow]note[/]: {escape(names)}: {escape(UNRELIABLE_NOTE)}")
    if never:
        names = ", ".join(figures.label_of(n) for n in never)
        lines.append(
            f"[yellow]note[/]: {escape(names)}: not seen in any replication; the interval's "
            "upper end is a one-sided 95% bound (rule of three), not a spread"
        )
    return "\n".join(lines)


def statistics_notes(result: RunResult) -> tuple[list[str], list[str]]:
    """What the automatic warm-up cut and how a --precision run stopped, as rich markup:
    (notes for the report, warnings for stderr: a warm-up at the searched boundary, a
    --precision run stopped at its cap)."""
    notes: list[str] = []
    warnings: list[str] = []
    w = result.warmup
    if w is not None:
        notes.append(
            f"warm-up: auto → cut the first {w.hours:g} h ({w.hours / 24:.1f} days), found by "
            f"{w.method} on the mean total occupancy of {w.pilot_replications} pilot "
            "replications"
        )
        if w.at_boundary:
            warnings.append(
                "[yellow]warning[/]: the detected warm-up is at the end of the searched first "
                "half of the horizon: the lot may not have settled; simulate more days"
            )
    s = result.stopping
    if s is None:
        return notes, warnings
    if s.reason:
        notes.append(f"precision: {escape(s.reason)}")
    target = f"{s.precision:g}"
    if s.relative:
        target += f" x |mean| = {s.target_half_width:.4g}"
    if s.met:
        notes.append(
            f"precision: {s.metric} 95% half-width {s.half_width:.4g} <= {target} after "
            f"{s.replications} replications"
        )
    elif s.half_width == 0:
        warnings.append(
            f"[yellow]warning[/]: stopped at the cap of {s.replications} replications without "
            f"reaching a precision: {escape(s.reason)}"
        )
    else:
        warnings.append(
            f"[yellow]warning[/]: stopped at the cap of {s.replications} replications: "
            f"{s.metric} 95% half-width {s.half_width:.4g} is above the target {target}; "
            "raise --max-replications or relax --precision"
        )
    return notes, warnings
