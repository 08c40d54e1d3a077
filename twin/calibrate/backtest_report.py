"""The backtest's plots and HTML summary (matplotlib imported here only, on first use).

Three pictures a reader needs to decide whether to trust the twin for a lot: MAE per car park
and horizon for the three methods (is the twin better than the simple rules?), the twin's band
coverage against the nominal 80% and 95% (are its bands honest?), and a week of one car park's
forecasts against what happened (what the numbers mean on the ground).
"""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from twin.calibrate.scenarios import slug
from twin.outputs import save_figure, write_text

#: Colours of the methods, the same in every plot.
COLOURS = {"twin": "tab:blue", "seasonal_naive": "tab:grey", "ets": "tab:orange"}
LABELS = {"twin": "twin", "seasonal_naive": "seasonal naive (a week earlier)", "ets": "ETS"}


def _save(fig, path: Path) -> Path:
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def plot_mae(table: pd.DataFrame, horizons: tuple[int, ...], path: Path) -> Path:
    """Horizontal bars: MAE (percentage points of capacity) per site, one panel per horizon."""
    sites = sorted(table["site"].unique())
    fig, axes = plt.subplots(
        1,
        len(horizons),
        figsize=(4.2 * len(horizons), 0.32 * len(sites) + 2.0),
        sharey=True,
        layout="constrained",
    )
    axes = np.atleast_1d(axes)
    y = np.arange(len(sites))
    width = 0.27
    for ax, h in zip(axes, horizons, strict=True):
        t = table[table["horizon_h"] == h].set_index(["site", "method"])["mae"]
        for k, method in enumerate(COLOURS):
            vals = [100 * t.get((s, method), np.nan) for s in sites]
            ax.barh(y + (k - 1) * width, vals, width, color=COLOURS[method], label=LABELS[method])
        ax.set_title(f"{h} h ahead")
        ax.set_xlabel("MAE (% of capacity)")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, sites, fontsize=8)
    axes[0].invert_yaxis()
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3)
    return _save(fig, path)


def plot_coverage(table: pd.DataFrame, horizons: tuple[int, ...], path: Path) -> Path:
    """The twin's 80% and 95% band coverage per site and horizon, nominal values marked."""
    tw = table[table["method"] == "twin"]
    sites = sorted(tw["site"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.32 * len(sites) + 1.6), sharey=True)
    y = np.arange(len(sites))
    markers = dict(zip(horizons, ("o", "s", "^", "D", "v", "x"), strict=False))
    for ax, (col, nominal) in zip(axes, (("coverage80", 80), ("coverage95", 95)), strict=True):
        ax.axvspan(nominal - 5, min(nominal + 5, 100), color="tab:green", alpha=0.12)
        ax.axvline(nominal, color="tab:green", lw=1)
        t = tw.set_index(["site", "horizon_h"])[col]
        for h in horizons:
            vals = [100 * t.get((s, h), np.nan) for s in sites]
            ax.plot(vals, y, markers[h], ls="none", label=f"{h} h", alpha=0.8)
        ax.set_xlabel(f"share of actuals inside the {nominal}% band (%)")
        ax.set_title(f"{nominal}% band (green: nominal ± 5 points)")
        low = np.nanmin(100 * tw[col].to_numpy(float)) if len(tw) else 0.0
        ax.set_xlim(max(0.0, min(40.0, np.floor(low / 10) * 10 - 5)), 101)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, sites, fontsize=8)
    axes[0].invert_yaxis()
    axes[1].legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def plot_week(forecasts: pd.DataFrame, site: str, horizon: int, path: Path) -> Path:
    """One site's first test week: actual occupancy and each method's forecast made
    ``horizon`` h earlier (the twin with its 80% band)."""
    f = forecasts[(forecasts["site"] == site) & (forecasts["horizon_h"] == horizon)]
    first = pd.Timestamp(f["target"].min()).normalize()
    f = f[f["target"] < first + pd.Timedelta(days=7)]
    fig, ax = plt.subplots(figsize=(11, 3.8))
    tw = f[f["method"] == "twin"].sort_values("target")
    day = tw["target"].dt.normalize()
    for _, d in tw.groupby(day):
        ax.fill_between(d["target"], 100 * d["p10"], 100 * d["p90"], color="tab:blue", alpha=0.2)
    for method in COLOURS:
        m = f[f["method"] == method].sort_values("target")
        for k, (_, d) in enumerate(m.groupby(m["target"].dt.normalize())):
            ax.plot(
                d["target"],
                100 * d["forecast"],
                ".-",
                color=COLOURS[method],
                lw=1,
                ms=3,
                label=LABELS[method] if k == 0 else None,
            )
    for k, (_, d) in enumerate(tw.groupby(day)):
        ax.plot(d["target"], 100 * d["actual"], "k-", lw=1.6, label="actual" if k == 0 else None)
    ax.set_ylabel("occupancy (% of capacity)")
    ax.set_title(f"{site}: forecasts made {horizon} h ahead (twin's 80% band shaded)")
    ax.legend(fontsize=8, ncol=5, loc="upper left")
    ax.set_ylim(0, 105)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _table_html(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append("–" if v != v else f"{v:.3f}")
            else:
                cells.append(html.escape(str(v)))
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def summary_frame(result) -> pd.DataFrame:
    """One row per site and horizon: MAE of each method (twin, naive, ETS; percentage points
    of capacity), the twin's band coverage (%), and whether the twin beats each baseline."""
    t = result.table
    wide = t.pivot_table(index=["site", "horizon_h"], columns="method", values="mae") * 100
    tw = t[t["method"] == "twin"].set_index(["site", "horizon_h"])
    wide["n"] = tw["n"]
    wide["coverage80 %"] = 100 * tw["coverage80"]
    wide["coverage95 %"] = 100 * tw["coverage95"]
    wide["twin < naive"] = np.where(wide["twin"] < wide["seasonal_naive"], "yes", "NO")
    wide["twin < ets"] = np.where(wide["twin"] < wide["ets"], "yes", "no")
    wide = wide.rename(columns={"seasonal_naive": "naive", "ets": "ETS"})
    cols = ["n", "twin", "naive", "ETS", "coverage80 %", "coverage95 %"]
    return wide.reset_index()[["site", "horizon_h", *cols, "twin < naive", "twin < ets"]]


def write_report(result, out: Path) -> list[Path]:
    """plots/*.png and backtest.html in ``out``."""
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    files = []
    if len(result.table):
        files.append(plot_mae(result.table, result.horizons, plots / "mae.png"))
        files.append(plot_coverage(result.table, result.horizons, plots / "coverage.png"))
        for site in sorted(result.table["site"].unique()):
            files.append(
                plot_week(
                    result.forecasts,
                    site,
                    result.horizons[0],
                    plots / f"week_{slug(site)}.png",
                )
            )
    v = result.verdicts()
    n_sites = len(v)
    lines = [
        "<!doctype html><meta charset='utf-8'><title>ParkTwin backtest</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:2px 6px;text-align:right}td:first-child{text-align:left}</style>",
        "<h1>Backtest: the twin against seasonal naive and ETS</h1>",
        f"<p>Fitted on readings up to {result.train_until.date()}; forecasts from every hourly "
        f"origin after it, {', '.join(f'{h} h' for h in result.horizons)} ahead. MAE in "
        "percentage points of capacity; coverage: share of actuals inside the twin's band.</p>",
    ]
    if n_sites:
        all_naive = int((v["beats_naive_at"] == v["horizons"]).sum())
        most_ets = int((v["beats_ets_at"] * 2 > v["horizons"]).sum())
        cov = int((v["coverage80_ok_at"] == v["horizons"]).sum())
        lines.append(
            f"<p><b>{all_naive} of {n_sites}</b> car parks: twin below seasonal naive at every "
            f"horizon. <b>{most_ets} of {n_sites}</b>: below ETS at most horizons. "
            f"<b>{cov} of {n_sites}</b>: 80% band coverage within 75–85% at every horizon.</p>"
        )
    lines += [
        "<h2>Per car park</h2>",
        _table_html(summary_frame(result)) if len(result.table) else "<p>no forecasts</p>",
    ]
    if result.unusable:
        lines.append("<h2>Not backtested</h2><ul>")
        lines += [
            f"<li>{html.escape(s)}: {html.escape(w)}</li>" for s, w in result.unusable.items()
        ]
        lines.append("</ul>")
    lines.append("<h2>Plots</h2>")
    for f in files:
        lines.append(f"<p><img src='plots/{f.name}' style='max-width:100%'></p>")
    if len(result.families):
        chosen = result.families[result.families["chosen"]]
        lines += [
            "<h2>How each twin forecasts (chosen on the training part)</h2>",
            _table_html(
                chosen[
                    [
                        "site",
                        "family",
                        "profile",
                        "stay_mean_min",
                        "weight",
                        "recent_level",
                        "drift_cv",
                        "train_mae",
                    ]
                ]
            ),
        ]
    files.append(write_text(out / "backtest.html", "\n".join(lines) + "\n"))
    return files
