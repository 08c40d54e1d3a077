"""The picture of a tariff search: the objective against one or two searched parameters.

Labels, units and scales come from the figure registry (:mod:`twin.figures`), so the plot and
the tables name a figure the same way; matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from twin import figures
from twin.outputs import save_figure
from twin.stats import confidence_interval, paired_difference

if TYPE_CHECKING:
    from twin.optimize.objectives import Evaluation
    from twin.optimize.search import OptimizationResult


# -- the plot -----------------------------------------------------------------------------------
#: What each objective plots: first the objective's own figure, then its companion (the
#: constraint, or what the choice earns). Labels, units and scales come from the figure registry
#: (:mod:`twin.figures`), so the plot and the tables name a figure the same way.
PLOTTED: dict[str, tuple[str, str]] = {
    "revenue": ("revenue_per_day", "no_space_pct"),
    "blocking": ("no_space_pct", "revenue_per_day"),
    "occupancy-target": ("occupancy.window", "revenue_per_day"),
}


def axis(name: str) -> tuple[str, str, float, str]:
    """(figure, axis label, scale to shown units, kind) of a plotted figure, from the registry.

    ``kind`` is what the plot does with it: ``money`` ($ ticks), ``pct`` (a share in %, from
    0), ``occ`` (an occupancy: a 0..1 share shown in %, clipped to 100)."""
    import textwrap

    unit = figures.unit_of(name)
    kind = {"money": "money", "frac": "occ"}.get(unit.kind, "pct" if unit.kind == "pct" else "num")
    shown = unit.shown or ""
    label = figures.label_of(name) + (f" ({shown})" if shown else "")
    return name, "\n".join(textwrap.wrap(label, 30)), unit.scale, kind


def _stats(evs: list[Evaluation], metric: str, scale: float) -> tuple[np.ndarray, ...]:
    rows = [confidence_interval(e.metrics[metric].to_numpy(dtype=float)) for e in evs]
    mean = np.array([r[0] for r in rows]) * scale
    lo = np.array([r[2] for r in rows]) * scale
    hi = np.array([r[3] for r in rows]) * scale
    return mean, lo, hi


def _dollars(value: float, decimals: int = 0) -> str:
    """Axis ticks: ``$1,200``, ``-$500``, ``$0.50``."""
    return f"{'-' if value < 0 else ''}${abs(value):,.{decimals}f}"


def _fmt_value(value: float, kind: str) -> str:
    if not math.isfinite(value):
        return "–"
    if kind == "money":
        return f"${value:,.0f}"
    return f"{value:.1f}"


def plot_optimization(result: OptimizationResult, path: str | Path) -> Path:
    """Write :func:`optimization_figure` to ``path`` (PNG or SVG by its suffix)."""
    return save_figure(optimization_figure(result), Path(path))


def optimization_figure(result: OptimizationResult) -> Any:
    """Objective against the parameter(s): a line with its 95 % band over the companion figure
    (1 parameter), or a heatmap / scatter of the objective figure (2 parameters).

    The objective is drawn in the units a planner reads (revenue in $/day, shares and
    occupancy in %), not as the penalised score; the constraint, the occupancy target, the
    current tariff and the best point are marked. Uses matplotlib's object API so it never
    touches a notebook's pyplot state; returns the matplotlib Figure (tests and notebooks
    look at its axes).
    """
    from matplotlib.figure import Figure

    spec = result.spec
    first, second = (axis(name) for name in PLOTTED[spec.objective])
    reps = result.replications
    subtitle = (
        f"{result.scenario.name}: mean and 95% CI over {reps} replications, seed "
        f"{result.seed}, the same drivers at every point"
    )
    if spec.objective == "occupancy-target" or first[0] == "occupancy.window":
        subtitle += f"\noccupancy measured {result.window.describe()}"
    if len(result.params) == 1:
        return _plot_1d(result, first, second, subtitle, Figure)
    return _plot_2d(result, first, subtitle, Figure)


def _plot_1d(result: OptimizationResult, first, second, subtitle: str, figure_cls) -> Any:

    p = result.params[0]
    spec = result.spec
    evs = sorted(
        (e for e in result.evaluations if e.values[p.key] is not None),
        key=lambda e: e.values[p.key],
    )
    searched = [e for e in evs if e.searched]
    x = np.array([e.values[p.key] for e in searched], dtype=float)
    fig = figure_cls(figsize=(8.5, 8.0), dpi=120)
    top, middle, bottom = fig.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.8, 1.8]}
    )
    # the paired difference to the best: what common random numbers make visible
    metric, ylabel, scale, kind = first
    best_values = result.best.metrics[metric].to_numpy(dtype=float) * scale
    diffs = [
        paired_difference(best_values, e.metrics[metric].to_numpy(dtype=float) * scale)
        for e in searched
    ]
    d_mean = np.array([d.mean for d in diffs])
    d_lo = np.array([d.ci_low for d in diffs])
    d_hi = np.array([d.ci_high for d in diffs])
    middle.axhline(0.0, color="0.3", linewidth=0.9)
    middle.errorbar(
        x,
        d_mean,
        yerr=np.vstack([np.nan_to_num(d_mean - d_lo), np.nan_to_num(d_hi - d_mean)]),
        marker="o",
        markersize=4,
        capsize=3,
        linewidth=0,
        elinewidth=1.3,
        color="C0",
    )
    unit = "$/day" if kind == "money" else "pp"
    middle.set_ylabel(f"point − best, {unit}\n(paired 95% CI)")
    middle.grid(True, alpha=0.3)
    if kind == "money":
        middle.yaxis.set_major_formatter(_tex_dollars_formatter())
    for ax, (metric, ylabel, scale, kind), colour in ((top, first, "C0"), (bottom, second, "C1")):
        mean, lo, hi = _stats(searched, metric, scale)
        if kind in ("pct", "occ"):
            lo, hi = np.clip(lo, 0, 100), np.clip(hi, 0, 100)

        def lab(text: str, ax: Any = ax) -> str | None:
            return text if ax is top else None  # one legend, on the top panel

        ax.fill_between(x, lo, hi, color=colour, alpha=0.18, linewidth=0, label=lab("95% CI"))
        ax.plot(x, mean, marker="o", markersize=4, color=colour, linewidth=1.6, label=lab("mean"))
        bad = np.array([not e.feasible for e in searched])
        if bad.any():
            ax.plot(
                x[bad],
                mean[bad],
                "x",
                color="C3",
                markersize=8,
                mew=2,
                label=lab("misses the constraint"),
            )
        best_x = result.best.values[p.key]
        bm = _stats([result.best], metric, scale)[0][0]
        ax.plot(
            [best_x],
            [bm],
            marker="*",
            markersize=16,
            color="C2",
            mec="k",
            mew=0.6,
            linestyle="none",
            label=lab("best"),
            zorder=5,
        )
        base = result.baseline
        if base.values[p.key] is not None:
            bx = base.values[p.key]
            bmean = _stats([base], metric, scale)[0][0]
            ax.axvline(bx, color="0.45", linestyle=":", linewidth=1.2)
            ax.plot(
                [bx],
                [bmean],
                marker="D",
                markersize=7,
                color="0.35",
                linestyle="none",
                label=lab("current tariff"),
                zorder=4,
            )
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if kind == "money":
            ax.yaxis.set_major_formatter(_tex_dollars_formatter())
        if kind == "pct":  # shares from 0; money autoscales so an interior optimum shows
            ax.set_ylim(bottom=0)
            ax.set_ylim(bottom=-0.03 * ax.get_ylim()[1])
    # reference lines: target, cap, floor
    if spec.objective == "occupancy-target":
        top.axhline(
            100 * spec.target,
            color="C3",
            linestyle="--",
            linewidth=1.2,
            label=f"target {100 * spec.target:g} %",
        )
    if spec.objective == "revenue" and spec.max_blocking is not None:
        bottom.axhline(
            spec.max_blocking,
            color="C3",
            linestyle="--",
            linewidth=1.2,
            label=f"cap {spec.max_blocking:g} %",
        )
    if spec.objective == "blocking" and result.min_revenue:
        bottom.axhline(
            result.min_revenue,
            color="C3",
            linestyle="--",
            linewidth=1.2,
            label=f"floor ${result.min_revenue:,.0f}/day",
        )
    if first[3] in ("pct", "occ") and top.get_ylim()[1] > 100:
        top.set_ylim(top=101)
    top.legend(fontsize=8, frameon=False, loc="best", ncol=2)
    if bottom.get_legend_handles_labels()[0]:
        bottom.legend(fontsize=8, frameon=False, loc="best")
    if p.kind == "money":  # $ ticks, cents on short ranges where ticks fall between dollars
        bottom.xaxis.set_major_formatter(_tex_dollars_formatter(2 if p.high - p.low < 5 else 0))
        bottom.set_xlabel(p.key)
    else:
        bottom.set_xlabel(f"{p.key} ({p.kind})")
    best_text = f"best: {p.label(result.best.values[p.key])}"
    _titles(fig, top, f"{_TITLES[spec.objective]} by {p.key} — {best_text}", subtitle, 11.5)
    fig.subplots_adjust(left=0.155, right=0.97, top=0.9, bottom=0.07, hspace=0.08)
    fig.align_ylabels([top, middle, bottom])
    return fig


_TITLES = {
    "revenue": "Revenue per day",
    "blocking": "Drivers turned away",
    "occupancy-target": "Occupancy against its target",
}


def _titles(fig: Any, ax: Any, title: str, subtitle: str, size: float) -> None:
    """The figure's title at the top left, the run's description in grey under it."""
    fig.suptitle(_tex(title), fontsize=size, x=0.015, ha="left")
    ax.set_title(_tex(subtitle), fontsize=8.5, loc="left", color="0.35")


def _tex(text: str) -> str:
    """Text for matplotlib: a literal ``$`` (two of them would start mathtext)."""
    return text.replace("$", r"\$")


def _plot_2d(result: OptimizationResult, first, subtitle: str, figure_cls) -> Any:
    """Grid search: a heatmap of the objective figure over the grid, values in the cells.
    Otherwise (scipy): the points tried, coloured by the figure and numbered in order."""
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    px, py = result.params
    spec = result.spec
    metric, label, scale, kind = first
    searched = [e for e in result.evaluations if e.searched]
    mean = _stats(searched, metric, scale)[0]
    cmap = {"revenue": "viridis", "blocking": "viridis_r", "occupancy-target": "RdBu_r"}[
        spec.objective
    ]
    norm = None
    if spec.objective == "occupancy-target":
        t = 100 * spec.target
        span = max(float(np.nanmax(np.abs(mean - t))), 1.0) if np.isfinite(mean).any() else 1.0
        norm = TwoSlopeNorm(vcenter=t, vmin=t - span, vmax=t + span)
    fig = figure_cls(figsize=(8.5, 6.6), dpi=120)
    ax = fig.add_subplot()
    best, base = result.best, result.baseline

    def point(e: Evaluation) -> str:
        """A tariff as the planner set it: the two decision values."""
        return _tex(f"{px.label(e.values[px.key])}, {py.label(e.values[py.key])}")

    def value(e: Evaluation) -> str:
        return _tex(_fmt_value(_stats([e], metric, scale)[0][0], kind))

    unit_sign = " %" if kind in ("pct", "occ") else ""
    marks: list[tuple[Evaluation, dict[str, Any]]] = [
        (
            base,
            dict(
                marker="D",
                markersize=8,
                color="0.15",
                mfc="none",
                mew=1.8,
                label=f"current tariff ({point(base)}): {value(base)}{unit_sign}",
            ),
        ),
        (
            best,
            dict(
                marker="*",
                markersize=19,
                mec="k",
                mew=0.9,
                label=f"best ({point(best)}): {value(best)}{unit_sign}",
            ),
        ),
    ]
    if spec.method == "grid":
        xs, ys = px.grid(spec.grid_points), py.grid(spec.grid_points)
        grid = np.full((len(ys), len(xs)), np.nan)
        cells = {}
        for e, m in zip(searched, mean, strict=True):
            vx, vy = e.values[px.key], e.values[py.key]
            if vx in xs and vy in ys:
                grid[ys.index(vy), xs.index(vx)] = m
                cells[(ys.index(vy), xs.index(vx))] = e
        image = ax.imshow(grid, origin="lower", aspect="auto", cmap=cmap, norm=norm)
        ax.set_xticks(range(len(xs)), [_tex(px.label(v)) for v in xs], fontsize=8)
        ax.set_yticks(range(len(ys)), [_tex(py.label(v)) for v in ys], fontsize=8)
        for (i, j), e in cells.items():
            shade = float(image.norm(grid[i, j]))
            dark = abs(shade - 0.5) > 0.3 if cmap == "RdBu_r" else shade < 0.5
            if cmap == "viridis_r":
                dark = shade > 0.5
            text = _tex(_fmt_value(grid[i, j], kind)) + ("\n✗" if not e.feasible else "")
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=7.5,
                color="white" if dark else "black",
            )
            if e is best:
                ax.add_patch(
                    Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="C3", linewidth=2.5)
                )

        def where(e: Evaluation) -> tuple[float, float] | None:
            vx, vy = e.values[px.key], e.values[py.key]
            if vx is None or vy is None:
                return None  # e.g. no daily maximum today
            # fractional cell position (the grid is evenly spaced), so off-grid points show too
            return (
                float(np.interp(vx, xs, range(len(xs)))),
                float(np.interp(vy, ys, range(len(ys)))),
            )

        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.set_ylim(-0.5, len(ys) - 0.5)
    else:
        x = np.array([e.values[px.key] for e in searched], dtype=float)
        y = np.array([e.values[py.key] for e in searched], dtype=float)
        image = ax.scatter(x, y, c=mean, cmap=cmap, norm=norm, s=70, edgecolors="0.3")

        def where(e: Evaluation) -> tuple[float, float] | None:
            vx, vy = e.values[px.key], e.values[py.key]
            return None if vx is None or vy is None else (vx, vy)

        # each point labelled with its tariff (the decision values), not the order tried;
        # best and current are named in the legend, and a label that would overprint another
        # is left out (the colour still shows the value)
        shown: list[tuple[float, float]] = [
            ((w[0] - px.low) / (px.high - px.low), (w[1] - py.low) / (py.high - py.low))
            for w in (where(best), where(base))
            if w is not None
        ]
        for e, xi, yi in zip(searched, x, y, strict=True):
            u, v = (xi - px.low) / (px.high - px.low), (yi - py.low) / (py.high - py.low)
            if any(abs(u - a) < 0.16 and abs(v - b) < 0.045 for a, b in shown):
                continue
            shown.append((u, v))
            tag = point(e) + (" ✗" if not e.feasible else "")
            ax.annotate(
                tag, (xi, yi), textcoords="offset points", xytext=(6, 5), fontsize=6.5, color="0.3"
            )

        pad_x, pad_y = 0.04 * (px.high - px.low), 0.04 * (py.high - py.low)
        ax.set_xlim(px.low - pad_x, px.high + pad_x)
        ax.set_ylim(py.low - pad_y, py.high + pad_y)
        ax.grid(True, alpha=0.3)
        for ticks, p in ((ax.xaxis, px), (ax.yaxis, py)):
            if p.kind == "money":  # cents on short ranges, where ticks fall between dollars
                ticks.set_major_formatter(_tex_dollars_formatter(2 if p.high - p.low < 10 else 0))
    # the best point's star is filled with the colour of its own value on the colour bar
    marks[1][1]["color"] = image.cmap(image.norm(_stats([best], metric, scale)[0][0]))
    for e, style in marks:
        at = where(e)
        if at is not None:
            ax.plot([at[0]], [at[1]], linestyle="none", zorder=5, **style)
    handles, labels = ax.get_legend_handles_labels()
    if any(not e.feasible for e in searched):
        labels.append("✗ misses the constraint")
        handles.append(Rectangle((0, 0), 0, 0, fill=False, edgecolor="none"))
    ax.legend(
        handles,
        labels,
        fontsize=8,
        frameon=False,
        loc="upper left",
        bbox_to_anchor=(0, -0.09),
        ncol=2,
    )
    bar = fig.colorbar(image, ax=ax, pad=0.02)
    text = label.replace("\n", " ")
    if norm is not None:  # "occupancy ... (%; target 85 %)"
        target = f"target {100 * spec.target:g} %"
        text = text[:-1] + f"; {target})" if text.endswith(")") else f"{text} ({target})"
    bar.set_label(_tex(text))
    if kind == "money":
        bar.formatter = _tex_dollars_formatter()
        bar.update_ticks()
    ax.set_xlabel(_tex(px.key))
    ax.set_ylabel(_tex(py.key))
    best_text = f"{px.label(best.values[px.key])}, {py.label(best.values[py.key])}"
    title = f"{_TITLES[spec.objective]} by {px.key} and {py.key} — best: {best_text}"
    _titles(fig, ax, title, subtitle, 11)
    fig.subplots_adjust(left=0.12, right=0.98, top=0.88, bottom=0.17)
    return fig


def _tex_dollars_formatter(decimals: int = 0) -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: _tex(_dollars(v, decimals)))
