"""A results folder (``parktwin run --out DIR``) as a report a planner can forward.

``build_report(DIR)`` reads the tables and ``summary.json`` that ``RunResult.write`` produced,
draws the charts into ``DIR/plots/*.png`` and writes ``DIR/report.html``: one self-contained
file (CSS inline, charts embedded as base64 PNG) that survives being attached to an e-mail.

Every chart covers the measured window [warm-up, horizon] unless it is a time series, where
the warm-up is shaded instead of cut, so a reader sees the lot filling up. Spread over
replications is shown wherever the figure is a mean over replications.

The tables carry no tariff, so revenue by tariff band needs the scenario file: pass it, or the
report looks for ``scenarios/<scenario name>.yaml`` itself and otherwise leaves that chart out
with a note. ``rates.parquet`` (adaptive pricing: ``time_s, band`` (or ``table``), ``rate`` in
$/h, optionally ``replication`` and ``occupancy_seen``, the occupancy that triggered the change,
``replication``) adds a rate-trajectory chart when present.
"""

from __future__ import annotations

import base64
import html
import json
import math
import textwrap
from dataclasses import dataclass, field
from datetime import datetime
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
from twin.outputs import claim, write_text
from twin.regress import band_names, entry_bands
from twin.report_sections import (
    PALETTE,
    all_figures_html,
    component_html,
    components,
    figure_table,
    network_html,
    plot_intervals,
    plot_network,
    value_ci,
)
from twin.report_sections import STYLE as _STYLE
from twin.report_sections import money as _money
from twin.report_sections import plural as _plural
from twin.report_sections import save as _save
from twin.scenario.common import DAY_NAMES
from twin.scenario.loader import ScenarioError, load_scenario
from twin.scenario.model import Scenario
from twin.sim.build import calendar_for

DAY_S = 86_400.0
HOUR_S = 3_600.0

#: A report section: title, chart (or None), caption, and optionally a table (HTML) above it.
Section = tuple[str, Path | None, str] | tuple[str, Path | None, str, str]


class ReportError(Exception):
    """The folder is not a usable results folder (the CLI prints it on one line, exit 2)."""


# --------------------------------------------------------------------------- reading


@dataclass
class Results:
    """What ``parktwin run --out`` wrote, read back; frames use the writer's column names."""

    path: Path
    summary: dict
    vehicles: pd.DataFrame | None  # None: the run kept no per-vehicle records
    occupancy: pd.DataFrame
    lanes: pd.DataFrame
    rates: pd.DataFrame | None
    start: pd.Timestamp
    scenario: Scenario | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.summary.get("scenario", self.path.name))

    @property
    def warmup_s(self) -> float:
        return float(self.summary.get("warmup_hours", 0.0)) * HOUR_S

    @property
    def horizon_s(self) -> float:
        return float(self.summary["horizon_days"]) * DAY_S

    @property
    def measured_days(self) -> float:
        return (self.horizon_s - self.warmup_s) / DAY_S

    @property
    def replications(self) -> int:
        return int(self.summary.get("replications", 1))

    def metric(self, name: str) -> dict | None:
        return self.summary.get("metrics", {}).get(name)

    def headline(self, section: str | None = None) -> list[str]:
        """The registry's headline figures this run has a value for (one section's, or those
        of the model itself: components get sections of their own)."""
        names = [n for n, m in self.summary.get("metrics", {}).items() if m.get("mean") is not None]
        return [
            n
            for n in figures.headline(names, section)
            if section is not None or not figures.lookup(n).section.component
        ]


#: What stands in for the charts drawn from per-vehicle records when a run kept none.
NO_VEHICLES = (
    "This run kept no per-vehicle records (output.vehicles: false or --no-vehicles), so this "
    "chart cannot be drawn; the headline figures above still cover it. Run again with "
    "per-vehicle records for the breakdown by hour, tariff band and spot type."
)


def _read_table(
    folder: Path, name: str, required: bool, files: dict[str, str] | None
) -> pd.DataFrame | None:
    """The run's table ``name``: the file ``summary.json`` names (``files``), so a stale table
    of another run in the same folder is never read; a folder written before the summary named
    its files is searched for ``name.parquet`` then ``name.csv``."""
    names = ([files[name]] if name in files else []) if files is not None else []
    if files is None:
        names = [f"{name}.parquet", f"{name}.csv"]
    for fname in names:
        path = folder / fname
        if not path.is_file():
            if files is not None and required:
                raise ReportError(f"{path}: named in summary.json but missing")
            continue
        try:
            return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        except Exception as exc:  # pyarrow and the csv parser raise many types
            raise ReportError(f"{path}: cannot read table: {exc}") from None
    if required:
        raise ReportError(
            f"{folder}: no {name}.parquet or {name}.csv (write the folder with "
            "`parktwin run SCENARIO --out DIR`)"
        )
    return None


def _find_scenario(name: str, folder: Path) -> Path | None:
    """``scenarios/<name>.yaml`` in the working directory, beside the results or among the
    shipped examples (found through the installed package, not beside this file)."""
    from twin.installed import package_root

    roots = [Path.cwd(), folder.resolve().parent, package_root()]
    for root in roots:
        path = root / "scenarios" / f"{name}.yaml"
        if path.is_file():
            return path
    return None


def load_results(folder: str | Path, scenario: str | Path | None = None) -> Results:
    """Read a results folder; ``scenario`` (the YAML the run used) enables revenue by band.

    Raises :class:`ReportError` for a folder that is missing pieces or unreadable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder}: no such results folder")
    spath = folder / "summary.json"
    if not spath.is_file():
        raise ReportError(
            f"{folder}: no summary.json (write the folder with `parktwin run SCENARIO --out DIR`)"
        )
    try:
        summary = json.loads(spath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportError(f"{spath}: not valid JSON ({exc})") from None
    if not isinstance(summary, dict) or "metrics" not in summary or "horizon_days" not in summary:
        raise ReportError(f"{spath}: not a ParkTwin summary (no metrics / horizon_days)")
    files = summary.get("files")
    if files is not None and not (
        isinstance(files, dict) and all(isinstance(v, str) for v in files.values())
    ):
        raise ReportError(f"{spath}: files must map table names to file names")
    vehicles = _read_table(folder, "vehicles", False, files)
    if vehicles is not None and not len(vehicles.columns):
        vehicles = None  # written by a run that kept no per-vehicle records
    occupancy = _read_table(folder, "occupancy", True, files)
    lanes = _read_table(folder, "lanes", False, files)
    rates = _read_table(folder, "rates", False, files)
    assert occupancy is not None
    checks = [
        (occupancy, ("replication", "time_s", "group_kind", "group", "occupancy"), "occupancy")
    ]
    if vehicles is not None:
        checks.append((vehicles, ("replication", "arrival_s", "outcome", "amount"), "vehicles"))
    for frame, cols, what in checks:
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ReportError(f"{folder}: {what} table lacks columns {', '.join(missing)}")
    if rates is not None and "band" not in rates.columns and "table" in rates.columns:
        rates = rates.rename(columns={"table": "band"})  # the simulator's name for a band
    if rates is not None and not {"time_s", "band", "rate"} <= set(rates.columns):
        raise ReportError(f"{folder}: rates table needs columns time_s, band (or table), rate")
    if "time" in occupancy.columns and len(occupancy):
        first = occupancy.iloc[0]
        start = pd.Timestamp(first["time"]) - pd.to_timedelta(first["time_s"], unit="s")
    else:
        start = pd.Timestamp("2026-01-05")
    res = Results(
        path=folder,
        summary=summary,
        vehicles=vehicles,
        occupancy=occupancy,
        lanes=lanes if lanes is not None else pd.DataFrame(),
        rates=rates,
        start=start,
    )
    spec = Path(scenario) if scenario is not None else _find_scenario(res.name, folder)
    if spec is not None:
        try:
            sc = load_scenario(spec)
        except ScenarioError as exc:
            raise ReportError(f"{exc.source}: {exc.problems[0]}") from None
        if sc.name != res.name:
            if scenario is not None:
                raise ReportError(
                    f"{spec} is scenario {sc.name!r}, but the results are of {res.name!r}"
                )
        else:
            res.scenario = sc
    if res.scenario is None:
        res.notes.append(
            "Revenue by tariff band is left out: the scenario file was not found "
            "(pass it with --scenario)."
        )
    return res


# --------------------------------------------------------------------------- helpers


def _levels(occ: pd.DataFrame) -> list[str]:
    """Level names in the facility's order (rows are written level by level)."""
    return list(pd.unique(occ.loc[occ["group_kind"].astype(str) == "level", "group"].astype(str)))


def _lots(occ: pd.DataFrame) -> list[str]:
    """Lot names of a network in the facility's order (none for a single lot)."""
    return list(pd.unique(occ.loc[occ["group_kind"].astype(str) == "lot", "group"].astype(str)))


def _measured(res: Results, frame: pd.DataFrame, col: str = "time_s") -> pd.DataFrame:
    return frame[(frame[col] >= res.warmup_s) & (frame[col] < res.horizon_s)]


def _clock(res: Results, seconds: pd.Series | np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(res.start + pd.to_timedelta(np.asarray(seconds, float), unit="s"))


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
    return "All lots" if len(_lots(res.occupancy)) > 1 else "Whole lot"


def plot_occupancy_heatmap(res: Results, path: Path) -> Path:
    """Mean occupancy by level (rows) and hour of day (columns) over the measured days and all
    replications: where and when the lot is full."""
    occ = _measured(res, res.occupancy)
    occ = occ.assign(hour=((occ["time_s"].to_numpy() + _sec_of_day(res)) % DAY_S) // HOUR_S)
    levels = _levels(occ)
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


def _sec_of_day(res: Results) -> float:
    s = res.start
    return s.hour * HOUR_S + s.minute * 60.0 + s.second


#: Time series of longer runs are drawn one point per day (max and mean of the day).
DAILY_AFTER_DAYS = 21
#: Beyond this many measured days a row per day is unreadable: rows become weekdays.
MAX_DAY_ROWS = 31


def plot_occupancy_day_hour(res: Results, path: Path) -> Path:
    """Whole-lot occupancy for every measured day (rows) and hour (columns): the weekly
    pattern and any trend. Long runs are folded onto the days of the week."""
    occ = _measured(res, res.occupancy)
    occ = occ[occ["group_kind"].astype(str) == "total"]
    when = _clock(res, occ["time_s"])
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
    groups = [("level", lv, f"Level {lv}") for lv in _levels(occ)]
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
                day = (sel["time_s"].to_numpy() + _sec_of_day(res)) // DAY_S
                per_rep = sel.assign(day=day).groupby(["replication", "day"])["occupancy"]
                mean = per_rep.mean().groupby("day").agg(["mean", "min", "max"]) * 100
                peak = per_rep.max().groupby("day").mean() * 100
                t = _clock(res, mean.index.to_numpy() * DAY_S - _sec_of_day(res) + DAY_S / 2)
                ax.fill_between(t, mean["min"], mean["max"], color=colour, alpha=0.25, lw=0)
                ax.plot(t, mean["mean"], color=colour, lw=1.5, label="daily mean")
                ax.plot(t, peak, color=colour, lw=1.0, ls="--", label="daily peak")
                if k == 0:
                    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3)
            else:
                stats = sel.groupby("time_s")["occupancy"].agg(["mean", "min", "max"]) * 100
                t = _clock(res, stats.index)
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
    v = _measured(res, res.vehicles, "arrival_s")
    hour = ((v["arrival_s"].to_numpy() + _sec_of_day(res)) % DAY_S) // HOUR_S
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
                day = (sel["time_s"].to_numpy() + _sec_of_day(res)) // DAY_S
                worst = sel.assign(day=day).groupby(["replication", "day"])["queue"].max()
                stats = worst.groupby("day").agg(["mean", "max"])
                t = _clock(res, stats.index.to_numpy() * DAY_S - _sec_of_day(res) + DAY_S / 2)
            else:
                stats = sel.groupby("time_s")["queue"].agg(["mean", "max"])
                t = _clock(res, stats.index)
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
                    f"wait before service: mean {_secs(wait['mean'])}, p95 {_secs(p95['mean'])}",
                    transform=ax.transAxes,
                    va="top",
                    fontsize=9.5,
                    bbox={"facecolor": "white", "edgecolor": "0.8", "boxstyle": "round"},
                )
        axes[0][0].legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3)
        axes[-1][0].set_xlabel("simulated date and time")
        step = _sample_step_min(lanes)
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
    v = _measured(res, res.vehicles[res.vehicles["amount"].notna()], "leave_s")
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


def _secs(x: float) -> str:
    return f"{x:.1f} s" if x >= 1 else f"{x:.2f} s"


def _sample_step_min(frame: pd.DataFrame) -> float:
    times = np.unique(frame["time_s"].to_numpy())
    return float(np.min(np.diff(times)) / 60.0) if len(times) > 1 else 0.0


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
            t = _clock(res, np.append(series.index.to_numpy(), res.horizon_s))
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
                    _clock(res, series.index.to_numpy()),
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


# --------------------------------------------------------------------------- HTML


_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #222; max-width: 1120px; margin: 24px auto; padding: 0 20px; line-height: 1.45; }
h1 { font-size: 26px; margin-bottom: 2px; }
h2 { font-size: 19px; margin-top: 34px; border-bottom: 2px solid #0072B2; padding-bottom: 3px; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 10px 0; font-size: 14px; }
th, td { padding: 5px 12px; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f6fa; }
td.ci, .ci { color: #666; }
table.lots th, table.lots td { padding: 4px 8px; font-size: 13px; }
table.lots td { white-space: nowrap; }
.params td { text-align: left; }
figure { margin: 16px 0 26px 0; }
figure img { width: 100%; border: 1px solid #eee; }
figcaption { color: #444; font-size: 14px; margin-top: 4px; }
.note { background: #fff8e1; border-left: 4px solid #E69F00; padding: 6px 12px; }
footer { color: #777; font-size: 13px; margin-top: 40px; border-top: 1px solid #ddd;
         padding-top: 8px; }
"""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _level_rows(res: Results) -> str:
    rows = []
    for lv in _levels(res.occupancy):
        mean = res.metric(f"occupancy.level[{lv}].mean")
        peak = res.metric(f"occupancy.level[{lv}].peak")
        if mean is None or peak is None:
            continue
        cells = []
        for stat in ("mean", "peak"):
            mean, ci = value_ci(res.summary["metrics"], f"occupancy.level[{lv}].{stat}")
            cells.append(f"{html.escape(mean)}<span class='ci'> ({html.escape(ci)})</span>")
        rows.append(
            f"<tr><td>Level {html.escape(lv)}</td><td>{cells[0]}</td><td>{cells[1]}</td></tr>"
        )
    return "\n".join(rows)


def _params(res: Results) -> list[tuple[str, str]]:
    s = res.summary
    occ = res.occupancy
    total = occ[occ["group_kind"].astype(str) == "total"]
    capacity = int(total["capacity"].iloc[0]) if "capacity" in occ.columns and len(total) else None
    out = [
        ("Scenario", res.name),
        ("Simulated", f"{res.start:%a %d %b %Y %H:%M} + {s['horizon_days']:g} days"),
        (
            "Warm-up (excluded)",
            f"{s.get('warmup_hours', 0):g} h → {figures.days_text(res.measured_days)} measured",
        ),
        ("Replications", f"{res.replications} (seed {s.get('seed', '?')})"),
    ]
    levels = _levels(occ)
    if capacity is not None:
        out.append(
            ("Capacity", f"{capacity:,} spots on {len(levels)} level(s): {', '.join(levels)}")
        )
    sc = res.scenario
    if sc is not None:
        out.insert(1, ("Facility", ", ".join(lot.name for lot in sc.lot_specs)))
        if sc.tariff is not None:
            bands = ", ".join(
                b.name or f"{','.join(b.days)} {b.start}-{b.end}" for b in sc.tariff.bands
            )
            out.append(("Tariff", sc.tariff.name + (f" (bands: {bands})" if bands else "")))
        else:
            out.append(("Tariff", "none (no revenue)"))
    return out


def build_report(folder: str | Path, scenario: str | Path | None = None) -> Path:
    """Draw every chart into ``folder/plots/`` and write ``folder/report.html``; return its path.

    Raises :class:`ReportError` when the folder is not a results folder.
    """
    if not Path(folder).is_dir():
        raise ReportError(f"{folder}: no such results folder")
    with claim(folder, option=""):
        return _build_report(load_results(folder, scenario))


def _build_report(res: Results) -> Path:
    plots = res.path / "plots"
    plots.mkdir(exist_ok=True)
    sections: list[Section] = []
    sections.append(
        (
            "Headline figures with their 95% intervals",
            plot_headline_ci(res, plots / "headline_ci.png"),
            "Grey dots are the replications; the blue bar is the 95% t confidence interval of "
            "the mean. A wide bar means more replications are needed before deciding.",
        )
    )
    metrics = res.summary.get("metrics", {})
    lots = _lots(res.occupancy)
    if lots:
        sections.append(
            (
                "Lots of the network",
                plot_network(metrics, lots, plots / "network_lots.png"),
                "Per lot, mean over replications with the 95% interval. Drivers are counted at "
                "the lot they headed for first: 'drove on' tried another lot, 'lost' parked "
                "nowhere.",
                network_html(metrics, lots),
            )
        )
    for comp in components(metrics):
        chart = None
        if comp.headline:
            path = plots / f"{comp.key}.png"
            chart = plot_intervals(metrics, comp.headline, res.replications, path, comp.title)
        sections.append(
            (
                comp.title,
                chart,
                f"The {comp.title.lower()} component's headline figures: grey dots are the "
                "replications, the blue bar the 95% interval of the mean.",
                component_html(metrics, comp),
            )
        )
    sections.append(
        (
            "Occupancy by level and hour of day",
            plot_occupancy_heatmap(res, plots / "occupancy_heatmap.png"),
            "Mean share of occupied spots over all measured days and replications. Cells of "
            "85 % and more mean drivers search for a spot; full levels push drivers upward.",
        )
    )
    if res.measured_days >= 2:
        sections.append(
            (
                "Whole-lot occupancy by day (or weekday) and hour",
                plot_occupancy_day_hour(res, plots / "occupancy_day_hour.png"),
                "Average over all replications and, for runs of more than "
                f"{MAX_DAY_ROWS} days, over every week: which weekdays and hours fill the lot."
                if res.occupancy["time_s"].max() / DAY_S > MAX_DAY_ROWS
                else "One row per simulated day: which days and hours fill the lot.",
            )
        )
    sections.append(
        (
            "Occupancy over time",
            plot_occupancy_levels(res, plots / "occupancy_levels.png"),
            "The line is the mean over replications, the band spans the lowest to the highest "
            "replication at each instant. The grey area is the warm-up, excluded from figures.",
        )
    )
    sections.append(
        (
            "Arrivals and lost drivers by hour of day",
            plot_lost_by_hour(res, plots / "lost_by_hour.png")
            if res.vehicles is not None
            else None,
            "Blocked: no compatible spot; reneged: waited for a spot longer than their "
            "patience; balked: the quoted price was above what they would pay."
            if res.vehicles is not None
            else NO_VEHICLES,
        )
    )
    if len(res.lanes) and not res.lanes["queue"].any():
        step = _sample_step_min(res.lanes)
        waits = ", ".join(
            f"{lane} {_secs(m['mean'])}"
            for lane in ("entry", "exit")
            if (m := res.metric(f"{lane}_wait_s.mean")) is not None and m.get("mean") is not None
        )
        sections.append(
            (
                "Barrier queues",
                None,
                f"No car was queued behind a barrier at any sampled instant (every {step:g} min)."
                + (f" Mean wait before service: {waits}." if waits else ""),
            )
        )
    elif len(res.lanes):
        sections.append(
            (
                "Barrier queues",
                plot_lanes(res, plots / "lanes.png"),
                "Cars waiting behind the entry and exit barriers (the one being served is not "
                "counted).",
            )
        )
    else:
        sections.append(("Barrier queues", None, "This scenario models no barriers."))
    caption = (
        "Amounts charged at exits inside the measured window, per day; a stay counts in the "
        "band in force when it entered. Error bars: 95% t interval over replications."
    )
    if res.scenario is not None and res.scenario.tariff is None:
        caption += " The scenario has no tariff, so there is no revenue."
    elif res.scenario is not None and not res.scenario.tariff.bands:  # type: ignore[union-attr]
        caption += " The tariff has no time bands: every stay pays the default rate."
    if res.vehicles is None:
        sections.append(("Revenue", None, NO_VEHICLES))
    else:
        sections.append(("Revenue", plot_revenue(res, plots / "revenue.png"), caption))
    if res.rates is not None and len(res.rates):
        sections.append(
            (
                "Adaptive pricing",
                plot_rates(res, plots / "rates.png"),
                "The hourly rate each band charged over time (mean over replications).",
            )
        )
    page = _html(res, sections)
    out = res.path / "report.html"
    return write_text(out, page)


def _html(res: Results, sections: list[Section]) -> str:
    e = html.escape
    desc = res.scenario.description.strip() if res.scenario is not None else ""
    params = "\n".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in _params(res))
    notes = "\n".join(f'<p class="note">{e(n)}</p>' for n in res.notes)
    body = []
    for section in sections:
        title, png, caption = section[:3]
        body.append(f"<h2>{e(title)}</h2>")
        if len(section) > 3:
            body.append(section[3])
        if png is None:
            body.append(f"<p>{e(caption)}</p>")
        else:
            body.append(f"<figure>{_img(png)}<figcaption>{e(caption)}</figcaption></figure>")
    levels = _level_rows(res)
    level_table = (
        "<h3>Occupancy by level</h3><table><tr><th>level</th><th>mean (95% CI)</th>"
        f"<th>peak (95% CI)</th></tr>{levels}</table>"
        if levels
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ParkTwin report: {e(res.name)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>ParkTwin report: {e(res.name)}</h1>
<p class="sub">{e(desc)}</p>
{notes}
<h2>Run</h2>
<table class="params">
{params}
</table>
<h2>Headline figures</h2>
<p>Mean over {_plural(res.replications, "replication")}, measured after the warm-up, with the 95 % t
confidence interval of the mean (clipped to what the figure can take).</p>
{figure_table(res.summary["metrics"], res.headline())}
{level_table}
{"".join(body)}
<h2>Every figure</h2>
{all_figures_html(res.summary.get("metrics", {}))}
<footer>Generated by ParkTwin on {datetime.now():%Y-%m-%d %H:%M} from
{e(str(res.path))}. Every figure is computed per replication; replications are independent
runs with their own random streams.</footer>
</body>
</html>
"""
