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

The parts: :mod:`twin.report_data` (reading the folder back), :mod:`twin.report_charts` (the
charts), :mod:`twin.report_sections` (tables and sections shared with other reports) and, here,
the page itself.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime
from pathlib import Path

from twin import figures
from twin.outputs import claim, write_text
from twin.report_charts import (
    DAILY_AFTER_DAYS,
    MAX_DAY_ROWS,
    plot_headline_ci,
    plot_lanes,
    plot_lost_by_hour,
    plot_occupancy_day_hour,
    plot_occupancy_heatmap,
    plot_occupancy_levels,
    plot_rates,
    plot_revenue,
    total_label,
)
from twin.report_data import (
    DAY_S,
    HOUR_S,
    NO_VEHICLES,
    ReportError,
    Results,
    check_results_folder,
    find_scenario,
    format_secs,
    level_names,
    load_results,
    lot_names,
    sample_step_min,
)
from twin.report_sections import (
    all_figures_html,
    component_html,
    components,
    figure_table,
    network_html,
    plot_intervals,
    plot_network,
    value_ci,
)
from twin.report_sections import plural as _plural

__all__ = [
    "DAILY_AFTER_DAYS",
    "DAY_S",
    "HOUR_S",
    "MAX_DAY_ROWS",
    "NO_VEHICLES",
    "ReportError",
    "Results",
    "Section",
    "build_report",
    "find_scenario",
    "load_results",
    "plot_headline_ci",
    "plot_lanes",
    "plot_lost_by_hour",
    "plot_occupancy_day_hour",
    "plot_occupancy_heatmap",
    "plot_occupancy_levels",
    "plot_rates",
    "plot_revenue",
    "total_label",
]

#: A report section: title, chart (or None), caption, and optionally a table (HTML) above it.
Section = tuple[str, Path | None, str] | tuple[str, Path | None, str, str]


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
    for lv in level_names(res.occupancy):
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
    levels = level_names(occ)
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
    check_results_folder(folder)
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
    lots = lot_names(res.occupancy)
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
        step = sample_step_min(res.lanes)
        waits = ", ".join(
            f"{lane} {format_secs(m['mean'])}"
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
