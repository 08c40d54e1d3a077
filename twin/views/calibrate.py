"""What `parktwin calibrate` prints: one row per fitted site (and stream)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Column, Table


def calibration_table(result: Any) -> Table:
    """Per site: capacity and the fitted demand and stays (tickets: per stream, with the
    share of receipts the fitted tariff reproduces; occupancy: fit and held-out errors)."""
    if result.kind == "tickets":
        table = Table("site", "capacity", "arrivals/day (mon)", "stays", "tariff reproduced")
        for site, est in result.estimates["sites"].items():
            for cls, s in est["streams"].items():
                share = (est.get("tariff") or {}).get("share_reproduced_to_the_cent")
                table.add_row(
                    f"{site} {cls}",
                    str(est["capacity"]),
                    f"{s['arrivals_per_day'].get('mon', 0):,.0f}",
                    s["stays"]["overall"]["chosen"]
                    + (f" ({len(s['stays']['bands'])} hour bands)" if s["stays"]["bands"] else ""),
                    "–" if share is None else f"{share:.2%}",
                )
        return table
    # Site names whole (they are what the user reads a row by), no cell or header cut: at 80
    # columns 'BHMBCC…', 'capaci…', 'logno…' and 'held-o…' were. Headers on several lines and
    # no rules between columns, so the eight fit 80.
    table = Table(
        Column("site", no_wrap=True),
        Column("capacity", justify="right"),
        Column("stay\n(min)"),
        Column("arrivals\n/ weekday", justify="right"),
        Column("day\nCV", justify="right"),
        Column("special\ndays /\nweeks"),
        Column("fit\nMAE", justify="right"),
        Column("held-out\nMAE", justify="right"),
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        show_edge=False,
    )
    for row in result.frames["estimates"].itertuples():
        held = row.held_out_mae_rate
        table.add_row(
            row.site,
            f"{row.capacity:,}",
            f"{row.stay_family}\n{row.stay_mean_min:.0f}",
            f"{row.arrivals_per_day_weekday:,.0f}",
            f"{row.day_factor_cv:.2f}",
            f"{row.special_days} / {row.weeks_own_level}",
            f"{row.fit_mae_rate:.1%}",
            "–" if held is None or held != held else f"{held:.1%}",
        )
    for site, why in result.estimates["unusable"].items():
        table.add_row(site, "", "not fitted: " + why, "", "", "", "", "")
    return table
