"""What the duty manager sees: a terminal board beside the lot's own, and a forwardable report.

``board`` is a rich renderable: per level the free spots as the display boards would show them
(sensors, falling back to the gate picture for bays not trusted, with the source and the
confidence), the forecast with its band and fill time, open alerts, and the feed's counts
(applied, dead-lettered by reason). ``write_report`` writes the comparison of actual and
predicted as PNG charts and an HTML page that embeds them (one file to forward).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from twin.live.mirror import Mirror

HOUR = 3600.0


def _bar(occupied: int, capacity: int, width: int = 10) -> Text:
    """The level's fill as a bar and its share: ``██████░░░░  57%`` (15 columns, so the board
    fits an 80-column terminal whole; a 20-column bar was cut to ``█████████…`` there)."""
    share = occupied / capacity if capacity else 0.0
    n = min(width, max(0, round(share * width)))
    colour = "green" if share < 0.85 else "yellow" if share < 0.95 else "red"
    return Text("█" * n + "░" * (width - n) + f" {share:4.0%}", style=colour)


def board(mirror: Mirror, feed: dict[str, Any] | None = None, forecast: Any = None) -> Group:
    """The live view: levels like display boards, forecast, alerts, feed counts."""
    levels = mirror.levels()
    summary = mirror.summary()
    t = Table(
        title=f"{mirror.scenario.name} at {summary['time'][:16].replace('T', ' ')}",
        title_justify="left",
    )
    for col, just in (
        ("level", "left"),
        ("free", "right"),
        ("capacity", "right"),
        ("occupancy", "left"),
        ("source", "left"),
        ("confidence", "right"),
        ("closed / held", "right"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    t.columns[3].no_wrap = True
    t.columns[3].min_width = 15  # the bar and its share on one line
    t.columns[6].max_width = 6  # 'closed / held' over two lines
    for row in levels:
        free = row["free"]
        shown = Text("FULL", style="bold red") if free <= 0 else Text(str(free), style="bold")
        t.add_row(
            row["level"],
            shown,
            str(row["capacity"]),
            _bar(row["occupied"], row["capacity"]),
            row["source"].replace("+", " + "),  # 'sensors + counters' wraps, not cut
            f"{row['confidence']:.0%}",
            str(row["held"]) if row["held"] else "",
        )
    total_free = sum(r["free"] for r in levels)
    total_cap = sum(r["capacity"] for r in levels)
    t.add_row(
        "lot",
        Text(str(total_free), style="bold"),
        str(total_cap),
        _bar(total_cap - total_free, total_cap),
        "",
        "",
        "",
    )
    parts: list[Any] = [t]
    if forecast is not None:
        parts.append(
            Panel(
                "\n".join(forecast.summary()[: 1 + len(levels)]),
                title=f"forecast, next {forecast.hours:g} h ({forecast.replications} replications)",
                title_align="left",
            )
        )
    alerts = mirror.open_alerts()
    a = Table(title=f"alerts open: {len(alerts)}", title_justify="left")
    for col in ("since", "what", "where", "detail"):
        a.add_column(col)
    for alert in alerts[-12:]:
        a.add_row(
            _clock(mirror, alert.since_t),
            alert.kind.replace("_", " "),
            alert.subject,
            alert.message,
        )
    parts.append(a)
    feed = feed or {}
    counts = (
        f"received {feed.get('received', summary['offered']):,}  "
        f"applied {summary['applied']:,}  "
        f"dead-lettered {feed.get('dead_lettered', 0):,}"
    )
    by_reason = feed.get("by_reason") or {}
    if by_reason:
        counts += " (" + ", ".join(f"{k} {v}" for k, v in by_reason.items()) + ")"
    if summary["too_late"]:
        counts += f"  too late to fold in {summary['too_late']}"
    counts += (
        f"\ncars inside by the gates {mirror.fold.gate_open()}, on bays "
        f"{summary['occupied']}; paid {summary['paid']:,.2f}, charged by the tariff "
        f"{summary['priced']:,.2f}"
    )
    extra = [
        f"{label} {summary[key]:,}"
        for key, label in (
            ("queue", "waiting at the entry"),
            ("held", "bays held for reservations"),
            ("parked_before_feed", "parked before the feed began"),
        )
        if summary[key]
    ]
    if extra:
        counts += "\n" + "; ".join(extra)
    parts.append(Panel(counts, title="feed", title_align="left"))
    return Group(*parts)


def _clock(mirror: Mirror, t: float) -> str:
    return mirror.when(t).strftime("%a %H:%M")


# -- the report ------------------------------------------------------------------------------


def _series(mirror: Mirror) -> dict[str, Any]:
    """Actual (sampled every 15 min by the divergence detector) and predicted, as arrays."""
    import numpy as np

    from twin.live.divergence import BIN_S

    div = mirror.fold.divergence
    if div is None or div.prediction is None:
        raise ValueError(
            "the mirror ran without a prediction (--replications 0): nothing to compare"
        )
    if not div.samples:
        raise ValueError("the feed held less than 15 minutes of events: nothing to compare")
    pred = div.prediction
    t = np.array([s[0] for s in div.samples])
    entries = np.diff(np.array([s[1] for s in div.samples]), prepend=0)
    plates = np.diff(np.array([s[4] if len(s) > 4 else 0 for s in div.samples]), prepend=0)
    paid = np.diff(np.array([s[2] for s in div.samples]), prepend=0.0)
    occ = np.array([s[3] for s in div.samples], dtype=float)
    bins = np.array([pred.bin(x - BIN_S / 2) for x in t])
    bins_now = np.array([pred.bin(x) for x in t])
    # arrivals at the entry (the camera's plate reads) when the feed has them: the demand
    # the divergence detector judges; gate entries otherwise
    camera = plates.sum() > 0 and pred.arrivals_mean is not None
    var = pred.arrivals_var if camera and pred.arrivals_var is not None else pred.entries_var
    m2 = pred.revenue_m2 if pred.revenue_m2 is not None else pred.revenue_mean
    return {
        "time": [mirror.when(x).replace(tzinfo=None) for x in t],
        "arrivals_label": "arrivals at the entry" if camera else "gate entries",
        "entries": plates if camera else entries,
        "entries_mean": pred.mean_of("arrivals" if camera else "entries")[bins],
        "entries_sd": np.sqrt(var[bins]),
        "paid": paid,
        "revenue_mean": pred.revenue_mean[bins],
        "revenue_sd": np.sqrt(pred.revenue_dispersion * m2[bins]),
        "occ": occ,
        "occ_mean": pred.occ_mean[:, bins_now].T,
        "occ_sd": pred.occ_sd[:, bins_now].T,
        "levels": pred.level_names,
        "capacity": pred.capacity,
    }


def write_report(
    mirror: Mirror, out: str | Path, feed: dict[str, Any] | None = None, forecast: Any = None
) -> Path:
    """Charts of actual against predicted (PNG) and ``index.html`` embedding them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from twin.outputs import save_figure, write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s = _series(mirror)
    alerts = mirror.alerts()
    pngs: list[tuple[str, str]] = []

    def mark_alerts(ax) -> None:
        for a in alerts:
            ax.axvline(
                mirror.when(a.raised_t).replace(tzinfo=None), color="crimson", lw=0.8, alpha=0.6
            )

    def style(ax, ylabel: str) -> None:
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %H:%M"))
        ax.grid(alpha=0.3)

    def model_band(ax, mean, sd, color: str, label: str, floor: float | None = None) -> None:
        """The model's mean and its 95% band (mean ± 1.96 sd, cut at ``floor`` if given)."""
        low = mean - 1.96 * sd
        ax.fill_between(
            s["time"],
            low if floor is None else low.clip(floor),
            mean + 1.96 * sd,
            color=color,
            alpha=0.2,
            step="mid",
            label="model 95% band",
        )
        ax.plot(s["time"], mean, color=color, lw=1, label=label)

    # occupancy per level: actual against the model's band
    n = len(s["levels"])
    fig, axes = plt.subplots(n, 1, figsize=(11, 1.9 * n + 0.6), sharex=True, squeeze=False)
    for k, ax in enumerate(axes[:, 0]):
        model_band(ax, s["occ_mean"][:, k], s["occ_sd"][:, k], "tab:blue", "model mean")
        ax.plot(s["time"], s["occ"][:, k], color="black", lw=1.3, label="actual (mirror)")
        ax.set_ylim(0, s["capacity"][k] * 1.05)
        mark_alerts(ax)
        style(ax, f"{s['levels'][k]}\n(spots)")
    axes[0, 0].legend(loc="upper left", fontsize=8, ncol=3)
    axes[0, 0].set_title("Occupied spots per level: actual vs the model (red lines: alerts)")
    fig.tight_layout()
    pngs.append(("Occupancy per level", save_figure(fig, out / "occupancy.png").name))
    plt.close(fig)

    # entries and revenue per hour
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 5.5), sharex=True)
    per_h = HOUR / 900.0
    model_band(
        ax1, s["entries_mean"] * per_h, s["entries_sd"] * per_h, "tab:green", "model mean", 0
    )
    ax1.plot(
        s["time"],
        s["entries"] * per_h,
        color="black",
        lw=1.1,
        label=f"actual {s['arrivals_label']}",
    )
    mark_alerts(ax1)
    style(ax1, "per hour")
    ax1.legend(loc="upper left", fontsize=8, ncol=3)
    ax1.set_title(f"{s['arrivals_label'].capitalize()} and revenue per hour (15-min bins)")
    model_band(
        ax2,
        s["revenue_mean"] * per_h,
        s["revenue_sd"] * per_h,
        "tab:orange",
        "model mean (paid at exit)",
        0,
    )
    ax2.plot(s["time"], s["paid"] * per_h, color="black", lw=1.1, label="actual payments")
    mark_alerts(ax2)
    tariff = mirror.scenario.lot_specs[0].tariff
    style(ax2, f"{tariff.currency if tariff is not None else ''} per hour")
    ax2.legend(loc="upper left", fontsize=8, ncol=3)
    fig.tight_layout()
    pngs.append(("Entries and revenue", save_figure(fig, out / "arrivals_revenue.png").name))
    plt.close(fig)

    if forecast is not None:
        b = forecast.bands
        lv = b[b["group_kind"] == "level"]
        fig, ax = plt.subplots(figsize=(11, 4))
        for k, (name, part) in enumerate(lv.groupby("group", observed=True, sort=False)):
            c = f"C{k}"
            ax.fill_between(part["time"], part["p10"], part["p90"], color=c, alpha=0.2)
            ax.plot(part["time"], part["p50"], color=c, lw=1.3, label=f"{name}")
        ax.set_title(
            f"Forecast from now: occupied spots per level, median and 80% band "
            f"({forecast.replications} replications)"
        )
        style(ax, "occupied spots")
        # beside the axes: inside, it covered the top level's line at the start
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, title="level")
        fig.tight_layout()
        pngs.append(("Forecast", save_figure(fig, out / "forecast.png").name))
        plt.close(fig)

    summary = mirror.summary()
    feed = feed or {}
    rows = "".join(
        f"<tr><td>{html.escape(_clock(mirror, a.since_t))}</td>"
        f"<td>{html.escape(_clock(mirror, a.raised_t))}</td>"
        f"<td>{html.escape(a.kind.replace('_', ' '))}</td><td>{html.escape(a.subject)}</td>"
        f"<td>{html.escape(a.message)}</td>"
        f"<td>{'' if a.cleared_t is None else html.escape(_clock(mirror, a.cleared_t))}</td></tr>"
        for a in alerts
    )
    level_rows = "".join(
        f"<tr><td>{r['level']}</td><td>{r['free']}</td><td>{r['capacity']}</td>"
        f"<td>{r['source']}</td><td>{r['confidence']:.0%}</td></tr>"
        for r in mirror.levels()
    )
    images = "".join(
        f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
        f"src='data:image/png;base64,{base64.b64encode((out / name).read_bytes()).decode()}'>"
        for title, name in pngs
    )
    fc = ""
    if forecast is not None:
        fc = (
            "<h2>Forecast</h2><ul>"
            + "".join(f"<li>{html.escape(x)}</li>" for x in forecast.summary())
            + "</ul>"
        )
    reasons = ", ".join(f"{k} {v}" for k, v in (feed.get("by_reason") or {}).items())
    reasons = f" ({html.escape(reasons)})" if reasons else ""
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(mirror.scenario.name)}: actual vs predicted</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px}}
img{{max-width:100%}}</style></head><body>
<h1>{html.escape(mirror.scenario.name)}: the lot against its twin</h1>
<p>Feed up to {html.escape(summary["time"][:16].replace("T", " "))}:
received {feed.get("received", summary["offered"]):,}, applied {summary["applied"]:,},
dead-lettered {feed.get("dead_lettered", 0):,}{reasons}.
Cars on bays {summary["occupied"]} of {summary["capacity"]}; paid {summary["paid"]:,.2f},
charged by the tariff for the exits seen {summary["priced"]:,.2f}.</p>
<h2>Levels now</h2><table><tr><th>level</th><th>free</th><th>capacity</th><th>source</th>
<th>confidence</th></tr>{level_rows}</table>{fc}
<h2>Alerts ({len(alerts)})</h2><table><tr><th>since</th><th>raised</th><th>what</th>
<th>where</th><th>detail</th><th>cleared</th></tr>{rows}</table>
{images}
<p>Model bands: replications of the scenario binned by time of week (15 min).</p>
</body></html>
"""
    return write_text(out / "index.html", page)


__all__ = ["board", "write_report"]
