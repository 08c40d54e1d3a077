"""The locking study's figure: achieved throughput and p95 latency against offered load."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from twin.outputs import save_figure
from twin.sim.locking_measure import ceiling_text

if TYPE_CHECKING:
    from twin.sim.locking_study import LockingStudyResult

__all__ = ["STYLE", "plot_locking_study"]

#: One colour and marker per strategy, the same in every figure.
STYLE = {
    "pessimistic": ("#c0392b", "o"),
    "optimistic": ("#e67e22", "s"),
    "atomic": ("#2471a3", "^"),
    "queue": ("#229954", "D"),
}


def plot_locking_study(result: LockingStudyResult, path: str | Path) -> Path:
    """Achieved throughput and p95 latency against offered load, log axes, one line each.

    A p95 that was not reached before the run ended (more than 5 % of claims unanswered) has
    no value; those points sit in a shaded band above the measurable range, one row per
    strategy so that strategies failing at the same load do not hide each other.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec, table = result.spec, result.table
    lo = min(spec.offered_tps)
    hi = float(table["offered_tps"].max())  # the highest rate run (a sweep stops past its ceiling)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.6), layout="constrained")
    ax1.plot([lo, hi], [lo, hi], color="0.6", ls="--", lw=1, label="achieved = offered")
    roof = spec.measure.drain_s * 1000  # no p95 beyond this can be measured
    names = list(dict.fromkeys(table["strategy"]))
    band = [roof * 1.25 * 1.2**i for i in range(len(names))]
    ceilings_by_name = result.ceilings.set_index("strategy")
    lines = []
    for i, name in enumerate(names):
        colour, marker = STYLE.get(name, ("black", "o"))
        g = table[table["strategy"] == name].sort_values("offered_tps")
        x = g["offered_tps"].to_numpy()
        ax1.plot(x, g["achieved_tps"], color=colour, marker=marker, ms=5, label=name)
        ceiling = ceilings_by_name.loc[name]
        if not math.isnan(ceiling["ceiling_tps"]):
            ax1.scatter(
                [ceiling["ceiling_offered_tps"]],
                [ceiling["ceiling_tps"]],
                s=170 + 90 * i,  # nested rings when two ceilings coincide
                facecolors="none",
                edgecolors=colour,
                lw=1.8,
                zorder=5,
            )
        lines.append(f"{name:<12} {ceiling_text(ceiling, lo):>9}")
        p95 = g["p95_ms"].to_numpy()
        finite = np.isfinite(p95) & (p95 <= roof)
        ax2.plot(x[finite], p95[finite], color=colour, marker=marker, ms=5, label=name)
        if (~finite).any():
            ax2.scatter(x[~finite], np.full((~finite).sum(), band[i]), color=colour, marker=marker)
    ax1.set(
        xscale="log",
        yscale="log",
        xlabel="offered load (claims/s)",
        ylabel="achieved throughput (grants + refusals per s)",
        title="Throughput: where each strategy stops tracking the load",
    )
    ax1.plot([], [], ls="none", marker="o", mfc="none", mec="0.3", ms=11, label="ceiling")
    ax1.legend(loc="lower right", fontsize=9)
    note = (
        f"ceiling (TPS): p95 ≤ {spec.slo.p95_ms:g} ms and\n"
        f"achieved ≥ {spec.slo.tracking:.0%} of arrivals\n" + "\n".join(lines)
    )
    ax1.text(
        0.33,
        0.975,
        note,
        transform=ax1.transAxes,
        ha="left",
        va="top",
        family="monospace",
        fontsize=8.5,
        bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"},
    )
    ax2.axhline(spec.slo.p95_ms, color="0.35", ls=":", lw=1.2)
    ax2.text(
        hi,
        spec.slo.p95_ms * 0.9,
        f"SLO p95 {spec.slo.p95_ms:g} ms",
        fontsize=8,
        color="0.3",
        ha="right",
        va="top",
    )
    ax2.axhspan(roof * 1.12, band[-1] * 1.15, color="0.92", zorder=0)
    ax2.text(
        lo, roof * 1.14, f"unfinished: p95 > {roof:g} ms", fontsize=8, color="0.3", va="bottom"
    )
    ax2.set(
        xscale="log",
        yscale="log",
        xlabel="offered load (claims/s)",
        ylabel="claim latency p95 (ms)",
        title="Latency: p95 of claims arriving at that load",
    )
    ax2.set_ylim(top=band[-1] * 1.15)
    ax2.legend(loc="center left", fontsize=9)
    for ax in (ax1, ax2):
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
    fig.suptitle(f"{spec.name}: claim strategies under contention", fontsize=12)
    path = save_figure(fig, path, dpi=130)
    plt.close(fig)
    return path
