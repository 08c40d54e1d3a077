"""The report's charts, each drawn from a :class:`~twin.report_data.Results` into a PNG.

Every chart covers the measured window [warm-up, horizon] unless it is a time series, where the
warm-up is shaded instead of cut. matplotlib runs on the Agg backend: files only, no display.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display, safe in CI and on servers

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, PercentFormatter

from twin import figures
from twin.core.types import SpotType
from twin.experiments import confidence_interval
from twin.regress import band_names, entry_bands
from twin.report_data import (
    DAY_S,
    HOUR_S,
    Results,
    clock_times,
    format_secs,
    level_names,
    lot_names,
    measured_rows,
    sample_step_min,
    sec_of_day,
)
from twin.report_sections import (
    PALETTE,
    plot_intervals,
)
from twin.report_sections import STYLE as _STYLE
from twin.report_sections import money as _money
from twin.report_sections import plural as _plural
from twin.report_sections import save as _save
from twin.scenario.common import DAY_NAMES
from twin.sim.build import calendar_for


def _shade_warmup(ax: plt.Axes, res: Results) -> None:
    if res.warmup_s > 0:
        ax.axvspan(
            mdates.date2num(res.start),
            mdates.date2num(res.start + pd.Timedelta(seconds=res.warmup_s)),
            color="0.85",
            alpha=0.6,
            lw=0,
            label="warm-up (not measured)",
        )


def _date_axis(ax: plt.Axes, res: Results) -> None:
    """Midnight ticks labelled with the weekday (planners think in Mondays, not dates)."""
    days = res.horizon_s / DAY_S
    if days <= 10:
        ax.xaxis.set_major_locator(mdates.DayLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%a\n%d %b"))
        ax.xaxis.set_minor_locator(mdates.HourLocator(byhour=[6, 12, 18]))
    elif days <= 70:
        step = 2 if days <= 21 else 7
        ax.xaxis.set_major_locator(mdates.DayLocator(interval=step))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%a\n%d %b"))
    else:
        locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


# --------------------------------------------------------------------------- charts


def total_label(res: Results) -> str:
    """What the total covers: the lot, or every lot of a network."""
    return "All lots" if len(lot_names(res.occupancy)) > 1 else "Whole lot"


def plot_occupancy_heatmap(res: Results, path: Path) -> Path:
    """Mean occupancy by level (rows) and hour of day (columns) over the measured days and all
    replications: where and when the lot is full."""
    occ = measured_rows(res, res.occupancy)
    occ = occ.assign(hour=((occ["time_s"].to_numpy() + sec_of_day(res)) % DAY_S) // HOUR_S)
    levels = level_names(occ)
    rows = [("level", lv, f"Level {lv}") for lv in levels]
    if len(levels) > 1:
        rows.append(("total", "all", total_label(res)))
    grid = np.full((len(rows), 24), np.nan)
    for i, (kind, name, _) in enumerate(rows):
        sel = occ[(occ["group_kind"].astype(str) == kind) & (occ["group"].astype(str) == name)]
        by_hour = sel.groupby("hour")["occupancy"].mean()
        grid[i, by_hour.index.astype(int)] = 100 * by_hour.to_numpy()
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(11, 1.6 + 0.55 * len(rows)))
        im = ax.imshow(grid, aspect="auto", cmap="YlOrRd", vmin=0, vmax=100)
        ax.grid(False)
        for i in range(len(rows)):
            for j in range(24):
                v = grid[i, j]
                if not np.isnan(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.0f}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if v >= 60 else "black",
                    )
        ax.set_xticks(range(24), [f"{h:02d}" for h in range(24)])
        ax.set_yticks(range(len(rows)), [r[2] for r in rows])
        if len(levels) > 1:
            ax.axhline(len(rows) - 1.5, color="white", lw=3)
        ax.set_xlabel("hour of day (local time)")
        ax.set_title(
            "Mean occupancy (%) by level and hour of day — "
            f"{figures.days_text(res.measured_days)} measured, "
            f"{_plural(res.replications, 'replication')}"
        )
        cbar = fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
        cbar.set_label("occupied spots (%)")
        return _save(fig, path)


#: Time series of longer runs are drawn one point per day (max and mean of the day).
DAILY_AFTER_DAYS = 21
#: Beyond this many measured days a row per day is unreadable: rows become weekdays.
MAX_DAY_ROWS = 31


def plot_occupancy_day_hour(res: Results, path: Path) -> Path:
    """Whole-lot occupancy for every measured day (rows) and hour (columns): the weekly
    pattern and any trend. Long runs are folded onto the days of the week."""
    occ = measured_rows(res, res.occupancy)
    occ = occ[occ["group_kind"].astype(str) == "total"]
    when = clock_times(res, occ["time_s"])
    frame = pd.DataFrame(
        {
            "day": when.normalize(),
            "weekday": when.weekday,
            "hour": when.hour,
            "occupancy": occ["occupancy"].to_numpy(),
        }
    )
    by_weekday = frame["day"].nunique() > MAX_DAY_ROWS
    rows = "weekday" if by_weekday else "day"
    grid = frame.pivot_table(index=rows, columns="hour", values="occupancy", aggfunc="mean")
    grid = grid.reindex(columns=range(24)) * 100
    if by_weekday:
        labels = [DAY_NAMES[d].title() for d in grid.index]
        title = (
            f"Whole-lot occupancy (%) by weekday and hour, mean over the "
            f"{figures.days_text(res.measured_days)} measured and the replications"
        )
    else:
        labels = [d.strftime("%a %d %b") for d in grid.index]
        title = "Whole-lot occupancy (%) by day and hour, mean over replications"
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(11, 1.4 + 0.32 * len(grid)))
        im = ax.imshow(grid.to_numpy(), aspect="auto", cmap="YlOrRd", vmin=0, vmax=100)
        ax.grid(False)
        ax.set_xticks(range(24), [f"{h:02d}" for h in range(24)])
        step = max(1, math.ceil(len(labels) / 30))
        ax.set_yticks(range(0, len(labels), step), labels[::step])
        if by_weekday:
            for i in range(grid.shape[0]):
                for j in range(24):
                    v = grid.iloc[i, j]
                    if not np.isnan(v):
                        colour = "white" if v >= 60 else "black"
                        ax.text(
                            j, i, f"{v:.0f}", ha="center", va="center", fontsize=8, color=colour
                        )
        ax.set_xlabel("hour of day (local time)")
        ax.set_title(title)
        cbar = fig.colorbar(im, ax=ax, pad=0.01, fraction=0.03)
        cbar.set_label("occupied spots (%)")
        return _save(fig, path)


def plot_occupancy_levels(res: Results, path: Path) -> Path:
    """Occupancy over time, one panel per level (and the lot): the mean over replications with
    a band from the lowest to the highest replication."""
    occ = res.occupancy
    groups = [("level", lv, f"Level {lv}") for lv in level_names(occ)]
    if len(groups) != 1:
        groups.insert(0, ("total", "all", total_label(res)))
    ncols = 1 if len(groups) <= 3 else 2
    nrows = math.ceil(len(groups) / ncols)
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(11, max(3.4, 0.6 + 2.1 * nrows)),
            sharex=True,
            sharey=True,
            squeeze=False,
        )
        daily = res.horizon_s / DAY_S > DAILY_AFTER_DAYS
        for k, (kind, name, label) in enumerate(groups):
            ax = axes[k // ncols][k % ncols]
            sel = occ[(occ["group_kind"].astype(str) == kind) & (occ["group"].astype(str) == name)]
            colour = PALETTE[k % len(PALETTE)]
            _shade_warmup(ax, res)
            if daily:  # months of 15-min samples are a solid block: one point per day instead
                sel = sel[sel["time_s"] < res.horizon_s]  # the end instant is not a day
                day = (sel["time_s"].to_numpy() + sec_of_day(res)) // DAY_S
                per_rep = sel.assign(day=day).groupby(["replication", "day"])["occupancy"]
                mean = per_rep.mean().groupby("day").agg(["mean", "min", "max"]) * 100
                peak = per_rep.max().groupby("day").mean() * 100
                t = clock_times(res, mean.index.to_numpy() * DAY_S - sec_of_day(res) + DAY_S / 2)
                ax.fill_between(t, mean["min"], mean["max"], color=colour, alpha=0.25, lw=0)
                ax.plot(t, mean["mean"], color=colour, lw=1.5, label="daily mean")
                ax.plot(t, peak, color=colour, lw=1.0, ls="--", label="daily peak")
                if k == 0:
                    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3)
            else:
                stats = sel.groupby("time_s")["occupancy"].agg(["mean", "min", "max"]) * 100
                t = clock_times(res, stats.index)
                ax.fill_between(t, stats["min"], stats["max"], color=colour, alpha=0.25, lw=0)
                ax.plot(t, stats["mean"], color=colour, lw=1.2)
            ax.set_title(label, loc="left", fontsize=11)
            ax.set_ylim(0, 104)
            ax.set_yticks([0, 25, 50, 75, 100])
            ax.yaxis.set_major_formatter(PercentFormatter())
            _date_axis(ax, res)
        for k in range(len(groups), nrows * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
            axes[k // ncols - 1][k % ncols].xaxis.set_tick_params(labelbottom=True)
        for row in axes:
            row[0].set_ylabel("occupied")
        for ax in axes[-1]:
            if ax.get_visible():
                ax.set_xlabel("simulated date and time")
        fig.suptitle(
            f"Occupancy over time{', by day' if daily else ''}: mean of "
            f"{_plural(res.replications, 'replication')}, band from lowest to highest",
            fontweight="bold",
        )
        fig.tight_layout()
        return _save(fig, path)


def plot_lost_by_hour(res: Results, path: Path) -> Path:
    """Arrivals and the share of them lost (blocked, balked, reneged) by hour of arrival."""
    v = measured_rows(res, res.vehicles, "arrival_s")
    hour = ((v["arrival_s"].to_numpy() + sec_of_day(res)) % DAY_S) // HOUR_S
    outcome = v["outcome"].astype(str).to_numpy()
    frame = pd.DataFrame({"hour": hour.astype(int), "outcome": outcome})
    counts = frame.groupby(["hour", "outcome"]).size().unstack(fill_value=0).reindex(range(24))
    counts = counts.fillna(0)
    total = counts.sum(axis=1)
    per_day = total / (res.replications * res.measured_days)
    with plt.rc_context(_STYLE):
        fig, (top, bottom) = plt.subplots(
            2, 1, figsize=(11, 6.2), sharex=True, gridspec_kw={"height_ratios": [1, 1.3]}
        )
        top.bar(range(24), per_day, color=PALETTE[0], width=0.8)
        top.set_ylabel("arrivals per day")
        top.set_title("Arrivals by hour of day (mean over measured days and replications)")
        shown = 0
        for k, (outcome, label) in enumerate(
            (
                ("blocked", "blocked (no spot)"),
                ("reneged", "reneged (gave up waiting)"),
                ("balked", "balked (price too high)"),
            )
        ):
            if outcome not in counts.columns:
                continue
            share = 100 * counts[outcome] / total.where(total > 0)
            bottom.plot(
                range(24), share, marker="o", ms=4, lw=1.6, color=PALETTE[k + 1], label=label
            )
            shown += 1
        bottom.set_ylabel("share of that hour's arrivals")
        bottom.yaxis.set_major_formatter(PercentFormatter(decimals=None))  # auto: 0.5 %, 12 %
        bottom.set_ylim(bottom=0)
        if bottom.get_ylim()[1] < 1:
            bottom.set_ylim(0, 1)
        bottom.set_xlabel("hour of arrival (local time)")
        bottom.set_title("Drivers lost, by hour of arrival")
        bottom.set_xticks(range(24), [f"{h:02d}" for h in range(24)])
        if shown:
            bottom.legend(loc="upper left", ncols=3)
        fig.tight_layout()
        return _save(fig, path)


def plot_lanes(res: Results, path: Path) -> Path:
    """Cars queued at the entry and exit barriers over time: mean over replications and the
    worst replication."""
    lanes = res.lanes
    daily = res.horizon_s / DAY_S > DAILY_AFTER_DAYS
    with plt.rc_context(_STYLE):
        names = list(pd.unique(lanes["lane"].astype(str)))
        fig, axes = plt.subplots(
            len(names), 1, figsize=(11, 0.8 + 2.3 * len(names)), sharex=True, squeeze=False
        )
        for k, lane in enumerate(names):
            ax = axes[k][0]
            sel = lanes[lanes["lane"].astype(str) == lane]
            if daily:  # the longest queue of each day, per replication
                sel = sel[sel["time_s"] < res.horizon_s]
                day = (sel["time_s"].to_numpy() + sec_of_day(res)) // DAY_S
                worst = sel.assign(day=day).groupby(["replication", "day"])["queue"].max()
                stats = worst.groupby("day").agg(["mean", "max"])
                t = clock_times(res, stats.index.to_numpy() * DAY_S - sec_of_day(res) + DAY_S / 2)
            else:
                stats = sel.groupby("time_s")["queue"].agg(["mean", "max"])
                t = clock_times(res, stats.index)
            _shade_warmup(ax, res)
            ax.plot(t, stats["max"], color=PALETTE[3], lw=0.9, alpha=0.8, label="worst replication")
            ax.plot(t, stats["mean"], color=PALETTE[0], lw=1.4, label="mean of replications")
            ax.set_title(f"{lane.capitalize()} barriers", loc="left", fontsize=11)
            ax.set_ylabel("longest queue of the day" if daily else "cars queued")
            ax.set_ylim(bottom=0, top=max(1.0, float(stats["max"].max()) * 1.15))
            ax.yaxis.get_major_locator().set_params(integer=True)
            _date_axis(ax, res)
            wait = res.metric(f"{lane}_wait_s.mean")
            p95 = res.metric(f"{lane}_wait_s.p95")
            if wait is not None and p95 is not None and wait.get("mean") is not None:
                ax.text(
                    0.01,
                    0.93,
                    f"wait before service: mean {format_secs(wait['mean'])}, "
                    f"p95 {format_secs(p95['mean'])}",
                    transform=ax.transAxes,
                    va="top",
                    fontsize=9.5,
                    bbox={"facecolor": "white", "edgecolor": "0.8", "boxstyle": "round"},
                )
        axes[0][0].legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3)
        axes[-1][0].set_xlabel("simulated date and time")
        step = sample_step_min(lanes)
        fig.suptitle(
            "Barrier queues: cars waiting behind the barrier, sampled every "
            f"{step:g} min" + (", longest of each day" if daily else ""),
            fontweight="bold",
        )
        fig.tight_layout()
        return _save(fig, path)


def _revenue_split(res: Results) -> dict[str, pd.DataFrame]:
    """Revenue per day by spot type (and tariff band when the scenario is known): per key the
    mean over replications and its 95% t interval."""
    v = measured_rows(res, res.vehicles[res.vehicles["amount"].notna()], "leave_s")
    reps = sorted(pd.unique(res.vehicles["replication"]))
    splits: dict[str, tuple[np.ndarray, list[str]]] = {}
    types = res.occupancy.loc[res.occupancy["group_kind"].astype(str) == "spot_type", "group"]
    present = set(types.astype(str))
    splits["spot type"] = (
        v["spot_type"].astype(str).to_numpy(),
        [t.name for t in SpotType if t.name in present],
    )
    if res.scenario is not None and res.scenario.tariff is not None:
        tariff = res.scenario.tariff.build(calendar_for(res.scenario))
        splits["tariff band at entry"] = (
            entry_bands(tariff, v["entry_s"].to_numpy()),
            band_names(tariff),
        )
    out = {}
    for what, (keys, names) in splits.items():
        sums = (
            pd.DataFrame(
                {"replication": v["replication"].to_numpy(), "key": keys, "x": v["amount"]}
            )
            .groupby(["replication", "key"])["x"]
            .sum()
            .unstack("key")
            .reindex(index=reps, columns=names)
            .fillna(0.0)
            / res.measured_days
        )
        rows = []
        for name in names:
            mean, _sd, lo, hi = confidence_interval(sums[name].to_numpy())
            rows.append({"key": name, "mean": mean, "ci_low": lo, "ci_high": hi})
        out[what] = pd.DataFrame(rows)
    return out


def _key_label(what: str, key: str) -> str:
    if what == "spot type":
        return key.lower()
    return "default rate" if key == "default" else key


def plot_revenue(res: Results, path: Path) -> Path:
    """Revenue per day by tariff band (entry time) and by spot type, with 95% intervals.

    A tariff without time bands has a single "default rate" band: that panel would be one bar
    equal to the total, so it is left out.
    """
    splits = _revenue_split(res)
    band = splits.get("tariff band at entry")
    if band is not None and len(band) < 2:
        del splits["tariff band at entry"]
    order = sorted(splits.items(), key=lambda kv: kv[0] != "tariff band at entry")
    errs = {
        what: np.vstack(
            [
                (t["mean"] - t["ci_low"]).fillna(0).clip(lower=0),
                (t["ci_high"] - t["mean"]).fillna(0).clip(lower=0),
            ]
        )
        for what, t in order
    }
    top = max((float((t["mean"] + errs[w][1]).max()) for w, t in order if len(t)), default=1.0)
    top = top if top > 0 else 1.0
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(
            1,
            len(order),
            figsize=(11, 4.6),
            squeeze=False,
            sharey=True,
            gridspec_kw={"width_ratios": [max(len(t), 2) for _, t in order]},
        )
        for ax, (what, table) in zip(axes[0], order, strict=True):
            x = np.arange(len(table))
            err = errs[what]
            colour = PALETTE[0] if what.startswith("tariff") else PALETTE[2]
            ax.bar(
                x,
                table["mean"],
                color=colour,
                width=0.65,
                yerr=err,
                capsize=4,
                error_kw={"lw": 1.2},
            )
            for xi, m, e in zip(x, table["mean"], err[1], strict=True):
                ax.text(xi, m + e + 0.015 * top, _money(m), ha="center", va="bottom", fontsize=9)
            labels = [textwrap.fill(_key_label(what, str(k)), 12) for k in table["key"]]
            # about 8 px per character at this font; a panel gets its share of ~1000 px
            share = 1000 * max(len(table), 2) / sum(max(len(t), 2) for _, t in order)
            widest = max((len(line) for lb in labels for line in lb.split("\n")), default=0)
            many = (widest + 3) * 8 * len(labels) > share
            ax.set_xticks(x, labels, rotation=25 if many else 0, ha="right" if many else "center")
            ax.set_xlim(-0.6, len(table) - 0.4)
            ax.set_title(f"by {what}", loc="left", fontsize=11)
            ax.yaxis.set_major_formatter(FuncFormatter(_money))
            ax.grid(axis="x", visible=False)
        axes[0][0].set_ylim(0, top * 1.12)
        axes[0][0].set_ylabel("revenue per day (mean, 95% CI)")
        fig.suptitle("Revenue per day (charged at exit, measured window)", fontweight="bold")
        fig.tight_layout()
        return _save(fig, path)


def plot_headline_ci(res: Results, path: Path) -> Path:
    """Each headline figure in its own panel: replications as dots, mean and 95% interval."""
    metrics = res.summary.get("metrics", {})
    return plot_intervals(metrics, res.headline(), res.replications, path, "Headline figures")


def plot_rates(res: Results, path: Path) -> Path:
    """Adaptive pricing: each band's hourly rate over time (mean over replications) and, when
    recorded, the occupancy each band showed at the adjustment that set the rate."""
    rates = res.rates
    assert rates is not None
    rates = rates.assign(band=rates["band"].astype(str))
    bands = list(pd.unique(rates["band"]))
    table = rates.groupby(["band", "time_s"])["rate"].mean()
    seen = None
    if "occupancy_seen" in rates.columns and rates["occupancy_seen"].notna().any():
        seen = rates.groupby(["band", "time_s"])["occupancy_seen"].mean()
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(
            2 if seen is not None else 1,
            1,
            figsize=(11, 6.8 if seen is not None else 4.2),
            sharex=True,
            squeeze=False,
        )
        ax = axes[0][0]
        for k, band in enumerate(bands):
            series = table.loc[band]
            t = clock_times(res, np.append(series.index.to_numpy(), res.horizon_s))
            y = np.append(series.to_numpy(), series.to_numpy()[-1])
            ax.step(t, y, where="post", lw=1.8, color=PALETTE[k % len(PALETTE)], label=band)
        ax.set_ylabel("hourly rate ($/h)")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _p: f"${x:,.2f}"))
        ax.set_ylim(bottom=0)
        ax.set_title("Rate of each tariff band (mean over replications)", loc="left")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), title="band")
        if seen is not None:
            low = axes[1][0]
            for k, band in enumerate(bands):
                series = seen.loc[band].dropna()
                low.plot(
                    clock_times(res, series.index.to_numpy()),
                    100 * series.to_numpy(),
                    marker="o",
                    ms=3.5,
                    lw=1.2,
                    color=PALETTE[k % len(PALETTE)],
                    label=band,
                )
            low.set_ylabel("occupancy seen")
            low.yaxis.set_major_formatter(PercentFormatter(decimals=0))
            low.set_ylim(0, 104)
            low.set_title(
                "Band occupancy measured over the period before each adjustment", loc="left"
            )
        for row in axes:
            _shade_warmup(row[0], res)
            _date_axis(row[0], res)
        axes[-1][0].set_xlabel("simulated date and time")
        fig.suptitle("Adaptive pricing", fontweight="bold")
        fig.tight_layout()
        return _save(fig, path)
