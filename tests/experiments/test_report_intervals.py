"""The interval chart of the report (one panel per figure) stays readable when a figure is 0 in
every replication with a one-sided bound above it, and when its values are long."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from twin import report_sections
from twin.report_sections import interval_text, plot_intervals, tick_decimals, value_ci


@pytest.mark.parametrize(
    "ticks, decimals",
    [
        ([48.5, 49.0, 49.5, 50.0], 1),
        ([98.0, 98.4, 98.8], 1),
        ([0, 10, 20], 1),
        ([0.0, 0.0008, 0.0016], 4),
        ([0.0, 0.0025, 0.005, 0.0075], 4),
        ([0.0, 0.02, 0.04], 2),
        ([3.0], 1),
    ],
)
def test_tick_decimals_show_each_tick_exactly(ticks: list[float], decimals: int) -> None:
    assert tick_decimals(np.array(ticks)) == decimals
    shown = [f"{t:.{decimals}f}" for t in ticks]
    assert len(set(shown)) == len(ticks)


def test_an_interval_whose_ends_round_alike_gets_more_decimals() -> None:
    assert interval_text("blocked_pct", 0.0, 0.002) == ("0.000", "0.002")
    assert interval_text("blocked_pct", 0.0, 0.0) == ("0.00", "0.00")  # a true zero stays short
    assert interval_text("balked_pct", 5.21, 5.37) == ("5.21", "5.37")


def _drawn(monkeypatch: pytest.MonkeyPatch, metrics: dict, tmp_path: Path) -> Figure:
    kept: list[Figure] = []
    monkeypatch.setattr(report_sections, "save", lambda fig, path: kept.append(fig) or path)
    plot_intervals(metrics, list(metrics), 10, tmp_path / "x.png", "Headline figures")
    (fig,) = kept
    fig.canvas.draw()
    return fig


def test_a_zero_figure_with_a_one_sided_bound_has_distinct_ticks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Blocked 0 % in all 10 replications, bound 0.002 %: the ticks read 0.0 % three times and
    the title '95% CI 0.00 … 0.00' while a bar was drawn."""
    metrics = {"blocked_pct": {"mean": 0.0, "ci95": [0.0, 0.002], "values": [0.0] * 10}}
    fig = _drawn(monkeypatch, metrics, tmp_path)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    assert "0.000 … 0.002" in ax.get_title(loc="left")


def test_a_long_value_line_is_split_rather_than_run_into_the_next_panel(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    values = [2100.0, 2400.0, 2700.0, 3000.0, 1300.0]
    metrics = {
        "sensors.fallback_min_per_day": {
            "mean": 2428.13, "ci95": [1487.88, 3368.37], "values": values,
        },
        "balked_pct": {"mean": 5.29, "ci95": [5.21, 5.37], "values": [5.2, 5.3, 5.4]},
    }  # fmt: skip
    fig = _drawn(monkeypatch, metrics, tmp_path)
    for ax in fig.axes:
        title = ax.get_title(loc="left")
        if not title:
            continue
        assert max(len(line) for line in title.splitlines()) <= 48, title
    assert fig.axes[1].get_title(loc="left").endswith("5.29 %  (95% CI 5.21 … 5.37)")


def test_the_report_tables_tell_the_ends_of_an_interval_apart() -> None:
    metrics = {
        "blocked_pct": {"mean": 0.0, "ci95": [0.0, 0.002], "values": [0.0] * 10},
        "entry_wait_s.mean": {"mean": 0.0286, "ci95": [0.0271, 0.0301], "values": [0.03]},
        "time_full_pct": {"mean": 0.0, "ci95": [0.0, 0.0], "values": [0.0] * 10},
    }
    assert value_ci(metrics, "blocked_pct") == ("0.00 %", "0.000 % … 0.002 %")
    assert value_ci(metrics, "entry_wait_s.mean")[1] == "0.027 s … 0.030 s"
    assert value_ci(metrics, "time_full_pct") == ("0.00 %", "0.00 % … 0.00 %")
