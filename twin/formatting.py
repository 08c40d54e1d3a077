"""How figures are printed for people: one place, so the terminal and the HTML report agree."""

from __future__ import annotations

import math


def format_figure(value: float | None, kind: str) -> str:
    """``kind``: ``pct`` (already in %), ``frac`` (0..1 shown as %), ``money``, ``count``, or
    anything else for a plain number; missing values show as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "pct":
        return f"{value:.2f} %"
    if kind == "frac":
        return f"{100 * value:.1f} %"
    if kind == "money":
        return f"${value:,.2f}"
    if kind == "count":
        return f"{value:,.0f}"
    return f"{value:,.2f}"
