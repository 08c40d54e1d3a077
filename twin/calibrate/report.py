"""The calibration report: PNG plots and one HTML page beside the estimates JSON.

Plots show the fit against the data it came from, so a planner sees where it is good and
where not: the arrival profile with its intervals, the stay histogram with the chosen law and
a QQ plot, the tariff's receipts it does not reproduce; for counts, the observed daily curves
against the fitted mean and the fit error per hour of day.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml
from scipy import stats

from twin.calibrate.occupancy import DAY_TYPES, day_kind, day_type
from twin.calibrate.scenarios import slug
from twin.calibrate.tickets import FAMILIES
from twin.outputs import save_figure, write_text

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


#: scipy.stats name of each fitted family, by its scenario name (the inverse of FAMILIES)
_SCIPY_NAME = {name: scipy_name for scipy_name, name in FAMILIES.items()}


def _law(family: str, params) -> stats.rv_continuous:
    """The fitted stay law of ``family`` (scenario name) with its scipy parameters."""
    return getattr(stats, _SCIPY_NAME[family])(*params)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def plot_profile(profile: pd.DataFrame, title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4.2))
    colors = plt.cm.tab10(np.arange(7))
    for d in range(7):
        p = profile[profile["weekday"] == d].sort_values("hour")
        if p.empty:
            continue
        hours = np.append(p["hour"].to_numpy(), 24)  # the last hour drawn to 24:00

        def ext(col: str, p=p) -> np.ndarray:
            return np.append(p[col].to_numpy(), p[col].iloc[-1])

        ax.step(hours, ext("rate"), where="post", color=colors[d], label=DAYS[d])
        ax.fill_between(
            hours, ext("ci_low"), ext("ci_high"), step="post", color=colors[d], alpha=0.12
        )
    ax.set_xlabel("hour of arrival")
    ax.set_ylabel("arrivals per hour (95% CI shaded)")
    ax.set_xticks(range(0, 25, 2))
    ax.set_xlim(0, 24)
    ax.set_title(title)
    ax.legend(ncol=7, fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_stays(stays, title: str, path: Path) -> Path:
    """Histogram with every fitted family, and the QQ plot of the chosen one."""
    sf = stays.overall
    x = sf.values
    fig, (ax, qq) = plt.subplots(1, 2, figsize=(11, 4.2))
    hi = float(np.quantile(x, 0.99))
    ax.hist(x[x <= hi] / 60, bins=60, density=True, color="0.8", label="stays (to p99)")
    grid = np.linspace(1e-3, hi, 300)
    for row in sf.table.itertuples():
        dist = _law(row.family, row.params)
        ax.plot(
            grid / 60,
            dist.pdf(grid) * 60,
            label=f"{row.family} (AIC {row.aic:,.0f}, KS {row.ks:.3f})",
        )
    ax.set_xlabel("stay (hours)")
    ax.set_ylabel("density per hour")
    ax.set_title(f"{title}: chosen {sf.chosen}")
    ax.legend(fontsize=7)
    q = np.arange(1, 200) / 200
    emp = np.quantile(x, q) / 60
    best = sf.table.iloc[0]
    dist = _law(best["family"], best["params"])
    theo = dist.ppf(q) / 60
    qq.plot(theo, emp, ".", ms=3, label=f"{best['family']} (lowest AIC)")
    lim = max(theo.max(), emp.max())
    qq.plot([0, lim], [0, lim], color="k", lw=0.8)
    qq.set_xlabel("fitted quantile (h)")
    qq.set_ylabel("observed quantile (h)")
    qq.set_title(
        "QQ plot" + (f"; by arrival hour: {len(stays.bands)} bands" if stays.bands else "")
    )
    qq.legend(fontsize=8)
    return _save(fig, path)


def plot_occupancy_fit(
    pred: pd.DataFrame, site: str, path: Path, aside: pd.DataFrame | None = None
) -> Path:
    """Observed daily curves (grey: fitted weeks, orange: held out), the fitted mean of each
    day kind (blue; dashed purple: special days and weeks at their own multiplier) and the
    readings the cleaning set aside (red crosses: frozen counters, counter offsets, ...)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
    pred = pred.copy()
    pred["h"] = (pred["time"] - pred["time"].dt.normalize()).dt.total_seconds() / 3600
    pred["kind"] = day_type(pred["time"])
    pred["code"] = day_kind(pred["time"])
    pred["day"] = pred["time"].dt.normalize()
    if "multiplier" not in pred:
        pred["multiplier"] = 1.0
    if aside is not None and len(aside):
        aside = aside.copy()
        aside["h"] = (aside["time"] - aside["time"].dt.normalize()).dt.total_seconds() / 3600
        aside["kind"] = day_type(aside["time"])
    for k, ax in enumerate(axes):
        sub = pred[pred["kind"] == k]
        for (_day, period), d in sub.groupby(["day", "period"]):
            ax.plot(
                d["h"],
                d["occupied"] / d["capacity"],
                color="0.75" if period == "fit" else "tab:orange",
                lw=0.6,
                alpha=0.6,
            )
        for (_code, mult), s in sub.groupby(["code", sub["multiplier"].round(4)]):
            s = s.sort_values("h").drop_duplicates("h")
            own = mult != 1.0
            ax.plot(
                s["h"],
                s["predicted"] / s["capacity"],
                color="tab:purple" if own else "tab:blue",
                lw=1 if own else 2,
                ls="--" if own else "-",
            )
        if aside is not None and len(aside):
            a = aside[aside["kind"] == k]
            ax.plot(
                a["h"],
                (a["occupied"] / a["capacity"]).clip(0, 1.1),
                "x",
                color="tab:red",
                ms=4,
            )
        ax.set_title(f"{site}: {DAY_TYPES[k]}")
        ax.set_xlabel("hour of day")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("occupancy (share of capacity)")
    axes[0].plot([], [], color="tab:blue", lw=2, label="fitted mean")
    axes[0].plot([], [], color="tab:purple", ls="--", label="special day / week")
    axes[0].plot([], [], color="0.75", label="fitted days")
    axes[0].plot([], [], color="tab:orange", label="held-out days")
    axes[0].plot([], [], "x", color="tab:red", label="set aside")
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def plot_error_by_hour(ebh: pd.DataFrame, path: Path) -> Path:
    piv = ebh[ebh["period"] == "fit"].pivot(index="site", columns="hour", values="mae_rate")
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(piv) + 1.5))
    im = ax.imshow(piv.to_numpy() * 100, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(piv)), piv.index, fontsize=7)
    ax.set_xticks(range(len(piv.columns)), [f"{h:02d}h" for h in piv.columns], fontsize=8)
    ax.set_title("fit error per hour of day: mean |fitted − observed| (points of capacity)")
    fig.colorbar(im, ax=ax, label="MAE, % of capacity")
    for i in range(piv.shape[0]):
        for j in range(piv.shape[1]):
            v = piv.iat[i, j]
            if math.isfinite(v):
                ax.text(
                    j,
                    i,
                    f"{v * 100:.1f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="w" if v < np.nanmax(piv.to_numpy()) * 0.6 else "k",
                )
    return _save(fig, path)


def _best_family(fit) -> str:
    """The lowest-AIC family and its KS statistic (what 'empirical' was chosen over)."""
    best = fit.table.iloc[0]
    return f"best family {best['family']}, KS {best['ks']:.3f}, n {fit.n:,}"


def _table(frame: pd.DataFrame, floats: str = "{:.3f}") -> str:
    return frame.to_html(
        index=False, float_format=lambda v: floats.format(v), border=0, classes="t", na_rep=""
    )


STYLE = (
    "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
    "table.t{border-collapse:collapse;font-size:13px}table.t td,table.t th"
    "{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}img{max-width:100%}"
    "</style>"
)


def write_report(result, out: Path) -> list[Path]:
    """PNG plots under ``out/plots`` and ``out/report.html``; returns the files written."""
    plots = out / "plots"
    files: list[Path] = []
    parts = [
        f"<h1>Calibration: {html.escape(result.kind)}</h1>",
        f"<p>Source: <code>{html.escape(str(result.estimates['source']))}</code>. Every "
        "estimate is in <code>estimates.json</code>; tables as CSV beside this page.</p>",
        "<h2>Input problems</h2>",
        f"<p>{result.cleaning.received:,} rows received; used: "
        + ", ".join(f"{k} {v:,}" for k, v in result.cleaning.used.items())
        + "</p>",
        _table(result.frames["cleaning"]),
    ]
    if result.kind == "tickets":
        for site, fit in result.fits.items():
            parts.append(f"<h2>{html.escape(site)}</h2>")
            for cls, (arrivals, stays) in fit.streams.items():
                p = plot_profile(
                    arrivals.profile,
                    f"{site} {cls}: arrivals by weekday and hour",
                    plots / f"arrivals_{slug(site)}_{slug(cls)}.png",
                )
                s = plot_stays(
                    stays, f"{site} {cls}", plots / f"stays_{slug(site)}_{slug(cls)}.png"
                )
                files += [p, s]
                parts.append(
                    f"<h3>{html.escape(cls)}</h3><img src='plots/{p.name}'>"
                    f"<img src='plots/{s.name}'>"
                )
                if len(arrivals.special_days):
                    parts.append(
                        "<p>Special days (arrivals beyond chance from their weekday):"
                        "</p>" + _table(arrivals.special_days)
                    )
                bands = "; ".join(
                    f"{a:02d}-{b:02d}h: {f.chosen} ({_best_family(f)})" for (a, b), f in stays.bands
                )
                parts.append(
                    f"<p>Stays: {stays.overall.chosen} ({_best_family(stays.overall)})"
                    + (f"; by arrival hour: {bands}" if bands else "")
                    + "</p>"
                )
            if fit.tariff is not None and fit.tariff.spec is not None:
                parts.append(
                    f"<p>Tariff: reproduces <b>{fit.tariff.share_exact:.2%}</b> of "
                    f"{fit.tariff.n:,} receipts to the cent ({len(fit.tariff.mismatches):,} "
                    "not; listed in tariff_mismatches.csv).</p><pre>"
                    + html.escape(
                        yaml.safe_dump(
                            {"tariff": fit.tariff.spec.model_dump(mode="json", exclude_unset=True)},
                            sort_keys=False,
                            default_flow_style=None,
                        )
                    )
                    + "</pre>"
                )
    else:
        est = result.frames["estimates"]
        parts.append(
            "<h2>Fit per site</h2><p>Occupancy rates are shares of capacity; MAE is "
            "the mean absolute difference between the fitted mean curve and each "
            "reading, on the fitted weeks and on the held-out weeks.</p>"
        )
        parts.append(
            _table(
                est[
                    [
                        "site",
                        "capacity",
                        "stay_family",
                        "stay_mean_min",
                        "arrivals_per_day_weekday",
                        "day_factor_cv",
                        "fit_mae_rate",
                        "held_out_mae_rate",
                    ]
                ],
                "{:.3f}",
            )
        )
        if len(result.frames["unusable"]):
            parts.append("<p>Not fitted:</p>" + _table(result.frames["unusable"]))
        special, periods = result.frames["special_days"], result.frames["periods"]
        parts.append(
            f"<h2>Calendar</h2><p>{len(special)} special day(s): a day's level (its readings "
            "over its weekday's fitted curve, relative to its week's) beyond chance, two-sided "
            "z, Bonferroni over the days; each has its own multiplier in the scenario and is "
            f"left out of the ordinary profile. {len(periods)} week(s) at a level of their own "
            "(ANOVA across weeks, then a t-test per week). Readings set aside by the cleaning "
            "(frozen counters, counter offsets) are in set_aside.csv.</p>"
        )
        if len(special):
            parts.append(_table(special.drop(columns="test"), "{:.3g}"))
        if len(periods):
            parts.append(_table(periods, "{:.3g}"))
        if len(result.frames["error_by_hour"]):
            e = plot_error_by_hour(result.frames["error_by_hour"], plots / "error_by_hour.png")
            files.append(e)
            parts.append(f"<img src='plots/{e.name}'>")
        pred = result.frames["predictions"]
        for site in result.fits:
            aside = result.frames["set_aside"]
            f = plot_occupancy_fit(
                pred[pred["site"] == site],
                site,
                plots / f"fit_{slug(site)}.png",
                aside[aside["site"] == site],
            )
            files.append(f)
            parts.append(f"<h3>{html.escape(site)}</h3><img src='plots/{f.name}'>")
        parts.append(f"<p>Nights: {html.escape(result.estimates['night_assumption'])}.</p>")
    page = "<!doctype html><meta charset='utf-8'><title>calibration</title>" + STYLE
    files.append(write_text(out / "report.html", page + "\n".join(parts)))
    return files
