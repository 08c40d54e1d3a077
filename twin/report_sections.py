"""Report pieces that follow the figure registry (:mod:`twin.figures`): the chart style, the
figure tables, the interval chart of any set of figures, one section per operations component
and, for a network, the per-lot table and chart.

They read only ``summary.json``'s metrics (name → mean, ci95, values), so a component or a
figure added to the registry shows up in the report without a line here.
"""

from __future__ import annotations

import html
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display, safe in CI and on servers

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from twin import figures
from twin.outputs import save_figure

#: Colour-blind-safe palette (Okabe-Ito) for lines and bars.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

STYLE = {
    "font.size": 10.5,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
}

Metrics = dict[str, dict]


def money(x: float, _pos: object = None) -> str:
    """Whole dollars from $100 (and for 0), cents below: what a tick or a bar label needs."""
    return f"${x:,.0f}" if abs(x) >= 100 or x == 0 else f"${x:,.2f}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def save(fig: Figure, path: Path) -> Path:
    save_figure(fig, path)
    plt.close(fig)
    return path


def label(name: str) -> str:
    """The registry's label, capitalised for a table row or a chart title."""
    text = figures.label_of(name)
    return text[:1].upper() + text[1:]


def defined(metrics: Metrics, names: list[str]) -> list[str]:
    """The names that have a mean in ``metrics`` (summary.json's), in the given order."""
    return [n for n in names if (m := metrics.get(n)) is not None and m.get("mean") is not None]


# --------------------------------------------------------------------------- tables


def interval_text(name: str, lo: float, hi: float, unit: bool = False) -> tuple[str, str]:
    """The ends of an interval as text, with the decimals it takes for two different ends to
    read differently (a one-sided bound of 0.002 % is not '0.00 … 0.00')."""
    for extra in range(4):
        decimals = None if extra == 0 else extra + 2
        texts = tuple(figures.format_value(name, x, decimals, unit=unit) for x in (lo, hi))
        if lo == hi or texts[0] != texts[1]:
            break
    return texts


def value_ci(metrics: Metrics, name: str) -> tuple[str, str]:
    """(mean, 95% interval) as text, the interval clipped to what the figure can take."""
    m = metrics.get(name)
    if m is None or m.get("mean") is None:
        return "–", "–"
    lo, hi = m.get("ci95") or [None, None]
    ci = "–"
    if lo is not None and hi is not None:
        lo, hi = figures.clip(name, lo, hi)
        ci = " … ".join(interval_text(name, lo, hi, unit=True))
    return figures.format_value(name, m["mean"]), ci


def figure_rows(metrics: Metrics, names: list[str]) -> str:
    """HTML table rows: label, mean and 95% interval."""
    rows = []
    for name in defined(metrics, names):
        mean, ci = value_ci(metrics, name)
        rows.append(
            f"<tr><td>{html.escape(label(name))}</td><td>{html.escape(mean)}</td>"
            f'<td class="ci">{html.escape(ci)}</td></tr>'
        )
    return "\n".join(rows)


def figure_table(metrics: Metrics, names: list[str]) -> str:
    return (
        "<table><tr><th>figure</th><th>mean</th><th>95% CI</th></tr>"
        f"{figure_rows(metrics, names)}</table>"
    )


def all_figures_html(metrics: Metrics) -> str:
    """Every figure of the run, folded, one table per section of the registry (figures it
    does not know last, by name): nothing summary.json holds is missing from the report."""
    names = defined(metrics, list(metrics))
    parts = []
    for key, section in figures.SECTIONS.items():
        mine = figures.in_section(names, key)
        if mine:
            parts.append(f"<h3>{html.escape(section.title)}</h3>{figure_table(metrics, mine)}")
    unknown = [n for n in names if figures.find(n) is None]
    if unknown:
        parts.append(f"<h3>Other</h3>{figure_table(metrics, unknown)}")
    return (
        f"<details><summary>All {len(names)} figures of the run</summary>{''.join(parts)}</details>"
    )


# --------------------------------------------------------------------------- charts


def tick_decimals(ticks: np.ndarray) -> int:
    """Decimals a percentage axis needs to show its ticks exactly (at least 1, at most 5):
    0.0000 %, 0.0008 %, 0.0016 % rather than 0.0 % three times."""
    ticks = np.unique(np.asarray(ticks, float))
    if len(ticks) < 2:
        return 1
    step = float(np.diff(ticks).min())
    for decimals in range(1, 6):
        if np.allclose(np.round(ticks, decimals), ticks, rtol=0, atol=step * 1e-3):
            return decimals
    return 5


def plot_intervals(
    metrics: Metrics, names: list[str], replications: int, path: Path, title: str
) -> Path:
    """Each figure in its own panel: replications as dots, mean and 95% interval."""
    shown = [(n, metrics[n]) for n in defined(metrics, names)]
    ncols = 3
    nrows = max(1, math.ceil(len(shown) / ncols))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(11, 0.7 + 1.75 * nrows), squeeze=False)
        for k, (name, m) in enumerate(shown):
            ax = axes[k // ncols][k % ncols]
            unit = figures.unit_of(name)
            f = unit.scale
            values = np.array([np.nan if x is None else x for x in m["values"]], float)
            mean = float(m["mean"])
            ci = m.get("ci95") or [None, None]
            has_ci = ci[0] is not None and ci[1] is not None
            lo, hi = figures.clip(name, ci[0], ci[1]) if has_ci else (mean, mean)
            ax.scatter(
                values * f, np.zeros_like(values), s=20, color="0.55", zorder=2,
                label="replications",
            )  # fmt: skip
            ax.errorbar(
                mean * f, 0, xerr=[[(mean - lo) * f], [(hi - mean) * f]], fmt="o",
                color=PALETTE[0], capsize=5, ms=7, lw=2, zorder=3, label="mean, 95% CI",
            )  # fmt: skip
            ax.set_yticks([])
            ax.spines["left"].set_visible(False)
            ax.grid(axis="y", visible=False)
            text = figures.format_value(name, mean)
            if has_ci:
                lo_text, hi_text = interval_text(name, lo, hi)
                ci_text = f"(95% CI {lo_text} … {hi_text})"
                # one line when it fits the panel's width, else under the mean: a long line
                # ran into the next panel's title
                text += ("  " if len(text) + 2 + len(ci_text) <= 48 else "\n") + ci_text
            title_text = textwrap.fill(label(name), 48) + "\n" + text
            ax.set_title(title_text, loc="left", fontsize=9.5, fontweight="normal")
            low = min(np.nanmin(values), lo) * f
            high = max(np.nanmax(values), hi) * f
            span = high - low
            if span <= 0:  # every replication identical: centre the point, one tick
                pad = max(abs(low) * 0.05, 1.0)
                ax.set_xlim(low - pad, low + pad)
                ax.set_xticks([low])
            else:
                ax.set_xlim(low - 0.12 * span, high + 0.12 * span)
                ax.xaxis.set_major_locator(plt.MaxNLocator(4))
            ax.set_ylim(-1, 1)
            if unit.kind == "money":
                ax.xaxis.set_major_formatter(FuncFormatter(money))
            elif unit.kind == "count":
                ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p: f"{x:,.0f}"))
            elif unit.kind in ("pct", "frac"):
                ticks = ax.xaxis.get_major_locator().tick_values(*ax.get_xlim())
                ax.xaxis.set_major_formatter(PercentFormatter(decimals=tick_decimals(ticks)))
        for k in range(len(shown), nrows * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper right", ncols=2, bbox_to_anchor=(1.0, 1.0))
        fig.suptitle(
            f"{title}: {plural(replications, 'replication')} and the 95% t interval of their mean",
            fontweight="bold",
            x=0.01,
            ha="left",
        )
        fig.tight_layout(rect=(0, 0, 1, 0.97), h_pad=1.2)
        return save(fig, path)


# --------------------------------------------------------------------------- components


@dataclass(frozen=True)
class ComponentFigures:
    """An operations component's figures in a run: its headline ones, then the rest."""

    key: str
    title: str
    headline: list[str]
    others: list[str]


def components(metrics: Metrics) -> list[ComponentFigures]:
    """Every operations component that reported figures, in the registry's order."""
    names = defined(metrics, list(metrics))
    out = []
    for key, section in figures.SECTIONS.items():
        if not section.component:
            continue
        mine = figures.in_section(names, key)
        if not mine:
            continue
        head = figures.headline(mine, key)
        out.append(ComponentFigures(key, section.title, head, [n for n in mine if n not in head]))
    return out


def component_html(metrics: Metrics, comp: ComponentFigures) -> str:
    """The component's headline table and, folded, every other figure it reported."""
    parts = [figure_table(metrics, comp.headline)]
    if comp.others:
        parts.append(
            f"<details><summary>All {len(comp.others)} other {html.escape(comp.title.lower())} "
            "figures</summary>" + figure_table(metrics, comp.others) + "</details>"
        )
    return "\n".join(parts)


# --------------------------------------------------------------------------- networks

#: Per-lot columns of a network's table: (figure pattern, column header).
NETWORK_COLUMNS: tuple[str, ...] = (
    "occupancy.lot[{lot}].mean",
    "occupancy.lot[{lot}].peak",
    "time_full_pct.lot[{lot}]",
    "revenue_per_day.lot[{lot}]",
    "arrivals_per_day.lot[{lot}]",
    "diverted_pct.lot[{lot}]",
    "lost_pct.lot[{lot}]",
    "search_km_per_day.lot[{lot}]",
)


def network_html(metrics: Metrics, lots: list[str]) -> str:
    """One row per lot: its occupancy, time full, revenue, and what became of the drivers who
    headed for it first; the unit in each column's header, the 95% interval under the mean."""
    columns = [c for c in NETWORK_COLUMNS if any(c.format(lot=lot) in metrics for lot in lots)]
    head = "".join(
        f"<th>{html.escape(_column(c))}<br><small>{html.escape(_unit(c))}</small></th>"
        for c in columns
    )
    rows = []
    for lot in lots:
        cells = []
        for c in columns:
            name = c.format(lot=lot)
            m = metrics.get(name) or {}
            mean = figures.format_value(name, m.get("mean"), unit=False)
            lo, hi = m.get("ci95") or [None, None]
            ci = ""
            if lo is not None and hi is not None:
                lo, hi = figures.clip(name, lo, hi)
                ci = " … ".join(figures.format_value(name, x, unit=False) for x in (lo, hi))
            cells.append(
                f'<td>{html.escape(mean)}<br><small class="ci">{html.escape(ci)}</small></td>'
            )
        rows.append(f"<tr><td>{html.escape(lot)}</td>{''.join(cells)}</tr>")
    return f'<table class="lots"><tr><th>lot</th>{head}</tr>{"".join(rows)}</table>'


def _unit(pattern: str) -> str:
    return figures.unit_text(pattern.format(lot="x"))


def _column(pattern: str) -> str:
    """A per-lot figure's label said of "the lot": ``drivers heading for the lot who drove
    on``, ``occupancy, mean``, ``revenue per day``."""
    found = figures.find(pattern.format(lot="\0"))
    text = found.figure.label if found is not None else pattern
    for with_lot in (" of {lot}", ", {lot}"):
        text = text.replace(with_lot, "")
    return text.replace("time {lot} was", "time the lot was").replace("{lot}", "the lot")


def plot_network(metrics: Metrics, lots: list[str], path: Path) -> Path:
    """Per lot: revenue per day, occupancy (mean and time full), and the share of the drivers
    who headed for it that drove on to another lot or were lost; 95% intervals as error bars."""
    panels = (
        ("Revenue per day", ("revenue_per_day.lot[{lot}]",)),
        ("Occupancy", ("occupancy.lot[{lot}].mean", "time_full_pct.lot[{lot}]")),
        ("Drivers heading for the lot", ("diverted_pct.lot[{lot}]", "lost_pct.lot[{lot}]")),
    )
    y = np.arange(len(lots))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(11, 2.4 + 0.5 * len(lots)), sharey=True)
        for ax, (title, patterns) in zip(axes, panels, strict=True):
            present = [p for p in patterns if p.format(lot=lots[0]) in metrics]
            height = 0.8 / max(len(present), 1)
            for j, pattern in enumerate(present):
                names = [pattern.format(lot=lot) for lot in lots]
                unit = figures.unit_of(names[0])
                mean = np.array([_num(metrics[n].get("mean")) for n in names]) * unit.scale
                lo = np.array([_num((metrics[n].get("ci95") or [None])[0]) for n in names])
                hi = np.array([_num((metrics[n].get("ci95") or [None, None])[1]) for n in names])
                err = np.vstack(
                    [np.nan_to_num(mean - lo * unit.scale), np.nan_to_num(hi * unit.scale - mean)]
                ).clip(min=0)
                pos = y - 0.4 + height * (j + 0.5)
                ax.barh(
                    pos, mean, height=height * 0.9, xerr=err, capsize=3, color=PALETTE[j],
                    label=_column(pattern),
                )  # fmt: skip
            ax.set_title(title, loc="left", fontsize=11)
            ax.grid(axis="y", visible=False)
            ax.set_xlim(left=0)
            kind = figures.unit_of(present[0].format(lot=lots[0])).kind if present else "num"
            ax.xaxis.set_major_locator(plt.MaxNLocator(4))
            if kind == "money":
                ax.xaxis.set_major_formatter(FuncFormatter(money))
            else:
                ax.xaxis.set_major_formatter(PercentFormatter(decimals=0))
            if len(present) > 1:
                ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.12), fontsize=8.5)
        axes[0].set_yticks(y, lots)
        axes[0].invert_yaxis()
        fig.suptitle("Lots of the network: mean and 95% CI over replications", fontweight="bold")
        fig.tight_layout()
        return save(fig, path)


def _num(x: float | None) -> float:
    return math.nan if x is None else float(x)
