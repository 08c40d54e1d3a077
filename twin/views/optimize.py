"""What `parktwin optimize` prints: every simulated tariff (best first), the best against the
current one, and the one-line heading saying what was searched."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from twin.figures import measured_days

if TYPE_CHECKING:
    from twin.optimize import OptimizationResult

OPTIMIZE_TABLE_ROWS = 40


def pm(mean: float, lo: float, hi: float, unit: str) -> str:
    """``$12,215 ± $181`` / ``0.16 ± 0.28 pp``: a mean and its 95% half-width, compactly."""
    from twin.figures import quantity
    from twin.figures import significant_decimals as decimals

    if math.isnan(mean):
        return "–"
    if math.isnan(lo):
        return quantity(mean, unit, 2)
    hw = (hi - lo) / 2
    d = decimals(hw, mean)
    return f"{quantity(mean, unit, d)} [dim]± {quantity(hw, unit, d)}[/]"


def wrap_key(key: str, width: int = 12) -> str:
    """A dotted key as a header that wraps after its dots (rich wraps only at spaces), so a
    ``tariff.bands.1.per_period`` column is as narrow as its prices."""
    lines: list[str] = []
    for part in key.split("."):
        if lines and len(lines[-1]) + len(part) + 1 <= width:
            lines[-1] += "." + part
        else:
            if lines:
                lines[-1] += "."
            lines.append(part)
    return "\n".join(lines)


def optimize_tables(result: OptimizationResult) -> list[Table]:
    """Every simulated point (best first) and the best tariff against the current one."""
    from twin import figures
    from twin.optimize import key_figures
    from twin.tables import cell, comparison_cells

    objective = result.spec.objective
    # money keeps its $ in the cells; pp goes in the headers, so a cell is one short line
    unit = "$" if objective == "revenue" else ""
    header_unit = "$/day" if objective == "revenue" else "pp"
    t = result.table
    present = [c.removesuffix("_mean") for c in t.columns if c.endswith("_mean")]
    companions = [n for n in figures.compact(present) if n != result.objective_metric]
    if {"blocked_pct", "reneged_pct", "no_space_pct"} <= set(companions) and (
        result.spec.max_blocking is None
    ):
        companions.remove("no_space_pct")  # their sum: a column the terminal cannot spare
    rows = []
    for _, row in t.head(OPTIMIZE_TABLE_ROWS).iterrows():
        is_best = int(row["point"]) == result.best.index
        notes = ["[bold green]best[/]"] if is_best else []
        if row["baseline"]:
            notes.append("current")
        if not row["feasible"]:
            notes.append("[red]misses constraint[/]")
        elif row["tied_with_best"] and not is_best:
            notes.append("[dim]tied[/]")
        if not row["searched"]:
            notes.append("[dim]outside the ranges[/]")
        vs = (
            "–"
            if is_best
            else pm(row["vs_best_mean"], row["vs_best_ci_low"], row["vs_best_ci_high"], unit)
        )
        rows.append(
            [
                str(int(row["rank"])),
                *(p.label(row[p.key]) for p in result.params),
                pm(row["objective_mean"], row["objective_ci_low"], row["objective_ci_high"], unit),
                vs,
                *(figures.format_number(name, row[f"{name}_mean"]) for name in companions),
                ", ".join(notes),
            ]
        )
    # the objective's column, short (the first line of the output says what is optimised)
    label = {
        "revenue": "revenue per day, $/day (maximised)",
        "blocking": "turned away, % (minimised)",
        "occupancy-target": f"gap to {100 * result.spec.target:g} % occupancy, pp",
    }.get(objective, result.objective_label)
    headers = [
        "#",
        *(wrap_key(escape(p.key)) for p in result.params),
        escape(label),
        f"vs best, {header_unit}",
        *(escape(figures.column_header(name)) for name in companions),
        "",
    ]
    points = Table(
        title=f"{len(t)} tariffs simulated, best first — mean ± 95% half-width over "
        f"{result.replications} replications; 'vs best': paired difference point − best",
        title_justify="left",
        box=box.SIMPLE_HEAD,  # no vertical rules: a dozen columns fit a terminal
    )
    # every column at least as wide as its widest cell: a row stays one line, and a long
    # header wraps over two or three lines instead
    for k, header in enumerate(headers):
        width = max((Text.from_markup(r[k]).cell_len for r in rows), default=1)
        if 0 < k <= len(result.params):  # a key's parts cannot wrap: keep them whole
            width = max(width, *(len(part) for part in header.split("\n")))
        points.add_column(header, justify="left" if k == len(headers) - 1 else "right",
                          min_width=width)  # fmt: skip
    for r in rows:
        points.add_row(*r)
    cmp = result.baseline_comparison
    ct = cmp.table
    best = Table(
        title=f"best tariff against the current one — mean (95% CI); B − A paired over "
        f"{result.replications} replications (common random numbers)",
        title_justify="left",
    )
    for name, justify in (("figure", "left"), ("current (A)", "right"), ("best (B)", "right")):
        best.add_column(name, justify=justify)
    best.add_column("B − A (95% CI)", justify="right")
    summaries = (result.baseline.run.summary(), result.best.run.summary())
    for metric in key_figures(list(ct.index)):
        if math.isnan(ct.loc[metric, "a_mean"]):
            continue
        label = figures.label_of(metric)
        if metric == "occupancy.window":
            label = f"occupancy, {result.window.describe()}"
        cells = [cell(metric, summary.loc[metric], True) for summary in summaries]
        best.add_row(escape(label), *cells, comparison_cells(metric, ct.loc[metric])[2])
    return [points, best]


def optimize_heading(result: OptimizationResult) -> str:
    """The first line of `parktwin optimize`: what is optimised, over which ranges, how."""
    spec = result.spec
    s = result.scenario
    cap = spec.max_blocking
    what = {
        "revenue": "maximise revenue per day"
        + ("" if cap is None else f", at most {cap:g} % turned away"),
        "occupancy-target": f"occupancy {100 * spec.target:g} % in {result.window.describe()}",
        "blocking": "turn the fewest drivers away"
        + (f", earning at least ${result.min_revenue:,.0f}/day" if result.min_revenue else ""),
    }[spec.objective]
    ranges = ", ".join(f"{p.key} {p.label(p.low)}…{p.label(p.high)}" for p in result.params)
    return (
        f"{escape(s.name)}: {escape(what)}; {escape(ranges)}; {spec.method} search, "
        f"{len(result.evaluations)} tariffs × {result.replications} paired replications, seed "
        f"{result.seed}, {measured_days(s.horizon_days, s.warmup_hours)} measured after a "
        f"{s.warmup_hours:g} h warm-up"
    )
